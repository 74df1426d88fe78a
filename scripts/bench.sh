#!/usr/bin/env bash
# scripts/bench.sh — Hearth's benchmarks against peer sandboxes.
#
# Owns: making sure the peers (crun, runc, bwrap, unshare) are installed and
# the hearth binary is built, then handing over to the Python driver.
# Does not: measure anything itself (scripts/bench_sandbox.py does).
# Limits: root only (namespaces, cgroups, apt-get); Debian/Ubuntu hosts for the
# automatic peer install. A peer that cannot be installed is reported as failed
# by the driver, not silently dropped.
#
# usage: scripts/bench.sh sandbox [--runs N] [--warmup N] [--json FILE]
#        scripts/bench.sh invoke [--runs N] [--memory MB] [--json FILE]
#        scripts/bench.sh api [--functions N] [--runs N] [--json FILE]
#        scripts/bench.sh pool [--runs N] [--json-dir DIR] [--duration S] [--burst N]
#                              [--density N] [--only PARTS]
#        scripts/bench.sh cold [--runs N] [--dir DIR]
# env:   HEARTH_BIN  hearth binary (default target/release/hearth; built with
#                    `cargo build --release` when that default is missing)
#        PYTHON      Python 3.11+ to run the driver (default /usr/bin/python3)
#        HEARTH_BLANK_POOL_SIZE  pool: blank_pool_size of the private daemon (default 4;
#                    empty leaves the key out, for a daemon that does not know it)
set -euo pipefail

die() {
    echo "scripts/bench.sh: error: $*" >&2
    exit 1
}
log() {
    echo "scripts/bench.sh: $*" >&2
}
usage() {
    cat >&2 <<'EOF'
usage: scripts/bench.sh sandbox [--runs N] [--warmup N] [--json FILE]
  Sandbox create+destroy of `run /bin/true` (128 MB limit): hearth against
  crun, runc, bwrap and unshare, interleaved, >= 500 runs by default. Root only.
usage: scripts/bench.sh invoke [--runs N] [--memory MB] [--json FILE]
  Cold and warm `hearth invoke --local` of echo functions (static provided
  bootstrap, python3.11, nodejs20.x) beside `python3 -c pass` and `node -e 0`
  on the host, 500 runs each by default. Root only.
usage: scripts/bench.sh api [--functions N] [--runs N] [--json FILE]
  A private `hearth serve`: CreateFunction x1000, ListFunctions over all of
  them, warm Invoke through the Unix socket and through SigV4-signed TCP
  (boto3, from a venv made in target/venv). Root only.
usage: scripts/bench.sh pool [--runs N] [--json-dir DIR] [--duration S] [--burst N]
                             [--density N] [--only cold,throughput,burst,density]
  The warm pool (issue 5), measured with `hearth bench` against a private daemon:
  cold via spawn vs cold via a blank sandbox vs warm for static echo, Python and
  Node (500 runs each by default); warm throughput with 1, 8 and 64 keep-alive
  clients; a burst of 200 first invocations; 1,000 idle instances at 128 MB
  (memory per instance, latency at that density). One summary table; the JSON
  files go to DIR (default target/bench-pool-<time>). Checks for leftovers
  afterwards (scripts/check-leaks.sh). Root only.
usage: scripts/bench.sh cold [--runs N] [--dir DIR]
  README's "Benchmarking cold starts" table: `hearth bench cold` of the built-in
  provided echo by spawn and from a blank sandbox (phases included), then
  `hearth bench peers` (the same cold start under crun, runc and bwrap,
  interleaved; installs them when missing). 500 runs each by default; JSON and
  SVG charts go to DIR (default target/bench-cold-<time>). Root only.
env: HEARTH_BIN  hearth binary (default target/release/hearth, built if missing)
     PYTHON      Python 3.11+ for the driver (default /usr/bin/python3)
     HEARTH_BLANK_POOL_SIZE  pool: the daemon's blank_pool_size (default 4; empty: unset)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT

case "${1:-}" in
sandbox) ;;
invoke)
    shift
    [[ ${EUID} -eq 0 ]] || die "must run as root (sandboxes need namespaces and cgroups)"
    triple=$(rustc -vV | sed -n 's/^host: //p')
    log "building hearth and the static echo bootstrap (cargo build --release)"
    (cd "${ROOT}" && cargo build --release --bin hearth &&
        RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin hearth-echo --target "${triple}") ||
        die "cargo build --release failed"
    export HEARTH_BIN=${HEARTH_BIN:-${ROOT}/target/release/hearth}
    export HEARTH_ECHO=${HEARTH_ECHO:-${ROOT}/target/${triple}/release/hearth-echo}
    exec "${PYTHON:-/usr/bin/python3}" "${ROOT}/scripts/bench_invoke.py" "$@"
    ;;
