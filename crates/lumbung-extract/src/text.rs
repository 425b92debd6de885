//! Plain text: one section without headings, since a text file has no structure to trust.

use lumbung_core::Section;

use crate::whitespace::{normalize, single_line};
use crate::{Error, ExtractedDocument, Result};

/// A first line longer than this is prose, not a title.
const MAX_TITLE_CHARS: usize = 120;

pub(crate) fn extract(bytes: &[u8], stem: &str) -> Result<ExtractedDocument> {
    let text = decode_utf8(bytes)?;
    let title = text
        .lines()
        .map(single_line)
        .find(|line| !line.is_empty())
        .filter(|line| line.chars().count() < MAX_TITLE_CHARS)
        .unwrap_or_else(|| stem.to_string());
    let section = Section {
        heading_path: Vec::new(),
        page: None,
        text: normalize(text),
    };
    Ok(ExtractedDocument {
        title,
        sections: vec![section],
    })
}

/// UTF-8 without a byte-order mark; the error names the first offending byte so an owner can
/// find it (other encodings are detected in a later step of the project).
pub(crate) fn decode_utf8(bytes: &[u8]) -> Result<&str> {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let (skipped, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    std::str::from_utf8(body).map_err(|err| Error::InvalidUtf8 {
        offset: skipped + err.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_section_with_normalised_text_and_no_headings() {
        let doc = extract(
            b"Shift handover\n\nLine 3   stopped at 14:20.\r\nRestarted 14:45.\n\n\n",
            "x",
        )
        .unwrap();
        assert_eq!(doc.title, "Shift handover");
        assert_eq!(
            doc.sections,
            vec![Section {
                heading_path: vec![],
                page: None,
                text: "Shift handover\n\nLine 3 stopped at 14:20.\nRestarted 14:45.".to_string(),
            }]
        );
    }

    #[test]
    fn bom_is_stripped() {
        let doc = extract("\u{feff}Catatan shift malam".as_bytes(), "x").unwrap();
        assert_eq!(doc.title, "Catatan shift malam");
        assert_eq!(doc.sections[0].text, "Catatan shift malam");
    }

    #[test]
    fn long_first_line_is_not_a_title() {
        let long = "word ".repeat(30);
        let doc = extract(long.as_bytes(), "night-shift-notes").unwrap();
        assert_eq!(doc.title, "night-shift-notes");
        let just_short = "x".repeat(MAX_TITLE_CHARS - 1);
        assert_eq!(
            extract(just_short.as_bytes(), "s").unwrap().title,
            just_short
        );
    }

    #[test]
    fn title_length_counts_characters_not_bytes() {
        // 100 Chinese characters are 300 bytes but still a short line.
        let line = "安".repeat(100);
        assert_eq!(extract(line.as_bytes(), "s").unwrap().title, line);
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let err = extract(b"abc\xffdef", "s").unwrap_err();
        assert!(matches!(err, Error::InvalidUtf8 { offset: 3 }), "{err:?}");
        assert_eq!(err.to_string(), "invalid utf-8 at byte offset 3");
        // GBK bytes for "焊接" are not UTF-8; the offset counts the BOM.
        let err = extract(b"\xef\xbb\xbfok \xba\xb8\xbd\xd3", "s").unwrap_err();
        assert!(matches!(err, Error::InvalidUtf8 { offset: 6 }), "{err:?}");
    }
}
