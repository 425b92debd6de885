//! Text to vectors, and documents to chunks sized for the embedding model.
//!
//! [`Embedder`] runs the configured ONNX embedding model (multilingual-e5-small by default)
//! directly on ONNX Runtime (`ort`), loaded from a local shared library, with the model from
//! local files, never downloaded. It adds the model's query and passage prefixes,
//! batches, and returns L2-normalised vectors, so cosine similarity is a dot product.
//! [`Reranker`] runs an optional cross-encoder on the same runtime.
//! [`Chunker`] splits a document's extracted sections into chunks measured in the same model's
//! tokens, with the character offsets that citations need.
//!
//! Embedding is CPU-bound and blocking: callers run it on their own worker threads, never on an
//! async runtime. This crate must not depend on any index, the catalog or the transport: it
//! depends on `lumbung-core` for its vocabulary only.

mod chunker;
mod embedder;
mod encoder;
mod error;
mod reranker;
mod runtime;

pub use chunker::{Chunker, SECTION_SEPARATOR, document_text};
pub use embedder::{BatchObserver, EmbedKind, Embedder};
pub use error::{Error, Result};
pub use reranker::Reranker;
