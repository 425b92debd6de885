//! Workbooks (XLSX, XLS, ODS) through `calamine`: one section per worksheet, one line per row.
//!
//! Assistants answer questions such as "what was the OEE of PPR-9087 on line 2?" from single
//! rows, so every data row names its columns: `Product: PPR-9087; Line: L2; OEE: 78.4%`. The
//! header is the first row with at least two cells; rows above it (a sheet title) are kept as
//! plain lines.
//!
//! XLSX is read cell by cell, never as a dense grid, so a sheet with one cell in A1 and one in
//! XFD1048576 costs two cells, not seventeen billion.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Data, ExcelDateTime, Ods, Reader, SheetType, Xls, Xlsx};
use lumbung_core::Section;

use crate::grid;
use crate::limits::CharBudget;
use crate::ooxml::Package;
use crate::table::labelled_row;
use crate::whitespace::single_line;
use crate::{Error, ExtractedDocument, Limits, Result};

/// The workbook formats read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workbook {
    Xlsx,
    Xls,
    Ods,
}

pub(crate) fn extract(
    bytes: &[u8],
    stem: &str,
    kind: Workbook,
    limits: &Limits,
) -> Result<ExtractedDocument> {
    let mut budget = CharBudget::new(limits);
    let (title, sections) = match kind {
        Workbook::Xlsx => xlsx(bytes, limits, &mut budget)?,
        Workbook::Xls => {
            grid::check_xls(bytes, limits, xls_error)?;
            let workbook = Xls::new(Cursor::new(bytes))
                .map_err(|err| xls_error(format!("cannot open workbook: {err}")))?;
            (None, dense(workbook, xls_error, limits, &mut budget)?)
        }
        Workbook::Ods => {
            let mut package = Package::open(bytes, limits, ods_error)?;
            package.check_xml_parts()?;
            let content = package
                .read_xml("content.xml")?
                .ok_or_else(|| ods_error("content.xml is missing".to_string()))?;
            grid::check_ods(&content, limits, ods_error)?;
            let workbook = Ods::new(Cursor::new(bytes))
                .map_err(|err| ods_error(format!("cannot open workbook: {err}")))?;
            (None, dense(workbook, ods_error, limits, &mut budget)?)
        }
    };
    Ok(ExtractedDocument {
        title: title.unwrap_or_else(|| stem.to_string()),
        sections,
    })
}

fn xlsx_error(reason: String) -> Error {
    Error::Spreadsheet {
        format: "xlsx",
        reason,
    }
}

fn xls_error(reason: String) -> Error {
    Error::Spreadsheet {
        format: "xls",
        reason,
    }
}

fn ods_error(reason: String) -> Error {
    Error::Spreadsheet {
        format: "ods",
        reason,
    }
}

/// The names of the sheets that hold cells (not charts, dialogs or macros), in workbook order.
fn worksheet_names<'a, R: Reader<Cursor<&'a [u8]>>>(workbook: &R) -> Vec<String> {
    workbook
        .sheets_metadata()
        .iter()
        .filter(|sheet| sheet.typ == SheetType::WorkSheet)
        .map(|sheet| sheet.name.clone())
        .collect()
}

type Sections = (Option<String>, Vec<Section>);

