//! `VectorStore` on a Qdrant server or cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lumbung_core::{
    ChunkId, ContentHash, DocumentPath, KbGeneration, Language, VectorIndexConfig,
    VectorStoreConfig, WriteOrdering,
};
use lumbung_index::{VectorPoint, VectorStore};
use qdrant_client::qdrant::{
    self, AcornSearchParams, Condition, CreateCollection, CreateFieldIndexCollection, Distance,
    FieldType, Filter, GetCollectionInfoRequest, GetPoints, HnswConfigDiff, KeywordIndexParams,
    NamedVectors, OptimizersConfigDiff, PayloadIndexParams, PointId, PointStruct,
    QuantizationConfig, QuantizationSearchParams, Query, QueryBatchPoints, QueryPoints,
    ScalarQuantization, ScoredPoint, SearchParams, UpsertPoints, Value, VectorParams,
    VectorParamsMap, VectorsConfig, WithPayloadSelector, WithVectorsSelector,
};
use tonic::Code;

use crate::remote::{Connection, Remote};
use crate::{Error, Result};

/// The dense vector's name in the collection.
pub const DENSE_VECTOR: &str = "dense";
/// The sparse vector holding each chunk's BM25 term weights (IDF applied by Qdrant), in the
/// chunk collection.
pub const SPARSE_VECTOR: &str = "bm25";

pub(crate) const KB_KEY: &str = "kb";
pub(crate) const PATH_KEY: &str = "path";
const HASH_KEY: &str = "content_hash";
const LANGUAGE_KEY: &str = "language";

/// Scopes of up to this many knowledge bases are searched one knowledge base at a time, in one
/// batch: a graph search filtered to a union of small tenants loses its way (the embedded
/// store measured recall@10 0.23 for ten of 600 at a million points; see `lumbung-index`).
const FAN_OUT_MAX_KBS: usize = 32;
/// Points per upsert call, so that one large document does not make one huge message.
const UPSERT_BATCH: usize = 256;
/// How many times more candidates the int8 search keeps for rescoring with the full vectors.
const RESCORE_OVERSAMPLING: f64 = 2.0;

/// The collection for an embedding model: `{prefix}-{model}-{dimension}`, with the model's
/// name reduced to lower-case letters, digits, `-` and `_`. Another model gets another
/// collection, so that a model change is built beside the live one.
pub fn collection_name(prefix: &str, model: &lumbung_core::ModelName, dimension: usize) -> String {
    let model: String = model
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{model}-{dimension}")
}

/// Dense vectors in a Qdrant collection (a server, or a cluster of them), one point per chunk
/// with the payload `kb`, `path`, `content_hash` and `language`; `kb` is the tenant field
/// (Qdrant's multitenancy: one collection, the knowledge base as a keyword index with
/// `is_tenant`), `path` and `language` are keyword-indexed.
///
/// Every write waits until Qdrant has applied it (`wait = true`), so [`VectorStore::flush`]
/// has nothing left to do. Calls that fail because Qdrant is unreachable are retried with
/// backoff: writes for `write_retry_seconds` (ingest pauses meanwhile), reads for
/// `search_retry_ms`; past that they fail with `lumbung_index::Error::Unavailable`.
pub struct QdrantVectorStore {
    remote: Arc<Remote>,
    collection: String,
    dimension: usize,
    ordering: qdrant::WriteOrdering,
    search_params: SearchParams,
    read_budget: Duration,
    write_budget: Duration,
}

