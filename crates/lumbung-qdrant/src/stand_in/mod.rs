//! A **stand-in** for a Qdrant server: Qdrant's gRPC API (the server traits `qdrant-client`
//! generates) over Qdrant's own storage engine, `qdrant-edge`, in the process.
//!
//! No Qdrant server binary can be installed where lumbung's tests run and there is no container
//! engine, so the Qdrant backend is tested against this. It is not Qdrant: one process, one
//! shard per collection, no cluster (`shard_number`, `replication_factor` and
//! `write_consistency_factor` are accepted and ignored), no REST API, and only the calls and
//! options lumbung's backend makes; anything else is answered UNIMPLEMENTED. What it does answer
//! is computed by Qdrant's engine (filters, payload indexes, HNSW, sparse vectors with IDF,
//! prefetch and fusion), so a query means here what it means in Qdrant.
//!
//! [`StandInQdrant::stop`] and [`StandInQdrant::resume`] take the server off its port and put
//! it back, keeping the data: an outage, as a client sees one.

mod convert;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use qdrant_client::qdrant::points_server::{Points, PointsServer};
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use qdrant_client::qdrant::{self};
use qdrant_edge::{
    ConditionalInsertOperation, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance,
    EdgeConfig, EdgeShard, EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder, FacetRequest,
    FieldIndexOperations, HnswIndexConfig, JsonPath, Modifier, PointInsertOperations,
    PointOperations, PointStructPersisted, QueryRequest, ScrollRequest, UpdateOperation,
};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::{Request, Response, Status};

/// How long [`StandInQdrant::stop`] waits for calls in flight.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The engine's state, shared by the services and kept across [`StandInQdrant::stop`].
struct Engine {
    dir: PathBuf,
    api_key: Option<String>,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
}

/// One collection: one qdrant-edge shard. Writes are serialised, as qdrant-edge needs.
struct Collection {
    shard: EdgeShard,
    writes: Mutex<()>,
}

/// A Qdrant-API server over `qdrant-edge` for tests (see the module documentation): **not a
/// Qdrant server**.
pub struct StandInQdrant {
    engine: Arc<Engine>,
    addr: SocketAddr,
    /// The server's runtime while it serves; shutting it down drops every connection at once,
    /// as a crashed or unplugged server would.
    serving: Option<Runtime>,
}

impl StandInQdrant {
    /// Serves on 127.0.0.1 (a free port) the collections kept under `dir`, loading those a
    /// previous stand-in left there; with `api_key`, only calls that send it. Blocking; it may
    /// be called from inside another runtime (it serves from one of its own).
    pub fn start(dir: &Path, api_key: Option<&str>) -> std::io::Result<StandInQdrant> {
        Self::start_on(dir, api_key, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// [`StandInQdrant::start`] on `addr`.
    pub fn start_on(
        dir: &Path,
        api_key: Option<&str>,
        addr: SocketAddr,
    ) -> std::io::Result<StandInQdrant> {
        std::fs::create_dir_all(dir)?;
        let mut collections = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                let shard = EdgeShard::load(&path, None).map_err(std::io::Error::other)?;
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                collections.insert(name, Arc::new(Collection::new(shard)));
            }
        }
        let engine = Arc::new(Engine {
            dir: dir.to_path_buf(),
            api_key: api_key.map(str::to_string),
            collections: RwLock::new(collections),
        });
        let listener = std::net::TcpListener::bind(addr)?;
        let mut stand_in = StandInQdrant {
            engine,
            addr: listener.local_addr()?,
            serving: None,
        };
        stand_in.serve(listener)?;
        Ok(stand_in)
    }

    /// The gRPC URL a client connects to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the server off its port at once: open connections drop, new ones are refused,
    /// calls in flight get no answer. The data stays for [`StandInQdrant::resume`]. Returns
    /// once the server's tasks are gone (a call that reached qdrant-edge finishes first).
    pub fn stop(&mut self) {
        if let Some(runtime) = self.serving.take() {
            // On a thread of its own: a runtime cannot be shut down from inside another
            // one's async context, where tests call this.
            let shutdown = std::thread::spawn(move || runtime.shutdown_timeout(SHUTDOWN_WAIT));
            let _ = shutdown.join();
        }
    }

