//! From files in watched folders to chunks in both indexes: scan, diff against the catalog,
//! extract, chunk, embed, write, and only then record the document as done.
//!
//! This crate must not depend on the transport (tonic, protobuf) nor on search.

mod backup;
mod catalog;
mod error;
mod jobs;
mod lifecycle;
mod models;
mod pipeline;
mod scan;
mod settings;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use lumbung_core::{DocumentPath, Generation, IngestConfig, KbGeneration, KbName, ModelName};
use lumbung_embed::Embedder;
use lumbung_extract::Limits;
use lumbung_index::LexicalIndex;

pub use backup::{BackedUpKb, BackupManifest};
pub use catalog::{
    Catalog, DocumentRecord, DocumentState, FailureCounts, FailureKind, JobKind, JobRecord,
    JobState, KbGenerations, KbSummary,
};
pub use error::{Error, Result};
pub use jobs::{JobPhase, JobStatus};
pub use models::{IngestModel, IngestModels};
pub use pipeline::{Outcome, Progress, SyncReport};
pub use settings::{InvalidSetting, KbSettings, SETTINGS_FILE};
pub use watch::{Watcher, log_progress};

use models::{ModelParts, Models};
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
    /// Counts over the active generation.
    pub summary: KbSummary,
    /// Catalog rows of the active generation, ordered by path.
    pub records: Vec<DocumentRecord>,
    /// Documents of the current sync not recorded yet, ordered by path.
    pub in_progress: Vec<(DocumentPath, LiveState)>,
    pub generations: KbGenerations,
    /// The embedding model of the active generation.
    pub model: ModelName,
    /// The model the next rebuild embeds with, or why `kb.toml` names none that is loaded.
    pub next_model: std::result::Result<ModelName, String>,
    /// The rebuild running, or the last one.
    pub job: Option<JobStatus>,
    /// Why new and changed files wait now, when the disk is nearly full.
    pub disk_shortage: Option<DiskShortage>,
}

/// The data directory's file system has less free space than `ingest.min_free_disk_mib`:
/// ingest writes no new or changed document until space is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskShortage {
    pub free_bytes: u64,
    pub reserve_bytes: u64,
}

impl std::fmt::Display for DiskShortage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: u64 = 1 << 20;
        write!(
            f,
            "the data directory's disk is nearly full: {} MiB free, below the {} MiB \
             ingest.min_free_disk_mib keeps for merges; new and changed files wait until space \
             is freed (searches go on, removals still apply)",
            self.free_bytes / MIB,
            self.reserve_bytes.div_ceil(MIB)
        )
    }
}

/// What requests need to know of one knowledge base, kept in memory.
#[derive(Debug, Clone)]
pub struct KbEntry {
    /// The folder's `kb.toml`, or why it could not be read.
    pub settings: std::result::Result<KbSettings, String>,
    /// Counts over the rows of its active generation at the end of its last sync.
    pub summary: KbSummary,
    /// The generation searches read.
    pub active: KbGeneration,
    /// The embedding model of the active generation: what a search embeds its query with.
    pub model: ModelName,
}

/// Every knowledge base with its settings and counts: what request paths read instead of the
/// folder tree and the catalog.
pub type Registry = BTreeMap<KbName, KbEntry>;

/// Keeps the catalog and both indexes in step with the folders under the watched root.
pub struct Ingestor {
    root: PathBuf,
    catalog: Catalog,
    lexical: Arc<dyn LexicalIndex>,
    /// The embedding models, each with its vector store; each generation uses one.
    models: Models,
    config: IngestConfig,
    limits: Limits,
    /// One lock per knowledge base, held by a sync of its active generation and by the swap
    /// to a rebuilt one: two runs over the same rows would race, while knowledge bases (and
    /// a knowledge base's rebuild) go on side by side.
    syncs: Mutex<HashMap<KbName, Arc<Mutex<()>>>>,
    live: Mutex<HashMap<KbGeneration, BTreeMap<DocumentPath, LiveState>>>,
    /// Rebuilt at start and refreshed after each sync of a knowledge base, swapped whole.
    registry: RwLock<Arc<Registry>>,
    /// Held by each refresh of the registry, from reading the catalog to the swap.
    refreshing: Mutex<()>,
    /// Rebuild jobs running in this process, by knowledge base.
    jobs: Mutex<HashMap<KbName, jobs::RunningJob>>,
}

