//! HTML: one section per heading (`h1`..`h6`), like Markdown, from the page's content only.
//!
//! Scripts, styles, navigation and hidden elements are dropped: a menu repeated on every
//! intranet page would otherwise match every question. The tree is walked iteratively, so deep
//! nesting cannot overflow the stack; and since html5ever takes time quadratic in the nesting
//! depth (a 600 KB page of nested `<div>`s costs minutes), pages nested deeper than
//! [`MAX_DEPTH`] are refused before parsing.

use ego_tree::iter::Edge;
use encoding_rs::Encoding;
use lumbung_core::Section;
use scraper::{Html, Node};

use crate::encoding::decode_with_label;
use crate::limits::CharBudget;
use crate::nesting::nesting_depth;
use crate::table::Table;
use crate::whitespace::{normalize, single_line};
use crate::{Error, ExtractedDocument, Limits, Result};

/// Browsers look for `<meta charset>` in the first 1024 bytes; so do we.
const CHARSET_PREFIX: usize = 1024;

/// Deepest element nesting accepted. Real pages stay below a hundred; Chromium stops nesting
/// at 512.
const MAX_DEPTH: usize = 4096;

pub(crate) fn extract(bytes: &[u8], stem: &str, limits: &Limits) -> Result<ExtractedDocument> {
    let source = decode_with_label(bytes, declared_charset(bytes))?;
    if nesting_depth(&source) > MAX_DEPTH {
        return Err(Error::Html(format!(
            "elements nested more than {MAX_DEPTH} deep"
        )));
    }
    let page = Html::parse_document(&source);
    let mut renderer = Renderer::new(limits);
    for edge in page.tree.root().traverse() {
        match edge {
            Edge::Open(node) => renderer.open(node.value())?,
            Edge::Close(node) => renderer.close(node.value())?,
        }
    }
    renderer.flush_section()?;
    let title = renderer
        .title
        .map(|t| single_line(&t))
        .filter(|t| !t.is_empty())
        .or(renderer.first_h1)
        .unwrap_or_else(|| stem.to_string());
    Ok(ExtractedDocument {
        title,
        sections: renderer.sections,
    })
}

/// The encoding a `<meta charset=...>` or `<meta http-equiv content="...; charset=...">` names.
fn declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(CHARSET_PREFIX)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let label: String = head[at..]
        .trim_start_matches(['"', '\'', ' '])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    Encoding::for_label(label.as_bytes())
}

/// Elements whose content is never page text.
fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "nav"
            | "noscript"
            | "template"
            | "svg"
            | "iframe"
            | "object"
            | "canvas"
            | "select"
    )
}

/// Elements that end a paragraph.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "header"
            | "footer"
            | "aside"
            | "blockquote"
            | "pre"
            | "ul"
            | "ol"
            | "dl"
            | "figure"
            | "figcaption"
            | "form"
            | "fieldset"
            | "address"
            | "hr"
            | "details"
            | "summary"
            | "table"
            | "body"
    )
}

