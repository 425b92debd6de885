#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test, against the real model and indexes.
# `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-runtime.sh
# The console's browser test drives Debian's Chromium through ChromeDriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver
fi
# The MCP test's client, the MCP Inspector, at the version package-lock.json pins.
npm ci --prefix crates/lumbung-cli/tests/mcp-inspector --no-audit --no-fund --loglevel=error
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
python3 eval/samples/check.py   # the labelled questions still match ingest/
if [ ! -f ../shared/eval/scifact/corpus.jsonl ]; then
  echo "note: ../shared/eval is absent; the retrieval-quality check (lumbung-cli" \
    "scifact_slice_keeps_its_ndcg) will say it was skipped" >&2
fi
cargo test --locked --workspace
