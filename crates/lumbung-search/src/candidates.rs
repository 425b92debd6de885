//! The passages both retrievers proposed, scored the same way whichever proposed them, then
//! fused.

use std::collections::HashMap;
use std::time::Instant;

use lumbung_core::{Chunk, ChunkId, Fusion, SearchConfig};
use lumbung_index::{LexicalSnapshot, ScoredChunk};

use crate::dense::DenseScorer;
use crate::fusion::{self, RankedList};
use crate::{DenseGroup, Passage, Result, Retriever};

/// A passage's dense evidence: its own vector's similarity to the query, its best sentence's,
/// and the two mixed.
#[derive(Debug, Clone, Copy)]
struct DenseScore {
    id: ChunkId,
    mixed: f32,
    best_sentence: Option<f32>,
}

pub(crate) struct Candidates {
    chunks: HashMap<ChunkId, Chunk>,
    /// BM25 hits, best first, with their coverage of the query.
    lexical: Vec<(ChunkId, f32, f32)>,
    /// Every candidate with a dense score, best first. With knowledge bases of several
    /// embedding models, each candidate is scored by its own model and the scores are ranked
    /// together as they are: normalising each model's list on its own would give every
    /// model's best candidate the top score, however unrelated.
    dense: Vec<DenseScore>,
}

impl Candidates {
    pub fn lexical_only(lexical: Vec<ScoredChunk>) -> Candidates {
        let mut chunks = HashMap::with_capacity(lexical.len());
        let mut hits = Vec::with_capacity(lexical.len());
        for hit in lexical {
            hits.push((hit.chunk.id, hit.score, hit.coverage));
            chunks.insert(hit.chunk.id, hit.chunk);
        }
        Candidates {
            chunks,
            lexical: hits,
            dense: Vec::new(),
        }
    }

    /// Scores every candidate of either list by dense similarity: dense hits are looked up in
    /// `snapshot` (those missing from it belong to a version committed after it, or to one
    /// being replaced, and are dropped so that they neither take a rank nor are served without
    /// their text), and every candidate's vector is read from its model's store. The dense
    /// score is `(1 - sentence_weight) * passage similarity + sentence_weight * best sentence
    /// similarity`, both as its model's scorer measures them (with the language taken out).
    pub fn with_dense(
        lexical: Vec<ScoredChunk>,
        dense: &[DenseGroup],
        snapshot: &dyn LexicalSnapshot,
        sentence_weight: f32,
    ) -> Result<Candidates> {
        let mut candidates = Candidates::lexical_only(lexical);
        let mut missing: Vec<ChunkId> = dense
            .iter()
            .flat_map(|group| group.hits.iter().copied())
            .filter(|id| !candidates.chunks.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let started = Instant::now();
        for chunk in snapshot.get_chunks(&missing)? {
            candidates.chunks.insert(chunk.id, chunk);
        }
        let texts_read = started.elapsed();
        let mut scored = Vec::with_capacity(candidates.chunks.len());
        for group in dense {
            let ids: Vec<ChunkId> = candidates
                .chunks
                .values()
                .filter(|chunk| dense.len() == 1 || group.kbs.contains(&chunk.citation.kb))
                .map(|chunk| chunk.id)
                .collect();
            let stored = group.vectors.get_vectors(&ids)?;
            scored.extend(candidates.score_dense(stored, &group.scorer, sentence_weight));
        }
        tracing::debug!(
            texts = missing.len(),
            texts_us = texts_read.as_micros() as u64,
            vectors = candidates.chunks.len(),
            vectors_us = (started.elapsed() - texts_read).as_micros() as u64,
            "candidates read"
        );
        scored.sort_by(|a, b| b.mixed.total_cmp(&a.mixed).then(a.id.cmp(&b.id)));
        candidates.dense = scored;
        Ok(candidates)
    }

    /// The dense scores of the candidates whose vectors are `stored`.
    fn score_dense<'a>(
        &'a self,
        stored: Vec<(ChunkId, Vec<f32>)>,
        scorer: &'a DenseScorer,
        sentence_weight: f32,
    ) -> impl Iterator<Item = DenseScore> + 'a {
        stored.into_iter().filter_map(move |(id, vector)| {
            let chunk = self.chunks.get(&id)?;
            let similarity = scorer.passage(&vector, chunk.language);
            let best_sentence = chunk
                .sentences
                .iter()
                .filter_map(|s| s.embedding.as_ref())
                .map(|embedding| scorer.sentence(embedding, chunk.language))
                .max_by(f32::total_cmp);
            let mixed = match best_sentence {
                Some(sentence) => (1.0 - sentence_weight) * similarity + sentence_weight * sentence,
                None => similarity,
            };
            Some(DenseScore {
                id,
                mixed,
                best_sentence,
            })
        })
    }

    /// Fuses the lists `retriever` asks for into at most `limit` passages, best first.
    ///
    /// In hybrid retrieval a BM25 hit's weight is `bm25_weight` times its coverage of the query
    /// to the power `bm25_coverage_exponent`: BM25 evidence that matches little of the question
    /// (a number, a name, which is all it finds across languages) must not outvote a strong
    /// dense match.
    pub fn fuse(
        mut self,
        config: &SearchConfig,
        retriever: Retriever,
        limit: usize,
    ) -> Vec<Passage> {
        let use_lexical = retriever != Retriever::Dense;
        let use_dense = retriever != Retriever::Bm25;
        let mut lists = Vec::with_capacity(2);
        if use_lexical {
            let ids = self.lexical.iter().map(|(id, _, _)| *id).collect();
            let scores = self.lexical.iter().map(|(_, score, _)| *score).collect();
            let weights = self
                .lexical
                .iter()
                .map(|(_, _, coverage)| {
                    if use_dense {
                        config.bm25_weight * coverage.powf(config.bm25_coverage_exponent)
                    } else {
                        // BM25 alone keeps its own order.
                        config.bm25_weight
                    }
                })
                .collect();
            lists.push(RankedList {
                ids,
                scores,
                weights,
            });
        }
        if use_dense {
            let ids = self.dense.iter().map(|d| d.id).collect();
            let scores = self.dense.iter().map(|d| d.mixed).collect();
            lists.push(RankedList::uniform(ids, scores, config.dense_weight));
        }
        let fused = match config.fusion {
            Fusion::Rrf => fusion::reciprocal_rank_fusion(&lists, config.rrf_k, limit),
            Fusion::Normalized => fusion::normalized_score_fusion(&lists, config.candidates, limit),
        };
        let coverage: HashMap<ChunkId, f32> = self
            .lexical
            .iter()
            .map(|(id, _, coverage)| (*id, *coverage))
            .collect();
        let best_sentence: HashMap<ChunkId, f32> = self
            .dense
            .iter()
            .filter_map(|d| Some((d.id, d.best_sentence?)))
            .collect();
        fused
            .into_iter()
            .filter_map(|hit| {
                let chunk = self.chunks.remove(&hit.id)?;
                let mut scores = hit.scores.into_iter();
                let bm25 = if use_lexical {
                    scores.next().flatten()
                } else {
                    None
                };
                let dense = if use_dense {
                    scores.next().flatten()
                } else {
                    None
                };
                Some(Passage {
                    chunk,
                    fused_score: hit.fused_score,
                    bm25,
                    bm25_coverage: bm25.and_then(|_| coverage.get(&hit.id).copied()),
                    dense,
                    best_sentence: best_sentence.get(&hit.id).copied(),
                    rerank: None,
                })
            })
            .collect()
    }
}
