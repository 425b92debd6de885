//! `LexicalIndex` on Qdrant: BM25 as a sparse vector per chunk, so that a query node needs
//! nothing but the cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lumbung_core::{
    Chunk, ChunkId, Citation, DocumentPath, KbGeneration, Language, VectorStoreConfig,
};
use lumbung_index::analyzer;
use lumbung_index::{LexicalIndex, LexicalSnapshot, ScoredChunk, sentence_codec};
use qdrant_client::qdrant::{
    self, Condition, Filter, GetPoints, Modifier, NamedVectors, PointStruct, Query,
    QueryBatchPoints, QueryPoints, ScoredPoint, UpsertPoints, Value, Vector, WithPayloadSelector,
    WithVectorsSelector,
};
use tantivy::tokenizer::TextAnalyzer;

use crate::remote::{Connection, Remote};
use crate::store::{
    KB_KEY, PATH_KEY, SPARSE_VECTOR, chunk_id, create_collection_once, ensure_keyword_indexes,
    point_id, sparse_collection,
};
use crate::{Error, Result};

/// BM25's term-frequency saturation and length normalisation, as tantivy uses them.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// A pasted log or e-mail must not turn into a query with thousands of terms.
const MAX_QUERY_TERMS: usize = 256;
/// Points per upsert call.
const UPSERT_BATCH: usize = 128;
/// How long the collection's point count (BM25's N for terms no chunk holds) is reused.
const POINT_COUNT_TTL: Duration = Duration::from_secs(10);

const TITLE_KEY: &str = "title";
const HEADINGS_KEY: &str = "headings";
const TEXT_KEY: &str = "text";
const LANGUAGE_KEY: &str = "language";
const SENTENCES_KEY: &str = "sentences";
const PAGE_KEY: &str = "page";
const CHAR_START_KEY: &str = "char_start";
const CHAR_END_KEY: &str = "char_end";
const ORDINAL_KEY: &str = "ordinal";

/// A term's index in the sparse vector: FNV-1a of its bytes folded to 32 bits. Stable across
/// versions (written into the collection); two terms that collide count as one, which at a
/// few hundred thousand distinct terms in 2^32 happens to a handful of rare ones.
pub(crate) fn term_index(term: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in term.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash ^ (hash >> 32)) as u32
}

/// A chunk's BM25 document weights: for each term of its indexed text (context and text, as
/// tantivy indexes it), `tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))`, with `avgdl` fixed
/// (`vector_store.bm25_average_chunk_terms`) since the weights are written once. Qdrant
/// multiplies each by the term's IDF at query time (the collection's `Modifier::Idf`).
pub(crate) fn bm25_weights(
    analyzer: &mut TextAnalyzer,
    text: &str,
    average_terms: f32,
) -> (Vec<u32>, Vec<f32>) {
    let terms = analyzer::token_texts(analyzer, text);
    let length = terms.len() as f32;
    let mut frequencies: HashMap<u32, f32> = HashMap::new();
    for term in &terms {
        *frequencies.entry(term_index(term)).or_default() += 1.0;
    }
    let norm = K1 * (1.0 - B + B * length / average_terms);
    let mut weights: Vec<(u32, f32)> = frequencies
        .into_iter()
        .map(|(index, tf)| (index, tf * (K1 + 1.0) / (tf + norm)))
        .collect();
    weights.sort_unstable_by_key(|(index, _)| *index);
    weights.into_iter().unzip()
}

/// What a commit applies, in the order staged.
enum Staged {
    Replace {
        kb: KbGeneration,
        path: DocumentPath,
        points: Vec<PointStruct>,
        keep: Vec<qdrant::PointId>,
    },
    /// Every chunk of the document, or of the generation when `path` is `None`.
    Delete {
        kb: KbGeneration,
        path: Option<DocumentPath>,
    },
}

/// The analyzer and client shared by the index and its snapshots.
struct Reader {
    remote: Arc<Remote>,
    collection: String,
    analyzer: TextAnalyzer,
    read_budget: Duration,
    /// The collection's point count and when it was read.
    point_count: Mutex<Option<(Instant, u64)>>,
}

