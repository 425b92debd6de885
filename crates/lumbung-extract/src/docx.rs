//! Word (DOCX): one section per heading, like Markdown, read from the package's main document.
//!
//! A paragraph is a heading when its style is one of Word's heading styles (or Title, the top
//! level) or carries an outline level; style ids are localised ("berschrift1", "1"), so the
//! level comes from `styles.xml` where the style's name or outline level says it. Tables become
//! one line per row, each naming its columns after a header row (see `table.rs`).

use std::collections::HashMap;

use lumbung_core::Section;
use quick_xml::events::{BytesStart, Event};

use crate::limits::CharBudget;
use crate::ooxml::{Package, attr, local, resolve_entity};
use crate::table::Table;
use crate::whitespace::{normalize, single_line};
use crate::{Error, ExtractedDocument, Limits, Result};

/// Heading level of the Title style: above every numbered heading.
const TITLE_LEVEL: u8 = 0;

pub(crate) fn extract(bytes: &[u8], stem: &str, limits: &Limits) -> Result<ExtractedDocument> {
    let mut package = Package::open(bytes, limits, Error::Docx)?;
    let main = package
        .main_part()?
        .unwrap_or_else(|| "word/document.xml".to_string());
    let folder = main.rsplit_once('/').map_or("", |(folder, _)| folder);
    let styles = match package.read_xml(&format!("{folder}/styles.xml"))? {
        Some(xml) => paragraph_styles(&xml),
        None => HashMap::new(),
    };
    let document = package
        .read_xml(&main)?
        .ok_or_else(|| Error::Docx(format!("{main} is missing")))?;
    let core_title = package.core_title()?;
    let mut renderer = Renderer::new(styles, limits);
    renderer.render(&document)?;
    renderer.flush_section();
    let title = core_title
        .or(renderer.first_heading)
        .unwrap_or_else(|| stem.to_string());
    Ok(ExtractedDocument {
        title,
        sections: renderer.sections,
    })
}

/// What a paragraph style makes of its paragraphs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ParagraphStyle {
    /// Heading level: 0 for Title, 1 to 9 for headings, `None` for body text.
    level: Option<u8>,
    /// Whether the style numbers or bullets its paragraphs ("List Bullet").
    list: bool,
}

/// The paragraph styles in `styles.xml` that make headings or list items, by style id.
fn paragraph_styles(xml: &str) -> HashMap<String, ParagraphStyle> {
    let mut styles: HashMap<String, (ParagraphStyle, Option<String>)> = HashMap::new();
    let mut current: Option<String> = None;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(e)) if e.local_name().as_ref() == "style" => {
                current = None;
                continue;
            }
            Ok(Event::Eof) => break,
            Ok(_) => continue,
            // Styles only refine headings; a broken styles part leaves the built-in names.
            Err(_) => break,
        };
        let style = current.as_ref().and_then(|id| styles.get_mut(id));
        match (local(&e), style) {
            ("style", _) if attr(&e, "type").as_deref() == Some("paragraph") => {
                if let Some(id) = attr(&e, "styleId") {
                    let style = ParagraphStyle {
                        level: builtin_level(&id),
                        list: false,
                    };
                    styles.insert(id.clone(), (style, None));
                    current = (!empty).then_some(id);
                }
            }
            ("name", Some((style, _))) => {
                if let Some(level) = attr(&e, "val").and_then(|name| named_level(&name)) {
                    style.level = Some(level);
                }
            }
            ("outlineLvl", Some((style, _))) => {
                if let Some(level) = attr(&e, "val").and_then(|v| outline_level(&v)) {
                    style.level.get_or_insert(level);
                }
            }
            ("numPr", Some((style, _))) => style.list = true,
            ("basedOn", Some((_, based_on))) => *based_on = attr(&e, "val"),
            _ => {}
        }
    }
    // A style based on a heading style is a heading too ("Heading 1 Numbered"). The chain is
    // followed a few steps only: a cycle in a hostile file must not loop.
    let mut resolved = HashMap::new();
    for (id, (style, based_on)) in &styles {
        let mut style = *style;
        let mut parent = based_on.as_ref();
        for _ in 0..8 {
            let Some((base, next)) = parent.and_then(|p| styles.get(p)) else {
                break;
            };
            style.level = style.level.or(base.level);
            style.list |= base.list;
            parent = next.as_ref();
        }
        if style != ParagraphStyle::default() {
            resolved.insert(id.clone(), style);
        }
    }
    resolved
}

