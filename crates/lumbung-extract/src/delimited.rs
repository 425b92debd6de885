//! CSV (and TSV): rows rendered like a worksheet's, `Header: value; Header: value`.
//!
//! Excel saves CSV in the machine's legacy encoding (GBK on a Chinese Windows) and with `;` as
//! the separator where the decimal mark is a comma (Indonesia, most of Europe), so both are
//! detected rather than assumed.

use crate::encoding::decode_text;
use crate::limits::CharBudget;
use crate::sheet::SheetWriter;
use crate::whitespace::single_line;
use crate::{Error, ExtractedDocument, Limits, Result};

pub(crate) fn extract(bytes: &[u8], stem: &str, limits: &Limits) -> Result<ExtractedDocument> {
    let text = decode_text(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(&text))
        .from_reader(text.as_bytes());
    let mut budget = CharBudget::new(limits);
    let mut sheet = SheetWriter::new(limits, &mut budget);
    for record in reader.records() {
        let record = record.map_err(|err| Error::Spreadsheet {
            format: "csv",
            reason: err.to_string(),
        })?;
        let cells = record
            .iter()
            .zip(0u32..)
            .map(|(value, column)| (column, single_line(value)))
            .filter(|(_, value)| !value.is_empty())
            .collect();
        sheet.row(cells)?;
    }
    Ok(ExtractedDocument {
        title: stem.to_string(),
        sections: sheet.finish(Vec::new()).into_iter().collect(),
    })
}

/// The separator that occurs most often outside quotes on the first non-empty line; a comma
/// when none does.
fn delimiter(text: &str) -> u8 {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut in_quotes = false;
    for byte in line.bytes() {
        if byte == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && let Some(i) = candidates.iter().position(|&c| c == byte) {
            counts[i] += 1;
        }
    }
    // Ties go to the earlier candidate, so a line without separators gives a comma.
    let best = (0..candidates.len())
        .rev()
        .max_by_key(|&i| counts[i])
        .unwrap_or(0);
    candidates[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> ExtractedDocument {
        extract(text.as_bytes(), "output", &Limits::default()).unwrap()
    }

    #[test]
    fn separators_are_detected() {
        assert_eq!(delimiter("a,b,c\n1,2,3"), b',');
        assert_eq!(delimiter("Produk;Jumlah;Harga\nA;1,5;2"), b';');
        assert_eq!(delimiter("\n\na\tb\n"), b'\t');
        assert_eq!(delimiter("\"x;y\",b,c"), b',');
        assert_eq!(delimiter("single column"), b',');
    }

    #[test]
    fn rows_name_their_columns() {
        let doc = csv(
            "Line,Product,Output\r\nL1,PPR-9087,97160\r\n,,\r\nL2,\"PPR-9090, blue\",81000\r\n",
        );
        assert_eq!(doc.title, "output");
        assert_eq!(doc.sections.len(), 1);
        assert!(doc.sections[0].heading_path.is_empty());
        assert_eq!(
            doc.sections[0].text,
            "Line: L1; Product: PPR-9087; Output: 97160\n\
             Line: L2; Product: PPR-9090, blue; Output: 81000"
        );
    }

    #[test]
    fn semicolon_csv_with_decimal_commas() {
        let doc = csv("Produk;Jumlah;Harga\nBaut M8;1200;2,5\n");
        assert_eq!(
            doc.sections[0].text,
            "Produk: Baut M8; Jumlah: 1200; Harga: 2,5"
        );
    }

    #[test]
    fn ragged_rows_are_kept() {
        let doc = csv("a,b\n1,2,3\n4\n");
        assert_eq!(doc.sections[0].text, "a: 1; b: 2; C: 3\na: 4");
    }
}
