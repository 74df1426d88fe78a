"""End-to-end tests of Hearth's managed runtimes against a fake Runtime API.

Run from the repository root:

    python3 -m unittest discover -s runtimes/tests

Each test writes a small function package into a temp dir standing in for
/var/task, starts the runtime bootstrap as a subprocess (cwd = that dir,
LAMBDA_TASK_ROOT pointing there, AWS_LAMBDA_RUNTIME_API = the fake server),
scripts events and checks what the runtime posted and printed.

Python runtime tests run for every interpreter found: the one running the
tests, plus any listed in HEARTH_TEST_PYTHONS (os.pathsep-separated paths).
Node tests need `node` (20) on PATH, else they are skipped.
No timed assertions: timeouts are hang guards only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import FakeRuntimeApi  # noqa: E402

RUNTIMES_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY_BOOTSTRAP = os.path.join(RUNTIMES_DIR, "python", "bootstrap.py")
NODE_BOOTSTRAP = os.path.join(RUNTIMES_DIR, "nodejs", "bootstrap.mjs")
HANG_GUARD = 60.0

REQUEST_ID = "8f5ba4b7-4b4f-4b9b-9a3c-0123456789ab"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
TRACE = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
CLIENT_CONTEXT = json.dumps({
    "client": {"installation_id": "inst-1", "app_title": "app", "app_version_name": "1.0",
               "app_version_code": "10", "app_package_name": "com.example"},
    "custom": {"k": "v"},
    "env": {"platform": "linux"},
})
COGNITO = json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"})


class RuntimeProcess:
    """A runtime subprocess plus its fake Runtime API and task-root dir."""

    def __init__(self, cmd, files, handler, extra_env=None):
        self.task_root = tempfile.mkdtemp(prefix="hearth-task-")
        for rel, text in files.items():
            p = os.path.join(self.task_root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(textwrap.dedent(text).lstrip("\n"))
        self.api = FakeRuntimeApi().start()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.task_root,
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/28/[$LATEST]9971a2b3c4d5e6f708192a3b4c5d221b",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": self.task_root,
            "LAMBDA_RUNTIME_DIR": RUNTIMES_DIR,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "MY_VAR": "my value",
        }
        env.update(extra_env or {})
        self.stdout = []
        self.stderr = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            cmd, cwd=self.task_root, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, sink):
        # Split on \n only: records may contain \r on purpose.
        buf = b""
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if lines:
                with self._cond:
                    sink.extend(line.decode("utf-8", "replace") for line in lines)
                    self._cond.notify_all()
        with self._cond:
            if buf:
                sink.append(buf.decode("utf-8", "replace"))
            self._cond.notify_all()

    def wait_stdout(self, predicate, timeout=HANG_GUARD):
        return self._wait_lines(self.stdout, predicate, timeout)

    def wait_stderr(self, predicate, timeout=HANG_GUARD):
        # stderr is a separate pipe with its own reader: wait on it separately.
        return self._wait_lines(self.stderr, predicate, timeout)

    def _wait_lines(self, sink, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(sink):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("output condition not met; tail: {!r}".format(
                        sink[-5:]))
                self._cond.wait(min(left, 0.2))
            return list(sink)

    def wait_posts(self, n):
        return self.api.wait_posts(n, timeout=HANG_GUARD, proc=self.proc)

    def wait_exit(self):
        rc = self.proc.wait(timeout=HANG_GUARD)
        for t in self._readers:
            t.join(HANG_GUARD)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by pid
        self.proc.wait(timeout=HANG_GUARD)
        for t in self._readers:
            t.join(HANG_GUARD)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.api.stop()
        shutil.rmtree(self.task_root, ignore_errors=True)

    def diag(self):
        return "stdout tail: {!r}\nstderr: {!r}".format(self.stdout[-10:], self.stderr[-20:])


class RuntimeTestBase:
    """Shared helpers; concrete classes set `cmd`."""

    cmd = None

    def start(self, files, handler, extra_env=None):
        rp = RuntimeProcess(self.cmd, files, handler, extra_env)
        self.addCleanup(rp.close)
        return rp

    def test_reconnects_when_connection_dropped(self):
        rp = self.start(self.echo_files, self.echo_handler)
        rp.api.drop_after_post = True
        for i in range(4):
            post = self.invoke(rp, {"i": i})
            self.assertEqual((post.kind, post.json()), ("response", {"i": i}), rp.diag())
        self.assertGreaterEqual(len(rp.api.connections), 4)
        self.assertIsNone(rp.proc.poll())

    def invoke(self, rp, payload, **kw):
        n = len(rp.api.posts)
        rid = rp.api.add_event(payload, **kw)
        posts = rp.wait_posts(n + 1)
        post = posts[n]
        self.assertEqual(post.request_id, rid, rp.diag())
        return post

    def assert_init_error(self, rp, error_type, exit_code):
        posts = rp.wait_posts(1)
        rc = rp.wait_exit()
        self.assertEqual(rc, exit_code, rp.diag())
        self.assertEqual(len(posts), 1, posts)
        post = posts[0]
        self.assertEqual(post.kind, "init_error", rp.diag())
        self.assertEqual(post.headers.get("lambda-runtime-function-error-type"), error_type)
        body = post.json()
        self.assertEqual(body["errorType"], error_type)
        self.assertEqual(rp.api.next_calls, 0)
        return body


# ---------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------

PY_FUNCTION = {
    "lambda_function.py": """
        import decimal
        import logging
        import os
        import sys

        logger = logging.getLogger()

        def echo(event, context):
            return event

        def boom(event, context):
            helper()

        def helper():
            raise ValueError("boom")

        def not_serialisable(event, context):
            return {1, 2}

        def decimals(event, context):
            return {"d": decimal.Decimal("1.5"), "i": decimal.Decimal("3")}

        def loud(event, context):
            for i in range(10000):
                print("line %d" % i)
            logger.warning("warn %s", "here")
            logger.error("multi\\nline")
            sys.stderr.write("to stderr\\n")
            print("END-OF-LOGS")
            return 10000

        def ctx(event, context):
            cc = context.client_context
            return {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
                "cc_custom": cc.custom if cc else None,
                "cc_env": cc.env if cc else None,
                "cc_installation_id": cc.client.installation_id if cc else None,
                "cc_app_title": cc.client.app_title if cc else None,
                "cognito_identity_id": context.identity.cognito_identity_id,
                "cognito_identity_pool_id": context.identity.cognito_identity_pool_id,
                "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                "env": {k: os.environ.get(k) for k in (
                    "MY_VAR", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT",
                    "_HANDLER", "TZ")},
                "cwd": os.getcwd(),
                "sys_path0": sys.path[0],
                "event_type": type(event).__name__,
            }
    """,
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    "pkg/sub/mod.py": """
        def fn(event, context):
            return {"pkg": event}
    """,
    "broken_import.py": """
        import no_such_dependency_xyz

        def handler(event, context):
            return 1
    """,
    "bad_syntax.py": """
        def handler(event, context):
            return (1
    """,
    "raises_at_import.py": """
        raise RuntimeError("init failed")
    """,
}


class PythonRuntimeMixin(RuntimeTestBase):
    python = sys.executable
    echo_files = PY_FUNCTION
    echo_handler = "lambda_function.echo"

    @property
    def cmd(self):
        return [self.python, PY_BOOTSTRAP]

    def test_echo_json_and_keepalive(self):
        rp = self.start(PY_FUNCTION, "lambda_function.echo")
        for i in range(3):
            event = {"n": i, "s": "h\u00e9llo", "l": [1, 2.5, None, True]}
            post = self.invoke(rp, event)
            self.assertEqual(post.kind, "response", rp.diag())
            self.assertEqual(post.headers.get("content-type"), "application/json")
            self.assertEqual(post.json(), event)
        rp.api.wait_next_calls(4)
        self.assertEqual(len(rp.api.connections), 1, "runtime should reuse one connection")

    def test_non_json_content_type_gives_bytes_and_raw_response(self):
        rp = self.start(PY_FUNCTION, "lambda_function.echo")
        post = self.invoke(rp, b"\x00raw bytes\xff", content_type="application/octet-stream")
        self.assertEqual(post.kind, "response", rp.diag())
        self.assertEqual(post.body, b"\x00raw bytes\xff")
        self.assertEqual(post.headers.get("content-type"), "application/unknown")
        # charset suffix is not an exact match: bytes too (awslambdaric behaviour)
        post = self.invoke(rp, b'{"a": 1}', content_type="application/json; charset=utf-8")
        self.assertEqual(post.body, b'{"a": 1}')

    def test_dotted_package_and_slash_handlers(self):
        rp = self.start(PY_FUNCTION, "pkg.sub.mod.fn")
        self.assertEqual(self.invoke(rp, {"x": 1}).json(), {"pkg": {"x": 1}})
        rp2 = self.start(PY_FUNCTION, "pkg/sub/mod.fn")
        self.assertEqual(self.invoke(rp2, {"x": 2}).json(), {"pkg": {"x": 2}})

    def test_exception_posts_error_and_stays_warm(self):
        rp = self.start(PY_FUNCTION, "lambda_function.boom")
        post = self.invoke(rp, {}, request_id=REQUEST_ID)
        self.assertEqual(post.kind, "error", rp.diag())
        body = post.json()
        self.assertEqual(body["errorType"], "ValueError")
        self.assertEqual(body["errorMessage"], "boom")
        self.assertEqual(body["requestId"], REQUEST_ID)
        trace = body["stackTrace"]
        self.assertEqual(len(trace), 2, trace)
        path = os.path.join(rp.task_root, "lambda_function.py")
        self.assertTrue(trace[0].startswith('  File "%s", line ' % path), trace)
        self.assertIn(", in boom\n    helper()\n", trace[0])
        self.assertTrue(trace[1].endswith('in helper\n    raise ValueError("boom")\n'), trace)
        self.assertNotIn("bootstrap.py", "".join(trace))
        # awslambdaric prints the error as one stdout record
        rp.wait_stdout(lambda lines: any(l.startswith("[ERROR] ValueError: boom\r") for l in lines))
        line = [l for l in rp.stdout if l.startswith("[ERROR] ValueError")][0]
        self.assertIn("\rTraceback (most recent call last):\r", line)
        # still warm: the next invoke is served by the same process
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error")
        self.assertIsNone(rp.proc.poll())

    def test_marshal_error(self):
        rp = self.start(PY_FUNCTION, "lambda_function.not_serialisable")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error", rp.diag())
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.MarshalError")
        self.assertEqual(body["errorMessage"],
                         "Unable to marshal response: Object of type set is not JSON serializable")
        self.assertEqual(body["stackTrace"], [])

    def test_decimal_result(self):
        rp = self.start(PY_FUNCTION, "lambda_function.decimals")
        self.assertEqual(self.invoke(rp, {}).json(), {"d": 1.5, "i": 3})

    def test_unmarshal_error(self):
        rp = self.start(PY_FUNCTION, "lambda_function.echo")
        post = self.invoke(rp, b"{not json")
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorType"], "Runtime.UnmarshalError")

    def test_bad_client_context(self):
        rp = self.start(PY_FUNCTION, "lambda_function.echo")
        post = self.invoke(rp, {}, client_context="{bad")
        self.assertEqual(post.json()["errorType"], "Runtime.LambdaContextUnmarshalError")

    def test_import_error_missing_module(self):
        rp = self.start(PY_FUNCTION, "nomod.handler")
        body = self.assert_init_error(rp, "Runtime.ImportModuleError", 1)
        self.assertEqual(body["errorMessage"], "Unable to import module 'nomod': No module named 'nomod'")
        self.assertEqual(body["requestId"], "")
        self.assertEqual(body["stackTrace"], [])
        self.assertIn("[ERROR] Runtime.ImportModuleError: Unable to import module 'nomod': "
                      "No module named 'nomod'\rTraceback (most recent call last):", rp.stdout)

    def test_import_error_missing_dependency(self):
        rp = self.start(PY_FUNCTION, "broken_import.handler")
        body = self.assert_init_error(rp, "Runtime.ImportModuleError", 1)
        self.assertEqual(body["errorMessage"],
                         "Unable to import module 'broken_import': No module named 'no_such_dependency_xyz'")

    def test_syntax_error(self):
        rp = self.start(PY_FUNCTION, "bad_syntax.handler")
        body = self.assert_init_error(rp, "Runtime.UserCodeSyntaxError", 1)
        self.assertTrue(body["errorMessage"].startswith("Syntax error in module 'bad_syntax': "), body)
        self.assertIn("bad_syntax.py", body["stackTrace"][0])
        self.assertTrue(any(l.startswith("[ERROR] Runtime.UserCodeSyntaxError: ") for l in rp.stdout))

    def test_missing_handler(self):
        rp = self.start(PY_FUNCTION, "lambda_function.nope")
        body = self.assert_init_error(rp, "Runtime.HandlerNotFound", 1)
        self.assertEqual(body["errorMessage"], "Handler 'nope' missing on module 'lambda_function'")

    def test_malformed_handler(self):
        rp = self.start(PY_FUNCTION, "lambda_function")
        body = self.assert_init_error(rp, "Runtime.MalformedHandlerName", 1)
        self.assertEqual(body["errorMessage"],
                         "Bad handler 'lambda_function': not enough values to unpack (expected 2, got 1)")

    def test_exception_at_import(self):
        rp = self.start(PY_FUNCTION, "raises_at_import.handler")
        body = self.assert_init_error(rp, "RuntimeError", 1)
        self.assertEqual(body["errorMessage"], "init failed")
        self.assertTrue(any("raises_at_import.py" in t for t in body["stackTrace"]), body)

    def test_ten_thousand_log_lines(self):
        rp = self.start(PY_FUNCTION, "lambda_function.loud")
        post = self.invoke(rp, {}, request_id=REQUEST_ID)
        self.assertEqual(post.json(), 10000)
        lines = rp.wait_stdout(lambda ls: "END-OF-LOGS" in ls)
        self.assertEqual([l for l in lines if l.startswith("line ")],
                         ["line %d" % i for i in range(10000)])
        warn = [l for l in lines if l.startswith("[WARNING]")]
        self.assertEqual(len(warn), 1, lines[-5:])
        level, ts, rid, msg = warn[0].split("\t")
        self.assertEqual((level, rid, msg), ("[WARNING]", REQUEST_ID, "warn here"))
        self.assertRegex(ts, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        err = [l for l in lines if l.startswith("[ERROR]\t")]
        self.assertEqual(len(err), 1)
        self.assertTrue(err[0].endswith("\t" + REQUEST_ID + "\tmulti\rline"), err)
        rp.wait_stderr(lambda ls: "to stderr" in ls)

    def test_context_and_environment(self):
        rp = self.start(PY_FUNCTION, "lambda_function.ctx")
        post = self.invoke(rp, {"a": 1}, request_id=REQUEST_ID, arn=ARN, trace_id=TRACE,
                           client_context=CLIENT_CONTEXT, cognito_identity=COGNITO)
        self.assertEqual(post.kind, "response", rp.diag())
        c = post.json()
        self.assertEqual(c["aws_request_id"], REQUEST_ID)
        self.assertEqual(c["function_name"], "fn")
        self.assertEqual(c["function_version"], "$LATEST")
        self.assertEqual(c["memory_limit_in_mb"], "256")  # str, as awslambdaric
        self.assertEqual(c["invoked_function_arn"], ARN)
        self.assertEqual(c["log_group_name"], "/aws/lambda/fn")
        self.assertTrue(c["log_stream_name"].startswith("2026/01/28/[$LATEST]"))
        self.assertGreater(c["remaining"], 0)
        self.assertLessEqual(c["remaining"], 3_600_000)
        self.assertEqual(c["cc_custom"], {"k": "v"})
        self.assertEqual(c["cc_env"], {"platform": "linux"})
        self.assertEqual(c["cc_installation_id"], "inst-1")
        self.assertEqual(c["cc_app_title"], "app")
        self.assertEqual(c["cognito_identity_id"], "id-1")
        self.assertEqual(c["cognito_identity_pool_id"], "pool-1")
        self.assertEqual(c["trace"], TRACE)
        self.assertEqual(c["env"], {
            "MY_VAR": "my value", "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "LAMBDA_TASK_ROOT": rp.task_root, "_HANDLER": "lambda_function.ctx", "TZ": ":UTC"})
        self.assertEqual(os.path.realpath(c["cwd"]), os.path.realpath(rp.task_root))
        self.assertEqual(c["sys_path0"], rp.task_root)
        self.assertEqual(c["event_type"], "dict")
        # second invoke: no trace header, no client context, deadline passed
        c = self.invoke(rp, {}, deadline_ms=1000).json()
        self.assertIsNone(c["trace"])
        self.assertIsNone(c["cc_custom"])
        self.assertIsNone(c["cognito_identity_id"])
        self.assertEqual(c["remaining"], 0)


def _python_interpreters():
    found = {}
    candidates = [sys.executable]
    extra = os.environ.get("HEARTH_TEST_PYTHONS", "")
    candidates += [p for p in extra.split(os.pathsep) if p]
    for exe in candidates:
        try:
            out = subprocess.run([exe, "-c", "import sys; print('%d_%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            found.setdefault(out.stdout.strip(), exe)
    return found


for _ver, _exe in _python_interpreters().items():
    _name = "PythonRuntimeTests_%s" % _ver
    globals()[_name] = type(_name, (PythonRuntimeMixin, unittest.TestCase), {"python": _exe})


# ---------------------------------------------------------------------------
# Node.js
# ---------------------------------------------------------------------------

NODE = shutil.which("node")

NODE_FUNCTION = {
    "index.js": """
        exports.echo = async (event) => event;
        exports.syncEcho = (event) => ({ sync: event });
        exports.cb = (event, context, callback) => {
          setTimeout(() => callback(null, { cb: event }), 5);
        };
        exports.cbError = (event, context, callback) => callback(new TypeError('bad cb'));
        exports.cbString = (event, context, callback) => callback('just a string');
        exports.ctxSucceed = (event, context) => { context.succeed({ succeeded: true }); };
        exports.legacySucceed = (event, context) => {
          setTimeout(() => context.succeed({ late: event }), 5);
        };
        exports.boom = async () => { throw new Error('boom'); };
        exports.syncBoom = () => { throw new RangeError('sync boom'); };
        exports.bigint = async () => ({ n: 10n });
        exports.nested = { deeper: { fn: async () => 'nested' } };
        exports.notFn = 42;
        exports.loud = async () => {
          for (let i = 0; i < 10000; i++) console.log('line', i);
          console.info('info %s', 'formatted');
          console.warn('a warning');
          console.error('an error', { k: 1 });
          console.log('multi\\nline');
          process.stderr.write('raw stderr\\n');
          console.log('END-OF-LOGS');
          return 10000;
        };
        exports.ctx = async (event, context) => ({
          awsRequestId: context.awsRequestId,
          functionName: context.functionName,
          functionVersion: context.functionVersion,
          memoryLimitInMB: context.memoryLimitInMB,
          invokedFunctionArn: context.invokedFunctionArn,
          logGroupName: context.logGroupName,
          logStreamName: context.logStreamName,
          remaining: context.getRemainingTimeInMillis(),
          clientContext: context.clientContext ?? null,
          identity: context.identity ?? null,
          waits: context.callbackWaitsForEmptyEventLoop,
          trace: process.env._X_AMZN_TRACE_ID ?? null,
          env: {
            MY_VAR: process.env.MY_VAR, AWS_REGION: process.env.AWS_REGION,
            LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT, _HANDLER: process.env._HANDLER,
          },
          cwd: process.cwd(),
        });
        exports.rejectLater = async () => {
          Promise.reject(new Error('nobody catches me'));
          await new Promise((r) => setTimeout(r, 600000));
        };
        exports.throwLater = (event, context, callback) => {
          setTimeout(() => { throw new Error('thrown from timer'); }, 1);
        };
        exports.neverAsync = async () => new Promise(() => {});
        exports.neverCb = (event, context, callback) => {};
        console.log('init log line');
    """,
    "esm.mjs": """
        export const handler = async (event, context) => ({ esm: event, fn: context.functionName });
    """,
    "thing.cjs": """
        module.exports.handler = async (event) => ({ cjs: event });
    """,
    "esm-pkg/package.json": '{"type": "module"}',
    "esm-pkg/app.js": """
        import { basename } from 'node:path';
        export const handler = async (event) => ({ esmPkg: event, base: basename('/a/b.js') });
    """,
    "sub/deep.js": """
        exports.handler = (event, context, callback) => callback(null, { deep: event });
    """,
    "syntax.js": """
        exports.handler = async () => {
    """,
    "syntax-esm.mjs": """
        export const handler = async () => { return 1 +; };
    """,
    "missing-dep.js": """
        require('no-such-pkg-xyz');
        exports.handler = async () => 1;
    """,
    "streaming.mjs": """
        export const handler = awslambda.streamifyResponse(async (event, stream) => { stream.end(); });
    """,
}


@unittest.skipIf(NODE is None, "node not on PATH")
class NodeRuntimeTests(RuntimeTestBase, unittest.TestCase):
    cmd = [NODE or "node", NODE_BOOTSTRAP]
    echo_files = NODE_FUNCTION
    echo_handler = "index.echo"

    def check_echo(self, handler, expected_wrap):
        rp = self.start(NODE_FUNCTION, handler)
        post = self.invoke(rp, {"a": [1, "x"]})
        self.assertEqual(post.kind, "response", rp.diag())
        self.assertEqual(post.headers.get("content-type"), "application/json")
        self.assertEqual(post.json(), expected_wrap({"a": [1, "x"]}))
        return rp

    def test_cjs_async_and_keepalive(self):
        rp = self.check_echo("index.echo", lambda e: e)
        for i in range(3):
            self.assertEqual(self.invoke(rp, {"i": i}).json(), {"i": i})
        rp.api.wait_next_calls(5)
        self.assertEqual(len(rp.api.connections), 1, "runtime should reuse one connection")

    def test_sync_handler_return_value(self):
        self.check_echo("index.syncEcho", lambda e: {"sync": e})

    def test_callback_handler(self):
        rp = self.check_echo("index.cb", lambda e: {"cb": e})
        self.assertEqual(self.invoke(rp, 7).json(), {"cb": 7})

    def test_context_succeed(self):
        self.check_echo("index.ctxSucceed", lambda e: {"succeeded": True})

    def test_legacy_async_context_succeed(self):
        self.check_echo("index.legacySucceed", lambda e: {"late": e})

    def test_esm_mjs(self):
        self.check_echo("esm.handler", lambda e: {"esm": e, "fn": "fn"})

    def test_cjs_extension(self):
        self.check_echo("thing.handler", lambda e: {"cjs": e})

    def test_type_module_js_in_subdir(self):
        self.check_echo("esm-pkg/app.handler", lambda e: {"esmPkg": e, "base": "b.js"})

    def test_dir_handler_callback(self):
        self.check_echo("sub/deep.handler", lambda e: {"deep": e})

    def test_nested_export(self):
        rp = self.start(NODE_FUNCTION, "index.nested.deeper.fn")
        self.assertEqual(self.invoke(rp, {}).json(), "nested")

    def test_async_throw(self):
        rp = self.start(NODE_FUNCTION, "index.boom")
        post = self.invoke(rp, {}, request_id=REQUEST_ID)
        self.assertEqual(post.kind, "error", rp.diag())
        body = post.json()
        self.assertEqual(set(body), {"errorType", "errorMessage", "trace"})
        self.assertEqual(body["errorType"], "Error")
        self.assertEqual(body["errorMessage"], "boom")
        self.assertEqual(body["trace"][0], "Error: boom")
        self.assertIn("index.js", body["trace"][1])
        lines = rp.wait_stdout(lambda ls: any("\tERROR\tInvoke Error \t" in l for l in ls))
        line = [l for l in lines if "Invoke Error" in l][0]
        logged = json.loads(line.split("Invoke Error \t", 1)[1])
        self.assertEqual((logged["errorType"], logged["errorMessage"]), ("Error", "boom"))
        self.assertIn("\t" + REQUEST_ID + "\t", line)
        # warm: next invoke served by the same process
        self.assertEqual(self.invoke(rp, {}).kind, "error")
        self.assertIsNone(rp.proc.poll())

    def test_sync_throw(self):
        rp = self.start(NODE_FUNCTION, "index.syncBoom")
        body = self.invoke(rp, {}).json()
        self.assertEqual((body["errorType"], body["errorMessage"]), ("RangeError", "sync boom"))

    def test_callback_errors(self):
        rp = self.start(NODE_FUNCTION, "index.cbError")
        body = self.invoke(rp, {}).json()
        self.assertEqual((body["errorType"], body["errorMessage"]), ("TypeError", "bad cb"))
        rp = self.start(NODE_FUNCTION, "index.cbString")
        body = self.invoke(rp, {}).json()
        self.assertEqual(body, {"errorType": "string", "errorMessage": "just a string", "trace": []})

    def test_non_serialisable(self):
        rp = self.start(NODE_FUNCTION, "index.bigint")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error")
        body = post.json()
        self.assertEqual((body["errorType"], body["errorMessage"]),
                         ("Error", "Unable to stringify response body"))

    def test_import_error(self):
        rp = self.start(NODE_FUNCTION, "nomod.handler")
        body = self.assert_init_error(rp, "Runtime.ImportModuleError", 129)
        self.assertTrue(body["errorMessage"].startswith("Error: Cannot find module 'nomod'"), body)
        self.assertTrue(body["trace"][0].startswith("Runtime.ImportModuleError: Error: Cannot find"))
        self.assertTrue(any("\tundefined\tERROR\tUncaught Exception \t" in l for l in rp.stdout),
                        rp.diag())

    def test_import_error_missing_dependency(self):
        rp = self.start(NODE_FUNCTION, "missing-dep.handler")
        body = self.assert_init_error(rp, "Runtime.ImportModuleError", 129)
        self.assertTrue(body["errorMessage"].startswith("Error: Cannot find module 'no-such-pkg-xyz'"))

    def test_syntax_error_cjs(self):
        rp = self.start(NODE_FUNCTION, "syntax.handler")
        body = self.assert_init_error(rp, "Runtime.UserCodeSyntaxError", 129)
        self.assertTrue(body["errorMessage"].startswith("SyntaxError: "), body)

    def test_syntax_error_esm(self):
        rp = self.start(NODE_FUNCTION, "syntax-esm.handler")
        body = self.assert_init_error(rp, "Runtime.UserCodeSyntaxError", 129)
        self.assertTrue(body["errorMessage"].startswith("SyntaxError: "), body)

    def test_missing_handler(self):
        rp = self.start(NODE_FUNCTION, "index.nope")
        body = self.assert_init_error(rp, "Runtime.HandlerNotFound", 129)
        self.assertEqual(body["errorMessage"], "index.nope is undefined or not exported")
        rp = self.start(NODE_FUNCTION, "index.notFn")
        body = self.assert_init_error(rp, "Runtime.HandlerNotFound", 129)
        self.assertEqual(body["errorMessage"], "index.notFn is not a function")

    def test_malformed_handler(self):
        rp = self.start(NODE_FUNCTION, "index")
        body = self.assert_init_error(rp, "Runtime.MalformedHandlerName", 129)
        self.assertEqual(body["errorMessage"], "Bad handler")
        rp = self.start(NODE_FUNCTION, "../index.echo")
        self.assert_init_error(rp, "Runtime.MalformedHandlerName", 129)

    def test_streaming_is_rejected_at_init(self):
        rp = self.start(NODE_FUNCTION, "streaming.handler")
        body = self.assert_init_error(rp, "Error", 129)
        self.assertIn("response streaming is not supported", body["errorMessage"])

    def test_ten_thousand_log_lines(self):
        rp = self.start(NODE_FUNCTION, "index.loud")
        post = self.invoke(rp, {}, request_id=REQUEST_ID)
        self.assertEqual(post.json(), 10000)
        lines = rp.wait_stdout(lambda ls: any(l.endswith("\tEND-OF-LOGS") for l in ls))
        recs = [l.split("\t", 3) for l in lines]
        init = [r for r in recs if len(r) == 4 and r[3] == "init log line"]
        self.assertEqual(len(init), 1, lines[:3])
        self.assertEqual(init[0][1:3], ["undefined", "INFO"])
        body = [r for r in recs if len(r) == 4 and r[1] == REQUEST_ID]
        self.assertEqual([r[3] for r in body[:10000]], ["line %d" % i for i in range(10000)])
        self.assertTrue(all(r[2] == "INFO" for r in body[:10000]))
        self.assertRegex(body[0][0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        rest = [(r[2], r[3]) for r in body[10000:]]
        self.assertEqual(rest, [("INFO", "info formatted"), ("WARN", "a warning"),
                                ("ERROR", "an error { k: 1 }"), ("INFO", "multi\rline"),
                                ("INFO", "END-OF-LOGS")])
        rp.wait_stderr(lambda ls: "raw stderr" in ls)

    def test_context_and_environment(self):
        rp = self.start(NODE_FUNCTION, "index.ctx")
        post = self.invoke(rp, {}, request_id=REQUEST_ID, arn=ARN, trace_id=TRACE,
                           client_context=CLIENT_CONTEXT, cognito_identity=COGNITO)
        self.assertEqual(post.kind, "response", rp.diag())
        c = post.json()
        self.assertEqual(c["awsRequestId"], REQUEST_ID)
        self.assertEqual(c["functionName"], "fn")
        self.assertEqual(c["functionVersion"], "$LATEST")
        self.assertEqual(c["memoryLimitInMB"], "256")
        self.assertEqual(c["invokedFunctionArn"], ARN)
        self.assertEqual(c["logGroupName"], "/aws/lambda/fn")
        self.assertTrue(c["logStreamName"].startswith("2026/01/28/[$LATEST]"))
        self.assertGreater(c["remaining"], 0)
        self.assertLessEqual(c["remaining"], 3_600_000)
        self.assertEqual(c["clientContext"], json.loads(CLIENT_CONTEXT))
        self.assertEqual(c["identity"], json.loads(COGNITO))
        self.assertIs(c["waits"], True)
        self.assertEqual(c["trace"], TRACE)
        self.assertEqual(c["env"], {"MY_VAR": "my value", "AWS_REGION": "us-east-1",
                                    "LAMBDA_TASK_ROOT": rp.task_root, "_HANDLER": "index.ctx"})
        self.assertEqual(os.path.realpath(c["cwd"]), os.path.realpath(rp.task_root))
        c = self.invoke(rp, {}).json()
        self.assertIsNone(c["trace"])
        self.assertIsNone(c["clientContext"])
        self.assertIsNone(c["identity"])

    def test_unhandled_rejection_during_invoke(self):
        rp = self.start(NODE_FUNCTION, "index.rejectLater")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error", rp.diag())
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(body["errorMessage"], "Error: nobody catches me")
        self.assertEqual(rp.wait_exit(), 128)

    def test_uncaught_exception_during_invoke(self):
        rp = self.start(NODE_FUNCTION, "index.throwLater")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error", rp.diag())
        body = post.json()
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Error", "thrown from timer"))
        self.assertEqual(rp.wait_exit(), 129)

    def test_never_settled_async_handler(self):
        rp = self.start(NODE_FUNCTION, "index.neverAsync")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "error", rp.diag())
        self.assertEqual(post.json()["errorType"], "Runtime.NodeJsExit")
        self.assertEqual(self.invoke(rp, {}).kind, "error")  # still warm

    def test_callback_never_called(self):
        rp = self.start(NODE_FUNCTION, "index.neverCb")
        post = self.invoke(rp, {})
        self.assertEqual(post.kind, "response", rp.diag())
        self.assertEqual(post.body, b"null")


if __name__ == "__main__":
    unittest.main()
