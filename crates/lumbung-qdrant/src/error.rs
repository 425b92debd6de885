/// Errors of the Qdrant backend. Calls through the `VectorStore` trait return them as
/// `lumbung_index::Error` (`From` below), so that callers see one vocabulary whichever store
/// answers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster could not be reached, or kept failing with a transient status, for as long
    /// as the call's retry budget allowed.
    #[error("{url} unreachable after {attempts} attempts in {elapsed_ms} ms ({operation}): {last}")]
    Unreachable {
        url: String,
        operation: &'static str,
        attempts: u32,
        elapsed_ms: u64,
        last: String,
    },
    /// Qdrant refused the call for a reason retrying does not mend.
    #[error("{operation} refused by Qdrant: {status}")]
    Refused {
        operation: &'static str,
        status: tonic::Status,
    },
    /// The client could not be built or a value not converted.
    #[error("qdrant client: {0}")]
    Client(String),
    /// The collection exists with settings lumbung cannot use (another dimension or distance).
    #[error("collection {collection}: {reason}")]
    Collection { collection: String, reason: String },
    /// A point read back without what lumbung wrote into it.
    #[error("invalid stored point: {0}")]
    InvalidPoint(String),
    /// A background runtime for the client could not be started.
    #[error("client runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for lumbung_index::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Unreachable { .. } => lumbung_index::Error::Unavailable(err.to_string()),
            Error::InvalidPoint(reason) => lumbung_index::Error::InvalidStoredData(reason),
            Error::Refused { .. }
            | Error::Client(_)
            | Error::Collection { .. }
            | Error::Runtime(_) => lumbung_index::Error::Remote(err.to_string()),
        }
    }
}
