//! Hybrid retrieval and grounded answers: BM25 and dense retrieval run concurrently. Every
//! candidate gets a dense score that mixes its passage vector's similarity with its best
//! sentence's, each with the languages' means taken out (`dense.rs`), and a BM25 weight that
//! shrinks with how little of the question it matches; the lists are fused by normalised scores
//! (or reciprocal rank), optionally reordered by a cross-encoder. `ask` picks the sentences
//! that answer, by the sentence embeddings stored at ingest and the question's words, or says
//! there is none.
//!
//! This crate must not depend on the transport (tonic, protobuf) nor on ingest: it reads the
//! indexes through the traits of `lumbung-index`.

mod answer;
mod blocking;
mod candidates;
mod decision;
mod dense;
mod error;
pub mod eval;
mod fusion;
mod question;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use lumbung_core::{
    AskConfig, Chunk, ChunkId, KbGeneration, KbName, Language, ModelName, SearchConfig,
};
use lumbung_embed::{Embedder, Reranker};
use lumbung_index::{LexicalIndex, LexicalSnapshot, ScoredChunk, VectorStore};

pub use answer::{Answer, HandOff, SentenceSignals, SupportingSentence};
pub use blocking::{BoundedTurns, CpuPool};
use candidates::Candidates;
pub use decision::{AnswerDecision, DECISION_FORMAT, DecisionFeatures, FEATURE_NAMES};
use dense::{DenseScorer, LanguageCentroids, QueryScorers};
pub use error::{Error, Result};
pub use fusion::{FusedHit, RankedList, RankedScore};

/// Longest query accepted, in characters: longer text is a document, not a question.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// A retrieved passage with the scores that ranked it.
#[derive(Debug, Clone)]
pub struct Passage {
    pub chunk: Chunk,
    pub fused_score: f32,
    pub bm25: Option<RankedScore>,
    /// The share of the query's term weight the passage holds (see `ScoredChunk::coverage`),
    /// where BM25 found it.
    pub bm25_coverage: Option<f32>,
    /// The dense score (the passage vector's and its best sentence's similarity, mixed by
    /// `search.sentence_weight`, languages' means taken out) and the rank it gives.
    pub dense: Option<RankedScore>,
    /// The similarity of the query and the passage's closest sentence, as in `dense`.
    pub best_sentence: Option<f32>,
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

/// The knowledge bases one request reads: the ones it named, or all, among those its caller may
/// read. Every engine call takes one, never a raw list, so that no path reaches a knowledge
/// base the caller's identity was not checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    kbs: Vec<KbGeneration>,
    /// The embedding model of each of `kbs`' generations, in the same order.
    models: Vec<ModelName>,
}

impl Scope {
    /// Built by the server's resolver from the caller's identity, or by a tool that owns the
    /// whole data directory (`lumbung eval`, `lumbung bench`): one generation per knowledge
    /// base, the one that serves, so that a search never reads two of one knowledge base,
    /// with the model it was embedded with.
    pub fn resolved(mut generations: Vec<(KbGeneration, ModelName)>) -> Scope {
        generations.sort();
        generations.dedup_by(|a, b| a.0.kb() == b.0.kb());
        let (kbs, models) = generations.into_iter().unzip();
        Scope { kbs, models }
    }

    /// Each generation searched with its embedding model.
    pub fn entries(&self) -> impl Iterator<Item = (&KbGeneration, &ModelName)> {
        self.kbs.iter().zip(&self.models)
    }

    /// The knowledge bases searched with each embedding model, and their generations.
    pub fn by_model(&self) -> BTreeMap<&ModelName, Vec<KbGeneration>> {
        let mut groups: BTreeMap<&ModelName, Vec<KbGeneration>> = BTreeMap::new();
        for (generation, model) in self.kbs.iter().zip(&self.models) {
            groups.entry(model).or_default().push(generation.clone());
        }
        groups
    }

