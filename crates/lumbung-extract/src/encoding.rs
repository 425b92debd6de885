//! Bytes of a text-based file to a string, whatever encoding the office that wrote it used.
//!
//! Order of evidence: a byte-order mark (UTF-8, UTF-16LE, UTF-16BE), then a label the format
//! itself carries (an HTML `<meta charset>`), then valid UTF-8, then a statistical guess among
//! the legacy encodings (GB18030/GBK, Big5, windows-1252, ...) by `chardetng`. Bytes that no
//! text encoding produces are refused as binary rather than indexed as mojibake.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

use crate::{Error, Result};

/// The detector has seen enough after this many bytes; the guess does not improve with more, and
/// a large file should not be scanned twice.
const DETECTION_PREFIX: usize = 1 << 20;

/// More than one control character in this many characters means the bytes are not text.
const CONTROL_CHAR_RATIO: usize = 20;

/// Decodes text whose encoding the file does not name.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>> {
    decode_with_label(bytes, None)
}

/// Decodes text, trusting a byte-order mark first and then `label`, an encoding the file itself
/// declares.
pub(crate) fn decode_with_label<'a>(
    bytes: &'a [u8],
    label: Option<&'static Encoding>,
) -> Result<Cow<'a, str>> {
    let text = match Encoding::for_bom(bytes) {
        Some((encoding, bom_len)) if encoding == UTF_16LE || encoding == UTF_16BE => {
            decode_utf16(encoding, &bytes[bom_len..])?
        }
        Some((_, bom_len)) => decode_unlabelled(&bytes[bom_len..], label)?,
        None => decode_unlabelled(bytes, label)?,
    };
    refuse_control_characters(&text)?;
    Ok(text)
}

fn decode_utf16(encoding: &'static Encoding, body: &[u8]) -> Result<Cow<'static, str>> {
    if !body.len().is_multiple_of(2) {
        return Err(binary(format!(
            "{} byte-order mark followed by an odd number of bytes",
            encoding.name().to_ascii_lowercase()
        )));
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(body);
    if had_errors {
        return Err(binary(format!(
            "invalid {} after its byte-order mark",
            encoding.name().to_ascii_lowercase()
        )));
    }
    Ok(Cow::Owned(text.into_owned()))
}

fn decode_unlabelled<'a>(
    bytes: &'a [u8],
    label: Option<&'static Encoding>,
) -> Result<Cow<'a, str>> {
    // Outside UTF-16 no encoding writes NUL into text, but almost every binary format does.
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(binary(format!("nul byte at offset {offset}")));
    }
    // A document cannot declare UTF-16 without a byte-order mark and still be ASCII-compatible,
    // so browsers read such a label as UTF-8; so do we.
    let label = label.map(|l| {
        if l == UTF_16LE || l == UTF_16BE {
            UTF_8
        } else {
            l
        }
    });
    if let Some(encoding) = label {
        return Ok(encoding.decode_without_bom_handling(bytes).0);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    let prefix = &bytes[..bytes.len().min(DETECTION_PREFIX)];
    detector.feed(prefix, prefix.len() == bytes.len());
    // The bytes are not valid UTF-8, so UTF-8 cannot be the answer.
    let encoding = detector.guess(None, Utf8Detection::Deny);
    Ok(encoding.decode_without_bom_handling(bytes).0)
}

fn refuse_control_characters(text: &str) -> Result<()> {
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        chars += 1;
        // Tab, line breaks and form feed are layout; DEL and the rest are not in text.
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}') {
            controls += 1;
        }
    }
    if controls > 0 && controls * CONTROL_CHAR_RATIO > chars {
        return Err(binary(format!(
            "{controls} control characters in {chars} characters"
        )));
    }
    Ok(())
}

fn binary(reason: String) -> Error {
    Error::Binary { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(bytes: &[u8]) -> String {
        decode_text(bytes).unwrap().into_owned()
    }

    fn encode(encoding: &'static Encoding, text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding.encode(text);
        assert!(!unmappable, "{text} is not in {}", encoding.name());
        bytes.into_owned()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decoded("焊接 las".as_bytes()), "焊接 las");
        assert_eq!(decoded("\u{feff}焊接 las".as_bytes()), "焊接 las");
        assert!(matches!(
            decode_text(b"plain ascii").unwrap(),
            Cow::Borrowed("plain ascii")
        ));
    }

    #[test]
    fn utf16_needs_its_byte_order_mark() {
        let text = "受限空间 confined space\r\n";
        let mut le = vec![0xff, 0xfe];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decoded(&le), text);
        let mut be = vec![0xfe, 0xff];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decoded(&be), text);
        // The same bytes without a mark hold NULs (the high bytes of " " and Latin letters):
        // binary, not guessed.
        let err = decode_text(&le[2..]).unwrap_err();
        assert_eq!(err.to_string(), "binary content: nul byte at offset 9");
    }

    #[test]
    fn broken_utf16_is_binary() {
        let err = decode_text(&[0xff, 0xfe, 0x00, 0xc3, 0x28]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "binary content: utf-16le byte-order mark followed by an odd number of bytes"
        );
        // A lone high surrogate (0xd800) cannot be decoded.
        let err = decode_text(&[0xff, 0xfe, 0x41, 0x00, 0x00, 0xd8, 0x41, 0x00]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "binary content: invalid utf-16le after its byte-order mark"
        );
    }

    #[test]
    fn legacy_chinese_and_western_encodings_are_detected() {
        let gbk = "焊接作业前必须清理周围的易燃物品，并配备灭火器。动火作业需要办理许可证。";
        assert_eq!(decoded(&encode(encoding_rs::GBK, gbk)), gbk);
        let big5 = "進入受限空間前，必須檢測氧氣濃度，並保持通風。作業期間應有專人監護。";
        assert_eq!(decoded(&encode(encoding_rs::BIG5, big5)), big5);
        let latin = "Café crème: température de sécurité dépassée à l'entrée.";
        assert_eq!(decoded(&encode(encoding_rs::WINDOWS_1252, latin)), latin);
    }

    #[test]
    fn a_declared_label_is_trusted_over_detection() {
        let bytes = encode(encoding_rs::WINDOWS_1252, "crème");
        let text = decode_with_label(&bytes, Some(encoding_rs::WINDOWS_1252)).unwrap();
        assert_eq!(text, "crème");
        // A byte-order mark outranks the label, as it does in browsers.
        let text = decode_with_label("\u{feff}ok".as_bytes(), Some(encoding_rs::GBK)).unwrap();
        assert_eq!(text, "ok");
        // UTF-16 without a mark is read as UTF-8.
        assert_eq!(decode_with_label(b"ok", Some(UTF_16LE)).unwrap(), "ok");
    }

    #[test]
    fn control_characters_mean_binary() {
        let mut bytes = b"header".to_vec();
        bytes.extend([0x01, 0x02, 0x03, 0x1b, 0x7f]);
        let err = decode_text(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "binary content: 5 control characters in 11 characters"
        );
        // One stray control character in real text is tolerated.
        let text = format!("{}\u{1a}", "line of text\n".repeat(3));
        assert!(decode_text(text.as_bytes()).is_ok());
    }
}
