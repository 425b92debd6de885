//! Service configuration: built-in defaults < config file < `LUMBUNG__SECTION__KEY` environment
//! variables < command-line flags (applied by the CLI).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, ModelName, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the catalog and both indexes live.
    pub data_dir: PathBuf,
    /// The watched root: each sub-folder is one knowledge base.
    pub ingest_root: PathBuf,
    pub server: ServerConfig,
    /// The default embedding model: what knowledge bases are embedded with unless
    /// `ingest.embedding_model` or their `kb.toml` names another.
    pub embedding: EmbeddingConfig,
    /// More embedding models, by name: a generation embedded with one is served as long as the
    /// model stays here, so that a knowledge base moves to another model by a rebuild while its
    /// old generation answers (`docs/generations.md`).
    pub embedding_models: BTreeMap<String, EmbeddingConfig>,
    pub ingest: IngestConfig,
    pub search: SearchConfig,
    pub vector_index: VectorIndexConfig,
    pub vector_store: VectorStoreConfig,
    pub rerank: RerankConfig,
    pub ask: AskConfig,
}

/// What one `lumbung serve` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Watches the folders, keeps the catalog, writes the indexes and answers queries: the
    /// single node.
    All,
    /// Answers `KnowledgeService` from the cluster alone: no folders, catalog or local index,
    /// so any number can run behind a load balancer. Needs `vector_store.kind = "qdrant"`.
    Query,
    /// Watches the folders, keeps the catalog and writes to the cluster; serves
    /// `AdminService`. One per cluster (it holds the ingest lease). Needs
    /// `vector_store.kind = "qdrant"`.
    Ingest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// What this process does (`lumbung serve --role` overrides it).
    pub role: NodeRole,
    pub listen: SocketAddr,
    /// API tokens (see `deploy/tokens.toml`): each maps to a role and the knowledge bases it may
    /// read. Without it every caller is an administrator of everything, so the service then
    /// listens on loopback only.
    pub tokens_file: Option<PathBuf>,
    /// TLS for the gRPC port: the server's certificate chain and private key, PEM.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// With TLS, only clients with a certificate issued by this CA (PEM) may connect.
    pub tls_client_ca_file: Option<PathBuf>,
    /// Where Prometheus scrapes `GET /metrics` (plain HTTP); off when unset. Its labels name
    /// the knowledge bases, so without a token file it too must stay on loopback.
    pub metrics_listen: Option<SocketAddr>,
    /// The HTTP port beside gRPC (plain HTTP; put a TLS proxy in front of it off the machine):
    /// the JSON API and its OpenAPI document, Dify's External Knowledge API, MCP over
    /// streamable HTTP and the content owners' console, with the same tokens. Off when unset.
    pub http_listen: Option<SocketAddr>,
    /// Host names (or `host:port`) the HTTP port answers MCP requests for, besides loopback:
    /// MCP clients in browsers are kept from DNS-rebinding attacks by refusing other `Host`
    /// headers. Name the host assistants reach the service by.
    pub http_hosts: Vec<String>,
    /// Search, Ask and ExplainAnswer requests computing at once; 0 is one per core. More
    /// only share the same cores and lengthen every request.
    pub max_concurrent_requests: usize,
    /// Such requests that may wait for a turn; past that they are refused at once with
    /// RESOURCE_EXHAUSTED and a retry pushback, so that admitted requests keep their latency
    /// (each waiting place adds about one request's time divided by the running ones; about
    /// half of `max_concurrent_requests` keeps the cores busy between arrivals).
    pub max_waiting_requests: usize,
    /// Requests one token may have in flight, unless its entry in the token file says
    /// otherwise; 0 is no limit.
    pub token_max_concurrent: u32,
    /// Requests one token may start per second (in bursts of a second's worth), unless its
    /// entry says otherwise; 0 is no limit.
    pub token_requests_per_second: f64,
    /// The largest request message accepted, in bytes; a larger one is refused with
    /// OUT_OF_RANGE before it is decoded. A question needs a few kilobytes at most.
    pub max_request_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
    Cls,
}

