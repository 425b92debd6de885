//! What is indexed: one row per document and generation, each knowledge base's generations
//! (active, building, retired) and its rebuild jobs, in an embedded transactional store (redb).
//!
//! A row is written only after both indexes have committed the document's chunks, so after a
//! crash a document without a row (or with an older hash) is simply processed again; chunk ids
//! are deterministic, so the redo overwrites instead of duplicating. Which generation serves is
//! one row of [`GENERATIONS`], so a rebuilt generation is made active in one transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lumbung_core::{
    ChunkId, ContentHash, DocumentPath, Generation, KbGeneration, KbName, ModelName,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Key: `generation key \0 path` ([`KbGeneration::key`]); value: a JSON `DocumentRecord`.
const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("documents_v1");
/// Key: knowledge-base name; value: a JSON [`KbGenerations`]. No row: the first generation
/// is active and nothing is being built.
const GENERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("generations_v1");
/// Key: job id; value: a JSON [`JobRecord`].
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs_v1");

/// The generations of one knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbGenerations {
    /// The one every search and every sync of the folder reads and writes.
    pub active: Generation,
    /// Being built beside the active one by a job, at most one.
    pub building: Option<Generation>,
    /// No longer served, their chunks and rows still to be deleted.
    pub retired: Vec<Generation>,
    /// The highest number given so far: a new build takes the next, so that it never meets
    /// the leftovers of an older one.
    pub last: Generation,
    /// Deleted with its folder kept: the folder is not indexed again until the knowledge
    /// base is created again.
    #[serde(default)]
    pub deleted: bool,
    /// The embedding model of each live generation (active, building, retired). Rows written
    /// before models were recorded have none: their generations were embedded with
    /// `[embedding]`'s model, which [`Catalog::record_legacy_models`] writes in once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<Generation, ModelName>,
}

impl KbGenerations {
    /// The model `generation` was (or is being) embedded with, when recorded.
    pub fn model(&self, generation: Generation) -> Option<&ModelName> {
        self.models.get(&generation)
    }

    /// The generations that still have data: active, building and retired.
    pub fn live(&self) -> impl Iterator<Item = Generation> + '_ {
        std::iter::once(self.active)
            .chain(self.building)
            .chain(self.retired.iter().copied())
    }
}

impl Default for KbGenerations {
    fn default() -> Self {
        KbGenerations {
            active: Generation::FIRST,
            building: None,
            retired: Vec::new(),
            last: Generation::FIRST,
            deleted: false,
            models: BTreeMap::new(),
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Builds a new generation from the folder and makes it active.
    Reindex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Building; also a job that a crash or a shutdown interrupted, until it is resumed.
    Running,
    /// Its generation is active.
    Succeeded,
    /// Stopped on an error; its generation was discarded and the old one still serves.
    Failed,
    /// Cancelled by an admin; its generation was discarded.
    Cancelled,
}

/// A rebuild of one knowledge base, as recorded when it starts and when it ends. Its progress
/// while it runs is in memory ([`crate::JobStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `kb@generation`: unique, since a generation number is never given twice.
    pub id: String,
    pub kb: KbName,
    /// The generation it builds.
    pub generation: Generation,
    pub kind: JobKind,
    pub state: JobState,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Documents the build has to read or remove (known once it has scanned the folder),
    /// and those done, failed among them, and chunks written. Since it last started: a
    /// resumed build does not count again what it had recorded before.
    #[serde(default)]
    pub documents_total: u64,
    #[serde(default)]
    pub documents_done: u64,
    #[serde(default)]
    pub documents_failed: u64,
    #[serde(default)]
    pub chunks_written: u64,
}

impl JobRecord {
    pub fn id_of(kb: &KbGeneration) -> String {
        format!("{}@{}", kb.kb(), kb.generation())
    }