api)
    shift
    [[ ${EUID} -eq 0 ]] || die "must run as root (the daemon creates sandboxes)"
    triple=$(rustc -vV | sed -n 's/^host: //p')
    log "building hearth and the static echo bootstrap (cargo build --release)"
    (cd "${ROOT}" && cargo build --release --bin hearth &&
        RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin hearth-echo --target "${triple}") ||
        die "cargo build --release failed"
    venv=${ROOT}/target/venv
    if ! "${venv}/bin/python" -c 'import boto3' 2>/dev/null; then
        log "making ${venv} with boto3"
        /usr/bin/python3 -m venv "${venv}" || die "could not make ${venv}"
        "${venv}/bin/pip" install --quiet boto3 || die "could not install boto3 into ${venv}"
    fi
    export HEARTH_BIN=${HEARTH_BIN:-${ROOT}/target/release/hearth}
    export HEARTH_ECHO=${HEARTH_ECHO:-${ROOT}/target/${triple}/release/hearth-echo}
    exec "${venv}/bin/python" "${ROOT}/scripts/bench_api.py" "$@"
    ;;
pool)
    shift
    for arg in "$@"; do
        if [[ ${arg} == -h || ${arg} == --help ]]; then
            exec "${PYTHON:-/usr/bin/python3}" "${ROOT}/scripts/bench_pool.py" --help
        fi
    done
    [[ ${EUID} -eq 0 ]] || die "must run as root (the daemon creates sandboxes)"
    triple=$(rustc -vV | sed -n 's/^host: //p')
    log "building hearth and the static echo bootstrap (cargo build --release)"
    (cd "${ROOT}" && cargo build --release --bin hearth &&
        RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin hearth-echo --target "${triple}") ||
        die "cargo build --release failed"
    export HEARTH_BIN=${HEARTH_BIN:-${ROOT}/target/release/hearth}
    export HEARTH_ECHO=${HEARTH_ECHO:-${ROOT}/target/${triple}/release/hearth-echo}
    export HEARTH_BLANK_POOL_SIZE=${HEARTH_BLANK_POOL_SIZE-4}
    # The driver stops its daemon and removes its dirs itself (also on SIGINT/SIGTERM);
    # the leak check runs whatever happened to it.
    rc=0
    "${PYTHON:-/usr/bin/python3}" "${ROOT}/scripts/bench_pool.py" "$@" || rc=$?
    log "checking for leftovers (scripts/check-leaks.sh)"
    bash "${ROOT}/scripts/check-leaks.sh" || { log "error: leftovers found"; [[ ${rc} -ne 0 ]] || rc=1; }
    exit "${rc}"
    ;;
