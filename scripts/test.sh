#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test, against the real model and indexes.
# `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-runtime.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
python3 eval/samples/check.py   # the labelled questions still match ingest/
if [ ! -f ../shared/eval/scifact/corpus.jsonl ]; then
  echo "note: ../shared/eval is absent; the retrieval-quality check (lumbung-cli" \
    "scifact_slice_keeps_its_ndcg) will say it was skipped" >&2
fi
cargo test --locked --workspace
