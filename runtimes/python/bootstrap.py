"""Hearth managed Python runtime (python3.11 / python3.12), standard library only.

Started by Hearth inside the sandbox as

    python3 /var/runtime/python/bootstrap.py

with cwd = the task root and the environment of runtime-api.md section 4
(`_HANDLER`, `AWS_LAMBDA_RUNTIME_API`, `LAMBDA_TASK_ROOT`, `AWS_LAMBDA_FUNCTION_*`, ...).

What it owns: loading the user's handler (`module.function`, `pkg.mod.function`,
`dir/mod.function`), the Runtime API loop (GET next -> call handler -> POST
response or error) over one keep-alive HTTP/1.1 connection, the Lambda context
object, the text log format of the root `logging` logger, and the init-error
protocol (POST /runtime/init/error, then exit 1).

Behaviour follows awslambdaric (the client AWS runs for its managed Python
runtimes): same error types and messages, same error JSON shape, same stdout
error record (`[ERROR] <type>: <message>\\rTraceback ...`, one line).

What it does not do: response streaming, JSON log format
(`AWS_LAMBDA_LOG_FORMAT=JSON` is ignored), the framed telemetry log fd,
SnapStart restore hooks, multi-concurrency mode, the X-Ray error-cause header.
"""

# Start-up cost matters here (it is part of every cold start), so only
# modules that are already loaded by the interpreter's own start-up, or are
# tiny C modules, are imported eagerly: no `socket` (pulls in enum, selectors,
# collections), no `http.client` (email, ssl, ...), no `json`/`re`, no
# `logging`. `logging` is configured when user code first imports it (see
# _LoggingImportHook); `traceback`, `decimal`, `importlib` and `json` are only
# imported on the paths that need them (errors, Decimal results, odd input).
import os
import sys
import time

import _socket

try:
    from _json import encode_basestring as _c_encode_basestring
    from _json import encode_basestring_ascii as _c_encode_basestring_ascii
    from _json import make_encoder as _c_make_encoder
    from _json import make_scanner as _c_make_scanner
except ImportError:  # not CPython: use the json package (slower start-up)
    _c_make_scanner = None

API_PREFIX = "/2018-06-01/runtime"
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # awslambdaric indents trace lines with NO-BREAK SPACE

_GLOBAL_AWS_REQUEST_ID = None


class FaultException(Exception):
    """A runtime-detected failure with a fixed Lambda error type."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# --------------------------------------------------------------------------
# Runtime API client
# --------------------------------------------------------------------------


class RuntimeApiError(Exception):
    pass


class _ProtocolError(Exception):
    """The server's answer was not parseable HTTP/1.1 (or the socket closed)."""


_MAX_HEADER_BYTES = 65536


class _Response(object):
    __slots__ = ["status", "headers", "body", "will_close"]


