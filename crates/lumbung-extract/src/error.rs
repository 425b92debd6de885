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
    /// A text-based file (text, Markdown, CSV, HTML) holds bytes no text encoding produces, such
    /// as NUL bytes or control characters; `reason` says which.
    #[error("binary content: {reason}")]
    Binary { reason: String },
    /// The PDF could not be parsed, is encrypted with a password, or made the parser fail.
    #[error("pdf: {0}")]
    Pdf(String),
    /// The Word document is not a readable zip of WordprocessingML, or made the parser fail.
    #[error("docx: {0}")]
    Docx(String),
    /// The workbook or CSV file could not be read; `format` is its extension (`xlsx`, `xls`,
    /// `ods`, `csv`).
    #[error("{format}: {reason}")]
    Spreadsheet {
        format: &'static str,
        reason: String,
    },
    /// The HTML parser failed on the page.
    #[error("html: {0}")]
    Html(String),
    /// The file asks for more work than [`Limits`](crate::Limits) allows: `limit` is the
    /// field's name and `value` its configured value. Hostile files (zip bombs, sheets with
    /// millions of rows) end here instead of exhausting memory.
    #[error("limit exceeded: {limit} = {value}")]
    LimitExceeded { limit: &'static str, value: u64 },
    /// The file is protected with a password; `format` is its extension.
    #[error("{format}: encrypted with a password")]
    Encrypted { format: &'static str },
    /// The file was read but holds no text at all (for example a scanned PDF without OCR).
    #[error("document contains no text")]
    Empty,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
