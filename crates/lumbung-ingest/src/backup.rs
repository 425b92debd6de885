//! Backups of what the indexes hold, taken while the service runs, and their restore into an
//! empty data directory on any machine.
//!
//! A backup is logical, not a copy of the engines' files: for each knowledge base, the catalog
//! rows of its active generation with each document's chunks (text, citation, language,
//! sentence embeddings) and chunk vectors, read through the same traits searches use. So it is
//! taken from either backend (embedded or a Qdrant cluster) and restored into either, and
//! nothing is embedded again. Syncs and rebuilds go on while it is taken: each document is
//! backed up as one version (its row, chunks and vectors agree), and each knowledge base as one
//! generation.
//!
//! Layout: `MANIFEST.json` (written last: without it a backup is incomplete), and one
//! `knowledge-bases/<name>.jsonl` per knowledge base, a document per line.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use lumbung_core::{Chunk, ChunkId, Generation, KbGeneration, KbName, ModelName};
use lumbung_index::{VectorPoint, VectorStore};
use serde::{Deserialize, Serialize};

use crate::catalog::{DocumentRecord, DocumentState};
use crate::{Error, Ingestor, Result, now_ms};

/// What `MANIFEST.json` says a backup is.
const BACKUP_FORMAT: &str = "lumbung-backup";
/// The layout this lumbung writes and reads; a newer one is refused. 2: each knowledge
/// base's model and dimension (in 1, the manifest's hold for all).
const BACKUP_VERSION: u32 = 2;

const MANIFEST_FILE: &str = "MANIFEST.json";
const KB_FOLDER: &str = "knowledge-bases";
/// Files of the data directory copied along (the calibrated answer decision).
const FILES_FOLDER: &str = "files";
/// Documents restored between two commits.
const RESTORE_BATCH: usize = 64;
/// Times a knowledge base is read again because a rebuild swapped its generation meanwhile.
const BACKUP_ATTEMPTS: usize = 3;
/// Times a document is read again while a sync replaces it (a commit takes well under this
/// many retries' time), and the wait between two.
const READ_ATTEMPTS: usize = 600;
const READ_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: String,
    pub version: u32,
    pub created_at_ms: i64,
    /// The lumbung that wrote it.
    pub lumbung_version: String,
    /// The service's default embedding model (`[embedding]`) and its dimension; in version 1
    /// every knowledge base's.
    pub embedding_model: String,
    pub dimension: usize,
    pub knowledge_bases: Vec<BackedUpKb>,
    /// Files of the data directory copied into `files/`.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackedUpKb {
    pub name: KbName,
    /// Its active generation when it was read; restored as the same generation.
    pub generation: Generation,
    pub documents: u64,
    pub chunks: u64,
    /// The model its vectors come from, and their dimension (absent in version 1: the
    /// manifest's): a restore into a service that does not load that model is refused.
    #[serde(default)]
    pub model: Option<ModelName>,
    #[serde(default)]
    pub dimension: Option<usize>,
}

impl BackupManifest {
    /// The model and dimension of `kb`'s vectors.
    fn model_of(&self, kb: &BackedUpKb) -> Result<(ModelName, usize)> {
        let model = match &kb.model {
            Some(model) => model.clone(),
            None => ModelName::new(self.embedding_model.as_str())
                .map_err(|err| Error::Backup(format!("the manifest's model: {err}")))?,
        };
        Ok((model, kb.dimension.unwrap_or(self.dimension)))
    }
}

/// One line of a knowledge base's file: a catalog row with its chunks and their vectors.
#[derive(Serialize, Deserialize)]
struct BackedUpDocument {
    record: DocumentRecord,
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
}

impl Ingestor {
    /// Writes a backup of every knowledge base's active generation into `dir` (new or empty),
    /// with copies of `files` (paths in the data directory), while searches and syncs go on.
    pub fn backup(&self, dir: &Path, files: &[PathBuf]) -> Result<BackupManifest> {
        let not_empty = fs_err::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if not_empty {
            return Err(Error::Backup(format!(
                "{} is not empty: a backup goes into a new or empty folder",
                dir.display()
            )));
        }
        let kb_dir = dir.join(KB_FOLDER);
        fs_err::create_dir_all(&kb_dir).map_err(|err| Error::io(&kb_dir, err))?;
        let mut manifest = BackupManifest {
            format: BACKUP_FORMAT.to_string(),
            version: BACKUP_VERSION,
            created_at_ms: now_ms(),
            lumbung_version: env!("CARGO_PKG_VERSION").to_string(),
            embedding_model: self.models.legacy().to_string(),
            dimension: self.models.get(self.models.legacy())?.embedder.dimension(),
            knowledge_bases: Vec::new(),
            files: Vec::new(),
        };
        for kb in self.knowledge_bases()? {
            manifest
                .knowledge_bases
                .push(self.backup_kb(&kb, &kb_dir.join(format!("{kb}.jsonl")))?);
        }
        if !files.is_empty() {
            let files_dir = dir.join(FILES_FOLDER);
            fs_err::create_dir_all(&files_dir).map_err(|err| Error::io(&files_dir, err))?;
            for file in files.iter().filter(|file| file.is_file()) {
                let Some(name) = file.file_name() else {
                    continue;
                };
                let target = files_dir.join(name);
                fs_err::copy(file, &target).map_err(|err| Error::io(&target, err))?;
                manifest.files.push(name.to_string_lossy().into_owned());
            }
        }
        let staged = dir.join(format!("{MANIFEST_FILE}.staged"));
        write_synced(
            &staged,
            &serde_json::to_vec_pretty(&manifest).map_err(backup_error)?,
        )?;
        fs_err::rename(&staged, dir.join(MANIFEST_FILE))
            .map_err(|err| Error::io(&dir.join(MANIFEST_FILE), err))?;
        Ok(manifest)
    }

