//! File bytes to text sections: the extraction step of ingest.
//!
//! One module per format (Markdown, plain text, PDF, Word, workbooks, CSV, HTML), each a pure
//! function from the bytes of one file to a title and a list of [`Section`]s that carry a heading
//! path and, where the format has pages, a 1-based page number. Callers read the file and decide
//! what to do with failures.
//!
//! Files come from people, not programs, so every format assumes hostile input: third-party
//! parsers run under `catch_unwind`, and [`Limits`] bound pages, unpacked zip members, rows and
//! extracted text. Bounding time is the caller's job (a worker with a timeout).
//!
//! This crate must not do I/O beyond the bytes it is given, must not be async, and must not
//! depend on any index, embedding model, catalog or transport: it depends on `lumbung-core` only.

mod delimited;
mod docx;
mod encoding;
mod error;
mod grid;
mod guard;
mod html;
mod limits;
mod md;
mod nesting;
mod ooxml;
mod pdf;
mod sheet;
mod table;
mod text;
mod whitespace;

use lumbung_core::{DocumentPath, Section};

pub use error::{Error, Result};
pub use limits::Limits;

use crate::guard::guarded;
use crate::sheet::Workbook;

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
    /// Word 2007 and later (`.docx`, `.docm`); the binary `.doc` format is not read.
    Docx,
    /// Excel 2007 and later (`.xlsx`, `.xlsm`).
    Xlsx,
    /// Excel 97-2003.
    Xls,
    /// OpenDocument spreadsheet (LibreOffice, WPS).
    Ods,
    /// Comma-, semicolon- or tab-separated values (`.csv`, `.tsv`).
    Csv,
    Html,
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
            "docx" | "docm" => Some(Format::Docx),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            "xls" => Some(Format::Xls),
            "ods" => Some(Format::Ods),
            "csv" | "tsv" => Some(Format::Csv),
            "html" | "htm" | "xhtml" => Some(Format::Html),
            _ => None,
        }
    }
}

/// Extracts the title and sections of the file at `path` (used for its format and its stem)
/// from its `bytes`, within the default [`Limits`].
pub fn extract(path: &DocumentPath, bytes: &[u8]) -> Result<ExtractedDocument> {
    extract_with_limits(path, bytes, &Limits::default())
}

/// Like [`extract`], failing with [`Error::LimitExceeded`] as soon as the file needs more than
/// `limits` allow.
pub fn extract_with_limits(
    path: &DocumentPath,
    bytes: &[u8],
    limits: &Limits,
) -> Result<ExtractedDocument> {
    let format = Format::from_path(path).ok_or_else(|| Error::Unsupported {
        extension: path.extension().unwrap_or_default(),
    })?;
    let stem = path.file_stem();
    match format {
        Format::Docx if is_encrypted_ooxml(bytes) => {
            return Err(Error::Encrypted { format: "docx" });
        }
        Format::Xlsx if is_encrypted_ooxml(bytes) => {
            return Err(Error::Encrypted { format: "xlsx" });
        }
        _ => {}
    }
    let spreadsheet = |format: &'static str| move |reason| Error::Spreadsheet { format, reason };
    let document = match format {
        Format::Markdown => md::extract(bytes, stem)?,
        Format::Text => text::extract(bytes, stem)?,
        // Guarded page by page inside, so that a panic names its page.
        Format::Pdf => pdf::extract(bytes, stem, limits)?,
        Format::Docx => guarded("document", Error::Docx, || {
            docx::extract(bytes, stem, limits)
        })?,
        Format::Xlsx => guarded("workbook", spreadsheet("xlsx"), || {
            sheet::extract(bytes, stem, Workbook::Xlsx, limits)
        })?,
        Format::Xls => guarded("workbook", spreadsheet("xls"), || {
            sheet::extract(bytes, stem, Workbook::Xls, limits)
        })?,
        Format::Ods => guarded("workbook", spreadsheet("ods"), || {
            sheet::extract(bytes, stem, Workbook::Ods, limits)
        })?,
        Format::Csv => guarded("rows", spreadsheet("csv"), || {
            delimited::extract(bytes, stem, limits)
        })?,
        Format::Html => guarded("page", Error::Html, || html::extract(bytes, stem, limits))?,
    };
    finish(document, stem, limits)
}