/// The embedding model, loaded from local files; changing any of it needs a reindex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// The model's name in `[embedding]` (under `[embedding_models]` the table's key is its
    /// name, and this stays empty); empty names it after `model_dir`'s last folder. Generations
    /// record it, and it names the model's vector store, so renaming a model that embedded a
    /// generation needs a rebuild.
    pub name: String,
    /// Folder holding the ONNX file, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json` and `tokenizer_config.json`.
    pub model_dir: PathBuf,
    /// The ONNX file inside `model_dir`.
    pub onnx_file: String,
    /// Another ONNX file of the same model for queries only (for example `model-int8.onnx`,
    /// which embeds a question in half the time); empty uses `onnx_file`. Passages are not
    /// embedded again when it changes, so it must give vectors comparable with `onnx_file`'s.
    pub query_onnx_file: String,
    /// Path of `libonnxruntime.so`; when empty, `ORT_DYLIB_PATH` is used.
    pub onnxruntime_library: PathBuf,
    pub dimension: usize,
    /// Keep the first `dimension` entries of longer vectors and normalise them again
    /// (Matryoshka truncation): a smaller store from the same model. Without it a model whose
    /// vectors are not `dimension` long is refused.
    pub truncate_dimension: bool,
    pub pooling: Pooling,
    pub query_prefix: String,
    pub passage_prefix: String,
    /// Tokens the model reads at most; longer input is truncated.
    pub max_tokens: usize,
    pub batch_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest chunk, in the embedding model's tokens.
    pub chunk_max_tokens: usize,
    /// Overlap between consecutive chunks, in tokens.
    pub chunk_overlap_tokens: usize,
    /// Files larger than this are recorded as failed without being read.
    pub max_file_bytes: u64,
    /// Pages of one PDF.
    pub max_pages: u32,
    /// Characters of text extracted from one file.
    pub max_extracted_chars: u64,
    /// Unpacked bytes of any one member of a DOCX, XLSX or ODS file (zip bombs stop here).
    pub max_zip_entry_bytes: u64,
    /// Non-empty rows of one worksheet or CSV file.
    pub max_rows_per_sheet: u64,
    /// Seconds one file's extraction may take before it is recorded as failed.
    pub max_extract_seconds: u64,
    /// A file is taken only once it has not changed for this many milliseconds (a copy or a
    /// save in progress is left until it is finished).
    pub settle_ms: u64,
    /// Watch the folders while serving; without it only the start-up scan and the periodic
    /// reconcile see changes.
    pub watch: bool,
    /// Seconds between two full scans of every folder while serving: the safety net for
    /// changes the watcher missed (network shares, overflowing event queues).
    pub reconcile_interval_seconds: u64,
    /// The nice value (0 to 19) of the threads that read, embed and write documents (Linux):
    /// queries run at the service's own priority, so they keep the cores while a burst of
    /// files is embedded. 0 runs ingest at the same priority as queries.
    pub niceness: i32,
    /// Milliseconds between a rebuilt generation becoming active and the old one being
    /// deleted: longer than any search that read the old one takes, so none is cut short.
    pub retire_after_ms: u64,
    /// The model new generations are embedded with (a rebuild, a new knowledge base) unless
    /// the knowledge base's `kb.toml` names another: `[embedding]`'s name or a key of
    /// `[embedding_models]`; empty means `[embedding]`'s. Existing generations keep theirs.
    pub embedding_model: String,
    /// Mebibytes of the data directory's file system that ingest leaves free: below it, new
    /// and changed files wait (their knowledge bases' status says why) and removals still go
    /// on, so that the service never runs out of disk halfway through a write and keeps
    /// answering from what it holds. It must cover the largest merge or compaction (see
    /// `docs/operations.md`, "Disk"); 0 turns the check off.
    pub min_free_disk_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Candidates each retriever contributes before fusion.
    pub candidates: usize,
    /// How the BM25 and dense lists are combined.
    pub fusion: Fusion,
    /// The `k` of reciprocal rank fusion: larger flattens the rank curve.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// How much a passage's BM25 score counts by how much of the question it matches: its
    /// BM25 weight is multiplied by (share of the query's term weight it holds) to this power,
    /// so that a match on a number or a name alone (all BM25 can find across languages) does
    /// not outvote a strong dense match. 0 turns the rule off.
    pub bm25_coverage_exponent: f32,
    /// The dense score of a passage mixes its own vector's similarity with its best sentence's:
    /// this is the sentence's share, from 0 (passage alone) to 1 (best sentence alone).
    pub sentence_weight: f32,
    /// How much of each language's mean vector is taken off the question and the passage before
    /// their cosine is computed (0 turns it off, 1 takes the whole mean off). Multilingual models
    /// rate any passage in the question's own language higher than one in another language;
    /// with the language taken out, a Chinese answer to an English question can outrank an
    /// unrelated English passage.
    pub language_centering: f32,
    /// Largest `top_k` a request may ask for.
    pub max_top_k: usize,
    /// Search and Ask tasks that may wait for a core; past that, requests are refused at once
    /// with RESOURCE_EXHAUSTED, so that the admitted ones keep their latency under a burst.
    pub max_waiting_tasks: usize,
}

