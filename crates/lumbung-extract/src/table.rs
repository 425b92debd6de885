//! A table read cell by cell (DOCX, HTML), rendered one line per row with cells joined by
//! " | " so that a row stays readable and searchable as a unit.

use crate::whitespace::single_line;

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) rows: Vec<String>,
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
            self.rows.push(cells.join(" | "));
        }
    }
}
