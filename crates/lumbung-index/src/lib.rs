//! Storage for retrieval: a lexical (BM25) index and a dense vector store, each behind a small
//! blocking trait so that the search and ingest crates do not care which engine answers.
//!
//! - [`TantivyLexicalIndex`]: tantivy on local disk, with the mixed Chinese/Indonesian/English
//!   analyzer of [`analyzer`].
//! - [`EdgeVectorStore`]: an embedded Qdrant shard (`qdrant-edge`) on local disk. A Qdrant
//!   cluster through `qdrant-client` can be added later as another [`VectorStore`].
//!
//! Every search is filtered to the caller's knowledge bases inside the engine, never after the
//! fact. All calls block: run them on a CPU/blocking pool, never on an async runtime worker.
//!
//! This crate must not depend on embedding models, extraction, the catalog, protobuf or any
//! transport: it stores and finds chunks it is given, nothing more.

pub mod analyzer;
mod error;
mod lexical;
mod vector;

use lumbung_core::{Chunk, ChunkId, ContentHash, DocumentPath, KbName};

pub use error::{Error, Result};
pub use lexical::TantivyLexicalIndex;
pub use vector::EdgeVectorStore;

/// A chunk found by a search, with the engine's relevance score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredChunk {
    pub chunk: Chunk,
    pub score: f32,
}

/// A BM25 index of chunks, partitioned by knowledge base.
pub trait LexicalIndex: Send + Sync {
    /// Stages the replacement of every chunk of (kb, path) by `chunks` (all with that kb/path);
    /// visible after [`LexicalIndex::commit`], atomically.
    fn replace_document(&self, kb: &KbName, path: &DocumentPath, chunks: &[Chunk]) -> Result<()>;
    /// Stages the removal of every chunk of (kb, path).
    fn delete_document(&self, kb: &KbName, path: &DocumentPath) -> Result<()>;
    /// Makes everything staged so far (by any thread) durable and visible to searches.
    fn commit(&self) -> Result<()>;
    /// BM25 over chunk text, title and heading path, restricted to `kbs` inside the query.
    /// An empty `kbs`, a zero `limit` or a query without any word returns no hits.
    fn search(&self, query: &str, kbs: &[KbName], limit: usize) -> Result<Vec<ScoredChunk>>;
    /// The stored chunks for `ids`, in the order asked; unknown ids are skipped.
    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>>;
    /// Committed chunks of a knowledge base, or of one document when `path` is given.
    fn count_chunks(&self, kb: &KbName, path: Option<&DocumentPath>) -> Result<u64>;
}

/// A store of chunk embeddings searched by cosine similarity, partitioned by knowledge base.
pub trait VectorStore: Send + Sync {
    /// Upserts the new points first, then deletes the document's points whose content hash
    /// differs, so that the old version keeps answering until the new one is in.
    fn replace_document(
        &self,
        kb: &KbName,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[(ChunkId, Vec<f32>)],
    ) -> Result<()>;
    /// Removes every point of (kb, path).
    fn delete_document(&self, kb: &KbName, path: &DocumentPath) -> Result<()>;
    /// Makes every change so far durable on disk.
    fn flush(&self) -> Result<()>;
    /// The nearest points to `vector` by cosine similarity among `kbs`, best first.
    /// An empty `kbs` or a zero `limit` returns no hits.
    fn search(&self, vector: &[f32], kbs: &[KbName], limit: usize) -> Result<Vec<(ChunkId, f32)>>;
    /// Points of a knowledge base, or of one document when `path` is given.
    fn count(&self, kb: &KbName, path: Option<&DocumentPath>) -> Result<u64>;
}
