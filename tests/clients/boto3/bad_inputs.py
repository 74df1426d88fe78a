#!/usr/bin/env python3
"""Every bad input of spec control-api §6, sent to a running `hearth serve` through boto3
(and raw HTTP where boto3 cannot send it), each answered with the right error class.

Usage: bad_inputs.py ENDPOINT_URL EXAMPLES_DIR
Environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the daemon's configured key).
boto3's retries are off, so every answer is the daemon's first. Each check is printed
before it runs, so a failure names its check.
"""

import http.client
import io
import json
import os
import sys
import urllib.parse
import zipfile

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/lambda"
STEP = ["start"]
CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
RESERVED_MESSAGE = (
    "Lambda was unable to configure your environment variables because the environment "
    "variables you have provided contains reserved keys that are currently not supported "
    "for modification. Reserved keys used in this request: AWS_REGION"
)


def step(name):
    STEP[0] = name
    print(f"step: {name}", flush=True)


def zip_of(name, body, mode=0o644):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o100000 | mode) << 16
        z.writestr(info, body)
    return buf.getvalue()


def expect(code, status, fn, **kw):
    """Runs fn(**kw); it must fail with error code `code` (the modeled class when there
    is one) and HTTP `status`. Returns the error response."""
    try:
        r = fn(**kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (got, got_status) == (code, status), f"expected {code}/{status}, got {got}/{got_status}: {e.response}"
        return e.response
    shown = {k: v for k, v in kw.items() if k not in ("Payload", "Code", "Environment")}
    raise AssertionError(f"{fn.__name__}({shown}) succeeded, expected {code}: {r}")


def raw(endpoint, method, path, body=b"", sign=True, headers=None):
    """One request over plain HTTP (signed like boto3 unless `sign` is False); returns
    (status, headers, body). The socket timeout turns a hang into a failure."""
    url = endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if sign:
        session = boto3.session.Session()
        SigV4Auth(session.get_credentials(), "lambda", "us-east-1").add_auth(req)
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request(method, path, body=body, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    conn.close()
    return out


def main():
    endpoint, examples = sys.argv[1], sys.argv[2]
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG)
    py_zip = zip_of("lambda_function.py", open(f"{examples}/python/lambda_function.py").read())
    base = dict(Runtime="python3.11", Role=ROLE, Handler="lambda_function.lambda_handler",
                Code={"ZipFile": py_zip}, Timeout=60)
    create = client.create_function

    step("reserved environment key AWS_REGION")
    e = expect("InvalidParameterValueException", 400, create, FunctionName="bad-env",
               Environment={"Variables": {"AWS_REGION": "eu-west-1"}}, **base)
    assert e["Error"]["Message"] == RESERVED_MESSAGE, e

    step("environment over 4 KB")
    e = expect("InvalidParameterValueException", 400, create, FunctionName="big-env",
               Environment={"Variables": {"K1": "v" * 4096}}, **base)
    assert "exceeded the 4KB limit" in e["Error"]["Message"], e

    step("MemorySize 99999")
    expect("InvalidParameterValueException", 400, create, FunctionName="big-mem",
           **{**base, "MemorySize": 99999})

    step("Timeout 901")
    expect("InvalidParameterValueException", 400, create, FunctionName="long-timeout",
           **{**base, "Timeout": 901})

    step("unknown runtime")
    expect("InvalidParameterValueException", 400, create, FunctionName="bad-runtime",
           **{**base, "Runtime": "cobol85"})

    step("invalid function name (create and get)")
    expect("InvalidParameterValueException", 400, create, FunctionName="not a name!", **base)
    expect("InvalidParameterValueException", 400, client.get_function, FunctionName="x" * 65)

    step("nothing was created by the refused requests")
    assert client.list_functions()["Functions"] == [], client.list_functions()

    step("create fn, then a duplicate create")
    first = create(FunctionName="fn", **base)
    client.get_waiter("function_active_v2").wait(FunctionName="fn")
    e = expect("ResourceConflictException", 409, create, FunctionName="fn", **base)
    assert "fn" in e["Error"]["Message"], e

    step("stale RevisionId")
    stale = first["RevisionId"]
    now = client.update_function_configuration(FunctionName="fn", Description="changed")
    assert now["RevisionId"] != stale, now
    client.get_waiter("function_updated_v2").wait(FunctionName="fn")
    expect("PreconditionFailedException", 412, client.update_function_configuration,
           FunctionName="fn", Description="again", RevisionId=stale)
    expect("PreconditionFailedException", 412, client.update_function_code,
           FunctionName="fn", ZipFile=py_zip, RevisionId=stale)
    assert client.get_function_configuration(FunctionName="fn")["Description"] == "changed"

    step("missing function: get, invoke, update, delete")
    nf = client.exceptions.ResourceNotFoundException
    for fn, kw in [(client.get_function, {}), (client.invoke, {"Payload": b"{}"}),
                   (client.update_function_configuration, {"Timeout": 5}),
                   (client.delete_function, {})]:
        e = expect("ResourceNotFoundException", 404, fn, FunctionName="missing", **kw)
        assert "Function not found" in e["Error"]["Message"], e
    try:
        client.get_function(FunctionName="missing")
        raise AssertionError("get of a missing function succeeded")
    except nf:  # the modeled class, not only the code
        pass
    expect("ResourceNotFoundException", 404, client.invoke, FunctionName="fn", Qualifier="7", Payload=b"{}")

    step("non-JSON invoke payload")
    expect("InvalidRequestContentException", 400, client.invoke, FunctionName="fn", Payload=b"{not json")

    step("invoke payload over 6 MB")
    big = json.dumps({"pad": "x" * (6 * 1024 * 1024 + 16)}).encode()
    try:
        client.invoke(FunctionName="fn", Payload=big)
        raise AssertionError("oversize invoke succeeded")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code in ("RequestTooLargeException", "RequestEntityTooLargeException"), e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 413, e.response

    step("fn still answers after the refusals")
    r = client.invoke(FunctionName="fn", Payload=b'{"name": "ok"}')
    assert json.loads(r["Payload"].read())["message"] == "hello, ok", r

    step("unknown route over raw signed HTTP: an error JSON, not a hang")
    status, headers, body = raw(endpoint, "GET", "/2015-03-31/no-such-thing")
    assert 400 <= status < 500, (status, headers, body)
    err = json.loads(body)
    assert err.get("Message") or err.get("message"), err
    assert headers.get("x-amzn-errortype", "").endswith("Exception"), headers
    status, headers, body = raw(endpoint, "POST", "/nonsense", b"{}")
    assert 400 <= status < 500 and json.loads(body), (status, body)

    step("unsigned request over raw HTTP")
    status, headers, body = raw(endpoint, "GET", "/2015-03-31/functions/", sign=False)
    assert status == 403 and headers.get("x-amzn-errortype", "").startswith("MissingAuthenticationToken"), (status, headers, body)

    step("wrong secret -> InvalidSignatureException")
    wrong = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                         aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key="not-the-secret")
    for fn, kw in [(wrong.list_functions, {}), (wrong.invoke, {"FunctionName": "fn", "Payload": b"{}"})]:
        expect("InvalidSignatureException", 403, fn, **kw)

    step("unknown access key -> UnrecognizedClientException")
    stranger = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                            aws_access_key_id="AKIDUNKNOWN0000", aws_secret_access_key="whatever")
    e = expect("UnrecognizedClientException", 403, stranger.get_function, FunctionName="fn")
    assert e["Error"]["Message"] == "The security token included in the request is invalid.", e

    step("the refused clients changed nothing")
    client.delete_function(FunctionName="fn")
    assert client.list_functions()["Functions"] == []
    print("bad inputs: ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure
        print(f"bad inputs failed at step '{STEP[0]}': {type(e).__name__}: {e}", file=sys.stderr)
        raise