/// BM25 over chunks in a Qdrant collection (`{vector collection}-chunks`), one point per chunk:
/// a sparse vector of the chunk's BM25 document weights under lumbung's own analyzer, scored
/// with the IDF Qdrant keeps for the collection, and the chunk itself (text, citation,
/// language, embedded sentences) as payload. A query node reads passages, BM25 hits and their
/// term coverage from the cluster alone.
///
/// Changes are staged in memory and applied by [`LexicalIndex::commit`]: per document, the new
/// chunks are upserted, then the document's other chunks deleted. Unlike tantivy's, a commit
/// is not atomic across documents and snapshots do not isolate: a search that runs while a
/// document is replaced can see its old chunks, its new ones, or (between the two calls) both.
/// A commit that fails is dropped; the ingest run that staged it fails with it and is redone
/// from the catalog.
pub struct QdrantLexicalIndex {
    reader: Arc<Reader>,
    average_terms: f32,
    staged: Mutex<Vec<Staged>>,
    write_budget: Duration,
    ordering: qdrant::WriteOrdering,
}

impl std::fmt::Debug for QdrantLexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantLexicalIndex")
            .field("collection", &self.reader.collection)
            .finish_non_exhaustive()
    }
}

impl QdrantLexicalIndex {
    /// Opens the chunk collection `collection` through `connection`, creating it (sparse
    /// vector with IDF, keyword indexes on `kb` and `path`) when there is none.
    pub fn open(
        connection: &Connection,
        config: &VectorStoreConfig,
        collection: &str,
    ) -> Result<Self> {
        let remote = connection.remote();
        let write_budget = Duration::from_secs(config.write_retry_seconds);
        let ordering = crate::store::write_ordering(config);
        let request = sparse_collection(collection, Modifier::Idf, config);
        create_collection_once(&remote, request, write_budget)?;
        ensure_keyword_indexes(
            &remote,
            collection,
            &[(KB_KEY, true, false), (PATH_KEY, false, false)],
            ordering,
            write_budget,
        )?;
        Ok(QdrantLexicalIndex {
            reader: Arc::new(Reader {
                remote,
                collection: collection.to_string(),
                analyzer: analyzer::analyzer(),
                read_budget: Duration::from_millis(config.search_retry_ms),
                point_count: Mutex::new(None),
            }),
            average_terms: config.bm25_average_chunk_terms,
            staged: Mutex::new(Vec::new()),
            write_budget,
            ordering,
        })
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Vec<Staged>> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn to_point(&self, kb: &KbGeneration, chunk: &Chunk) -> PointStruct {
        let citation = &chunk.citation;
        let (indices, values) = bm25_weights(
            &mut self.reader.analyzer.clone(),
            &chunk.indexed_text(),
            self.average_terms,
        );
        let mut payload: HashMap<String, Value> = HashMap::from([
            (KB_KEY.to_string(), Value::from(kb.key())),
            (
                PATH_KEY.to_string(),
                Value::from(citation.document_path.as_str()),
            ),
            (TITLE_KEY.to_string(), Value::from(citation.title.as_str())),
            (
                HEADINGS_KEY.to_string(),
                Value::from(citation.heading_path.clone()),
            ),
            (TEXT_KEY.to_string(), Value::from(chunk.text.as_str())),
            (LANGUAGE_KEY.to_string(), Value::from(chunk.language.code())),
            (
                SENTENCES_KEY.to_string(),
                Value::from(BASE64.encode(sentence_codec::encode(&chunk.sentences))),
            ),
            (
                CHAR_START_KEY.to_string(),
                Value::from(i64::from(citation.char_range.start)),
            ),
            (
                CHAR_END_KEY.to_string(),
                Value::from(i64::from(citation.char_range.end)),
            ),
            (
                ORDINAL_KEY.to_string(),
                Value::from(i64::from(chunk.ordinal)),
            ),
        ]);
        if let Some(page) = citation.page {
            payload.insert(PAGE_KEY.to_string(), Value::from(i64::from(page)));
        }
        let vectors =
            NamedVectors::default().add_vector(SPARSE_VECTOR, Vector::new_sparse(indices, values));
        PointStruct {
            id: Some(point_id(chunk.id)),
            payload,
            vectors: Some(vectors.into()),
        }
    }

    fn delete_where(&self, filter: Filter) -> Result<()> {
        self.reader.remote.delete_where(
            "delete chunks",
            &self.reader.collection,
            filter,
            self.ordering,
            self.write_budget,
        )
    }

    fn apply(&self, staged: Staged) -> Result<()> {
        match staged {
            Staged::Replace {
                kb,
                path,
                points,
                keep,
            } => {
                for batch in points.chunks(UPSERT_BATCH) {
                    let request = UpsertPoints {
                        collection_name: self.reader.collection.clone(),
                        wait: Some(true),
                        points: batch.to_vec(),
                        ordering: Some(self.ordering),
                        ..UpsertPoints::default()
                    };
                    self.reader
                        .remote
                        .call("upsert chunks", self.write_budget, move |client| {
                            let request = request.clone();
                            async move { client.upsert_points(request).await }
                        })?;
                }
                let mut stale = Filter::must(document_conditions(&kb, &path));
                if !keep.is_empty() {
                    stale.must_not = vec![Condition::has_id(keep)];
                }
                self.delete_where(stale)
            }
            Staged::Delete { kb, path } => self.delete_where(Filter::must(match &path {
                Some(path) => document_conditions(&kb, path),
                None => vec![Condition::matches(KB_KEY, kb.key().to_string())],
            })),
        }
    }
}

fn document_conditions(kb: &KbGeneration, path: &DocumentPath) -> Vec<Condition> {
    vec![
        Condition::matches(KB_KEY, kb.key().to_string()),
        Condition::matches(PATH_KEY, path.as_str().to_string()),
    ]
}

impl LexicalIndex for QdrantLexicalIndex {
    fn replace_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        chunks: &[Chunk],
    ) -> lumbung_index::Result<()> {
        if let Some(stray) = chunks
            .iter()
            .find(|chunk| &chunk.citation.kb != kb.kb() || &chunk.citation.document_path != path)
        {
            return Err(lumbung_index::Error::InvalidArgument(format!(
                "chunk {} belongs to {}/{}, not {kb}/{path}",
                stray.id, stray.citation.kb, stray.citation.document_path
            )));
        }
        let points: Vec<PointStruct> = chunks
            .iter()
            .map(|chunk| self.to_point(kb, chunk))
            .collect();
        let keep = chunks.iter().map(|chunk| point_id(chunk.id)).collect();
        self.staged().push(Staged::Replace {
            kb: kb.clone(),
            path: path.clone(),
            points,
            keep,
        });
        Ok(())
    }

    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> lumbung_index::Result<()> {
        self.staged().push(Staged::Delete {
            kb: kb.clone(),
            path: Some(path.clone()),
        });
        Ok(())
    }

