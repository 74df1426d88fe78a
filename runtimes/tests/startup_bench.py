"""Cold-start benchmark of Hearth's managed runtimes (not a unit test).

Run from the repository root:

    python3 runtimes/tests/startup_bench.py [--runs 50] [--python PY] [--node NODE]
                                            [--py-bootstrap FILE] [--node-bootstrap FILE]

For each case it starts a fresh process `runs` times and prints the median
(p50), p10 and p90 of:

* wall: from just before spawning the process until the bare interpreter exits
  (`python3 -c pass`, `node -e 0`), or until a bootstrap's first
  `GET /2018-06-01/runtime/invocation/next` request has fully arrived at a
  plain listening socket here (no HTTP server thread involved, so the time
  is not skewed by the GIL of this process);
* first response (bootstraps only): until the POST of the response to the
  event the /next request was answered with has fully arrived: the whole
  cold start as a caller sees it, minus Hearth's own work;
* cpu: user + system CPU time of the child (bootstraps are killed as soon as
  their first response arrived; they are blocked in recv() at that point).

The handler is a one-line echo module without imports in a temp task root,
so the figures are the runtime's own start-up cost. The `--py-bootstrap` /
`--node-bootstrap` options allow comparing another version of a bootstrap.

Limits: numbers are only comparable on the same host under the same load;
a busy machine widens p90 much more than p50. The wall time includes the
spawn (fork/exec) cost, the same for every case.
"""

import argparse
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RUNTIMES_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEXT_REQUEST = b"GET /2018-06-01/runtime/invocation/next "


def _env(task_root, address, handler):
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": task_root,
        "_HANDLER": handler,
        "AWS_LAMBDA_RUNTIME_API": address,
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "LAMBDA_TASK_ROOT": task_root,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }


def _cpu(ru):
    return ru.ru_utime + ru.ru_stime


def run_plain(cmd):
    """Spawn cmd, wait for it to exit; returns (wall seconds, cpu seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("{} exited {}".format(cmd, proc.returncode))
    return wall, None, _cpu(ru)


def _read_request(conn, deadline, what):
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").lower()
            n = 0
            for line in head.split("\r\n")[1:]:
                if line.startswith("content-length:"):
                    n = int(line.split(":", 1)[1])
            if len(buf) >= end + 4 + n:
                return buf
        left = deadline - time.perf_counter()
        ready, _, _ = select.select([conn], [], [], max(left, 0))
        if not ready:
            raise RuntimeError("no complete {} request".format(what))
        chunk = conn.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before {}: {!r}".format(what, buf))
        buf += chunk


EVENT = b'{"hello": "world", "n": [1, 2.5, null, true]}'


def _next_answer():
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json\r\n"
        "Lambda-Runtime-Aws-Request-Id: 8f5ba4b7-4b4f-4b9b-9a3c-0123456789ab\r\n"
        "Lambda-Runtime-Deadline-Ms: {}\r\n"
        "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:fn\r\n"
        "Content-Length: {}\r\n\r\n"
    ).format(int(time.time() * 1000) + 60000, len(EVENT))
    return head.encode("latin-1") + EVENT


# Floors: the interpreter starts, connects and sends a bare GET /next (no
# HTTP library, no handler), then answers nothing. What a bootstrap could do
# at best; unlike `-c pass` / `-e 0` it does not include interpreter exit.
PY_FLOOR = (
    "import _socket, os\n"
    "h, _, p = os.environ['AWS_LAMBDA_RUNTIME_API'].rpartition(':')\n"
    "s = _socket.socket(); s.connect((h, int(p)))\n"
    "s.sendall(b'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\n\\r\\n')\n"
    "s.recv(1)\n"
)
NODE_FLOOR_CJS = (
    "const [h, p] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');"
    "require('node:net').connect(+p, h, function () {"
    "this.write('GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\n\\r\\n'); });"
)
NODE_FLOOR_ESM = "import net from 'node:net';\n" + NODE_FLOOR_CJS.replace("require('node:net')", "net")


def run_until_next(cmd, task_root, handler, timeout=30.0, floor=False):
    """Spawn a bootstrap; returns (wall to first /next, wall to first response, cpu)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    address = "127.0.0.1:{}".format(lsock.getsockname()[1])
    env = _env(task_root, address, handler)
    conn = None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=task_root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    try:
        deadline = t0 + timeout
        ready, _, _ = select.select([lsock], [], [], timeout)
        if not ready:
            raise RuntimeError("{}: no connection".format(cmd))
        conn, _ = lsock.accept()
        buf = _read_request(conn, deadline, "/next")
        wall = time.perf_counter() - t0
        if not buf.startswith(NEXT_REQUEST):
            raise RuntimeError("{}: unexpected first request {!r}".format(cmd, buf[:200]))
        if floor:
            return wall, None, _cpu_after_kill(proc, conn, lsock)
        conn.sendall(_next_answer())
        buf = _read_request(conn, deadline, "response")
        wall_response = time.perf_counter() - t0
        if not buf.startswith(b"POST ") or b"/response " not in buf.split(b"\r\n", 1)[0]:
            raise RuntimeError("{}: unexpected second request {!r}".format(cmd, buf[:300]))
    finally:
        cpu = _cpu_after_kill(proc, conn, lsock)
    return wall, wall_response, cpu