impl Ingestor {
    pub fn new(
        root: &Path,
        catalog: Catalog,
        lexical: Arc<dyn LexicalIndex>,
        models: IngestModels,
        config: IngestConfig,
    ) -> Result<Ingestor> {
        let models = Models::new(models, &config)?;
        // One pass at start: models recorded where data predates them, and every live
        // generation's model loaded (one that is not could be neither searched nor deleted).
        for kb in catalog.knowledge_bases()? {
            let generations = catalog.record_legacy_models(&kb, models.legacy())?;
            for generation in generations.live() {
                if let Some(model) = generations.model(generation)
                    && models.get(model).is_err()
                {
                    return Err(Error::UnknownModel {
                        model: model.to_string(),
                        reason: format!(
                            "{} was embedded with it, but the configuration names no such \
                             model: configure it again ([embedding_models]) until a rebuild \
                             moves {kb} to another",
                            KbGeneration::new(kb.clone(), generation)
                        ),
                    });
                }
            }
        }
        let ingestor = Ingestor {
            root: root.to_path_buf(),
            catalog,
            lexical,
            models,
            limits: Limits {
                max_pages: config.max_pages,
                max_extracted_chars: config.max_extracted_chars,
                max_zip_entry_bytes: config.max_zip_entry_bytes,
                max_rows_per_sheet: config.max_rows_per_sheet,
            },
            config,
            syncs: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            registry: RwLock::new(Arc::new(Registry::new())),
            refreshing: Mutex::new(()),
            jobs: Mutex::new(HashMap::new()),
        };
        ingestor.refresh_registry(None)?;
        Ok(ingestor)
    }

    /// The generation of `kb` that searches read and syncs write.
    pub fn active_generation(&self, kb: &KbName) -> Result<KbGeneration> {
        Ok(KbGeneration::new(
            kb.clone(),
            self.catalog.generations(kb)?.active,
        ))
    }

    /// The generation of `kb` that searches read, with the model it was embedded with.
    pub fn serving(&self, kb: &KbName) -> Result<(KbGeneration, ModelName)> {
        let generations = self.catalog.generations(kb)?;
        let model = self.model_of(kb, &generations, generations.active);
        Ok((KbGeneration::new(kb.clone(), generations.active), model))
    }

    /// The model `generation` of `kb` was embedded with, as `generations` records it. One with
    /// none recorded has nothing written yet (a knowledge base no sync has touched): it reads
    /// as the model it would be given, or the default while its `kb.toml` names a model that
    /// is not loaded (the sync that records it reports that).
    fn model_of(
        &self,
        kb: &KbName,
        generations: &KbGenerations,
        generation: Generation,
    ) -> ModelName {
        generations.model(generation).cloned().unwrap_or_else(|| {
            self.models
                .for_new_generation(&KbSettings::load(&self.root.join(kb.as_str())))
                .unwrap_or_else(|_| self.models.for_new_generations().clone())
        })
    }

    /// The model, chunker and vector store of `generation` (see [`Ingestor::model_of`]).
    fn parts_of(&self, generation: &KbGeneration) -> Result<&Arc<ModelParts>> {
        let generations = self.catalog.generations(generation.kb())?;
        let model = self.model_of(generation.kb(), &generations, generation.generation());
        self.models.get(&model).map_err(|err| match err {
            Error::UnknownModel { model, reason } => Error::UnknownModel {
                model,
                reason: format!("{generation} was embedded with it, but {reason}"),
            },
            other => other,
        })
    }

    /// Records the model of `kb`'s active generation if none is yet (a knowledge base no
    /// sync has touched): the one its `kb.toml` or `ingest.embedding_model` names.
    fn record_active_model(&self, kb: &KbName) -> Result<()> {
        let generations = self.catalog.generations(kb)?;
        if generations.model(generations.active).is_some() {
            return Ok(());
        }
        let model = self
            .models
            .for_new_generation(&KbSettings::load(&self.root.join(kb.as_str())))?;
        self.catalog.update_generations(
            kb,
            |generations| {
                generations
                    .models
                    .entry(generations.active)
                    .or_insert(model);
                Ok(())
            },
            None,
        )
    }

    /// The lock a sync of `kb` holds; see [`Ingestor::syncs`].
    fn sync_lock(&self, kb: &KbName) -> Arc<Mutex<()>> {
        let mut syncs = self.syncs.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(syncs.entry(kb.clone()).or_default())
    }

