/// Why a file's bytes could not be turned into text.
///
/// Every variant is a property of the file, not of the service: the caller records the error
/// against the document and moves on to the next file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file's extension is not a format this crate reads; callers record the file as
    /// skipped rather than failed.
    #[error("unsupported file extension {extension:?}")]
    Unsupported { extension: String },
    /// A text or Markdown file is not valid UTF-8; `offset` is the byte where decoding stopped.
    #[error("invalid utf-8 at byte offset {offset}")]
    InvalidUtf8 { offset: usize },
    /// The PDF could not be parsed, is encrypted with a password, or made the parser fail.
    #[error("pdf: {0}")]
    Pdf(String),
    /// The file was read but holds no text at all (for example a scanned PDF without OCR).
    #[error("document contains no text")]
    Empty,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
