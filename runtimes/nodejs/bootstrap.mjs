// Hearth managed Node.js runtime (nodejs20.x), Node standard library only.
//
// Started by Hearth inside the sandbox as
//
//     node /var/runtime/nodejs/bootstrap.mjs
//
// with cwd = the task root and the environment of runtime-api.md section 4
// (`_HANDLER`, `AWS_LAMBDA_RUNTIME_API`, `LAMBDA_TASK_ROOT`, `AWS_LAMBDA_FUNCTION_*`, ...).
//
// What it owns: resolving and loading the handler (`file.export`,
// `dir/file.export`, nested `file.a.b`; .js/.mjs/.cjs/extensionless, CommonJS
// via createRequire, ES modules via import()), the Runtime API loop over one
// keep-alive connection, the context object, console patching to the AWS text
// log format, and the init-error / uncaught-error protocol (exit 129, or 128
// for an unhandled promise rejection).
//
// Behaviour follows aws-lambda-nodejs-runtime-interface-client (the client AWS
// runs for nodejs20.x): same error JSON (`errorType`, `errorMessage`,
// `trace`), same init error types/messages, same console line layout
// (`<ISO ts>\t<request id>\t<LEVEL>\t<message>`, inner newlines as \r).
//
// Not supported: response streaming (awslambda.streamifyResponse throws),
// JSON log format, the framed telemetry log fd, the X-Ray error-cause header.
// `context.callbackWaitsForEmptyEventLoop` is accepted but ignored: a callback
// result is posted at once instead of when the event loop drains.

// Start-up cost matters (it is part of every cold start): only modules that
// Node has loaded anyway before running an ES module entry are imported here
// (net, fs, path, url, module). `node:http` (~4 ms plus its first-request
// set-up) is replaced by the small client below; `node:util` (~2 ms: it pulls
// in parse_args, mime, ...) is loaded on first use (console output, errors).
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
let utilModule;
const util = () => (utilModule ??= require('node:util'));
const API_PREFIX = '/2018-06-01/runtime';

