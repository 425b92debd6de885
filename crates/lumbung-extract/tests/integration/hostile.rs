//! Hostile and broken files: each must end in an error naming the problem, quickly, without a
//! panic and without exhausting memory.

use std::time::{Duration, Instant};

use lumbung_extract::{Error, Limits, extract, extract_with_limits};

use crate::zipkit::{Repeated, bomb, members, package, stored_package};
use crate::{doc_path, fixture, noise};

/// Refusing by the declared size takes microseconds; unpacking 256 MiB in a debug build takes
/// seconds, so a bomb that is unpacked before being refused fails this bound.
const QUICK: Duration = Duration::from_secs(2);

const PARAGRAPH: &[u8] = b"<w:p><w:r><w:t>All work and no play makes a dull boy.</w:t></w:r></w:p>";

/// A DOCX whose `document.xml` is `megabytes` MiB of paragraphs.
fn docx_bomb(megabytes: usize, declared_size: Option<u32>) -> Vec<u8> {
    let unit = PARAGRAPH.repeat((1 << 20) / PARAGRAPH.len());
    docx_with_document(&unit, megabytes, declared_size)
}

/// A DOCX whose `document.xml` holds one paragraph of `megabytes` MiB of the letter a: a run of
/// one byte is what deflate packs tightest (about 1000 to 1).
fn docx_letter_bomb(megabytes: usize, declared_size: Option<u32>) -> Vec<u8> {
    docx_with_document(&vec![b'a'; 1 << 20], megabytes, declared_size)
}

fn docx_with_document(unit: &[u8], copies: usize, declared_size: Option<u32>) -> Vec<u8> {
    bomb(
        &[(
            "[Content_Types].xml",
            b"<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>",
        )],
        &Repeated {
            name: "word/document.xml",
            head: b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>",
            unit,
            copies,
            tail: b"</w:t></w:r></w:p></w:body></w:document>",
        },
        declared_size,
    )
}

#[test]
fn docx_zip_bomb_is_refused_before_unpacking() {
    // 300 MiB of text in about 300 KB.
    let bytes = docx_letter_bomb(300, None);
    assert!(bytes.len() < 400_000, "bomb is {} bytes", bytes.len());
    let started = Instant::now();
    let err = extract(&doc_path("bomb.docx"), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: "max_zip_entry_bytes",
                value: 268_435_456
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}

#[test]
fn zip_member_limit_is_configurable() {
    let bytes = docx_bomb(3, None);
    let limits = Limits {
        max_zip_entry_bytes: 2 << 20,
        ..Limits::default()
    };
    let err = extract_with_limits(&doc_path("bomb.docx"), &bytes, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "limit exceeded: max_zip_entry_bytes = 2097152"
    );
}

#[test]
fn zip_member_that_lies_about_its_size_stops_at_the_declared_size() {
    // The header claims 64 KB; the data unpacks to 300 MiB.
    let bytes = docx_letter_bomb(300, Some(64 * 1024));
    let started = Instant::now();
    let err = extract(&doc_path("liar.docx"), &bytes).unwrap_err();
    assert!(matches!(err, Error::Docx(_)), "{err:?}");
    assert!(err.to_string().contains("word/document.xml"), "{err}");
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}

#[test]
fn text_that_grows_beyond_the_character_limit_stops_early() {
    // 8 MB of XML, well under the member limit, holds over 5 million characters of text.
    let bytes = docx_bomb(8, None);
    let limits = Limits {
        max_extracted_chars: 1_000_000,
        ..Limits::default()
    };
    let err = extract_with_limits(&doc_path("long.docx"), &bytes, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "limit exceeded: max_extracted_chars = 1000000"
    );
}

#[test]
fn xlsx_bomb_in_shared_strings_is_refused_before_calamine_reads_it() {
    let unit = b"<si><t>PPR-9087</t></si>".repeat(40_000);
    let bytes = bomb(
        &[],
        &Repeated {
            name: "xl/sharedStrings.xml",
            head: b"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
            unit: &unit,
            copies: 300,
            tail: b"</sst>",
        },
        None,
    );
    let started = Instant::now();
    let err = extract(&doc_path("bomb.xlsx"), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: "max_zip_entry_bytes",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}

#[test]
fn xlsx_claiming_billions_of_shared_strings_is_refused_instead_of_aborting_the_process() {
    // calamine reserves room for `uniqueCount` strings up front: 100 billion of them is a
    // 2.4 TB allocation, whose failure aborts the process.
    let mut parts = members(&fixture("production-q3.xlsx"));
    parts.push((
        "xl/sharedStrings.xml".to_string(),
        br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="100000000000"><si><t>PPR-9087</t></si></sst>"#.to_vec(),
    ));
    let bytes = package(&as_refs(&parts));
    let err = extract(&doc_path("claims.xlsx"), &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "xlsx: xl/sharedStrings.xml claims 100000000000 strings in 138 bytes"
    );
    // An honest count is read as before.
    let last = parts.len() - 1;
    parts[last].1 = br#"<sst count="1" uniqueCount="1"><si><t>PPR-9087</t></si></sst>"#.to_vec();
    assert!(extract(&doc_path("honest.xlsx"), &package(&as_refs(&parts))).is_ok());
}

#[test]
fn rows_beyond_the_limit_are_refused() {
    let limits = Limits {
        max_rows_per_sheet: 3,
        ..Limits::default()
    };
    let err = extract_with_limits(&doc_path("out.csv"), &fixture("line-output.csv"), &limits)
        .unwrap_err();
    assert_eq!(err.to_string(), "limit exceeded: max_rows_per_sheet = 3");
    let err = extract_with_limits(
        &doc_path("q3.xlsx"),
        &fixture("production-q3.xlsx"),
        &limits,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "limit exceeded: max_rows_per_sheet = 3");
    let err = extract_with_limits(&doc_path("q3.xls"), &fixture("production-q3.xls"), &limits)
        .unwrap_err();
    assert_eq!(err.to_string(), "limit exceeded: max_rows_per_sheet = 3");
}

/// The offset of the first Number record (type 0x0203, length 14) of an XLS file.
fn first_number_record(xls: &[u8]) -> usize {
    xls.windows(4)
        .position(|w| w == [0x03, 0x02, 0x0e, 0x00])
        .expect("the fixture has a number cell")
}

#[test]
fn xls_cell_far_away_is_refused_instead_of_aborting_the_process() {
    // One number cell moved to row 65535, column 65535: calamine would allocate a 137 GB
    // grid, and a failed allocation aborts the process (this test binary included).
    let mut bytes = fixture("production-q3.xls");
    let at = first_number_record(&bytes);
    bytes[at + 4..at + 8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let err = extract(&doc_path("far.xls"), &bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Spreadsheet { format: "xls", reason } if reason.contains("cells")),
        "{err:?}"
    );
}

#[test]
fn ods_repeated_cells_are_refused_before_they_expand() {
    // One row of 16,384 repeated non-empty cells, repeated 10,000 times: 164 million cells.
    let content = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Boom"><table:table-row table:number-rows-repeated="10000"><table:table-cell table:number-columns-repeated="16384" office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
    let bytes = package(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("content.xml", content.as_bytes()),
    ]);
    let started = Instant::now();
    let err = extract(&doc_path("boom.ods"), &bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Spreadsheet { format: "ods", reason } if reason.contains("cells")),
        "{err:?}"
    );
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}

