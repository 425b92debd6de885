//! From files in watched folders to chunks in both indexes: scan, diff against the catalog,
//! extract, chunk, embed, write, and only then record the document as done.
//!
//! This crate must not depend on the transport (tonic, protobuf) nor on search.

mod catalog;
mod error;
mod pipeline;
mod scan;
mod settings;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use lumbung_core::{DocumentPath, IngestConfig, KbName};
use lumbung_embed::{Chunker, Embedder};
use lumbung_extract::Limits;
use lumbung_index::{LexicalIndex, VectorStore};

pub use catalog::{Catalog, DocumentRecord, DocumentState, FailureCounts, FailureKind, KbSummary};
pub use error::{Error, Result};
pub use pipeline::{Outcome, Progress, SyncReport};
pub use settings::{KbSettings, SETTINGS_FILE};
pub use watch::{Watcher, log_progress};

use pipeline::RunOptions;

/// Where a document is in a run that has not recorded it yet. Not stored: after a crash the
/// next run finds the same work again from the folder and the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// Found changed; waiting for the prepare stage.
    Queued,
    /// Being read, extracted, embedded or written.
    Indexing,
}

/// Everything known about one knowledge base: its settings, its catalog rows and the
/// documents of the run in progress.
#[derive(Debug, Clone)]
pub struct KbStatus {
    pub kb: KbName,
    /// The folder's `kb.toml`, or why it could not be read.
    pub settings: std::result::Result<KbSettings, String>,
    pub summary: KbSummary,
    /// Catalog rows, ordered by path.
    pub records: Vec<DocumentRecord>,
    /// Documents of the current run not recorded yet, ordered by path.
    pub in_progress: Vec<(DocumentPath, LiveState)>,
}

/// What requests need to know of one knowledge base, kept in memory.
#[derive(Debug, Clone)]
pub struct KbEntry {
    /// The folder's `kb.toml`, or why it could not be read.
    pub settings: std::result::Result<KbSettings, String>,
    /// Counts over its catalog rows at the end of its last sync.
    pub summary: KbSummary,
}

/// Every knowledge base with its settings and counts: what request paths read instead of the
/// folder tree and the catalog.
pub type Registry = BTreeMap<KbName, KbEntry>;

/// Keeps the catalog and both indexes in step with the folders under the watched root.
pub struct Ingestor {
    root: PathBuf,
    catalog: Catalog,
    lexical: Arc<dyn LexicalIndex>,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<Embedder>,
    chunker: Chunker,
    config: IngestConfig,
    limits: Limits,
    /// One sync at a time: two concurrent runs over the same documents would race on the
    /// catalog rows.
    running: Mutex<()>,
    live: Mutex<HashMap<KbName, BTreeMap<DocumentPath, LiveState>>>,
    /// Rebuilt at start and refreshed after each sync of a knowledge base, swapped whole.
    registry: RwLock<Arc<Registry>>,
}

impl Ingestor {
    pub fn new(
        root: &Path,
        catalog: Catalog,
        lexical: Arc<dyn LexicalIndex>,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<Embedder>,
        config: IngestConfig,
    ) -> Result<Ingestor> {
        let chunker = Chunker::new(
            Arc::clone(embedder.tokenizer()),
            config.chunk_max_tokens,
            config.chunk_overlap_tokens,
        )?;
        let ingestor = Ingestor {
            root: root.to_path_buf(),
            catalog,
            lexical,
            vectors,
            embedder,
            chunker,
            limits: Limits {
                max_pages: config.max_pages,
                max_extracted_chars: config.max_extracted_chars,
                max_zip_entry_bytes: config.max_zip_entry_bytes,
                max_rows_per_sheet: config.max_rows_per_sheet,
            },
            config,
            running: Mutex::new(()),
            live: Mutex::new(HashMap::new()),
            registry: RwLock::new(Arc::new(Registry::new())),
        };
        ingestor.refresh_registry(None)?;
        Ok(ingestor)
    }

    /// The knowledge bases as of their last sync, with settings and counts. Reads no disk.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the settings and counts of `only` (or of every knowledge base, which also drops
    /// those that are gone) and swaps the registry.
    fn refresh_registry(&self, only: Option<&KbName>) -> Result<()> {
        let entry = |kb: &KbName| -> Result<KbEntry> {
            Ok(KbEntry {
                settings: KbSettings::load(&self.root.join(kb.as_str())),
                summary: KbSummary::of(&self.catalog.list(kb)?),
            })
        };
        let mut registry = match only {
            Some(_) => (*self.registry()).clone(),
            None => Registry::new(),
        };
        match only {
            Some(kb) => {
                registry.insert(kb.clone(), entry(kb)?);
            }
            None => {
                for kb in self.knowledge_bases()? {
                    let value = entry(&kb)?;
                    registry.insert(kb, value);
                }
            }
        }
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(registry);
        Ok(())
    }

