#!/usr/bin/env bash
# scripts/vm/v2-leg.sh — the cgroup v2 leg of the tests: Hearth's root/namespace tests,
# prebuilt on the host, run inside the pure cgroup v2 guest of scripts/vm-test.sh.
#
# usage: scripts/vm/v2-leg.sh [--timeout SECONDS] [TEST...]
#   TEST: names of integration test files (tests/NAME.rs), or NAME:F1,F2 to run only
#   the tests whose names contain F1 or F2; default: isolation limits cleanup cli
#   transport invoke clients daemon, and the warm pool's cgroup-facing tests (freeze,
#   expiry, kill, blank sandboxes, provisioned, warm reuse; the 200-wide and
#   eviction tests stay on the host: under emulation they only measure the emulator),
#   and `hearth bench peers` (crun, runc and bwrap without the hybrid-host workaround,
#   bwrap's cgroup through the v2 driver).
#   The library's unit tests whose names contain "cgroup" always run too.
# env:  HEARTH_PROBE  the static probe (built here as scripts/test.sh does when unset);
#       every HEARTH_*, RUST_* and CARGO_* variable reaches the tests in the guest.
#
# Host side: builds the test binaries (`cargo test --no-run`; building inside the
# emulated guest would be slow) and boots the guest with `--in-guest`. Guest side: checks
# that the host really is pure cgroup v2 (so Hearth picks its v2 driver) and says so,
# runs each binary with two test threads, then `hearth gc` and
# `scripts/check-leaks.sh --strict`, and exits non-zero if anything failed. The exit
# status is vm-test.sh's: 90/91/92 for a guest crash, hang or harness failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ ${1:-} == --in-guest ]]; then
    shift
    mode=$(scripts/cgroup-mode.sh)
    if [[ ${mode} != unified ]]; then
        echo "v2 leg: the guest's cgroups are '${mode}', not unified; Hearth would not use its v2 driver" >&2
        exit 1
    fi
    echo "cgroup driver: v2 (cgroup2 alone at /sys/fs/cgroup, kernel $(uname -r); tests run in $(sed -n 's/^0:://p' /proc/self/cgroup))"
    failed=()
    passed=0
    start=${SECONDS}
    for spec in "$@"; do
        name=${spec%%=*}
        bin=${spec#*=}
        args=(--test-threads=2)
        [[ ${name} != lib ]] || args+=(cgroup)
        if [[ ${name} == *:* ]]; then
            IFS=, read -r -a filters <<<"${name#*:}"
            args+=("${filters[@]}")
        fi
        echo
        echo "==> ${name}: ${bin##*/} ${args[*]}"
        t0=${SECONDS}
        if "${bin}" "${args[@]}"; then
            passed=$((passed + 1))
        else
            failed+=("${name}")
        fi
        echo "<== ${name}: $((SECONDS - t0)) s"
    done
    echo
    echo "==> cleanup check"
    hearth=$(dirname "$(dirname "${bin}")")/hearth
    "${hearth}" gc || failed+=("hearth gc")
    scripts/check-leaks.sh --strict || failed+=("check-leaks")
    echo
    echo "v2 leg: ${passed} test binaries passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})} in $((SECONDS - start)) s"
    exit $((${#failed[@]} > 0))
fi

timeout=2400
if [[ ${1:-} == --timeout ]]; then
    timeout=$2
    shift 2
fi
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(isolation limits cleanup cli transport invoke clients daemon
    pool:warm_instance_is_reused,frozen_idle,idle_instance_expires,killed_mid,provisioned,blank_sandbox
    bench:peers)

if [[ -z ${HEARTH_PROBE:-} ]]; then
    triple=$(rustc -vV | sed -n 's/^host: //p')
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin hearth-probe --target "${triple}"
    export HEARTH_PROBE=${PWD}/target/${triple}/release/hearth-probe
fi

# Test binaries from cargo's JSON messages: "<kind> <name> <executable>".
artifacts=$(cargo test --no-run --all-targets --message-format=json |
    sed -n 's/.*"target":{"kind":\["\([a-z-]*\)"\][^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2 \3/p')
specs=()
lib=$(awk '$1 == "lib" { print $3; exit }' <<<"${artifacts}")
[[ -n ${lib} ]] || { echo "v2 leg: cargo built no library test binary" >&2; exit 1; }
specs+=("lib=${lib}")
for t in "${tests[@]}"; do
    bin=$(awk -v t="${t%%:*}" '$1 == "test" && $2 == t { print $3; exit }' <<<"${artifacts}")
    [[ -n ${bin} ]] || { echo "v2 leg: no test binary for tests/${t}.rs" >&2; exit 1; }
    specs+=("${t}=${bin}")
done
# For a test that asserts which driver Hearth's own detection picked (HEARTH_* variables
# reach the guest).
export HEARTH_EXPECT_CGROUP_DRIVER=v2
# Each sandbox takes seconds under emulation: 200 runs in a row would take ten minutes;
# the host leg runs the full 200.
export HEARTH_TEST_RUNS=${HEARTH_TEST_RUNS:-25}
# A Python init takes seconds under emulation; the daemons the tests start read this.
export HEARTH_INIT_TIMEOUT_S=${HEARTH_INIT_TIMEOUT_S:-120}
exec scripts/vm-test.sh --timeout "${timeout}" -- scripts/vm/v2-leg.sh --in-guest "${specs[@]}"
