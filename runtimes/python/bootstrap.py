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

import decimal
import http.client
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

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


class RuntimeApiClient:
    """Runtime API client over a single keep-alive connection.

    One connection because the server side is one sandbox's listener and the
    protocol is strictly sequential; reconnects once if the kept-alive socket
    turned out to be dead (e.g. the daemon restarted its listener).
    """

    def __init__(self, address):
        # HTTPConnection parses "host:port" (and "[v6]:port") itself.
        self.address = address
        self.conn = None

    def _connect(self):
        # No timeout: GET /next is a long poll that may idle while frozen.
        conn = http.client.HTTPConnection(self.address)
        conn.connect()
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return conn

    def _close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = body.encode("utf-8")
        last_exc = None
        for attempt in range(2):
            fresh = self.conn is None
            try:
                if fresh:
                    self.conn = self._connect()
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._close()
                return resp.status, resp.headers, data
            except (http.client.HTTPException, OSError) as e:
                last_exc = e
                self._close()
                if fresh:
                    # A brand-new connection failed: the server is gone.
                    break
        raise RuntimeApiError(
            "runtime api request {} {} failed: {!r}".format(method, path, last_exc)
        )

    def next_invocation(self):
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


class _Encoder(json.JSONEncoder):
    def default(self, obj):
        # boto3/DynamoDB hand out Decimals; awslambdaric (simplejson) writes
        # them as JSON numbers, so do the closest stdlib equivalent.
        if isinstance(obj, decimal.Decimal):
            if obj.is_nan():
                return float("nan")
            if obj == obj.to_integral_value():
                return int(obj)
            return float(obj)
        return super().default(obj)


def _make_encoder():
    # awslambdaric emits raw UTF-8 only on python3.12 (ensure_ascii=False).
    if os.environ.get("AWS_EXECUTION_ENV") == "AWS_Lambda_python3.12":
        return _Encoder(ensure_ascii=False)
    return _Encoder()


_ENCODER = None


def to_json(obj):
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = _make_encoder()
    return _ENCODER.encode(obj)


def unmarshal_request(body, content_type):
    # Exact match on purpose: that is what awslambdaric does (spec 2.1).
    if content_type != "application/json":
        return body
    try:
        return json.loads(body)
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
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
        )


def create_lambda_context(headers, invoke_id):
    client_context_json = headers.get("Lambda-Runtime-Client-Context")
    cognito_json = headers.get("Lambda-Runtime-Cognito-Identity")
    client_context = None
    if client_context_json:
        client_context = _parse_json_header(client_context_json, "Client Context")
    cognito_identity = None
    if cognito_json:
        cognito_identity = _parse_json_header(cognito_json, "Cognito Identity")
    try:
        deadline = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
    except ValueError:
        deadline = 0
    return LambdaContext(
        invoke_id,
        client_context,
        cognito_identity,
        deadline,
        headers.get("Lambda-Runtime-Invoked-Function-Arn"),
        headers.get("Lambda-Runtime-Aws-Tenant-Id"),
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
    # Drop the leading runtime frames so the trace starts in user code.
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame.filename:
            return frames[i:]
    return frames


def build_fault_result(exc_info, invoke_id=None):
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
        module = importlib.import_module(modname.replace("/", "."))
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


def setup_logging():
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
    invoke_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
    error_result = None
    try:
        lambda_context = create_lambda_context(headers, invoke_id)
        event = unmarshal_request(body, headers.get("Content-Type"))
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
        setup_logging()
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
        _GLOBAL_AWS_REQUEST_ID = headers.get("Lambda-Runtime-Aws-Request-Id")
        update_xray_env(headers.get("Lambda-Runtime-Trace-Id"))
        try:
            handle_event_request(client, request_handler, headers, body)
        except RuntimeApiError as e:
            sys.stderr.write("hearth-runtime: {}\n".format(e))
            sys.exit(1)


if __name__ == "__main__":
    main()
