#!/usr/bin/env bash
# Builds the real-client test fixtures: AWS's own, unmodified Lambda runtime interface
# clients around an echo handler, each packaged as a function zip for `provided.al2023`:
#
#   target/clients/rust.zip    lambda_runtime (crates.io)     tests/clients/rust/
#   target/clients/python.zip  awslambdaric (PyPI, wheel)     tests/clients/python/
#   target/clients/node.zip    aws-lambda-ric (npm, native)   tests/clients/node/
#
# tests/clients.rs runs them through `hearth invoke --local` and skips a missing zip.
#
# Usage: scripts/build-clients.sh [rust] [python] [node]   (default: all three)
#
# Idempotent: a fixture whose inputs (its source dir, this script, the host interpreter
# version) are unchanged since its zip was built is skipped. Installs missing Debian
# packages with apt-get (needs root). Needs only the package registries: crates.io, PyPI,
# npm, Debian. Work dirs are under target/clients-build/.
#
# The zips use the host's interpreters (/usr/bin/python3, /usr/bin/node), as sandboxes
# bind the host's /usr: the Python wheel and the Node addon are built for exactly those.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/clients
WORK=$ROOT/target/clients-build
SRC=$ROOT/tests/clients
mkdir -p "$OUT" "$WORK"

# Two cores are shared with everything else on the machine.
NJOBS=${HEARTH_BUILD_JOBS:-2}

log() { printf '[build-clients] %s\n' "$*" >&2; }

apt_updated=0
# Installs the Debian packages among "$@" that are not installed yet.
need_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages (run as root to install): ${missing[*]}"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Prints a digest of the fixture's inputs: every file under its source dir, this script,
# and the extra words given (tool versions).
inputs_digest() {
  local dir=$1
  shift
  {
    (cd "$dir" && find . -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
      | xargs -0 sha256sum)
    sha256sum "$ROOT/scripts/build-clients.sh" | cut -d' ' -f1
    printf '%s\n' "$@"
  } | sha256sum | cut -d' ' -f1
}

# True (and says so) when $OUT/$1.zip exists and was built from inputs with digest $2.
up_to_date() {
  if [ -f "$OUT/$1.zip" ] && [ "$(cat "$OUT/$1.zip.inputs" 2>/dev/null)" = "$2" ]; then
    log "$1: up to date ($OUT/$1.zip)"
    return 0
  fi
  return 1
}

# zip_dir DIR ZIP: a zip of DIR's contents with sorted entries and the files' modes
# (bootstrap must stay executable). Symlinks are stored as the files they point to.
zip_dir() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
tmp = dst + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            z.write(path, os.path.relpath(path, src))
os.replace(tmp, dst)
EOF
}

finish() {
  local name=$1 digest=$2 stage=$3 t0=$4
  zip_dir "$stage" "$OUT/$name.zip"
  echo "$digest" >"$OUT/$name.zip.inputs"
  log "$name: built $OUT/$name.zip ($(du -h "$OUT/$name.zip" | cut -f1)) in $((SECONDS - t0)) s"
}

build_rust() {
  command -v cargo >/dev/null || { log "rust: cargo not found"; return 1; }
  local digest
  digest=$(inputs_digest "$SRC/rust" "$(rustc --version)")
  up_to_date rust "$digest" && return 0
  local t0=$SECONDS
  need_debs gcc libc6-dev python3
  log "rust: cargo build --release (lambda_runtime)"
  CARGO_TARGET_DIR=$WORK/rust cargo build --release --locked -j "$NJOBS" \
    --manifest-path "$SRC/rust/Cargo.toml" >&2
  local stage=$WORK/rust-stage
  rm -rf "$stage" && mkdir -p "$stage"
  install -m 755 "$WORK/rust/release/bootstrap" "$stage/bootstrap"
  finish rust "$digest" "$stage" "$t0"
}

