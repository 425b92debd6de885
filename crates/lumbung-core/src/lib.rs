//! Domain types shared by every lumbung crate: knowledge-base names, document paths, chunk ids,
//! chunks and their citations, and the service configuration.
//!
//! This crate must not depend on any index, model or transport: it is the vocabulary the
//! engine crates and the server speak to each other.

mod chunk;
mod config;
pub mod disk;
mod error;
mod ids;
mod language;
mod priority;
mod sentences;

pub use chunk::{Chunk, Citation, QuantizedVector, Section, Sentence};
pub use config::{
    AskConfig, Config, EmbeddingConfig, Fusion, IngestConfig, NodeRole, Pooling, RerankConfig,
    SearchConfig, ServerConfig, VectorIndexConfig, VectorStoreConfig, VectorStoreKind,
    WriteOrdering,
};
pub use error::{Error, Result};
pub use ids::{ChunkId, ContentHash, DocumentPath, Generation, KbGeneration, KbName, ModelName};
pub use language::Language;
#[cfg(target_os = "linux")]
pub use priority::{current_thread_niceness, thread_niceness};
pub use priority::{lower_current_thread_priority, lower_thread_priority, process_threads};
pub use sentences::split_sentences;
