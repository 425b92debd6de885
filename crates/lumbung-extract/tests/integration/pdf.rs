use lumbung_core::DocumentPath;
use lumbung_extract::{Error, Limits, extract, extract_with_limits};

use crate::{fixture, noise};

fn pdf_path() -> DocumentPath {
    DocumentPath::new("reports/calibration-notes.pdf").unwrap()
}

#[test]
fn sentence_on_page_two_is_cited_as_page_two() {
    let doc = extract(&pdf_path(), &fixture("two-pages.pdf")).unwrap();
    assert_eq!(doc.title, "Press Line Calibration Notes");
    let pages: Vec<Option<u32>> = doc.sections.iter().map(|s| s.page).collect();
    assert_eq!(pages, vec![Some(1), Some(2)]);
    let hits: Vec<&lumbung_core::Section> = doc
        .sections
        .iter()
        .filter(|s| {
            s.text
                .contains("The calibration sticker on press P-14 expires on 30 November 2026.")
        })
        .collect();
    assert_eq!(hits.len(), 1, "{:#?}", doc.sections);
    assert_eq!(hits[0].page, Some(2));
    assert!(hits[0].heading_path.is_empty());
    assert!(
        doc.sections[0]
            .text
            .contains("Press P-12 was calibrated on 2 September 2026")
    );
    assert!(!doc.sections[0].text.contains("P-14"));
}

#[test]
fn blank_pages_are_skipped_and_numbering_is_kept() {
    let doc = extract(&pdf_path(), &fixture("blank-middle-page.pdf")).unwrap();
    let pages: Vec<(Option<u32>, &str)> = doc
        .sections
        .iter()
        .map(|s| (s.page, s.text.as_str()))
        .collect();
    assert_eq!(
        pages,
        vec![
            (Some(1), "First page about torque wrenches."),
            (Some(3), "Third page about hydraulic oil.")
        ]
    );
    // No Info title in this file: the stem stands in.
    assert_eq!(doc.title, "calibration-notes");
}

#[test]
fn encrypted_with_a_user_password_is_a_clear_error() {
    let err = extract(&pdf_path(), &fixture("encrypted-user-password.pdf")).unwrap_err();
    assert!(matches!(err, Error::Encrypted { format: "pdf" }), "{err:?}");
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn encrypted_without_a_user_password_is_read() {
    let doc = extract(&pdf_path(), &fixture("encrypted-owner-only.pdf")).unwrap();
    assert_eq!(doc.sections.len(), 2);
    assert_eq!(doc.sections[1].page, Some(2));
    assert!(
        doc.sections[1].text.contains("press P-14 expires"),
        "{:?}",
        doc.sections
    );
}

#[test]
fn truncated_pdf_is_an_error_not_a_panic() {
    let bytes = fixture("two-pages.pdf");
    for keep in [bytes.len() / 2, bytes.len() / 4, 64, 9] {
        let err = extract(&pdf_path(), &bytes[..keep]).unwrap_err();
        assert!(
            matches!(err, Error::Pdf(_) | Error::Empty),
            "keep {keep}: {err:?}"
        );
    }
}

#[test]
fn random_bytes_are_an_error_not_a_panic() {
    for seed in 1..=20 {
        let mut bytes = noise(seed, 4096);
        if seed % 2 == 0 {
            // A valid header takes the parser past its first check.
            bytes.splice(0..0, b"%PDF-1.7\n".iter().copied());
        }
        let err = extract(&pdf_path(), &bytes).unwrap_err();
        assert!(matches!(err, Error::Pdf(_)), "seed {seed}: {err:?}");
    }
}

#[test]
fn mutated_pdfs_never_panic() {
    // Small corruptions of a real file reach far deeper into the parser than noise does; any
    // outcome but a panic is acceptable. pdf-extract 0.12 panics on over a dozen of these
    // seeds, so this test fails if the `catch_unwind` guard is ever removed.
    let original = fixture("two-pages.pdf");
    for seed in 1..=150u64 {
        let mut bytes = original.clone();
        let edits = noise(seed, 16);
        for pair in edits.chunks(4) {
            let at =
                u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]) as usize % bytes.len();
            bytes[at] = pair[0] ^ pair[2];
        }
        let _ = extract(&pdf_path(), &bytes);
    }
}

#[test]
fn page_limit_is_checked_before_any_page_is_read() {
    let limits = Limits {
        max_pages: 1,
        ..Limits::default()
    };
    let err = extract_with_limits(&pdf_path(), &fixture("two-pages.pdf"), &limits).unwrap_err();
    assert_eq!(err.to_string(), "limit exceeded: max_pages = 1");
    let limits = Limits {
        max_pages: 2,
        ..Limits::default()
    };
    assert!(extract_with_limits(&pdf_path(), &fixture("two-pages.pdf"), &limits).is_ok());
}
