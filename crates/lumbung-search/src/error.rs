/// Errors of search and answering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is out of bounds; `field` names it as the API does.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("index: {0}")]
    Index(#[from] lumbung_index::Error),
    #[error("embedding: {0}")]
    Embed(#[from] lumbung_embed::Error),
    /// The request needs a part this server was not configured with.
    #[error("{0}")]
    Unavailable(String),
    /// Too much work waits for the CPU: retry a little later.
    #[error("overloaded: {0}; retry shortly")]
    Overloaded(String),
    /// The CPU pool's task panicked or was cancelled.
    #[error("search task failed: {0}")]
    Task(String),
    /// Answer-decision parameters that cannot be read or fitted.
    #[error("answer decision: {0}")]
    Decision(String),
    /// An evaluation collection that cannot be read; the message names the file and line.
    #[error("evaluation collection: {0}")]
    Collection(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
