//! One sync run over one knowledge base: three stages on their own threads, joined by bounded
//! channels so that a large folder never holds more than a few documents in memory.
//!
//! prepare (read, hash, extract, chunk) -> embed (batched across documents) -> write (both
//! indexes, commit, then the catalog rows). Files that are gone are removed last, so that a
//! file renamed or moved within the knowledge base takes its vectors along instead of being
//! embedded again.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use lumbung_core::{Chunk, ChunkId, ContentHash, DocumentPath, KbGeneration, QuantizedVector};
use lumbung_extract::ExtractedDocument;
use lumbung_index::VectorPoint;

use crate::catalog::{DocumentRecord, DocumentState, FailureKind};
use crate::models::ModelParts;
use crate::scan::FoundFile;
use crate::{Ingestor, LiveState, Result, now_ms};

/// Documents in flight between two stages.
const STAGE_CAPACITY: usize = 8;

/// Model batches' worth of texts the embed stage gathers from waiting documents before it
/// embeds them. Grouping one batch's worth (16 texts, mostly one document) left each
/// document's batches padded to its longest text and its last batch part-empty: ingest of the
/// samples went from 5.7 to 7.5-8 chunks/s with 16 batches; 32 measured no better
/// (`lumbung bench --ingest-share`, docs/scale.md).
const EMBED_GROUP_BATCHES: usize = 16;
/// Documents written between two commits at most; a commit also happens whenever the writer
/// has nothing more waiting, so a single edit is visible at once.
const MAX_DOCUMENTS_PER_COMMIT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Indexed {
        chunks: u32,
        /// The vectors came from a document with the same content (a rename, a move or a
        /// copy): nothing was embedded.
        reused_vectors: bool,
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
        kb: KbGeneration,
        to_read: usize,
        to_remove: usize,
    },
    Document {
        kb: KbGeneration,
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
    /// Documents indexed with the vectors of a document of the same content.
    pub reused_vectors: usize,
    /// Chunks that went through the embedding model.
    pub chunks_embedded: u64,
    /// Files left for a later run because they changed less than `ingest.settle_ms` ago,
    /// because the run was cancelled before reaching them, or because the disk is nearly full
    /// ([`crate::Ingestor::disk_shortage`]).
    pub deferred: usize,
}

impl SyncReport {
    pub fn add(&mut self, other: &SyncReport) {
        self.indexed += other.indexed;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.removed += other.removed;
        self.chunks_written += other.chunks_written;
        self.reused_vectors += other.reused_vectors;
        self.chunks_embedded += other.chunks_embedded;
        self.deferred += other.deferred;
    }

    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Indexed {
                chunks,
                reused_vectors,
            } => {
                self.indexed += 1;
                self.chunks_written += u64::from(*chunks);
                if *reused_vectors {
                    self.reused_vectors += 1;
                } else {
                    self.chunks_embedded += u64::from(*chunks);
                }
            }
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Removed => self.removed += 1,
        }
    }
}

/// What the prepare stage hands on: a row to record as is, or chunks to write, with their
/// vectors when a document of the same content already had them.
enum Prepared {
    /// The content hash is the recorded one: only size and mtime change.
    Unchanged(DocumentRecord),
    Record(DocumentRecord),
    Chunks(DocumentRecord, Vec<Chunk>, Option<Vec<Vec<f32>>>),
}

struct Embedded {
    record: DocumentRecord,
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
    reused_vectors: bool,
}

enum ToWrite {
    Unchanged(DocumentRecord),
    Record(DocumentRecord),
    Embedded(Embedded),
}

/// How one run treats the folder.
#[derive(Clone, Copy, Default)]
pub(crate) struct RunOptions<'a> {
    /// Read, extract and embed every file again, even unchanged ones (after a model change).
    pub force: bool,
    /// Files modified less than this long ago are left for a later run.
    pub settle_ms: u64,
    /// Stops the run between two documents; what was committed stays, the rest is redone by
    /// the next run.
    pub cancel: Option<&'a AtomicBool>,
}