    /// The generations searched, one per knowledge base, sorted by name.
    pub fn generations(&self) -> &[KbGeneration] {
        &self.kbs
    }

    /// The knowledge bases searched, sorted.
    pub fn kbs(&self) -> impl ExactSizeIterator<Item = &KbName> {
        self.kbs.iter().map(KbGeneration::kb)
    }

    /// Whether `kb` is searched.
    pub fn contains(&self, kb: &KbName) -> bool {
        self.kbs.iter().any(|generation| generation.kb() == kb)
    }

    pub fn is_empty(&self) -> bool {
        self.kbs.is_empty()
    }
}

/// A validated search over a checked scope.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub scope: Scope,
    pub top_k: usize,
    pub retriever: Retriever,
}

/// An embedding model and the vector store of the generations embedded with it.
#[derive(Clone)]
pub struct QueryModel {
    pub name: ModelName,
    pub embedder: Arc<Embedder>,
    pub vectors: Arc<dyn VectorStore>,
}

/// What dense retrieval needs of one model.
struct DenseModel {
    embedder: Arc<Embedder>,
    vectors: Arc<dyn VectorStore>,
    /// The languages' mean vectors in this model's space.
    centroids: LanguageCentroids,
}

pub struct SearchEngine {
    lexical: Arc<dyn LexicalIndex>,
    /// Every model a knowledge base may be embedded with, by name: a scope's knowledge bases
    /// are searched with theirs, the query embedded once per model.
    models: BTreeMap<ModelName, Arc<DenseModel>>,
    pool: CpuPool,
    search: SearchConfig,
    ask: AskConfig,
    /// The cross-encoder and how many fused passages it reorders.
    reranker: Option<(Arc<Reranker>, usize)>,
    /// Swapped whole when an admin recalibrates; each `ask` uses the one it started with.
    decision: RwLock<Arc<AnswerDecision>>,
}

impl SearchEngine {
    pub fn new(
        lexical: Arc<dyn LexicalIndex>,
        models: Vec<QueryModel>,
        pool: CpuPool,
        search: SearchConfig,
        ask: AskConfig,
    ) -> Self {
        let models = models
            .into_iter()
            .map(|model| {
                let dense = Arc::new(DenseModel {
                    embedder: model.embedder,
                    vectors: model.vectors,
                    centroids: LanguageCentroids::default(),
                });
                (model.name, dense)
            })
            .collect();
        SearchEngine {
            lexical,
            models,
            pool,
            search,
            ask,
            reranker: None,
            decision: RwLock::new(Arc::new(AnswerDecision::builtin())),
        }
    }

