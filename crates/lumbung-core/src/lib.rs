//! Domain types shared by every lumbung crate: knowledge-base names, document paths, chunk ids,
//! chunks and their citations, and the service configuration.
//!
//! This crate must not depend on any index, model or transport: it is the vocabulary the
//! engine crates and the server speak to each other.

mod chunk;
mod config;
mod error;
mod ids;
mod language;
mod sentences;

pub use chunk::{Chunk, Citation, QuantizedVector, Section, Sentence};
pub use config::{
    AskConfig, Config, EmbeddingConfig, Fusion, IngestConfig, Pooling, RerankConfig, SearchConfig,
    ServerConfig,
};
pub use error::{Error, Result};
pub use ids::{ChunkId, ContentHash, DocumentPath, KbName};
pub use language::Language;
pub use sentences::split_sentences;