// ---------------------------------------------------------------------------
// Errors (names as in the AWS client: `Runtime.<Class>`)
// ---------------------------------------------------------------------------

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. ' +
        'This is most commonly caused by a Promise that was never settled.',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function isErrorLike(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string'
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

function toRapidResponse(error) {
  try {
    if (util().types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: String(error.stack).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_e) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const ret = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_e) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Console patching
// ---------------------------------------------------------------------------

let currentRequestId; // undefined before the first invoke, printed as such (AWS does too)
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');

function writeLog(level, args) {
  let line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util().format(...args)}`;
  // One record per line for a line-based collector: inner newlines become \r.
  line = line.replace(/\n/g, '\r');
  process.stdout.write(line + '\n');
}

function patchConsole() {
  const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
  const wanted = (process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase();
  const min = Math.max(0, levels.indexOf(wanted));
  const make = (lvl) =>
    levels.indexOf(lvl) >= min ? (...args) => writeLog(lvl, args) : () => {};
  console.trace = make('TRACE');
  console.debug = make('DEBUG');
  console.info = make('INFO');
  console.log = console.info;
  console.warn = make('WARN');
  console.error = make('ERROR');
  console.fatal = make('FATAL');
}

function logError(msg, err) {
  console.error(msg, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------
// Runtime API client
// ---------------------------------------------------------------------------

// Minimal HTTP/1.1 client over one kept-alive `net` socket. Supports what the
// Runtime API needs: request bodies with Content-Length (no Expect), responses
// with Content-Length, chunked or close-delimited bodies, 1xx answers skipped.
// The socket is unref()'d while idle (as http.Agent does with free sockets) so
// that an open connection does not keep the event loop alive during an
// invoke: `beforeExit` must still fire when a handler never settles.
class RuntimeClient {
  constructor(address) {
    const idx = address.lastIndexOf(':');
    this.address = address;
    this.host = address.slice(0, idx).replace(/^\[(.*)\]$/, '$1');
    this.port = parseInt(address.slice(idx + 1), 10);
    this.socket = null;
    this.used = false; // the current socket already carried a request
    this.pending = null; // { onData, onEnd, onError } of the request in flight
  }

  _connect() {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.used = false;
    // Events of a socket that was already replaced must not reach the
    // request in flight on its successor.
    const pending = () => (this.pending && this.pending.socket === socket ? this.pending : null);
    socket.on('data', (chunk) => {
      const p = pending();
      if (p) p.onData(chunk);
      else this._drop(socket); // bytes while idle: protocol violation
    });
    socket.on('end', () => {
      const p = pending();
      if (p) p.onEnd();
      this._drop(socket);
    });
    socket.on('error', (err) => {
      const p = pending();
      if (p) p.onError(err);
      this._drop(socket);
    });
    socket.on('close', () => {
      const p = pending();
      if (p) p.onEnd();
      this._drop(socket);
    });
  }

  _drop(socket) {
    if (this.socket === socket) this.socket = null;
    socket.destroy();
  }

  _once(method, urlPath, body, headers) {
    if (!this.socket) this._connect();
    const socket = this.socket;
    const reused = this.used;
    this.used = true;
    socket.ref();
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      let head = null; // { status, headers, willClose, mode, length }
      let chunks = [];
      let got = 0;
      const fail = (err) => {
        this.pending = null;
        err.reusedSocket = reused;
        this._drop(socket);
        reject(err);
      };
      const done = (bodyBuf) => {
        this.pending = null;
        if (head.willClose) this._drop(socket);
        else socket.unref();
        resolve({ status: head.status, headers: head.headers, body: bodyBuf });
      };
      const protocolError = (msg) => {
        const err = new Error(`runtime api: ${msg}`);
        err.code = 'ECONNRESET';
        return err;
      };
      const parseHead = () => {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > 65536) throw protocolError('response header too long');
            return false;
          }
          const lines = buf.toString('latin1', 0, end).split('\r\n');
          buf = buf.subarray(end + 4);
          const m = /^(HTTP\/\d\.\d) (\d{3})/.exec(lines[0]);
          if (!m) throw protocolError(`bad status line ${JSON.stringify(lines[0].slice(0, 100))}`);
          const status = Number(m[2]);
          if (status < 200 && status !== 101) continue; // 1xx: informational
          const hdrs = {};
          for (let i = 1; i < lines.length; i++) {
            const c = lines[i].indexOf(':');
            if (c <= 0) throw protocolError('bad header line');
            const name = lines[i].slice(0, c).trim().toLowerCase();
            if (!(name in hdrs)) hdrs[name] = lines[i].slice(c + 1).trim();
          }
          const conn = (hdrs.connection || '').toLowerCase();
          head = {
            status,
            headers: hdrs,
            willClose: conn.includes('close') || (m[1] === 'HTTP/1.0' && !conn.includes('keep-alive')),
          };
          if (method === 'HEAD' || status === 204 || status === 304) {
            head.mode = 'length';
            head.length = 0;
          } else if ((hdrs['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
            head.mode = 'chunked';
          } else if (hdrs['content-length'] !== undefined) {
            head.mode = 'length';
            head.length = Number(hdrs['content-length']);
            if (!Number.isSafeInteger(head.length) || head.length < 0) {
              throw protocolError('bad content-length');
            }
          } else {
            head.mode = 'eof';
            head.willClose = true;
          }
          return true;
        }
      };
      // Returns true once the whole chunked body is in `chunks`.
      const parseChunked = () => {
        for (;;) {
          const eol = buf.indexOf('\r\n');
          if (eol < 0) return false;
          const size = parseInt(buf.toString('latin1', 0, eol).split(';')[0].trim(), 16);
          if (Number.isNaN(size)) throw protocolError('bad chunk size line');
          if (size === 0) {
            const end = buf.indexOf('\r\n\r\n', eol); // trailers, then blank line
            if (end === eol) {
              buf = buf.subarray(eol + 4);
              return true;
            }
            if (end < 0) return false;
            buf = buf.subarray(end + 4);
            return true;
          }
          if (buf.length < eol + 2 + size + 2) return false;
          chunks.push(buf.subarray(eol + 2, eol + 2 + size));
          buf = buf.subarray(eol + 2 + size + 2);
        }
      };
      const progress = () => {
        if (!head && !parseHead()) return;
        if (head.mode === 'length') {
          if (chunks.length === 0 && got === 0 && buf.length >= head.length) {
            done(Buffer.from(buf.subarray(0, head.length)));
            return;
          }
          if (buf.length) {
            chunks.push(buf);
            got += buf.length;
            buf = Buffer.alloc(0);
          }
          if (got >= head.length) done(Buffer.concat(chunks, got).subarray(0, head.length));
        } else if (head.mode === 'chunked') {
          if (parseChunked()) done(Buffer.concat(chunks));
        } else if (buf.length) {
          chunks.push(buf);
          buf = Buffer.alloc(0);
        }
      };
      this.pending = {
        socket,
        onData: (chunk) => {
          buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
          try {
            progress();
          } catch (err) {
            fail(err);
          }
        },
        onEnd: () => {
          if (head && head.mode === 'eof') done(Buffer.concat(chunks));
          else fail(protocolError('connection closed before the response was complete'));
        },
        onError: fail,
      };
      let req = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.address}\r\n`;
      for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
      req += '\r\n';
      // One write: with TCP_NODELAY a separate body write would be its own packet.
      socket.write(body === undefined ? req : Buffer.concat([Buffer.from(req, 'latin1'), Buffer.from(body)]));
    });
  }

  async request(method, urlPath, body, headers = {}) {
    if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
    try {
      return await this._once(method, urlPath, body, headers);
    } catch (err) {
      // A kept-alive socket may have been closed by the server meanwhile: retry once.
      if (err.reusedSocket && ['ECONNRESET', 'EPIPE'].includes(err.code)) {
        return await this._once(method, urlPath, body, headers);
      }
      throw err;
    }
  }

  async nextInvocation() {
    const res = await this.request('GET', `${API_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`GET /next returned ${res.status}: ${res.body.toString().slice(0, 500)}`);
    }
    return res;
  }

  async _post(urlPath, body, headers) {
    const res = await this.request('POST', urlPath, body, headers);
    if (res.status !== 202) {
      // The daemon already knows what went wrong (e.g. 413); keep serving.
      process.stderr.write(
        `hearth-runtime: POST ${urlPath} returned ${res.status}: ${res.body.toString().slice(0, 500)}\n`,
      );
    }
    return res;
  }

  postInvocationResponse(id, bodyString) {
    return this._post(`${API_PREFIX}/invocation/${id}/response`, bodyString, {
      'Content-Type': 'application/json',
    });
  }

  postInvocationError(id, error) {
    return this._post(
      `${API_PREFIX}/invocation/${id}/error`,
      JSON.stringify(toRapidResponse(error)),
      { 'Content-Type': 'application/json' },
    );
  }

  postInitError(error) {
    const response = toRapidResponse(error);
    return this._post(`${API_PREFIX}/init/error`, JSON.stringify(response), {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': String(response.errorType),
    });
  }
}

// ---------------------------------------------------------------------------
// Handler loading (mirrors the AWS client's UserFunction.js)
// ---------------------------------------------------------------------------

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

function tryRequireFile(file, ext = '') {
  const p = file + ext;
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryImport(file, ext) {
  const p = file + ext;
  return fs.existsSync(p) ? await import(pathToFileURL(p).href) : undefined;
}

function hasPackageJsonTypeModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasPackageJsonTypeModule(path.resolve(folder, '..'));
}

async function tryLoad(appRoot, moduleRoot, moduleName) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;

  const pjHasModule = hasPackageJsonTypeModule(path.dirname(lambdaStylePath));
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (pjHasModule && (await tryImport(lambdaStylePath, '.js'))) ||
    (await tryImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;

  // Last resort: node-style resolution (e.g. a package in node_modules).
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(FUNCTION_EXPR);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let app;
  try {
    app = await tryLoad(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!fn) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  return fn;
}

// ---------------------------------------------------------------------------
// Invoke loop
// ---------------------------------------------------------------------------

const client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API || '');
let phase = 'init'; // 'init' | 'invoke'
let current = null; // { id, settled, isAsync, finish }
let fatal = false;

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function buildContext(headers, finish) {
  let waitForEmptyEventLoop = true;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyEventLoop = v; // accepted, not honoured (see header comment)
    },
    succeed: (result) => finish(null, result),
    fail: (err) => finish(err === undefined || err === null ? 'handled' : err),
    done: (err, result) => finish(err, result),
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

function isPromise(obj) {
  return obj && typeof obj.then === 'function';
}

function serialize(result) {
  const s = JSON.stringify(result === undefined ? null : result);
  return s === undefined ? 'null' : s;
}

// Runs one invocation; resolves once its result or error has been posted.
function invokeOnce(handler, res) {
  return new Promise((resolveInvoke) => {
    const headers = res.headers;
    const id = headers['lambda-runtime-aws-request-id'];
    currentRequestId = id;
    globalThis[REQUEST_ID_SYMBOL] = id;
    if (headers['lambda-runtime-trace-id']) {
      process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }

    const state = { id, settled: false, isAsync: handler.constructor?.name === 'AsyncFunction' };
    const postError = async (err) => {
      logError('Invoke Error', err);
      await client.postInvocationError(id, err);
    };
    const finish = (err, result) => {
      if (state.settled) return;
      state.settled = true;
      (async () => {
        if (err !== undefined && err !== null) {
          await postError(err);
        } else {
          let body;
          try {
            body = serialize(result);
          } catch (_e) {
            await postError(new Error('Unable to stringify response body'));
            return;
          }
          await client.postInvocationResponse(id, body);
        }
      })().then(resolveInvoke, (e) => fatalExit(e, 1));
    };
    state.finish = finish;
    current = state;

    try {
      const context = buildContext(headers, finish);
      const event = JSON.parse(res.body.toString('utf8'));
      const callback = (err, result) => finish(err, result);
      const ret = handler(event, context, callback);
      if (isPromise(ret)) {
        Promise.resolve(ret).then(
          (v) => finish(null, v),
          (e) => finish(e === undefined || e === null ? 'handled' : e),
        );
      } else if (handler.length < 3 && ret !== undefined) {
        // A plain sync handler: its return value is the result. (AWS's client
        // ignores it and answers null once the event loop drains; returning it
        // is what the handler's author obviously meant.)
        finish(null, ret);
      }
      // Else wait for callback / context.succeed|fail|done, or for the event
      // loop to drain (beforeExit below answers null, like AWS).
    } catch (err) {
      finish(err);
    }
  });
}

function fatalExit(err, code) {
  if (fatal) return;
  fatal = true;
  process.stderr.write(`hearth-runtime: ${err && err.stack ? err.stack : err}\n`);
  process.exit(code);
}

// An error that escaped the handler: report it to the right endpoint, then exit
// (the environment is not reusable), like the AWS client.
function onFatalUserError(error, code) {
  if (fatal) return;
  fatal = true;
  const post =
    phase === 'invoke' && current && !current.settled
      ? client.postInvocationError(current.id, error)
      : phase === 'init'
        ? client.postInitError(error)
        : Promise.resolve();
  if (current) current.settled = true;
  post.then(
    () => process.exit(code),
    () => process.exit(code),
  );
}

process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  onFatalUserError(error, 129);
});

process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  onFatalUserError(error, 128);
});

// The event loop drained while an invoke was still open: the handler neither
// called back nor settled its promise. AWS answers null for sync/callback
// handlers and Runtime.NodeJsExit for async ones; do the same.
process.on('beforeExit', () => {
  if (current && !current.settled) {
    if (current.isAsync) current.finish(new NodeJsExit());
    else current.finish(null, null);
  }
});

async function main() {
  patchConsole();
  if (!process.env.AWS_LAMBDA_RUNTIME_API) {
    process.stderr.write('hearth-runtime: AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  globalThis.awslambda = {
    streamifyResponse: () => {
      throw new Error('awslambda.streamifyResponse: response streaming is not supported by Hearth');
    },
  };
  const appRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  const handlerName = process.argv[2] || process.env._HANDLER || '';

  let handler;
  try {
    handler = await loadHandler(appRoot, handlerName);
  } catch (err) {
    logError('Uncaught Exception', err);
    fatal = true;
    try {
      await client.postInitError(err);
    } catch (e) {
      process.stderr.write(`hearth-runtime: ${e}\n`);
    }
    process.exit(129);
  }

  phase = 'invoke';
  for (;;) {
    let res;
    try {
      res = await client.nextInvocation();
    } catch (err) {
      fatalExit(err, 1);
      return;
    }
    await invokeOnce(handler, res);
    current = null;
  }
}

main();
