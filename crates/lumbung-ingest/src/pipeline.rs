//! One sync run over one knowledge base: three stages on their own threads, joined by bounded
//! channels so that a large folder never holds more than a few documents in memory.
//!
//! prepare (read, hash, extract, chunk) -> embed (batched across documents) -> write (both
//! indexes, commit, then the catalog rows).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

use lumbung_core::{Chunk, ContentHash, DocumentPath, KbName};

use crate::catalog::{DocumentRecord, DocumentState};
use crate::scan::FoundFile;
use crate::{Ingestor, Result, now_ms};

/// Documents in flight between two stages.
const STAGE_CAPACITY: usize = 8;
/// Documents written between two commits at most; a commit also happens whenever the writer
/// has nothing more waiting, so a single edit is visible at once.
const MAX_DOCUMENTS_PER_COMMIT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Indexed {
        chunks: u32,
    },
    /// Same content as recorded: nothing embedded.
    Unchanged,
    Failed(String),
    Skipped(String),
    Removed,
}

#[derive(Debug, Clone)]
pub enum Progress {
    /// A run over `kb` starts with this many documents to read and to remove.
    Planned {
        kb: KbName,
        to_read: usize,
        to_remove: usize,
    },
    Document {
        kb: KbName,
        path: DocumentPath,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub indexed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub removed: usize,
    pub chunks_written: u64,
}

impl SyncReport {
    pub fn add(&mut self, other: &SyncReport) {
        self.indexed += other.indexed;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.removed += other.removed;
        self.chunks_written += other.chunks_written;
    }

    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Indexed { chunks } => {
                self.indexed += 1;
                self.chunks_written += u64::from(*chunks);
            }
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Removed => self.removed += 1,
        }
    }
}

/// What the prepare stage hands on: a row to record as is, or chunks to embed first.
enum Prepared {
    /// The content hash is the recorded one: only size and mtime change.
    Unchanged(DocumentRecord),
    Record(DocumentRecord),
    Chunks(DocumentRecord, Vec<Chunk>),
}

struct Embedded {
    record: DocumentRecord,
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
}

enum ToWrite {
    Unchanged(DocumentRecord),
    Record(DocumentRecord),
    Embedded(Embedded),
}

pub(crate) struct Run<'a> {
    pub ingestor: &'a Ingestor,
    pub kb: &'a KbName,
    pub force: bool,
    pub progress: &'a (dyn Fn(&Progress) + Sync),
}