    /// Serves again on the same address after [`StandInQdrant::stop`].
    pub fn resume(&mut self) -> std::io::Result<()> {
        if self.serving.is_some() {
            return Ok(());
        }
        let listener = std::net::TcpListener::bind(self.addr)?;
        self.serve(listener)
    }

    fn serve(&mut self, listener: std::net::TcpListener) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stand-in-qdrant")
            .enable_all()
            .build()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _runtime = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let api = Api {
            engine: Arc::clone(&self.engine),
        };
        // Without TCP_NODELAY a small answer waits for the client's delayed ACK (about 40 ms).
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        runtime.spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(QdrantServer::new(api.clone()))
                .add_service(CollectionsServer::new(api.clone()))
                .add_service(PointsServer::new(api).max_decoding_message_size(64 << 20))
                .serve_with_incoming(incoming)
                .await;
            if let Err(err) = result {
                tracing::error!(error = %err, "stand-in Qdrant stopped");
            }
        });
        self.serving = Some(runtime);
        Ok(())
    }
}

impl Drop for StandInQdrant {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Collection {
    fn new(shard: EdgeShard) -> Self {
        Collection {
            shard,
            writes: Mutex::new(()),
        }
    }

    fn update(&self, operation: UpdateOperation) -> Result<(), Status> {
        let _writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.shard.update(operation).map_err(engine_error)
    }
}

fn engine_error(err: qdrant_edge::OperationError) -> Status {
    use qdrant_edge::OperationError;
    match err {
        OperationError::WrongVectorDimension { .. }
        | OperationError::ValidationError { .. }
        | OperationError::VectorNameNotExists { .. }
        | OperationError::MissingMapIndexForFacet { .. }
        | OperationError::WrongSparse
        | OperationError::TypeError { .. } => Status::invalid_argument(err.to_string()),
        OperationError::PointIdError { .. } => Status::not_found(err.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn ok_points() -> qdrant::PointsOperationResponse {
    qdrant::PointsOperationResponse {
        result: Some(qdrant::UpdateResult {
            operation_id: None,
            status: qdrant::UpdateStatus::Completed as i32,
        }),
        ..qdrant::PointsOperationResponse::default()
    }
}

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
}

impl Api {
    /// Checks the `api-key` header when the stand-in was started with a key.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(expected) = &self.engine.api_key else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get("api-key")
            .and_then(|v| v.to_str().ok());
        if given == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(Status::permission_denied("missing or wrong api-key"))
        }
    }

    fn collection(&self, name: &str) -> Result<Arc<Collection>, Status> {
        self.engine
            .collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))
    }

    /// Runs `work` on the collection off the async workers (qdrant-edge blocks).
    async fn on<T: Send + 'static>(
        &self,
        name: &str,
        work: impl FnOnce(&Collection) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let collection = self.collection(name)?;
        tokio::task::spawn_blocking(move || work(&collection))
            .await
            .map_err(|err| Status::internal(format!("stand-in task: {err}")))?
    }
}

/// A query of the collection: qdrant-edge answers as one shard does, with the first
/// `offset + limit` points, and the collection level (here) skips the offset, as in Qdrant.
fn run_query(
    collection: &Collection,
    query: QueryRequest,
) -> Result<Vec<qdrant::ScoredPoint>, Status> {
    let offset = query.offset;
    let points = collection.shard.query(query).map_err(engine_error)?;
    Ok(points
        .into_iter()
        .skip(offset)
        .map(convert::scored_point)
        .collect())
}

fn query_request(query: qdrant::QueryPoints) -> Result<QueryRequest, Status> {
    if query.lookup_from.is_some() {
        return Err(convert::unimplemented("lookup_from"));
    }
    Ok(QueryRequest {
        prefetches: query
            .prefetch
            .into_iter()
            .map(convert::prefetch)
            .collect::<Result<_, _>>()?,
        query: convert::query(query.query, query.using)?,
        filter: convert::filter(query.filter)?,
        score_threshold: query
            .score_threshold
            .map(qdrant_edge::external::ordered_float::OrderedFloat),
        limit: query.limit.map_or(10, |limit| limit as usize),
        offset: query.offset.unwrap_or(0) as usize,
        params: convert::search_params(query.params)?,
        with_vector: convert::with_vectors(query.with_vectors),
        with_payload: convert::with_payload(query.with_payload)?,
    })
}

