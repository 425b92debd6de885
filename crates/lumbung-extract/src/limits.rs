//! Bounds on the work one file may cause, so that a hostile or broken upload fails with an error
//! naming the bound instead of exhausting the memory of the ingest worker.
//!
//! Time is not bounded here: callers run extraction on a worker with a timeout.

use std::io::Read;

use crate::{Error, Result};

/// How much one file may produce or unpack. [`Limits::default`] suits office documents; a
/// knowledge base with unusually large files can raise a single bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pages of a PDF.
    pub max_pages: u32,
    /// Characters of extracted text, over all sections of one file.
    pub max_extracted_chars: u64,
    /// Unpacked size in bytes of any single member of a zip-based file (DOCX, XLSX, ODS).
    /// Checked before and while unpacking, so a zip bomb stops at this size.
    pub max_zip_entry_bytes: u64,
    /// Non-empty rows of one worksheet or CSV file.
    pub max_rows_per_sheet: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pages: 2_000,
            max_extracted_chars: 20_000_000,
            max_zip_entry_bytes: 256 * 1024 * 1024,
            max_rows_per_sheet: 1_000_000,
        }
    }
}

impl Limits {
    pub(crate) fn pages_exceeded(&self) -> Error {
        Error::LimitExceeded {
            limit: "max_pages",
            value: u64::from(self.max_pages),
        }
    }

    pub(crate) fn chars_exceeded(&self) -> Error {
        Error::LimitExceeded {
            limit: "max_extracted_chars",
            value: self.max_extracted_chars,
        }
    }

    pub(crate) fn zip_entry_exceeded(&self) -> Error {
        Error::LimitExceeded {
            limit: "max_zip_entry_bytes",
            value: self.max_zip_entry_bytes,
        }
    }

    pub(crate) fn rows_exceeded(&self) -> Error {
        Error::LimitExceeded {
            limit: "max_rows_per_sheet",
            value: self.max_rows_per_sheet,
        }
    }
}

/// Counts extracted characters as a format produces them, so that a file whose text grows far
/// beyond its size (a sheet that repeats its headers on every row) stops early.
#[derive(Debug)]
pub(crate) struct CharBudget {
    used: u64,
    limits: Limits,
}

impl CharBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        CharBudget {
            used: 0,
            limits: *limits,
        }
    }

    pub(crate) fn spend(&mut self, text: &str) -> Result<()> {
        self.used = self.used.saturating_add(text.chars().count() as u64);
        if self.used > self.limits.max_extracted_chars {
            return Err(self.limits.chars_exceeded());
        }
        Ok(())
    }
}

/// Reads `reader` to the end into memory, failing as soon as more than `limit` bytes arrive.
///
/// The zip reader already refuses to unpack past a member's declared size, and callers check
/// that size first; this bound holds even if a reader ever trusts a lying header.
pub(crate) fn read_bounded(reader: impl Read, limits: &Limits) -> Result<Vec<u8>, ReadError> {
    let limit = limits.max_zip_entry_bytes;
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > limit {
        return Err(ReadError::Limit(limits.zip_entry_exceeded()));
    }
    Ok(out)
}

/// Why [`read_bounded`] stopped: the limit (reported as is) or the reader (reported by the
/// format that was reading, which knows what the bytes were).
#[derive(Debug)]
pub(crate) enum ReadError {
    Limit(Error),
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_zip_entry_bytes: u64, max_extracted_chars: u64) -> Limits {
        Limits {
            max_zip_entry_bytes,
            max_extracted_chars,
            ..Limits::default()
        }
    }

    #[test]
    fn bounded_read_stops_just_past_the_limit() {
        // An endless reader: only the bound can end this read.
        let endless = std::io::repeat(b'x');
        let err = read_bounded(endless, &limits(1000, 10)).unwrap_err();
        let ReadError::Limit(err) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            err.to_string(),
            "limit exceeded: max_zip_entry_bytes = 1000"
        );
        let exact = read_bounded(&[7u8; 1000][..], &limits(1000, 10)).unwrap();
        assert_eq!(exact.len(), 1000);
    }

    #[test]
    fn budget_counts_characters_not_bytes() {
        let mut budget = CharBudget::new(&limits(1, 4));
        // Four Chinese characters are twelve bytes but within a budget of four characters.
        budget.spend("焊接作业").unwrap();
        let err = budget.spend("x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    limit: "max_extracted_chars",
                    value: 4
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.max_pages, 2_000);
        assert_eq!(limits.max_extracted_chars, 20_000_000);
        assert_eq!(limits.max_zip_entry_bytes, 268_435_456);
        assert_eq!(limits.max_rows_per_sheet, 1_000_000);
    }
}
