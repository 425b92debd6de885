use std::path::{Path, PathBuf};

/// Errors that stop an ingest run. A single bad file is never one of these: it is recorded in
/// the catalog as failed and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog {path}: {reason}")]
    CatalogOpen { path: PathBuf, reason: String },
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("catalog holds unreadable data: {0}")]
    CorruptCatalog(String),
    #[error("index: {0}")]
    Index(#[from] lumbung_index::Error),
    #[error("embedding: {0}")]
    Embed(#[from] lumbung_embed::Error),
    #[error("unknown knowledge base {0:?}")]
    UnknownKb(String),
    #[error("rebuild {job} is under way; cancel it or wait for it to end")]
    JobRunning { job: String },
    #[error("no rebuild of {0:?} is under way")]
    NoJob(String),
    #[error(
        "rebuilt generation {generation} does not match the catalog, so it was discarded: {problems}"
    )]
    BuildCheck {
        generation: String,
        problems: String,
    },
    #[error("knowledge base {0:?} already exists")]
    KbExists(String),
    #[error("backup: {0}")]
    Backup(String),
    /// A generation or a `kb.toml` names an embedding model this process has not loaded.
    #[error("embedding model {model:?}: {reason}")]
    UnknownModel { model: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn catalog(path: &Path, err: impl Into<redb::Error>) -> Self {
        let reason = match err.into() {
            redb::Error::DatabaseAlreadyOpen => {
                "already open in another process (is `lumbung serve` running?)".to_string()
            }
            other => other.to_string(),
        };
        Error::CatalogOpen {
            path: path.to_path_buf(),
            reason,
        }
    }

    pub(crate) fn from_redb(err: impl Into<redb::Error>) -> Self {
        Error::Catalog(err.into().to_string())
    }
}