/// How the embedded vector store indexes and searches dense vectors (`lumbung bench --scale`
/// measures the choices: docs/scale.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorIndexConfig {
    /// Links per point in the HNSW graph: more is more exact, larger and slower to build.
    pub hnsw_m: usize,
    /// Candidates considered while the graph is built.
    pub hnsw_ef_construct: usize,
    /// Extra links among the points of each knowledge base, so that a search scoped to one
    /// knowledge base walks a connected graph of its own points; 0 builds none.
    pub hnsw_payload_m: usize,
    /// Candidates a search keeps while it walks the graph: more is more exact and slower.
    pub search_ef: usize,
    /// Let a search whose filter keeps few points (a few knowledge bases of many, one
    /// language) walk past the points it excludes (ACORN), instead of losing its way in a
    /// graph that the filter cuts apart.
    pub filtered_search_acorn: bool,
    /// Points written or removed since the last optimisation (graph build, segment merge,
    /// removal of deleted points) that start the next one in the background; 0 never starts
    /// one. Until a segment has its graph, searches scan it exactly.
    pub optimize_after_changes: u64,
    /// Segments holding more vectors than this (in KiB) get a graph; smaller ones are
    /// searched exactly (Qdrant's default, 10 MB: about 6,500 vectors of 384 dimensions).
    pub indexing_threshold_kb: usize,
    /// Keep full vectors in memory-mapped files, paged in when read, instead of in memory.
    pub vectors_on_disk: bool,
    /// Search an int8 copy of the vectors (a quarter of the size, kept in memory) and rescore
    /// the best with the full vectors.
    pub int8_quantization: bool,
}

impl Default for VectorIndexConfig {
    fn default() -> Self {
        VectorIndexConfig {
            hnsw_m: 16,
            hnsw_ef_construct: 100,
            hnsw_payload_m: 16,
            search_ef: 128,
            filtered_search_acorn: true,
            optimize_after_changes: 20_000,
            indexing_threshold_kb: 10_000,
            vectors_on_disk: true,
            int8_quantization: true,
        }
    }
}

/// Which engine holds the dense vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorStoreKind {
    /// Qdrant's engine in the process (`qdrant-edge`), under `data_dir/vectors`.
    Embedded,
    /// A Qdrant server or cluster, through its gRPC API (`qdrant-client`).
    Qdrant,
}

/// How Qdrant acknowledges a write to the replicas of its shard (Qdrant's `ordering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOrdering {
    /// Any replica applies it; the fastest, and what Qdrant does by default.
    Weak,
    /// The shard's leader orders it, so concurrent writes to a point apply in one order.
    Medium,
    /// Every replica applies it in the leader's order; the slowest.
    Strong,
}

/// Where the dense vectors live. `kind = "embedded"` uses `[vector_index]` and the data
/// directory; `kind = "qdrant"` a Qdrant server or cluster, one collection per embedding model
/// with the knowledge base as its tenant field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorStoreConfig {
    pub kind: VectorStoreKind,
    /// Qdrant's gRPC address (port 6334 by default); `https://` for TLS, checked against the
    /// system's certificate authorities.
    pub url: String,
    /// Sent as `api-key` on every call; better set through `LUMBUNG__VECTOR_STORE__API_KEY`
    /// than written in a file.
    pub api_key: String,
    /// The collection's name before the model's: `{collection}-{model folder}-{dimension}`,
    /// so that another embedding model gets a collection of its own.
    pub collection: String,
    /// Shards of a new collection (Qdrant's `shard_number`); 0 leaves it to Qdrant (one per
    /// node). Ignored for a collection that exists.
    pub shard_number: u32,
    /// Copies of each shard in a new collection; 0 leaves it to Qdrant (1).
    pub replication_factor: u32,
    /// Replicas that must acknowledge a write before it succeeds; 0 leaves it to Qdrant (1).
    pub write_consistency_factor: u32,
    pub write_ordering: WriteOrdering,
    /// One call's time limit, in milliseconds.
    pub timeout_ms: u64,
    /// How long a search keeps retrying an unreachable cluster before it answers UNAVAILABLE,
    /// in milliseconds.
    pub search_retry_ms: u64,
    /// How long ingest keeps retrying an unreachable cluster (ingest pauses meanwhile) before
    /// its run fails; the next reconcile then starts over from the catalog.
    pub write_retry_seconds: u64,
    /// The chunk length (in analyzer terms) BM25 normalises a chunk's length against. A
    /// chunk's BM25 weights are written into Qdrant once, so this stands in for the
    /// collection's true average that tantivy uses; changing it needs a reindex.
    /// `lumbung eval DIR --lexical` measures it and what it does to ranking.
    pub bm25_average_chunk_terms: f32,
    /// How often a query node reads the knowledge bases (and their `kb.toml` settings) that
    /// the ingest node publishes, in milliseconds.
    pub directory_refresh_ms: u64,
    /// The ingest lease a node that writes to the cluster holds, renewed every third of it: a
    /// second such node is refused while it is held, and may take over this long after the
    /// first stopped without releasing it.
    pub ingest_lease_seconds: u64,
}

