//! Storage for retrieval: a lexical (BM25) index and a dense vector store, each behind a small
//! blocking trait so that the search and ingest crates do not care which engine answers.
//!
//! - [`TantivyLexicalIndex`]: tantivy on local disk, with the mixed Chinese/Indonesian/English
//!   analyzer of [`analyzer`].
//! - [`EdgeVectorStore`]: an embedded Qdrant shard (`qdrant-edge`) on local disk. A Qdrant
//!   server or cluster is another [`VectorStore`], in `lumbung-qdrant`; both pass the same
//!   `contract` (the module, with the feature `contract`).
//!
//! Every search is filtered to the caller's knowledge bases inside the engine, never after the
//! fact. All calls block: run them on a CPU/blocking pool, never on an async runtime worker.
//!
//! This crate must not depend on embedding models, extraction, the catalog, protobuf or any
//! transport: it stores and finds chunks it is given, nothing more.

pub mod analyzer;
#[cfg(feature = "contract")]
pub mod contract;
mod edge_wal;
mod error;
mod lexical;
pub mod sentence_codec;
mod vector;

use std::sync::Arc;

use lumbung_core::{Chunk, ChunkId, ContentHash, DocumentPath, KbGeneration, Language};

pub use error::{Error, Result};
pub use lexical::TantivyLexicalIndex;
pub use vector::{EdgeVectorStore, VectorDiskUsage, VectorIndexInfo};

/// Refuses a vector a store of `dimension` cannot hold or compare: another length
/// ([`Error::DimensionMismatch`]) or a non-finite component ([`Error::InvalidArgument`]).
pub fn check_vector(vector: &[f32], dimension: usize) -> Result<()> {
    if vector.len() != dimension {
        return Err(Error::DimensionMismatch {
            expected: dimension,
            actual: vector.len(),
        });
    }
    if !vector.iter().all(|x| x.is_finite()) {
        return Err(Error::InvalidArgument(
            "vector has a non-finite component".to_string(),
        ));
    }
    Ok(())
}

/// The mean of `vectors`, each of `dimension` entries, summed in f64; `None` without any. A
/// [`VectorStore::language_centroids`] averages its sample with it.
pub fn mean_vector(
    vectors: impl IntoIterator<Item = Vec<f32>>,
    dimension: usize,
) -> Option<Vec<f32>> {
    let mut sum = vec![0f64; dimension];
    let mut count = 0usize;
    for vector in vectors {
        for (total, x) in sum.iter_mut().zip(&vector) {
            *total += f64::from(*x);
        }
        count += 1;
    }
    (count > 0).then(|| {
        sum.iter()
            .map(|total| (total / count as f64) as f32)
            .collect()
    })
}

/// A chunk found by a search, with the engine's relevance score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredChunk {
    pub chunk: Chunk,
    pub score: f32,
    /// The share of the query's term weight (IDF) that the chunk holds, from 0 to 1: how much
    /// of the question the match is about, which the score alone does not say.
    pub coverage: f32,
}

/// A BM25 index of chunks, partitioned by knowledge base and generation ([`KbGeneration`]).
pub trait LexicalIndex: Send + Sync {
    /// Stages the replacement of every chunk of (kb, path) by `chunks` (all with that kb/path);
    /// visible after [`LexicalIndex::commit`], atomically.
    fn replace_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        chunks: &[Chunk],
    ) -> Result<()>;
    /// Stages the removal of every chunk of (kb, path).
    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<()>;
    /// Stages the removal of every chunk of one generation of a knowledge base: a generation
    /// replaced by a rebuild, a build cancelled, a knowledge base deleted.
    fn delete_generation(&self, kb: &KbGeneration) -> Result<()>;
    /// Makes everything staged so far (by any thread) durable and visible to searches.
    fn commit(&self) -> Result<()>;
    /// The index as of its last commit. Searches and lookups through one snapshot agree with
    /// each other whatever is committed meanwhile, so one request never mixes two versions of
    /// a document.
    fn snapshot(&self) -> Arc<dyn LexicalSnapshot>;
    /// [`LexicalSnapshot::search`] on the latest commit.
    fn search(&self, query: &str, kbs: &[KbGeneration], limit: usize) -> Result<Vec<ScoredChunk>> {
        self.snapshot().search(query, kbs, limit)
    }
    /// [`LexicalSnapshot::get_chunks`] on the latest commit.
    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        self.snapshot().get_chunks(ids)
    }
    /// Committed chunks of a knowledge base, or of one document when `path` is given.
    fn count_chunks(&self, kb: &KbGeneration, path: Option<&DocumentPath>) -> Result<u64>;
}

