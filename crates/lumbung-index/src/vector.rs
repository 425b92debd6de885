//! The vector store on an embedded Qdrant shard (`qdrant-edge`).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use lumbung_core::disk::{allocated_bytes, available_bytes};
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

use crate::edge_wal;
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

/// The shard's segments folder, as qdrant-edge names it.
const SEGMENTS_DIR: &str = "segments";

/// The write-ahead log is emptied once it takes more than this many bytes (a small store's
/// reopen takes milliseconds)...
const WAL_EMPTY_MIN_BYTES: u64 = 256 << 10;
/// ...and more than this fraction of the segments' bytes: emptying it reopens the shard, whose
/// cost grows with the segments, so a large store empties it less often and never holds a
/// log of more than about a quarter of its size beside them.
const WAL_EMPTY_FRACTION: f64 = 0.25;
/// The log is not emptied while the disk has less than this free.
const WAL_EMPTY_MIN_FREE_BYTES: u64 = 4 << 20;

/// A segment is rewritten without its deleted points once they are a fifth of it (Qdrant's
/// default) and it holds at least this many. Qdrant's default, 1,000, left the segments of
/// small stores, which most knowledge bases are, with their deleted points forever: each
/// edit of a document deletes its old points.
const VACUUM_MIN_POINTS: usize = 64;

/// An optimisation is due once this fraction of the store's points changed since the last,
/// whatever `optimize_after_changes` says, so that a small store's deleted points are
/// vacuumed as often as a large one's.
const OPTIMIZE_AFTER_FRACTION: f64 = 0.2;

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
        vacuum_min_vector_number: Some(VACUUM_MIN_POINTS),
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
/// `optimize_after_changes` changes ([`EdgeVectorStore::maintain_in_background`]), or directly
/// after a bulk load. Until then a segment is searched exactly.
pub struct EdgeVectorStore {
    dir: PathBuf,
    /// The shard; `None` only while [`EdgeVectorStore::empty_wal`] has it closed, or after it
    /// failed to open it again (searches answer [`Error::Unavailable`] until a later attempt
    /// succeeds). Every method holds one guard at a time and never calls another method
    /// while holding it: a second read behind a waiting writer would deadlock.
    shard: RwLock<Option<EdgeShard>>,
    dimension: usize,
    /// Serialises updates and flushes: `EdgeShard::flush` panics instead of waiting when an
    /// update holds the WAL.
    writes: Mutex<()>,
    /// One optimisation or log replacement at a time. Taken before `writes`.
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

/// A read guard on an open shard.
struct ShardGuard<'a>(RwLockReadGuard<'a, Option<EdgeShard>>);

impl std::ops::Deref for ShardGuard<'_> {
    type Target = EdgeShard;

    fn deref(&self) -> &EdgeShard {
        self.0
            .as_ref()
            .expect("a ShardGuard is only made for an open shard")
    }
}

