#!/usr/bin/env python3
"""scripts/bench_invoke.py -- cold and warm invoke latency of `hearth invoke --local`.

Owns: the echo functions (a static `provided` bootstrap, a Python 3.11 and a Node 20
handler), running them cold (a fresh sandbox per invocation: create -> bootstrap init ->
handler -> response, teardown excluded) and warm (further invocations on the same
instance), and the host floor in the same run (`python3 -c pass`, `node -e 0`), then a
table of percentiles and optional JSON.

Method: Hearth records each invocation's round trip in-process (--timings-file), so the
figures exclude `hearth`'s own process start. Cold runs of the three workloads are
interleaved in chunks, with the host-floor runs between them, so machine noise is spread
over all. Memory is 1769 MB (one full CPU) by default, so that CPU quotas do not hide the
interpreters' start-up cost.

Does not: start a daemon (there is none yet) or measure through the control API.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PYTHON_HANDLER = "def handler(event, context):\n    return event\n"
NODE_HANDLER = "export const handler = async (event) => event;\n"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def summary(values_us: list[float]) -> dict:
    ms = [v / 1000 for v in values_us]
    return {
        "n": len(ms),
        "p50_ms": pct(ms, 50),
        "p90_ms": pct(ms, 90),
        "p99_ms": pct(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def make_functions(tmp: Path, echo_bin: Path) -> dict[str, tuple[Path, str, str]]:
    fns = {}
    d = tmp / "provided"
    d.mkdir()
    shutil.copy(echo_bin, d / "bootstrap")
    os.chmod(d / "bootstrap", 0o755)
    fns["provided (static echo)"] = (d, "provided.al2023", "bootstrap")
    d = tmp / "python"
    d.mkdir()
    (d / "app.py").write_text(PYTHON_HANDLER)
    fns["python3.11"] = (d, "python3.11", "app.handler")
    d = tmp / "node"
    d.mkdir()
    (d / "index.mjs").write_text(NODE_HANDLER)
    fns["nodejs20.x"] = (d, "nodejs20.x", "index.handler")
    for p in [tmp, *tmp.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() or p.name == "bootstrap" else 0o644)
    return fns


def hearth_runs(hearth: Path, fn: tuple[Path, str, str], n: int, cold: bool,
                memory: int, timings: Path) -> None:
    code, runtime, handler = fn
    cmd = [str(hearth), "invoke", "--local", "--quiet", "--code", str(code),
           "--runtime", runtime, "--handler", handler, "--memory", str(memory),
           "--timeout", "30", "--repeat", str(n), "--timings-file", str(timings),
           "--function-name", "hearth-bench"]
    if cold:
        cmd.append("--cold")
    out = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_invoke: {' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")


def read_timings(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def host_floor(cmd: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="cold and warm runs per workload (default 500)")
    ap.add_argument("--chunk", type=int, default=50, help="cold runs per interleaved chunk (default 50)")
    ap.add_argument("--memory", type=int, default=1769, help="function memory in MB (default 1769 = 1 CPU)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    hearth = Path(os.environ.get("HEARTH_BIN", ROOT / "target/release/hearth"))
    echo = Path(os.environ.get("HEARTH_ECHO", ROOT / "target/release/hearth-echo"))
    for p in (hearth, echo):
        if not p.exists():
            sys.exit(f"bench_invoke: {p} is missing (cargo build --release)")
    if os.geteuid() != 0:
        sys.exit("bench_invoke: must run as root")

    results: dict = {"machine": machine(), "memory_mb": args.memory, "runs": args.runs, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as t:
        tmp = Path(t)
        os.chmod(tmp, 0o755)
        (tmp / "fns").mkdir()
        fns = make_functions(tmp / "fns", echo)
        cold_files = {k: tmp / f"cold-{i}.jsonl" for i, k in enumerate(fns)}
        warm_files = {k: tmp / f"warm-{i}.jsonl" for i, k in enumerate(fns)}
        floors: dict[str, list[float]] = {"python3 -c pass (host)": [], "node -e 0 (host)": []}
        done = 0
        while done < args.runs:
            n = min(args.chunk, args.runs - done)
            for k, fn in fns.items():
                hearth_runs(hearth, fn, n, True, args.memory, cold_files[k])
            floors["python3 -c pass (host)"] += host_floor(["/usr/bin/python3", "-c", "pass"], n)
            floors["node -e 0 (host)"] += host_floor(["/usr/bin/node", "-e", "0"], n)
            done += n
            print(f"bench_invoke: {done}/{args.runs} cold rounds", file=sys.stderr)
        for k, fn in fns.items():
            hearth_runs(hearth, fn, args.runs + 1, False, args.memory, warm_files[k])
        for k in fns:
            cold = read_timings(cold_files[k])
            warm = [r for r in read_timings(warm_files[k]) if r["kind"] == "warm"]
            results["rows"][f"{k} cold"] = summary([r["round_trip_us"] for r in cold])
            results["rows"][f"{k} cold: init phase"] = summary([r["init_us"] for r in cold])
            results["rows"][f"{k} warm"] = summary([r["round_trip_us"] for r in warm])
            bad = [r for r in cold + warm if not r["ok"]]
            if bad:
                sys.exit(f"bench_invoke: {len(bad)} {k} invocations failed")
        for k, v in floors.items():
            results["rows"][k] = summary(v)

    print(f"\nhearth invoke --local, {args.memory} MB, {args.runs} runs each; {results['machine']}")
    print(f"{'workload':<42} {'n':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for k, s in results["rows"].items():
        print(f"{k:<42} {s['n']:>5} {s['p50_ms']:>9.3f} {s['p90_ms']:>9.3f} {s['p99_ms']:>9.3f} {s['max_ms']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPUs ({model}), kernel {os.uname().release}"


if __name__ == "__main__":
    sys.exit(main())