/// The level of Word's English built-in style ids, used when `styles.xml` is missing.
fn builtin_level(style_id: &str) -> Option<u8> {
    if style_id.eq_ignore_ascii_case("title") {
        return Some(TITLE_LEVEL);
    }
    let digits = style_id.strip_prefix("Heading")?;
    digits.parse().ok().filter(|n| (1..=9).contains(n))
}

/// The level of a style by its name: Word keeps English names ("heading 1") whatever the UI
/// language, which is what makes localised style ids readable.
fn named_level(name: &str) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    if name == "title" {
        return Some(TITLE_LEVEL);
    }
    let digits = name.strip_prefix("heading")?.trim();
    digits.parse().ok().filter(|n| (1..=9).contains(n))
}

/// `w:outlineLvl` counts from 0; 9 means body text.
fn outline_level(value: &str) -> Option<u8> {
    value.parse::<u8>().ok().filter(|&v| v < 9).map(|v| v + 1)
}

#[derive(Default)]
struct Paragraph {
    level: Option<u8>,
    is_list_item: bool,
    text: String,
}

struct Renderer {
    styles: HashMap<String, ParagraphStyle>,
    budget: CharBudget,
    sections: Vec<Section>,
    first_heading: Option<String>,
    /// Open headings, outermost first.
    headings: Vec<(u8, String)>,
    body: String,
    /// Open paragraphs: more than one when a text box sits inside a paragraph.
    paragraphs: Vec<Paragraph>,
    /// Open tables, innermost last.
    tables: Vec<Table>,
    /// Depth of elements whose content is skipped (`mc:Fallback` repeats `mc:Choice`).
    skip_depth: usize,
    in_text: bool,
    in_paragraph_properties: bool,
}

impl Renderer {
    fn new(styles: HashMap<String, ParagraphStyle>, limits: &Limits) -> Self {
        Renderer {
            styles,
            budget: CharBudget::new(limits),
            sections: Vec::new(),
            first_heading: None,
            headings: Vec::new(),
            body: String::new(),
            paragraphs: Vec::new(),
            tables: Vec::new(),
            skip_depth: 0,
            in_text: false,
            in_paragraph_properties: false,
        }
    }

    fn render(&mut self, xml: &str) -> Result<()> {
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            let event = reader
                .read_event()
                .map_err(|err| Error::Docx(format!("malformed document xml: {err}")))?;
            if self.skip_depth > 0 {
                match event {
                    Event::Start(_) => self.skip_depth += 1,
                    Event::End(_) => self.skip_depth -= 1,
                    Event::Eof => return Ok(()),
                    _ => {}
                }
                continue;
            }
            match event {
                Event::Start(e) => self.start(&e, false),
                Event::Empty(e) => {
                    // `<w:p/>` is an empty paragraph; running start and end keeps the stacks even.
                    self.start(&e, true);
                    self.end(local(&e))?;
                }
                Event::End(e) => {
                    let name = e.local_name();
                    self.end(name.as_ref())?;
                }
                Event::Text(text) if self.in_text => self.push(&text.xml10_content()),
                Event::CData(text) if self.in_text => self.push(&text.into_inner()),
                Event::GeneralRef(entity) if self.in_text => {
                    if let Some(resolved) = resolve_entity(&entity) {
                        self.push(&resolved);
                    }
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) {
        match local(e) {
            // `mc:Fallback` repeats `mc:Choice` for older readers; a `*Change` element holds
            // the properties before a tracked change, which must not override the current ones.
            "Fallback" | "pPrChange" | "rPrChange" if !empty => self.skip_depth = 1,
            "p" => self.paragraphs.push(Paragraph::default()),
            "pPr" => self.in_paragraph_properties = true,
            "pStyle" if self.in_paragraph_properties => {
                let style = attr(e, "val").map(|id| {
                    self.styles.get(&id).copied().unwrap_or(ParagraphStyle {
                        level: builtin_level(&id),
                        list: false,
                    })
                });
                if let (Some(paragraph), Some(style)) = (self.paragraphs.last_mut(), style) {
                    paragraph.level = paragraph.level.or(style.level);
                    paragraph.is_list_item |= style.list;
                }
            }
            "outlineLvl" if self.in_paragraph_properties => {
                let level = attr(e, "val").and_then(|v| outline_level(&v));
                if let (Some(paragraph), Some(level)) = (self.paragraphs.last_mut(), level) {
                    paragraph.level = Some(level);
                }
            }
            "numPr" if self.in_paragraph_properties => {
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.is_list_item = true;
                }
            }
            "t" => self.in_text = true,
            "tab" if !self.in_paragraph_properties => self.push("\t"),
            "br" | "cr" => self.push("\n"),
            "noBreakHyphen" => self.push("-"),
            "tbl" => self.tables.push(Table::default()),
            "tc" => {
                if let Some(table) = self.tables.last_mut() {
                    table.cell.clear();
                }
            }
            _ => {}
        }
    }

    /// Handles the end of the element whose name without prefix is `name`.
    fn end(&mut self, name: &str) -> Result<()> {
        match name {
            "t" => self.in_text = false,
            "pPr" => self.in_paragraph_properties = false,
            "p" => self.end_paragraph()?,
            "tc" => {
                if let Some(table) = self.tables.last_mut() {
                    table.end_cell();
                }
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.end_row();
                }
            }
            "tbl" => self.end_table()?,
            _ => {}
        }
        Ok(())
    }