class RuntimeApiClient:
    """Minimal HTTP/1.1 client for the Runtime API over one keep-alive socket.

    Built on the `_socket` C module because `http.client` costs ~20-50 ms of
    imports at start-up. Supports exactly what the Runtime API needs:
    request bodies with Content-Length (no `Expect`), responses with
    Content-Length, chunked or close-delimited bodies, 1xx answers skipped.

    One connection because the server side is one sandbox's listener and the
    protocol is strictly sequential; reconnects once if the kept-alive socket
    turned out to be dead (e.g. the daemon restarted its listener).
    """

    def __init__(self, address):
        self.address = address
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # "[v6]:port"
        self.host = host
        self.port = port
        self.sock = None
        self.buf = b""

    def _connect(self):
        try:
            port = int(self.port)
        except ValueError:
            raise OSError("bad port in runtime api address {!r}".format(self.address))
        host = self.host
        try:
            # A str host goes through the "idna" codec, whose import (re,
            # stringprep, unicodedata) costs ~10 ms; ASCII bytes do not.
            host = host.encode("ascii")
        except UnicodeEncodeError:
            pass
        last_exc = None
        for family, type_, proto, _, sockaddr in _socket.getaddrinfo(
            host, port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, type_, proto)
            try:
                # No timeout: GET /next is a long poll that may idle while
                # frozen (and user code may have set a global default timeout).
                sock.settimeout(None)
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                last_exc = e
                continue
            try:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            except OSError:
                pass
            return sock
        raise last_exc or OSError("no address for {!r}".format(self.address))

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _ProtocolError("connection closed by the server")
        self.buf += chunk

    def _read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = self.buf[:i]
                self.buf = self.buf[i + 2 :]
                return line
            if len(self.buf) > _MAX_HEADER_BYTES:
                raise _ProtocolError("header line too long")
            self._fill()

    def _read_exact(self, n):
        if len(self.buf) >= n:
            data = self.buf[:n]
            self.buf = self.buf[n:]
            return data
        # Large bodies (up to 6 MB): receive straight into one buffer.
        out = bytearray(n)
        view = memoryview(out)
        have = len(self.buf)
        view[:have] = self.buf
        self.buf = b""
        while have < n:
            got = self.sock.recv_into(view[have:])
            if not got:
                raise _ProtocolError("connection closed in the middle of a body")
            have += got
        return bytes(out)

    def _read_head(self):
        end = self.buf.find(b"\r\n\r\n")
        while end < 0:
            if len(self.buf) > _MAX_HEADER_BYTES:
                raise _ProtocolError("response header too long")
            self._fill()
            end = self.buf.find(b"\r\n\r\n")
        head = self.buf[:end].decode("iso-8859-1")
        self.buf = self.buf[end + 4 :]
        lines = head.split("\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise _ProtocolError("bad status line {!r}".format(lines[0][:100]))
        try:
            status = int(parts[1])
        except ValueError:
            raise _ProtocolError("bad status line {!r}".format(lines[0][:100]))
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _ProtocolError("bad header line {!r}".format(line[:100]))
            # First occurrence wins, as http.client's HTTPMessage.get().
            headers.setdefault(name.strip().lower(), value.strip())
        return parts[0], status, headers

    def _read_response(self, method):
        while True:
            version, status, headers = self._read_head()
            if status >= 200 or status == 101:
                break  # 1xx (e.g. 100 Continue) are informational: skip
        conn = headers.get("connection", "").lower()
        will_close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise _ProtocolError("bad content-length")
            body = self._read_exact(n)
        else:
            # Body delimited by the server closing the connection.
            chunks = [self.buf]
            self.buf = b""
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    break
                chunks.append(chunk)
            body = b"".join(chunks)
            will_close = True
        resp = _Response()
        resp.status, resp.headers, resp.body, resp.will_close = status, headers, body, will_close
        return resp

    def _read_chunked(self):
        chunks = []
        while True:
            line = self._read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _ProtocolError("bad chunk size line")
            if size == 0:
                while self._read_line():  # trailers up to the blank line
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exact(size))
            self._read_line()

    def request(self, method, path, body=None, headers=None):
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = body.encode("utf-8")
        head = "{} {} HTTP/1.1\r\nHost: {}\r\n".format(method, path, self.address)
        for k, v in (headers or {}).items():
            head += "{}: {}\r\n".format(k, v)
        if body is not None:
            head += "Content-Length: {}\r\n".format(len(body))
        data = head.encode("latin-1") + b"\r\n"
        if body:
            data += body
        last_exc = None
        for attempt in range(2):
            fresh = self.sock is None
            try:
                if fresh:
                    self.sock = self._connect()
                self.sock.sendall(data)
                resp = self._read_response(method)
                if resp.will_close:
                    self._close()
                return resp.status, resp.headers, resp.body
            except (_ProtocolError, OSError) as e:
                last_exc = e
                self._close()
                if fresh:
                    # A brand-new connection failed: the server is gone.
                    break
        raise RuntimeApiError(
            "runtime api request {} {} failed: {!r}".format(method, path, last_exc)
        )

    def next_invocation(self):
        """Returns (headers with lower-case names, body bytes)."""
        status, headers, body = self.request("GET", API_PREFIX + "/invocation/next")
        if status != 200:
            raise RuntimeApiError(
                "GET /next returned {}: {!r}".format(status, body[:500])
            )
        return headers, body

    def _post(self, path, body, headers):
        status, _, resp_body = self.request("POST", path, body, headers)
        if status != 202:
            # The daemon already knows what went wrong (e.g. 413); keep serving.
            sys.stderr.write(
                "hearth-runtime: POST {} returned {}: {}\n".format(
                    path, status, resp_body[:500].decode("utf-8", "replace")
                )
            )
        return status

    def post_invocation_result(self, request_id, body, content_type):
        return self._post(
            API_PREFIX + "/invocation/{}/response".format(request_id),
            body,
            {"Content-Type": content_type},
        )

    def post_invocation_error(self, request_id, error_json):
        return self._post(
            API_PREFIX + "/invocation/{}/error".format(request_id),
            error_json,
            {"Content-Type": "application/json"},
        )

    def post_init_error(self, error_result):
        return self._post(
            API_PREFIX + "/init/error",
            to_json(error_result),
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Function-Error-Type": error_result["errorType"],
            },
        )


