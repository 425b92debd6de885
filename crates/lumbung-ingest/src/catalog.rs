//! What is indexed: one row per document, in an embedded transactional store (redb).
//!
//! A row is written only after both indexes have committed the document's chunks, so after a
//! crash a document without a row (or with an older hash) is simply processed again; chunk ids
//! are deterministic, so the redo overwrites instead of duplicating.

use std::path::Path;

use lumbung_core::{ChunkId, ContentHash, DocumentPath, KbName};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Key: `kb \0 path`; value: a JSON `DocumentRecord`.
const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("documents_v1");

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
    /// When this row was written, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl DocumentRecord {
    /// The ids of the chunks this version of the document was indexed as, in order.
    pub fn chunk_ids(&self) -> impl Iterator<Item = ChunkId> + '_ {
        (0..self.chunks)
            .map(|ordinal| ChunkId::derive(&self.kb, &self.path, &self.content_hash, ordinal))
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
}

fn key(kb: &KbName, path: &DocumentPath) -> String {
    format!("{kb}\0{path}")
}

impl Catalog {
    /// Opens or creates the catalog file. Fails if another process holds it open.
    pub fn open(path: &Path) -> Result<Catalog> {
        let db = redb::Database::create(path).map_err(|err| Error::catalog(path, err))?;
        let txn = db.begin_write().map_err(|err| Error::catalog(path, err))?;
        txn.open_table(DOCUMENTS)
            .map_err(|err| Error::catalog(path, err))?;
        txn.commit().map_err(|err| Error::catalog(path, err))?;
        Ok(Catalog { db })
    }

    pub fn get(&self, kb: &KbName, path: &DocumentPath) -> Result<Option<DocumentRecord>> {
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
        let value = table
            .get(key(kb, path).as_str())
            .map_err(Error::from_redb)?;
        value.map(|bytes| decode(bytes.value())).transpose()
    }

    /// Every row of one knowledge base, ordered by path.
    pub fn list(&self, kb: &KbName) -> Result<Vec<DocumentRecord>> {
        let prefix = format!("{kb}\0");
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

    /// The knowledge bases that have at least one row.
    pub fn knowledge_bases(&self) -> Result<Vec<KbName>> {
        let txn = self.db.begin_read().map_err(Error::from_redb)?;
        let table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
        let mut kbs: Vec<KbName> = Vec::new();
        for entry in table.iter().map_err(Error::from_redb)? {
            let (key, _) = entry.map_err(Error::from_redb)?;
            let name = key
                .value()
                .split('\0')
                .next()
                .unwrap_or_default()
                .to_string();
            if kbs.last().map(KbName::as_str) != Some(name.as_str()) {
                kbs.push(KbName::new(name).map_err(|err| Error::CorruptCatalog(err.to_string()))?);
            }
        }
        Ok(kbs)
    }

    /// Writes rows and removes rows in one transaction.
    pub fn apply(
        &self,
        upserts: &[DocumentRecord],
        removals: &[(KbName, DocumentPath)],
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(Error::from_redb)?;
        {
            let mut table = txn.open_table(DOCUMENTS).map_err(Error::from_redb)?;
            for record in upserts {
                let bytes = serde_json::to_vec(record)
                    .map_err(|err| Error::CorruptCatalog(err.to_string()))?;
                table
                    .insert(key(&record.kb, &record.path).as_str(), bytes.as_slice())
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

fn decode(bytes: &[u8]) -> Result<DocumentRecord> {
    serde_json::from_slice(bytes).map_err(|err| Error::CorruptCatalog(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kb: &str, path: &str, state: DocumentState) -> DocumentRecord {
        DocumentRecord {
            kb: KbName::new(kb).unwrap(),
            path: DocumentPath::new(path).unwrap(),
            size_bytes: 10,
            mtime_ms: 1,
            content_hash: ContentHash::of_bytes(path.as_bytes()),
            state,
            error: None,
            failure: None,
            chunks: 2,
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
        let a = KbName::new("a").unwrap();
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
}
