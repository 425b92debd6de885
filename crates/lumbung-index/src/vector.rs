//! The vector store on an embedded Qdrant shard (`qdrant-edge`).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use lumbung_core::{ChunkId, ContentHash, DocumentPath, KbGeneration, Language, VectorIndexConfig};
use qdrant_edge::external::serde_json::{self, json};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    AcornSearchParams, Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance,
    EdgeConfig, EdgeOptimizersConfig, EdgeShard, EdgeVectorParamsBuilder, FacetRequest, FacetValue,
    FieldCondition, FieldIndexOperations, Filter, HnswIndexConfig, JsonPath, Match, NamedQuery,
    PayloadFieldSchema, PointId, PointInsertOperations, PointOperations, PointStruct,
    QuantizationConfig, QuantizationSearchParams, QueryEnum, QueryRequest, Sample, ScoringQuery,
    SearchParams, UpdateOperation, VectorInternal, VectorStructInternal, WithPayloadInterface,
    WithVector,
};

use crate::{Error, Result, VectorPoint, VectorStore};

const KB_KEY: &str = "kb";
const PATH_KEY: &str = "path";
const HASH_KEY: &str = "content_hash";
const LANGUAGE_KEY: &str = "language";

fn key(name: &str) -> JsonPath {
    // Only called with the plain identifiers above, which always parse.
    name.parse()
        .unwrap_or_else(|()| unreachable!("{name} is a valid json path"))
}

/// Scopes of up to this many knowledge bases are searched one knowledge base at a time (see
/// `EdgeVectorStore::nearest`).
const FAN_OUT_MAX_KBS: usize = 32;

/// How many times more candidates the int8 search keeps for rescoring with the full vectors.
const RESCORE_OVERSAMPLING: f64 = 2.0;

/// Flushes tried before one fails (about 4 s of waiting in all).
const FLUSH_ATTEMPTS: usize = 12;

/// ACORN on or off, at Qdrant's default selectivity bound (filters keeping under 40% of the
/// points). Built through serde: its bound's type is not exported.
fn acorn(enable: bool) -> Result<AcornSearchParams> {
    serde_json::from_value(json!({ "enable": enable }))
        .map_err(|err| Error::InvalidStoredData(format!("acorn search params: {err}")))
}

/// Writes the dense vector's parameters, the graph settings and the int8 copy from `index` into
/// a shard configuration. Fails when the configuration already holds another dimension or
/// distance.
fn apply_index_config(
    config: &mut EdgeConfig,
    dimension: usize,
    index: &VectorIndexConfig,
) -> Result<()> {
    if let Some(params) = config.vectors.get(DEFAULT_VECTOR_NAME) {
        if params.size != dimension {
            return Err(Error::DimensionMismatch {
                expected: dimension,
                actual: params.size,
            });
        }
        if params.distance != Distance::Cosine {
            return Err(Error::InvalidStoredData(format!(
                "the vector store uses {:?} distance, not cosine",
                params.distance
            )));
        }
    }
    let quantization: Option<QuantizationConfig> = if index.int8_quantization {
        let config = json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}});
        Some(
            serde_json::from_value(config)
                .map_err(|err| Error::InvalidStoredData(format!("quantization config: {err}")))?,
        )
    } else {
        None
    };
    config.vectors.insert(
        DEFAULT_VECTOR_NAME.to_string(),
        EdgeVectorParamsBuilder::new(dimension, Distance::Cosine)
            .on_disk(index.vectors_on_disk)
            .build(),
    );
    config.quantization_config = quantization;
    config.hnsw_config = HnswIndexConfig {
        m: index.hnsw_m,
        ef_construct: index.hnsw_ef_construct,
        payload_m: Some(index.hnsw_payload_m),
        ..HnswIndexConfig::default()
    };
    config.optimizers = EdgeOptimizersConfig {
        indexing_threshold: Some(index.indexing_threshold_kb),
        ..config.optimizers.clone()
    };
    Ok(())
}

/// The dense vector of a point read back with its vector, unnamed or under the default name.
fn dense_vector(vector: Option<VectorStructInternal>) -> Option<Vec<f32>> {
    match vector? {
        VectorStructInternal::Single(vector) => Some(vector),
        VectorStructInternal::Named(mut named) => match named.remove(DEFAULT_VECTOR_NAME)? {
            VectorInternal::Dense(vector) => Some(vector),
            _ => None,
        },
        _ => None,
    }
}