/// Elements that end a line.
fn is_line(name: &str) -> bool {
    matches!(name, "li" | "dt" | "dd" | "br" | "tr" | "caption")
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

struct Renderer {
    budget: CharBudget,
    sections: Vec<Section>,
    title: Option<String>,
    first_h1: Option<String>,
    headings: Vec<(u8, String)>,
    body: String,
    /// Set while inside a heading (outside tables): its level and text so far.
    heading: Option<(u8, String)>,
    tables: Vec<Table>,
    /// Open links: their target and text so far.
    links: Vec<(String, String)>,
    in_title: bool,
    pre_depth: usize,
    /// Depth inside an element whose content is dropped; 0 when not inside one.
    skip_depth: usize,
}

impl Renderer {
    fn new(limits: &Limits) -> Self {
        Renderer {
            budget: CharBudget::new(limits),
            sections: Vec::new(),
            title: None,
            first_h1: None,
            headings: Vec::new(),
            body: String::new(),
            heading: None,
            tables: Vec::new(),
            links: Vec::new(),
            in_title: false,
            pre_depth: 0,
            skip_depth: 0,
        }
    }

    fn open(&mut self, node: &Node) -> Result<()> {
        match node {
            Node::Element(element) => {
                let name = element.name();
                if self.skip_depth > 0 {
                    self.skip_depth += 1;
                    return Ok(());
                }
                let hidden =
                    element.attr("hidden").is_some() || element.attr("aria-hidden") == Some("true");
                if is_skipped(name) || hidden {
                    self.skip_depth = 1;
                    return Ok(());
                }
                match name {
                    "title" if self.title.is_none() => {
                        self.in_title = true;
                        self.title = Some(String::new());
                    }
                    "pre" => self.pre_depth += 1,
                    "table" => self.tables.push(Table::default()),
                    "td" | "th" => {
                        if let Some(table) = self.tables.last_mut() {
                            table.cell.clear();
                        }
                    }
                    "a" => {
                        let href = element.attr("href").unwrap_or_default().trim();
                        self.links.push((href.to_string(), String::new()));
                    }
                    _ => {}
                }
                if let Some(level) = heading_level(name).filter(|_| self.tables.is_empty()) {
                    self.flush_section()?;
                    self.heading = Some((level, String::new()));
                } else if is_block(name) {
                    self.block_break();
                } else if is_line(name) {
                    self.line_break();
                }
            }
            Node::Text(text) if self.skip_depth == 0 => self.text(text),
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, node: &Node) -> Result<()> {
        let Node::Element(element) = node else {
            return Ok(());
        };
        if self.skip_depth > 0 {
            self.skip_depth -= 1;
            return Ok(());
        }
        let name = element.name();
        match name {
            // Void elements have no content: their break was written when they opened.
            "br" | "hr" => return Ok(()),
            "title" => self.in_title = false,
            "pre" => self.pre_depth = self.pre_depth.saturating_sub(1),
            "a" => self.end_link(),
            "td" | "th" => {
                if let Some(table) = self.tables.last_mut() {
                    table.end_cell();
                }
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.end_row();
                }
            }
            "table" => self.end_table(),
            _ => {}
        }
        if heading_level(name).is_some() && self.tables.is_empty() {
            self.end_heading();
        } else if is_block(name) {
            self.block_break();
        } else if is_line(name) {
            self.line_break();
        }
        Ok(())
    }

    fn text(&mut self, text: &str) {
        let text = if self.pre_depth > 0 {
            text.to_string()
        } else {
            // Outside `pre`, a run of whitespace (line breaks included) is one space in HTML.
            collapse_whitespace(text)
        };
        if self.in_title {
            if let Some(title) = &mut self.title {
                title.push_str(&text);
            }
            return;
        }
        for (_, link_text) in &mut self.links {
            link_text.push_str(&text);
        }
        let sink = self.sink();
        // Indentation between block elements would otherwise become a line of its own.
        let at_line_start = sink.is_empty() || sink.ends_with('\n');
        if at_line_start && text.trim().is_empty() {
            return;
        }
        sink.push_str(&text);
    }

    /// Where text goes now: the open heading, the innermost table cell, or the body.
    fn sink(&mut self) -> &mut String {
        if let Some((_, heading)) = &mut self.heading {
            return heading;
        }
        match self.tables.last_mut() {
            Some(table) => &mut table.cell,
            None => &mut self.body,
        }
    }

    fn line_break(&mut self) {
        if self.heading.is_some() || !self.tables.is_empty() {
            self.sink().push(' ');
        } else if !self.body.ends_with('\n') {
            // One break for an item's end and the next item's start.
            self.body.push('\n');
        }
    }

    fn block_break(&mut self) {
        if self.heading.is_some() || !self.tables.is_empty() {
            self.sink().push(' ');
        } else {
            self.body.push_str("\n\n");
        }
    }

    fn end_link(&mut self) {
        let Some((url, text)) = self.links.pop() else {
            return;
        };
        let target = url.strip_prefix("mailto:").unwrap_or(&url);
        // As in Markdown: keep addresses people ask for, but only absolute ones (a relative
        // link means nothing outside the site), and not in headings, which become citations.
        let absolute =
            url.starts_with("http://") || url.starts_with("https://") || url.starts_with("mailto:");
        if absolute && self.heading.is_none() && single_line(&text) != target {
            self.sink().push_str(&format!(" ({target})"));
        }
    }

    fn end_table(&mut self) {
        let Some(table) = self.tables.pop() else {
            return;
        };
        if table.is_empty() {
            return;
        }
        let lines = table.lines();
        // A table inside a cell stays in that cell, its rows on one line.
        if let Some(outer) = self.tables.last_mut() {
            outer.cell.push(' ');
            outer.cell.push_str(&lines.join(" / "));
            return;
        }
        self.body.push_str("\n\n");
        self.body.push_str(&lines.join("\n"));
        self.body.push_str("\n\n");
    }

    fn end_heading(&mut self) {
        let Some((level, text)) = self.heading.take() else {
            return;
        };
        let text = single_line(&text);
        while self.headings.last().is_some_and(|(open, _)| *open >= level) {
            self.headings.pop();
        }
        if text.is_empty() {
            return;
        }
        if level == 1 && self.first_h1.is_none() {
            self.first_h1 = Some(text.clone());
        }
        self.headings.push((level, text));
    }

    fn flush_section(&mut self) -> Result<()> {
        let text = normalize(&std::mem::take(&mut self.body));
        if text.is_empty() {
            return Ok(());
        }
        self.budget.spend(&text)?;
        self.sections.push(Section {
            heading_path: self.headings.iter().map(|(_, h)| h.clone()).collect(),
            page: None,
            text,
        });
        Ok(())
    }
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_deep_pages_are_refused_before_parsing() {
        let page = format!("{}x", "<div>".repeat(MAX_DEPTH + 1));
        let err = extract(page.as_bytes(), "s", &Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), "html: elements nested more than 4096 deep");
    }
}