    fn delete_generation(&self, kb: &KbGeneration) -> lumbung_index::Result<()> {
        self.staged().push(Staged::Delete {
            kb: kb.clone(),
            path: None,
        });
        Ok(())
    }

    fn commit(&self) -> lumbung_index::Result<()> {
        let staged = std::mem::take(&mut *self.staged());
        for change in staged {
            self.apply(change)?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<dyn LexicalSnapshot> {
        Arc::new(QdrantLexicalSnapshot {
            reader: Arc::clone(&self.reader),
        })
    }

    fn count_chunks(
        &self,
        kb: &KbGeneration,
        path: Option<&DocumentPath>,
    ) -> lumbung_index::Result<u64> {
        let filter = match path {
            Some(path) => Filter::must(document_conditions(kb, path)),
            None => Filter::must([Condition::matches(KB_KEY, kb.key().to_string())]),
        };
        Ok(self.reader.count(Some(filter), true)?)
    }
}

/// Reads of the chunk collection as it is when each call runs (Qdrant has no snapshots; see
/// [`QdrantLexicalIndex`]).
struct QdrantLexicalSnapshot {
    reader: Arc<Reader>,
}

impl Reader {
    fn count(&self, filter: Option<Filter>, exact: bool) -> Result<u64> {
        self.remote.count(
            "count chunks",
            &self.collection,
            filter,
            exact,
            self.read_budget,
        )
    }

    /// The collection's chunk count, reread every [`POINT_COUNT_TTL`].
    fn point_count(&self) -> Result<u64> {
        let mut cached = self
            .point_count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((read, count)) = *cached
            && read.elapsed() < POINT_COUNT_TTL
        {
            return Ok(count);
        }
        let count = self.count(None, false)?;
        *cached = Some((Instant::now(), count));
        Ok(count)
    }

    /// The distinct terms of `text`, each with its sparse index, at most [`MAX_QUERY_TERMS`];
    /// terms whose index another term already took are left out (see [`term_index`]).
    fn query_terms(&self, text: &str) -> Vec<(String, u32)> {
        let mut seen = std::collections::HashSet::new();
        analyzer::token_texts(&mut self.analyzer.clone(), text)
            .into_iter()
            .map(|term| {
                let index = term_index(&term);
                (term, index)
            })
            .filter(|(_, index)| seen.insert(*index))
            .take(MAX_QUERY_TERMS)
            .collect()
    }

    /// One single-term query per term, best chunk only: its score is the term's IDF times the
    /// chunk's stored weight, which comes back with it.
    fn probe(&self, index: u32) -> QueryPoints {
        QueryPoints {
            collection_name: self.collection.clone(),
            query: Some(Query::new_nearest(&[(index, 1.0f32)][..])),
            using: Some(SPARSE_VECTOR.to_string()),
            limit: Some(1),
            with_payload: Some(WithPayloadSelector::from(false)),
            with_vectors: Some(WithVectorsSelector::from(vec![SPARSE_VECTOR])),
            ..QueryPoints::default()
        }
    }

    /// Runs `main` (if any) and one probe per term in one batch; returns `main`'s points and
    /// each term's inverse document frequency as Qdrant computes it for the collection
    /// (`ln(1 + (N - df + 0.5) / (df + 0.5))`, the BM25 IDF tantivy uses too).
    fn search_with_idf(
        &self,
        main: Option<QueryPoints>,
        terms: &[(String, u32)],
    ) -> Result<(Vec<ScoredPoint>, Vec<f32>)> {
        let has_main = main.is_some();
        let mut queries: Vec<QueryPoints> = main.into_iter().collect();
        queries.extend(terms.iter().map(|(_, index)| self.probe(*index)));
        let request = QueryBatchPoints {
            collection_name: self.collection.clone(),
            query_points: queries,
            ..QueryBatchPoints::default()
        };
        let mut results = self
            .remote
            .call("search chunks", self.read_budget, move |client| {
                let request = request.clone();
                async move { client.query_batch(request).await }
            })?
            .result
            .into_iter();
        let points = if has_main {
            results.next().map(|batch| batch.result).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut unseen_idf = None;
        let mut idf = Vec::with_capacity(terms.len());
        for (_, index) in terms {
            let best = results
                .next()
                .and_then(|batch| batch.result.into_iter().next());
            let weight = best.as_ref().and_then(|point| sparse_weight(point, *index));
            match (best, weight) {
                (Some(point), Some(weight)) if weight > 0.0 => idf.push(point.score / weight),
                _ => {
                    // No chunk holds it: df = 0.
                    let value = match unseen_idf {
                        Some(value) => value,
                        None => {
                            let total = self.point_count()? as f32;
                            let value = (1.0 + (total + 0.5) / 0.5).ln();
                            unseen_idf = Some(value);
                            value
                        }
                    };
                    idf.push(value);
                }
            }
        }
        Ok((points, idf))
    }
}

/// The stored weight of sparse index `index` in a point read back with its sparse vector.
fn sparse_weight(point: &ScoredPoint, index: u32) -> Option<f32> {
    let (indices, values) = sparse_vector(point.vectors.clone())?;
    let at = indices.iter().position(|&i| i == index)?;
    values.get(at).copied()
}

fn sparse_vector(vectors: Option<qdrant::VectorsOutput>) -> Option<(Vec<u32>, Vec<f32>)> {
    let named = match vectors?.vectors_options? {
        qdrant::vectors_output::VectorsOptions::Vectors(named) => named,
        qdrant::vectors_output::VectorsOptions::Vector(_) => return None,
    };
    match named.vectors.get(SPARSE_VECTOR)?.clone().into_vector() {
        qdrant::vector_output::Vector::Sparse(sparse) => Some((sparse.indices, sparse.values)),
        _ => None,
    }
}

/// A chunk from a point's payload.
fn chunk(id: Option<&qdrant::PointId>, payload: &HashMap<String, Value>) -> Result<Chunk> {
    let id = chunk_id(id)?;
    let invalid = |what: &str| Error::InvalidPoint(format!("chunk {id}: {what}"));
    let text = |key: &str| -> Result<String> {
        payload
            .get(key)
            .and_then(|value| value.as_str())
            .cloned()
            .ok_or_else(|| invalid(&format!("no {key}")))
    };
    let number = |key: &str| -> Result<Option<u32>> {
        payload
            .get(key)
            .and_then(|value| value.as_integer())
            .map(|n| u32::try_from(n).map_err(|_| invalid(&format!("{key} {n} out of range"))))
            .transpose()
    };
    let required = |key: &str| number(key)?.ok_or_else(|| invalid(&format!("no {key}")));
    let headings = match payload.get(HEADINGS_KEY).and_then(|value| value.as_list()) {
        Some(list) => list
            .iter()
            .map(|value| value.as_str().cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("a heading that is not a string"))?,
        None => return Err(invalid("no headings")),
    };
    let sentences = BASE64
        .decode(text(SENTENCES_KEY)?)
        .map_err(|err| invalid(&format!("sentences: {err}")))?;
    let core = |err: lumbung_core::Error| invalid(&err.to_string());
    Ok(Chunk {
        id,
        ordinal: required(ORDINAL_KEY)?,
        citation: Citation {
            kb: KbGeneration::from_key(&text(KB_KEY)?)
                .map_err(core)?
                .kb()
                .clone(),
            document_path: DocumentPath::new(text(PATH_KEY)?).map_err(core)?,
            title: text(TITLE_KEY)?,
            heading_path: headings,
            page: number(PAGE_KEY)?,
            char_range: required(CHAR_START_KEY)?..required(CHAR_END_KEY)?,
        },
        text: text(TEXT_KEY)?,
        language: Language::from_code(&text(LANGUAGE_KEY)?),
        sentences: sentence_codec::decode(&sentences).map_err(|err| invalid(&err.to_string()))?,
    })
}

impl LexicalSnapshot for QdrantLexicalSnapshot {
    fn search(
        &self,
        query: &str,
        kbs: &[KbGeneration],
        limit: usize,
    ) -> lumbung_index::Result<Vec<ScoredChunk>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let reader = &self.reader;
        let terms = reader.query_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let kb_condition = match kbs {
            [kb] => Condition::matches(KB_KEY, kb.key().to_string()),
            _ => Condition::matches(
                KB_KEY,
                kbs.iter()
                    .map(|kb| kb.key().to_string())
                    .collect::<Vec<_>>(),
            ),
        };
        let weights: Vec<(u32, f32)> = terms.iter().map(|(_, index)| (*index, 1.0)).collect();
        let main = QueryPoints {
            collection_name: reader.collection.clone(),
            query: Some(Query::new_nearest(weights.as_slice())),
            using: Some(SPARSE_VECTOR.to_string()),
            filter: Some(Filter::must([kb_condition])),
            limit: Some(limit as u64),
            with_payload: Some(WithPayloadSelector::from(true)),
            with_vectors: Some(WithVectorsSelector::from(vec![SPARSE_VECTOR])),
            ..QueryPoints::default()
        };
        let (points, idf) = reader.search_with_idf(Some(main), &terms)?;
        let all: f32 = idf.iter().sum();
        points
            .into_iter()
            .map(|point| {
                // The share of the query's IDF mass the chunk holds, as the tantivy index
                // computes it from its postings.
                let held = sparse_vector(point.vectors.clone()).map_or(0.0, |(indices, _)| {
                    terms
                        .iter()
                        .zip(&idf)
                        .filter(|((_, index), _)| indices.binary_search(index).is_ok())
                        .map(|(_, weight)| weight)
                        .sum::<f32>()
                });
                Ok(ScoredChunk {
                    chunk: chunk(point.id.as_ref(), &point.payload)?,
                    score: point.score,
                    coverage: if all > 0.0 { held / all } else { 0.0 },
                })
            })
            .collect()
    }

    fn get_chunks(&self, ids: &[ChunkId]) -> lumbung_index::Result<Vec<Chunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = GetPoints {
            collection_name: self.reader.collection.clone(),
            ids: ids.iter().map(|id| point_id(*id)).collect(),
            with_payload: Some(WithPayloadSelector::from(true)),
            with_vectors: Some(WithVectorsSelector::from(false)),
            ..GetPoints::default()
        };
        let points = self
            .reader
            .remote
            .call("get chunks", self.reader.read_budget, move |client| {
                let request = request.clone();
                async move { client.get_points(request).await }
            })?
            .result;
        let mut found: HashMap<ChunkId, Chunk> = HashMap::with_capacity(points.len());
        for point in points {
            let chunk = chunk(point.id.as_ref(), &point.payload)?;
            found.insert(chunk.id, chunk);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    fn term_weights(&self, text: &str) -> lumbung_index::Result<Vec<(String, f32)>> {
        let terms = self.reader.query_terms(text);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let (_, idf) = self.reader.search_with_idf(None, &terms)?;
        Ok(terms.into_iter().map(|(term, _)| term).zip(idf).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_weights_saturate_with_frequency_and_shrink_with_length() {
        let mut analyzer = analyzer::analyzer();
        let (indices, values) = bm25_weights(&mut analyzer, "valve valve valve pump", 100.0);
        let weight =
            |term: &str| values[indices.iter().position(|&i| i == term_index(term)).unwrap()];
        assert!(weight("valv") > weight("pump"), "stemmed, and counted");
        assert!(weight("valv") < 3.0 * weight("pump"), "saturated");
        let long = format!("pump {}", "filler ".repeat(300));
        let (long_indices, long_values) = bm25_weights(&mut analyzer, &long, 100.0);
        let long_pump = long_values[long_indices
            .iter()
            .position(|&i| i == term_index("pump"))
            .unwrap()];
        assert!(
            long_pump < weight("pump"),
            "a longer chunk weighs a term less"
        );
        assert!(indices.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
    }
}
