#!/usr/bin/env bash
# Hearth's test command (README names it; CI runs exactly this, as root, on a fresh host).
#
# 1. installs what the tests need (Debian packages) when missing;
# 2. lints (cargo fmt --check, clippy -D warnings);
# 3. builds the static in-sandbox probe;
# 4. runs every test as root on the real kernel (host-binds root);
# 5. builds (or reuses) the Debian base root and runs the isolation tests against it;
# 6. removes Hearth's idle infrastructure and checks that nothing at all is left behind;
# 7. the cgroup v2 leg: the same root/namespace tests, prebuilt here, inside a pure
#    cgroup v2 guest kernel under QEMU (scripts/vm/v2-leg.sh; HEARTH_SKIP_V2_LEG=1 skips
#    it, for a quick local run).
#
# Tests that need root print "skipped: needs root" without it; run this as root.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOTFS=${HEARTH_ROOTFS:-/var/cache/hearth/rootfs-bookworm}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: must run as root (the tests create namespaces, cgroups, mounts)" >&2
  exit 1
fi

step "installing test dependencies"
need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ip >/dev/null || need+=(iproute2)
command -v losetup >/dev/null || need+=(util-linux)
# The invoke tests run managed Python and Node handlers and a curl-based bootstrap with
# the host's interpreters (sandboxes bind the host's /usr).
[ -x /usr/bin/python3 ] || need+=(python3)
[ -x /usr/bin/node ] || need+=(nodejs)
command -v curl >/dev/null || need+=(curl)
command -v setfattr >/dev/null || need+=(attr)
# hearth bench peers runs the same cold start under crun, runc and bwrap (tests/bench.rs).
command -v crun >/dev/null || need+=(crun)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
command -v bwrap >/dev/null || need+=(bubblewrap)
# boto3 and the aws CLI for the daemon tests live in a venv of the system Python.
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "lint"
scripts/lint.sh

step "static probe and echo bootstrap"
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin hearth-probe --bin hearth-echo --target "$triple"
export HEARTH_PROBE="$PWD/target/$triple/release/hearth-probe"
export HEARTH_ECHO="$PWD/target/$triple/release/hearth-echo"

step "boto3 and the aws CLI in a venv (target/venv)"
if [ ! -x target/venv/bin/python ] || ! target/venv/bin/python -c 'import boto3, awscli' 2>/dev/null; then
  /usr/bin/python3 -m venv target/venv
  target/venv/bin/pip install --quiet --disable-pip-version-check boto3 awscli
fi
export HEARTH_BOTO3_PYTHON="$PWD/target/venv/bin/python"

step "real AWS runtime clients as fixtures (scripts/build-clients.sh)"
scripts/build-clients.sh

step "managed runtimes against a fake Runtime API (runtimes/tests)"
/usr/bin/python3 -m unittest discover -s runtimes/tests

step "tests (host-binds root, $(scripts/cgroup-mode.sh) cgroups)"
cargo test --all-targets -- --test-threads=2

step "base root for the rootfs leg"
rootfs/build.sh "$ROOTFS"

step "isolation tests against the built root ($ROOTFS)"
HEARTH_TEST_ROOTFS="$ROOTFS" cargo test --test isolation --test transport -- --test-threads=2

step "cleanup check"
cargo run --quiet --bin hearth -- gc
scripts/check-leaks.sh --strict

if [ "${HEARTH_SKIP_V2_LEG:-0}" = 1 ]; then
  echo "skipped: the cgroup v2 leg (HEARTH_SKIP_V2_LEG=1)"
else
  step "cgroup v2 leg (pure cgroup v2 guest kernel)"
  scripts/vm/v2-leg.sh
fi