impl Run<'_> {
    pub fn execute(&self, files: Vec<FoundFile>) -> Result<SyncReport> {
        let known: HashMap<DocumentPath, DocumentRecord> = self
            .ingestor
            .catalog
            .list(self.kb)?
            .into_iter()
            .map(|record| (record.path.clone(), record))
            .collect();
        let present: std::collections::HashSet<&DocumentPath> =
            files.iter().map(|f| &f.path).collect();
        let gone: Vec<DocumentPath> = known
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        let (to_read, unchanged): (Vec<FoundFile>, Vec<FoundFile>) =
            files.into_iter().partition(|file| {
                self.force
                    || known.get(&file.path).is_none_or(|record| {
                        record.size_bytes != file.size_bytes || record.mtime_ms != file.mtime_ms
                    })
            });
        (self.progress)(&Progress::Planned {
            kb: self.kb.clone(),
            to_read: to_read.len(),
            to_remove: gone.len(),
        });

        let mut report = SyncReport {
            unchanged: unchanged.len(),
            ..SyncReport::default()
        };
        self.remove(&gone, &mut report)?;
        if to_read.is_empty() {
            return Ok(report);
        }

        let (prepared_tx, prepared_rx) = sync_channel::<Prepared>(STAGE_CAPACITY);
        let (write_tx, write_rx) = sync_channel::<ToWrite>(STAGE_CAPACITY);
        std::thread::scope(|scope| {
            let known = &known;
            scope.spawn(move || self.prepare_stage(to_read, known, prepared_tx));
            scope.spawn(move || self.embed_stage(prepared_rx, write_tx));
            // The writer runs here; when it fails, dropping its receiver stops the other stages.
            self.write_stage(write_rx, &mut report)
        })?;
        Ok(report)
    }

    fn remove(&self, gone: &[DocumentPath], report: &mut SyncReport) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        for path in gone {
            self.ingestor.lexical.delete_document(self.kb, path)?;
            self.ingestor.vectors.delete_document(self.kb, path)?;
        }
        self.ingestor.lexical.commit()?;
        self.ingestor.vectors.flush()?;
        let removals: Vec<(KbName, DocumentPath)> = gone
            .iter()
            .map(|path| (self.kb.clone(), path.clone()))
            .collect();
        self.ingestor.catalog.apply(&[], &removals)?;
        for path in gone {
            self.report(path, Outcome::Removed, report);
        }
        Ok(())
    }

    fn report(&self, path: &DocumentPath, outcome: Outcome, report: &mut SyncReport) {
        report.count(&outcome);
        (self.progress)(&Progress::Document {
            kb: self.kb.clone(),
            path: path.clone(),
            outcome,
        });
    }

    fn prepare_stage(
        &self,
        files: Vec<FoundFile>,
        known: &HashMap<DocumentPath, DocumentRecord>,
        out: SyncSender<Prepared>,
    ) {
        for file in files {
            let prepared = self.prepare(&file, known.get(&file.path));
            if out.send(prepared).is_err() {
                return;
            }
        }
    }

    fn prepare(&self, file: &FoundFile, previous: Option<&DocumentRecord>) -> Prepared {
        let mut record = DocumentRecord {
            kb: self.kb.clone(),
            path: file.path.clone(),
            size_bytes: file.size_bytes,
            mtime_ms: file.mtime_ms,
            content_hash: ContentHash::from_hex(""),
            state: DocumentState::Failed,
            error: None,
            // A failed new version leaves the previous one answering: its chunks stay counted.
            chunks: previous
                .filter(|p| p.state == DocumentState::Indexed)
                .map_or(0, |p| p.chunks),
            recorded_at_ms: 0,
        };
        let limit = self.ingestor.config.max_file_bytes;
        if file.size_bytes > limit {
            record.error = Some(format!(
                "file is {} bytes, above the limit ingest.max_file_bytes = {limit}",
                file.size_bytes
            ));
            return Prepared::Record(record);
        }
        let bytes = match fs_err::read(&file.absolute) {
            Ok(bytes) => bytes,
            Err(err) => {
                record.error = Some(err.to_string());
                return Prepared::Record(record);
            }
        };
        record.content_hash = ContentHash::of_bytes(&bytes);
        if let Some(previous) = previous
            && !self.force
            && previous.content_hash == record.content_hash
            && previous.state != DocumentState::Failed
        {
            // Touched but not changed: record the new size and mtime, embed nothing.
            return Prepared::Unchanged(DocumentRecord {
                size_bytes: file.size_bytes,
                mtime_ms: file.mtime_ms,
                ..previous.clone()
            });
        }
        if lumbung_extract::Format::from_path(&file.path).is_none() {
            record.state = DocumentState::Skipped;
            record.chunks = 0;
            record.error = Some(format!(
                "unsupported file type {:?}",
                file.path.extension().unwrap_or_default()
            ));
            return Prepared::Record(record);
        }
        // Extraction parses untrusted bytes with third-party code: a panic there must fail
        // this document, not the run.
        let extracted = std::panic::catch_unwind(AssertUnwindSafe(|| {
            lumbung_extract::extract(&file.path, &bytes)
        }));
        let document = match extracted {
            Ok(Ok(document)) => document,
            Ok(Err(err)) => {
                record.error = Some(err.to_string());
                return Prepared::Record(record);
            }
            Err(_) => {
                record.error = Some("extraction panicked".to_string());
                return Prepared::Record(record);
            }
        };
        let chunks = self.ingestor.chunker.split(
            self.kb,
            &file.path,
            &record.content_hash,
            &document.title,
            &document.sections,
        );
        if chunks.is_empty() {
            record.error = Some("no text to index".to_string());
            return Prepared::Record(record);
        }
        record.state = DocumentState::Indexed;
        record.chunks = chunks.len() as u32;
        Prepared::Chunks(record, chunks)
    }

    fn embed_stage(&self, input: Receiver<Prepared>, out: SyncSender<ToWrite>) {
        let batch_size = self.ingestor.embedder.batch_size();
        while let Ok(first) = input.recv() {
            // Small documents are embedded together: one model call per batch, not per file.
            let mut group = vec![first];
            let mut chunk_count = chunk_count_of(&group[0]);
            while chunk_count < batch_size {
                match input.try_recv() {
                    Ok(next) => {
                        chunk_count += chunk_count_of(&next);
                        group.push(next);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            for item in self.embed_group(group) {
                if out.send(item).is_err() {
                    return;
                }
            }
        }
    }

    fn embed_group(&self, group: Vec<Prepared>) -> Vec<ToWrite> {
        let texts: Vec<&str> = group
            .iter()
            .flat_map(|item| match item {
                Prepared::Chunks(_, chunks) => chunks.iter().map(|c| c.text.as_str()).collect(),
                Prepared::Record(_) | Prepared::Unchanged(_) => Vec::new(),
            })
            .collect();
        let mut vectors = if texts.is_empty() {
            Ok(Vec::new())
        } else {
            self.ingestor
                .embedder
                .embed_passages(&texts)
                .map_err(|err| err.to_string())
        };
        let mut out = Vec::with_capacity(group.len());
        for item in group {
            match item {
                Prepared::Record(record) => out.push(ToWrite::Record(record)),
                Prepared::Unchanged(record) => out.push(ToWrite::Unchanged(record)),
                Prepared::Chunks(mut record, chunks) => match &mut vectors {
                    Ok(all) => {
                        let rest = all.split_off(chunks.len());
                        let mine = std::mem::replace(all, rest);
                        out.push(ToWrite::Embedded(Embedded {
                            record,
                            chunks,
                            vectors: mine,
                        }));
                    }
                    Err(reason) => {
                        record.state = DocumentState::Failed;
                        record.error = Some(format!("embedding failed: {reason}"));
                        out.push(ToWrite::Record(record));
                    }
                },
            }
        }
        out
    }

    fn write_stage(&self, input: Receiver<ToWrite>, report: &mut SyncReport) -> Result<()> {
        let mut pending: Vec<(DocumentRecord, bool)> = Vec::new();
        loop {
            let item = match input.try_recv() {
                Ok(item) => Some(item),
                Err(TryRecvError::Empty) => {
                    // Nothing waiting: make what is written visible before blocking.
                    self.commit(&mut pending, report)?;
                    input.recv().ok()
                }
                Err(TryRecvError::Disconnected) => None,
            };
            let Some(item) = item else { break };
            let (record, unchanged) = match item {
                ToWrite::Unchanged(record) => (record, true),
                ToWrite::Record(record) => (record, false),
                ToWrite::Embedded(Embedded {
                    record,
                    chunks,
                    vectors,
                }) => {
                    let points: Vec<_> = chunks.iter().map(|c| c.id).zip(vectors).collect();
                    self.ingestor.vectors.replace_document(
                        self.kb,
                        &record.path,
                        &record.content_hash,
                        &points,
                    )?;
                    self.ingestor
                        .lexical
                        .replace_document(self.kb, &record.path, &chunks)?;
                    (record, false)
                }
            };
            pending.push((record, unchanged));
            if pending.len() >= MAX_DOCUMENTS_PER_COMMIT {
                self.commit(&mut pending, report)?;
            }
        }
        self.commit(&mut pending, report)
    }

    /// Commits both indexes, then records the documents: the catalog row is written last.
    fn commit(
        &self,
        pending: &mut Vec<(DocumentRecord, bool)>,
        report: &mut SyncReport,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        self.ingestor.vectors.flush()?;
        self.ingestor.lexical.commit()?;
        let recorded_at_ms = now_ms();
        let records: Vec<DocumentRecord> = pending
            .iter()
            .map(|(record, _)| DocumentRecord {
                recorded_at_ms,
                ..record.clone()
            })
            .collect();
        self.ingestor.catalog.apply(&records, &[])?;
        for (record, unchanged) in pending.drain(..) {
            let outcome = match record.state {
                _ if unchanged => Outcome::Unchanged,
                DocumentState::Indexed => Outcome::Indexed {
                    chunks: record.chunks,
                },
                DocumentState::Failed => Outcome::Failed(record.error.clone().unwrap_or_default()),
                DocumentState::Skipped => {
                    Outcome::Skipped(record.error.clone().unwrap_or_default())
                }
            };
            self.report(&record.path, outcome, report);
        }
        Ok(())
    }
}

fn chunk_count_of(item: &Prepared) -> usize {
    match item {
        Prepared::Chunks(_, chunks) => chunks.len(),
        Prepared::Record(_) | Prepared::Unchanged(_) => 0,
    }
}
