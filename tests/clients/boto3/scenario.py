#!/usr/bin/env python3
"""A boto3 scenario against a running `hearth serve` (tests/daemon.rs starts it).

Usage: scenario.py ENDPOINT_URL EXAMPLES_DIR
Environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the daemon's configured key).
boto3's retries are off, so every answer is the daemon's first. Exits non-zero with the
failing assertion on any mismatch.
"""

import base64
import io
import json
import sys
import zipfile

import boto3
from botocore.config import Config


def zip_dir(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (body, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, body)
    return buf.getvalue()


def main():
    endpoint, examples = sys.argv[1], sys.argv[2]
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )
    py = open(f"{examples}/python/lambda_function.py").read()
    code = zip_dir({"lambda_function.py": (py, 0o644)})
    created = client.create_function(
        FunctionName="hello-py",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": code},
        MemorySize=256,
        # Generous: the v2 leg runs this under an emulated CPU.
        Timeout=60,
    )
    assert created["FunctionName"] == "hello-py", created
    assert created["State"] == "Active", created
    assert created["CodeSize"] == len(code), created
    client.get_waiter("function_active_v2").wait(FunctionName="hello-py")

    got = client.get_function(FunctionName="hello-py")
    assert got["Configuration"]["Runtime"] == "python3.11", got
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert "hello-py" in names, names

    r = client.invoke(FunctionName="hello-py", Payload=json.dumps({"name": "boto3"}), LogType="Tail")
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r
    body = json.loads(r["Payload"].read())
    assert body["message"] == "hello, boto3", body
    log = base64.b64decode(r["LogResult"]).decode()
    assert "START RequestId:" in log and "REPORT RequestId:" in log, log
    assert r["ExecutedVersion"] == "$LATEST", r

    r = client.invoke(FunctionName="hello-py", Payload=b'{"name": "again"}')
    assert json.loads(r["Payload"].read())["message"] == "hello, again"

    assert client.invoke(FunctionName="hello-py", InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName="hello-py", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202

    bad = zip_dir({"lambda_function.py": ("def lambda_handler(e, c):\n    raise ValueError('nope')\n", 0o644)})
    client.create_function(
        FunctionName="fails", Runtime="python3.11", Role="arn:aws:iam::000000000000:role/x",
        Handler="lambda_function.lambda_handler", Code={"ZipFile": bad}, Timeout=60,
    )
    r = client.invoke(FunctionName="fails", Payload=b"{}")
    assert r["FunctionError"] == "Unhandled", r
    err = json.loads(r["Payload"].read())
    assert err["errorType"] == "ValueError", err

    py2 = py.replace("hello,", "bonjour,")
    client.update_function_code(FunctionName="hello-py", ZipFile=zip_dir({"lambda_function.py": (py2, 0o644)}))
    client.get_waiter("function_updated_v2").wait(FunctionName="hello-py")
    r = client.invoke(FunctionName="hello-py", Payload=b'{"name": "x"}')
    assert json.loads(r["Payload"].read())["message"] == "bonjour, x"

    try:
        client.invoke(FunctionName="no-such-function", Payload=b"{}")
        raise AssertionError("invoke of a missing function succeeded")
    except client.exceptions.ResourceNotFoundException:
        pass

    client.delete_function(FunctionName="hello-py")
    client.delete_function(FunctionName="fails")
    try:
        client.get_function(FunctionName="hello-py")
        raise AssertionError("deleted function still found")
    except client.exceptions.ResourceNotFoundException:
        pass
    print("boto3 scenario: ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure
        print(f"boto3 scenario failed: {type(e).__name__}: {e}", file=sys.stderr)
        raise