def _cpu_after_kill(proc, conn, lsock):
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)  # our own child, by pid
        _, _, ru = os.wait4(proc.pid, 0)
        proc.returncode = -9
        proc.cpu = _cpu(ru)
    if conn is not None:
        conn.close()
    lsock.close()
    return proc.cpu


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--python-flag", action="append", default=[],
                    help="extra interpreter flag for every python case, e.g. -S to leave out "
                         "site-packages .pth files of this host")
    ap.add_argument("--node", default=shutil.which("node"))
    ap.add_argument("--py-bootstrap", default=os.path.join(RUNTIMES_DIR, "python", "bootstrap.py"))
    ap.add_argument("--node-bootstrap",
                    default=os.path.join(RUNTIMES_DIR, "nodejs", "bootstrap.mjs"))
    args = ap.parse_args()

    load_start = os.getloadavg()[0]
    task_root = tempfile.mkdtemp(prefix="hearth-bench-")
    try:
        with open(os.path.join(task_root, "lambda_function.py"), "w") as f:
            f.write("def handler(event, context):\n    return event\n")
        with open(os.path.join(task_root, "index.js"), "w") as f:
            f.write("exports.handler = async (event) => event;\n")
        floor_mjs = os.path.join(task_root, "floor.mjs")
        with open(floor_mjs, "w") as f:
            f.write(NODE_FLOOR_ESM)

        py = [args.python] + args.python_flag
        cases = [
            ("python3 -c pass", lambda: run_plain(py + ["-c", "pass"])),
            ("python3 floor -> 1st /next", lambda: run_until_next(
                py + ["-c", PY_FLOOR], task_root, "x.y", floor=True)),
            ("python bootstrap -> 1st /next", lambda: run_until_next(
                py + [args.py_bootstrap], task_root, "lambda_function.handler")),
        ]
        if args.node:
            cases += [
                ("node -e 0", lambda: run_plain([args.node, "-e", "0"])),
                ("node -e floor -> 1st /next", lambda: run_until_next(
                    [args.node, "-e", NODE_FLOOR_CJS], task_root, "x.y", floor=True)),
                ("node floor.mjs -> 1st /next", lambda: run_until_next(
                    [args.node, floor_mjs], task_root, "x.y", floor=True)),
                ("node bootstrap -> 1st /next", lambda: run_until_next(
                    [args.node, args.node_bootstrap], task_root, "index.handler")),
            ]
        results = {name: ([], [], []) for name, _ in cases}
        # Interleave the cases so that load changes on the host hit all alike.
        for _ in range(args.runs):
            for name, fn in cases:
                wall, wall_response, cpu = fn()
                results[name][0].append(wall * 1000)
                if wall_response is not None:
                    results[name][1].append(wall_response * 1000)
                results[name][2].append(cpu * 1000)
        print("{} runs each; milliseconds; load average at start {:.2f}".format(
            args.runs, load_start))
        print("{:34} {:>7} {:>7} {:>7} {:>11} {:>8}".format(
            "case", "p50", "p10", "p90", "1st resp p50", "cpu p50"))
        for name, _ in cases:
            walls, responses, cpus = results[name]
            print("{:34} {:7.1f} {:7.1f} {:7.1f} {:>11} {:8.1f}".format(
                name, statistics.median(walls), _pct(walls, 10), _pct(walls, 90),
                "{:.1f}".format(statistics.median(responses)) if responses else "-",
                statistics.median(cpus)))
    finally:
        shutil.rmtree(task_root, ignore_errors=True)


if __name__ == "__main__":
    main()
