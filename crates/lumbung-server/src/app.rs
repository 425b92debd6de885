use std::sync::Arc;

use lumbung_core::{Config, KbName};
use lumbung_embed::{Embedder, Reranker};
use lumbung_index::{EdgeVectorStore, LexicalIndex, TantivyLexicalIndex, VectorStore};
use lumbung_ingest::{Catalog, Ingestor, SyncReport, Watcher};
use lumbung_search::{CpuPool, SearchEngine};

use crate::{Error, Result};

/// The opened engine: both indexes, the model, the catalog and the services over them.
pub struct App {
    pub config: Config,
    pub engine: SearchEngine,
    pub ingestor: Arc<Ingestor>,
}

impl App {
    /// Opens (or creates) everything under `config.data_dir` and loads the embedding model (and
    /// the reranker when `rerank.enabled`). A data directory in an older format is cleared
    /// first and rebuilt by the next sync (see `data_dir::prepare`).
    /// Blocking: call it before starting the runtime's work, or from a blocking thread.
    pub fn open(config: Config) -> Result<App> {
        crate::data_dir::prepare(&config.data_dir)?;
        fs_err::create_dir_all(&config.ingest_root)?;
        let embedder = Arc::new(Embedder::load(&config.embedding)?);
        let lexical: Arc<dyn LexicalIndex> =
            Arc::new(TantivyLexicalIndex::open(&config.data_dir.join("lexical"))?);
        let vectors: Arc<dyn VectorStore> = Arc::new(EdgeVectorStore::open(
            &config.data_dir.join("vectors"),
            config.embedding.dimension,
        )?);
        let catalog = Catalog::open(&config.data_dir.join("catalog.redb"))?;
        let ingestor = Arc::new(Ingestor::new(
            &config.ingest_root,
            catalog,
            Arc::clone(&lexical),
            Arc::clone(&vectors),
            Arc::clone(&embedder),
            config.ingest.clone(),
        )?);
        let mut engine = SearchEngine::new(
            lexical,
            vectors,
            embedder,
            CpuPool::for_this_machine(),
            config.search.clone(),
            config.ask.clone(),
        );
        if config.rerank.enabled {
            let reranker = Reranker::load(&config.rerank, &config.embedding)?;
            engine = engine.with_reranker(Arc::new(reranker), config.rerank.candidates);
        }
        Ok(App {
            config,
            engine,
            ingestor,
        })
    }

    /// Syncs every knowledge base with its folder on a blocking thread, logging each document.
    pub async fn sync_all(self: &Arc<Self>) -> Result<SyncReport> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            app.ingestor.sync_all(false, &lumbung_ingest::log_progress)
        })
        .await
        .map_err(|err| Error::Task(err.to_string()))?
        .map_err(Error::from)
    }

    /// Follows the watched root from now on: a full reconcile at once, then each changed
    /// knowledge base once its files settle, and a full reconcile periodically. Search answers
    /// from what is indexed meanwhile. Stops when the returned watcher is dropped.
    pub fn watch(&self) -> Result<Watcher> {
        Ok(Watcher::start(Arc::clone(&self.ingestor))?)
    }

    /// The knowledge bases a request may search: the named ones, each checked, or all.
    pub fn resolve_kbs(&self, requested: &[String]) -> Result<Vec<KbName>> {
        let known = self.ingestor.knowledge_bases()?;
        if requested.is_empty() {
            return Ok(known);
        }
        let mut kbs = Vec::with_capacity(requested.len());
        for name in requested {
            let kb = KbName::new(name.clone())
                .map_err(|err| Error::invalid("knowledge_bases", err.to_string()))?;
            if !known.contains(&kb) {
                return Err(Error::KbNotFound(name.clone()));
            }
            kbs.push(kb);
        }
        kbs.sort();
        kbs.dedup();
        Ok(kbs)
    }
}