/// Bytes an [`EdgeVectorStore`] takes on disk, from [`EdgeVectorStore::disk_usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorDiskUsage {
    /// The write-ahead log: every update since it was last emptied.
    pub wal_bytes: u64,
    /// The segments: the points, deleted ones until a vacuum rewrites their segment.
    pub segment_bytes: u64,
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
        edge_wal::recover(dir)?;
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
            dir: dir.to_path_buf(),
            shard: RwLock::new(Some(shard)),
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

    /// Starts the store's two maintenance threads, which look every `interval` and end once
    /// the store is dropped (after the work in progress finishes):
    /// - at nice value `niceness`, the optimiser, once `optimize_after_changes` points, or
    ///   [`OPTIMIZE_AFTER_FRACTION`] of them, have changed since the last optimisation
    ///   (never when `optimize_after_changes` is 0). Writes and searches go on meanwhile: it
    ///   builds new segments beside the live ones and swaps them in.
    /// - at the caller's priority, the emptying of a large write-ahead log
    ///   ([`Self::empty_wal_if_large`]): searches wait for its reopen of the shard, so it must
    ///   not queue behind ingest's threads at nice 19.
    pub fn maintain_in_background(
        self: &Arc<Self>,
        niceness: i32,
        interval: Duration,
    ) -> std::io::Result<()> {
        self.every(interval, "vector-optimizer", niceness, |store| {
            if store.optimize_due() {
                store.optimize()?;
            }
            Ok(())
        })?;
        self.every(interval, "vector-wal", 0, |store| {
            store.empty_wal_if_large().map(|_| ())
        })
    }

    /// Runs `work` on a thread of its own every `interval` while the store lives.
    fn every(
        self: &Arc<Self>,
        interval: Duration,
        name: &str,
        niceness: i32,
        work: impl Fn(&EdgeVectorStore) -> Result<()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store: Weak<EdgeVectorStore> = Arc::downgrade(self);
        let thread = name.to_string();
        std::thread::Builder::new()
            .name(thread.clone())
            .spawn(move || {
                lumbung_core::lower_current_thread_priority(niceness);
                loop {
                    std::thread::sleep(interval);
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    if let Err(err) = work(&store) {
                        tracing::warn!(error = %err, thread, "vector store maintenance failed");
                    }
                }
            })?;
        Ok(())
    }

    fn optimize_due(&self) -> bool {
        if self.optimize_after_changes == 0 {
            return false;
        }
        let changes = self.changes.load(Ordering::Relaxed);
        if changes >= self.optimize_after_changes {
            return true;
        }
        changes > 0
            && self.index_info().is_ok_and(|info| {
                changes as f64 >= OPTIMIZE_AFTER_FRACTION * info.points.max(1) as f64
            })
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
    pub fn index_info(&self) -> Result<VectorIndexInfo> {
        let info = self.shard()?.info();
        Ok(VectorIndexInfo {
            segments: info.segments_count,
            points: info.points_count,
            indexed_points: info.indexed_vectors_count,
        })
    }

    /// Merges small segments, drops deleted points and builds the HNSW graph (and the int8
    /// copy) on segments above the indexing threshold (about 10 MB of vectors); blocks until
    /// done. A second caller waits for the first.
    ///
    /// CPU-heavy and proportional to the changed segments: after a bulk load, or from
    /// [`EdgeVectorStore::maintain_in_background`], not after every document. Searches and
    /// writes go on meanwhile. Returns whether anything was optimised.
    pub fn optimize(&self) -> Result<bool> {
        let _optimizing = self.lock_optimizing();
        let started = Instant::now();
        let changes = self.changes.swap(0, Ordering::Relaxed);
        let optimized = self.shard()?.optimize().inspect_err(|_| {
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

    fn lock_optimizing(&self) -> MutexGuard<'_, ()> {
        self.optimizing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The open shard, held for one call; [`Error::Unavailable`] after a failed reopen.
    fn shard(&self) -> Result<ShardGuard<'_>> {
        let guard = self.shard.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(Error::Unavailable(format!(
                "the vector store in {} failed to open again after its log was emptied",
                self.dir.display()
            )));
        }
        Ok(ShardGuard(guard))
    }

    /// Whether the shard is open (it is, except after a failed reopen).
    fn is_open(&self) -> bool {
        self.shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Makes the log and the segments durable; the caller holds `writes`.
    fn flush_shard(&self) -> Result<()> {
        // EdgeShard::flush panics on an I/O error (disk full), and when an optimisation holds
        // the segment list for the moment it swaps segments in: the first must fail this call,
        // not bring down the service; the second passes, so it is tried again a few times.
        let mut wait = Duration::from_millis(5);
        for _ in 0..FLUSH_ATTEMPTS {
            let flushed = {
                let shard = self.shard()?;
                catch_unwind(AssertUnwindSafe(|| shard.flush())).is_ok()
            };
            if flushed {
                return Ok(());
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(500));
        }
        Err(Error::Io(std::io::Error::other(
            "vector store flush failed",
        )))
    }

    /// Bytes the shard's write-ahead log and its segments take on disk.
    pub fn disk_usage(&self) -> VectorDiskUsage {
        VectorDiskUsage {
            wal_bytes: allocated_bytes(&self.dir.join(edge_wal::WAL_DIR)),
            segment_bytes: allocated_bytes(&self.dir.join(SEGMENTS_DIR)),
        }
    }

    /// Empties the write-ahead log (see [`Self::empty_wal`]) once it takes more than
    /// [`WAL_EMPTY_MIN_BYTES`] and [`WAL_EMPTY_FRACTION`] of the segments' bytes. Returns
    /// whether it did.
    pub fn empty_wal_if_large(&self) -> Result<bool> {
        if self.is_open() {
            // The segments, many files in a large store, are walked only past the minimum:
            // this runs every few seconds.
            let wal_bytes = allocated_bytes(&self.dir.join(edge_wal::WAL_DIR));
            if wal_bytes <= WAL_EMPTY_MIN_BYTES
                || (wal_bytes as f64)
                    <= WAL_EMPTY_FRACTION * allocated_bytes(&self.dir.join(SEGMENTS_DIR)) as f64
            {
                return Ok(false);
            }
        }
        // Opening the shard again writes a few pages (a new log segment); on a full disk it
        // would fail and leave the store closed until space is freed.
        if available_bytes(&self.dir)? < WAL_EMPTY_MIN_FREE_BYTES {
            return Ok(false);
        }
        self.empty_wal()?;
        Ok(true)
    }

    /// Flushes the shard, closes it, replaces its write-ahead log by an empty one that numbers
    /// on past the old one, and opens it again (`edge_wal` says why the log cannot just be
    /// deleted). Nothing is lost: qdrant-edge never replays its log, what it holds is in the
    /// flushed segments. Writes and optimisations wait for the whole of it, searches for the
    /// close and reopen (milliseconds for thousands of points; the cost of opening the
    /// segments, so a larger store empties its log less often). A shard that fails to open
    /// again answers [`Error::Unavailable`] until a later call opens it.
    pub fn empty_wal(&self) -> Result<()> {
        let _optimizing = self.lock_optimizing();
        let _writes = self.lock_writes();
        if self.is_open() {
            self.flush_shard()?;
        }
        let mut slot = self.shard.write().unwrap_or_else(PoisonError::into_inner);
        let emptied = match slot.take() {
            // Closing flushes once more; after the flush above, with writes held, it has
            // nothing left to write. Should it panic all the same, the log is kept.
            Some(shard) => match catch_unwind(AssertUnwindSafe(move || drop(shard))) {
                Ok(()) => edge_wal::replace_with_empty(&self.dir).map_err(Error::from),
                Err(_) => Err(Error::Io(std::io::Error::other(
                    "closing the vector store failed; its log was kept",
                ))),
            },
            None => Ok(0),
        };
        // A replacement that failed between its renames is finished first: a shard opened
        // without a log would start one numbered from 0.
        edge_wal::recover(&self.dir)?;
        // The configuration applied at open was saved with the shard.
        *slot = Some(EdgeShard::load(&self.dir, None)?);
        drop(slot);
        let next_operation = emptied?;
        tracing::debug!(next_operation, "vector store log emptied");
        Ok(())
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
            self.shard()?.update(UpdateOperation::FieldIndexOperation(
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
                let facet = self.shard()?.facet(FacetRequest {
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
        // Bound first: the loop may search again, and a guard held through it would be a
        // second read behind a waiting writer.
        let points = self.shard()?.query(request)?;
        let mut hits = Vec::with_capacity(limit);
        for point in points {
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
        self.shard()?
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
        self.shard()?.update(UpdateOperation::PointOperation(
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
        self.shard()?.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(stale),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<()> {
        let _writes = self.lock_writes();
        self.shard()?.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(document_filter(kb, path)),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn delete_generation(&self, kb: &KbGeneration) -> Result<()> {
        let _writes = self.lock_writes();
        self.shard()?.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(Filter::new_must(matches(KB_KEY, kb.key()))),
        ))?;
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.writes_done.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let _writes = self.lock_writes();
        self.flush_shard()
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
        let records = self.shard()?.retrieve(
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
                .shard()?
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
        let count = self.shard()?.count(CountRequest {
            filter: Some(filter),
            exact: true,
        })?;
        Ok(count as u64)
    }
}