build_python() {
  need_debs python3 python3-venv
  local pyver
  pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  local digest
  digest=$(inputs_digest "$SRC/python" "python $pyver")
  up_to_date python "$digest" && return 0
  local t0=$SECONDS
  # A venv of the host interpreter: pip then picks wheels for exactly that Python, and
  # the system site-packages stay untouched.
  local venv=$WORK/python-venv
  if [ ! -x "$venv/bin/pip" ] || [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$pyver" ]; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
  fi
  local stage=$WORK/python-stage
  rm -rf "$stage" && mkdir -p "$stage"
  log "python: pip install --only-binary=:all: awslambdaric for Python $pyver"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-compile \
    --only-binary=:all: --target "$stage" -r "$SRC/python/requirements.txt" >&2
  # The native module must load in the host interpreter, as it will in the sandbox.
  (cd "$stage" && /usr/bin/python3 -B -c 'import runtime_client, awslambdaric.bootstrap') || {
    log "python: awslambdaric's native module does not load in /usr/bin/python3 $pyver"
    return 1
  }
  install -m 755 "$SRC/python/bootstrap" "$stage/bootstrap"
  install -m 644 "$SRC/python/lambda_function.py" "$stage/lambda_function.py"
  find "$stage" -name __pycache__ -prune -exec rm -rf {} +
  finish python "$digest" "$stage" "$t0"
}

build_node() {
  if [ ! -x /usr/bin/node ] || ! command -v npm >/dev/null; then
    # Not an error: tests/clients.rs skips the Node tests without the zip.
    log "node: /usr/bin/node or npm not found; skipped (install nodejs and npm to build it)"
    return 0
  fi
  local digest
  digest=$(inputs_digest "$SRC/node" "node $(/usr/bin/node --version)")
  up_to_date node "$digest" && return 0
  local t0=$SECONDS
  # aws-lambda-ric's install scripts build its bundled curl (autotools) and aws-lambda-cpp
  # (cmake), then the addon with node-gyp (python3, g++).
  need_debs cmake autoconf automake libtool make g++ python3 xz-utils tar
  # node-gyp would download Node's headers from the Node.js site, which is not a package
  # registry: use the headers installed with node (nodesource's nodejs, or Debian's
  # libnode-dev).
  local nodedir=/usr
  if [ ! -f /usr/include/node/node_api.h ]; then
    need_debs libnode-dev
  fi
  local build=$WORK/node
  mkdir -p "$build"
  install -m 644 "$SRC/node/package.json" "$build/package.json"
  # `npm ci` installs exactly the locked versions (tests/clients/node/package-lock.json).
  local cmd=install
  if [ -f "$SRC/node/package-lock.json" ]; then
    install -m 644 "$SRC/node/package-lock.json" "$build/package-lock.json"
    cmd=ci
  fi
  rm -rf "$build/node_modules"
  log "node: npm $cmd aws-lambda-ric (builds curl, aws-lambda-cpp, the addon)"
  (cd "$build" && npm_config_nodedir=$nodedir JOBS=$NJOBS MAKEFLAGS=-j$NJOBS \
    npm "$cmd" --omit=dev --no-audit --no-fund --foreground-scripts >"$build/npm.log" 2>&1) || {
    tail -40 "$build/npm.log" >&2
    log "node: npm $cmd failed (full log: $build/npm.log)"
    return 1
  }
  if [ ! -f "$build/node_modules/aws-lambda-ric/rapid-client.node" ]; then
    log "node: the native addon was not built (did npm skip install scripts?); see $build/npm.log"
    return 1
  fi
  local stage=$WORK/node-stage
  rm -rf "$stage" && mkdir -p "$stage"
  cp -r "$build/node_modules" "$stage/node_modules"
  install -m 755 "$SRC/node/bootstrap" "$stage/bootstrap"
  install -m 644 "$SRC/node/index.mjs" "$stage/index.mjs"
  install -m 644 "$SRC/node/package.json" "$stage/package.json"
  finish node "$digest" "$stage" "$t0"
}

targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(rust python node)
failed=()
for t in "${targets[@]}"; do
  case $t in
    rust | python | node) ;;
    *)
      log "unknown fixture $t (rust, python, node)"
      exit 2
      ;;
  esac
  t0=$SECONDS
  # A subshell outside any condition, so that `set -e` stays in force inside the build.
  set +e
  ("build_$t")
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    log "$t: done in $((SECONDS - t0)) s"
  else
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