fn edge_config(request: &qdrant::CreateCollection) -> Result<EdgeConfig, Status> {
    use qdrant::vectors_config::Config;
    let distance = |d: i32| match qdrant::Distance::try_from(d) {
        Ok(qdrant::Distance::Cosine) => Ok(Distance::Cosine),
        Ok(qdrant::Distance::Dot) => Ok(Distance::Dot),
        Ok(qdrant::Distance::Euclid) => Ok(Distance::Euclid),
        Ok(qdrant::Distance::Manhattan) => Ok(Distance::Manhattan),
        _ => Err(Status::invalid_argument(format!("distance {d}"))),
    };
    #[allow(
        deprecated,
        reason = "lumbung's backend sets on_disk, which every Qdrant 1.x reads"
    )]
    let dense = |params: &qdrant::VectorParams| -> Result<_, Status> {
        let mut builder =
            EdgeVectorParamsBuilder::new(params.size as usize, distance(params.distance)?);
        if let Some(on_disk) = params.on_disk {
            builder = builder.on_disk(on_disk);
        }
        Ok(builder.build())
    };
    let mut config = EdgeConfig::default();
    match request
        .vectors_config
        .as_ref()
        .and_then(|v| v.config.as_ref())
    {
        Some(Config::Params(params)) => {
            config
                .vectors
                .insert(DEFAULT_VECTOR_NAME.to_string(), dense(params)?);
        }
        Some(Config::ParamsMap(map)) => {
            for (name, params) in &map.map {
                config.vectors.insert(name.clone(), dense(params)?);
            }
        }
        None => {}
    }
    if let Some(sparse) = &request.sparse_vectors_config {
        for (name, params) in &sparse.map {
            let mut builder = EdgeSparseVectorParamsBuilder::new();
            if params.modifier == Some(qdrant::Modifier::Idf as i32) {
                builder = builder.modifier(Modifier::Idf);
            }
            config.sparse_vectors.insert(name.clone(), builder.build());
        }
    }
    if let Some(hnsw) = &request.hnsw_config {
        let default = HnswIndexConfig::default();
        config.hnsw_config = HnswIndexConfig {
            m: hnsw.m.map_or(default.m, |m| m as usize),
            ef_construct: hnsw
                .ef_construct
                .map_or(default.ef_construct, |ef| ef as usize),
            payload_m: hnsw.payload_m.map(|m| m as usize),
            ..default
        };
    }
    if let Some(threshold) = request
        .optimizers_config
        .as_ref()
        .and_then(|optimizers| optimizers.indexing_threshold)
    {
        config.optimizers.indexing_threshold = Some(threshold as usize);
    }
    #[allow(deprecated, reason = "always_ram is what lumbung's backend sets")]
    if let Some(qdrant::quantization_config::Quantization::Scalar(scalar)) = request
        .quantization_config
        .as_ref()
        .and_then(|q| q.quantization)
    {
        let json = qdrant_edge::external::serde_json::json!({"scalar": {
            "type": "int8",
            "quantile": scalar.quantile,
            "always_ram": scalar.always_ram,
        }});
        config.quantization_config = Some(
            qdrant_edge::external::serde_json::from_value(json)
                .map_err(|err| Status::invalid_argument(format!("quantization: {err}")))?,
        );
    }
    Ok(config)
}