# --------------------------------------------------------------------------
# Marshalling
# --------------------------------------------------------------------------
#
# The `json` package costs ~10 ms of imports on a clean interpreter (mostly
# `re`, for its whitespace/number regexes). Its actual work is done by the C
# accelerator `_json`, so that is called directly, with the same arguments
# json.JSONEncoder / json.JSONDecoder pass (unchanged from 3.11 to 3.13). Any
# decoding failure falls back to `json.loads` itself, so error messages (and
# the rare inputs the fast path does not take, e.g. UTF-16) are exactly json's.

_JSON_WS = " \t\n\r"
_JSON_CONSTANTS = {
    "-Infinity": float("-inf"),
    "Infinity": float("inf"),
    "NaN": float("nan"),
}


class _DecoderContext(object):
    # The attributes _json.make_scanner reads (json.JSONDecoder's defaults).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _JSON_CONSTANTS.__getitem__
    memo = {}


_SCAN = None


def json_loads(data):
    """json.loads(data) with json's defaults."""
    global _SCAN
    if _c_make_scanner is not None:
        try:
            s = data
            if not isinstance(s, str):
                # json.detect_encoding() picks UTF-8 when the first two bytes
                # are ASCII and not NUL; leave anything else to json.
                if not s or not 0 < s[0] < 0x80 or (len(s) > 1 and s[1] == 0):
                    raise ValueError("not plain UTF-8")
                s = bytes(s).decode("utf-8", "surrogatepass")
            if _SCAN is None:
                _SCAN = _c_make_scanner(_DecoderContext())
            idx = len(s) - len(s.lstrip(_JSON_WS))
            obj, end = _SCAN(s, idx)
            if end != len(s) and s[end:].lstrip(_JSON_WS):
                raise ValueError("extra data")
            return obj
        except Exception:
            pass  # let json itself decide and word the error
    import json

    return json.loads(data)


def _encode_default(obj):
    # boto3/DynamoDB hand out Decimals; awslambdaric (simplejson) writes
    # them as JSON numbers, so do the closest stdlib equivalent. A Decimal
    # can only exist if the decimal module is loaded: import it only then.
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        if obj == obj.to_integral_value():
            return int(obj)
        return float(obj)
    # Same message as json.JSONEncoder.default.
    raise TypeError(
        "Object of type {} is not JSON serializable".format(obj.__class__.__name__)
    )


_ENSURE_ASCII = None


def to_json(obj):
    """json.JSONEncoder(ensure_ascii=...).encode(obj), plus Decimal support."""
    global _ENSURE_ASCII
    if _ENSURE_ASCII is None:
        # awslambdaric emits raw UTF-8 only on python3.12 (ensure_ascii=False).
        _ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"
    if _c_make_scanner is None:
        import json

        return json.dumps(obj, default=_encode_default, ensure_ascii=_ENSURE_ASCII)
    enc = _c_encode_basestring_ascii if _ENSURE_ASCII else _c_encode_basestring
    if isinstance(obj, str):
        return enc(obj)
    # markers={} is check_circular=True; then default, string encoder,
    # indent=None, key/item separators, sort_keys, skipkeys, allow_nan.
    chunks = _c_make_encoder({}, _encode_default, enc, None, ": ", ", ", False, False, True)(
        obj, 0
    )
    return "".join(chunks)


def unmarshal_request(body, content_type):
    # Exact match on purpose: that is what awslambdaric does (spec 2.1).
    if content_type != "application/json":
        return body
    try:
        return json_loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR,
            "Unable to unmarshal input: {}".format(str(e)),
        )


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR,
            "Unable to marshal response: {}".format(str(e)),
        )