    /// A job that starts now, building `target`.
    pub(crate) fn new(target: &KbGeneration, kind: JobKind) -> JobRecord {
        JobRecord {
            id: JobRecord::id_of(target),
            kb: target.kb().clone(),
            generation: target.generation(),
            kind,
            state: JobState::Running,
            started_at_ms: crate::now_ms(),
            finished_at_ms: None,
            error: None,
            documents_total: 0,
            documents_done: 0,
            documents_failed: 0,
            chunks_written: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    Indexed,
    Failed,
    /// A file type lumbung does not read; recorded so that its owner can see it was seen.
    Skipped,
}

/// Why a document failed or was skipped, for owners and alerts to tell "fix the file" from
/// "fix the service".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A file type lumbung does not read (the document is skipped, not failed).
    Unsupported,
    /// Over a limit: the file's size, its pages, rows, text or a compressed part.
    TooLarge,
    /// Not a valid document of its type, or it made the parser fail.
    Corrupt,
    /// Protected with a password.
    Encrypted,
    /// Extraction took longer than `ingest.max_extract_seconds`.
    Timeout,
    /// No text to index (a scan without OCR, an empty file).
    Empty,
    /// The file could not be read from its folder.
    Unreadable,
    /// The embedding model failed on it: a fault of the service, not of the file.
    Embedding,
}

impl FailureKind {
    pub const ALL: [FailureKind; 8] = [
        FailureKind::Unsupported,
        FailureKind::TooLarge,
        FailureKind::Corrupt,
        FailureKind::Encrypted,
        FailureKind::Timeout,
        FailureKind::Empty,
        FailureKind::Unreadable,
        FailureKind::Embedding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unsupported => "unsupported",
            FailureKind::TooLarge => "too_large",
            FailureKind::Corrupt => "corrupt",
            FailureKind::Encrypted => "encrypted",
            FailureKind::Timeout => "timeout",
            FailureKind::Empty => "empty",
            FailureKind::Unreadable => "unreadable",
            FailureKind::Embedding => "embedding",
        }
    }
}

/// Documents failed or skipped, by [`FailureKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts([u32; FailureKind::ALL.len()]);

impl FailureCounts {
    pub fn get(&self, kind: FailureKind) -> u32 {
        self.0[kind as usize]
    }

    fn add(&mut self, kind: FailureKind) {
        self.0[kind as usize] += 1;
    }

    /// The kinds with at least one document.
    pub fn iter(&self) -> impl Iterator<Item = (FailureKind, u32)> + '_ {
        FailureKind::ALL
            .into_iter()
            .map(|kind| (kind, self.get(kind)))
            .filter(|&(_, count)| count > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub kb: KbName,
    /// The generation of `kb` this row belongs to; absent in rows written before generations.
    #[serde(default)]
    pub generation: Generation,
    pub path: DocumentPath,
    pub size_bytes: u64,
    /// Modification time in milliseconds since the Unix epoch.
    pub mtime_ms: i64,
    pub content_hash: ContentHash,
    pub state: DocumentState,
    /// Why the document failed or was skipped.
    pub error: Option<String>,
    /// The kind of `error`; absent in rows written before kinds were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    pub chunks: u32,
    /// For a failed row whose previous version still answers: that version's hash, which
    /// its chunk ids derive from (`content_hash` is the failed version's). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_hash: Option<ContentHash>,
    /// When this row was written, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl DocumentRecord {
    /// The knowledge base and generation the row belongs to.
    pub fn kb_generation(&self) -> KbGeneration {
        KbGeneration::new(self.kb.clone(), self.generation)
    }

    /// The hash of the version whose chunks answer for this row.
    pub fn served_hash(&self) -> &ContentHash {
        self.served_hash.as_ref().unwrap_or(&self.content_hash)
    }

    /// The ids of the chunks that answer for this row (its version's, or for a failed new
    /// version the previous one's), in order.
    pub fn chunk_ids(&self) -> impl Iterator<Item = ChunkId> + '_ {
        let kb = self.kb_generation();
        let hash = self.served_hash();
        (0..self.chunks).map(move |ordinal| ChunkId::derive(&kb, &self.path, hash, ordinal))
    }
}

/// Counts over the rows of one knowledge base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KbSummary {
    pub indexed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Documents of the current run waiting to be read; filled in by `Ingestor::status`.
    pub queued: u32,
    /// Documents of the current run being read, embedded or written.
    pub indexing: u32,
    /// Chunks served, including those of older versions kept while a new one failed.
    pub chunks: u64,
    /// When the newest row was written, in milliseconds since the Unix epoch.
    pub last_change_ms: Option<i64>,
    /// Failed and skipped documents by kind.
    pub failures: FailureCounts,
}

impl KbSummary {
    pub fn of(records: &[DocumentRecord]) -> KbSummary {
        let mut summary = KbSummary::default();
        for record in records {
            match record.state {
                DocumentState::Indexed => summary.indexed += 1,
                DocumentState::Failed => summary.failed += 1,
                DocumentState::Skipped => summary.skipped += 1,
            }
            // Rows from before kinds were recorded: a skipped file can only be unsupported.
            let kind = record
                .failure
                .or((record.state == DocumentState::Skipped).then_some(FailureKind::Unsupported));
            if let Some(kind) = kind
                && record.state != DocumentState::Indexed
            {
                summary.failures.add(kind);
            }
            summary.chunks += u64::from(record.chunks);
            summary.last_change_ms = summary.last_change_ms.max(Some(record.recorded_at_ms));
        }
        summary
    }
}

