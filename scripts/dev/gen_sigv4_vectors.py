#!/usr/bin/env python3
"""Generate src/control/sigv4_vectors.json: SigV4-signed Lambda requests made by real botocore.

Client vectors drive a real boto3 Lambda client and capture the prepared request in the
`before-send` hook (exactly what would go on the wire; the send is cancelled), so headers
botocore does not sign (User-Agent, amz-sdk-*, Content-Length) are present too. Raw vectors
sign hand-built `AWSRequest`s with `botocore.auth.SigV4Auth` to cover cases a client never
produces (repeated header, whitespace in values, X-Amz-Content-SHA256 sent).

The clock is fixed by patching `botocore.auth.get_current_datetime`. The `host` header that
urllib3 would add is added to the fixture the way botocore computed it for signing.

Usage: venv/bin/python gen_sigv4_vectors.py > src/control/sigv4_vectors.json
"""

import datetime
import json
import sys
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

FIXED = datetime.datetime(2024, 1, 1, 0, 10, 0)  # 20240101T001000Z
botocore.auth.get_current_datetime = lambda *a, **k: FIXED

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class Captured(Exception):
    pass


def to_vector(name, prepared, region):
    url = urlsplit(prepared.url)
    headers = []
    for k, v in prepared.headers.items():
        headers.append([k, v.decode() if isinstance(v, bytes) else str(v)])
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ["Host", botocore.auth._host_from_url(prepared.url)])
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode()
    elif hasattr(body, "read"):
        body = body.read()
    return {
        "name": name,
        "method": prepared.method,
        "path": url.path,
        "query": url.query,
        "headers": headers,
        "body_hex": bytes(body).hex(),
        "region": region,
        "access_key_id": AKID,
    }


def client_vector(name, op, kwargs, region="us-east-1", endpoint="http://127.0.0.1:9001",
                  token=None):
    client = boto3.client(
        "lambda",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )
    out = {}

    def grab(request, **_):
        out["v"] = to_vector(name, request, region)
        raise Captured()

    client.meta.events.register("before-send.lambda.*", grab)
    try:
        getattr(client, op)(**kwargs)
    except Captured:
        pass
    return out["v"]


def raw_vector(name, method, url, headers, body, region="us-east-1"):
    req = AWSRequest(method=method, url=url, data=body)
    for k, v in headers:
        # add_header keeps repeated names (item assignment would replace).
        req.headers.add_header(k, v)
    botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "lambda", region).add_auth(req)
    # Not req.prepare(): preparing copies the headers into a dict and loses repeats.
    return to_vector(name, req, region)


def main():
    zip_b64_source = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive
    vectors = [
        client_vector(
            "invoke_arn_qualifier_latest",
            "invoke",
            dict(
                FunctionName="arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                Qualifier="$LATEST",
                InvocationType="RequestResponse",
                LogType="Tail",
                ClientContext="eyJjdXN0b20iOnsiYSI6MX19",
                Payload=b'{"hello": "world"}',
            ),
        ),
        client_vector(
            "invoke_name_colon_alias",
            "invoke",
            dict(FunctionName="my-fn:prod", Payload=b"\x00\xff\xfe binary \r\n"),
        ),
        client_vector("invoke_empty_event", "invoke",
                      dict(FunctionName="my-fn", InvocationType="Event")),
        client_vector(
            "create_function",
            "create_function",
            dict(
                FunctionName="my-fn",
                Runtime="python3.12",
                Role="arn:aws:iam::123456789012:role/lambda-role",
                Handler="app.handler",
                Code={"ZipFile": zip_b64_source},
                Environment={"Variables": {"GREETING": "héllo wörld"}},
                MemorySize=256,
                Timeout=30,
            ),
        ),
        client_vector(
            "list_functions_query",
            "list_functions",
            dict(MasterRegion="ALL", FunctionVersion="ALL", MaxItems=10,
                 Marker="a b/c+d=e~f*g$"),
        ),
        client_vector("get_function_session_token", "get_function",
                      dict(FunctionName="my-fn", Qualifier="1"),
                      token="FQoGZXIvYXdzEXAMPLETOKEN//////////wEaDJ+aVeryLongToken="),
        client_vector("delete_function_default_port_eu", "delete_function",
                      dict(FunctionName="my-fn"), region="eu-west-1",
                      endpoint="http://localhost"),
        client_vector("update_configuration_put", "update_function_configuration",
                      dict(FunctionName="my-fn", Description="  spaced   out  ", Timeout=5)),
        client_vector("get_account_settings", "get_account_settings", {}),
        raw_vector(
            "raw_repeated_header_whitespace",
            "POST",
            "http://127.0.0.1:9001/2015-03-31/functions/my-fn/invocations?b=2&a=1&a=0",
            [("X-Amz-Meta-Test", "  a   b\tc  "), ("X-Amz-Meta-Test", "second"),
             ("Content-Type", "application/json")],
            b'{"k": 1}',
        ),
        raw_vector(
            "raw_content_sha256_header",
            "POST",
            "http://127.0.0.1:9001/2015-03-31/functions/my-fn/invocations",
            [("X-Amz-Content-SHA256",
              "5f2a1d5bd9d0e8a8c5e1a0a87e8e34d6c8a2d0d5b3a0e8e4c1b0a7e0b5c1d2e3")],
            b"{}",
        ),
        raw_vector(
            "raw_dot_segments_and_slashes",
            "GET",
            "http://127.0.0.1:9001/2015-03-31//functions/./x/../my-fn",
            [],
            b"",
        ),
    ]
    # The content-sha256 vector must carry the real hash of its body to be acceptable.
    import hashlib
    good = hashlib.sha256(b"{}").hexdigest()
    vectors[-2] = raw_vector(
        "raw_content_sha256_header", "POST",
        "http://127.0.0.1:9001/2015-03-31/functions/my-fn/invocations",
        [("X-Amz-Content-SHA256", good)], b"{}")
    doc = {
        "_about": "SigV4 requests signed by real botocore; generated by gen_sigv4_vectors.py "
                  "(Hearth dev tree) with botocore " + botocore.__version__ + ".",
        "secret_access_key": SECRET,
        "now": "20240101T001000Z",
        "vectors": vectors,
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