/// Whether an Office file is password-protected: the zip is then wrapped, encrypted, in an
/// OLE compound file with an `EncryptedPackage` stream.
fn is_encrypted_ooxml(bytes: &[u8]) -> bool {
    const COMPOUND_FILE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    bytes.starts_with(&COMPOUND_FILE_MAGIC)
        && cfb::CompoundFile::open(std::io::Cursor::new(bytes))
            .is_ok_and(|file| file.exists("/EncryptedPackage"))
}

/// Applies the rules every format shares, so each module only has to produce text.
fn finish(
    mut document: ExtractedDocument,
    stem: &str,
    limits: &Limits,
) -> Result<ExtractedDocument> {
    document
        .sections
        .retain(|section| !section.text.trim().is_empty());
    if document.sections.is_empty() {
        return Err(Error::Empty);
    }
    // The formats that can grow their text far beyond their size count as they go; this is
    // the total over every format.
    let chars: usize = document
        .sections
        .iter()
        .map(|s| s.text.chars().count())
        .sum();
    if chars as u64 > limits.max_extracted_chars {
        return Err(limits.chars_exceeded());
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

    /// An OLE compound file holding the given streams, as Office writes a protected file
    /// (`EncryptedPackage`) or a legacy document (`WordDocument`).
    fn compound_file(streams: &[&str]) -> Vec<u8> {
        let mut file = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
        for stream in streams {
            std::io::Write::write_all(&mut file.create_stream(stream).unwrap(), b"x").unwrap();
        }
        file.flush().unwrap();
        file.into_inner().into_inner()
    }

    #[test]
    fn password_protected_office_files_are_named_encrypted() {
        let protected = compound_file(&["/EncryptionInfo", "/EncryptedPackage"]);
        for (name, format) in [("plan.docx", "docx"), ("rota.xlsx", "xlsx")] {
            match extract(&path(name), &protected) {
                Err(Error::Encrypted { format: found }) => assert_eq!(found, format),
                other => panic!("{name}: {other:?}"),
            }
        }
        // A legacy .doc renamed to .docx is broken, not encrypted.
        let legacy = compound_file(&["/WordDocument"]);
        assert!(matches!(
            extract(&path("old.docx"), &legacy),
            Err(Error::Docx(_))
        ));
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
        assert_eq!(Format::from_path(&path("SOP.DOCX")), Some(Format::Docx));
        assert_eq!(Format::from_path(&path("q3.xlsx")), Some(Format::Xlsx));
        assert_eq!(Format::from_path(&path("q3.xlsm")), Some(Format::Xlsx));
        assert_eq!(Format::from_path(&path("old.xls")), Some(Format::Xls));
        assert_eq!(Format::from_path(&path("wps.ods")), Some(Format::Ods));
        assert_eq!(Format::from_path(&path("export.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(&path("export.tsv")), Some(Format::Csv));
        assert_eq!(Format::from_path(&path("page.htm")), Some(Format::Html));
        assert_eq!(Format::from_path(&path("page.html")), Some(Format::Html));
        assert_eq!(Format::from_path(&path("legacy.doc")), None);
        assert_eq!(Format::from_path(&path("Makefile")), None);
    }

    #[test]
    fn unsupported_extension_is_named_in_the_error() {
        let err = extract(&path("a/b.dwg"), b"whatever").unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { extension } if extension == "dwg"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "unsupported file extension \"dwg\"");
        assert!(matches!(
            extract(&path("README"), b"x"),
            Err(Error::Unsupported { .. })
        ));
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
        assert_eq!(
            finish(doc, "stem", &Limits::default()).unwrap().title,
            "stem"
        );
    }

    #[test]
    fn extracted_text_is_bounded_for_every_format() {
        let limits = Limits {
            max_extracted_chars: 10,
            ..Limits::default()
        };
        let err = extract_with_limits(&path("a.txt"), "焊接作业安全规程第一条".as_bytes(), &limits)
            .unwrap_err();
        assert_eq!(err.to_string(), "limit exceeded: max_extracted_chars = 10");
        let ok = extract_with_limits(&path("a.txt"), "焊接作业安全规程第一".as_bytes(), &limits);
        assert!(ok.is_ok(), "{ok:?}");
    }
}
