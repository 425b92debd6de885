//! Hybrid retrieval and grounded answers: BM25 and dense retrieval run concurrently, fused by
//! reciprocal rank (or normalised scores), optionally reordered by a cross-encoder; `ask` picks
//! the sentences that support an answer or says there is none.
//!
//! This crate must not depend on the transport (tonic, protobuf) nor on ingest: it reads the
//! indexes through the traits of `lumbung-index`.

mod answer;
mod blocking;
mod error;
pub mod eval;
mod fusion;
mod sentences;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use lumbung_core::{AskConfig, Chunk, ChunkId, Fusion, KbName, SearchConfig};
use lumbung_embed::{Embedder, Reranker};
use lumbung_index::{LexicalIndex, VectorStore};

pub use answer::{Answer, SupportingSentence};
pub use blocking::CpuPool;
pub use error::{Error, Result};
pub use fusion::{FusedHit, RankedScore};

/// Longest query accepted, in characters: longer text is a document, not a question.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// A retrieved passage with the scores that ranked it.
#[derive(Debug, Clone)]
pub struct Passage {
    pub chunk: Chunk,
    pub fused_score: f32,
    pub bm25: Option<RankedScore>,
    pub dense: Option<RankedScore>,
    /// The cross-encoder's score, for passages it reordered.
    pub rerank: Option<f32>,
}

/// Which retrievers rank the passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retriever {
    #[default]
    Hybrid,
    Bm25,
    Dense,
    /// Hybrid, then the best candidates reordered by the cross-encoder.
    HybridRerank,
}

/// A validated search: the knowledge bases are the ones the caller may read.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub kbs: Vec<KbName>,
    pub top_k: usize,
    pub retriever: Retriever,
}

pub struct SearchEngine {
    lexical: Arc<dyn LexicalIndex>,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<Embedder>,
    pool: CpuPool,
    search: SearchConfig,
    ask: AskConfig,
    /// The cross-encoder and how many fused passages it reorders.
    reranker: Option<(Arc<Reranker>, usize)>,
}

impl SearchEngine {
    pub fn new(
        lexical: Arc<dyn LexicalIndex>,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<Embedder>,
        pool: CpuPool,
        search: SearchConfig,
        ask: AskConfig,
    ) -> Self {
        SearchEngine {
            lexical,
            vectors,
            embedder,
            pool,
            search,
            ask,
            reranker: None,
        }
    }

    /// Serves [`Retriever::HybridRerank`]: `reranker` reorders the best `candidates` passages.
    pub fn with_reranker(mut self, reranker: Arc<Reranker>, candidates: usize) -> Self {
        self.reranker = Some((reranker, candidates.max(1)));
        self
    }

