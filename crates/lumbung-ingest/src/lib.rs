//! From files in watched folders to chunks in both indexes: scan, diff against the catalog,
//! extract, chunk, embed, write, and only then record the document as done.
//!
//! This crate must not depend on the transport (tonic, protobuf) nor on search.

mod catalog;
mod error;
mod pipeline;
mod scan;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use lumbung_core::{IngestConfig, KbName};
use lumbung_embed::{Chunker, Embedder};
use lumbung_index::{LexicalIndex, VectorStore};

pub use catalog::{Catalog, DocumentRecord, DocumentState, KbSummary};
pub use error::{Error, Result};
pub use pipeline::{Outcome, Progress, SyncReport};

/// Keeps the catalog and both indexes in step with the folders under the watched root.
pub struct Ingestor {
    root: PathBuf,
    catalog: Catalog,
    lexical: Arc<dyn LexicalIndex>,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<Embedder>,
    chunker: Chunker,
    config: IngestConfig,
    /// One sync at a time: two concurrent runs over the same documents would race on the
    /// catalog rows.
    running: Mutex<()>,
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
            embedder.tokenizer().clone(),
            config.chunk_max_tokens,
            config.chunk_overlap_tokens,
        )?;
        Ok(Ingestor {
            root: root.to_path_buf(),
            catalog,
            lexical,
            vectors,
            embedder,
            chunker,
            config,
            running: Mutex::new(()),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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
        let mut report = SyncReport::default();
        for kb in self.knowledge_bases()? {
            report.add(&self.sync_kb_unlocked(&kb, force, progress)?);
        }
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
        self.sync_kb_unlocked(kb, force, progress)
    }

    fn sync_kb_unlocked(
        &self,
        kb: &KbName,
        force: bool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SyncReport> {
        let _running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let folder = self.root.join(kb.as_str());
        let files = if folder.is_dir() {
            scan::files_of(&folder)?
        } else {
            Vec::new()
        };
        pipeline::Run {
            ingestor: self,
            kb,
            force,
            progress,
        }
        .execute(files)
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
