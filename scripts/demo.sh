#!/usr/bin/env bash
# scripts/demo.sh — Hearth's main job with the built-in defaults, end to end: builds
# Hearth, then runs each example function in examples/ (a `provided` shell bootstrap, a
# Python handler, a Node handler) in fresh sandboxes through the Lambda Runtime API, and
# prints each response with its cold and warm invoke latencies.
#
# usage: scripts/demo.sh        (as root, on a Debian/Ubuntu host with Rust)
# Installs what is missing with apt-get: e2fsprogs (mkfs.ext4 for /tmp volumes), curl
# (the shell example), python3 and nodejs (the interpreters the examples run on).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${EUID} -ne 0 ]]; then
    echo "scripts/demo.sh: must run as root (sandboxes need namespaces, cgroups and mounts)" >&2
    exit 1
fi
need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v curl >/dev/null || need+=(curl)
[[ -x /usr/bin/python3 ]] || need+=(python3)
[[ -x /usr/bin/node ]] || need+=(nodejs)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "==> installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "==> building hearth (cargo build --release)"
cargo build --release --quiet --bin hearth
hearth=target/release/hearth

timings=$(mktemp)
trap 'rm -f "${timings}"' EXIT
run() { # NAME RUNTIME HANDLER
    local name=$1 runtime=$2 handler=$3
    : >"${timings}"
    echo
    echo "==> examples/${name} (${runtime}): 1 cold + 4 warm invocations"
    "${hearth}" invoke --local --code "examples/${name}" --runtime "${runtime}" \
        --handler "${handler}" --function-name "example-${name}" \
        --payload '{"name": "Hearth"}' --repeat 5 --timings-file "${timings}"
    /usr/bin/python3 - "${timings}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cold = [r for r in rows if r["kind"] == "cold"]
warm = sorted(r["round_trip_us"] for r in rows if r["kind"] == "warm")
for r in cold:
    print(f"    cold start: {r['round_trip_us'] / 1000:.2f} ms (init {r['init_us'] / 1000:.2f} ms)")
if warm:
    print(f"    warm: median {warm[len(warm) // 2] / 1000:.3f} ms over {len(warm)}")
PY
}
run shell provided.al2023 bootstrap
run python python3.11 lambda_function.lambda_handler
run node nodejs20.x index.handler
