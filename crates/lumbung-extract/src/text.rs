//! Plain text: one section without headings, since a text file has no structure to trust. Lines
//! wrapped by an editor are joined again (see `unwrap_hard_wraps`).

use lumbung_core::Section;

use crate::encoding::decode_text;
use crate::whitespace::{normalize, single_line, unwrap_hard_wraps};
use crate::{ExtractedDocument, Result};

/// A first line longer than this is prose, not a title.
const MAX_TITLE_CHARS: usize = 120;

pub(crate) fn extract(bytes: &[u8], stem: &str) -> Result<ExtractedDocument> {
    let text = decode_text(bytes)?;
    let title = text
        .lines()
        .map(single_line)
        .find(|line| !line.is_empty())
        .filter(|line| line.chars().count() < MAX_TITLE_CHARS)
        .unwrap_or_else(|| stem.to_string());
    let section = Section {
        heading_path: Vec::new(),
        page: None,
        text: normalize(&unwrap_hard_wraps(&text)),
    };
    Ok(ExtractedDocument {
        title,
        sections: vec![section],
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
    fn legacy_encodings_are_decoded_not_refused() {
        // GBK bytes, as Notepad on a Chinese Windows saves them.
        let (gbk, _, _) = encoding_rs::GBK
            .encode("焊接作业安全规程\n动火作业前必须办理许可证，清理周围的易燃物品。");
        let doc = extract(&gbk, "s").unwrap();
        assert_eq!(doc.title, "焊接作业安全规程");
        assert!(doc.sections[0].text.ends_with("清理周围的易燃物品。"));
    }

    #[test]
    fn binary_bytes_are_refused() {
        let err = extract(b"MZ\x90\x00\x03\x00", "s").unwrap_err();
        assert!(matches!(err, crate::Error::Binary { .. }), "{err:?}");
        assert_eq!(err.to_string(), "binary content: nul byte at offset 3");
    }
}
