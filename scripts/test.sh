#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test, against the real model and indexes.
# `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-runtime.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
