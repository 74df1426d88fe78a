#!/usr/bin/env python3
"""Sandbox create+destroy benchmark: Hearth against crun, runc, bwrap and unshare.

Owns: one interleaved measurement of the wall time of `run /bin/true` under
each contender (round-robin, rotating the starting contender every iteration
so that machine noise hits all of them equally), the OCI bundle that crun and
runc run, the hybrid-cgroup wrapper crun needs on this kind of host, the
statistics and the markdown/JSON report.

Does not: install peers or build Hearth (scripts/bench.sh does), or judge the
results against targets.

Limits: root only; Linux only; Python 3.11 standard library only. Every
contender is started the same way (os.posix_spawn + os.waitpid, stdout to
/dev/null), so the spawn cost of the driver itself is in every row alike.
Everything it creates (bundle temp dir, crun/runc state, cgroups named
hearth-bench-<pid>/...) is removed at the end, also on failure or Ctrl-C.

Usage: bench_sandbox.py sandbox [--runs N] [--warmup N] [--json FILE]
Env:   HEARTH_BIN   path of the hearth binary (default target/release/hearth)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

MEMORY_MB = 128
PIDS_LIMIT = 1024
SBX_ID = 993
# The host paths a sandbox's base root is made of (ARCHITECTURE.md §3).
BASE_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
HYBRID_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
SANITY_TIMEOUT_S = 60
LEAK_NOTE_LIMIT = 20

# OCI runtime-spec defaults (as `runc spec` writes them); Hearth's /proc has
# the same masked and read-only paths.
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]
READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]


def log(msg: str) -> None:
    print(f"bench_sandbox: {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    print(f"bench_sandbox: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- host facts


def cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every cgroup/cgroup2 mount."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) >= 5 and rfields and rfields[0] in ("cgroup", "cgroup2"):
                mnt = fields[4].replace("\\040", " ")
                out.append((mnt, rfields[0], rfields[2] if len(rfields) > 2 else ""))
    return out


def cgroup_mode() -> str:
    """'v2' (unified), 'hybrid' (v1 controllers + empty v2 at unified/) or 'v1'."""
    mounts = {m: t for m, t, _ in cgroup_mounts()}
    if mounts.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    if mounts.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid"
    return "v1"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else f"unavailable (exit {r.returncode})"


# ---------------------------------------------------------------- statistics


def percentile(sorted_vals: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return float("nan")
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def summarize(vals: list[float]) -> dict[str, float]:
    s = sorted(vals)
    if not s:
        return {"n": 0}
    return {
        "n": len(s),
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "mean": statistics.fmean(s),
        "min": s[0],
        "max": s[-1],
    }


# ---------------------------------------------------------------- contenders


@dataclass
class Contender:
    name: str
    cgroup: str  # what resource limits it applies, for the table
    make_argv: Callable[[str, str], list[str]]  # (run id, phase) -> argv
    prepare: Callable[[str], None] | None = None  # run before each spawn, untimed
    after_failure: Callable[[str], None] | None = None
    note: str = ""
    samples_ns: list[int] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    error: str | None = None  # set when the sanity run failed: excluded


class Bench:
    def __init__(self, runs: int, warmup: int) -> None:
        self.runs = runs
        self.warmup = warmup
        self.pid = os.getpid()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"hearth-bench-{self.pid}-"))
        self.mode = cgroup_mode()
        # All cgroups crun/runc create live below this name in each hierarchy.
        self.cg_parent = f"hearth-bench-{self.pid}"
        self.state_crun = self.tmp / "state-crun"
        self.state_runc = self.tmp / "state-runc"
        self.rootfs = self.tmp / "rootfs"
        self.empty = self.tmp / "empty"
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.contenders: list[Contender] = []
        self.memcheck: dict[str, dict] = {}
        self.leaks: dict[str, list[str]] = {}
        self.hearth_bin = os.environ.get("HEARTH_BIN", "target/release/hearth")
        self.timings_measured = self.tmp / "hearth-timings.jsonl"
        self.timings_other = self.tmp / "hearth-timings-warmup.jsonl"
        self.seq = 0
        self.steps: tuple[list[dict], dict[str, dict], list[str]] = ([], {}, [])

    # ------------------------------------------------------------ setup

    def run_id(self, tag: str) -> str:
        self.seq += 1
        return f"hb{self.pid}-{tag}-{self.seq}"

    def build_rootfs(self) -> None:
        """Empty mount points plus host-like symlinks (merged /usr)."""
        self.rootfs.mkdir()
        for p in BASE_PATHS:
            rel = p.lstrip("/")
            if os.path.islink(p):
                os.symlink(os.readlink(p), self.rootfs / rel)
            elif os.path.isdir(p):
                (self.rootfs / rel).mkdir()
        for d in ("proc", "dev", "tmp", "etc", "sys"):
            (self.rootfs / d).mkdir(exist_ok=True)
        (self.rootfs / "etc/passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:{SBX_ID}:{SBX_ID}::/tmp:/usr/sbin/nologin\n"
        )
        (self.rootfs / "etc/group").write_text(f"root:x:0:\nsbx_user1051:x:{SBX_ID}:\n")
        self.empty.write_bytes(b"")

    def oci_config(self, args: list[str], cgroups_path: str) -> dict:
        mounts = [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777", "size=524288k"]},
        ]
        for p in BASE_PATHS:
            if os.path.isdir(p) and not os.path.islink(p):
                mounts.append({"destination": p, "type": "bind", "source": p,
                               "options": ["bind", "ro", "nosuid", "nodev"]})
        limit = MEMORY_MB * 1024 * 1024
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": SBX_ID, "gid": SBX_ID},
                "args": args,
                "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"],
                "cwd": "/",
                "capabilities": {"bounding": [], "effective": [], "inheritable": [],
                                 "permitted": [], "ambient": []},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": True,
            },
            "root": {"path": str(self.rootfs), "readonly": True},
            "hostname": "sandbox",
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": t} for t in
                               ("pid", "mount", "network", "ipc", "uts", "cgroup")],
                "cgroupsPath": cgroups_path,
                "resources": {
                    "devices": [{"allow": False, "access": "rwm"}],
                    # OCI "swap" is memory+swap: equal to the limit means no swap.
                    "memory": {"limit": limit, "swap": limit},
                    "pids": {"limit": PIDS_LIMIT},
                },
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
            },
        }

    def write_config(self, bundle: Path, args: list[str], run_id: str) -> None:
        cfg = self.oci_config(args, f"/{self.cg_parent}/{run_id}")
        tmp = bundle / "config.json.tmp"
        tmp.write_text(json.dumps(cfg))
        os.replace(tmp, bundle / "config.json")

    def hybrid_wrap(self, argv: list[str]) -> list[str]:
        """crun 1.8 refuses hybrid hosts; hide the unified controllers file."""
        if self.mode != "hybrid":
            return argv
        return [
            shutil.which("unshare") or "/usr/bin/unshare", "-m", "--propagation", "private",
            "/bin/sh", "-c", 'mount --bind "$0" ' + HYBRID_CONTROLLERS + ' && exec "$@"',
            str(self.empty), *argv,
        ]

    def setup(self) -> None:
        self.build_rootfs()
        self.state_crun.mkdir()
        self.state_runc.mkdir()
        add = self.contenders.append

        # 1. Hearth.
        hearth = self.hearth_bin
        if not os.path.isabs(hearth):
            hearth = os.path.abspath(hearth)

        def hearth_argv(_rid: str, phase: str) -> list[str]:
            tf = self.timings_measured if phase == "measure" else self.timings_other
            return [hearth, "run", "--memory", str(MEMORY_MB), "--timings-file", str(tf),
                    "--", "/bin/true"]

        add(Contender("hearth", f"memory {MEMORY_MB} MB", hearth_argv))

        # 2./3. crun and runc, each with its own bundle (config rewritten per run
        # for a unique cgroup path; untimed).
        for rt, state in (("crun", self.state_crun), ("runc", self.state_runc)):
            exe = shutil.which(rt)
            bundle = self.tmp / f"bundle-{rt}"
            bundle.mkdir()

            def argv(rid: str, _phase: str, exe=exe, state=state, bundle=bundle, rt=rt) -> list[str]:
                a = [exe or rt, "--root", str(state), "run", "--bundle", str(bundle), rid]
                return self.hybrid_wrap(a) if rt == "crun" else a

            def prep(rid: str, bundle=bundle) -> None:
                self.write_config(bundle, ["/bin/true"], rid)

            def after_fail(rid: str, exe=exe, state=state) -> None:
                if exe:
                    subprocess.run([exe, "--root", str(state), "delete", "-f", rid],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   check=False, timeout=30)

            note = ""
            if rt == "crun" and self.mode == "hybrid":
                note = "includes the hybrid-cgroup wrapper (unshare -m + sh + mount --bind)"
            add(Contender(rt, f"memory {MEMORY_MB} MB, pids {PIDS_LIMIT}", argv,
                          prepare=prep, after_failure=after_fail, note=note))
            if exe is None:
                self.contenders[-1].error = f"{rt}: not found in PATH"

        # crun's wrapper alone, so readers can subtract it.
        if self.mode == "hybrid":
            add(Contender("crun-wrapper", "none (wrapper only)",
                          lambda _rid, _ph: self.hybrid_wrap(["/bin/true"]),
                          note="unshare -m --propagation private sh -c 'mount --bind …; exec /bin/true'"))

        # 4. bwrap, mirroring the host's /usr layout; no cgroup at all.
        bwrap = shutil.which("bwrap")
        b = [bwrap or "bwrap", "--unshare-all", "--die-with-parent", "--cap-drop", "ALL"]
        for p in BASE_PATHS:
            if os.path.islink(p):
                b += ["--symlink", os.readlink(p), p]
            elif os.path.isdir(p):
                b += ["--ro-bind", p, p]
        b += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]
        add(Contender("bwrap", "none (no cgroup)", lambda _rid, _ph: b))
        if bwrap is None:
            self.contenders[-1].error = "bwrap: not found in PATH"

        # 5. The floor: namespaces only.
        unshare = shutil.which("unshare")
        u = [unshare or "unshare", "--fork", "--pid", "--mount", "--net", "--ipc", "--uts", "/bin/true"]
        add(Contender("unshare", "none (namespaces only)", lambda _rid, _ph: u))
        if unshare is None:
            self.contenders[-1].error = "unshare: not found in PATH"

    # ------------------------------------------------------------ running

    def spawn_wait(self, argv: list[str], stderr_path: Path) -> tuple[int, int]:
        """(elapsed ns, wait status) of one run; same method for every contender."""
        actions = [
            (os.POSIX_SPAWN_DUP2, self.devnull, 0),
            (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_OPEN, 2, str(stderr_path),
             os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        ]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        try:
            _, status = os.waitpid(pid, 0)
        except BaseException:
            # Ctrl-C: let the runtime finish (runs are short) so that clean-up
            # does not race a half-created container.
            os.waitpid(pid, 0)
            raise
        t1 = time.perf_counter_ns()
        return t1 - t0, status

    def sanity(self, c: Contender) -> None:
        rid = self.run_id(c.name)
        if c.prepare:
            c.prepare(rid)
        argv = c.make_argv(rid, "sanity")
        if not os.path.exists(argv[0]):
            c.error = f"{argv[0]}: not found"
            return
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=SANITY_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            c.error = f"sanity run timed out after {SANITY_TIMEOUT_S} s: {' '.join(argv)}"
            if c.after_failure:
                c.after_failure(rid)
            return
        except OSError as e:
            c.error = f"sanity run could not start: {e}"
            return
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip()[-600:]
            c.error = f"sanity run exited {r.returncode}: {tail or '(no output)'}"
            if c.after_failure:
                c.after_failure(rid)

    def check_memory_limit(self, c: Contender) -> None:
        """One-off: is the 128 MB limit (and no swap) really applied?

        Reads the limit files of the container's cgroup while it sleeps, then
        checks that allocating 300 MB gets the process killed while 32 MB works.
        """
        # Must live under a path the bundle binds (/usr), not e.g. a pyenv shim.
        exe = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
        res: dict = {}
        sleep_rid = self.run_id(c.name + "-memcheck")
        bundle = self.tmp / f"bundle-{c.name}"
        self.write_config(bundle, ["/bin/sleep", "3"], sleep_rid)
        argv = c.make_argv(sleep_rid, "check")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        found: dict[str, str] = {}
        deadline = time.monotonic() + 5
        seen_at = None
        # The runtime creates the cgroup first and writes the limits a moment
        # later: read them well after the directory appears (sleep runs 3 s).
        while time.monotonic() < deadline:
            if seen_at is None:
                if any((Path(m) / self.cg_parent / sleep_rid).is_dir() for m, _, _ in cgroup_mounts()):
                    seen_at = time.monotonic()
                time.sleep(0.02)
                continue
            if time.monotonic() - seen_at < 1.0:
                time.sleep(0.05)
                continue
            for mnt, fstype, opts in cgroup_mounts():
                d = Path(mnt) / self.cg_parent / sleep_rid
                names = (["memory.max", "memory.swap.max"] if fstype == "cgroup2"
                         else ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
                         if "memory" in opts.split(",") else [])
                for n in names:
                    try:
                        found[n] = (d / n).read_text().strip()
                    except OSError:
                        pass
            break
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        res["cgroup_files"] = found
        want = str(MEMORY_MB * 1024 * 1024)
        limit_ok = found.get("memory.limit_in_bytes", found.get("memory.max")) == want
        swap_ok = (found.get("memory.memsw.limit_in_bytes") == want
                   or found.get("memory.swap.max") == "0")
        if exe:
            for mb, expect_ok in ((32, True), (300, False)):
                rid = self.run_id(c.name + "-memcheck")
                self.write_config(bundle, [exe, "-c", f"b = b'x' * ({mb} << 20)"], rid)
                r = subprocess.run(c.make_argv(rid, "check"), stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=60, check=False)
                res[f"alloc_{mb}mb_exit"] = r.returncode
                if (r.returncode == 0) != expect_ok:
                    limit_ok = False
                if r.returncode != 0 and c.after_failure:
                    c.after_failure(rid)
        res["verified"] = bool(limit_ok and swap_ok)
        if not found:
            res["error"] = (f"no cgroup limit files found under */{self.cg_parent}/{sleep_rid}: "
                            f"{err.strip()[-300:]}")
        self.memcheck[c.name] = res

    def measure(self) -> None:
        live = [c for c in self.contenders if c.error is None]
        errdir = self.tmp / "stderr"
        errdir.mkdir(exist_ok=True)
        errfile = {c.name: errdir / c.name for c in live}
        for c in live:
            c.samples_ns = []
        n = len(live)
        total = self.warmup + self.runs
        gc.disable()
        try:
            for i in range(total):
                phase = "warmup" if i < self.warmup else "measure"
                if i == self.warmup or (i > self.warmup and (i - self.warmup) % 100 == 0):
                    log(f"run {i - self.warmup}/{self.runs}")
                for k in range(n):
                    c = live[(i + k) % n]  # rotate who goes first
                    rid = self.run_id(c.name)
                    if c.prepare:
                        c.prepare(rid)
                    argv = c.make_argv(rid, phase)
                    ns, status = self.spawn_wait(argv, errfile[c.name])
                    ok = os.waitstatus_to_exitcode(status) == 0
                    if ok:
                        if phase == "measure":
                            c.samples_ns.append(ns)
                        continue
                    if phase == "measure":
                        try:
                            msg = errfile[c.name].read_text(errors="replace").strip()[-400:]
                        except OSError:
                            msg = ""
                        c.failures.append({"run": i - self.warmup, "id": rid,
                                           "exit": os.waitstatus_to_exitcode(status),
                                           "elapsed_ns": ns, "stderr": msg})
                    if c.after_failure:
                        c.after_failure(rid)
        finally:
            gc.enable()

    # ------------------------------------------------------------ clean-up

    def leftover_cgroups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for mnt, _, _ in cgroup_mounts():
            parent = Path(mnt) / self.cg_parent
            if parent.is_dir():
                kids = sorted(p.name for p in parent.iterdir() if p.is_dir())
                if kids:
                    out[mnt] = kids
        return out

    def remove_cgroups(self) -> list[str]:
        """rmdir hearth-bench-<pid> (and leftover children) in every hierarchy."""
        problems = []
        for mnt, _, _ in cgroup_mounts():
            parent = Path(mnt) / self.cg_parent
            if not parent.is_dir():
                continue
            # Deepest first; only directories under our own unique parent.
            for dirpath, dirnames, _ in sorted(os.walk(parent), key=lambda t: -t[0].count("/")):
                procs = Path(dirpath) / "cgroup.procs"
                try:
                    if procs.read_text().strip():
                        problems.append(f"{dirpath}: still has processes")
                        continue
                except OSError:
                    pass
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    problems.append(f"{dirpath}: {e}")
        return problems

    def cleanup(self) -> list[str]:
        problems = []
        for rt, state in (("crun", self.state_crun), ("runc", self.state_runc)):
            exe = shutil.which(rt)
            if not exe or not state.is_dir():
                continue
            for entry in state.iterdir():
                if entry.is_dir():
                    problems.append(f"{rt} left state for {entry.name}; deleting")
                    subprocess.run([exe, "--root", str(state), "delete", "-f", entry.name],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   check=False, timeout=30)
        problems += self.remove_cgroups()
        try:
            os.close(self.devnull)
        except OSError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems

    # ------------------------------------------------------------ report

    def hearth_steps(self) -> tuple[list[dict], dict[str, dict], list[str]]:
        rows: list[dict] = []
        bad: list[str] = []
        try:
            text = self.timings_measured.read_text()
        except OSError:
            return rows, {}, ["no timings file written"]
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append(f"line {n}: {e}")
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                bad.append(f"line {n}: not a JSON object")
        keys: list[str] = []
        for r in rows:
            for k, v in r.items():
                if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                    keys.append(k)
        summ = {}
        for k in keys:
            vals = [float(r[k]) for r in rows
                    if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
            summ[k] = summarize(vals)
        return rows, summ, bad

    def report(self, json_path: str | None, cleanup_problems: list[str]) -> None:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        machine = {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "kernel": platform.release(),
            "cgroup_mode": self.mode,
            "date": now,
        }
        versions = {
            "hearth": first_line([self.contenders[0].make_argv("v", "v")[0], "--version"]),
            "crun": first_line(["crun", "--version"]),
            "runc": first_line(["runc", "--version"]),
            "bwrap": first_line(["bwrap", "--version"]),
            "unshare": first_line(["unshare", "--version"]),
        }
        summaries = {c.name: summarize([s / 1e6 for s in c.samples_ns])
                     for c in self.contenders if c.error is None}
        base = summaries.get("hearth", {})

        p = print
        p(f"# Sandbox create+destroy: `run /bin/true`, {MEMORY_MB} MB limit, "
          f"{self.runs} interleaved runs each")
        p()
        p(f"Machine: {machine['nproc']} CPUs, {machine['cpu']}, kernel {machine['kernel']}, "
          f"cgroup {machine['cgroup_mode']}, {machine['date']}  ")
        p("Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()))
        p()
        p("Wall time per run in ms (os.posix_spawn → waitpid, same for every row); "
          "ratio columns are the row's value divided by Hearth's.")
        p()
        p("| contender | cgroup limits | ok/failed | p50 | p90 | p99 | mean | min | max "
          "| p50 ÷ hearth | p99 ÷ hearth |")
        p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in self.contenders:
            if c.error is not None:
                p(f"| {c.name} | {c.cgroup} | FAILED | – | – | – | – | – | – | – | – |")
                continue
            s = summaries[c.name]
            if s.get("n", 0) == 0:
                p(f"| {c.name} | {c.cgroup} | 0/{len(c.failures)} | – | – | – | – | – | – | – | – |")
                continue

            def ratio(key: str) -> str:
                b = base.get(key)
                return f"{s[key] / b:.2f}" if b else "–"

            p(f"| {c.name} | {c.cgroup} | {s['n']}/{len(c.failures)} | {s['p50']:.3f} "
              f"| {s['p90']:.3f} | {s['p99']:.3f} | {s['mean']:.3f} | {s['min']:.3f} "
              f"| {s['max']:.3f} | {ratio('p50')} | {ratio('p99')} |")
        p()
        for c in self.contenders:
            if c.note:
                p(f"- {c.name}: {c.note}")
            if c.error is not None:
                p(f"- {c.name} FAILED its sanity run and was excluded: `{c.error}`")
            if c.failures:
                f0 = c.failures[0]
                p(f"- {c.name}: {len(c.failures)} measured runs failed "
                  f"(first: run {f0['run']}, exit {f0['exit']}: `{f0['stderr'][-200:]}`)")
        for name, m in self.memcheck.items():
            files = ", ".join(f"{k}={v}" for k, v in m.get("cgroup_files", {}).items())
            allocs = ", ".join(f"{k}={v}" for k, v in m.items() if k.startswith("alloc_"))
            status = "verified" if m.get("verified") else "NOT VERIFIED"
            p(f"- {name} memory limit {status}: {files or m.get('error', '')}; {allocs}")
        for mnt, kids in self.leaks.items():
            shown = ", ".join(kids[:LEAK_NOTE_LIMIT])
            p(f"- cgroups left behind by the runtimes under {mnt}/{self.cg_parent} "
              f"({len(kids)}): {shown} — removed by this script")
        for prob in cleanup_problems:
            p(f"- clean-up: {prob}")

        rows, steps, bad = self.steps
        p()
        p(f"## Hearth per step (µs, from --timings-file, {len(rows)} records)")
        p()
        if steps:
            p("| step | n | p50 | p90 | p99 |")
            p("|---|---:|---:|---:|---:|")
            for k, s in steps.items():
                p(f"| {k} | {s['n']} | {s['p50']:.0f} | {s['p90']:.0f} | {s['p99']:.0f} |")
        else:
            p("(no timings records)")
        hearth = next((c for c in self.contenders if c.name == "hearth"), None)
        if hearth and hearth.error is None and len(rows) != len(hearth.samples_ns) + len(hearth.failures):
            p()
            p(f"- note: {len(rows)} timings records for "
              f"{len(hearth.samples_ns) + len(hearth.failures)} measured runs")
        for b in bad[:5]:
            p(f"- unparsable timings record: {b}")

        if json_path:
            doc = {
                "benchmark": "sandbox",
                "memory_mb": MEMORY_MB,
                "runs": self.runs,
                "warmup": self.warmup,
                "machine": machine,
                "versions": versions,
                "contenders": {
                    c.name: {
                        "argv_example": c.make_argv("<id>", "measure"),
                        "cgroup": c.cgroup,
                        "note": c.note,
                        "error": c.error,
                        "samples_ns": c.samples_ns,
                        "failures": c.failures,
                        "summary_ms": summaries.get(c.name),
                    } for c in self.contenders
                },
                "memory_limit_check": self.memcheck,
                "hearth_steps": {"records": rows, "summary_us": steps, "unparsable": bad},
                "cgroups_left_by_runtimes": self.leaks,
                "cleanup_problems": cleanup_problems,
            }
            Path(json_path).write_text(json.dumps(doc, indent=1))
            log(f"wrote {json_path}")

    # ------------------------------------------------------------ main

    def run(self, json_path: str | None) -> None:
        problems: list[str] = []
        try:
            self.setup()
            for c in self.contenders:
                if c.error is None:
                    self.sanity(c)
                log(f"sanity {c.name}: {'ok' if c.error is None else 'FAILED: ' + c.error}")
            for c in self.contenders:
                if c.name in ("crun", "runc") and c.error is None:
                    self.check_memory_limit(c)
                    log(f"memory limit {c.name}: {self.memcheck[c.name]}")
            if not any(c.error is None for c in self.contenders):
                die("every contender failed its sanity run")
            self.measure()
            self.leaks = self.leftover_cgroups()
            self.steps = self.hearth_steps()
        finally:
            problems = self.cleanup()
        self.report(json_path, problems)


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.sh", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("sandbox", help="sandbox create+destroy against crun/runc/bwrap/unshare")
    sp.add_argument("--runs", type=int, default=500, help="measured runs per contender (default 500)")
    sp.add_argument("--warmup", type=int, default=10, help="unmeasured runs first (default 10)")
    sp.add_argument("--json", metavar="FILE", help="write raw samples and summary here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root (crun/runc/hearth need to create namespaces and cgroups)")
    if a.runs < 1 or a.warmup < 0:
        die("--runs must be >= 1 and --warmup >= 0")
    # Ctrl-C / SIGTERM: leave through the finally blocks so clean-up runs.
    # (SIGINT explicitly too: a shell starting us in the background ignores it.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        Bench(a.runs, a.warmup).run(a.json)
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        sys.exit(130)
    except SystemExit as e:
        if e.code == 143:
            log("terminated; cleaned up")
        raise


if __name__ == "__main__":
    main()