pub struct Catalog {
    db: redb::Database,
    /// The folder holding the catalog file: the data directory.
    dir: PathBuf,
}

fn key(kb: &KbGeneration, path: &DocumentPath) -> String {
    format!("{}\0{path}", kb.key())
}

impl Catalog {
    /// Opens or creates the catalog file and compacts it. Fails if another process holds it
    /// open.
    ///
    /// redb reuses the pages that updates free, so the file stays as large as the most the
    /// catalog ever held at once; compacting at open gives back what a shrunk catalog (a
    /// knowledge base deleted) no longer uses. It needs the database to itself, which it
    /// has only here, and moves pages within the file (no extra disk).
    pub fn open(path: &Path) -> Result<Catalog> {
        let mut db = redb::Database::create(path).map_err(|err| Error::catalog(path, err))?;
        db.compact().map_err(|err| Error::catalog(path, err))?;
        let txn = db.begin_write().map_err(|err| Error::catalog(path, err))?;
        for table in [DOCUMENTS, GENERATIONS, JOBS] {
            txn.open_table(table)
                .map_err(|err| Error::catalog(path, err))?;
        }
        txn.commit().map_err(|err| Error::catalog(path, err))?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Catalog { db, dir })
    }

    /// The folder holding the catalog file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn get(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<Option<DocumentRecord>> {
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
        let value = table
            .get(key(kb, path).as_str())
            .map_err(Error::from_redb)?;
        value.map(|bytes| decode(bytes.value())).transpose()
    }

    /// Every row of one generation of a knowledge base, ordered by path.
    pub fn list(&self, kb: &KbGeneration) -> Result<Vec<DocumentRecord>> {
        let prefix = format!("{}\0", kb.key());
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
        let mut records = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(Error::from_redb)? {
            let (key, value) = entry.map_err(Error::from_redb)?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            records.push(decode(value.value())?);
        }
        Ok(records)
    }

    /// The knowledge bases that have at least one row in any generation, or generations
    /// recorded, sorted.
    pub fn knowledge_bases(&self) -> Result<Vec<KbName>> {
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
        let mut kbs: Vec<KbName> = Vec::new();
        let mut last_key = String::new();
        for entry in table.iter().map_err(Error::from_redb)? {
            let (key, _) = entry.map_err(Error::from_redb)?;
            let generation_key = key.value().split('\0').next().unwrap_or_default();
            if generation_key != last_key {
                last_key = generation_key.to_string();
                let kb = KbGeneration::from_key(generation_key)
                    .map_err(|err| Error::CorruptCatalog(err.to_string()))?;
                kbs.push(kb.kb().clone());
            }
        }
        let generations = txn.open_table(GENERATIONS).map_err(Error::from_redb)?;
        for entry in generations.iter().map_err(Error::from_redb)? {
            let (key, _) = entry.map_err(Error::from_redb)?;
            kbs.push(
                KbName::new(key.value()).map_err(|err| Error::CorruptCatalog(err.to_string()))?,
            );
        }
        kbs.sort();
        kbs.dedup();
        Ok(kbs)
    }

    /// The generations of `kb` (the first one active when none were recorded).
    pub fn generations(&self, kb: &KbName) -> Result<KbGenerations> {
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(GENERATIONS).map_err(Error::from_redb)?;
        let value = table.get(kb.as_str()).map_err(Error::from_redb)?;
        Ok(match value {
            Some(bytes) => decode(bytes.value())?,
            None => KbGenerations::default(),
        })
    }

    /// The generations of `kb`, with `model` recorded first for every live generation that has
    /// none: data indexed before models were recorded, all of it embedded with the one model
    /// there was (`[embedding]`'s). Writes only when one is missing, so nothing after the first
    /// start; never for a deleted knowledge base, whose fresh generation holds nothing and
    /// gets a model when it is created again.
    pub fn record_legacy_models(&self, kb: &KbName, model: &ModelName) -> Result<KbGenerations> {
        let generations = self.generations(kb)?;
        if generations.deleted
            || generations
                .live()
                .all(|g| generations.models.contains_key(&g))
        {
            return Ok(generations);
        }
        self.update_generations(
            kb,
            |generations| {
                let missing: Vec<Generation> = generations
                    .live()
                    .filter(|g| !generations.models.contains_key(g))
                    .collect();
                tracing::info!(
                    kb = %kb,
                    generations = ?missing,
                    model = %model,
                    "generations indexed before models were recorded: recorded as [embedding]'s"
                );
                for generation in missing {
                    generations.models.insert(generation, model.clone());
                }
                Ok(generations.clone())
            },
            None,
        )
    }

    /// Changes the generations of `kb` with `change` and writes `job` (when given), in one
    /// transaction: what makes a rebuilt generation active, or starts or ends a build. When
    /// `change` fails nothing is written.
    pub fn update_generations<T>(
        &self,
        kb: &KbName,
        change: impl FnOnce(&mut KbGenerations) -> Result<T>,
        job: Option<&JobRecord>,
    ) -> Result<T> {
        let txn = self.db.begin_write().map_err(Error::from_redb)?;
        let value = {
            let mut table = txn.open_table(GENERATIONS).map_err(Error::from_redb)?;
            let mut generations = match table.get(kb.as_str()).map_err(Error::from_redb)? {
                Some(bytes) => decode(bytes.value())?,
                None => KbGenerations::default(),
            };
            let value = change(&mut generations)?;
            if generations == KbGenerations::default() {
                table.remove(kb.as_str()).map_err(Error::from_redb)?;
            } else {
                table
                    .insert(kb.as_str(), encode(&generations)?.as_slice())
                    .map_err(Error::from_redb)?;
            }
            if let Some(job) = job {
                let mut jobs = txn.open_table(JOBS).map_err(Error::from_redb)?;
                jobs.insert(job.id.as_str(), encode(job)?.as_slice())
                    .map_err(Error::from_redb)?;
            }
            value
        };
        txn.commit().map_err(Error::from_redb)?;
        Ok(value)
    }

    /// The jobs of `kb`, newest generation first.
    pub fn jobs(&self, kb: &KbName) -> Result<Vec<JobRecord>> {
        let prefix = format!("{kb}@");
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(JOBS).map_err(Error::from_redb)?;
        let mut jobs: Vec<JobRecord> = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(Error::from_redb)? {
            let (key, value) = entry.map_err(Error::from_redb)?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            jobs.push(decode(value.value())?);
        }
        jobs.sort_by_key(|job| std::cmp::Reverse(job.generation));
        Ok(jobs)
    }

    /// Removes every row of one generation of `kb`.
    pub fn remove_generation(&self, kb: &KbGeneration) -> Result<()> {
        let paths: Vec<(KbGeneration, DocumentPath)> = self
            .list(kb)?
            .into_iter()
            .map(|record| (kb.clone(), record.path))
            .collect();
        self.apply(&[], &paths)
    }

    /// Forgets `kb` entirely: its generations and its jobs (its document rows are removed
    /// generation by generation, after their chunks).
    pub fn forget(&self, kb: &KbName) -> Result<()> {
        let txn = self.db.begin_write().map_err(Error::from_redb)?;
        {
            let mut generations = txn.open_table(GENERATIONS).map_err(Error::from_redb)?;
            generations.remove(kb.as_str()).map_err(Error::from_redb)?;
            let mut jobs = txn.open_table(JOBS).map_err(Error::from_redb)?;
            let prefix = format!("{kb}@");
            jobs.retain(|key, _| !key.starts_with(&prefix))
                .map_err(Error::from_redb)?;
        }
        txn.commit().map_err(Error::from_redb)?;
        Ok(())
    }

    /// Writes rows and removes rows in one transaction.
    pub fn apply(
        &self,
        upserts: &[DocumentRecord],
        removals: &[(KbGeneration, DocumentPath)],
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(Error::from_redb)?;
        {
            let mut table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
            for record in upserts {
                table
                    .insert(
                        key(&record.kb_generation(), &record.path).as_str(),
                        encode(record)?.as_slice(),
                    )
                    .map_err(Error::from_redb)?;
            }
            for (kb, path) in removals {
                table
                    .remove(key(kb, path).as_str())
                    .map_err(Error::from_redb)?;
            }
        }
        txn.commit().map_err(Error::from_redb)?;
        Ok(())
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| Error::CorruptCatalog(err.to_string()))
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|err| Error::CorruptCatalog(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kb: &str, path: &str, state: DocumentState) -> DocumentRecord {
        DocumentRecord {
            kb: KbName::new(kb).unwrap(),
            generation: Generation::FIRST,
            path: DocumentPath::new(path).unwrap(),
            size_bytes: 10,
            mtime_ms: 1,
            content_hash: ContentHash::of_bytes(path.as_bytes()),
            state,
            error: None,
            failure: None,
            chunks: 2,
            served_hash: None,
            recorded_at_ms: 3,
        }
    }

    #[test]
    fn summary_counts_states_chunks_and_the_newest_row() {
        let mut failed = record("a", "y.pdf", DocumentState::Failed);
        failed.recorded_at_ms = 9;
        let rows = [record("a", "x.md", DocumentState::Indexed), failed];
        let summary = KbSummary::of(&rows);
        assert_eq!(
            (summary.indexed, summary.failed, summary.skipped),
            (1, 1, 0)
        );
        assert_eq!(summary.chunks, 4);
        assert_eq!(summary.last_change_ms, Some(9));
        assert_eq!(KbSummary::of(&[]).last_change_ms, None);
    }

    #[test]
    fn rows_survive_reopen_and_list_by_kb() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.redb");
        {
            let catalog = Catalog::open(&file).unwrap();
            catalog
                .apply(
                    &[
                        record("a", "x.md", DocumentState::Indexed),
                        record("a", "y.pdf", DocumentState::Failed),
                        record("ab", "z.md", DocumentState::Indexed),
                    ],
                    &[],
                )
                .unwrap();
        }
        let catalog = Catalog::open(&file).unwrap();
        let a = KbGeneration::first(KbName::new("a").unwrap());
        let paths: Vec<String> = catalog
            .list(&a)
            .unwrap()
            .into_iter()
            .map(|r| r.path.to_string())
            .collect();
        assert_eq!(paths, ["x.md", "y.pdf"]);
        let kbs: Vec<String> = catalog
            .knowledge_bases()
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(kbs, ["a", "ab"]);

        let x = DocumentPath::new("x.md").unwrap();
        catalog.apply(&[], &[(a.clone(), x.clone())]).unwrap();
        assert_eq!(catalog.get(&a, &x).unwrap(), None);
        assert_eq!(catalog.list(&a).unwrap().len(), 1);
    }

    #[test]
    fn generations_keep_their_rows_apart_and_change_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.redb")).unwrap();
        let hr = KbName::new("hr").unwrap();
        let second = Generation::FIRST.next();
        let mut rebuilt = record("hr", "leave.md", DocumentState::Indexed);
        rebuilt.generation = second;
        catalog
            .apply(
                &[
                    record("hr", "leave.md", DocumentState::Indexed),
                    rebuilt.clone(),
                ],
                &[],
            )
            .unwrap();
        let first = KbGeneration::first(hr.clone());
        let next = KbGeneration::new(hr.clone(), second);
        assert_eq!(catalog.list(&first).unwrap().len(), 1);
        assert_eq!(catalog.list(&next).unwrap(), [rebuilt.clone()]);
        assert_ne!(
            rebuilt.chunk_ids().next(),
            catalog.list(&first).unwrap()[0].chunk_ids().next()
        );
        assert_eq!(
            catalog.knowledge_bases().unwrap(),
            std::slice::from_ref(&hr)
        );
        assert_eq!(catalog.generations(&hr).unwrap(), KbGenerations::default());

        // A change that fails writes nothing, not even its job.
        let job = JobRecord::new(&next, JobKind::Reindex);
        let refused = catalog.update_generations(
            &hr,
            |generations| {
                generations.building = Some(second);
                Err::<(), _>(Error::UnknownKb("refused".into()))
            },
            Some(&job),
        );
        assert!(refused.is_err());
        assert_eq!(catalog.generations(&hr).unwrap().building, None);
        assert!(catalog.jobs(&hr).unwrap().is_empty());

        catalog
            .update_generations(
                &hr,
                |generations| {
                    generations.building = Some(second);
                    generations.last = second;
                    Ok(())
                },
                Some(&job),
            )
            .unwrap();
        assert_eq!(catalog.jobs(&hr).unwrap(), [job]);
        catalog
            .update_generations(
                &hr,
                |generations| {
                    generations.retired.push(generations.active);
                    generations.active = second;
                    generations.building = None;
                    Ok(())
                },
                None,
            )
            .unwrap();
        let generations = catalog.generations(&hr).unwrap();
        assert_eq!(
            (generations.active, generations.retired.as_slice()),
            (second, &[Generation::FIRST][..])
        );

        catalog.remove_generation(&first).unwrap();
        assert!(catalog.list(&first).unwrap().is_empty());
        assert_eq!(catalog.list(&next).unwrap().len(), 1);
        catalog.remove_generation(&next).unwrap();
        // Generations alone still name the knowledge base, until it is forgotten.
        assert_eq!(
            catalog.knowledge_bases().unwrap(),
            std::slice::from_ref(&hr)
        );
        catalog.forget(&hr).unwrap();
        assert!(catalog.knowledge_bases().unwrap().is_empty());
        assert!(catalog.jobs(&hr).unwrap().is_empty());
    }
}