    /// Text of a run, written to the innermost open paragraph.
    fn push(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn end_paragraph(&mut self) -> Result<()> {
        let Some(paragraph) = self.paragraphs.pop() else {
            return Ok(());
        };
        // A text box's paragraphs belong to the paragraph that anchors the text box.
        if let Some(outer) = self.paragraphs.last_mut() {
            outer.text.push('\n');
            outer.text.push_str(&paragraph.text);
            return Ok(());
        }
        if let Some(table) = self.tables.last_mut() {
            // Headings inside a cell are cell text: a table does not open sections.
            table.cell.push(' ');
            table.cell.push_str(&paragraph.text);
            return Ok(());
        }
        match paragraph.level {
            Some(level) => self.heading(level, &paragraph.text),
            None => {
                let text = normalize(&paragraph.text);
                if text.is_empty() {
                    return Ok(());
                }
                self.spend(&text)?;
                if !self.body.is_empty() {
                    self.body
                        .push_str(if paragraph.is_list_item { "\n" } else { "\n\n" });
                }
                self.body.push_str(&text);
            }
        }
        Ok(())
    }

    fn end_table(&mut self) -> Result<()> {
        let Some(table) = self.tables.pop() else {
            return Ok(());
        };
        let lines = table.lines();
        let rows = lines.join("\n");
        if rows.is_empty() {
            return Ok(());
        }
        // A table inside a cell stays in that cell, its rows on one line.
        if let Some(outer) = self.tables.last_mut() {
            outer.cell.push(' ');
            outer.cell.push_str(&lines.join(" / "));
            return Ok(());
        }
        self.spend(&rows)?;
        self.body.push_str("\n\n");
        self.body.push_str(&rows);
        self.body.push_str("\n\n");
        Ok(())
    }

    fn heading(&mut self, level: u8, text: &str) {
        let text = single_line(text);
        if text.is_empty() {
            return;
        }
        self.flush_section();
        while self.headings.last().is_some_and(|(open, _)| *open >= level) {
            self.headings.pop();
        }
        if self.first_heading.is_none() {
            self.first_heading = Some(text.clone());
        }
        self.headings.push((level, text));
    }

    fn spend(&mut self, text: &str) -> Result<()> {
        self.budget.spend(text)
    }

    fn flush_section(&mut self) {
        let text = normalize(&std::mem::take(&mut self.body));
        if !text.is_empty() {
            self.sections.push(Section {
                heading_path: self.headings.iter().map(|(_, h)| h.clone()).collect(),
                page: None,
                text,
            });
        }
    }
}
