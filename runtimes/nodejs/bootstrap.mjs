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

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
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
    if (util.types.isNativeError(error) || isErrorLike(error)) {
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
  let line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
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

class RuntimeClient {
  constructor(address) {
    const idx = address.lastIndexOf(':');
    this.host = address.slice(0, idx).replace(/^\[(.*)\]$/, '$1');
    this.port = parseInt(address.slice(idx + 1), 10);
    // One kept-alive socket: the protocol is strictly sequential.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  _once(method, urlPath, body, headers) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path: urlPath,
          agent: this.agent,
          headers,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('socket', (s) => s.setNoDelay(true));
      req.on('error', (err) => {
        err.reusedSocket = req.reusedSocket;
        reject(err);
      });
      req.end(body);
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