# --------------------------------------------------------------------------
# Context object
# --------------------------------------------------------------------------


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return "Client([{}])".format(
            ",".join("{}={}".format(f, getattr(self, f)) for f in self.__slots__)
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom={},env={},client={}])".format(
            self.custom, self.env, self.client
        )


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field) if isinstance(d, dict) else None)
    return obj


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A str, as in awslambdaric (AWS's own client): code written for AWS
        # does int(context.memory_limit_in_mb) and must see the same type.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(
                Client, self.client_context.client
            )

        self.identity = _obj_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get(
                "cognitoIdentityId"
            )
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        epoch_now_in_ms = int(time.time() * 1000)
        delta_ms = self._epoch_deadline_time_in_ms - epoch_now_in_ms
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},"
            "function_name={},memory_limit_in_mb={},function_version={},"
            "invoked_function_arn={},client_context={},identity={}])".format(
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
            )
        )


def _parse_json_header(value, name):
    try:
        return json_loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
        )


def create_lambda_context(headers, invoke_id):
    # headers: the /next answer's headers, names lower-cased.
    client_context_json = headers.get("lambda-runtime-client-context")
    cognito_json = headers.get("lambda-runtime-cognito-identity")
    client_context = None
    if client_context_json:
        client_context = _parse_json_header(client_context_json, "Client Context")
    cognito_identity = None
    if cognito_json:
        cognito_identity = _parse_json_header(cognito_json, "Cognito Identity")
    try:
        deadline = int(headers.get("lambda-runtime-deadline-ms") or 0)
    except ValueError:
        deadline = 0
    return LambdaContext(
        invoke_id,
        client_context,
        cognito_identity,
        deadline,
        headers.get("lambda-runtime-invoked-function-arn"),
        headers.get("lambda-runtime-aws-tenant-id"),
    )


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    import traceback  # error path only: ~10 ms of imports on a clean interpreter

    # Drop the leading runtime frames so the trace starts in user code.
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame.filename:
            return frames[i:]
    return frames


def build_fault_result(exc_info, invoke_id=None):
    import traceback

    etype, value, tb = exc_info
    return make_error(
        str(value),
        etype.__name__,
        traceback.format_list(_user_frames(tb)),
        invoke_id,
    )


def _replace_indent(line, indent_char, new_indent_char):
    n = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * n + line[n:]


def log_error(error_result):
    """Print an error as one stdout record, exactly like awslambdaric's text sink."""
    description = "[ERROR]"
    etype = error_result.get("errorType")
    if etype:
        description += " " + etype
    emsg = error_result.get("errorMessage")
    if emsg:
        if etype:
            description += ":"
        description += " " + emsg
    lines = [description]
    stack = error_result.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
            else:
                for tl in element.splitlines():
                    lines.append(_replace_indent(tl, " ", ERROR_LOG_IDENT))
    # Inner newlines become \r so that a line-based log collector keeps the
    # whole error as one record (CloudWatch shows it that way).
    text = ERROR_LOG_LINE_TERMINATE.join(lines).replace("\n", ERROR_LOG_LINE_TERMINATE)
    sys.stdout.write(text + "\n")


# --------------------------------------------------------------------------
# Handler loading
# --------------------------------------------------------------------------


def _import_module(name):
    """importlib.import_module(name) without importing importlib."""
    if name.startswith("."):
        # Relative name: let importlib raise exactly what it raises.
        import importlib

        return importlib.import_module(name)
    # For an absolute name __import__ runs the same machinery and returns
    # the top-level package; the module itself is then in sys.modules.
    __import__(name)
    return sys.modules[name]


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = _import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )

    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
        )


# --------------------------------------------------------------------------
# Logging and stdio
# --------------------------------------------------------------------------


class Unbuffered(object):
    """Flush after every write so each line reaches the log collector at once."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


_LOGGING_CONFIGURED = False
_LOGGING_HOOK = None


def setup_logging(logging):
    """Give the root logger the AWS text format (awslambdaric does the same)."""
    global _LOGGING_CONFIGURED
    if _LOGGING_CONFIGURED:
        return
    _LOGGING_CONFIGURED = True

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
                if msg.endswith("\n"):
                    msg = msg[:-1]
                # One record per line for the line-based collector (multi-line
                # messages such as logger.exception keep their lines joined by \r).
                sys.stdout.write(msg.replace("\n", "\r") + "\n")
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
            return True

    logging.Formatter.converter = time.gmtime
    logger = logging.getLogger()
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"):
        logger.setLevel({"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))


class _PostImportLoader(object):
    """Wraps logging's loader: runs setup_logging right after it executed."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # Put the real loader back first so that nothing later sees the wrapper.
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        setup_logging(module)

    def __getattr__(self, attr):
        return getattr(self.loader, attr)