fn collection_info(shard: &EdgeShard) -> qdrant::CollectionInfo {
    let config = shard.config().clone();
    let distance = |d: Distance| match d {
        Distance::Cosine => qdrant::Distance::Cosine,
        Distance::Dot => qdrant::Distance::Dot,
        Distance::Euclid => qdrant::Distance::Euclid,
        Distance::Manhattan => qdrant::Distance::Manhattan,
    } as i32;
    let vectors = config
        .vectors
        .iter()
        .map(|(name, params)| {
            (
                name.clone(),
                qdrant::VectorParams {
                    size: params.size as u64,
                    distance: distance(params.distance),
                    ..qdrant::VectorParams::default()
                },
            )
        })
        .collect();
    let sparse = config
        .sparse_vectors
        .iter()
        .map(|(name, params)| {
            let modifier = match params.modifier {
                Some(Modifier::Idf) => qdrant::Modifier::Idf,
                _ => qdrant::Modifier::None,
            };
            (
                name.clone(),
                qdrant::SparseVectorParams {
                    index: None,
                    modifier: Some(modifier as i32),
                },
            )
        })
        .collect();
    let info = shard.info();
    qdrant::CollectionInfo {
        status: qdrant::CollectionStatus::Green as i32,
        segments_count: info.segments_count as u64,
        points_count: Some(info.points_count as u64),
        indexed_vectors_count: Some(info.indexed_vectors_count as u64),
        config: Some(qdrant::CollectionConfig {
            params: Some(qdrant::CollectionParams {
                shard_number: 1,
                vectors_config: Some(qdrant::VectorsConfig {
                    config: Some(qdrant::vectors_config::Config::ParamsMap(
                        qdrant::VectorParamsMap { map: vectors },
                    )),
                }),
                sparse_vectors_config: Some(qdrant::SparseVectorConfig { map: sparse }),
                ..qdrant::CollectionParams::default()
            }),
            ..qdrant::CollectionConfig::default()
        }),
        ..qdrant::CollectionInfo::default()
    }
}

/// Every RPC the stand-in does not serve, answered UNIMPLEMENTED. The signatures are those
/// `#[tonic::async_trait]` gives the trait's methods.
macro_rules! not_in_stand_in {
    ($($method:ident($request:ident) -> $response:ident;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            _request: Request<qdrant::$request>,
        ) -> std::pin::Pin<Box<
            dyn std::future::Future<Output = Result<Response<qdrant::$response>, Status>>
                + Send
                + 'async_trait,
        >>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(convert::unimplemented(stringify!($method))) })
        }
    )*};
}