/// The `limit` points nearest to `vector` among those `filter` keeps, with `payload` and
/// without their vectors.
fn nearest_request(
    vector: &[f32],
    filter: Option<Filter>,
    limit: usize,
    params: SearchParams,
    payload: WithPayloadInterface,
) -> QueryRequest {
    QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
            NamedQuery::default_dense(vector.to_vec()),
        ))),
        filter,
        score_threshold: None,
        limit,
        offset: 0,
        params: Some(params),
        with_vector: WithVector::Bool(false),
        with_payload: payload,
    }
}

fn matches(name: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        key(name),
        Match::from(value.to_string()),
    ))
}

fn document_filter(kb: &KbGeneration, path: &DocumentPath) -> Filter {
    Filter {
        must: Some(vec![
            matches(KB_KEY, kb.key()),
            matches(PATH_KEY, path.as_str()),
        ]),
        ..Filter::new()
    }
}

fn point_id(id: ChunkId) -> PointId {
    PointId::Uuid(Uuid::from_u128(id.as_u128()))
}

fn chunk_id(id: PointId) -> Result<ChunkId> {
    match id {
        PointId::Uuid(uuid) => Ok(ChunkId::from_u128(uuid.as_u128())),
        PointId::NumId(n) => Err(Error::InvalidStoredData(format!("numeric point id {n}"))),
    }
}

/// Dense vectors in an embedded Qdrant shard on local disk, one point per chunk with the
/// payload `kb`, `path`, `content_hash` and `language` (keyword-indexed on `kb`, `path` and
/// `language`).
///
/// Writes are serialised by a mutex; searches and counts run concurrently with them and with
/// each other. Changes are visible to searches at once but durable only after
/// [`VectorStore::flush`] (or a clean drop): qdrant-edge 0.7 writes a WAL but does not replay it
/// on open, so whatever was not flushed is lost on a crash.
///
/// Segments get an HNSW graph (with extra links per knowledge base) and an int8 copy of their
/// vectors when [`EdgeVectorStore::optimize`] runs: from a background thread after
/// `optimize_after_changes` changes ([`EdgeVectorStore::optimize_in_background`]), or directly
/// after a bulk load. Until then a segment is searched exactly.
pub struct EdgeVectorStore {
    shard: EdgeShard,
    dimension: usize,
    /// Serialises updates and flushes: `EdgeShard::flush` panics instead of waiting when an
    /// update holds the WAL.
    writes: Mutex<()>,
    /// One optimisation at a time.
    optimizing: Mutex<()>,
    search_params: SearchParams,
    /// Points written and documents removed since the last optimisation started.
    changes: AtomicU64,
    optimize_after_changes: u64,
    /// Writes since the store was opened: dates `stored_kbs`.
    writes_done: AtomicU64,
    /// The knowledge bases holding points, as of a number of writes.
    stored_kbs: Mutex<Option<(u64, Arc<HashSet<String>>)>>,
}