    /// The knowledge bases as of their last sync, with settings and counts. Reads no disk.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the settings and counts of `only` (or of every knowledge base, which also drops
    /// those that are gone) and swaps the registry.
    fn refresh_registry(&self, only: Option<&KbName>) -> Result<()> {
        // One refresh at a time, each reading the catalog after the one before: a refresh of
        // every knowledge base that read one before a swap must not put back its old
        // generation after the swap's own refresh.
        let _refreshing = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = |kb: &KbName| -> Result<KbEntry> {
            let generations = self.catalog.generations(kb)?;
            let active = KbGeneration::new(kb.clone(), generations.active);
            Ok(KbEntry {
                settings: KbSettings::load(&self.root.join(kb.as_str())),
                summary: KbSummary::of(&self.catalog.list(&active)?),
                model: self.model_of(kb, &generations, generations.active),
                active,
            })
        };
        let fresh: Vec<(KbName, Option<KbEntry>)> = match only {
            Some(kb) if self.is_deleted(kb)? => vec![(kb.clone(), None)],
            Some(kb) => vec![(kb.clone(), Some(entry(kb)?))],
            None => self
                .knowledge_bases()?
                .into_iter()
                .map(|kb| Ok((kb.clone(), Some(entry(&kb)?))))
                .collect::<Result<_>>()?,
        };
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = match only {
            Some(_) => (**registry).clone(),
            None => Registry::new(),
        };
        for (kb, entry) in fresh {
            match entry {
                Some(entry) => next.insert(kb, entry),
                None => next.remove(&kb),
            };
        }
        *registry = Arc::new(next);
        Ok(())
    }

    /// The model new generations are embedded with.
    pub fn embedder(&self) -> Result<&Arc<Embedder>> {
        Ok(&self.models.get(self.models.for_new_generations())?.embedder)
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

    /// The settings, catalog rows, in-progress documents, generations and rebuild of one
    /// knowledge base.
    pub fn status(&self, kb: &KbName) -> Result<KbStatus> {
        let generations = self.catalog.generations(kb)?;
        let active = KbGeneration::new(kb.clone(), generations.active);
        let records = self.catalog.list(&active)?;
        let in_progress: Vec<(DocumentPath, LiveState)> = self
            .live()
            .get(&active)
            .map(|docs| docs.iter().map(|(p, s)| (p.clone(), *s)).collect())
            .unwrap_or_default();
        let mut summary = KbSummary::of(&records);
        for (_, state) in &in_progress {
            match state {
                LiveState::Queued => summary.queued += 1,
                LiveState::Indexing => summary.indexing += 1,
            }
        }
        let settings = KbSettings::load(&self.root.join(kb.as_str()));
        Ok(KbStatus {
            kb: kb.clone(),
            model: self.model_of(kb, &generations, generations.active),
            next_model: self
                .models
                .for_new_generation(&settings)
                .map_err(|err| err.to_string()),
            settings,
            summary,
            records,
            in_progress,
            generations,
            job: self.job_status(kb)?,
            disk_shortage: self.disk_shortage(),
        })
    }

    /// Whether the data directory's file system has less free space than
    /// `ingest.min_free_disk_mib` now. A failure to ask the file system counts as enough
    /// space (and is logged): the writes themselves then report what is wrong.
    pub fn disk_shortage(&self) -> Option<DiskShortage> {
        let reserve_bytes = self.config.min_free_disk_mib.saturating_mul(1 << 20);
        if reserve_bytes == 0 {
            return None;
        }
        match lumbung_core::disk::available_bytes(self.catalog.dir()) {
            Ok(free_bytes) => (free_bytes < reserve_bytes).then_some(DiskShortage {
                free_bytes,
                reserve_bytes,
            }),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the data directory's free space");
                None
            }
        }
    }

    /// Knowledge bases: the folders under the root, and any the catalog still holds rows or
    /// generations for, less those deleted with their folder kept.
    pub fn knowledge_bases(&self) -> Result<Vec<KbName>> {
        let mut kbs = scan::knowledge_base_folders(&self.root)?;
        kbs.extend(self.catalog.knowledge_bases()?);
        kbs.sort();
        kbs.dedup();
        let mut kept = Vec::with_capacity(kbs.len());
        for kb in kbs {
            if !self.is_deleted(&kb)? {
                kept.push(kb);
            }
        }
        Ok(kept)
    }

