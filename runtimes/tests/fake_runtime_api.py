"""A small fake Lambda Runtime API server for testing Hearth's managed runtimes.

Speaks the wire contract of shared/spec/runtime-api.md: HTTP/1.1 with
keep-alive, `GET /2018-06-01/runtime/invocation/next` answers 200 with the
invoke headers and exactly `Content-Type: application/json` (or a scripted
content type), every accepted POST answers 202 `{"status":"OK"}`.

It scripts a queue of events and records everything the runtime posts, plus
which TCP connection each request came on (to check keep-alive use).

Limits: single function, no state machine (a repeated /response is accepted),
no Extensions/Telemetry API, no 413 handling. Test helper only.
"""

import json
import sys
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Post:
    """One request the runtime POSTed."""

    def __init__(self, kind, request_id, headers, body, connection):
        self.kind = kind  # "response" | "error" | "init_error"
        self.request_id = request_id
        self.headers = headers  # dict with lower-case keys
        self.body = body  # bytes
        self.connection = connection

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Post({}, {}, {!r})".format(self.kind, self.request_id, self.body[:300])


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A runtime that exits (process.exit, kill) resets its kept-alive
        # connection; that is expected here, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class FakeRuntimeApi:
    def __init__(self):
        self._events = queue.Queue()
        self._cond = threading.Condition()
        self.posts = []
        self.connections = set()  # client (host, port) pairs seen
        self.next_calls = 0
        self._stopping = False
        # When set, the server silently closes the connection after each
        # accepted POST (no "Connection: close"), so the runtime's kept-alive
        # socket is dead when it next uses it: it has to reconnect.
        self.drop_after_post = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep test output quiet
                pass

            def _reply(self, status, body, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            # trailers until the blank line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                api._saw(self.client_address)
                if self.path != PREFIX + "/invocation/next":
                    self._reply(404, b'{"errorType":"NotFound","errorMessage":"not found"}',
                                {"Content-Type": "application/json"})
                    return
                with api._cond:
                    api.next_calls += 1
                    api._cond.notify_all()
                while True:
                    try:
                        ev = api._events.get(timeout=0.1)
                        break
                    except queue.Empty:
                        if api._stopping:
                            self.close_connection = True
                            return
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": ev["request_id"],
                    "Lambda-Runtime-Deadline-Ms": str(ev["deadline_ms"]),
                    "Lambda-Runtime-Invoked-Function-Arn": ev["arn"],
                    "Content-Type": ev["content_type"],
                }
                if ev.get("trace_id"):
                    headers["Lambda-Runtime-Trace-Id"] = ev["trace_id"]
                if ev.get("client_context") is not None:
                    headers["Lambda-Runtime-Client-Context"] = ev["client_context"]
                if ev.get("cognito_identity") is not None:
                    headers["Lambda-Runtime-Cognito-Identity"] = ev["cognito_identity"]
                self._reply(200, ev["body"], headers)

            def do_POST(self):
                api._saw(self.client_address)
                body = self._read_body()
                path = self.path
                kind = request_id = None
                if path == PREFIX + "/init/error":
                    kind = "init_error"
                elif path.startswith(PREFIX + "/invocation/"):
                    rest = path[len(PREFIX + "/invocation/"):]
                    parts = rest.split("/")
                    if len(parts) == 2 and parts[1] in ("response", "error"):
                        request_id, kind = parts[0], parts[1]
                if kind is None:
                    self._reply(404, b'{"errorType":"NotFound","errorMessage":"not found"}',
                                {"Content-Type": "application/json"})
                    return
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with api._cond:
                    api.posts.append(Post(kind, request_id, hdrs, body, self.client_address))
                    api._cond.notify_all()
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
                if api.drop_after_post:
                    self.close_connection = True

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:{}".format(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- scripting ---------------------------------------------------------

    def add_event(self, payload, request_id=None, content_type="application/json",
                  deadline_ms=None, arn=None, trace_id=None, client_context=None,
                  cognito_identity=None):
        """Queue one invoke; payload is bytes or a JSON-serialisable value."""
        if not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode("utf-8")
        request_id = request_id or str(uuid.uuid4())
        self._events.put({
            "request_id": request_id,
            "body": bytes(payload),
            "content_type": content_type,
            "deadline_ms": deadline_ms if deadline_ms is not None
            else int(time.time() * 1000) + 3_600_000,
            "arn": arn or "arn:aws:lambda:us-east-1:123456789012:function:fn",
            "trace_id": trace_id,
            "client_context": client_context,
            "cognito_identity": cognito_identity,
        })
        return request_id

    # -- observation -------------------------------------------------------

    def _saw(self, client_address):
        with self._cond:
            self.connections.add(client_address)

    def wait_posts(self, n, timeout=60.0, proc=None):
        """Block until at least n posts were recorded; returns them.

        The timeout is only a hang guard. If proc (a Popen) exits first the
        wait stops early so a crash shows up as a clear failure.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.posts) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for {} posts, have {!r}".format(
                        n, self.posts))
                if proc is not None and proc.poll() is not None and len(self.posts) < n:
                    # give a just-finished post a moment to land
                    self._cond.wait(0.2)
                    if len(self.posts) < n:
                        raise AssertionError("runtime exited ({}) with only {!r}".format(
                            proc.returncode, self.posts))
                    break
                self._cond.wait(min(left, 0.2))
            return list(self.posts)

    def wait_next_calls(self, n, timeout=60.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.next_calls < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for {} /next calls".format(n))
                self._cond.wait(min(left, 0.2))
