#!/usr/bin/env python3
"""A boto3 scenario against a running `hearth serve` (tests/daemon.rs starts it).

Usage: scenario.py ENDPOINT_URL EXAMPLES_DIR
Environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the daemon's configured key).
boto3's retries are off, so every answer is the daemon's first. Each step is printed
before it runs, so a failure names its step. No timed assertions: the same scenario runs
under an emulated CPU where a cold start takes seconds.
"""

import base64
import io
import json
import sys
import zipfile

import boto3
from botocore.config import Config

ROLE = "arn:aws:iam::000000000000:role/lambda"
STEP = ["start"]


def step(name):
    STEP[0] = name
    print(f"step: {name}", flush=True)


def zip_dir(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (body, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, body)
    return buf.getvalue()


def payload(r):
    return json.loads(r["Payload"].read())


def expect_error(cls, fn, **kw):
    """Runs fn(**kw); it must raise `cls`. Returns the error response."""
    try:
        r = fn(**kw)
    except cls as e:
        return e.response
    raise AssertionError(f"{fn.__name__}({kw}) succeeded, expected {cls.__name__}: {r}")


# A handler that reports which code version answers, an environment variable and the
# configured timeout (the remaining time can only be at most the timeout).
VERSIONED = """import os

def lambda_handler(event, context):
    return {"code": "%s", "greeting": os.environ.get("GREETING"),
            "remaining_ms": context.get_remaining_time_in_millis()}
"""


def main():
    endpoint, examples = sys.argv[1], sys.argv[2]
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )
    py = open(f"{examples}/python/lambda_function.py").read()
    py_zip = zip_dir({"lambda_function.py": (py, 0o644)})

    step("create examples/python (python3.11)")
    created = client.create_function(
        FunctionName="hello-py",
        Runtime="python3.11",
        Role=ROLE,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": py_zip},
        MemorySize=256,
        # Generous: the v2 leg runs this under an emulated CPU.
        Timeout=60,
    )
    assert created["FunctionName"] == "hello-py", created
    assert created["State"] in ("Pending", "Active"), created
    assert created["CodeSize"] == len(py_zip), created

    step("create examples/shell (provided.al2023, bootstrap 0755)")
    sh = open(f"{examples}/shell/bootstrap", "rb").read()
    client.create_function(
        FunctionName="hello-sh", Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
        Code={"ZipFile": zip_dir({"bootstrap": (sh, 0o755)})}, Timeout=60,
    )

    step("create examples/node (nodejs20.x)")
    node = open(f"{examples}/node/index.mjs", "rb").read()
    client.create_function(
        FunctionName="hello-node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": zip_dir({"index.mjs": (node, 0o644)})}, Timeout=60,
    )

    for name in ("hello-py", "hello-sh", "hello-node"):
        step(f"wait for {name} Active (function_active_v2)")
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    step("get hello-py")
    got = client.get_function(FunctionName="hello-py")
    assert got["Configuration"]["Runtime"] == "python3.11", got
    assert got["Configuration"]["Timeout"] == 60, got
    assert got["Configuration"]["State"] == "Active", got

    step("invoke hello-py (RequestResponse, Tail)")
    r = client.invoke(FunctionName="hello-py", Payload=json.dumps({"name": "boto3"}), LogType="Tail")
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r
    body = payload(r)
    assert body["message"] == "hello, boto3", body
    log = base64.b64decode(r["LogResult"]).decode()
    assert "START RequestId:" in log and "REPORT RequestId:" in log, log
    assert "python handler: request" in log, log
    assert r["ExecutedVersion"] == "$LATEST", r

    step("invoke hello-py again (warm)")
    r = client.invoke(FunctionName="hello-py", Payload=b'{"name": "again"}')
    assert payload(r)["message"] == "hello, again"

    step("invoke hello-py DryRun and Event")
    assert client.invoke(FunctionName="hello-py", InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName="hello-py", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202

    step("invoke hello-sh")
    r = client.invoke(FunctionName="hello-sh", Payload=b'{"a": 1}', LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    assert payload(r) == {"hello": {"a": 1}}, r
    assert "shell bootstrap handling" in base64.b64decode(r["LogResult"]).decode(), r

    step("invoke hello-node")
    r = client.invoke(FunctionName="hello-node", Payload=b'{"name": "node"}')
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    body = payload(r)
    assert body["message"] == "hello, node" and body["node"].startswith("v"), body

    step("function error is reported as Unhandled")
    bad = zip_dir({"lambda_function.py": ("def lambda_handler(e, c):\n    raise ValueError('nope')\n", 0o644)})
    client.create_function(
        FunctionName="fails", Runtime="python3.11", Role=ROLE,
        Handler="lambda_function.lambda_handler", Code={"ZipFile": bad}, Timeout=60,
    )
    r = client.invoke(FunctionName="fails", Payload=b"{}")
    assert r["FunctionError"] == "Unhandled", r
    err = payload(r)
    assert err["errorType"] == "ValueError", err

    step("create 60 more functions for pagination")
    many = [f"page-{i:02}" for i in range(60)]
    for name in many:
        client.create_function(
            FunctionName=name, Runtime="python3.11", Role=ROLE,
            Handler="lambda_function.lambda_handler", Code={"ZipFile": py_zip}, Timeout=60,
        )
    expected = set(many) | {"hello-py", "hello-sh", "hello-node", "fails"}

    step("list_functions paginator, PageSize 25 (several pages)")
    pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 25}))
    seen = [f["FunctionName"] for p in pages for f in p["Functions"]]
    assert len(pages) >= 3, [len(p["Functions"]) for p in pages]
    assert all(len(p["Functions"]) <= 25 for p in pages), [len(p["Functions"]) for p in pages]
    assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
    assert set(seen) == expected, set(seen) ^ expected

    step("list_functions without PageSize (AWS returns at most 50 per page)")
    pages = list(client.get_paginator("list_functions").paginate())
    assert all(len(p["Functions"]) <= 50 for p in pages), [len(p["Functions"]) for p in pages]
    assert len(pages) >= 2, [len(p["Functions"]) for p in pages]
    assert {f["FunctionName"] for p in pages for f in p["Functions"]} == expected

    step("list_functions paginator, MaxItems 30 then resume from NextToken")
    first = client.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 7, "MaxItems": 30}).build_full_result()
    assert len(first["Functions"]) == 30, len(first["Functions"])
    assert "NextToken" in first, first.keys()
    rest = client.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 20, "StartingToken": first["NextToken"]}).build_full_result()
    both = [f["FunctionName"] for f in first["Functions"] + rest["Functions"]]
    assert len(both) == len(set(both)) and set(both) == expected, sorted(both)

    step("delete the pagination functions")
    for name in many:
        client.delete_function(FunctionName=name)

    step("update code of hello-py and see the change")
    py2 = py.replace("hello,", "bonjour,")
    client.update_function_code(FunctionName="hello-py", ZipFile=zip_dir({"lambda_function.py": (py2, 0o644)}))
    client.get_waiter("function_updated_v2").wait(FunctionName="hello-py")
    r = client.invoke(FunctionName="hello-py", Payload=b'{"name": "x"}')
    assert payload(r)["message"] == "bonjour, x"

    step("create versioned (code one)")
    client.create_function(
        FunctionName="versioned", Runtime="python3.11", Role=ROLE,
        Handler="lambda_function.lambda_handler", Timeout=60,
        Code={"ZipFile": zip_dir({"lambda_function.py": (VERSIONED % "one", 0o644)})},
    )
    client.get_waiter("function_active_v2").wait(FunctionName="versioned")
    body = payload(client.invoke(FunctionName="versioned", Payload=b"{}"))
    assert body["code"] == "one" and body["greeting"] is None, body

    step("update configuration: Environment and Timeout, visible to the function")
    u = client.update_function_configuration(
        FunctionName="versioned", Timeout=45, Environment={"Variables": {"GREETING": "salut"}})
    assert u["Timeout"] == 45, u
    client.get_waiter("function_updated_v2").wait(FunctionName="versioned")
    c = client.get_function_configuration(FunctionName="versioned")
    assert c["Timeout"] == 45 and c["Environment"]["Variables"] == {"GREETING": "salut"}, c
    body = payload(client.invoke(FunctionName="versioned", Payload=b"{}"))
    assert body["greeting"] == "salut", body
    assert 0 < body["remaining_ms"] <= 45000, body

    step("publish version 1")
    v1 = client.publish_version(FunctionName="versioned")
    assert v1["Version"] == "1", v1
    assert v1["FunctionArn"].endswith(":versioned:1"), v1

    step("update code (code two) and publish version 2")
    client.update_function_code(
        FunctionName="versioned", ZipFile=zip_dir({"lambda_function.py": (VERSIONED % "two", 0o644)}))
    client.get_waiter("function_updated_v2").wait(FunctionName="versioned")
    v2 = client.publish_version(FunctionName="versioned")
    assert v2["Version"] == "2", v2
    versions = [v["Version"] for v in client.list_versions_by_function(FunctionName="versioned")["Versions"]]
    assert versions == ["$LATEST", "1", "2"], versions

    step("invoke versions 1 and 2 by qualifier")
    r = client.invoke(FunctionName="versioned", Qualifier="1", Payload=b"{}")
    assert r["ExecutedVersion"] == "1" and payload(r)["code"] == "one", r
    r = client.invoke(FunctionName="versioned", Qualifier="2", Payload=b"{}")
    assert r["ExecutedVersion"] == "2" and payload(r)["code"] == "two", r

    step("alias live -> 1 with 50% to version 2")
    a = client.create_alias(
        FunctionName="versioned", Name="live", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert a["AliasArn"].endswith(":versioned:live"), a
    assert a["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.5}, a
    got = client.get_alias(FunctionName="versioned", Name="live")
    assert got["FunctionVersion"] == "1", got

    step("invoke alias live 40 times: both versions answer")
    answered = {}
    for _ in range(40):
        r = client.invoke(FunctionName="versioned", Qualifier="live", Payload=b"{}")
        assert r["StatusCode"] == 200 and "FunctionError" not in r, r
        code = payload(r)["code"]
        assert (r["ExecutedVersion"], code) in (("1", "one"), ("2", "two")), (r, code)
        answered[code] = answered.get(code, 0) + 1
    assert set(answered) == {"one", "two"}, f"only {answered} answered through the weighted alias"
    print(f"  weighted alias answers: {answered}")

    step("concurrency put/get/delete")
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="hello-py")
    p = client.put_function_concurrency(FunctionName="hello-py", ReservedConcurrentExecutions=5)
    assert p["ReservedConcurrentExecutions"] == 5, p
    g = client.get_function_concurrency(FunctionName="hello-py")
    assert g["ReservedConcurrentExecutions"] == 5, g
    assert client.get_function(FunctionName="hello-py")["Concurrency"]["ReservedConcurrentExecutions"] == 5
    assert payload(client.invoke(FunctionName="hello-py", Payload=b'{"name": "c"}'))["message"] == "bonjour, c"
    client.delete_function_concurrency(FunctionName="hello-py")
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="hello-py")

    step("concurrency 0 throttles every invoke")
    client.put_function_concurrency(FunctionName="hello-py", ReservedConcurrentExecutions=0)
    e = expect_error(client.exceptions.TooManyRequestsException, client.invoke,
                     FunctionName="hello-py", Payload=b"{}")
    assert e["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", e
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 429, e
    client.delete_function_concurrency(FunctionName="hello-py")
    assert payload(client.invoke(FunctionName="hello-py", Payload=b'{"name": "d"}'))["message"] == "bonjour, d"

    step("invoke a missing function")
    expect_error(client.exceptions.ResourceNotFoundException, client.invoke,
                 FunctionName="no-such-function", Payload=b"{}")

    step("delete everything, then ResourceNotFoundException")
    for name in ("hello-py", "hello-sh", "hello-node", "fails", "versioned"):
        client.delete_function(FunctionName=name)
        expect_error(client.exceptions.ResourceNotFoundException, client.get_function, FunctionName=name)
    expect_error(client.exceptions.ResourceNotFoundException, client.invoke,
                 FunctionName="versioned", Qualifier="live", Payload=b"{}")
    assert client.list_functions()["Functions"] == []
    print("boto3 scenario: ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure
        print(f"boto3 scenario failed at step '{STEP[0]}': {type(e).__name__}: {e}", file=sys.stderr)
        raise
