//! Checks that a workbook fits in memory before calamine reads it.
//!
//! A failed allocation aborts the whole process, which `catch_unwind` cannot stop, and calamine
//! sizes some allocations from the file. It builds XLS and ODS sheets as dense grids: a 5 KB
//! XLS with one cell in A1 and one in column 65535 of row 65535 asks for a 137 GB grid. And it
//! reserves room for as many XLSX shared strings as the file claims. So cell positions and
//! claimed counts are read first, cheaply, and a workbook whose grids would exceed
//! [`MAX_GRID_CELLS`], whose sheets span more rows than [`Limits::max_rows_per_sheet`], or whose
//! claims do not fit its size is refused.

use std::io::{Cursor, Read};

use quick_xml::events::Event;

use crate::ooxml::{Package, attr, local};
use crate::{Error, Limits, Result};

/// Cells of all dense grids of one workbook: one full Excel 97-2003 sheet (65,536 rows of 256
/// columns), about 512 MiB as calamine stores them.
pub(crate) const MAX_GRID_CELLS: u64 = 65_536 * 256;

/// Enough of a shared strings part to hold its `<sst>` start tag.
const SST_PREFIX: u64 = 64 * 1024;

/// Refuses shared strings parts whose `uniqueCount` exceeds what their size can hold: every
/// string item takes at least five bytes (`<si/>`).
pub(crate) fn check_shared_strings(
    package: &mut Package<'_>,
    error: fn(String) -> Error,
) -> Result<()> {
    for (name, size) in package.members_ending_with("sharedstrings.xml") {
        let prefix = package.read_prefix(&name, SST_PREFIX)?;
        let prefix = String::from_utf8_lossy(&prefix);
        let claimed = unique_count(&prefix);
        if claimed > size / 5 {
            return Err(error(format!(
                "{name} claims {claimed} strings in {size} bytes"
            )));
        }
    }
    Ok(())
}

/// The `uniqueCount` of the `<sst>` element, read generously: every digit of the attribute
/// counts, so that no spelling calamine would accept can slip past as a small number.
fn unique_count(xml: &str) -> u64 {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if local(&e) == "sst" => {
                let Some(value) = attr(&e, "uniqueCount") else {
                    return 0;
                };
                let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                return if digits.is_empty() {
                    0
                } else {
                    digits.parse().unwrap_or(u64::MAX)
                };
            }
            Ok(Event::Eof) | Err(_) => return 0,
            Ok(_) => {}
        }
    }
}

/// The bounding box of one sheet's cells.
#[derive(Debug, Default)]
struct Extent {
    rows: Option<(u64, u64)>,
    columns: Option<(u64, u64)>,
}

impl Extent {
    fn add(&mut self, row: u64, first_column: u64, last_column: u64) {
        let widen = |range: &mut Option<(u64, u64)>, low: u64, high: u64| {
            let (lo, hi) = range.get_or_insert((low, high));
            *lo = (*lo).min(low);
            *hi = (*hi).max(high);
        };
        widen(&mut self.rows, row, row);
        widen(&mut self.columns, first_column, last_column);
    }

    fn row_span(&self) -> u64 {
        self.rows.map_or(0, |(lo, hi)| hi - lo + 1)
    }

    fn cells(&self) -> u64 {
        let columns = self.columns.map_or(0, |(lo, hi)| hi - lo + 1);
        self.row_span().saturating_mul(columns)
    }
}

/// Adds up the grids of a workbook's sheets and refuses the workbook as soon as they are too
/// large.
struct Grids {
    total: u64,
    limits: Limits,
    error: fn(String) -> Error,
}

impl Grids {
    fn sheet(&mut self, extent: &Extent) -> Result<()> {
        if extent.row_span() > self.limits.max_rows_per_sheet {
            return Err(self.limits.rows_exceeded());
        }
        self.reserve(extent.cells())
    }

    fn reserve(&mut self, cells: u64) -> Result<()> {
        self.total = self.total.saturating_add(cells);
        if self.total > MAX_GRID_CELLS {
            return Err((self.error)(format!(
                "sheets span {} cells, more than the {MAX_GRID_CELLS} that fit in memory",
                self.total
            )));
        }
        Ok(())
    }
}