impl Default for VectorStoreConfig {
    fn default() -> Self {
        VectorStoreConfig {
            kind: VectorStoreKind::Embedded,
            url: "http://127.0.0.1:6334".to_string(),
            api_key: String::new(),
            collection: "lumbung".to_string(),
            shard_number: 0,
            replication_factor: 0,
            write_consistency_factor: 0,
            write_ordering: WriteOrdering::Weak,
            timeout_ms: 5_000,
            search_retry_ms: 1_000,
            write_retry_seconds: 300,
            // Measured with `lumbung eval DIR --lexical` on ../shared/eval (docs/cluster.md).
            bm25_average_chunk_terms: 60.0,
            directory_refresh_ms: 2_000,
            ingest_lease_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Weighted reciprocal rank fusion with `rrf_k`: uses ranks only.
    Rrf,
    /// Weighted sum of each list's min-max normalised scores: keeps score gaps.
    Normalized,
}

/// The optional cross-encoder that reorders the best hybrid passages (the `hybrid_rerank`
/// retriever). It runs on the same ONNX Runtime as the embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankConfig {
    /// Load the model at start-up; without it, `hybrid_rerank` requests are refused.
    pub enabled: bool,
    /// Folder holding `model.onnx`, `tokenizer.json`, `config.json`, `special_tokens_map.json`
    /// and `tokenizer_config.json`.
    pub model_dir: PathBuf,
    /// Fused passages the model scores; the rest keep their fused order after them.
    pub candidates: usize,
    /// Tokens of query and passage together that the model reads; longer pairs are truncated.
    pub max_tokens: usize,
}

/// How `Ask` picks supporting sentences and when it says there is no answer.
///
/// Each sentence of the best passages is scored by a weighted sum of signals, each from 0 to
/// 1: its embedding's similarity to the question (scaled among the candidates), the share of
/// the question's term weight found in it, in it and its headings, and in its neighbours, its
/// passage's fused score relative to the best, and whether it holds a number when the question
/// asks for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AskConfig {
    /// Top passages whose sentences are considered.
    pub passages: usize,
    /// Below this confidence (the calibrated probability that the quoted sentences answer the
    /// question) `Ask` hands the question off instead of answering. Higher: fewer wrong
    /// answers and more hand-offs.
    pub min_confidence: f32,
    /// Sentences whose score is within this margin of the best one are kept as further support.
    pub support_margin: f32,
    pub similarity_weight: f32,
    pub overlap_weight: f32,
    pub heading_overlap_weight: f32,
    pub neighbour_overlap_weight: f32,
    pub passage_weight: f32,
    pub number_weight: f32,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            enabled: false,
            model_dir: PathBuf::from("runtime/models/ms-marco-MiniLM-L-12-v2"),
            candidates: 20,
            max_tokens: 512,
        }
    }
}

impl Default for AskConfig {
    fn default() -> Self {
        AskConfig {
            passages: 5,
            min_confidence: 0.5,
            // Fitted by scripts/fit_ask_weights.py on IDK-MRC train and eval/samples; see
            // docs/evaluation.md.
            support_margin: 1.5,
            similarity_weight: 1.0,
            overlap_weight: 1.0,
            heading_overlap_weight: 1.0,
            neighbour_overlap_weight: 0.1,
            passage_weight: 1.0,
            number_weight: 2.0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            ingest_root: PathBuf::from("ingest"),
            server: ServerConfig::default(),
            embedding: EmbeddingConfig::default(),
            embedding_models: BTreeMap::new(),
            ingest: IngestConfig::default(),
            search: SearchConfig::default(),
            vector_index: VectorIndexConfig::default(),
            vector_store: VectorStoreConfig::default(),
            rerank: RerankConfig::default(),
            ask: AskConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            role: NodeRole::All,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tokens_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            metrics_listen: None,
            http_listen: None,
            http_hosts: Vec::new(),
            max_concurrent_requests: 0,
            max_waiting_requests: 1,
            token_max_concurrent: 4,
            token_requests_per_second: 0.0,
            max_request_bytes: 64 * 1024,
        }
    }
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            name: String::new(),
            model_dir: PathBuf::from("runtime/models/multilingual-e5-small"),
            onnx_file: "model.onnx".to_string(),
            query_onnx_file: String::new(),
            onnxruntime_library: PathBuf::from("runtime/onnxruntime/libonnxruntime.so"),
            dimension: 384,
            truncate_dimension: false,
            pooling: Pooling::Mean,
            query_prefix: "query: ".to_string(),
            passage_prefix: "passage: ".to_string(),
            max_tokens: 512,
            batch_size: 16,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            chunk_max_tokens: 200,
            chunk_overlap_tokens: 0,
            max_file_bytes: 64 << 20,
            max_pages: 2_000,
            max_extracted_chars: 20_000_000,
            max_zip_entry_bytes: 256 << 20,
            max_rows_per_sheet: 1_000_000,
            max_extract_seconds: 120,
            settle_ms: 1_000,
            watch: true,
            reconcile_interval_seconds: 300,
            niceness: 19,
            retire_after_ms: 10_000,
            min_free_disk_mib: 1_024,
            embedding_model: String::new(),
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            candidates: 50,
            // Measured on ../shared/eval (docs/evaluation.md): normalised fusion with BM25 at half
            // weight is the only setting tried that keeps Chinese and Indonesian at their
            // targets without losing English questions over Chinese passages.
            fusion: Fusion::Normalized,
            rrf_k: 60.0,
            bm25_weight: 0.5,
            dense_weight: 1.0,
            bm25_coverage_exponent: 1.0,
            sentence_weight: 0.5,
            language_centering: 0.5,
            max_top_k: 100,
            // Measured with `lumbung bench --load 16` on 2 cores: 4 keeps the same throughput
            // as 12 with a lower p99 for the admitted requests (docs/evaluation.md).
            max_waiting_tasks: 4,
        }
    }
}