    /// Checks a request's fields against the configured bounds.
    pub fn validate(&self, request: &SearchRequest) -> Result<()> {
        let chars = request.query.chars().count();
        if request.query.trim().is_empty() {
            return Err(Error::invalid("query", "must not be empty"));
        }
        if chars > MAX_QUERY_CHARS {
            return Err(Error::invalid(
                "query",
                format!("{chars} characters, at most {MAX_QUERY_CHARS} allowed"),
            ));
        }
        if request.top_k == 0 || request.top_k > self.search.max_top_k {
            return Err(Error::invalid(
                "top_k",
                format!("{} is outside 1..={}", request.top_k, self.search.max_top_k),
            ));
        }
        if request.kbs.is_empty() {
            return Err(Error::invalid(
                "knowledge_bases",
                "no knowledge base to search",
            ));
        }
        if request.retriever == Retriever::HybridRerank && self.reranker.is_none() {
            return Err(Error::Unavailable(
                "retriever hybrid_rerank: this server has no reranker (rerank.enabled = false)"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// BM25 and dense retrieval, run concurrently and fused (or either alone, or fused and
    /// reranked, as `request.retriever` says).
    pub async fn search(&self, request: &SearchRequest) -> Result<Vec<Passage>> {
        self.validate(request)?;
        let started = Instant::now();
        let rerank = match (&self.reranker, request.retriever) {
            (Some((reranker, candidates)), Retriever::HybridRerank) => {
                Some((Arc::clone(reranker), *candidates))
            }
            _ => None,
        };
        let fused_limit = request.top_k.max(rerank.as_ref().map_or(0, |(_, n)| *n));
        let candidates = self.search.candidates.max(fused_limit);
        // BM25 and the texts of dense hits come from one commit, so that a document being
        // replaced shows in one version or the other, never both.
        let snapshot = self.lexical.snapshot();

        let lexical = async {
            if request.retriever == Retriever::Dense {
                return Ok(Vec::new());
            }
            let snapshot = Arc::clone(&snapshot);
            let (query, kbs) = (request.query.clone(), request.kbs.clone());
            Ok(self
                .pool
                .run(move || snapshot.search(&query, &kbs, candidates))
                .await??)
        };
        let dense = async {
            if request.retriever == Retriever::Bm25 {
                return Ok(Vec::new());
            }
            let (embedder, vectors) = (Arc::clone(&self.embedder), Arc::clone(&self.vectors));
            let (query, kbs) = (request.query.clone(), request.kbs.clone());
            self.pool
                .run(move || -> Result<Vec<(ChunkId, f32)>> {
                    let vector = embedder.embed_query(&query)?;
                    Ok(vectors.search(&vector, &kbs, candidates)?)
                })
                .await?
        };
        let (lexical, dense): (Result<Vec<_>>, Result<Vec<_>>) = tokio::join!(lexical, dense);
        let (lexical, mut dense) = (lexical?, dense?);

        // Lexical hits carry their chunk already; dense-only hits are looked up in the same
        // snapshot. A vector hit whose chunk is not there belongs to a version committed after
        // the snapshot, or to one being replaced: it is dropped before fusion, so that it
        // neither takes a rank nor is served without its text.
        let mut known: HashMap<ChunkId, Chunk> = lexical
            .iter()
            .map(|hit| (hit.chunk.id, hit.chunk.clone()))
            .collect();
        let missing: Vec<ChunkId> = dense
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !known.contains_key(id))
            .collect();
        if !missing.is_empty() {
            for chunk in self
                .pool
                .run(move || snapshot.get_chunks(&missing))
                .await??
            {
                known.insert(chunk.id, chunk);
            }
            dense.retain(|(id, _)| known.contains_key(id));
        }

        let lexical_ids: Vec<ChunkId> = lexical.iter().map(|hit| hit.chunk.id).collect();
        let dense_ids: Vec<ChunkId> = dense.iter().map(|(id, _)| *id).collect();
        let lexical_scores: Vec<f32> = lexical.iter().map(|hit| hit.score).collect();
        let dense_scores: Vec<f32> = dense.iter().map(|(_, score)| *score).collect();
        let lists = [
            (
                lexical_ids.as_slice(),
                lexical_scores.as_slice(),
                self.search.bm25_weight,
            ),
            (
                dense_ids.as_slice(),
                dense_scores.as_slice(),
                self.search.dense_weight,
            ),
        ];
        let fused = match self.search.fusion {
            Fusion::Rrf => fusion::reciprocal_rank_fusion(&lists, self.search.rrf_k, fused_limit),
            Fusion::Normalized => {
                fusion::normalized_score_fusion(&lists, self.search.candidates, fused_limit)
            }
        };

        let mut passages: Vec<Passage> = fused
            .into_iter()
            .filter_map(|hit| {
                let chunk = known.remove(&hit.id)?;
                Some(Passage {
                    chunk,
                    fused_score: hit.fused_score,
                    bm25: hit.scores[0],
                    dense: hit.scores[1],
                    rerank: None,
                })
            })
            .collect();
        if let Some((reranker, candidates)) = rerank {
            let query = request.query.clone();
            passages = self
                .pool
                .run(move || rerank_passages(&reranker, &query, passages, candidates))
                .await??;
        }
        passages.truncate(request.top_k);
        tracing::debug!(
            kbs = request.kbs.len(),
            passages = passages.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "search"
        );
        Ok(passages)
    }

    /// The sentences that best support an answer to `question`, or an explicit no-answer.
    pub async fn ask(
        &self,
        question: &str,
        kbs: Vec<KbName>,
        max_sentences: usize,
    ) -> Result<Answer> {
        if max_sentences == 0 || max_sentences > answer::MAX_SENTENCES {
            return Err(Error::invalid(
                "max_sentences",
                format!("{max_sentences} is outside 1..={}", answer::MAX_SENTENCES),
            ));
        }
        let request = SearchRequest {
            query: question.to_string(),
            kbs,
            top_k: self.ask.passages,
            retriever: Retriever::Hybrid,
        };
        let passages = self.search(&request).await?;
        let embedder = Arc::clone(&self.embedder);
        let (question, config) = (question.to_string(), self.ask.clone());
        self.pool
            .run(move || {
                answer::select_sentences(&embedder, &question, &passages, &config, max_sentences)
            })
            .await?
    }
}

/// Orders the first `candidates` passages by the cross-encoder's score (ties keep their fused
/// order); the rest follow unchanged.
fn rerank_passages(
    reranker: &Reranker,
    query: &str,
    mut passages: Vec<Passage>,
    candidates: usize,
) -> Result<Vec<Passage>> {
    let head = candidates.min(passages.len());
    let texts: Vec<&str> = passages[..head]
        .iter()
        .map(|p| p.chunk.text.as_str())
        .collect();
    let scores = reranker.score(query, &texts)?;
    for (passage, score) in passages.iter_mut().zip(scores) {
        passage.rerank = Some(score);
    }
    passages[..head].sort_by(|a, b| {
        b.rerank
            .unwrap_or(f32::NEG_INFINITY)
            .total_cmp(&a.rerank.unwrap_or(f32::NEG_INFINITY))
    });
    Ok(passages)
}