    /// One knowledge base's active generation into `file`. Taken again from the start when a
    /// rebuild swaps in another generation meanwhile.
    fn backup_kb(&self, kb: &KbName, file: &Path) -> Result<BackedUpKb> {
        for _ in 0..BACKUP_ATTEMPTS {
            let active = self.active_generation(kb)?;
            let backed_up = self.backup_generation(&active, file)?;
            if self.active_generation(kb)? == active {
                return Ok(backed_up);
            }
        }
        Err(Error::Backup(format!(
            "{kb}: its active generation changed during each of {BACKUP_ATTEMPTS} attempts"
        )))
    }

    /// The documents of one generation, each as it was at one moment: syncs go on meanwhile,
    /// so a document replaced between reading its row and reading its chunks is read again.
    fn backup_generation(&self, active: &KbGeneration, file: &Path) -> Result<BackedUpKb> {
        let model = self.parts_of(active)?;
        let mut out =
            BufWriter::new(fs_err::File::create(file).map_err(|err| Error::io(file, err))?);
        let mut backed_up = BackedUpKb {
            name: active.kb().clone(),
            generation: active.generation(),
            documents: 0,
            chunks: 0,
            model: Some(model.name.clone()),
            dimension: Some(model.embedder.dimension()),
        };
        for listed in self.catalog.list(active)? {
            let Some(line) = self.read_document(active, model.vectors.as_ref(), listed)? else {
                continue;
            };
            backed_up.documents += 1;
            backed_up.chunks += line.chunks.len() as u64;
            serde_json::to_writer(&mut out, &line).map_err(backup_error)?;
            out.write_all(b"\n").map_err(|err| Error::io(file, err))?;
        }
        let out = out
            .into_inner()
            .map_err(|err| Error::io(file, err.into_error()))?;
        out.sync_all().map_err(|err| Error::io(file, err))?;
        Ok(backed_up)
    }

    /// A document's row with its chunks and vectors, all of one version; `None` when it was
    /// removed meanwhile. A sync commits a new version's chunks before it writes its row, so
    /// the chunks of the row read may be gone for a moment: the row is then read again.
    fn read_document(
        &self,
        active: &KbGeneration,
        vectors: &dyn VectorStore,
        mut record: DocumentRecord,
    ) -> Result<Option<BackedUpDocument>> {
        for _ in 0..READ_ATTEMPTS {
            let ids: Vec<ChunkId> = match record.state {
                DocumentState::Indexed | DocumentState::Failed => record.chunk_ids().collect(),
                DocumentState::Skipped => Vec::new(),
            };
            let chunks = self.lexical.get_chunks(&ids)?;
            let vectors: Vec<Vec<f32>> = vectors
                .get_vectors(&ids)?
                .into_iter()
                .map(|(_, vector)| vector)
                .collect();
            if chunks.len() == ids.len() && vectors.len() == ids.len() {
                return Ok(Some(BackedUpDocument {
                    record,
                    chunks,
                    vectors,
                }));
            }
            match self.catalog.get(active, &record.path)? {
                None => return Ok(None),
                Some(again) if again != record => record = again,
                Some(_) => std::thread::sleep(READ_RETRY),
            }
        }
        Err(Error::Backup(format!(
            "{active}/{}: the catalog records {} chunks that the indexes do not hold; \
             `lumbung check` lists what differs",
            record.path, record.chunks
        )))
    }

