use std::time::Duration;

use axum::http::StatusCode;
use tonic::{Code, Status};

/// The metadata key of gRPC's retry pushback, and the wait an overloaded engine asks for.
const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// Everything a handler can fail with; `From<Error> for Status` is the one place that decides
/// the gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("knowledge base {0:?} not found")]
    KbNotFound(String),
    /// No token, or one the token file does not hold.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A token whose role does not allow the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A limit of the caller's token or of the service; `retry_after` is sent as the retry
    /// pushback.
    #[error("resource exhausted: {reason}")]
    ResourceExhausted {
        reason: String,
        retry_after: Duration,
    },
    #[error(transparent)]
    Search(#[from] lumbung_search::Error),
    #[error(transparent)]
    Ingest(#[from] lumbung_ingest::Error),
    #[error(transparent)]
    Index(#[from] lumbung_index::Error),
    #[error(transparent)]
    Qdrant(#[from] lumbung_qdrant::Error),
    #[error(transparent)]
    Embed(#[from] lumbung_embed::Error),
    #[error(transparent)]
    Core(#[from] lumbung_core::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("gap log: {0}")]
    GapStore(#[from] redb::Error),
    #[error("gap log holds unreadable data: {0}")]
    GapCorrupt(#[from] serde_json::Error),
    /// What the cluster's directory holds cannot be read or written.
    #[error("cluster directory: {0}")]
    ClusterDirectory(String),
    /// A request over `server.max_request_bytes` (tonic refuses gRPC's with the same code).
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The call needs a part this node does not run (a query node has no catalog).
    #[error("{0}")]
    WrongRole(String),
    /// A background task failed to complete.
    #[error("task failed: {0}")]
    Task(String),
    #[error("server failed: {0}")]
    Startup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl Error {
    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::KbNotFound(_) => Code::NotFound,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::ResourceExhausted { .. } => Code::ResourceExhausted,
            Error::TooLarge(_) => Code::OutOfRange,
            Error::WrongRole(_) => Code::FailedPrecondition,
            Error::Search(lumbung_search::Error::Index(index))
            | Error::Ingest(lumbung_ingest::Error::Index(index))
            | Error::Index(index) => match index {
                lumbung_index::Error::Unavailable(_) => Code::Unavailable,
                _ => Code::Internal,
            },
            Error::Qdrant(qdrant) => match qdrant {
                lumbung_qdrant::Error::Unreachable { .. } => Code::Unavailable,
                _ => Code::Internal,
            },
            Error::Search(search) => match search {
                lumbung_search::Error::InvalidArgument { .. } => Code::InvalidArgument,
                lumbung_search::Error::Unavailable(_) => Code::FailedPrecondition,
                lumbung_search::Error::Overloaded(_) => Code::ResourceExhausted,
                lumbung_search::Error::Index(_)
                | lumbung_search::Error::Embed(_)
                | lumbung_search::Error::Decision(_)
                | lumbung_search::Error::Task(_)
                | lumbung_search::Error::Collection(_) => Code::Internal,
            },
            Error::Ingest(ingest) => match ingest {
                lumbung_ingest::Error::UnknownKb(_) | lumbung_ingest::Error::NoJob(_) => {
                    Code::NotFound
                }
                lumbung_ingest::Error::JobRunning { .. } => Code::FailedPrecondition,
                lumbung_ingest::Error::KbExists(_) => Code::AlreadyExists,
                lumbung_ingest::Error::Backup(_) | lumbung_ingest::Error::UnknownModel { .. } => {
                    Code::FailedPrecondition
                }
                lumbung_ingest::Error::BuildCheck { .. }
                | lumbung_ingest::Error::Io { .. }
                | lumbung_ingest::Error::CatalogOpen { .. }
                | lumbung_ingest::Error::Catalog(_)
                | lumbung_ingest::Error::CorruptCatalog(_)
                | lumbung_ingest::Error::Index(_)
                | lumbung_ingest::Error::Embed(_) => Code::Internal,
            },
            Error::Core(core) => match core {
                lumbung_core::Error::InvalidArgument { .. } => Code::InvalidArgument,
                lumbung_core::Error::Config { .. } => Code::Internal,
            },
            Error::Embed(_)
            | Error::Io(_)
            | Error::GapStore(_)
            | Error::GapCorrupt(_)
            | Error::Task(_)
            | Error::ClusterDirectory(_)
            | Error::Startup(_) => Code::Internal,
        }
    }
}

/// The HTTP status the HTTP API answers a gRPC code with (as Google's HTTP mapping of
/// `google.rpc.Code` does), so that both faces of one failure agree.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 has no name: nginx's "client closed request", as Google's mapping uses it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code's name as the proto enum `google.rpc.Code` spells it (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// How long a refused caller should wait, from the retry pushback a status carries.
pub fn retry_pushback(status: &Status) -> Option<Duration> {
    status
        .metadata()
        .get(RETRY_PUSHBACK)?
        .to_str()
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let code = err.code();
        if code == Code::Internal {
            tracing::error!(error = %err, "internal error");
        }
        let retry_after = match &err {
            Error::ResourceExhausted { retry_after, .. } => *retry_after,
            _ => RETRY_AFTER,
        };
        let mut status = Status::new(code, err.to_string());
        if code == Code::ResourceExhausted {
            // gRPC's retry pushback (gRFC A6): when to try again.
            let millis = u32::try_from(retry_after.as_millis().max(1)).unwrap_or(u32::MAX);
            status.metadata_mut().insert(RETRY_PUSHBACK, millis.into());
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_api_conventions() {
        let status = Status::from(Error::invalid("top_k", "0 is outside 1..=100"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("top_k"));
        assert_eq!(
            Status::from(Error::KbNotFound("x".into())).code(),
            Code::NotFound
        );
        let search = lumbung_search::Error::invalid("query", "must not be empty");
        assert_eq!(
            Status::from(Error::from(search)).code(),
            Code::InvalidArgument
        );
        let core = lumbung_core::Error::invalid("knowledge_base", "bad");
        assert_eq!(
            Status::from(Error::from(core)).code(),
            Code::InvalidArgument
        );
        let ingest = lumbung_ingest::Error::UnknownKb("x".into());
        assert_eq!(Status::from(Error::from(ingest)).code(), Code::NotFound);
        let overloaded = Status::from(Error::from(lumbung_search::Error::Overloaded(
            "12 tasks already wait".into(),
        )));
        assert_eq!(overloaded.code(), Code::ResourceExhausted);
        assert_eq!(
            overloaded.metadata().get(RETRY_PUSHBACK).unwrap(),
            &RETRY_AFTER.as_millis().to_string()
        );
        let limited = Status::from(Error::ResourceExhausted {
            reason: "token \"bot\" has reached requests_per_second = 2".into(),
            retry_after: Duration::from_millis(320),
        });
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert_eq!(limited.metadata().get(RETRY_PUSHBACK).unwrap(), "320");
    }
}