impl std::fmt::Debug for QdrantVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantVectorStore")
            .field("collection", &self.collection)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl QdrantVectorStore {
    /// Opens `collection` through `connection`, creating it (and its payload indexes) for
    /// vectors of `dimension` when it does not exist. Waits for the cluster up to
    /// `write_retry_seconds`, so that a service started before its cluster comes up once the
    /// cluster does.
    ///
    /// Fails when the collection holds vectors of another dimension or distance.
    pub fn open(
        connection: &Connection,
        config: &VectorStoreConfig,
        collection: &str,
        dimension: usize,
        index: &VectorIndexConfig,
    ) -> Result<Self> {
        if dimension == 0 {
            return Err(Error::Client(
                "vector dimension must be positive".to_string(),
            ));
        }
        let store = QdrantVectorStore {
            remote: connection.remote(),
            collection: collection.to_string(),
            dimension,
            ordering: write_ordering(config),
            search_params: SearchParams {
                hnsw_ef: Some(index.search_ef as u64),
                acorn: Some(AcornSearchParams {
                    enable: Some(index.filtered_search_acorn),
                    max_selectivity: None,
                }),
                quantization: Some(QuantizationSearchParams {
                    ignore: Some(!index.int8_quantization),
                    rescore: Some(true),
                    oversampling: Some(RESCORE_OVERSAMPLING),
                }),
                ..SearchParams::default()
            },
            read_budget: Duration::from_millis(config.search_retry_ms),
            write_budget: Duration::from_secs(config.write_retry_seconds),
        };
        store.ensure_collection(config, index)?;
        Ok(store)
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The dimension of the vectors this store holds.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    fn ensure_collection(
        &self,
        config: &VectorStoreConfig,
        index: &VectorIndexConfig,
    ) -> Result<()> {
        let name = self.collection.clone();
        let info = self
            .remote
            .call("collection info", self.write_budget, move |client| {
                let name = name.clone();
                async move {
                    client
                        .collection_info(GetCollectionInfoRequest {
                            collection_name: name,
                        })
                        .await
                }
            });
        match info {
            Ok(info) => self.check_collection(info)?,
            Err(Error::Refused { status, .. }) if status.code() == Code::NotFound => {
                self.create_collection(config, index)?;
            }
            Err(err) => return Err(err),
        }
        self.ensure_payload_indexes()
    }

    fn check_collection(&self, info: qdrant::GetCollectionInfoResponse) -> Result<()> {
        let params = info
            .result
            .and_then(|info| info.config)
            .and_then(|config| config.params)
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        let dense = match params {
            Some(qdrant::vectors_config::Config::ParamsMap(map)) => {
                map.map.get(DENSE_VECTOR).cloned()
            }
            _ => None,
        };
        let mismatch = |reason: String| Error::Collection {
            collection: self.collection.clone(),
            reason,
        };
        let dense =
            dense.ok_or_else(|| mismatch(format!("holds no vector named {DENSE_VECTOR:?}")))?;
        if dense.size != self.dimension as u64 {
            return Err(mismatch(format!(
                "holds vectors of dimension {}, the embedding model gives {}",
                dense.size, self.dimension
            )));
        }
        if dense.distance != Distance::Cosine as i32 {
            return Err(mismatch("does not use cosine distance".to_string()));
        }
        Ok(())
    }

    // `on_disk` and `always_ram` are what every Qdrant 1.x understands; the `memory` modes
    // that replace them only the newest servers.
    #[allow(deprecated)]
    fn create_collection(
        &self,
        config: &VectorStoreConfig,
        index: &VectorIndexConfig,
    ) -> Result<()> {
        let positive = |n: u32| Some(n).filter(|&n| n > 0);
        let quantization = index.int8_quantization.then(|| QuantizationConfig {
            quantization: Some(qdrant::quantization_config::Quantization::Scalar(
                ScalarQuantization {
                    r#type: qdrant::QuantizationType::Int8 as i32,
                    quantile: Some(0.99),
                    always_ram: Some(true),
                    ..ScalarQuantization::default()
                },
            )),
        });
        let request = CreateCollection {
            collection_name: self.collection.clone(),
            vectors_config: Some(VectorsConfig {
                config: Some(qdrant::vectors_config::Config::ParamsMap(VectorParamsMap {
                    map: HashMap::from([(
                        DENSE_VECTOR.to_string(),
                        VectorParams {
                            size: self.dimension as u64,
                            distance: Distance::Cosine as i32,
                            on_disk: Some(index.vectors_on_disk),
                            ..VectorParams::default()
                        },
                    )]),
                })),
            }),
            hnsw_config: Some(HnswConfigDiff {
                m: Some(index.hnsw_m as u64),
                ef_construct: Some(index.hnsw_ef_construct as u64),
                payload_m: Some(index.hnsw_payload_m as u64),
                ..HnswConfigDiff::default()
            }),
            optimizers_config: Some(OptimizersConfigDiff {
                indexing_threshold: Some(index.indexing_threshold_kb as u64),
                ..OptimizersConfigDiff::default()
            }),
            quantization_config: quantization,
            shard_number: positive(config.shard_number),
            replication_factor: positive(config.replication_factor),
            write_consistency_factor: positive(config.write_consistency_factor),
            ..CreateCollection::default()
        };
        create_collection_once(&self.remote, request, self.write_budget)
    }

    /// `kb` is the tenant: Qdrant keeps each knowledge base's points together and links them
    /// in the graph (`hnsw_payload_m`); `path` is filtered on by every document write.
    /// Creating an index that exists is a no-op in Qdrant.
    fn ensure_payload_indexes(&self) -> Result<()> {
        ensure_keyword_indexes(
            &self.remote,
            &self.collection,
            &[
                (KB_KEY, true, true),
                (PATH_KEY, false, false),
                (LANGUAGE_KEY, false, true),
            ],
            self.ordering,
            self.write_budget,
        )
    }

    fn delete_where(&self, filter: Filter) -> Result<()> {
        self.remote.delete_where(
            "delete points",
            &self.collection,
            filter,
            self.ordering,
            self.write_budget,
        )
    }

    /// The nearest points of `kbs` (and `language`), best first; scopes of up to
    /// [`FAN_OUT_MAX_KBS`] knowledge bases as one batch of per-knowledge-base queries.
    fn nearest(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Option<Language>,
        limit: usize,
    ) -> lumbung_index::Result<Vec<(ChunkId, f32)>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        lumbung_index::check_vector(vector, self.dimension)?;
        let query = |kbs: &[KbGeneration]| {
            let mut must = vec![match kbs {
                [kb] => Condition::matches(KB_KEY, kb.key().to_string()),
                _ => Condition::matches(
                    KB_KEY,
                    kbs.iter()
                        .map(|kb| kb.key().to_string())
                        .collect::<Vec<_>>(),
                ),
            }];
            if let Some(language) = language {
                must.push(Condition::matches(
                    LANGUAGE_KEY,
                    language.code().to_string(),
                ));
            }
            QueryPoints {
                collection_name: self.collection.clone(),
                query: Some(Query::new_nearest(vector.to_vec())),
                using: Some(DENSE_VECTOR.to_string()),
                filter: Some(Filter::must(must)),
                params: Some(self.search_params.clone()),
                limit: Some(limit as u64),
                with_payload: Some(WithPayloadSelector::from(false)),
                with_vectors: Some(WithVectorsSelector::from(false)),
                ..QueryPoints::default()
            }
        };
        let mut hits = if kbs.len() == 1 || kbs.len() > FAN_OUT_MAX_KBS {
            let request = query(kbs);
            self.remote
                .call("search", self.read_budget, move |client| {
                    let request = request.clone();
                    async move { client.query(request).await }
                })?
                .result
        } else {
            let request = QueryBatchPoints {
                collection_name: self.collection.clone(),
                query_points: kbs
                    .iter()
                    .map(|kb| query(std::slice::from_ref(kb)))
                    .collect(),
                ..QueryBatchPoints::default()
            };
            self.remote
                .call("search", self.read_budget, move |client| {
                    let request = request.clone();
                    async move { client.query_batch(request).await }
                })?
                .result
                .into_iter()
                .flat_map(|batch| batch.result)
                .collect()
        };
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        hits.into_iter()
            .map(|point| Ok((scored_chunk_id(&point)?, point.score)))
            .collect()
    }
}