/// Reads the cell records of an XLS workbook stream (BIFF5 or BIFF8) for their positions.
pub(crate) fn check_xls(bytes: &[u8], limits: &Limits, error: fn(String) -> Error) -> Result<()> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|err| error(format!("not an excel 97-2003 workbook: {err}")))?;
    let Some(name) = ["/Workbook", "/Book"]
        .into_iter()
        .find(|name| file.is_stream(name))
    else {
        // calamine names what is missing.
        return Ok(());
    };
    let mut stream = Vec::new();
    file.open_stream(name)
        .and_then(|s| s.take(bytes.len() as u64).read_to_end(&mut stream))
        .map_err(|err| error(format!("cannot read the workbook stream: {err}")))?;
    let mut grids = Grids {
        total: 0,
        limits: *limits,
        error,
    };
    let mut depth = 0usize;
    let mut extent = Extent::default();
    let mut at = 0;
    while at + 4 <= stream.len() {
        let kind = u16::from_le_bytes([stream[at], stream[at + 1]]);
        let len = usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
        let body = &stream[at + 4..(at + 4 + len).min(stream.len())];
        at += 4 + len;
        let u16_at = |i: usize| {
            body.get(i..i + 2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
        };
        match kind {
            // BOF: a sheet, or a chart or macro substream nested in one.
            0x0809 => {
                depth += 1;
                if depth == 1 {
                    extent = Extent::default();
                }
            }
            // EOF
            0x000A => {
                if depth == 1 {
                    grids.sheet(&extent)?;
                }
                depth = depth.saturating_sub(1);
            }
            // Dimensions: calamine reserves room for the grid it declares, then frees it.
            0x0200 => {
                let cells = declared_cells(body);
                if cells > MAX_GRID_CELLS {
                    return Err(error(format!(
                        "a sheet declares {cells} cells, more than the {MAX_GRID_CELLS} that fit in memory"
                    )));
                }
            }
            // Number, Label, RString, BoolErr, RK, LabelSst, Formula: row, then column.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                if let (Some(row), Some(column)) = (u16_at(0), u16_at(2)) {
                    extent.add(row, column, column);
                }
            }
            // MulRk: row, first column, values, last column.
            0x00BD => {
                let last = body.len().checked_sub(2).and_then(u16_at);
                if let (Some(row), Some(first), Some(last)) = (u16_at(0), u16_at(2), last) {
                    extent.add(row, first, last.max(first));
                }
            }
            _ => {}
        }
    }
    if depth >= 1 {
        grids.sheet(&extent)?;
    }
    Ok(())
}

/// The cells a Dimensions record makes calamine reserve, computed as calamine does (including
/// its wrap-around when the last row is before the first).
fn declared_cells(body: &[u8]) -> u64 {
    let u16_at = |i: usize| u32::from(u16::from_le_bytes([body[i], body[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
    let (first_row, last_row, mut first_column, last_column) = match body.len() {
        10 => (u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
        14 | 16 => (u32_at(0), u32_at(4), u16_at(8), u16_at(10)),
        _ => return 0,
    };
    if first_column > 0xFF || last_column < first_column {
        first_column = 0;
    }
    let (end_row, end_column) = if last_row >= 1 && last_column >= 1 {
        (last_row - 1, last_column - 1)
    } else {
        (first_row, first_column)
    };
    let rows = end_row.wrapping_sub(first_row).wrapping_add(1);
    let columns = end_column.wrapping_sub(first_column).wrapping_add(1);
    u64::from(rows).saturating_mul(u64::from(columns))
}

/// Reads an ODS `content.xml` for the rows and columns its repeat counts expand to.
pub(crate) fn check_ods(content: &str, limits: &Limits, error: fn(String) -> Error) -> Result<()> {
    let mut grids = Grids {
        total: 0,
        limits: *limits,
        error,
    };
    let mut extent = Extent::default();
    let mut row = 0u64;
    let mut row_repeat = 1u64;
    let mut column = 0u64;
    let mut row_width: Option<u64> = None;
    let mut reader = quick_xml::Reader::from_str(content);
    loop {
        let event = reader
            .read_event()
            .map_err(|err| error(format!("malformed content.xml: {err}")))?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    "table" => {
                        grids.sheet(&extent)?;
                        extent = Extent::default();
                        row = 0;
                    }
                    "table-row" => {
                        if let Some(width) = row_width.take() {
                            extent.add(row, 0, width.saturating_sub(1));
                            extent.add(row.saturating_add(row_repeat - 1), 0, 0);
                        }
                        row = row.saturating_add(row_repeat);
                    }
                    _ => {}
                }
                continue;
            }
            Event::Eof => return Ok(()),
            _ => continue,
        };
        let repeat = |name: &str| {
            attr(&e, name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1)
        };
        match local(&e) {
            "table-row" if empty => row = row.saturating_add(repeat("number-rows-repeated")),
            "table-row" => {
                row_repeat = repeat("number-rows-repeated");
                column = 0;
                row_width = None;
            }
            "table-cell" | "covered-table-cell" => {
                let columns = repeat("number-columns-repeated");
                column = column.saturating_add(columns);
                // A cell with content or a value is data; a bare empty cell is only spacing.
                if !empty || attr(&e, "value-type").is_some() {
                    row_width = Some(column);
                }
            }
            _ => {}
        }
    }
}
