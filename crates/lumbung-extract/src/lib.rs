//! File bytes to text sections: the extraction step of ingest.
//!
//! One module per format (Markdown, plain text, PDF), each a pure function from the bytes of one
//! file to a title and a list of [`Section`]s that carry a heading path and, where the format
//! has pages, a 1-based page number. Callers read the file and decide what to do with failures.
//!
//! This crate must not do I/O beyond the bytes it is given, must not be async, and must not
//! depend on any index, embedding model, catalog or transport: it depends on `lumbung-core` only.

mod error;
mod md;
mod pdf;
mod text;
mod whitespace;

use lumbung_core::{DocumentPath, Section};

pub use error::{Error, Result};

/// What extraction produces for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedDocument {
    /// A human-readable title: from the document where it names one, else the file stem.
    pub title: String,
    /// Non-empty sections in document order.
    pub sections: Vec<Section>,
}

/// The formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Text,
    Pdf,
}

impl Format {
    /// The format for a path's extension (case-insensitive); `None` when it is not supported,
    /// which callers record as skipped rather than failed.
    pub fn from_path(path: &DocumentPath) -> Option<Format> {
        Format::from_extension(&path.extension()?)
    }

    /// The format for a file extension without the dot, in any case.
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
}

/// Extracts the title and sections of the file at `path` (used for its format and its stem)
/// from its `bytes`.
pub fn extract(path: &DocumentPath, bytes: &[u8]) -> Result<ExtractedDocument> {
    let format = Format::from_path(path).ok_or_else(|| Error::Unsupported {
        extension: path.extension().unwrap_or_default(),
    })?;
    let stem = file_stem(path);
    let document = match format {
        Format::Markdown => md::extract(bytes, stem)?,
        Format::Text => text::extract(bytes, stem)?,
        Format::Pdf => pdf::extract(bytes, stem)?,
    };
    finish(document, stem)
}

/// The file name without its last extension: the title of last resort.
fn file_stem(path: &DocumentPath) -> &str {
    let name = path.as_str().rsplit('/').next().unwrap_or(path.as_str());
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// Applies the rules every format shares, so each module only has to produce text.
fn finish(mut document: ExtractedDocument, stem: &str) -> Result<ExtractedDocument> {
    document
        .sections
        .retain(|section| !section.text.trim().is_empty());
    if document.sections.is_empty() {
        return Err(Error::Empty);
    }
    let title = whitespace::single_line(&document.title);
    document.title = if title.is_empty() {
        stem.to_string()
    } else {
        title
    };
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> DocumentPath {
        DocumentPath::new(p).unwrap()
    }

    #[test]
    fn formats_come_from_extensions_in_any_case() {
        assert_eq!(
            Format::from_path(&path("faq/VPN.MD")),
            Some(Format::Markdown)
        );
        assert_eq!(
            Format::from_path(&path("a.markdown")),
            Some(Format::Markdown)
        );
        assert_eq!(Format::from_path(&path("notes.TXT")), Some(Format::Text));
        assert_eq!(Format::from_path(&path("notes.text")), Some(Format::Text));
        assert_eq!(Format::from_path(&path("r/report.Pdf")), Some(Format::Pdf));
        assert_eq!(Format::from_path(&path("sheet.xlsx")), None);
        assert_eq!(Format::from_path(&path("Makefile")), None);
    }

    #[test]
    fn unsupported_extension_is_named_in_the_error() {
        let err = extract(&path("a/b.docx"), b"whatever").unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { extension } if extension == "docx"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "unsupported file extension \"docx\"");
        assert!(matches!(
            extract(&path("README"), b"x"),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn stem_is_the_last_component_without_extension() {
        assert_eq!(
            file_stem(&path("dir/sub/printer-setup.md")),
            "printer-setup"
        );
        assert_eq!(file_stem(&path("archive.tar.txt")), "archive.tar");
        assert_eq!(file_stem(&path(".hidden")), ".hidden");
    }

    #[test]
    fn a_document_without_text_is_empty() {
        assert!(matches!(
            extract(&path("blank.txt"), b" \n\t\n"),
            Err(Error::Empty)
        ));
        assert!(matches!(
            extract(&path("blank.md"), b"# \n\n---\n"),
            Err(Error::Empty)
        ));
    }

    #[test]
    fn empty_title_falls_back_to_the_stem() {
        let doc = ExtractedDocument {
            title: "  ".to_string(),
            sections: vec![Section {
                heading_path: vec![],
                page: None,
                text: "x".to_string(),
            }],
        };
        assert_eq!(finish(doc, "stem").unwrap().title, "stem");
    }
}