fn xlsx(bytes: &[u8], limits: &Limits, budget: &mut CharBudget) -> Result<Sections> {
    let mut package = Package::open(bytes, limits, xlsx_error)?;
    // calamine unpacks the parts itself: refuse a bomb before it starts.
    package.check_xml_parts()?;
    grid::check_shared_strings(&mut package, xlsx_error)?;
    let title = package.core_title()?;
    let mut workbook = Xlsx::new(Cursor::new(bytes))
        .map_err(|err| xlsx_error(format!("cannot open workbook: {err}")))?;
    let names = worksheet_names(&workbook);
    let mut sections = Vec::new();
    for name in names {
        let error = |err: calamine::XlsxError| xlsx_error(format!("sheet {name:?}: {err}"));
        let mut reader = workbook.worksheet_cells_reader(&name).map_err(error)?;
        // Number formats by style id: a percentage is stored as 0.022 and shown as 2.2%.
        let formats: Vec<Option<String>> = reader
            .styles()
            .iter()
            .map(|style| style.number_format.as_ref().map(|f| f.format_code.clone()))
            .collect();
        let mut sheet = SheetWriter::new(limits, budget);
        let mut row = Vec::new();
        let mut row_index = None;
        while let Some((cell, style)) = reader.next_cell_with_style_id().map_err(error)? {
            let (r, c) = cell.get_position();
            if row_index != Some(r) {
                sheet.row(std::mem::take(&mut row))?;
                row_index = Some(r);
            }
            let format = formats.get(style).and_then(Option::as_deref);
            let value = cell_text(&Data::from(cell.get_value().clone()), format);
            if !value.is_empty() {
                row.push((c, value));
            }
        }
        sheet.row(row)?;
        sections.extend(sheet.finish(vec![name]));
    }
    Ok((title, sections))
}

/// XLS and ODS, which calamine reads only as whole grids ([`grid`] checked their size).
fn dense<'a, R>(
    mut workbook: R,
    error: fn(String) -> Error,
    limits: &Limits,
    budget: &mut CharBudget,
) -> Result<Vec<Section>>
where
    R: Reader<Cursor<&'a [u8]>>,
    R::Error: std::fmt::Display,
{
    let mut sections = Vec::new();
    for name in worksheet_names(&workbook) {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|err| error(format!("sheet {name:?}: {err}")))?;
        let Some((_, first_column)) = range.start() else {
            continue;
        };
        let mut sheet = SheetWriter::new(limits, budget);
        for cells in range.rows() {
            let row = cells
                .iter()
                .zip(first_column..)
                .map(|(value, column)| (column, cell_text(value, None)))
                .filter(|(_, text)| !text.is_empty())
                .collect();
            sheet.row(row)?;
        }
        sections.extend(sheet.finish(vec![name]));
    }
    Ok(sections)
}

/// Collects the rows of one sheet as text, enforcing the row and character limits as it goes.
pub(crate) struct SheetWriter<'b> {
    headers: Option<BTreeMap<u32, String>>,
    text: String,
    rows: u64,
    limits: Limits,
    budget: &'b mut CharBudget,
}

impl<'b> SheetWriter<'b> {
    pub(crate) fn new(limits: &Limits, budget: &'b mut CharBudget) -> Self {
        SheetWriter {
            headers: None,
            text: String::new(),
            rows: 0,
            limits: *limits,
            budget,
        }
    }

    /// Adds one row, given as its non-empty cells `(column, text)` in column order.
    pub(crate) fn row(&mut self, cells: Vec<(u32, String)>) -> Result<()> {
        if cells.is_empty() {
            return Ok(());
        }
        self.rows += 1;
        if self.rows > self.limits.max_rows_per_sheet {
            return Err(self.limits.rows_exceeded());
        }
        let line = match &self.headers {
            None if cells.len() >= 2 => {
                self.headers = Some(cells.into_iter().collect());
                return Ok(());
            }
            None => cells
                .into_iter()
                .map(|(_, value)| value)
                .collect::<Vec<_>>()
                .join(" | "),
            Some(headers) => labelled_row(cells.into_iter().map(|(column, value)| {
                let name = match headers.get(&column) {
                    Some(header) => header.clone(),
                    None => column_name(column),
                };
                (Some(name), value)
            })),
        };
        self.budget.spend(&line)?;
        self.text.push_str(&line);
        self.text.push('\n');
        Ok(())
    }

