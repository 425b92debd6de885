use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lumbung_core::{Config, KbName, NodeRole, VectorStoreKind};
use lumbung_embed::{Embedder, Reranker};
use lumbung_index::{EdgeVectorStore, LexicalIndex, TantivyLexicalIndex};
use lumbung_ingest::{Catalog, IngestModel, IngestModels, Ingestor, Registry, SyncReport, Watcher};
use lumbung_proto::v1;
use lumbung_search::{Answer, AnswerDecision, CpuPool, QueryModel, Scope, SearchEngine};

use crate::auth::{Caller, TokenStore};
use crate::cluster::{IngestLease, PublishedRegistry};
use crate::gaps::GapLog;
use crate::limits::{Admission, TokenGate, TokenLimits};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// Where a calibrated decision is kept, in the data directory; without it the shipped one
/// (`models/answer-decision.json`) is used.
const DECISION_FILE: &str = "answer-decision.json";
/// Handed-off questions kept per knowledge base; the least recently asked go first.
const GAPS_PER_KB: usize = 1_000;

/// The opened engine: both indexes, the model, the catalog and the services over them.
pub struct App {
    pub config: Config,
    pub engine: SearchEngine,
    /// The folders' ingest; none on a query node.
    ingestor: Option<Arc<Ingestor>>,
    /// Where the knowledge bases and their settings come from.
    knowledge_bases: KnowledgeBases,
    /// Held by a node that writes to a cluster.
    lease: Option<IngestLease>,
    pub gaps: Arc<GapLog>,
    /// `None` without `server.tokens_file`: every caller is the local administrator.
    tokens: Option<Arc<TokenStore>>,
    /// In-flight counts and request rates per token.
    pub(crate) token_gate: Arc<TokenGate>,
    /// The turns of requests that compute.
    pub(crate) admission: Admission,
    pub metrics: Metrics,
    /// The liveness of the watcher `watch` started, which health checking follows.
    watcher_alive: Mutex<Option<Arc<AtomicBool>>>,
}

/// Where a node learns which knowledge bases exist, with their `kb.toml` settings.
enum KnowledgeBases {
    /// From the folders, through the ingestor's registry.
    Local(Arc<Ingestor>),
    /// From what the cluster's ingest node published (query nodes).
    Published(Arc<PublishedRegistry>),
}

/// How often the vector store's maintenance thread looks at what changed (optimisation, log).
const VECTOR_MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The lexical index, every configured model with its vector store, and the cluster's
/// directory when they are on Qdrant.
type OpenedStores = (
    Arc<dyn LexicalIndex>,
    Vec<QueryModel>,
    Option<lumbung_qdrant::ClusterDirectory>,
);

/// Loads every configured embedding model (`[embedding]`'s first) and opens the stores
/// `[vector_store]` names: tantivy and one embedded shard per model under the data directory
/// (`vectors/<model>`), or on a Qdrant server or cluster one collection per model
/// (`{collection}-{model}-{dimension}`) and the chunks with their BM25 weights in
/// `{collection}-chunks`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract, at start-up"
)]
fn open_stores(config: &Config, metrics: &Metrics) -> Result<OpenedStores> {
    let mut embedders = Vec::new();
    for (name, model) in config.embedding_models() {
        let embedder = Arc::new(Embedder::load(model, config.ingest.niceness)?);
        embedder.observe_batches(metrics.embedding_batches());
        embedders.push((name, embedder));
    }
    match config.vector_store.kind {
        VectorStoreKind::Embedded => {
            let lexical = Arc::new(TantivyLexicalIndex::open(&config.data_dir.join("lexical"))?);
            let mut models = Vec::with_capacity(embedders.len());
            for (name, embedder) in embedders {
                let dimension = embedder.dimension();
                let edge = Arc::new(EdgeVectorStore::open(
                    &crate::data_dir::embedded_vectors(&config.data_dir, &name),
                    dimension,
                    &config.vector_index,
                )?);
                // Graphs are built beside the live segments at ingest's priority, searches and
                // writes going on meanwhile; the WAL is emptied once large.
                edge.maintain_in_background(config.ingest.niceness, VECTOR_MAINTENANCE_INTERVAL)?;
                models.push(QueryModel {
                    name,
                    embedder,
                    vectors: edge,
                });
            }
            Ok((lexical, models, None))
        }
        VectorStoreKind::Qdrant => {
            let store = &config.vector_store;
            let connection = lumbung_qdrant::Connection::new(store)?;
            let mut models = Vec::with_capacity(embedders.len());
            for (name, embedder) in embedders {
                let dimension = embedder.dimension();
                let collection =
                    lumbung_qdrant::collection_name(&store.collection, &name, dimension);
                let vectors = lumbung_qdrant::QdrantVectorStore::open(
                    &connection,
                    store,
                    &collection,
                    dimension,
                    &config.vector_index,
                )?;
                tracing::info!(url = %store.url, collection, model = %name, "vectors on Qdrant");
                models.push(QueryModel {
                    name,
                    embedder,
                    vectors: Arc::new(vectors),
                });
            }
            let chunks = chunks_collection(config, &connection)?;
            let lexical = lumbung_qdrant::QdrantLexicalIndex::open(&connection, store, &chunks)?;
            tracing::info!(url = %store.url, collection = chunks, "chunks on Qdrant");
            let directory = lumbung_qdrant::ClusterDirectory::open(
                &connection,
                store,
                &format!("{}-directory", store.collection),
            )?;
            Ok((Arc::new(lexical), models, Some(directory)))
        }
    }
}

