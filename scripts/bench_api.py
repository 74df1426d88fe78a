#!/usr/bin/env python3
"""scripts/bench_api.py -- the control API of `hearth serve`, timed.

Owns: starting a private daemon (temporary state/run dirs, a loopback TCP port with a
throwaway access key), then timing CreateFunction (N functions), ListFunctions over all
of them (following NextMarker), and a warm Invoke round trip of a static echo function
both through the Unix socket (raw HTTP/1.1, keep-alive) and through SigV4-signed TCP
(boto3, retries off). Prints p50/p99 per operation; --json writes them.

Does not: measure cold starts (scripts/bench.sh invoke does), or run against an existing
daemon. Needs root, target/release/hearth, the static hearth-echo, and boto3 (a venv).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "AKIDBENCH", "bench-secret"


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))] if s else float("nan")


def summary(us):
    ms = [v / 1000 for v in us]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99),
            "mean_ms": statistics.fmean(ms) if ms else float("nan")}


class Unix:
    """A keep-alive HTTP/1.1 connection to the daemon's socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(path))
        self.buf = b""

    def request(self, method, path, body=b""):
        self.s.sendall(f"{method} {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            rest += self.s.recv(65536)
        self.buf = rest[length:]
        return int(head.split(b" ")[1]), rest[:length]


def echo_zip(echo: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (0o100755) << 16
        z.writestr(info, echo.read_bytes())
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    hearth = Path(os.environ.get("HEARTH_BIN", ROOT / "target/release/hearth"))
    echo = Path(os.environ["HEARTH_ECHO"])
    import boto3
    from botocore.config import Config

    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-api-"))
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    env = dict(os.environ, HEARTH_ACCESS_KEY_ID=KEY, HEARTH_SECRET_ACCESS_KEY=SECRET)
    log = open(tmp / "daemon.log", "w")
    daemon = subprocess.Popen([str(hearth), "serve", "--state-dir", str(tmp / "state"),
                               "--run-dir", str(tmp / "run"), "--listen", f"127.0.0.1:{port}"],
                              env=env, stdout=log, stderr=log)
    rows = {}
    try:
        sock = tmp / "run/hearth.sock"
        for _ in range(600):
            if sock.exists():
                break
            time.sleep(0.05)
        conn = Unix(sock)
        zip_b64 = base64.b64encode(echo_zip(echo)).decode()
        create_us = []
        for i in range(args.functions):
            body = json.dumps({"FunctionName": f"bench-{i:04d}", "Runtime": "provided.al2023",
                               "Role": "arn:aws:iam::000000000000:role/x", "Handler": "bootstrap",
                               "Code": {"ZipFile": zip_b64}}).encode()
            t = time.perf_counter_ns()
            status, out = conn.request("POST", "/2015-03-31/functions", body)
            create_us.append((time.perf_counter_ns() - t) / 1000)
            assert status == 201, out
        rows[f"CreateFunction (unix, {args.functions} functions)"] = summary(create_us)

        list_us = []
        for _ in range(20):
            t = time.perf_counter_ns()
            marker, seen = None, 0
            while True:
                q = "?MaxItems=50" + (f"&Marker={marker}" if marker else "")
                status, out = conn.request("GET", "/2015-03-31/functions/" + q)
                page = json.loads(out)
                seen += len(page["Functions"])
                marker = page.get("NextMarker")
                if not marker:
                    break
            list_us.append((time.perf_counter_ns() - t) / 1000)
            assert seen == args.functions, seen
        rows[f"ListFunctions, all {args.functions} (unix, paginated)"] = summary(list_us)

        inv = "/2015-03-31/functions/bench-0000/invocations"
        status, out = conn.request("POST", inv, b'{"warm": "up"}')
        assert status == 200, out
        unix_us = []
        for _ in range(args.runs):
            t = time.perf_counter_ns()
            status, out = conn.request("POST", inv, b'{"k": 1}')
            unix_us.append((time.perf_counter_ns() - t) / 1000)
            assert status == 200 and out == b'{"k": 1}', out
        rows["Invoke, warm echo (unix socket, raw HTTP)"] = summary(unix_us)

        client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                              config=Config(retries={"max_attempts": 1}))
        client.invoke(FunctionName="bench-0000", Payload=b"{}")
        tcp_us = []
        for _ in range(args.runs):
            t = time.perf_counter_ns()
            r = client.invoke(FunctionName="bench-0000", Payload=b'{"k": 1}')
            r["Payload"].read()
            tcp_us.append((time.perf_counter_ns() - t) / 1000)
        rows["Invoke, warm echo (TCP + SigV4, boto3 incl. its own signing)"] = summary(tcp_us)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nhearth serve control API, {os.cpu_count()} CPUs, kernel {os.uname().release}")
    print(f"{'operation':<64} {'n':>5} {'p50 ms':>9} {'p99 ms':>9}")
    for k, s in rows.items():
        print(f"{k:<64} {s['n']:>5} {s['p50_ms']:>9.3f} {s['p99_ms']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