/// How writes are ordered among a shard's replicas (`write_ordering`).
pub(crate) fn write_ordering(config: &VectorStoreConfig) -> qdrant::WriteOrdering {
    let ordering = match config.write_ordering {
        WriteOrdering::Weak => qdrant::WriteOrderingType::Weak,
        WriteOrdering::Medium => qdrant::WriteOrderingType::Medium,
        WriteOrdering::Strong => qdrant::WriteOrderingType::Strong,
    };
    qdrant::WriteOrdering {
        r#type: ordering as i32,
    }
}

/// A collection with one sparse vector (`bm25`) and no dense one; shards, replicas and
/// write consistency from `config`.
pub(crate) fn sparse_collection(
    name: &str,
    modifier: qdrant::Modifier,
    config: &VectorStoreConfig,
) -> CreateCollection {
    let positive = |n: u32| Some(n).filter(|&n| n > 0);
    CreateCollection {
        collection_name: name.to_string(),
        sparse_vectors_config: Some(qdrant::SparseVectorConfig {
            map: HashMap::from([(
                SPARSE_VECTOR.to_string(),
                qdrant::SparseVectorParams {
                    index: None,
                    modifier: Some(modifier as i32),
                },
            )]),
        }),
        shard_number: positive(config.shard_number),
        replication_factor: positive(config.replication_factor),
        write_consistency_factor: positive(config.write_consistency_factor),
        ..CreateCollection::default()
    }
}

