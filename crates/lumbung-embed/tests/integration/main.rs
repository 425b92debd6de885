//! Integration tests against the real ONNX Runtime and the real multilingual model installed by
//! `scripts/setup-runtime.sh` into the repository's `runtime/` folder.

mod cross_lingual;
mod embedder;
mod reranker;
mod support;