/// One commit of a [`LexicalIndex`].
pub trait LexicalSnapshot: Send + Sync {
    /// BM25 over each chunk's [`Chunk::indexed_text`] (its title, headings and text), restricted
    /// to `kbs` inside the query. An empty `kbs`, a zero `limit` or a query without any word
    /// returns no hits.
    fn search(&self, query: &str, kbs: &[KbGeneration], limit: usize) -> Result<Vec<ScoredChunk>>;
    /// The stored chunks for `ids`, in the order asked; unknown ids are skipped.
    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>>;
    /// The distinct terms the analyzer makes of `text`, each with its inverse document
    /// frequency in this snapshot: how much finding it says about a match.
    fn term_weights(&self, text: &str) -> Result<Vec<(String, f32)>>;
}

/// One chunk's embedding, as the vector store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPoint {
    pub id: ChunkId,
    /// The chunk's language, so that similarities can be compared with the average passage of
    /// that language (see [`VectorStore::language_centroids`]).
    pub language: Language,
    pub vector: Vec<f32>,
}

impl VectorPoint {
    /// The point of `chunk` with its embedding.
    pub fn of_chunk(chunk: &Chunk, vector: Vec<f32>) -> VectorPoint {
        VectorPoint {
            id: chunk.id,
            language: chunk.language,
            vector,
        }
    }
}

/// A store of chunk embeddings searched by cosine similarity, partitioned by knowledge base and
/// generation ([`KbGeneration`]).
pub trait VectorStore: Send + Sync {
    /// Adds the points of one version of a document, with `kb`, `path` and `hash` as payload.
    /// Points of its other versions stay until [`VectorStore::delete_other_versions`], so the
    /// old version keeps answering while the new one is being committed everywhere.
    fn upsert_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[VectorPoint],
    ) -> Result<()>;
    /// Removes the points of (kb, path) whose content hash is not `keep`.
    fn delete_other_versions(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        keep: &ContentHash,
    ) -> Result<()>;
    /// Upserts the new version, then deletes the others.
    fn replace_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[VectorPoint],
    ) -> Result<()> {
        self.upsert_document(kb, path, hash, points)?;
        self.delete_other_versions(kb, path, hash)
    }
    /// Removes every point of (kb, path).
    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<()>;
    /// Removes every point of one generation of a knowledge base.
    fn delete_generation(&self, kb: &KbGeneration) -> Result<()>;
    /// Makes every change so far durable on disk.
    fn flush(&self) -> Result<()>;
    /// The nearest points to `vector` by cosine similarity among `kbs`, best first.
    /// An empty `kbs` or a zero `limit` returns no hits.
    fn search(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>>;
    /// [`VectorStore::search`] among the points of one language only.
    fn search_language(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Language,
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>>;
    /// The stored vectors of `ids`, in the order asked; unknown ids are skipped. Lets a renamed
    /// or copied document keep its embeddings instead of being embedded again.
    fn get_vectors(&self, ids: &[ChunkId]) -> Result<Vec<(ChunkId, Vec<f32>)>>;
    /// Points of a knowledge base, or of one document when `path` is given.
    fn count(&self, kb: &KbGeneration, path: Option<&DocumentPath>) -> Result<u64>;
    /// For each language among the stored points, the mean of up to `sample` of its vectors
    /// taken at random: a query's dot product with it is the query's average similarity to
    /// passages of that language.
    fn language_centroids(&self, sample: usize) -> Result<Vec<(Language, Vec<f32>)>>;
}