/// The state of the vector store's segments, from [`EdgeVectorStore::index_info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorIndexInfo {
    pub segments: usize,
    pub points: usize,
    pub indexed_points: usize,
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl EdgeVectorStore {
    /// Opens the shard in `dir`, creating it for vectors of `dimension` when there is none, and
    /// applies `index` (a changed graph setting rebuilds the graphs at the next optimisation).
    ///
    /// Fails with [`Error::DimensionMismatch`] when the shard on disk holds another dimension,
    /// and when another process has the shard open.
    pub fn open(dir: &Path, dimension: usize, index: &VectorIndexConfig) -> Result<Self> {
        if dimension == 0 {
            return Err(Error::InvalidArgument(
                "vector dimension must be positive".to_string(),
            ));
        }
        fs_err::create_dir_all(dir)?;
        let shard = match EdgeConfig::load(dir) {
            Some(config) => {
                let mut config = config?;
                if !config.vectors.contains_key(DEFAULT_VECTOR_NAME) {
                    return Err(Error::InvalidStoredData(format!(
                        "{} holds no dense vector",
                        dir.display()
                    )));
                }
                apply_index_config(&mut config, dimension, index)?;
                EdgeShard::load(dir, Some(config))?
            }
            None => {
                let mut config = EdgeConfig::builder().build();
                apply_index_config(&mut config, dimension, index)?;
                EdgeShard::new(dir, config)?
            }
        };
        let store = EdgeVectorStore {
            shard,
            dimension,
            writes: Mutex::new(()),
            optimizing: Mutex::new(()),
            search_params: SearchParams {
                hnsw_ef: Some(index.search_ef),
                acorn: Some(acorn(index.filtered_search_acorn)?),
                // Segments optimised while int8 was on keep their int8 copy until rebuilt:
                // turning it off must also stop searches from using it.
                quantization: Some(QuantizationSearchParams {
                    ignore: !index.int8_quantization,
                    rescore: Some(true),
                    oversampling: Some(RESCORE_OVERSAMPLING),
                }),
                ..SearchParams::default()
            },
            // Whatever a previous run left unoptimised is looked at once at start.
            changes: AtomicU64::new(index.optimize_after_changes),
            optimize_after_changes: index.optimize_after_changes,
            writes_done: AtomicU64::new(0),
            stored_kbs: Mutex::new(None),
        };
        store.ensure_payload_indexes()?;
        Ok(store)
    }

    /// Starts a thread, at nice value `niceness`, that optimises the store whenever
    /// `optimize_after_changes` points have changed since the last optimisation (checked every
    /// `interval`). It holds the store only while it optimises and ends once the store is
    /// dropped (after an optimisation in progress finishes). Writes and searches go on
    /// meanwhile: the optimiser builds new segments beside the live ones and swaps them in.
    pub fn optimize_in_background(
        self: &Arc<Self>,
        niceness: i32,
        interval: Duration,
    ) -> std::io::Result<()> {
        if self.optimize_after_changes == 0 {
            return Ok(());
        }
        let store: Weak<EdgeVectorStore> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("vector-optimizer".to_string())
            .spawn(move || {
                lumbung_core::lower_current_thread_priority(niceness);
                loop {
                    std::thread::sleep(interval);
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    if store.changes.load(Ordering::Relaxed) < store.optimize_after_changes {
                        continue;
                    }
                    if let Err(err) = store.optimize() {
                        tracing::warn!(error = %err, "background vector optimisation failed");
                    }
                }
            })?;
        Ok(())
    }

    /// Nearest points by exact comparison with every point in `kbs` (no graph, no int8 copy):
    /// the reference the graph search's recall is measured against.
    pub fn search_exact(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>> {
        let exact = SearchParams {
            exact: true,
            ..SearchParams::default()
        };
        self.nearest(vector, kbs, None, limit, exact)
    }

    /// Points written and documents removed since the last optimisation started.
    pub fn changes_since_optimize(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Segments, points (deleted ones not yet removed included) and points in a graph.
    pub fn index_info(&self) -> VectorIndexInfo {
        let info = self.shard.info();
        VectorIndexInfo {
            segments: info.segments_count,
            points: info.points_count,
            indexed_points: info.indexed_vectors_count,
        }
    }

    /// Merges small segments, drops deleted points and builds the HNSW graph (and the int8
    /// copy) on segments above the indexing threshold (about 10 MB of vectors); blocks until
    /// done. A second caller waits for the first.
    ///
    /// CPU-heavy and proportional to the changed segments: after a bulk load, or from
    /// [`EdgeVectorStore::optimize_in_background`], not after every document. Searches and
    /// writes go on meanwhile. Returns whether anything was optimised.
    pub fn optimize(&self) -> Result<bool> {
        let _optimizing = self
            .optimizing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let changes = self.changes.swap(0, Ordering::Relaxed);
        let optimized = self.shard.optimize().inspect_err(|_| {
            // Not done: the next check tries again.
            self.changes.fetch_add(changes, Ordering::Relaxed);
        })?;
        // Segments created by the optimiser start without the payload indexes.
        self.ensure_payload_indexes()?;
        if optimized {
            tracing::info!(
                changes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "vector store optimised"
            );
        }
        Ok(optimized)
    }

    /// The dimension of the vectors this store holds.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        // The guarded value is (); a panic elsewhere leaves nothing inconsistent behind it.
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keyword indexes on `kb` and `path` let filtered searches and deletes skip other
    /// knowledge bases instead of scanning their payloads. Segments that already have them
    /// are left alone.
    ///
    /// `kb` is marked as the tenant field: segments keep each knowledge base's points together
    /// and the graph gets extra links among them (`hnsw_payload_m`).
    fn ensure_payload_indexes(&self) -> Result<()> {
        let schema = |params| -> Result<PayloadFieldSchema> {
            serde_json::from_value(params)
                .map_err(|err| Error::InvalidStoredData(format!("payload index schema: {err}")))
        };
        // Graph links per value pay off for values that searches filter on (knowledge bases,
        // languages), not for paths: thousands of documents of a few points each.
        let schemas = [
            (
                KB_KEY,
                schema(json!({"type": "keyword", "is_tenant": true}))?,
            ),
            (
                PATH_KEY,
                schema(json!({"type": "keyword", "enable_hnsw": false}))?,
            ),
            (LANGUAGE_KEY, schema(json!({"type": "keyword"}))?),
        ];
        let _writes = self.lock_writes();
        for (name, schema) in schemas {
            self.shard.update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: key(name),
                    field_schema: Some(schema),
                }),
            ))?;
        }
        Ok(())
    }

    /// The nearest points of `kbs` (and `language`), best first.
    ///
    /// A graph search filtered to a union of small knowledge bases loses its way: only
    /// knowledge bases large enough to be searched through the graph get links of their own,
    /// and the points of the union are too few (1% of a million) for the filtered walk to
    /// reach them, so it returned one result or ten wrong ones (`lumbung bench --scale`
    /// measured recall@10 0.27 for ten knowledge bases at 1M points). Up to
    /// [`FAN_OUT_MAX_KBS`] knowledge bases are therefore searched one by one (each by its own
    /// links, or exactly when small) and the results merged; a larger scope keeps most of the
    /// points and is searched at once.
    fn nearest(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Option<Language>,
        limit: usize,
        params: SearchParams,
    ) -> Result<Vec<(ChunkId, f32)>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        crate::check_vector(vector, self.dimension)?;
        if kbs.len() > FAN_OUT_MAX_KBS {
            let scope: HashSet<&str> = kbs.iter().map(KbGeneration::key).collect();
            if self.holds_only(&scope)? {
                return self.nearest_unfiltered(vector, kbs, &scope, language, limit, params);
            }
        }
        if kbs.len() == 1 || kbs.len() > FAN_OUT_MAX_KBS {
            return self.nearest_in(vector, kbs, language, limit, params);
        }
        let mut hits = Vec::with_capacity(limit * kbs.len());
        for kb in kbs {
            hits.extend(self.nearest_in(
                vector,
                std::slice::from_ref(kb),
                language,
                limit,
                params,
            )?);
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(limit);
        Ok(hits)
    }

    /// Whether every point of the store belongs to a knowledge base of `scope`, by the
    /// knowledge base index's counts, read again after any write.
    fn holds_only(&self, scope: &HashSet<&str>) -> Result<bool> {
        let writes = self.writes_done.load(Ordering::Acquire);
        let mut stored = self
            .stored_kbs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let present = match stored.as_ref() {
            Some((seen, present)) if *seen == writes => Arc::clone(present),
            _ => {
                let facet = self.shard.facet(FacetRequest {
                    key: key(KB_KEY),
                    limit: usize::MAX,
                    filter: None,
                    exact: false,
                })?;
                let present: Arc<HashSet<String>> = Arc::new(
                    facet
                        .hits
                        .into_iter()
                        .filter_map(|hit| match hit.value {
                            FacetValue::Keyword(kb) if hit.count > 0 => Some(kb),
                            _ => None,
                        })
                        .collect(),
                );
                *stored = Some((writes, Arc::clone(&present)));
                present
            }
        };
        drop(stored);
        Ok(present.iter().all(|kb| scope.contains(kb.as_str())))
    }

    /// A search of a scope that holds every point, without the knowledge-base filter: at a
    /// million points a filter on hundreds of knowledge bases cost a graph search several
    /// times its unfiltered time and changed nothing. Each hit's knowledge base is still
    /// checked, so that points of a knowledge base written since [`Self::holds_only`] looked
    /// are never returned: if any is found the filtered search answers instead.
    fn nearest_unfiltered(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        scope: &HashSet<&str>,
        language: Option<Language>,
        limit: usize,
        params: SearchParams,
    ) -> Result<Vec<(ChunkId, f32)>> {
        let request = nearest_request(
            vector,
            language.map(|language| Filter::new_must(matches(LANGUAGE_KEY, language.code()))),
            limit,
            params,
            WithPayloadInterface::Fields(vec![key(KB_KEY)]),
        );
        let mut hits = Vec::with_capacity(limit);
        for point in self.shard.query(request)? {
            let kb = point
                .payload
                .as_ref()
                .and_then(|payload| payload.0.get(KB_KEY))
                .and_then(|value| value.as_str());
            if !kb.is_some_and(|kb| scope.contains(kb)) {
                return self.nearest_in(vector, kbs, language, limit, params);
            }
            hits.push((chunk_id(point.id)?, point.score));
        }
        Ok(hits)
    }

    /// One query of the shard, filtered to `kbs` (and `language`).
    fn nearest_in(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Option<Language>,
        limit: usize,
        params: SearchParams,
    ) -> Result<Vec<(ChunkId, f32)>> {
        let kb_condition = match kbs {
            [kb] => matches(KB_KEY, kb.key()),
            _ => Condition::Field(FieldCondition::new_match(
                key(KB_KEY),
                Match::from(
                    kbs.iter()
                        .map(|kb| kb.key().to_string())
                        .collect::<Vec<_>>(),
                ),
            )),
        };
        let mut must = vec![kb_condition];
        if let Some(language) = language {
            must.push(matches(LANGUAGE_KEY, language.code()));
        }
        let filter = Filter {
            must: Some(must),
            ..Filter::new()
        };
        let request = nearest_request(
            vector,
            Some(filter),
            limit,
            params,
            WithPayloadInterface::Bool(false),
        );
        self.shard
            .query(request)?
            .into_iter()
            .map(|point| Ok((chunk_id(point.id)?, point.score)))
            .collect()
    }
}

