#!/usr/bin/env bash
# The lints CI enforces: formatting and clippy with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