/// Creates a collection unless it exists; another node creating it first is no error.
pub(crate) fn create_collection_once(
    remote: &Remote,
    request: CreateCollection,
    budget: Duration,
) -> Result<()> {
    let name = request.collection_name.clone();
    let exists = {
        let name = name.clone();
        remote.call("collection exists", budget, move |client| {
            let name = name.clone();
            async move { client.collection_exists(name).await }
        })?
    };
    if exists {
        return Ok(());
    }
    let created = remote.call("create collection", budget, move |client| {
        let request = request.clone();
        async move { client.create_collection(request).await }
    });
    match created {
        Ok(_) => {
            tracing::info!(collection = %name, "Qdrant collection created");
            Ok(())
        }
        Err(Error::Refused { status, .. }) if status.code() == Code::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Keyword indexes on `(field, is_tenant, enable_hnsw)`; creating one that exists is a no-op
/// in Qdrant.
pub(crate) fn ensure_keyword_indexes(
    remote: &Remote,
    collection: &str,
    fields: &[(&str, bool, bool)],
    ordering: qdrant::WriteOrdering,
    budget: Duration,
) -> Result<()> {
    for &(field, is_tenant, enable_hnsw) in fields {
        let request = CreateFieldIndexCollection {
            collection_name: collection.to_string(),
            wait: Some(true),
            field_name: field.to_string(),
            field_type: Some(FieldType::Keyword as i32),
            field_index_params: Some(PayloadIndexParams {
                index_params: Some(
                    qdrant::payload_index_params::IndexParams::KeywordIndexParams(
                        KeywordIndexParams {
                            is_tenant: Some(is_tenant),
                            enable_hnsw: Some(enable_hnsw),
                            ..KeywordIndexParams::default()
                        },
                    ),
                ),
            }),
            ordering: Some(ordering),
            timeout: None,
        };
        remote.call("create payload index", budget, move |client| {
            let request = request.clone();
            async move { client.create_field_index(request).await }
        })?;
    }
    Ok(())
}

pub(crate) fn point_id(id: ChunkId) -> PointId {
    PointId::from(id.to_uuid_string())
}

pub(crate) fn chunk_id(id: Option<&PointId>) -> Result<ChunkId> {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(qdrant::point_id::PointIdOptions::Uuid(uuid)) => ChunkId::from_hex(uuid)
            .map_err(|err| Error::InvalidPoint(format!("point id {uuid}: {err}"))),
        Some(qdrant::point_id::PointIdOptions::Num(n)) => {
            Err(Error::InvalidPoint(format!("numeric point id {n}")))
        }
        None => Err(Error::InvalidPoint("point without an id".to_string())),
    }
}

fn scored_chunk_id(point: &ScoredPoint) -> Result<ChunkId> {
    chunk_id(point.id.as_ref())
}

fn document_filter(kb: &KbGeneration, path: &DocumentPath) -> Vec<Condition> {
    vec![
        Condition::matches(KB_KEY, kb.key().to_string()),
        Condition::matches(PATH_KEY, path.as_str().to_string()),
    ]
}

/// The dense vector of a point read back with its vectors.
fn dense_vector(vectors: Option<qdrant::VectorsOutput>) -> Option<Vec<f32>> {
    let named = match vectors?.vectors_options? {
        qdrant::vectors_output::VectorsOptions::Vectors(named) => named,
        qdrant::vectors_output::VectorsOptions::Vector(_) => return None,
    };
    match named.vectors.get(DENSE_VECTOR)?.clone().into_vector() {
        qdrant::vector_output::Vector::Dense(dense) => Some(dense.data),
        _ => None,
    }
}

impl VectorStore for QdrantVectorStore {
    fn upsert_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        points: &[VectorPoint],
    ) -> lumbung_index::Result<()> {
        for point in points {
            lumbung_index::check_vector(&point.vector, self.dimension)?;
        }
        for batch in points.chunks(UPSERT_BATCH) {
            let points: Vec<PointStruct> = batch
                .iter()
                .map(|point| {
                    let payload: HashMap<String, Value> = HashMap::from([
                        (KB_KEY.to_string(), Value::from(kb.key())),
                        (PATH_KEY.to_string(), Value::from(path.as_str())),
                        (HASH_KEY.to_string(), Value::from(hash.as_str())),
                        (LANGUAGE_KEY.to_string(), Value::from(point.language.code())),
                    ]);
                    let vectors =
                        NamedVectors::default().add_vector(DENSE_VECTOR, point.vector.clone());
                    PointStruct {
                        id: Some(point_id(point.id)),
                        payload,
                        vectors: Some(vectors.into()),
                    }
                })
                .collect();
            let request = UpsertPoints {
                collection_name: self.collection.clone(),
                wait: Some(true),
                points,
                ordering: Some(self.ordering),
                ..UpsertPoints::default()
            };
            self.remote
                .call("upsert points", self.write_budget, move |client| {
                    let request = request.clone();
                    async move { client.upsert_points(request).await }
                })?;
        }
        Ok(())
    }

    fn delete_other_versions(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        keep: &ContentHash,
    ) -> lumbung_index::Result<()> {
        let filter = Filter {
            must: document_filter(kb, path),
            must_not: vec![Condition::matches(HASH_KEY, keep.as_str().to_string())],
            ..Filter::default()
        };
        Ok(self.delete_where(filter)?)
    }

    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> lumbung_index::Result<()> {
        Ok(self.delete_where(Filter::must(document_filter(kb, path)))?)
    }

    fn delete_generation(&self, kb: &KbGeneration) -> lumbung_index::Result<()> {
        Ok(self.delete_where(Filter::must([Condition::matches(
            KB_KEY,
            kb.key().to_string(),
        )]))?)
    }

    /// Every write already waited for Qdrant to apply it (and write its WAL).
    fn flush(&self) -> lumbung_index::Result<()> {
        Ok(())
    }

    fn search(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        limit: usize,
    ) -> lumbung_index::Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, None, limit)
    }

    fn search_language(
        &self,
        vector: &[f32],
        kbs: &[KbGeneration],
        language: Language,
        limit: usize,
    ) -> lumbung_index::Result<Vec<(ChunkId, f32)>> {
        self.nearest(vector, kbs, Some(language), limit)
    }

    fn get_vectors(&self, ids: &[ChunkId]) -> lumbung_index::Result<Vec<(ChunkId, Vec<f32>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = GetPoints {
            collection_name: self.collection.clone(),
            ids: ids.iter().map(|id| point_id(*id)).collect(),
            with_payload: Some(WithPayloadSelector::from(false)),
            with_vectors: Some(WithVectorsSelector::from(vec![DENSE_VECTOR])),
            ..GetPoints::default()
        };
        let points = self
            .remote
            .call("get points", self.read_budget, move |client| {
                let request = request.clone();
                async move { client.get_points(request).await }
            })?
            .result;
        let mut found: HashMap<ChunkId, Vec<f32>> = HashMap::with_capacity(points.len());
        for point in points {
            let id = chunk_id(point.id.as_ref())?;
            let vector = dense_vector(point.vectors)
                .ok_or_else(|| Error::InvalidPoint(format!("point {id} has no dense vector")))?;
            found.insert(id, vector);
        }
        // In the order asked, as the trait promises; Qdrant does not keep it.
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id).map(|vector| (*id, vector)))
            .collect())
    }

    fn count(&self, kb: &KbGeneration, path: Option<&DocumentPath>) -> lumbung_index::Result<u64> {
        let filter = match path {
            Some(path) => Filter::must(document_filter(kb, path)),
            None => Filter::must([Condition::matches(KB_KEY, kb.key().to_string())]),
        };
        Ok(self.remote.count(
            "count points",
            &self.collection,
            Some(filter),
            true,
            self.read_budget,
        )?)
    }

    fn language_centroids(
        &self,
        sample: usize,
    ) -> lumbung_index::Result<Vec<(Language, Vec<f32>)>> {
        let mut centroids = Vec::new();
        if sample == 0 {
            return Ok(centroids);
        }
        for language in [Language::Zh, Language::Id, Language::En, Language::Unknown] {
            let request = QueryPoints {
                collection_name: self.collection.clone(),
                query: Some(Query::new_sample(qdrant::Sample::Random)),
                filter: Some(Filter::must([Condition::matches(
                    LANGUAGE_KEY,
                    language.code().to_string(),
                )])),
                limit: Some(sample as u64),
                with_payload: Some(WithPayloadSelector::from(false)),
                with_vectors: Some(WithVectorsSelector::from(vec![DENSE_VECTOR])),
                ..QueryPoints::default()
            };
            let points = self
                .remote
                .call("sample points", self.read_budget, move |client| {
                    let request = request.clone();
                    async move { client.query(request).await }
                })?
                .result;
            let vectors = points
                .into_iter()
                .filter_map(|point| dense_vector(point.vectors));
            if let Some(mean) = lumbung_index::mean_vector(vectors, self.dimension) {
                centroids.push((language, mean));
            }
        }
        Ok(centroids)
    }
}
