//! The vector store on an embedded Qdrant shard (`qdrant-edge`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lumbung_core::{ChunkId, ContentHash, DocumentPath, KbName, Language};
use qdrant_edge::external::serde_json::json;
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard,
    EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath, Match,
    NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStruct, QueryEnum, QueryRequest, Sample, ScoringQuery, UpdateOperation,
    VectorInternal, VectorStructInternal, WithPayloadInterface, WithVector,
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

fn matches(name: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        key(name),
        Match::from(value.to_string()),
    ))
}

fn document_filter(kb: &KbName, path: &DocumentPath) -> Filter {
    Filter {
        must: Some(vec![
            matches(KB_KEY, kb.as_str()),
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
/// Until [`EdgeVectorStore::optimize`] runs, searches are exact (brute force over the filtered
/// points).
pub struct EdgeVectorStore {
    shard: EdgeShard,
    dimension: usize,
    /// Serialises updates, flushes and optimisation: `EdgeShard::flush` panics instead of
    /// waiting when an update holds the WAL or an optimiser holds the segments.
    writes: Mutex<()>,
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl EdgeVectorStore {
    /// Opens the shard in `dir`, creating it for vectors of `dimension` when there is none.
    ///
    /// Fails with [`Error::DimensionMismatch`] when the shard on disk holds another dimension,
    /// and when another process has the shard open.
    pub fn open(dir: &Path, dimension: usize) -> Result<Self> {
        if dimension == 0 {
            return Err(Error::InvalidArgument(
                "vector dimension must be positive".to_string(),
            ));
        }
        fs_err::create_dir_all(dir)?;
        let shard = match EdgeConfig::load(dir) {
            Some(config) => {
                let config = config?;
                let params = config.vectors.get(DEFAULT_VECTOR_NAME).ok_or_else(|| {
                    Error::InvalidStoredData(format!("{} holds no dense vector", dir.display()))
                })?;
                if params.size != dimension {
                    return Err(Error::DimensionMismatch {
                        expected: dimension,
                        actual: params.size,
                    });
                }
                if params.distance != Distance::Cosine {
                    return Err(Error::InvalidStoredData(format!(
                        "{} uses {:?} distance, not cosine",
                        dir.display(),
                        params.distance
                    )));
                }
                EdgeShard::load(dir, None)?
            }
            None => {
                let config = EdgeConfig::builder()
                    .vector(
                        DEFAULT_VECTOR_NAME,
                        EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build(),
                    )
                    .build();
                EdgeShard::new(dir, config)?
            }
        };
        let store = EdgeVectorStore {
            shard,
            dimension,
            writes: Mutex::new(()),
        };
        store.ensure_payload_indexes()?;
        Ok(store)
    }

    /// Merges small segments, drops deleted points and builds the HNSW graph on segments above
    /// the indexing threshold (about 10 MB of vectors); blocks until done.
    ///
    /// CPU-heavy and proportional to the collection: run it on the CPU pool after a bulk
    /// ingest, not after every document. Searches keep answering meanwhile; writes wait.
    /// Returns whether anything was optimised.
    pub fn optimize(&self) -> Result<bool> {
        let optimized = {
            let _writes = self.lock_writes();
            self.shard.optimize()?
        };
        // Segments created by the optimiser start without the payload indexes.
        self.ensure_payload_indexes()?;
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
    fn ensure_payload_indexes(&self) -> Result<()> {
        let _writes = self.lock_writes();
        for name in [KB_KEY, PATH_KEY, LANGUAGE_KEY] {
            self.shard.update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: key(name),
                    field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
                }),
            ))?;
        }
        Ok(())
    }

    fn nearest(
        &self,
        vector: &[f32],
        kbs: &[KbName],
        language: Option<Language>,
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        self.check_vector(vector)?;
        let kbs: Vec<String> = kbs.iter().map(|kb| kb.as_str().to_string()).collect();
        let mut must = vec![Condition::Field(FieldCondition::new_match(
            key(KB_KEY),
            Match::from(kbs),
        ))];
        if let Some(language) = language {
            must.push(matches(LANGUAGE_KEY, language.code()));
        }
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                NamedQuery::default_dense(vector.to_vec()),
            ))),
            filter: Some(Filter {
                must: Some(must),
                ..Filter::new()
            }),
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(false),
        };
        self.shard
            .query(request)?
            .into_iter()
            .map(|point| Ok((chunk_id(point.id)?, point.score)))
            .collect()
    }

    fn check_vector(&self, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dimension {
            return Err(Error::DimensionMismatch {
                expected: self.dimension,
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
}

impl VectorStore for EdgeVectorStore {
    fn upsert_document(
        &self,
        kb: &KbName,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[VectorPoint],
    ) -> Result<()> {
        for point in points {
            self.check_vector(&point.vector)?;
        }
        let points: Vec<_> = points
            .iter()
            .map(|point| {
                let payload = json!({
                    KB_KEY: kb.as_str(),
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
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
        ))?;
        Ok(())
    }

    fn delete_other_versions(
        &self,
        kb: &KbName,
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
        Ok(())
    }

    fn delete_document(&self, kb: &KbName, path: &DocumentPath) -> Result<()> {
        let _writes = self.lock_writes();
        self.shard.update(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(document_filter(kb, path)),
        ))?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let _writes = self.lock_writes();
        // EdgeShard::flush panics on an I/O error (disk full); that must fail this call, not
        // bring down the service.
        catch_unwind(AssertUnwindSafe(|| self.shard.flush()))
            .map_err(|_| Error::Io(std::io::Error::other("vector store flush failed")))
    }

    fn search(&self, vector: &[f32], kbs: &[KbName], limit: usize) -> Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, None, limit)
    }

    fn search_language(
        &self,
        vector: &[f32],
        kbs: &[KbName],
        language: Language,
        limit: usize,
    ) -> Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, Some(language), limit)
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
            let mut sum = vec![0f64; self.dimension];
            let mut count = 0usize;
            for point in self.shard.query(request)? {
                let Some(vector) = dense_vector(point.vector) else {
                    continue;
                };
                for (total, x) in sum.iter_mut().zip(&vector) {
                    *total += f64::from(*x);
                }
                count += 1;
            }
            if count > 0 {
                let mean = sum
                    .iter()
                    .map(|total| (total / count as f64) as f32)
                    .collect();
                centroids.push((language, mean));
            }
        }
        Ok(centroids)
    }

    fn count(&self, kb: &KbName, path: Option<&DocumentPath>) -> Result<u64> {
        let filter = match path {
            Some(path) => document_filter(kb, path),
            None => Filter::new_must(matches(KB_KEY, kb.as_str())),
        };
        let count = self.shard.count(CountRequest {
            filter: Some(filter),
            exact: true,
        })?;
        Ok(count as u64)
    }
}
