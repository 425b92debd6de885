//! Text files in the encodings Chinese and Indonesian offices save them in.

use lumbung_extract::{Error, extract};

use crate::{doc_path, fixture};

#[test]
fn gbk_text_from_a_chinese_windows_notepad() {
    let doc = extract(&doc_path("安全/动火.txt"), &fixture("hot-work-gbk.txt")).unwrap();
    assert_eq!(doc.title, "动火作业安全须知");
    assert_eq!(
        doc.sections[0].text,
        "动火作业安全须知\n\n\
         动火作业前必须办理动火许可证，清理周围十一米内的易燃物品，并配备灭火器。\n\
         作业结束后，监护人应继续观察三十分钟。"
    );
}

#[test]
fn big5_text_from_taiwan_or_hong_kong() {
    let doc = extract(
        &doc_path("confined-space.txt"),
        &fixture("confined-space-big5.txt"),
    )
    .unwrap();
    assert_eq!(doc.title, "受限空間作業規定");
    assert!(
        doc.sections[0]
            .text
            .contains("進入受限空間前，必須檢測氧氣濃度，並保持通風。"),
        "{:?}",
        doc.sections
    );
}

#[test]
fn utf16le_text_with_a_byte_order_mark() {
    let bytes = fixture("shift-handover-utf16.txt");
    assert_eq!(&bytes[..2], [0xff, 0xfe]);
    let doc = extract(&doc_path("shift/handover.txt"), &bytes).unwrap();
    assert_eq!(doc.title, "Catatan serah terima shift");
    assert_eq!(
        doc.sections[0].text,
        "Catatan serah terima shift\n\n\
         Line 3 berhenti pukul 14.20 karena sensor suhu rusak; dipulihkan 14.45.\n\
         受限空间作业需要许可证。"
    );
}

#[test]
fn utf16be_markdown_keeps_its_headings() {
    let mut bytes = vec![0xfe, 0xff];
    bytes.extend(
        "# Lembur\n\nLembur wajib disetujui atasan.\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes),
    );
    let doc = extract(&doc_path("hr/lembur.md"), &bytes).unwrap();
    assert_eq!(doc.title, "Lembur");
    assert_eq!(doc.sections[0].heading_path, ["Lembur"]);
    assert_eq!(doc.sections[0].text, "Lembur wajib disetujui atasan.");
}

#[test]
fn windows_1252_text_from_an_old_western_pc() {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252
        .encode("Réglage de la presse P-12 : pièce n° 4, tolérance ±0,2 mm.");
    let doc = extract(&doc_path("press.txt"), &bytes).unwrap();
    assert_eq!(
        doc.sections[0].text,
        "Réglage de la presse P-12 : pièce n° 4, tolérance ±0,2 mm."
    );
}

#[test]
fn binary_files_named_txt_are_refused() {
    // What the server's bad-input test drops as binary.txt: 0xFF 0xFE reads as a UTF-16LE
    // byte-order mark, and the three bytes after it cannot be UTF-16.
    let err = extract(&doc_path("binary.txt"), &[0xff, 0xfe, 0x00, 0xc3, 0x28]).unwrap_err();
    assert!(matches!(err, Error::Binary { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "binary content: utf-16le byte-order mark followed by an odd number of bytes"
    );
    // A PNG renamed to .txt.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10";
    let err = extract(&doc_path("scan.txt"), png).unwrap_err();
    assert_eq!(err.to_string(), "binary content: nul byte at offset 8");
    // A Markdown file that is not text at all.
    let noise: Vec<u8> = crate::noise(7, 2048).into_iter().map(|b| b | 1).collect();
    let err = extract(&doc_path("notes.md"), &noise).unwrap_err();
    assert!(matches!(err, Error::Binary { .. }), "{err:?}");
}