    /// The decision `ask` answers or hands off by.
    pub fn decision(&self) -> Arc<AnswerDecision> {
        Arc::clone(&self.decision.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the decision for the questions asked from now on.
    pub fn set_decision(&self, decision: AnswerDecision) {
        *self
            .decision
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(decision);
    }

    pub fn ask_config(&self) -> &AskConfig {
        &self.ask
    }

    /// Tasks waiting for a core now.
    pub fn pool_waiting(&self) -> usize {
        self.pool.waiting()
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
        if request.scope.is_empty() {
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
        Ok(self.retrieve(request).await?.passages)
    }

    /// [`SearchEngine::search`], keeping what `ask` needs again: the query's vector and the
    /// lexical snapshot the passages were read from.
    async fn retrieve(&self, request: &SearchRequest) -> Result<Retrieved> {
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
        let query_language = Language::detect(&request.query);
        // BM25 and the texts of dense hits come from one commit, so that a document being
        // replaced shows in one version or the other, never both.
        let snapshot = self.lexical.snapshot();

        let lexical = async {
            if request.retriever == Retriever::Dense {
                return Ok(Vec::new());
            }
            let snapshot = Arc::clone(&snapshot);
            // "how long", "berapa lama": question words, not what to match.
            let query = question::subject(&request.query);
            let kbs = request.scope.generations().to_vec();
            Ok(self
                .pool
                .run(move || snapshot.search(&query, &kbs, candidates))
                .await??)
        };
        let dense = async {
            if request.retriever == Retriever::Bm25 {
                return Ok(None);
            }
            let mut models = Vec::new();
            for (name, kbs) in request.scope.by_model() {
                let model = self.models.get(name).ok_or_else(|| {
                    Error::Unavailable(format!(
                        "{} embedded with model {name}, which this server does not load",
                        kbs.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                models.push((Arc::clone(model), kbs));
            }
            let query = request.query.clone();
            let centering = self.search.language_centering;
            self.pool
                .run(move || -> Result<Option<Vec<DenseGroup>>> {
                    let mut groups = Vec::with_capacity(models.len());
                    for (model, kbs) in models {
                        groups.push(dense_group(
                            &query,
                            query_language,
                            &model,
                            &kbs,
                            candidates,
                            centering,
                        )?);
                    }
                    Ok(Some(groups))
                })
                .await?
        };
        let (lexical, dense): (Result<Vec<ScoredChunk>>, Result<Option<Vec<DenseGroup>>>) =
            tokio::join!(lexical, dense);
        let (lexical, dense) = (lexical?, dense?);

        let (scored, scorers) = match dense {
            None => (Candidates::lexical_only(lexical), None),
            Some(dense) => {
                let snapshot = Arc::clone(&snapshot);
                let sentence_weight = self.search.sentence_weight;
                self.pool
                    .run(move || -> Result<_> {
                        let candidates = Candidates::with_dense(
                            lexical,
                            &dense,
                            snapshot.as_ref(),
                            sentence_weight,
                        )?;
                        let scorers = dense
                            .into_iter()
                            .map(|group| (group.kbs, group.scorer))
                            .collect();
                        Ok((candidates, Some(QueryScorers::new(scorers))))
                    })
                    .await??
            }
        };
        let mut passages = scored.fuse(&self.search, request.retriever, fused_limit);
        if let Some((reranker, candidates)) = rerank {
            let query = request.query.clone();
            passages = self
                .pool
                .run(move || rerank_passages(&reranker, &query, passages, candidates))
                .await??;
        }
        passages.truncate(request.top_k);
        tracing::debug!(
            kbs = request.scope.kbs().len(),
            passages = passages.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "search"
        );
        Ok(Retrieved {
            passages,
            scorers,
            snapshot,
        })
    }

    /// The sentences that best support an answer to `question`, how likely they answer it, and
    /// whether that is likely enough (`ask.min_confidence`) to answer rather than hand off.
    pub async fn ask(&self, question: &str, scope: &Scope, max_sentences: usize) -> Result<Answer> {
        if max_sentences == 0 || max_sentences > answer::MAX_SENTENCES {
            return Err(Error::invalid(
                "max_sentences",
                format!("{max_sentences} is outside 1..={}", answer::MAX_SENTENCES),
            ));
        }
        let decision = self.decision();
        let config = self.ask.clone();
        self.with_signals(question, scope, move |input| {
            let features = DecisionFeatures::compute(input);
            let sentences = answer::quote(input.ranked, &config, max_sentences);
            let confidence = if sentences.is_empty() {
                0.0
            } else {
                decision.confidence(&features)
            };
            let hand_off = if input.passages.is_empty() {
                Some(HandOff::NoPassage)
            } else if sentences.is_empty() || confidence < config.min_confidence {
                Some(HandOff::NotSupported)
            } else {
                None
            };
            Answer {
                sentences,
                confidence,
                features,
                hand_off,
                closest_kb: input.passages.first().map(|p| p.chunk.citation.kb.clone()),
            }
        })
        .await
    }

    /// Every sentence `ask` chooses from, with the signals it ranks them by: what
    /// `lumbung eval --ask` records to explain and fit the weights in `[ask]`.
    pub async fn ask_signals(&self, question: &str, scope: &Scope) -> Result<Vec<SentenceSignals>> {
        self.with_signals(question, scope, |input| {
            input.ranked.iter().map(|(_, s)| s.clone()).collect()
        })
        .await
    }

    /// Retrieves the passages for `question`, ranks their sentences, and hands both to `then`
    /// on the CPU pool.
    async fn with_signals<T: Send + 'static>(
        &self,
        question: &str,
        scope: &Scope,
        then: impl FnOnce(&decision::DecisionInput<'_>) -> T + Send + 'static,
    ) -> Result<T> {
        let request = SearchRequest {
            query: question.to_string(),
            scope: scope.clone(),
            top_k: self.ask.passages,
            retriever: Retriever::Hybrid,
        };
        let retrieved = self.retrieve(&request).await?;
        let Some(scorers) = retrieved.scorers else {
            return Err(Error::Task(
                "hybrid retrieval without a query vector".into(),
            ));
        };
        let question = question.to_string();
        let config = self.ask.clone();
        self.pool
            .run(move || {
                let terms = retrieved
                    .snapshot
                    .term_weights(&question::subject(&question))?;
                let signals = answer::sentence_signals(
                    &answer::Question {
                        text: &question,
                        scorers: &scorers,
                        terms: &terms,
                    },
                    &retrieved.passages,
                );
                let ranked = answer::rank(signals, &config);
                Ok(then(&decision::DecisionInput {
                    question: &question,
                    question_language: Language::detect(&question),
                    terms: &terms,
                    ranked: &ranked,
                    passages: &retrieved.passages,
                }))
            })
            .await?
    }
}

/// What [`SearchEngine::retrieve`] found, with what it found it with.
struct Retrieved {
    passages: Vec<Passage>,
    /// How the query's embeddings compare with passages and sentences; `None` when only BM25
    /// ran.
    scorers: Option<QueryScorers>,
    snapshot: Arc<dyn LexicalSnapshot>,
}

/// What dense retrieval proposes for the knowledge bases of one embedding model: candidates,
/// the scorer that ranks them, and the store of their vectors.
struct DenseGroup {
    kbs: Vec<KbName>,
    scorer: DenseScorer,
    hits: Vec<ChunkId>,
    vectors: Arc<dyn VectorStore>,
}

/// Embeds `query` with one model and finds its nearest passages among `kbs`.
fn dense_group(
    query: &str,
    query_language: Language,
    model: &DenseModel,
    kbs: &[KbGeneration],
    candidates: usize,
    centering: f32,
) -> Result<DenseGroup> {
    let vectors = &model.vectors;
    let started = Instant::now();
    let vector = model.embedder.embed_query(query)?;
    let embedded = started.elapsed();
    let means = if centering > 0.0 {
        model.centroids.get(vectors.as_ref())?
    } else {
        Arc::new(Vec::new())
    };
    // The nearest by plain cosine are mostly in the question's language; each language's
    // nearest are fetched so that the centred scores can reorder them all.
    let mut hits = Vec::new();
    if means.len() > 1 {
        for (language, _) in means.iter() {
            hits.extend(
                vectors
                    .search_language(&vector, kbs, *language, candidates)?
                    .into_iter()
                    .map(|(id, _)| id),
            );
        }
    } else {
        hits.extend(
            vectors
                .search(&vector, kbs, candidates)?
                .into_iter()
                .map(|(id, _)| id),
        );
    }
    tracing::debug!(
        embed_us = embedded.as_micros() as u64,
        search_us = (started.elapsed() - embedded).as_micros() as u64,
        hits = hits.len(),
        "dense retrieval"
    );
    Ok(DenseGroup {
        kbs: kbs.iter().map(|kb| kb.kb().clone()).collect(),
        scorer: DenseScorer::new(vector, query_language, &means, centering),
        hits,
        vectors: Arc::clone(vectors),
    })
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