cold)
    shift
    runs=500
    dir=${ROOT}/target/bench-cold-$(date -u +%Y%m%dT%H%M%SZ)
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --dir) dir=${2:?--dir needs a path}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; die "unknown option '$1' for cold" ;;
        esac
    done
    [[ ${EUID} -eq 0 ]] || die "must run as root (the daemon and the peers create sandboxes)"
    log "building hearth (cargo build --release)"
    (cd "${ROOT}" && cargo build --release --bin hearth) || die "cargo build --release failed"
    hearth=${HEARTH_BIN:-${ROOT}/target/release/hearth}
    mkdir -p "${dir}"
    rc=0
    for start in spawn blank; do
        log "hearth bench cold --start ${start} --runs ${runs}"
        "${hearth}" bench cold --start "${start}" --runs "${runs}" \
            --json "${dir}/cold-${start}.json" --chart "${dir}/cold-${start}.svg" || rc=$?
    done
    log "hearth bench peers --runs ${runs}"
    "${hearth}" bench peers --runs "${runs}" --json "${dir}/peers.json" --chart "${dir}/peers.svg" || rc=$?
    log "results in ${dir}; checking for leftovers (scripts/check-leaks.sh)"
    bash "${ROOT}/scripts/check-leaks.sh" || { log "error: leftovers found"; [[ ${rc} -ne 0 ]] || rc=1; }
    exit "${rc}"
    ;;
-h | --help | "")
    usage
    [[ -n ${1:-} ]] && exit 0
    exit 2
    ;;
*)
    usage
    die "unknown benchmark '$1' (known: sandbox, invoke, api, pool, cold)"
    ;;
esac
for arg in "$@"; do
    if [[ ${arg} == -h || ${arg} == --help ]]; then
        exec "${PYTHON:-/usr/bin/python3}" "${ROOT}/scripts/bench_sandbox.py" "$@"
    fi
done

[[ ${EUID} -eq 0 ]] || die "must run as root (sandboxes need namespaces and cgroups)"

PYTHON=${PYTHON:-/usr/bin/python3}
[[ -x ${PYTHON} ]] || PYTHON=$(command -v python3) || die "python3 not found"
"${PYTHON}" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "${PYTHON} is older than Python 3.11"

# ---- peers ------------------------------------------------------------------
# command -> Debian package
declare -A PKG=([crun]=crun [runc]=runc [bwrap]=bubblewrap [unshare]=util-linux)
missing=()
for cmd in crun runc bwrap unshare; do
    command -v "${cmd}" >/dev/null || missing+=("${PKG[${cmd}]}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if ! command -v apt-get >/dev/null; then
        log "warning: missing ${missing[*]} and no apt-get; they will be reported as failed"
    else
        export DEBIAN_FRONTEND=noninteractive
        has_candidate() {
            apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
        }
        for p in "${missing[@]}"; do
            if ! has_candidate "${p}"; then
                log "apt-get update (no candidate for ${p} yet)"
                apt-get update -q >/dev/null || log "warning: apt-get update failed"
                break
            fi
        done
        installable=()
        for p in "${missing[@]}"; do
            if has_candidate "${p}"; then
                installable+=("${p}")
            else
                log "warning: no package ${p} available; it will be reported as failed"
            fi
        done
        if [[ ${#installable[@]} -gt 0 ]]; then
            log "installing ${installable[*]}"
            apt-get install -y -q "${installable[@]}" >/dev/null ||
                log "warning: apt-get install ${installable[*]} failed; missing peers will be reported as failed"
        fi
    fi
fi

# ---- hearth ---------------------------------------------------------------------
if [[ -z ${HEARTH_BIN:-} ]]; then
    HEARTH_BIN=${ROOT}/target/release/hearth
    if [[ ! -x ${HEARTH_BIN} ]]; then
        command -v cargo >/dev/null || die "${HEARTH_BIN} missing and cargo not found"
        log "building hearth (cargo build --release)"
        (cd "${ROOT}" && cargo build --release --bin hearth) || die "cargo build --release failed"
    fi
fi
case "${HEARTH_BIN}" in
/*) ;;
*) HEARTH_BIN=$(pwd)/${HEARTH_BIN} ;;
esac
[[ -x ${HEARTH_BIN} ]] || log "warning: ${HEARTH_BIN} is not executable; hearth will be reported as failed"
export HEARTH_BIN

exec "${PYTHON}" "${ROOT}/scripts/bench_sandbox.py" "$@"
