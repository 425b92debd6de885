use std::borrow::Cow;
use std::path::PathBuf;

/// Errors raised while validating domain values and loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by a user (a name, a path, a request field) is not acceptable.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        field: Cow<'static, str>,
        reason: String,
    },
    /// The configuration file could not be read or parsed.
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
