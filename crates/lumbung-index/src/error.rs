/// Errors raised by the lexical index and the vector store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tantivy index failed: opening, writing, committing or searching.
    #[error("lexical index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The embedded Qdrant shard failed.
    #[error("vector store: {0}")]
    Qdrant(#[from] qdrant_edge::OperationError),
    /// A file or folder of an index could not be created or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A vector, or the store opened on disk, has another dimension than the one expected.
    #[error("vector dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch { expected: usize, actual: usize },
    /// The caller passed something the index cannot accept (chunks of another document, a
    /// non-finite vector component, a zero dimension).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The index on disk was written in another format (by another version of lumbung) and
    /// has to be rebuilt from the source files.
    #[error("index in an incompatible format: {0}")]
    IncompatibleFormat(String),
    /// What the index holds on disk cannot be turned back into domain values.
    #[error("invalid stored data: {0}")]
    InvalidStoredData(String),
    /// The vector store's server could not be reached (or kept failing) within the time its
    /// configuration allows: a search answers UNAVAILABLE, an ingest run stops and is redone.
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    /// The vector store's server refused or failed a call for a reason retrying will not mend.
    #[error("vector store server: {0}")]
    Remote(String),
    /// A thread panicked while holding the index writer, so staged changes may be partial.
    #[error("index writer poisoned by an earlier panic")]
    WriterPoisoned,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
