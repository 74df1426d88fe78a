#!/usr/bin/env bash
# scripts/demo.sh — Hearth's main job with the built-in defaults, end to end: builds
# Hearth, starts the daemon (`hearth serve`: /var/lib/hearth, /run/hearth/hearth.sock),
# deploys the example functions in examples/ (a `provided` shell bootstrap, a Python
# handler, a Node handler) with `hearth create-function`, invokes each twice — the first
# a cold start, the second warm — printing the responses and the latencies, then stops
# the daemon (SIGTERM: it removes every sandbox) and deletes nothing it did not create.
#
# usage: scripts/demo.sh        (as root, on a Debian/Ubuntu host with Rust)
# Installs what is missing with apt-get: e2fsprogs (mkfs.ext4 for /tmp volumes), curl
# (the shell example), python3 and nodejs (the examples' interpreters), zip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${EUID} -ne 0 ]]; then
    echo "scripts/demo.sh: must run as root (sandboxes need namespaces, cgroups and mounts)" >&2
    exit 1
fi
need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v curl >/dev/null || need+=(curl)
command -v zip >/dev/null || need+=(zip)
[[ -x /usr/bin/python3 ]] || need+=(python3)
[[ -x /usr/bin/node ]] || need+=(nodejs)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "==> installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "==> building hearth (cargo build --release)"
cargo build --release --quiet --bin hearth
hearth=$PWD/target/release/hearth

work=$(mktemp -d)
log=${work}/daemon.log
daemon=""
cleanup() {
    if [[ -n ${daemon} ]] && kill -0 "${daemon}" 2>/dev/null; then
        kill -TERM "${daemon}"
        wait "${daemon}" || true
    fi
    rm -rf "${work}"
}
trap cleanup EXIT

echo "==> starting the daemon: hearth serve (log: ${log})"
"${hearth}" serve >"${log}" 2>&1 &
daemon=$!
for _ in $(seq 300); do
    [[ -S /run/hearth/hearth.sock ]] && break
    kill -0 "${daemon}" 2>/dev/null || { cat "${log}"; exit 1; }
    sleep 0.1
done

ms() { echo $(( ($2 - $1) / 1000000 )); }
deploy_and_invoke() { # NAME RUNTIME HANDLER
    local name=$1 runtime=$2 handler=$3 fn="example-$1" zip="${work}/$1.zip" t0 t1 t2
    (cd "examples/${name}" && zip -q -X "${zip}" ./*)
    echo
    echo "==> ${fn}: ${runtime} (examples/${name})"
    "${hearth}" delete-function --function-name "${fn}" >/dev/null 2>&1 || true
    "${hearth}" create-function --function-name "${fn}" --runtime "${runtime}" \
        --handler "${handler}" --zip-file "fileb://${zip}" --timeout 30 >/dev/null
    t0=$(date +%s%N)
    "${hearth}" invoke --function-name "${fn}" --payload '{"name": "Hearth"}' "${work}/cold.json" >/dev/null
    t1=$(date +%s%N)
    "${hearth}" invoke --function-name "${fn}" --payload '{"name": "again"}' "${work}/warm.json" >/dev/null
    t2=$(date +%s%N)
    echo "    response: $(cat "${work}/cold.json")"
    echo "    cold invoke: $(ms "${t0}" "${t1}") ms, warm invoke: $(ms "${t1}" "${t2}") ms (each including the hearth client's own start)"
}
deploy_and_invoke shell provided.al2023 bootstrap
deploy_and_invoke python python3.11 lambda_function.lambda_handler
deploy_and_invoke node nodejs20.x index.handler

echo
echo "==> the functions (hearth list-functions); their logs: hearth logs example-python"
"${hearth}" list-functions
echo
echo "==> stopping the daemon (SIGTERM drains and removes every sandbox)"