    /// Whether `kb` was deleted with its folder kept, so that the folder is not indexed again.
    fn is_deleted(&self, kb: &KbName) -> Result<bool> {
        Ok(self.catalog.generations(kb)?.deleted)
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
        let lock = self.sync_lock(kb);
        let _sync = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_deleted(kb)? {
            return Ok(SyncReport::default());
        }
        self.record_active_model(kb)?;
        // Read under the lock: a swap to a rebuilt generation holds it too, so a sync that
        // waited for one writes the generation it made active.
        let active = self.active_generation(kb)?;
        let report = self.run_generation(&active, options, progress);
        if report.is_ok() && !self.root.join(kb.as_str()).is_dir() {
            // The folder is gone and its documents with it: once nothing of the knowledge base
            // is left to delete, the catalog forgets its generations too, or it would stay
            // listed, empty, for ever.
            let generations = self.catalog.generations(kb)?;
            let empty = self.catalog.list(&active)?.is_empty();
            if empty && generations.building.is_none() && generations.retired.is_empty() {
                self.catalog.forget(kb)?;
                self.refresh_registry(None)?;
                return report;
            }
        }
        // Settings may have changed even when no document did; a failed run may have
        // recorded some documents.
        self.refresh_registry(Some(kb))?;
        report
    }

    /// Brings one generation of a knowledge base in step with the folder.
    fn run_generation(
        &self,
        kb: &KbGeneration,
        options: RunOptions<'_>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        let folder = self.root.join(kb.kb().as_str());
        let files = if folder.is_dir() {
            scan::files_of(&folder)?
        } else {
            Vec::new()
        };
        pipeline::Run {
            ingestor: self,
            kb,
            model: self.parts_of(kb)?,
            options,
            progress,
        }
        .execute(files)
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

    /// Compares both indexes with the catalog for the active generation of `kb`, document by
    /// document, and describes every difference: an indexed document whose chunk count
    /// differs in either index (lost or doubled chunks), and chunks of documents the catalog
    /// does not list as served. Empty when they agree. Meant for a quiet moment: a run in
    /// progress shows as differences.
    /// Also lists chunks left in a generation that is neither active, being built nor
    /// retired (a rebuild's leftovers that nothing would delete).
    pub fn verify(&self, kb: &KbName) -> Result<Vec<String>> {
        let generations = self.catalog.generations(kb)?;
        let mut problems =
            self.verify_generation(&KbGeneration::new(kb.clone(), generations.active))?;
        let accounted = |g: &Generation| {
            *g == generations.active
                || generations.building == Some(*g)
                || generations.retired.contains(g)
        };
        let every = std::iter::successors(Some(Generation::FIRST), |g| {
            (*g < generations.last).then(|| g.next())
        });
        for generation in every.filter(|g| !accounted(g)) {
            let stray = KbGeneration::new(kb.clone(), generation);
            let lexical = self.lexical.count_chunks(&stray, None)?;
            // Which model a stray generation had is no longer recorded: any store may hold it.
            let mut vectors = 0;
            for model in self.models.all() {
                vectors += model.vectors.count(&stray, None)?;
            }
            if lexical + vectors > 0 {
                problems.push(format!(
                    "{stray}: generation {generation} is neither active nor being built, yet \
                     the lexical index holds {lexical} of its chunks and the vector stores \
                     {vectors}"
                ));
            }
        }
        Ok(problems)
    }

    /// [`Ingestor::verify`] for any generation: a rebuilt one is checked so before it is made
    /// active.
    pub fn verify_generation(&self, kb: &KbGeneration) -> Result<Vec<String>> {
        let store = &self.parts_of(kb)?.vectors;
        let mut problems = Vec::new();
        let mut served = 0u64;
        for record in self.catalog.list(kb)? {
            // A failed new version leaves the previous one served, with its chunk count.
            let expected = match record.state {
                DocumentState::Indexed | DocumentState::Failed => u64::from(record.chunks),
                DocumentState::Skipped => 0,
            };
            let lexical = self.lexical.count_chunks(kb, Some(&record.path))?;
            let vectors = store.count(kb, Some(&record.path))?;
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
        let vectors = store.count(kb, None)?;
        if (lexical, vectors) != (served, served) {
            problems.push(format!(
                "{kb}: the catalog records {served} chunks in all, the lexical index holds \
                 {lexical} and the vector store {vectors}"
            ));
        }
        Ok(problems)
    }

    fn live(&self) -> MutexGuard<'_, HashMap<KbGeneration, BTreeMap<DocumentPath, LiveState>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets (or with `None` clears) the live state of documents of `kb`.
    fn set_live<'p>(
        &self,
        kb: &KbGeneration,
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

    fn clear_live(&self, kb: &KbGeneration) {
        self.live().remove(kb);
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