/// What the catalog knows about the knowledge base before the run.
struct Known {
    by_path: HashMap<DocumentPath, DocumentRecord>,
    /// Indexed documents by content, for reusing their vectors.
    by_hash: HashMap<ContentHash, DocumentRecord>,
}

pub(crate) struct Run<'a> {
    pub ingestor: &'a Ingestor,
    /// The generation the run writes: the active one for a sync, a new one for a rebuild.
    pub kb: &'a KbGeneration,
    /// The generation's embedding model, chunker and vector store.
    pub model: &'a ModelParts,
    pub options: RunOptions<'a>,
    pub progress: &'a (dyn Fn(&Progress) + Sync),
}

impl Run<'_> {
    pub fn execute(&self, files: Vec<FoundFile>) -> Result<SyncReport> {
        let by_path: HashMap<DocumentPath, DocumentRecord> = self
            .ingestor
            .catalog
            .list(self.kb)?
            .into_iter()
            .map(|record| (record.path.clone(), record))
            .collect();
        let by_hash = by_path
            .values()
            .filter(|record| record.state == DocumentState::Indexed && record.chunks > 0)
            .map(|record| (record.content_hash.clone(), record.clone()))
            .collect();
        let known = Known { by_path, by_hash };
        let present: HashSet<&DocumentPath> = files.iter().map(|f| &f.path).collect();
        let gone: Vec<DocumentPath> = known
            .by_path
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        let now = now_ms();
        let settle_ms = i64::try_from(self.options.settle_ms).unwrap_or(i64::MAX);
        let (settled, young): (Vec<FoundFile>, Vec<FoundFile>) = files
            .into_iter()
            .partition(|file| now.abs_diff(file.mtime_ms) >= settle_ms.unsigned_abs());
        let (to_read, unchanged): (Vec<FoundFile>, Vec<FoundFile>) =
            settled.into_iter().partition(|file| {
                self.options.force
                    || known.by_path.get(&file.path).is_none_or(|record| {
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
            deferred: young.len(),
            ..SyncReport::default()
        };
        if !to_read.is_empty() {
            self.ingestor.set_live(
                self.kb,
                to_read.iter().map(|file| &file.path),
                Some(LiveState::Queued),
            );
            let (prepared_tx, prepared_rx) = sync_channel::<Prepared>(STAGE_CAPACITY);
            let (write_tx, write_rx) = sync_channel::<ToWrite>(STAGE_CAPACITY);
            let written = std::thread::scope(|scope| {
                let known = &known;
                // Reading and embedding are most of ingest's CPU: they yield it to queries.
                let niceness = self.ingestor.config.niceness;
                let prepared = scope.spawn(move || {
                    lumbung_core::lower_current_thread_priority(niceness);
                    self.prepare_stage(to_read, known, prepared_tx)
                });
                scope.spawn(move || {
                    lumbung_core::lower_current_thread_priority(niceness);
                    self.embed_stage(prepared_rx, write_tx)
                });
                // The writer runs here; when it fails, dropping its receiver stops the others.
                let written = self.write_stage(write_rx, &mut report);
                report.deferred += prepared.join().unwrap_or_default();
                written
            });
            self.ingestor.clear_live(self.kb);
            written?;
        }
        self.remove(&gone, &mut report)?;
        Ok(report)
    }

    fn remove(&self, gone: &[DocumentPath], report: &mut SyncReport) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        for path in gone {
            self.ingestor.lexical.delete_document(self.kb, path)?;
            self.model.vectors.delete_document(self.kb, path)?;
        }
        self.ingestor.lexical.commit()?;
        self.model.vectors.flush()?;
        let removals: Vec<(KbGeneration, DocumentPath)> = gone
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

    /// Returns how many files it left undone because the run was cancelled or the disk is
    /// nearly full.
    fn prepare_stage(
        &self,
        files: Vec<FoundFile>,
        known: &Known,
        out: SyncSender<Prepared>,
    ) -> usize {
        let total = files.len();
        for (done, file) in files.into_iter().enumerate() {
            if self
                .options
                .cancel
                .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
            {
                return total - done;
            }
            // Checked before each document, not once per run: a run of many files can fill
            // the disk itself. What is in flight (a few documents) is still written.
            if let Some(shortage) = self.ingestor.disk_shortage() {
                tracing::warn!(kb = %self.kb, waiting = total - done, "{shortage}");
                return total - done;
            }
            self.ingestor.set_live(
                self.kb,
                std::iter::once(&file.path),
                Some(LiveState::Indexing),
            );
            let prepared = self.prepare(&file, known);
            if out.send(prepared).is_err() {
                return 0;
            }
        }
        0
    }

    fn prepare(&self, file: &FoundFile, known: &Known) -> Prepared {
        let previous = known.by_path.get(&file.path);
        let served = previous.filter(|p| p.chunks > 0 && p.state != DocumentState::Skipped);
        let mut record = DocumentRecord {
            kb: self.kb.kb().clone(),
            generation: self.kb.generation(),
            path: file.path.clone(),
            size_bytes: file.size_bytes,
            mtime_ms: file.mtime_ms,
            content_hash: ContentHash::from_hex(""),
            state: DocumentState::Failed,
            error: None,
            failure: None,
            // A failed new version leaves the previous one answering (even through several
            // failures): its chunks stay counted, under its hash.
            chunks: served.map_or(0, |p| p.chunks),
            served_hash: served.map(|p| p.served_hash().clone()),
            recorded_at_ms: 0,
        };
        let limit = self.ingestor.config.max_file_bytes;
        if file.size_bytes > limit {
            record.failure = Some(FailureKind::TooLarge);
            record.error = Some(format!(
                "file is {} bytes, above the limit ingest.max_file_bytes = {limit}",
                file.size_bytes
            ));
            return Prepared::Record(record);
        }
        let bytes = match fs_err::read(&file.absolute) {
            Ok(bytes) => bytes,
            Err(err) => {
                record.failure = Some(FailureKind::Unreadable);
                record.error = Some(err.to_string());
                return Prepared::Record(record);
            }
        };
        record.content_hash = ContentHash::of_bytes(&bytes);
        if let Some(previous) = previous
            && !self.options.force
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
            record.failure = Some(FailureKind::Unsupported);
            record.chunks = 0;
            record.served_hash = None;
            record.error = Some(format!(
                "unsupported file type {:?}",
                file.path.extension().unwrap_or_default()
            ));
            return Prepared::Record(record);
        }
        let document = match self.extract(&file.path, bytes) {
            Ok(document) => document,
            Err((kind, reason)) => {
                record.failure = Some(kind);
                record.error = Some(reason);
                return Prepared::Record(record);
            }
        };
        let mut chunks = self.model.chunker.split(
            self.kb,
            &file.path,
            &record.content_hash,
            &document.title,
            &document.sections,
        );
        if chunks.is_empty() {
            record.failure = Some(FailureKind::Empty);
            record.error = Some("no text to index".to_string());
            return Prepared::Record(record);
        }
        record.state = DocumentState::Indexed;
        record.chunks = chunks.len() as u32;
        record.served_hash = None;
        let vectors = known
            .by_hash
            .get(&record.content_hash)
            .filter(|source| !self.options.force && source.path != record.path)
            .and_then(|source| self.reuse_embeddings(source, &mut chunks));
        Prepared::Chunks(record, chunks, vectors)
    }

    /// Extracts under the configured limits, on a thread of its own so that a file whose
    /// parser loops is abandoned after `ingest.max_extract_seconds`. Parsers run third-party
    /// code on untrusted bytes: a panic fails this document, not the run.
    fn extract(
        &self,
        path: &DocumentPath,
        bytes: Vec<u8>,
    ) -> Result<ExtractedDocument, (FailureKind, String)> {
        let limits = self.ingestor.limits;
        let seconds = self.ingestor.config.max_extract_seconds;
        let path_owned = path.clone();
        let outcome = run_with_deadline(Duration::from_secs(seconds), move || {
            lumbung_extract::extract_with_limits(&path_owned, &bytes, &limits)
        });
        match outcome {
            Ok(Ok(document)) => Ok(document),
            Ok(Err(lumbung_extract::Error::LimitExceeded { limit, value })) => Err((
                FailureKind::TooLarge,
                format!(
                    "over the limit ingest.{limit} = {value} (raise it in the configuration to \
                     index this file)"
                ),
            )),
            Ok(Err(err)) => Err((failure_kind(&err), err.to_string())),
            Err(Abandoned::Panicked) => {
                Err((FailureKind::Corrupt, "extraction panicked".to_string()))
            }
            Err(Abandoned::TimedOut) => {
                tracing::warn!(kb = %self.kb, path = %path, seconds, "extraction abandoned");
                Err((
                    FailureKind::Timeout,
                    format!("extraction took longer than ingest.max_extract_seconds = {seconds}"),
                ))
            }
        }
    }

    /// The chunk vectors of `source`, a document with the same content, for `chunks` of another
    /// path, whose sentences take the source's sentence embeddings: only when the stored chunks
    /// have exactly the same texts and contexts (same chunking, same headings), so that an
    /// embedding never describes other text than its chunk's.
    fn reuse_embeddings(
        &self,
        source: &DocumentRecord,
        chunks: &mut [Chunk],
    ) -> Option<Vec<Vec<f32>>> {
        if source.chunks as usize != chunks.len() {
            return None;
        }
        let ids: Vec<ChunkId> = source.chunk_ids().collect();
        let stored = self.ingestor.lexical.get_chunks(&ids).ok()?;
        let same = stored.len() == chunks.len()
            && stored.iter().zip(chunks.iter()).all(|(old, new)| {
                old.indexed_text() == new.indexed_text()
                    && old.sentences.len() == new.sentences.len()
                    && old
                        .sentences
                        .iter()
                        .zip(&new.sentences)
                        .all(|(a, b)| a.range == b.range && a.embedding.is_some())
            });
        if !same {
            return None;
        }
        let vectors = self.model.vectors.get_vectors(&ids).ok()?;
        let in_order = vectors.len() == ids.len()
            && vectors
                .iter()
                .zip(&ids)
                .all(|((id, _), wanted)| id == wanted);
        if !in_order {
            return None;
        }
        for (chunk, old) in chunks.iter_mut().zip(stored) {
            chunk.sentences = old.sentences;
        }
        Some(vectors.into_iter().map(|(_, vector)| vector).collect())
    }

    fn embed_stage(&self, input: Receiver<Prepared>, out: SyncSender<ToWrite>) {
        let group_texts = self.model.embedder.batch_size() * EMBED_GROUP_BATCHES;
        while let Ok(first) = input.recv() {
            // The documents waiting are embedded together, so that their texts are sorted by
            // length across documents; a document alone is not held back for others.
            let mut group = vec![first];
            let mut text_count = texts_to_embed(&group[0]);
            while text_count < group_texts {
                match input.try_recv() {
                    Ok(next) => {
                        text_count += texts_to_embed(&next);
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

    /// Embeds the chunks of a group of documents in one model run: each chunk's indexed text
    /// (context and text) and each of its sentences.
    fn embed_group(&self, group: Vec<Prepared>) -> Vec<ToWrite> {
        fn to_embed(item: &Prepared) -> &[Chunk] {
            match item {
                Prepared::Chunks(_, chunks, None) => chunks,
                Prepared::Chunks(_, _, Some(_)) | Prepared::Record(_) | Prepared::Unchanged(_) => {
                    &[]
                }
            }
        }
        let mut texts: Vec<String> = Vec::new();
        for chunk in group.iter().flat_map(to_embed) {
            texts.push(chunk.indexed_text());
            texts.extend(chunk.sentence_embedding_texts());
        }
        let vectors = if texts.is_empty() {
            Ok(Vec::new())
        } else {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.model
                .embedder
                .embed_passages(&texts)
                .map_err(|err| err.to_string())
        };
        let mut vectors = vectors.map(Vec::into_iter);
        let mut out = Vec::with_capacity(group.len());
        for item in group {
            match item {
                Prepared::Record(record) => out.push(ToWrite::Record(record)),
                Prepared::Unchanged(record) => out.push(ToWrite::Unchanged(record)),
                Prepared::Chunks(record, chunks, Some(reused)) => {
                    out.push(ToWrite::Embedded(Embedded {
                        record,
                        chunks,
                        vectors: reused,
                        reused_vectors: true,
                    }));
                }
                Prepared::Chunks(mut record, mut chunks, None) => match &mut vectors {
                    Ok(all) => {
                        let mut mine = Vec::with_capacity(chunks.len());
                        for chunk in &mut chunks {
                            // embed_passages returns one vector per text, in order.
                            mine.push(all.next().unwrap_or_default());
                            for sentence in &mut chunk.sentences {
                                let vector = all.next().unwrap_or_default();
                                sentence.embedding = Some(QuantizedVector::quantize(&vector));
                            }
                        }
                        out.push(ToWrite::Embedded(Embedded {
                            record,
                            chunks,
                            vectors: mine,
                            reused_vectors: false,
                        }));
                    }
                    Err(reason) => {
                        record.state = DocumentState::Failed;
                        record.failure = Some(FailureKind::Embedding);
                        record.error = Some(format!("embedding failed: {reason}"));
                        out.push(ToWrite::Record(record));
                    }
                },
            }
        }
        out
    }

    fn write_stage(&self, input: Receiver<ToWrite>, report: &mut SyncReport) -> Result<()> {
        let mut pending: Vec<(DocumentRecord, Written)> = Vec::new();
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
            let (record, written) = match item {
                ToWrite::Unchanged(record) => (record, Written::Unchanged),
                ToWrite::Record(record) => (record, Written::Record),
                ToWrite::Embedded(Embedded {
                    record,
                    chunks,
                    vectors,
                    reused_vectors,
                }) => {
                    let points: Vec<VectorPoint> = chunks
                        .iter()
                        .zip(vectors)
                        .map(|(chunk, vector)| VectorPoint::of_chunk(chunk, vector))
                        .collect();
                    self.model.vectors.upsert_document(
                        self.kb,
                        &record.path,
                        &record.content_hash,
                        &points,
                    )?;
                    self.ingestor
                        .lexical
                        .replace_document(self.kb, &record.path, &chunks)?;
                    (record, Written::Chunks { reused_vectors })
                }
            };
            pending.push((record, written));
            if pending.len() >= MAX_DOCUMENTS_PER_COMMIT {
                self.commit(&mut pending, report)?;
            }
        }
        self.commit(&mut pending, report)
    }

    /// Makes the new versions visible in both indexes, then drops the old versions' vectors,
    /// then records the documents: the catalog row is written last. Until the lexical commit a
    /// search sees only old versions, after it only new ones (a search reads one lexical
    /// snapshot and drops vector hits that are not in it).
    fn commit(
        &self,
        pending: &mut Vec<(DocumentRecord, Written)>,
        report: &mut SyncReport,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        self.model.vectors.flush()?;
        self.ingestor.lexical.commit()?;
        let replaced: Vec<&DocumentRecord> = pending
            .iter()
            .filter(|(_, written)| matches!(written, Written::Chunks { .. }))
            .map(|(record, _)| record)
            .collect();
        if !replaced.is_empty() {
            for record in replaced {
                self.model.vectors.delete_other_versions(
                    self.kb,
                    &record.path,
                    &record.content_hash,
                )?;
            }
            self.model.vectors.flush()?;
        }
        let recorded_at_ms = now_ms();
        let records: Vec<DocumentRecord> = pending
            .iter()
            .map(|(record, _)| DocumentRecord {
                recorded_at_ms,
                ..record.clone()
            })
            .collect();
        self.ingestor.catalog.apply(&records, &[])?;
        self.ingestor
            .set_live(self.kb, records.iter().map(|record| &record.path), None);
        for (record, written) in pending.drain(..) {
            let outcome = match (record.state, written) {
                (_, Written::Unchanged) => Outcome::Unchanged,
                (DocumentState::Indexed, written) => Outcome::Indexed {
                    chunks: record.chunks,
                    reused_vectors: matches!(
                        written,
                        Written::Chunks {
                            reused_vectors: true
                        }
                    ),
                },
                (DocumentState::Failed, _) => {
                    Outcome::Failed(record.error.clone().unwrap_or_default())
                }
                (DocumentState::Skipped, _) => {
                    Outcome::Skipped(record.error.clone().unwrap_or_default())
                }
            };
            self.report(&record.path, outcome, report);
        }
        Ok(())
    }
}

/// How a pending document reached the writer.
#[derive(Clone, Copy)]
enum Written {
    Unchanged,
    /// A row alone: failed or skipped.
    Record,
    Chunks {
        reused_vectors: bool,
    },
}

/// Texts the embed stage has to run through the model for this item: each chunk and each of
/// its sentences.
fn texts_to_embed(item: &Prepared) -> usize {
    match item {
        Prepared::Chunks(_, chunks, None) => chunks.iter().map(|c| 1 + c.sentences.len()).sum(),
        Prepared::Chunks(_, _, Some(_)) | Prepared::Record(_) | Prepared::Unchanged(_) => 0,
    }
}

/// Why [`run_with_deadline`] has no result.
#[derive(Debug, PartialEq, Eq)]
enum Abandoned {
    Panicked,
    TimedOut,
}

/// The kind of an extraction failure other than a limit.
fn failure_kind(err: &lumbung_extract::Error) -> FailureKind {
    use lumbung_extract::Error;
    match err {
        Error::Unsupported { .. } => FailureKind::Unsupported,
        Error::LimitExceeded { .. } => FailureKind::TooLarge,
        Error::Encrypted { .. } => FailureKind::Encrypted,
        Error::Empty => FailureKind::Empty,
        Error::Binary { .. }
        | Error::Pdf(_)
        | Error::Docx(_)
        | Error::Spreadsheet { .. }
        | Error::Html(_) => FailureKind::Corrupt,
    }
}

/// Runs `work` on a thread of its own and waits at most `timeout` for it. A thread cannot be
/// killed: on time-out it is left to finish (or spin) on its own and its result is dropped.
fn run_with_deadline<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Abandoned> {
    let (tx, rx) = sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("lumbung-extract".to_string())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(work));
            let _ = tx.send(outcome);
        });
    if spawned.is_err() {
        return Err(Abandoned::Panicked);
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(Abandoned::Panicked),
        Err(RecvTimeoutError::Timeout) => Err(Abandoned::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_returns_results_and_abandons_slow_or_panicking_work() {
        assert_eq!(run_with_deadline(Duration::from_secs(5), || 7), Ok(7));
        let slow = run_with_deadline(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(2));
        });
        assert_eq!(slow, Err(Abandoned::TimedOut));
        let panicked = run_with_deadline(Duration::from_secs(5), || -> u8 { panic!("parser") });
        assert_eq!(panicked, Err(Abandoned::Panicked));
    }
}