#[test]
fn truncated_office_files_are_errors_not_panics() {
    for name in [
        "welding-procedure.docx",
        "production-q3.xlsx",
        "production-q3.xls",
        "stok-gudang.ods",
    ] {
        let bytes = fixture(name);
        for keep in [bytes.len() * 3 / 4, bytes.len() / 2, 100, 4, 0] {
            let err = extract(&doc_path(name), &bytes[..keep]).unwrap_err();
            assert!(
                matches!(err, Error::Docx(_) | Error::Spreadsheet { .. }),
                "{name} cut to {keep} bytes: {err:?}"
            );
        }
    }
}

#[test]
fn mutated_office_files_never_panic() {
    // Members stored uncompressed, so that flipped bytes reach the XML and BIFF parsers instead
    // of failing the zip checksum. Any outcome but a panic (or an abort) is acceptable.
    let docx = stored_package(&as_refs(&members(&fixture("welding-procedure.docx"))));
    let xlsx = stored_package(&as_refs(&members(&fixture("production-q3.xlsx"))));
    let ods = stored_package(&as_refs(&members(&fixture("stok-gudang.ods"))));
    let xls = fixture("production-q3.xls");
    for (name, original) in [
        ("a.docx", docx),
        ("a.xlsx", xlsx),
        ("a.ods", ods),
        ("a.xls", xls),
    ] {
        for seed in 1..=60u64 {
            let mut bytes = original.clone();
            for pair in noise(seed, 24).chunks(4) {
                let at =
                    u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]) as usize % bytes.len();
                bytes[at] = pair[0] ^ pair[2];
            }
            let _ = extract(&doc_path(name), &bytes);
        }
    }
}

fn as_refs(members: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    members
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect()
}

#[test]
fn deeply_nested_html_does_not_overflow_the_stack() {
    // Deep enough to overflow a recursive walk on a test thread's 2 MiB stack.
    let depth = 4000;
    let page = format!(
        "<title>Deep</title>{}<p>still here</p>{}",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let doc = extract(&doc_path("deep.html"), page.as_bytes()).unwrap();
    assert_eq!(doc.sections[0].text, "still here");
}

#[test]
fn html_nested_too_deep_for_the_parser_is_refused_quickly() {
    // html5ever's time grows with the square of the depth: parsing this takes 15 minutes in a
    // debug build.
    let page = "<div>".repeat(100_000);
    let started = Instant::now();
    let err = extract(&doc_path("deeper.html"), page.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::Html(_)), "{err:?}");
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}