/// The chunks' collection on Qdrant: `{collection}-chunks`, which no model names, since every
/// model's generations keep their chunks there. A cluster written before several models were
/// served has it under `[embedding]`'s collection's name (`…-{model}-{dimension}-chunks`),
/// which is kept.
fn chunks_collection(config: &Config, connection: &lumbung_qdrant::Connection) -> Result<String> {
    let store = &config.vector_store;
    let chunks = format!("{}-chunks", store.collection);
    let legacy = format!(
        "{}-chunks",
        lumbung_qdrant::collection_name(
            &store.collection,
            &config.default_model(),
            config.embedding.dimension
        )
    );
    let budget = std::time::Duration::from_secs(store.write_retry_seconds);
    if !connection.collection_exists(&chunks, budget)?
        && connection.collection_exists(&legacy, budget)?
    {
        return Ok(legacy);
    }
    Ok(chunks)
}

impl App {
    /// Opens (or creates) everything under `config.data_dir` and loads the embedding model (and
    /// the reranker when `rerank.enabled`). A data directory in an older format is cleared
    /// first and rebuilt by the next sync (see `data_dir::prepare`).
    /// Blocking: call it before starting the runtime's work, or from a blocking thread.
    ///
    /// A query node (`server.role = "query"`) opens no folder, catalog or local index: it reads
    /// the knowledge bases the cluster's ingest node publishes. A node that writes to a cluster
    /// takes its ingest lease first, and fails naming the node that holds it.
    #[allow(
        clippy::disallowed_methods,
        reason = "blocking by contract, at start-up"
    )]
    pub fn open(config: Config) -> Result<App> {
        crate::data_dir::prepare(&config.data_dir, &config.default_model())?;
        let ingests = config.server.role != NodeRole::Query;
        if ingests {
            fs_err::create_dir_all(&config.ingest_root)?;
        }
        let metrics = Metrics::new();
        let (lexical, models, directory) = open_stores(&config, &metrics)?;
        let (ingestor, knowledge_bases, lease) = if ingests {
            let catalog = Catalog::open(&config.data_dir.join("catalog.redb"))?;
            let ingest_models = IngestModels {
                models: models
                    .iter()
                    .map(|model| IngestModel {
                        name: model.name.clone(),
                        embedder: Arc::clone(&model.embedder),
                        vectors: Arc::clone(&model.vectors),
                    })
                    .collect(),
                for_new_generations: config.model_for_new_generations(),
            };
            let ingestor = Arc::new(Ingestor::new(
                &config.ingest_root,
                catalog,
                Arc::clone(&lexical),
                ingest_models,
                config.ingest.clone(),
            )?);
            let lease = directory
                .map(|directory| {
                    IngestLease::take(Arc::new(directory), &ingestor, &config.vector_store)
                })
                .transpose()?;
            let local = KnowledgeBases::Local(Arc::clone(&ingestor));
            (Some(ingestor), local, lease)
        } else {
            let Some(directory) = directory else {
                unreachable!("Config::validate allows query nodes only on a cluster")
            };
            let every = std::time::Duration::from_millis(config.vector_store.directory_refresh_ms);
            let published = PublishedRegistry::follow(directory, every, config.default_model())?;
            (None, KnowledgeBases::Published(published), None)
        };
        let mut engine = SearchEngine::new(
            lexical,
            models,
            CpuPool::for_this_machine(config.search.max_waiting_tasks),
            config.search.clone(),
            config.ask.clone(),
        );
        if config.rerank.enabled {
            let reranker = Reranker::load(&config.rerank, &config.embedding)?;
            engine = engine.with_reranker(Arc::new(reranker), config.rerank.candidates);
        }
        let decision_path = config.data_dir.join(DECISION_FILE);
        if decision_path.exists() {
            // A file from an older build (other features) must not stop the service: it falls
            // back to the shipped decision until an admin recalibrates.
            match AnswerDecision::load(&decision_path) {
                Ok(decision) => {
                    tracing::info!(fitted_on = %decision.fitted_on, "calibrated answer decision");
                    engine.set_decision(decision);
                }
                Err(err) => tracing::warn!(
                    error = %err,
                    "calibrated answer decision unreadable; using the shipped one"
                ),
            }
        }
        let gaps = Arc::new(GapLog::open(
            &config.data_dir.join("gaps.redb"),
            GAPS_PER_KB,
        )?);
        let tokens = match &config.server.tokens_file {
            Some(path) => {
                let server = &config.server;
                let defaults = TokenLimits {
                    max_concurrent: Some(server.token_max_concurrent).filter(|&n| n > 0),
                    requests_per_second: Some(server.token_requests_per_second)
                        .filter(|&rate| rate > 0.0),
                };
                Some(TokenStore::open(path, defaults)?)
            }
            None => {
                tracing::warn!(
                    "no server.tokens_file: every caller is an administrator of every knowledge \
                     base, so the service listens on loopback only"
                );
                None
            }
        };
        let admission = Admission::new(
            config.server.max_concurrent_requests,
            config.server.max_waiting_requests,
        );
        Ok(App {
            config,
            engine,
            ingestor,
            knowledge_bases,
            lease,
            gaps,
            tokens,
            token_gate: Arc::default(),
            admission,
            metrics,
            watcher_alive: Mutex::new(None),
        })
    }

    /// Validates `parameters`, keeps them in the data directory (written to a temporary file
    /// and renamed, so a crash leaves the old or the new file) and answers with them from the
    /// next question on.
    #[allow(
        clippy::disallowed_methods,
        reason = "blocking by contract: the lint holds its callers to spawn_blocking"
    )]
    pub fn set_decision(&self, parameters: &str) -> Result<AnswerDecision> {
        let decision = AnswerDecision::parse(parameters)
            .map_err(|reason| Error::invalid("parameters", reason))?;
        let path = self.config.data_dir.join(DECISION_FILE);
        let temporary = path.with_extension("json.tmp");
        let mut file = fs_err::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, decision.to_json().as_bytes())?;
        file.sync_all()?;
        fs_err::rename(&temporary, &path)?;
        self.engine.set_decision(decision.clone());
        tracing::info!(fitted_on = %decision.fitted_on, "answer decision replaced");
        Ok(decision)
    }

    /// The `escalation` of a knowledge base's kb.toml; empty when it names none or cannot be
    /// read.
    pub fn escalation_contact(&self, kb: &KbName) -> String {
        self.registry()
            .get(kb)
            .and_then(|entry| entry.settings.as_ref().ok())
            .and_then(|settings| settings.escalation.clone())
            .unwrap_or_default()
    }

    /// Records a handed-off question as a gap of the knowledge base it belongs to, or clears
    /// it there once answered. Off the request path: a failure is logged, never returned.
    pub fn note_outcome(
        &self,
        question: &str,
        response: &v1::AskResponse,
        answer: &Option<Answer>,
    ) {
        let gap_kb = match &response.escalation {
            Some(escalation)
                if response.hand_off_reason != v1::HandOffReason::OutsideKnowledgeBases as i32 =>
            {
                Some(escalation.knowledge_base.clone())
            }
            _ => None,
        };
        let answered_in = answer
            .as_ref()
            .filter(|a| a.answered())
            .and_then(|a| a.sentences.first())
            .map(|s| s.citation.kb.to_string());
        if gap_kb.is_none() && answered_in.is_none() {
            return;
        }
        let (gaps, question) = (Arc::clone(&self.gaps), question.to_string());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        tokio::task::spawn_blocking(move || {
            let outcome = match (gap_kb, answered_in) {
                (Some(kb), _) => gaps.record(&kb, &question, now_ms).map(|_| ()),
                (None, Some(kb)) => gaps.resolve(&kb, &question).map(|_| ()),
                (None, None) => Ok(()),
            };
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "gap log not updated");
            }
        });
    }

    /// Syncs every knowledge base with its folder on a blocking thread, logging each document.
    pub async fn sync_all(self: &Arc<Self>) -> Result<SyncReport> {
        let app = Arc::clone(self);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        let synced = tokio::task::spawn_blocking(move || {
            app.ingestor()?
                .sync_all(false, &lumbung_ingest::log_progress)
                .map_err(Error::from)
        });
        synced.await.map_err(|err| Error::Task(err.to_string()))?
    }

    /// Follows the watched root from now on: a full reconcile at once, then each changed
    /// knowledge base once its files settle, and a full reconcile periodically. Search answers
    /// from what is indexed meanwhile. Stops when the returned watcher is dropped.
    pub fn watch(&self) -> Result<Watcher> {
        let watcher = Watcher::start(Arc::clone(self.ingestor()?))?;
        *self
            .watcher_alive
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(watcher.liveness());
        Ok(watcher)
    }

    /// False once the watcher this service started has died; true without one (a service
    /// that only answers from what is indexed is healthy).
    pub fn ingest_alive(&self) -> bool {
        self.lease.as_ref().is_none_or(IngestLease::held)
            && self
                .watcher_alive
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_none_or(|alive| alive.load(Ordering::SeqCst))
    }

    /// Where a calibrated answer decision is kept (it may not exist).
    pub fn decision_path(&self) -> std::path::PathBuf {
        self.config.data_dir.join(DECISION_FILE)
    }

    /// The folders' ingest; FAILED_PRECONDITION on a query node, which has none.
    pub fn ingestor(&self) -> Result<&Arc<Ingestor>> {
        self.ingestor.as_ref().ok_or_else(|| {
            Error::WrongRole(
                "this is a query node: the catalog and ingest are on the cluster's ingest node"
                    .to_string(),
            )
        })
    }

    /// The knowledge bases with their settings and counts: the local folders' (through the
    /// ingestor), or on a query node the ones the ingest node published. Reads no disk.
    pub fn registry(&self) -> Arc<Registry> {
        match &self.knowledge_bases {
            KnowledgeBases::Local(ingestor) => ingestor.registry(),
            KnowledgeBases::Published(published) => published.get(),
        }
    }

    /// Whether there is no token file, so that every caller is the local administrator (and
    /// the service listens on loopback only). Fixed at start.
    pub fn open_to_local_callers(&self) -> bool {
        self.tokens.is_none()
    }

    /// Who made a request: the token it carries, or, without a token file (loopback only),
    /// the local administrator.
    pub fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller> {
        match &self.tokens {
            Some(tokens) => tokens.authenticate(metadata),
            None => Ok(Caller::local_admin()),
        }
    }

    /// The knowledge bases a request reads: those named in `requested` (the request's `field`),
    /// each checked, or all, among those `caller` may read. A knowledge base the caller may not
    /// read is reported exactly like one that does not exist. Reads the ingestor's registry,
    /// not the disk.
    pub fn scope(&self, caller: &Caller, requested: &[String], field: &str) -> Result<Scope> {
        let mut names = Vec::with_capacity(requested.len());
        for name in requested {
            names.push(
                KbName::new(name.clone()).map_err(|err| Error::invalid(field, err.to_string()))?,
            );
        }
        let registry = self.registry();
        let readable: Vec<&KbName> = registry
            .iter()
            .filter(|(kb, entry)| {
                // An unreadable kb.toml grants no reader.
                let readers = match &entry.settings {
                    Ok(settings) => settings.readers.as_slice(),
                    Err(_) => &[String::new()],
                };
                caller.may_read(kb, readers)
            })
            .map(|(kb, _)| kb)
            .collect();
        // Each knowledge base at the generation that serves now: a rebuild swapping in a new
        // one meanwhile does not change what this request reads.
        let active = |kb: &KbName| {
            registry
                .get(kb)
                .map(|entry| (entry.active.clone(), entry.model.clone()))
        };
        if names.is_empty() {
            return Ok(Scope::resolved(
                readable.into_iter().filter_map(active).collect(),
            ));
        }
        let mut generations = Vec::with_capacity(names.len());
        for (kb, name) in names.iter().zip(requested) {
            match active(kb) {
                Some(generation) if readable.contains(&kb) => generations.push(generation),
                _ => return Err(Error::KbNotFound(name.clone())),
            }
        }
        Ok(Scope::resolved(generations))
    }
}
