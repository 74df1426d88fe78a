#!/usr/bin/env python3
"""scripts/bench_pool.py -- the warm pool benchmark of issue 5, driven by `hearth bench`.

Owns: a private daemon (`hearth serve` on temporary state/run dirs with a config file: a
large memory budget, account concurrency 1000 and `blank_pool_size`), the echo functions
(the static `hearth-echo` as a `provided.al2023` bootstrap, a Python 3.11 and a Node 20
handler that return the event), the sequence of `hearth bench` runs below, one summary
table, and stopping the daemon (SIGTERM) and removing its dirs even on failure.

Runs (defaults): for each of provided, python3.11 and nodejs20.x at 1769 MB (one CPU, so
CPU quotas do not hide start-up): cold via spawn, cold via a blank sandbox, warm (one
client), --runs each; warm throughput of the static echo with 1, 8 and 64 keep-alive
clients for --duration s; a burst of --burst first invocations of a fresh static echo at
128 MB; --density idle instances of the static echo at 128 MB, with another 128 MB echo's
cold and warm latency at that density. Every `hearth bench` JSON file goes to --json-dir,
with summary.json beside them.

Does not: build anything or check for leftovers (scripts/bench.sh pool does both), judge
the figures against targets, or run against an existing daemon.
Env: HEARTH_BIN, HEARTH_ECHO (set by bench.sh); HEARTH_BLANK_POOL_SIZE (default 4; empty:
the key is left out of the config, for daemons that do not know it yet).
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
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::000000000000:role/hearth-bench"
PYTHON_HANDLER = "def handler(event, context):\n    return event\n"
NODE_HANDLER = "export const handler = async (event) => event;\n"


class Stop(Exception):
    """SIGTERM/SIGHUP/SIGINT arrived: unwind so the daemon is stopped and dirs removed."""


def on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def unix_request(sock: Path, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on the daemon's socket (Connection: close)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(300)
    try:
        s.connect(str(sock))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: hearth\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest


def zip_of(files: dict[str, tuple[bytes, int]]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return base64.b64encode(buf.getvalue()).decode()


def create(sock: Path, name: str, runtime: str, handler: str, code_b64: str,
           memory: int, timeout: int) -> None:
    body = json.dumps({"FunctionName": name, "Runtime": runtime, "Role": ROLE,
                       "Handler": handler, "Code": {"ZipFile": code_b64},
                       "MemorySize": memory, "Timeout": timeout}).encode()
    status, out = unix_request(sock, "POST", "/2015-03-31/functions", body)
    if status != 201:
        raise RuntimeError(f"CreateFunction {name}: {status} {out[:500]!r}")


class Daemon:
    """A private `hearth serve`; stop() is idempotent."""

    def __init__(self, hearth: Path, tmp: Path, blank_pool: str):
        self.tmp = tmp
        cfg = tmp / "config.toml"
        lines = ["memory_budget_mb = 400000", "account_concurrency = 1000"]
        if blank_pool:
            lines.append(f"blank_pool_size = {int(blank_pool)}")
        cfg.write_text("\n".join(lines) + "\n")
        self.log_path = tmp / "daemon.log"
        self.log = open(self.log_path, "w")
        # The config file is the daemon's only source of settings: no HEARTH_* variable of
        # this shell (HEARTH_BLANK_POOL_SIZE is also the daemon's) may override it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.proc = subprocess.Popen(
            [str(hearth), "serve", "--config", str(cfg), "--state-dir", str(tmp / "state"),
             "--run-dir", str(tmp / "run")],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        self.sock = tmp / "run/hearth.sock"
        deadline = time.monotonic() + 60
        while not self.sock.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth serve exited {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"hearth serve did not start in 60 s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                # Draining tears down every instance: a thousand take a while.
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                print("bench_pool: daemon still running 300 s after SIGTERM; killing it",
                      file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.proc.returncode not in (0, None):
            print(f"bench_pool: daemon exited {self.proc.returncode}:\n{self.tail()}",
                  file=sys.stderr)


def bench(hearth: Path, sock: Path, json_dir: Path, tag: str, args: list[str]) -> dict:
    """Runs `hearth bench ARGS --json json_dir/tag.json`; returns the document."""
    out = json_dir / f"{tag}.json"
    cmd = [str(hearth), "bench", *args, "--socket", str(sock), "--json", str(out)]
    print(f"bench_pool: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    sys.stderr.write(r.stdout)
    if r.stderr:
        sys.stderr.write(r.stderr)
    if not out.exists():
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode} without results")
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="cold and warm runs per workload and path (500)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per warm throughput run (10)")
    ap.add_argument("--burst", type=int, default=200, help="simultaneous first invocations (200)")
    ap.add_argument("--density", type=int, default=1000, help="idle instances (1000)")
    ap.add_argument("--only", default="cold,throughput,burst,density",
                    help="comma-separated parts to run (default all: cold,throughput,burst,density)")
    ap.add_argument("--json-dir", type=Path, help="where the JSON files go (default target/bench-pool-<UTC time>)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_pool: must run as root (the daemon creates sandboxes)")
    parts = set(args.only.split(","))
    unknown = parts - {"cold", "throughput", "burst", "density"}
    if unknown:
        sys.exit(f"bench_pool: unknown part(s) {sorted(unknown)}")
    hearth = Path(os.environ.get("HEARTH_BIN", ROOT / "target/release/hearth")).resolve()
    echo = Path(os.environ.get("HEARTH_ECHO", ROOT / "target/release/hearth-echo")).resolve()
    for p in (hearth, echo):
        if not p.exists():
            sys.exit(f"bench_pool: {p} is missing (scripts/bench.sh pool builds it)")
    json_dir = args.json_dir or ROOT / "target" / time.strftime("bench-pool-%Y%m%dT%H%M%SZ", time.gmtime())
    json_dir.mkdir(parents=True, exist_ok=True)
    json_dir = json_dir.resolve()

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-pool-"))
    os.chmod(tmp, 0o755)
    daemon = None
    rows: list[tuple[str, dict]] = []
    try:
        daemon = Daemon(hearth, tmp, os.environ.get("HEARTH_BLANK_POOL_SIZE", "4"))
        sock = daemon.sock
        echo_zip = zip_of({"bootstrap": (echo.read_bytes(), 0o755)})
        fns = {
            "provided (static echo)": ("echo-provided", "provided.al2023", "bootstrap", echo_zip),
            "python3.11": ("echo-python", "python3.11", "app.handler",
                           zip_of({"app.py": (PYTHON_HANDLER.encode(), 0o644)})),
            "nodejs20.x": ("echo-node", "nodejs20.x", "index.handler",
                           zip_of({"index.mjs": (NODE_HANDLER.encode(), 0o644)})),
        }
        for name, runtime, handler, code in fns.values():
            create(sock, name, runtime, handler, code, 1769, 30)
        create(sock, "echo-burst", "provided.al2023", "bootstrap", echo_zip, 128, 30)
        create(sock, "echo-density", "provided.al2023", "bootstrap", echo_zip, 128, 900)
        create(sock, "echo-other", "provided.al2023", "bootstrap", echo_zip, 128, 30)
        runs = str(args.runs)

        if "cold" in parts:
            for label, (fn, *_rest) in fns.items():
                for start in ("spawn", "blank"):
                    doc = bench(hearth, sock, json_dir, f"cold-{start}-{fn}",
                                ["cold", "--function", fn, "--start", start, "--runs", runs, "--warmup", "5"])
                    rows.append((f"{label}, cold via {start}", doc))
                doc = bench(hearth, sock, json_dir, f"warm-{fn}",
                            ["warm", "--function", fn, "--clients", "1", "--runs", runs, "--warmup", "10"])
                rows.append((f"{label}, warm (1 client)", doc))
        if "throughput" in parts:
            for clients in (1, 8, 64):
                doc = bench(hearth, sock, json_dir, f"throughput-{clients}",
                            ["warm", "--function", "echo-provided", "--clients", str(clients),
                             "--duration", str(args.duration), "--warmup", "20"])
                rows.append((f"static echo, warm throughput, {clients} clients", doc))
        if "burst" in parts:
            doc = bench(hearth, sock, json_dir, "burst",
                        ["burst", "--function", "echo-burst", "--count", str(args.burst)])
            rows.append((f"static echo 128 MB, burst of {args.burst} (first invocations)", doc))
        if "density" in parts:
            doc = bench(hearth, sock, json_dir, "density",
                        ["density", "--function", "echo-density", "--count", str(args.density),
                         "--daemon-pid", str(daemon.proc.pid), "--other", "echo-other",
                         "--other-runs", "50"])
            rows.append((f"static echo 128 MB, {args.density} simultaneous (density fill)", doc))
    except (Stop, RuntimeError, OSError) as e:
        print(f"bench_pool: {e}", file=sys.stderr)
        if daemon:
            print(f"--- daemon log (tail) ---\n{daemon.tail()}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if daemon:
                daemon.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    print_summary(rows, json_dir)
    return 0


def print_summary(rows: list[tuple[str, dict]], json_dir: Path) -> None:
    if not rows:
        return
    m = rows[0][1]["machine"]
    print(f"\nhearth warm pool benchmark, {rows[0][1]['started_at']}; {m['cpus']} CPUs ({m['model']}), "
          f"{m['mem_total_mb']} MB, kernel {m['kernel']}")
    head = f"{'workload':<58} {'ok':>6} {'err':>4} {'thr':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'inv/s':>8}  starts"
    print(head)
    print("-" * len(head))
    for label, d in rows:
        lat = d.get("latency_ms") or {}
        f = lambda k: f"{lat[k]:>8.3f}" if k in lat else f"{'-':>8}"  # noqa: E731
        kinds = ", ".join(f"{k} {v}" for k, v in d.get("start_kinds", {}).items())
        print(f"{label:<58} {d['ok']:>6} {d['errors']:>4} {d['throttles']:>4} {f('p50')} {f('p90')} {f('p99')} "
              f"{d['throughput_per_s']:>8.0f}  {kinds}")
        if d.get("burst"):
            print(f"{'  all answered after (ms)':<58} {d['burst']['all_answered_ms']:>8.3f}")
        den = d.get("density")
        if den:
            print(f"  idle instances {den['idle_instances']} (asked {den['requested']}): daemon RSS "
                  f"{den['daemon_rss_kb_per_instance']:.1f} kB/instance, host {den['host_kb_per_instance']:.1f} kB/instance")
            for what in ("cold", "warm"):
                s = den.get(f"other_{what}_ms")
                if s:
                    print(f"  another 128 MB echo at this density, {what}: p50 {s['p50']:.3f} ms, "
                          f"p90 {s['p90']:.3f} ms, p99 {s['p99']:.3f} ms (n {s['n']})")
    summary = {"schema": "hearth-bench-pool/1", "rows": [{"workload": k, **v} for k, v in rows]}
    (json_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nJSON: {json_dir}/")


if __name__ == "__main__":
    sys.exit(main())
