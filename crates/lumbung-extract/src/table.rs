//! A table read cell by cell (Markdown, DOCX, HTML), rendered one line per row.
//!
//! Assistants answer questions such as "what was the OEE of L4 on shift C?" from single rows,
//! so when a table has a header row every later row names its columns, as worksheet rows do:
//! `Line: L4; Shift: C; OEE: 65.8%`. Without a header, cells are joined by ` | `.

use std::fmt::Display;

use crate::whitespace::single_line;

#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
    /// The first row is the header: the format marks it (a Markdown table head).
    marked_header: bool,
    pub(crate) cells: Vec<String>,
    pub(crate) cell: String,
}

impl Table {
    pub(crate) fn end_cell(&mut self) {
        let cell = single_line(&std::mem::take(&mut self.cell));
        self.cells.push(cell);
    }

    /// Rows whose cells are all empty are dropped.
    pub(crate) fn end_row(&mut self) {
        let cells = std::mem::take(&mut self.cells);
        if cells.iter().any(|c| !c.is_empty()) {
            self.rows.push(cells);
        }
    }

    /// Ends the row the format marks as the table's header.
    pub(crate) fn end_header_row(&mut self) {
        let had_rows = !self.rows.is_empty();
        self.end_row();
        if !had_rows && !self.rows.is_empty() {
            self.marked_header = true;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One line per row. A header row (marked, or a first row of at least two cells, all of
    /// them words rather than figures, above at least one more row) names the cells of the
    /// rows under it and is not repeated alone; a table that is only a header keeps it.
    pub(crate) fn lines(&self) -> Vec<String> {
        let header = self.rows.first().filter(|first| {
            self.rows.len() > 1
                && (self.marked_header
                    || (first.len() >= 2 && first.iter().all(|cell| is_label(cell))))
        });
        let Some(header) = header else {
            return self.rows.iter().map(|row| row.join(" | ")).collect();
        };
        self.rows[1..]
            .iter()
            .map(|row| {
                labelled_row(
                    row.iter()
                        .enumerate()
                        .filter(|(_, value)| !value.is_empty())
                        .map(|(column, value)| {
                            let name = header.get(column).filter(|name| !name.is_empty());
                            (name, value)
                        }),
                )
            })
            .collect()
    }
}

/// A row under a header, as every table and worksheet row is written: `Name: value; Name:
/// value`, a value without a column name alone.
pub(crate) fn labelled_row(
    cells: impl IntoIterator<Item = (Option<impl Display>, impl Display)>,
) -> String {
    cells
        .into_iter()
        .map(|(name, value)| match name {
            Some(name) => format!("{name}: {value}"),
            None => value.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A header cell: text with a letter in it that does not start with a figure (`12`, `4.5%`,
/// `3 m` are values).
fn is_label(cell: &str) -> bool {
    cell.chars().any(char::is_alphabetic) && !cell.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]], marked: bool) -> Table {
        let mut table = Table::default();
        for (n, row) in rows.iter().enumerate() {
            for cell in *row {
                table.cell.push_str(cell);
                table.end_cell();
            }
            if n == 0 && marked {
                table.end_header_row();
            } else {
                table.end_row();
            }
        }
        table
    }

    #[test]
    fn rows_under_a_header_name_their_columns() {
        let t = table(
            &[
                &["Line", "Shift", "OEE"],
                &["L4", "C", "65.8%"],
                &["L5", "", "88.7%"],
            ],
            true,
        );
        assert_eq!(
            t.lines(),
            ["Line: L4; Shift: C; OEE: 65.8%", "Line: L5; OEE: 88.7%"]
        );
    }

    #[test]
    fn an_unmarked_first_row_of_words_is_a_header_and_figures_are_not() {
        let words = table(
            &[&["Code", "Meaning"], &["D04", "Hydraulic failure"]],
            false,
        );
        assert_eq!(words.lines(), ["Code: D04; Meaning: Hydraulic failure"]);
        let figures = table(&[&["2026", "Q3"], &["L1", "74.5%"]], false);
        assert_eq!(figures.lines(), ["2026 | Q3", "L1 | 74.5%"]);
        let measures = table(&[&["Indoor", "3 m"], &["Yard", "2 m"]], false);
        assert_eq!(measures.lines(), ["Indoor | 3 m", "Yard | 2 m"]);
        let single_column = table(&[&["Notes"], &["Keep spare seals"]], false);
        assert_eq!(single_column.lines(), ["Notes", "Keep spare seals"]);
        let only_header = table(&[&["Line", "OEE"]], true);
        assert_eq!(only_header.lines(), ["Line | OEE"]);
    }

    #[test]
    fn cells_beyond_the_header_keep_their_value() {
        let t = table(&[&["Line", ""], &["L1", "note", "extra"]], true);
        assert_eq!(t.lines(), ["Line: L1; note; extra"]);
    }
}