class _LoggingImportHook(object):
    """A sys.meta_path finder that configures logging when it is first imported.

    `logging` costs ~14 ms of imports on a clean interpreter and many handlers
    never use it, so it is not imported at start-up. Instead, whenever anything
    (the handler module at import time, a library, or the handler during an
    invoke) first imports `logging`, the root logger gets the AWS format right
    after the module has executed, before the importer can use it. So what
    user code sees is the same as with awslambdaric, which configures the
    root logger before it imports the handler: formatted lines at import time
    and in the handler, `logging.basicConfig()` a no-op, and so on.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        self.remove()
        spec = None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        if getattr(spec.loader, "exec_module", None) is None:
            return spec  # unusual loader: fall back to set-up at first invoke
        spec.loader = _PostImportLoader(spec.loader)
        return spec

    def remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def install_logging_setup():
    """Configure logging now if it is loaded already, else when it is imported."""
    global _LOGGING_HOOK
    if "logging" in sys.modules:
        setup_logging(sys.modules["logging"])
        return
    _LOGGING_HOOK = _LoggingImportHook()
    sys.meta_path.insert(0, _LOGGING_HOOK)


def ensure_logging_setup():
    """Safety net: logging got imported without passing through the hook
    (e.g. another meta_path finder placed before it took the import)."""
    if not _LOGGING_CONFIGURED and "logging" in sys.modules:
        if _LOGGING_HOOK is not None:
            _LOGGING_HOOK.remove()
        setup_logging(sys.modules["logging"])


def setup_sys_path(task_root):
    here = os.path.dirname(os.path.abspath(__file__))
    # The runtime's own directory must not shadow user modules.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # Same order as AWS: task root, then layer paths, then the rest.
    layer_paths = [
        "/opt/python/lib/python{}.{}/site-packages".format(*sys.version_info[:2]),
        "/opt/python",
    ]
    front = [task_root] + [p for p in layer_paths if os.path.isdir(p)]
    sys.path[:] = front + [p for p in sys.path if p not in front]


# --------------------------------------------------------------------------
# Main loop
# --------------------------------------------------------------------------


def update_xray_env(trace_id):
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)


def handle_event_request(client, request_handler, headers, body):
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    error_result = None
    try:
        lambda_context = create_lambda_context(headers, invoke_id)
        event = unmarshal_request(body, headers.get("content-type"))
        response = request_handler(event, lambda_context)
        result, content_type = marshal_response(response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = build_fault_result(sys.exc_info(), invoke_id)

    if error_result is not None:
        log_error(error_result)
        client.post_invocation_error(invoke_id, to_json(error_result))
    else:
        client.post_invocation_result(invoke_id, result, content_type)


def main():
    global _GLOBAL_AWS_REQUEST_ID
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("hearth-runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    handler_name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"

    client = RuntimeApiClient(address)
    setup_sys_path(task_root)

    try:
        install_logging_setup()
        request_handler = get_handler(handler_name)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error_result = build_fault_result(sys.exc_info())
    else:
        error_result = None

    if error_result is not None:
        log_error(error_result)
        try:
            client.post_init_error(error_result)
        except RuntimeApiError as e:
            sys.stderr.write("hearth-runtime: {}\n".format(e))
        sys.exit(1)

    while True:
        try:
            headers, body = client.next_invocation()
        except RuntimeApiError as e:
            sys.stderr.write("hearth-runtime: {}\n".format(e))
            sys.exit(1)
        _GLOBAL_AWS_REQUEST_ID = headers.get("lambda-runtime-aws-request-id")
        update_xray_env(headers.get("lambda-runtime-trace-id"))
        ensure_logging_setup()
        try:
            handle_event_request(client, request_handler, headers, body)
        except RuntimeApiError as e:
            sys.stderr.write("hearth-runtime: {}\n".format(e))
            sys.exit(1)


if __name__ == "__main__":
    main()