    /// The model documents are embedded with.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The lexical index, which also stores the chunks.
    pub fn lexical(&self) -> &Arc<dyn LexicalIndex> {
        &self.lexical
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// The settings, catalog rows and in-progress documents of one knowledge base.
    pub fn status(&self, kb: &KbName) -> Result<KbStatus> {
        let records = self.catalog.list(kb)?;
        let in_progress: Vec<(DocumentPath, LiveState)> = self
            .live()
            .get(kb)
            .map(|docs| docs.iter().map(|(p, s)| (p.clone(), *s)).collect())
            .unwrap_or_default();
        let mut summary = KbSummary::of(&records);
        for (_, state) in &in_progress {
            match state {
                LiveState::Queued => summary.queued += 1,
                LiveState::Indexing => summary.indexing += 1,
            }
        }
        Ok(KbStatus {
            kb: kb.clone(),
            settings: KbSettings::load(&self.root.join(kb.as_str())),
            summary,
            records,
            in_progress,
        })
    }

    /// Knowledge bases: the folders under the root, and any the catalog still holds rows for.
    pub fn knowledge_bases(&self) -> Result<Vec<KbName>> {
        let mut kbs = scan::knowledge_base_folders(&self.root)?;
        kbs.extend(self.catalog.knowledge_bases()?);
        kbs.sort();
        kbs.dedup();
        Ok(kbs)
    }

    /// Brings every knowledge base in step with its folder; a folder that is gone has its
    /// documents removed from both indexes. `force` as in [`Ingestor::sync_kb`].
    pub fn sync_all(
        &self,
        force: bool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        self.run_all(
            RunOptions {
                force,
                ..RunOptions::default()
            },
            progress,
        )
    }

    fn run_all(
        &self,
        options: RunOptions<'_>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        for kb in self.knowledge_bases()? {
            report.add(&self.run_kb(&kb, options, progress)?);
        }
        // Also drops the knowledge bases whose folder and rows are gone.
        self.refresh_registry(None)?;
        Ok(report)
    }

    /// Brings one knowledge base in step. With `force`, every document is extracted, embedded
    /// and written again even when unchanged (after a model or chunking change); its old chunks
    /// keep answering until the new ones are committed.
    pub fn sync_kb(
        &self,
        kb: &KbName,
        force: bool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        if !self.knowledge_bases()?.contains(kb) {
            return Err(Error::UnknownKb(kb.to_string()));
        }
        self.run_kb(
            kb,
            RunOptions {
                force,
                ..RunOptions::default()
            },
            progress,
        )
    }

    fn run_kb(
        &self,
        kb: &KbName,
        options: RunOptions<'_>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        let _running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let folder = self.root.join(kb.as_str());
        let files = if folder.is_dir() {
            scan::files_of(&folder)?
        } else {
            Vec::new()
        };
        let report = pipeline::Run {
            ingestor: self,
            kb,
            options,
            progress,
        }
        .execute(files);
        // Settings may have changed even when no document did; a failed run may have
        // recorded some documents.
        self.refresh_registry(Some(kb))?;
        report
    }

    /// Like [`Ingestor::sync_all`] without force, leaving files that are still changing and
    /// stopping early when `cancel` is set.
    fn reconcile_all(
        &self,
        cancel: &AtomicBool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        self.run_all(self.reconcile_options(cancel), progress)
    }

    fn reconcile_kb(
        &self,
        kb: &KbName,
        cancel: &AtomicBool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        self.run_kb(kb, self.reconcile_options(cancel), progress)
    }

    fn reconcile_options<'a>(&self, cancel: &'a AtomicBool) -> RunOptions<'a> {
        RunOptions {
            force: false,
            settle_ms: self.config.settle_ms,
            cancel: Some(cancel),
        }
    }

    /// Compares both indexes with the catalog, document by document, and describes every
    /// difference: an indexed document whose chunk count differs in either index (lost or
    /// doubled chunks), and chunks of documents the catalog does not list as served. Empty
    /// when they agree. Meant for a quiet moment: a run in progress shows as differences.
    pub fn verify(&self, kb: &KbName) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut served = 0u64;
        for record in self.catalog.list(kb)? {
            // A failed new version leaves the previous one served, with its chunk count.
            let expected = match record.state {
                DocumentState::Indexed | DocumentState::Failed => u64::from(record.chunks),
                DocumentState::Skipped => 0,
            };
            let lexical = self.lexical.count_chunks(kb, Some(&record.path))?;
            let vectors = self.vectors.count(kb, Some(&record.path))?;
            if (lexical, vectors) != (expected, expected) {
                problems.push(format!(
                    "{kb}/{}: the catalog records {expected} chunks, the lexical index holds \
                     {lexical} and the vector store {vectors}",
                    record.path
                ));
            }
            served += expected;
        }
        let lexical = self.lexical.count_chunks(kb, None)?;
        let vectors = self.vectors.count(kb, None)?;
        if (lexical, vectors) != (served, served) {
            problems.push(format!(
                "{kb}: the catalog records {served} chunks in all, the lexical index holds \
                 {lexical} and the vector store {vectors}"
            ));
        }
        Ok(problems)
    }

    fn live(&self) -> MutexGuard<'_, HashMap<KbName, BTreeMap<DocumentPath, LiveState>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets (or with `None` clears) the live state of documents of `kb`.
    fn set_live<'p>(
        &self,
        kb: &KbName,
        paths: impl Iterator<Item = &'p DocumentPath>,
        state: Option<LiveState>,
    ) {
        let mut live = self.live();
        let docs = live.entry(kb.clone()).or_default();
        for path in paths {
            match state {
                Some(state) => docs.insert(path.clone(), state),
                None => docs.remove(path),
            };
        }
    }

    fn clear_live(&self, kb: &KbName) {
        self.live().remove(kb);
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