const ENV_PREFIX: &str = "LUMBUNG__";

impl Config {
    /// Loads defaults, then the file (if given), then `LUMBUNG__SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let source = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<env>"));
        let config_error = |reason: String| Error::Config {
            path: source.clone(),
            reason,
        };
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|err| config_error(err.to_string()))?;
                text.parse::<toml::Table>()
                    .map_err(|err| config_error(err.to_string()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &parts, parse_env_value(&value))
                .map_err(|reason| config_error(format!("{key}: {reason}")))?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|err: toml::de::Error| config_error(err.to_string()))?;
        config
            .validate()
            .map_err(|err| config_error(err.to_string()))?;
        Ok(config)
    }

    /// Checks bounds that serde cannot express.
    /// The name of `[embedding]`'s model: its `name`, else its folder's name.
    pub fn default_model(&self) -> ModelName {
        let name = if self.embedding.name.is_empty() {
            let folder = self
                .embedding
                .model_dir
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            folder
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        } else {
            self.embedding.name.clone()
        };
        ModelName::new(name.trim_start_matches(['.', '-', '_']))
            .unwrap_or_else(|_| ModelName::new("model").expect("a valid name"))
    }

    /// The model new generations are embedded with, unless a knowledge base's `kb.toml` names
    /// another (`ingest.embedding_model`, else `[embedding]`'s).
    pub fn model_for_new_generations(&self) -> ModelName {
        match ModelName::new(self.ingest.embedding_model.as_str()) {
            Ok(name) if !self.ingest.embedding_model.is_empty() => name,
            _ => self.default_model(),
        }
    }

    /// The configuration of the model called `name`, if it is configured.
    pub fn embedding_model(&self, name: &ModelName) -> Option<&EmbeddingConfig> {
        if *name == self.default_model() {
            Some(&self.embedding)
        } else {
            self.embedding_models.get(name.as_str())
        }
    }

    /// Every configured embedding model with its name, `[embedding]`'s first.
    pub fn embedding_models(&self) -> Vec<(ModelName, &EmbeddingConfig)> {
        let mut models = vec![(self.default_model(), &self.embedding)];
        for (name, model) in &self.embedding_models {
            if let Ok(name) = ModelName::new(name.as_str()) {
                models.push((name, model));
            }
        }
        models
    }

    fn validate_embedding_models(&self) -> Result<()> {
        if !self.embedding.name.is_empty() {
            ModelName::new(self.embedding.name.as_str()).map_err(|_| {
                Error::invalid("embedding.name", invalid_model_name(&self.embedding.name))
            })?;
        }
        let default = self.default_model();
        let mut models = vec![("embedding".to_string(), &self.embedding)];
        for (name, model) in &self.embedding_models {
            let field = format!("embedding_models.{name}");
            ModelName::new(name.as_str())
                .map_err(|_| Error::invalid(field.clone(), invalid_model_name(name)))?;
            if name.as_str() == default.as_str() {
                return Err(Error::invalid(
                    field,
                    format!("{name:?} is already [embedding]'s name"),
                ));
            }
            if !model.name.is_empty() && model.name != *name {
                return Err(Error::invalid(
                    format!("{field}.name"),
                    "a model under [embedding_models] is named by its key: leave name out",
                ));
            }
            models.push((field, model));
        }
        for (field, model) in models {
            if model.dimension == 0 {
                return Err(Error::invalid(
                    format!("{field}.dimension"),
                    "must be positive",
                ));
            }
            if model.batch_size == 0 {
                return Err(Error::invalid(
                    format!("{field}.batch_size"),
                    "must be positive",
                ));
            }
        }
        let wanted = &self.ingest.embedding_model;
        if !wanted.is_empty()
            && ModelName::new(wanted.as_str())
                .ok()
                .and_then(|name| self.embedding_model(&name))
                .is_none()
        {
            return Err(Error::invalid(
                "ingest.embedding_model",
                format!(
                    "{wanted:?} is neither [embedding]'s name ({default}) nor a key of \
                     [embedding_models]"
                ),
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(metrics) = self.server.metrics_listen
            && self.server.tokens_file.is_none()
            && !metrics.ip().is_loopback()
        {
            return Err(Error::invalid(
                "server.metrics_listen",
                format!("{metrics} is not a loopback address, and there is no server.tokens_file"),
            ));
        }
        if let Some(http) = self.server.http_listen
            && self.server.tokens_file.is_none()
            && !http.ip().is_loopback()
        {
            return Err(Error::invalid(
                "server.http_listen",
                format!(
                    "{http} is not a loopback address: without server.tokens_file anyone who \
                     reaches the port could read every knowledge base"
                ),
            ));
        }
        if self.server.tokens_file.is_none() && !self.server.listen.ip().is_loopback() {
            return Err(Error::invalid(
                "server.listen",
                format!(
                    "{} is not a loopback address: without server.tokens_file anyone who reaches \
                     the port could read and administer every knowledge base",
                    self.server.listen
                ),
            ));
        }
        let server = &self.server;
        if server.tls_cert_file.is_some() != server.tls_key_file.is_some() {
            return Err(Error::invalid(
                "server.tls_cert_file",
                "TLS needs both server.tls_cert_file and server.tls_key_file",
            ));
        }
        if server.tls_client_ca_file.is_some() && server.tls_cert_file.is_none() {
            return Err(Error::invalid(
                "server.tls_client_ca_file",
                "client certificates are checked only with TLS (server.tls_cert_file)",
            ));
        }
        if self.data_dir.starts_with(&self.ingest_root) {
            // The watcher would see every index write, and the data folder as a knowledge base.
            return Err(Error::invalid("data_dir", "must not be inside ingest_root"));
        }
        let v = &self.vector_store;
        if self.server.role != NodeRole::All && v.kind != VectorStoreKind::Qdrant {
            return Err(Error::invalid(
                "server.role",
                format!(
                    "{:?} nodes share a cluster: set vector_store.kind = \"qdrant\"",
                    self.server.role
                )
                .to_lowercase(),
            ));
        }
        if v.kind == VectorStoreKind::Qdrant {
            if v.directory_refresh_ms == 0 {
                return Err(Error::invalid(
                    "vector_store.directory_refresh_ms",
                    "must be positive",
                ));
            }
            // Query nodes learn of a swapped-in generation only at their next refresh (the
            // ingest node publishes within half a second): until then they read the old one.
            let least = v
                .directory_refresh_ms
                .saturating_mul(2)
                .saturating_add(1_000);
            if self.ingest.retire_after_ms < least {
                return Err(Error::invalid(
                    "ingest.retire_after_ms",
                    format!(
                        "{} is too short for query nodes that refresh every {} ms \
                         (vector_store.directory_refresh_ms): at least {least}",
                        self.ingest.retire_after_ms, v.directory_refresh_ms
                    ),
                ));
            }
            if v.ingest_lease_seconds < 3 {
                // Renewed every third of it: below 3 s a renewal would be due every second.
                return Err(Error::invalid(
                    "vector_store.ingest_lease_seconds",
                    "must be at least 3",
                ));
            }
            if !(v.url.starts_with("http://") || v.url.starts_with("https://")) {
                return Err(Error::invalid(
                    "vector_store.url",
                    format!("{:?} must start with http:// or https://", v.url),
                ));
            }
            let valid_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if v.collection.is_empty() || !v.collection.chars().all(valid_name) {
                return Err(Error::invalid(
                    "vector_store.collection",
                    "must be letters, digits, '-' and '_'",
                ));
            }
            if v.timeout_ms == 0 {
                return Err(Error::invalid(
                    "vector_store.timeout_ms",
                    "must be positive",
                ));
            }
        }
        let e = &self.embedding;
        self.validate_embedding_models()?;
        let r = &self.rerank;
        if r.candidates == 0 || r.candidates > 1_000 {
            return Err(Error::invalid("rerank.candidates", "must be 1 to 1000"));
        }
        if !(16..=8_192).contains(&r.max_tokens) {
            return Err(Error::invalid("rerank.max_tokens", "must be 16 to 8192"));
        }
        let i = &self.ingest;
        let max_tokens = self
            .embedding_models
            .values()
            .map(|model| model.max_tokens)
            .fold(e.max_tokens, usize::min);
        if i.chunk_max_tokens < 16 || i.chunk_max_tokens > max_tokens {
            return Err(Error::invalid(
                "ingest.chunk_max_tokens",
                format!(
                    "must be between 16 and the smallest max_tokens of the embedding models \
                     ({max_tokens})"
                ),
            ));
        }
        if i.chunk_overlap_tokens >= i.chunk_max_tokens {
            return Err(Error::invalid(
                "ingest.chunk_overlap_tokens",
                "must be smaller than ingest.chunk_max_tokens",
            ));
        }
        for (field, value) in [
            ("ingest.max_file_bytes", i.max_file_bytes),
            ("ingest.max_pages", u64::from(i.max_pages)),
            ("ingest.max_extracted_chars", i.max_extracted_chars),
            ("ingest.max_zip_entry_bytes", i.max_zip_entry_bytes),
            ("ingest.max_rows_per_sheet", i.max_rows_per_sheet),
            ("ingest.max_extract_seconds", i.max_extract_seconds),
            (
                "ingest.reconcile_interval_seconds",
                i.reconcile_interval_seconds,
            ),
        ] {
            if value == 0 {
                return Err(Error::invalid(field, "must be positive"));
            }
        }
        if !(0..=19).contains(&i.niceness) {
            return Err(Error::invalid(
                "ingest.niceness",
                format!("{} is outside 0..=19", i.niceness),
            ));
        }
        let server = &self.server;
        if !(server.token_requests_per_second >= 0.0
            && server.token_requests_per_second.is_finite())
        {
            return Err(Error::invalid(
                "server.token_requests_per_second",
                "must be a finite number, 0 or more",
            ));
        }
        if server.max_request_bytes < 1024 {
            return Err(Error::invalid(
                "server.max_request_bytes",
                "must be at least 1024",
            ));
        }
        let s = &self.search;
        if s.candidates == 0 || s.max_top_k == 0 {
            return Err(Error::invalid(
                "search.candidates",
                "candidates and max_top_k must be positive",
            ));
        }
        non_negative(&[
            ("search.rrf_k", s.rrf_k),
            ("search.bm25_weight", s.bm25_weight),
            ("search.dense_weight", s.dense_weight),
            ("search.bm25_coverage_exponent", s.bm25_coverage_exponent),
            ("search.sentence_weight", s.sentence_weight),
            ("search.language_centering", s.language_centering),
        ])?;
        if s.sentence_weight > 1.0 {
            return Err(Error::invalid(
                "search.sentence_weight",
                "must be at most 1",
            ));
        }
        let v = &self.vector_index;
        if v.hnsw_m == 0 || v.hnsw_ef_construct == 0 || v.search_ef == 0 {
            return Err(Error::invalid(
                "vector_index.hnsw_m",
                "hnsw_m, hnsw_ef_construct and search_ef must be positive",
            ));
        }
        let a = &self.ask;
        if a.passages == 0 {
            return Err(Error::invalid("ask.passages", "must be positive"));
        }
        if !(0.0..=1.0).contains(&a.min_confidence) {
            return Err(Error::invalid("ask.min_confidence", "must be in [0, 1]"));
        }
        non_negative(&[
            ("ask.support_margin", a.support_margin),
            ("ask.similarity_weight", a.similarity_weight),
            ("ask.overlap_weight", a.overlap_weight),
            ("ask.heading_overlap_weight", a.heading_overlap_weight),
            ("ask.neighbour_overlap_weight", a.neighbour_overlap_weight),
            ("ask.passage_weight", a.passage_weight),
            ("ask.number_weight", a.number_weight),
        ])
    }
}

/// Fails on the first of `fields` that is negative or NaN, naming it.
fn non_negative(fields: &[(&'static str, f32)]) -> Result<()> {
    match fields
        .iter()
        .find(|(_, value)| value.is_nan() || *value < 0.0)
    {
        Some((field, _)) => Err(Error::invalid(*field, "must be non-negative")),
        None => Ok(()),
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    // Numbers and booleans keep their type; anything else is a string.
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Err("empty key".to_string()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

fn invalid_model_name(name: &str) -> String {
    format!(
        "{name:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.', starting with a \
         letter or digit"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn deploy_example_lists_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/lumbung.toml");
        let config = Config::load_with_env(Some(Path::new(example)), []).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn file_then_env_override_defaults() {
        let file = write("data_dir = \"/srv/lumbung\"\n[search]\nrrf_k = 30.0\n");
        let env = [
            (
                "LUMBUNG__SERVER__LISTEN".to_string(),
                "127.0.0.2:6000".to_string(),
            ),
            ("LUMBUNG__SEARCH__CANDIDATES".to_string(), "20".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let config = Config::load_with_env(Some(file.path()), env).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/lumbung"));
        assert_eq!(config.search.rrf_k, 30.0);
        assert_eq!(config.search.candidates, 20);
        assert_eq!(config.server.listen.port(), 6000);
        assert_eq!(config.ingest, IngestConfig::default());
    }

    #[test]
    fn embedding_models_are_named_and_checked() {
        let file = write(
            "[embedding]\nname = \"e5\"\n[embedding_models.e5-int8]\nonnx_file = \
             \"model-int8.onnx\"\ndimension = 256\ntruncate_dimension = true\n\
             [ingest]\nembedding_model = \"e5-int8\"\n",
        );
        let config = Config::load_with_env(Some(file.path()), []).unwrap();
        let names: Vec<String> = config
            .embedding_models()
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(names, ["e5", "e5-int8"]);
        assert_eq!(config.model_for_new_generations().as_str(), "e5-int8");
        let int8 = ModelName::new("e5-int8").unwrap();
        assert_eq!(config.embedding_model(&int8).unwrap().dimension, 256);
        // Without a name, [embedding]'s model is named after its folder.
        assert_eq!(
            Config::default().default_model().as_str(),
            "multilingual-e5-small"
        );
        assert_eq!(
            Config::default().model_for_new_generations(),
            Config::default().default_model()
        );

        let refused = |toml: &str, field: &str| {
            let file = write(toml);
            let err = Config::load_with_env(Some(file.path()), [])
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{toml}: {err}");
        };
        refused(
            "[ingest]\nembedding_model = \"nowhere\"\n",
            "ingest.embedding_model",
        );
        refused(
            "[embedding_models.multilingual-e5-small]\ndimension = 384\n",
            "embedding_models.multilingual-e5-small",
        );
        refused(
            "[embedding_models.\"bad name\"]\ndimension = 384\n",
            "embedding_models.bad name",
        );
        refused(
            "[embedding_models.small]\ndimension = 0\n",
            "embedding_models.small.dimension",
        );
        refused("[embedding]\nname = \"-x\"\n", "embedding.name");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let file = write("[search]\nrrf_kk = 30.0\n");
        let err = Config::load_with_env(Some(file.path()), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rrf_kk"), "{err}");
    }

    #[test]
    fn the_data_directory_cannot_live_in_the_watched_root() {
        let env = [(
            "LUMBUNG__DATA_DIR".to_string(),
            "ingest/lumbung-data".to_string(),
        )];
        let err = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(err.contains("data_dir"), "{err}");
    }

    #[test]
    fn out_of_bounds_value_is_an_error() {
        let env = [(
            "LUMBUNG__INGEST__CHUNK_MAX_TOKENS".to_string(),
            "4".to_string(),
        )];
        let err = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(err.contains("chunk_max_tokens"), "{err}");
    }

    #[test]
    fn without_tokens_the_service_listens_on_loopback_only() {
        let open = [(
            "LUMBUNG__SERVER__LISTEN".to_string(),
            "0.0.0.0:50051".to_string(),
        )];
        let err = Config::load_with_env(None, open.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.listen") && err.contains("tokens_file"),
            "{err}"
        );
        let with_tokens = [
            open[0].clone(),
            (
                "LUMBUNG__SERVER__TOKENS_FILE".to_string(),
                "/etc/lumbung/tokens.toml".to_string(),
            ),
        ];
        assert!(Config::load_with_env(None, with_tokens).is_ok());
        let open_http = [(
            "LUMBUNG__SERVER__HTTP_LISTEN".to_string(),
            "0.0.0.0:8080".to_string(),
        )];
        let err = Config::load_with_env(None, open_http)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.http_listen") && err.contains("tokens_file"),
            "{err}"
        );
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        let half = [(
            "LUMBUNG__SERVER__TLS_CERT_FILE".to_string(),
            "server.pem".to_string(),
        )];
        let err = Config::load_with_env(None, half).unwrap_err().to_string();
        assert!(err.contains("tls_key_file"), "{err}");
        let clients_only = [(
            "LUMBUNG__SERVER__TLS_CLIENT_CA_FILE".to_string(),
            "ca.pem".to_string(),
        )];
        let err = Config::load_with_env(None, clients_only)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_client_ca_file"), "{err}");
    }
}