impl VectorStore for EdgeVectorStore {
    fn upsert_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[VectorPoint],
    ) -> Result<()> {
        for point in points {
            crate::check_vector(&point.vector, self.dimension)?;
        }
        let points: Vec<_> = points
            .iter()
            .map(|point| {
                let payload = json!({
                    KB_KEY: kb.key(),
                    PATH_KEY: path.as_str(),
                    HASH_KEY: hash.as_str(),
                    LANGUAGE_KEY: point.language.code(),
                });
                PointStruct::new(point_id(point.id), point.vector.clone(), payload).into()
            })
            .collect();
        if points.is_empty() {
            return Ok(());
        }
        let written = points.len() as u64;
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
        ))?;
        self.changes.fetch_add(written, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn delete_other_versions(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        keep: &ContentHash,
    ) -> Result<()> {
        let stale = Filter {
            must_not: Some(vec![matches(HASH_KEY, keep.as_str())]),
            ..document_filter(kb, path)
        };
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(stale),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<()> {
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(document_filter(kb, path)),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn delete_generation(&self, kb: &KbGeneration) -> Result<()> {
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(Filter::new_must(matches(KB_KEY, kb.key()))),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let _writes = self.lock_writes();
        // EdgeShard::flush panics on an I/O error (disk full), and when an optimisation holds
        // the segment list for the moment it swaps segments in: the first must fail this call,
        // not bring down the service; the second passes, so it is tried again a few times.
        let mut wait = Duration::from_millis(5);
        for _ in 0..FLUSH_ATTEMPTS {
            if catch_unwind(AssertUnwindSafe(|| self.shard.flush())).is_ok() {
                return Ok(());
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(500));
        }
        Err(Error::Io(std::io::Error::other(
            "vector store flush failed",
        )))
    }

    fn search(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, None, limit, self.search_params)
    }

    fn search_language(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Language,
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, Some(language), limit, self.search_params)
    }

    fn get_vectors(&self, ids: &[ChunkId]) -> Result<Vec<(ChunkId, Vec<f32>)>> {
        let point_ids: Vec<PointId> = ids.iter().map(|id| point_id(*id)).collect();
        let records = self.shard.retrieve(
            &point_ids,
            Some(WithPayloadInterface::Bool(false)),
            Some(WithVector::Bool(true)),
        )?;
        records
            .into_iter()
            .map(|record| {
                let id = chunk_id(record.id)?;
                let vector = dense_vector(record.vector).ok_or_else(|| {
                    Error::InvalidStoredData(format!("point {id} has no dense vector"))
                })?;
                Ok((id, vector))
            })
            .collect()
    }

    fn language_centroids(&self, sample: usize) -> Result<Vec<(Language, Vec<f32>)>> {
        let mut centroids = Vec::new();
        if sample == 0 {
            return Ok(centroids);
        }
        for language in [Language::Zh, Language::Id, Language::En, Language::Unknown] {
            let request = QueryRequest {
                prefetches: Vec::new(),
                query: Some(ScoringQuery::Sample(Sample::Random)),
                filter: Some(Filter::new_must(matches(LANGUAGE_KEY, language.code()))),
                score_threshold: None,
                limit: sample,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(true),
                with_payload: WithPayloadInterface::Bool(false),
            };
            let vectors = self
                .shard
                .query(request)?
                .into_iter()
                .filter_map(|point| dense_vector(point.vector));
            if let Some(mean) = crate::mean_vector(vectors, self.dimension) {
                centroids.push((language, mean));
            }
        }
        Ok(centroids)
    }

    fn count(&self, kb: &KbGeneration, path: Option<&DocumentPath>) -> Result<u64> {
        let filter = match path {
            Some(path) => document_filter(kb, path),
            None => Filter::new_must(matches(KB_KEY, kb.key())),
        };
        let count = self.shard.count(CountRequest {
            filter: Some(filter),
            exact: true,
        })?;
        Ok(count as u64)
    }
}