#[tonic::async_trait]
impl Qdrant for Api {
    async fn health_check(
        &self,
        _request: Request<qdrant::HealthCheckRequest>,
    ) -> Result<Response<qdrant::HealthCheckReply>, Status> {
        Ok(Response::new(qdrant::HealthCheckReply {
            title: "lumbung stand-in Qdrant (qdrant-edge), not a Qdrant server".to_string(),
            version: "1.20.0".to_string(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Api {
    async fn get(
        &self,
        request: Request<qdrant::GetCollectionInfoRequest>,
    ) -> Result<Response<qdrant::GetCollectionInfoResponse>, Status> {
        self.authorize(&request)?;
        let name = request.into_inner().collection_name;
        let info = self.on(&name, |c| Ok(collection_info(&c.shard))).await?;
        Ok(Response::new(qdrant::GetCollectionInfoResponse {
            result: Some(info),
            time: 0.0,
        }))
    }

    async fn list(
        &self,
        request: Request<qdrant::ListCollectionsRequest>,
    ) -> Result<Response<qdrant::ListCollectionsResponse>, Status> {
        self.authorize(&request)?;
        let mut names: Vec<String> = self
            .engine
            .collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(Response::new(qdrant::ListCollectionsResponse {
            collections: names
                .into_iter()
                .map(|name| qdrant::CollectionDescription { name })
                .collect(),
            time: 0.0,
        }))
    }

    async fn create(
        &self,
        request: Request<qdrant::CreateCollection>,
    ) -> Result<Response<qdrant::CollectionOperationResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let name = request.collection_name.clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(Status::invalid_argument(format!(
                "collection name {name:?}"
            )));
        }
        let config = edge_config(&request)?;
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || {
            let mut collections = engine
                .collections
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if collections.contains_key(&name) {
                return Err(Status::already_exists(format!(
                    "Collection `{name}` already exists!"
                )));
            }
            let path = engine.dir.join(&name);
            std::fs::create_dir_all(&path).map_err(|err| Status::internal(err.to_string()))?;
            let shard = EdgeShard::new(&path, config).map_err(engine_error)?;
            collections.insert(name, Arc::new(Collection::new(shard)));
            Ok(())
        })
        .await
        .map_err(|err| Status::internal(err.to_string()))??;
        Ok(Response::new(qdrant::CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn delete(
        &self,
        request: Request<qdrant::DeleteCollection>,
    ) -> Result<Response<qdrant::CollectionOperationResponse>, Status> {
        self.authorize(&request)?;
        let name = request.into_inner().collection_name;
        let removed = self
            .engine
            .collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&name);
        if removed.is_some() {
            let path = self.engine.dir.join(&name);
            // The shard's files go once the last call using it has finished with it.
            drop(removed);
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path))
                .await
                .map_err(|err| Status::internal(err.to_string()))?
                .map_err(|err| Status::internal(err.to_string()))?;
        }
        Ok(Response::new(qdrant::CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn collection_exists(
        &self,
        request: Request<qdrant::CollectionExistsRequest>,
    ) -> Result<Response<qdrant::CollectionExistsResponse>, Status> {
        self.authorize(&request)?;
        let exists = self
            .collection(&request.into_inner().collection_name)
            .is_ok();
        Ok(Response::new(qdrant::CollectionExistsResponse {
            result: Some(qdrant::CollectionExists { exists }),
            time: 0.0,
        }))
    }

    not_in_stand_in! {
        update(UpdateCollection) -> CollectionOperationResponse;
        update_aliases(ChangeAliases) -> CollectionOperationResponse;
        list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
        list_aliases(ListAliasesRequest) -> ListAliasesResponse;
        collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
        update_collection_cluster_setup(UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
        create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

#[tonic::async_trait]
impl Points for Api {
    async fn upsert(
        &self,
        request: Request<qdrant::UpsertPoints>,
    ) -> Result<Response<qdrant::PointsOperationResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        if request.update_mode.is_some() {
            return Err(convert::unimplemented("update_mode"));
        }
        let condition = convert::filter(request.update_filter)?;
        let points = request
            .points
            .into_iter()
            .map(|point| {
                Ok(PointStructPersisted {
                    id: convert::point_id(point.id)?,
                    vector: convert::vectors(point.vectors)?,
                    payload: Some(convert::payload(point.payload)),
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let points = PointInsertOperations::PointsList(points);
        let operation = match condition {
            // Existing points are written only where they match; new ones always.
            Some(condition) => {
                PointOperations::UpsertPointsConditional(ConditionalInsertOperation {
                    points_op: points,
                    condition,
                    update_mode: None,
                })
            }
            None => PointOperations::UpsertPoints(points),
        };
        self.on(&request.collection_name, move |c| {
            c.update(UpdateOperation::PointOperation(operation))
        })
        .await?;
        Ok(Response::new(ok_points()))
    }

    async fn delete(
        &self,
        request: Request<qdrant::DeletePoints>,
    ) -> Result<Response<qdrant::PointsOperationResponse>, Status> {
        use qdrant::points_selector::PointsSelectorOneOf;
        self.authorize(&request)?;
        let request = request.into_inner();
        let operation = match request.points.and_then(|p| p.points_selector_one_of) {
            Some(PointsSelectorOneOf::Points(ids)) => PointOperations::DeletePoints {
                ids: ids
                    .ids
                    .into_iter()
                    .map(|id| convert::point_id(Some(id)))
                    .collect::<Result<_, _>>()?,
            },
            Some(PointsSelectorOneOf::Filter(filter)) => PointOperations::DeletePointsByFilter(
                convert::filter(Some(filter))?.unwrap_or_default(),
            ),
            None => return Err(Status::invalid_argument("points selector missing")),
        };
        self.on(&request.collection_name, move |c| {
            c.update(UpdateOperation::PointOperation(operation))
        })
        .await?;
        Ok(Response::new(ok_points()))
    }

    async fn get(
        &self,
        request: Request<qdrant::GetPoints>,
    ) -> Result<Response<qdrant::GetResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let ids = request
            .ids
            .into_iter()
            .map(|id| convert::point_id(Some(id)))
            .collect::<Result<Vec<_>, _>>()?;
        let with_payload = convert::with_payload(request.with_payload)?;
        let with_vectors = convert::with_vectors(request.with_vectors);
        let records = self
            .on(&request.collection_name, move |c| {
                c.shard
                    .retrieve(&ids, Some(with_payload), Some(with_vectors))
                    .map_err(engine_error)
            })
            .await?;
        Ok(Response::new(qdrant::GetResponse {
            result: records.into_iter().map(convert::retrieved_point).collect(),
            ..qdrant::GetResponse::default()
        }))
    }

    async fn create_field_index(
        &self,
        request: Request<qdrant::CreateFieldIndexCollection>,
    ) -> Result<Response<qdrant::PointsOperationResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let field_name: JsonPath = request
            .field_name
            .parse()
            .map_err(|()| Status::invalid_argument(format!("field {:?}", request.field_name)))?;
        let schema = convert::payload_schema(request.field_type, request.field_index_params)?;
        self.on(&request.collection_name, move |c| {
            c.update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name,
                    field_schema: Some(schema),
                }),
            ))
        })
        .await?;
        Ok(Response::new(ok_points()))
    }

    async fn scroll(
        &self,
        request: Request<qdrant::ScrollPoints>,
    ) -> Result<Response<qdrant::ScrollResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        if request.order_by.is_some() {
            return Err(convert::unimplemented("scroll order_by"));
        }
        let scroll = ScrollRequest {
            offset: request
                .offset
                .map(|id| convert::point_id(Some(id)))
                .transpose()?,
            limit: request.limit.map(|limit| limit as usize),
            filter: convert::filter(request.filter)?,
            with_payload: Some(convert::with_payload(request.with_payload)?),
            with_vector: convert::with_vectors(request.with_vectors),
            order_by: None,
        };
        let (records, next) = self
            .on(&request.collection_name, move |c| {
                c.shard.scroll(scroll).map_err(engine_error)
            })
            .await?;
        Ok(Response::new(qdrant::ScrollResponse {
            next_page_offset: next.map(convert::grpc_point_id),
            result: records.into_iter().map(convert::retrieved_point).collect(),
            ..qdrant::ScrollResponse::default()
        }))
    }

    async fn count(
        &self,
        request: Request<qdrant::CountPoints>,
    ) -> Result<Response<qdrant::CountResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let count = CountRequest {
            filter: convert::filter(request.filter)?,
            exact: request.exact.unwrap_or(true),
        };
        let count = self
            .on(&request.collection_name, move |c| {
                c.shard.count(count).map_err(engine_error)
            })
            .await?;
        Ok(Response::new(qdrant::CountResponse {
            result: Some(qdrant::CountResult {
                count: count as u64,
            }),
            ..qdrant::CountResponse::default()
        }))
    }

    async fn query(
        &self,
        request: Request<qdrant::QueryPoints>,
    ) -> Result<Response<qdrant::QueryResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let name = request.collection_name.clone();
        let query = query_request(request)?;
        let points = self.on(&name, move |c| run_query(c, query)).await?;
        Ok(Response::new(qdrant::QueryResponse {
            result: points,
            ..qdrant::QueryResponse::default()
        }))
    }

    async fn query_batch(
        &self,
        request: Request<qdrant::QueryBatchPoints>,
    ) -> Result<Response<qdrant::QueryBatchResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let queries = request
            .query_points
            .into_iter()
            .map(query_request)
            .collect::<Result<Vec<_>, _>>()?;
        let results = self
            .on(&request.collection_name, move |c| {
                queries
                    .into_iter()
                    .map(|query| run_query(c, query))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(Response::new(qdrant::QueryBatchResponse {
            result: results
                .into_iter()
                .map(|result| qdrant::BatchResult { result })
                .collect(),
            ..qdrant::QueryBatchResponse::default()
        }))
    }

    async fn facet(
        &self,
        request: Request<qdrant::FacetCounts>,
    ) -> Result<Response<qdrant::FacetResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let facet = FacetRequest {
            key: request
                .key
                .parse()
                .map_err(|()| Status::invalid_argument(format!("key {:?}", request.key)))?,
            limit: request.limit.map_or(10, |limit| limit as usize),
            filter: convert::filter(request.filter)?,
            exact: request.exact.unwrap_or(false),
        };
        let response = self
            .on(&request.collection_name, move |c| {
                c.shard.facet(facet).map_err(engine_error)
            })
            .await?;
        Ok(Response::new(qdrant::FacetResponse {
            hits: response
                .hits
                .into_iter()
                .map(|hit| qdrant::FacetHit {
                    value: Some(convert::facet_value(hit.value)),
                    count: hit.count as u64,
                })
                .collect(),
            ..qdrant::FacetResponse::default()
        }))
    }

    not_in_stand_in! {
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        set_payload(SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search(SearchPoints) -> SearchResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}