    /// The sheet's section, if any row had text.
    pub(crate) fn finish(self, heading_path: Vec<String>) -> Option<Section> {
        let text = self.text.trim_end().to_string();
        if text.is_empty() {
            // A sheet holding only its header row still says what it is about.
            let headers = self.headers?;
            let line = headers.into_values().collect::<Vec<_>>().join(" | ");
            return Some(Section {
                heading_path,
                page: None,
                text: line,
            });
        }
        Some(Section {
            heading_path,
            page: None,
            text,
        })
    }
}

/// Excel's name for a 0-based column index: A, B, ..., Z, AA, AB, ...
fn column_name(column: u32) -> String {
    let mut n = u64::from(column) + 1;
    let mut name = Vec::new();
    while n > 0 {
        let digit = ((n - 1) % 26) as u8;
        name.push(b'A' + digit);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// A cell as the sheet shows it, as far as the stored value and its number format tell.
fn cell_text(value: &Data, format: Option<&str>) -> String {
    match value {
        Data::Empty => String::new(),
        Data::String(text) => single_line(text),
        Data::Int(n) => n.to_string(),
        Data::Float(x) => match format.and_then(percent_decimals) {
            Some(decimals) => format!("{:.*}%", decimals, x * 100.0),
            None => number(*x),
        },
        Data::Bool(true) => "TRUE".to_string(),
        Data::Bool(false) => "FALSE".to_string(),
        Data::DateTime(datetime) => date_time(datetime),
        Data::DateTimeIso(text) | Data::DurationIso(text) => text.clone(),
        Data::Error(error) => error.to_string(),
    }
}

/// A number as a person would type it: whole numbers without ".0", others rounded to 12
/// significant digits, which removes binary noise (0.30000000000000004, or 0.0150000000000001
/// after a subtraction) while keeping every digit of a measured value.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let rounded: f64 = format!("{x:.11e}").parse().unwrap_or(x);
    format!("{rounded}")
}

/// The decimals a percentage format shows (`0.0%` shows one), or `None` when the number format
/// is not a percentage. Only the first section (positive numbers) of the format is read.
fn percent_decimals(format: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_brackets = false;
    let mut escaped = false;
    let mut after_point = false;
    let mut decimals = 0;
    let mut percent = false;
    for c in format.chars() {
        match c {
            _ if escaped => escaped = false,
            '"' => in_quotes = !in_quotes,
            _ if in_quotes => {}
            '\\' | '_' | '*' => escaped = true,
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            _ if in_brackets => {}
            ';' => break,
            '.' => after_point = true,
            '0' | '#' | '?' if after_point => decimals += 1,
            '%' => percent = true,
            _ => {}
        }
    }
    percent.then_some(decimals)
}

/// A date as ISO 8601 (`2026-10-14`), with the time where the cell has one, and a duration as
/// hours, minutes and seconds.
fn date_time(datetime: &ExcelDateTime) -> String {
    if datetime.is_duration() {
        let seconds = (datetime.as_f64() * 86_400.0).round() as i64;
        let sign = if seconds < 0 { "-" } else { "" };
        let seconds = seconds.unsigned_abs();
        return format!(
            "{sign}{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
    }
    let (year, month, day, hour, minute, second, _) = datetime.to_ymd_hms_milli();
    let time = match second {
        0 => format!("{hour:02}:{minute:02}"),
        _ => format!("{hour:02}:{minute:02}:{second:02}"),
    };
    if datetime.as_f64() < 1.0 {
        // A time of day without a date.
        time
    } else if (hour, minute, second) == (0, 0, 0) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02} {time}")
    }
}

#[cfg(test)]
mod tests {
    use calamine::ExcelDateTimeType;

    use super::*;