    /// Reads the manifest of the backup in `dir`, refusing what this lumbung cannot restore:
    /// an incomplete backup, another format, a newer version, a knowledge base embedded with a
    /// model this service does not load (or loads with another dimension).
    pub fn check_backup(&self, dir: &Path) -> Result<BackupManifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = match fs_err::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Backup(format!(
                    "{} holds no {MANIFEST_FILE}: not a lumbung backup, or one that did not \
                     finish",
                    dir.display()
                )));
            }
            Err(err) => return Err(Error::io(&path, err)),
        };
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_slice(&text)
            .map_err(|err| Error::Backup(format!("{}: {err}", path.display())))?;
        if header.format != BACKUP_FORMAT {
            return Err(Error::Backup(format!(
                "{}: format {:?} is not {BACKUP_FORMAT:?}",
                path.display(),
                header.format
            )));
        }
        if header.version > BACKUP_VERSION {
            return Err(Error::Backup(format!(
                "{}: backup version {} was written by a newer lumbung; this one restores \
                 version {BACKUP_VERSION}",
                path.display(),
                header.version
            )));
        }
        let manifest: BackupManifest = serde_json::from_slice(&text)
            .map_err(|err| Error::Backup(format!("{}: {err}", path.display())))?;
        for kb in &manifest.knowledge_bases {
            let (model, dimension) = manifest.model_of(kb)?;
            let loaded = self.models.get(&model).map_err(|_| {
                Error::Backup(format!(
                    "{}'s vectors come from embedding model {model} ({dimension} dimensions), \
                     which this service does not load: configure it ([embedding] or \
                     [embedding_models]) to restore the backup",
                    kb.name
                ))
            })?;
            if loaded.embedder.dimension() != dimension {
                return Err(Error::Backup(format!(
                    "{}'s vectors come from embedding model {model} with {dimension} \
                     dimensions; this service's {model} has {}: configure the same model to \
                     restore the backup",
                    kb.name,
                    loaded.embedder.dimension()
                )));
            }
        }
        Ok(manifest)
    }

    /// Restores the backup in `dir` into this ingestor's empty catalog and indexes, as the
    /// generations it was taken from; returns its manifest. Nothing is embedded. Files of the
    /// data directory it carries are in `dir/files/`, for the caller to put back.
    pub fn restore(&self, dir: &Path) -> Result<BackupManifest> {
        let manifest = self.check_backup(dir)?;
        if !self.catalog.knowledge_bases()?.is_empty() {
            return Err(Error::Backup(
                "the data directory already holds knowledge bases: restore into an empty one"
                    .to_string(),
            ));
        }
        for backed_up in &manifest.knowledge_bases {
            let target = KbGeneration::new(backed_up.name.clone(), backed_up.generation);
            let file = dir
                .join(KB_FOLDER)
                .join(format!("{}.jsonl", backed_up.name));
            let (model, _) = manifest.model_of(backed_up)?;
            self.restore_kb(&target, &model, &file)?;
            let problems = self.verify_generation(&target)?;
            if !problems.is_empty() {
                return Err(Error::Backup(format!(
                    "{target} does not check after its restore: {}",
                    problems.join("; ")
                )));
            }
        }
        self.refresh_registry(None)?;
        Ok(manifest)
    }

    fn restore_kb(&self, target: &KbGeneration, model: &ModelName, file: &Path) -> Result<()> {
        let generation = target.generation();
        let store = &self.models.get(model)?.vectors;
        self.catalog.update_generations(
            target.kb(),
            |generations| {
                generations.active = generation;
                generations.last = generation;
                generations.models.insert(generation, model.clone());
                Ok(())
            },
            None,
        )?;
        let reader =
            std::io::BufReader::new(fs_err::File::open(file).map_err(|err| Error::io(file, err))?);
        let mut records = Vec::with_capacity(RESTORE_BATCH);
        for (number, line) in reader.lines().enumerate() {
            let line = line.map_err(|err| Error::io(file, err))?;
            let document: BackedUpDocument = serde_json::from_str(&line).map_err(|err| {
                Error::Backup(format!("{}, line {}: {err}", file.display(), number + 1))
            })?;
            let BackedUpDocument {
                record,
                chunks,
                vectors,
            } = document;
            if record.kb != *target.kb() || record.generation != generation {
                return Err(Error::Backup(format!(
                    "{}, line {}: a row of {} in the file of {target}",
                    file.display(),
                    number + 1,
                    record.kb_generation()
                )));
            }
            if !chunks.is_empty() {
                let points: Vec<VectorPoint> = chunks
                    .iter()
                    .zip(vectors)
                    .map(|(chunk, vector)| VectorPoint::of_chunk(chunk, vector))
                    .collect();
                store.upsert_document(target, &record.path, &record.content_hash, &points)?;
                self.lexical
                    .replace_document(target, &record.path, &chunks)?;
            }
            records.push(record);
            if records.len() >= RESTORE_BATCH {
                self.commit_restored(store.as_ref(), &mut records)?;
            }
        }
        self.commit_restored(store.as_ref(), &mut records)
    }

    /// As a sync does: both indexes durable before the rows that describe them.
    fn commit_restored(
        &self,
        vectors: &dyn VectorStore,
        records: &mut Vec<DocumentRecord>,
    ) -> Result<()> {
        vectors.flush()?;
        self.lexical.commit()?;
        self.catalog.apply(records, &[])?;
        records.clear();
        Ok(())
    }
}

fn backup_error(err: serde_json::Error) -> Error {
    Error::Backup(err.to_string())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs_err::File::create(path).map_err(|err| Error::io(path, err))?;
    file.write_all(bytes).map_err(|err| Error::io(path, err))?;
    file.sync_all().map_err(|err| Error::io(path, err))
}