    #[test]
    fn numbers_lose_float_noise_and_trailing_zeros() {
        assert_eq!(number(97160.0), "97160");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(0.1 + 0.2 - 0.285), "0.015");
        assert_eq!(number(1234567.891), "1234567.891");
        // Whole numbers keep every digit: they are often ids or serial numbers.
        assert_eq!(number(1234567890123.0), "1234567890123");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn percentages_follow_their_number_format() {
        assert_eq!(percent_decimals("0%"), Some(0));
        assert_eq!(percent_decimals("0.0%"), Some(1));
        assert_eq!(percent_decimals("#,##0.00%;[Red]-0.00%"), Some(2));
        assert_eq!(percent_decimals("0.00"), None);
        assert_eq!(percent_decimals("0.0\"%\""), None);
        assert_eq!(percent_decimals("General"), None);
        assert_eq!(cell_text(&Data::Float(0.022), Some("0.0%")), "2.2%");
        assert_eq!(cell_text(&Data::Float(0.786), Some("0%")), "79%");
        assert_eq!(cell_text(&Data::Float(0.022), Some("General")), "0.022");
    }

    #[test]
    fn dates_and_durations_read_as_people_write_them() {
        let at = |value| ExcelDateTime::new(value, ExcelDateTimeType::DateTime, false);
        assert_eq!(date_time(&at(46309.0)), "2026-10-14");
        assert_eq!(date_time(&at(46309.5)), "2026-10-14 12:00");
        assert_eq!(date_time(&at(0.25)), "06:00");
        let duration =
            ExcelDateTime::new(1.5 + 30.0 / 86_400.0, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(date_time(&duration), "36:00:30");
    }

    #[test]
    fn other_cells_render_as_shown() {
        assert_eq!(
            cell_text(&Data::String(" PPR-9087\n A ".into()), None),
            "PPR-9087 A"
        );
        assert_eq!(cell_text(&Data::Int(-7), None), "-7");
        assert_eq!(cell_text(&Data::Bool(true), None), "TRUE");
        assert_eq!(cell_text(&Data::Empty, None), "");
        assert_eq!(
            cell_text(&Data::Error(calamine::CellErrorType::Div0), None),
            "#DIV/0!"
        );
    }

    #[test]
    fn column_names_are_excel_letters() {
        let names: Vec<String> = [0, 1, 25, 26, 27, 701, 702, 16383]
            .into_iter()
            .map(column_name)
            .collect();
        assert_eq!(names, ["A", "B", "Z", "AA", "AB", "ZZ", "AAA", "XFD"]);
    }

    #[test]
    fn rows_name_their_columns_after_the_header() {
        let limits = Limits::default();
        let mut budget = CharBudget::new(&limits);
        let mut sheet = SheetWriter::new(&limits, &mut budget);
        let row = |cells: &[(u32, &str)]| -> Vec<(u32, String)> {
            cells.iter().map(|(c, v)| (*c, v.to_string())).collect()
        };
        sheet.row(row(&[(0, "Hall B output, October")])).unwrap();
        sheet.row(vec![]).unwrap();
        sheet
            .row(row(&[(0, "Line"), (1, "Product"), (3, "OEE")]))
            .unwrap();
        sheet
            .row(row(&[(0, "L2"), (1, "PPR-9087"), (2, "x"), (3, "78.4%")]))
            .unwrap();
        let section = sheet.finish(vec!["Oct".into()]).unwrap();
        assert_eq!(section.heading_path, ["Oct"]);
        assert_eq!(
            section.text,
            "Hall B output, October\nLine: L2; Product: PPR-9087; C: x; OEE: 78.4%"
        );
    }

    #[test]
    fn rows_beyond_the_limit_are_an_error() {
        let limits = Limits {
            max_rows_per_sheet: 2,
            ..Limits::default()
        };
        let mut budget = CharBudget::new(&limits);
        let mut sheet = SheetWriter::new(&limits, &mut budget);
        for _ in 0..2 {
            sheet.row(vec![(0, "a".into()), (1, "b".into())]).unwrap();
        }
        let err = sheet.row(vec![(0, "a".into())]).unwrap_err();
        assert_eq!(err.to_string(), "limit exceeded: max_rows_per_sheet = 2");
    }
}
