//! Markdown: one section per heading, with the enclosing headings as its path, rendered as plain
//! text that reads like the page does (no `#`, `*` or backticks for the index to trip over).

use lumbung_core::Section;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::encoding::decode_text;
use crate::table::Table;
use crate::whitespace::{is_cjk, normalize, single_line};
use crate::{ExtractedDocument, Result};

pub(crate) fn extract(bytes: &[u8], stem: &str) -> Result<ExtractedDocument> {
    let source = decode_text(bytes)?;
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS;
    let mut renderer = Renderer::default();
    for event in Parser::new_ext(&source, options) {
        renderer.event(event);
    }
    renderer.flush_section();
    let title = renderer.title.unwrap_or_else(|| stem.to_string());
    Ok(ExtractedDocument {
        title,
        sections: renderer.sections,
    })
}

#[derive(Default)]
struct Renderer {
    sections: Vec<Section>,
    title: Option<String>,
    /// Open headings, outermost first.
    headings: Vec<(HeadingLevel, String)>,
    /// Text of the current section so far.
    body: String,
    /// Set while inside a heading: its text goes to the path, not the body.
    heading: Option<String>,
    /// Set while inside a table.
    table: Option<Table>,
    /// Next number of each open list; `None` for bullet lists.
    lists: Vec<Option<u64>>,
    /// Open links: destination and the text written so far.
    links: Vec<(String, String)>,
    /// A soft line break waiting for the next text to decide whether it becomes a space.
    pending_break: bool,
    /// The number of an ordered-list item, written just before the item's first text.
    marker: Option<String>,
    in_code_block: bool,
    in_metadata: bool,
}

impl Renderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(_) if self.in_metadata => {}
            Event::Text(text) if self.in_code_block => {
                self.emit_marker();
                self.body.push_str(&text);
            }
            Event::Text(text) | Event::Code(text) => self.inline(&text),
            Event::InlineMath(text) | Event::DisplayMath(text) => self.inline(&text),
            Event::SoftBreak => self.pending_break = true,
            Event::HardBreak => self.line_break(),
            Event::Rule => self.block_break(),
            // Raw HTML is layout, not content; footnote markers and checkboxes are noise.
            Event::Html(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_) => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { .. } => {
                self.flush_section();
                self.heading = Some(String::new());
            }
            Tag::Paragraph | Tag::BlockQuote(_) | Tag::HtmlBlock | Tag::DefinitionList => {
                self.block_break()
            }
            Tag::CodeBlock(_) => {
                self.block_break();
                self.in_code_block = true;
            }
            Tag::List(first) => {
                self.line_break();
                self.lists.push(first);
            }
            Tag::Item => {
                self.line_break();
                if let Some(Some(number)) = self.lists.last_mut() {
                    // Numbers stay because procedures are asked about by step. Written with the
                    // item's first text, so a loose item's paragraph break does not split them.
                    self.marker = Some(format!("{number}. "));
                    *number += 1;
                }
            }
            Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::FootnoteDefinition(_) => self.line_break(),
            Tag::Table(_) => {
                self.block_break();
                self.table = Some(Table::default());
            }
            Tag::Link { dest_url, .. } => self.links.push((dest_url.to_string(), String::new())),
            Tag::MetadataBlock(_) => self.in_metadata = true,
            Tag::TableHead
            | Tag::TableRow
            | Tag::TableCell
            | Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Image { .. } => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(level) => self.end_heading(level),
            TagEnd::Paragraph
            | TagEnd::BlockQuote(_)
            | TagEnd::HtmlBlock
            | TagEnd::List(_)
            | TagEnd::DefinitionList
            | TagEnd::FootnoteDefinition => self.block_break(),
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                self.block_break();
            }
            TagEnd::Item => {
                self.marker = None;
                self.line_break();
            }
            TagEnd::DefinitionListTitle | TagEnd::DefinitionListDefinition => self.line_break(),
            TagEnd::TableCell => {
                if let Some(table) = &mut self.table {
                    table.end_cell();
                }
            }
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.end_header_row();
                }
            }
            TagEnd::TableRow => {
                if let Some(table) = &mut self.table {
                    table.end_row();
                }
            }
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    for line in table.lines() {
                        self.body.push_str(&line);
                        self.body.push('\n');
                    }
                }
                self.block_break();
            }
            TagEnd::Link => self.end_link(),
            TagEnd::MetadataBlock(_) => self.in_metadata = false,
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Image => {}
        }
    }

    fn end_heading(&mut self, level: HeadingLevel) {
        let text = strip_cjk_emphasis_marks(&single_line(&self.heading.take().unwrap_or_default()));
        self.pending_break = false;
        while self.headings.last().is_some_and(|(open, _)| *open >= level) {
            self.headings.pop();
        }
        if text.is_empty() {
            return;
        }
        if level == HeadingLevel::H1 && self.title.is_none() {
            self.title = Some(text.clone());
        }
        self.headings.push((level, text));
    }

    fn end_link(&mut self) {
        let Some((url, text)) = self.links.pop() else {
            return;
        };
        let target = url.strip_prefix("mailto:").unwrap_or(&url);
        // Keep addresses people ask for ("where is the portal?"), but not in headings (they
        // become citation paths), in-page anchors, or links whose text already is the address.
        let in_heading = self.heading.is_some();
        if !in_heading
            && !target.is_empty()
            && !target.starts_with('#')
            && single_line(&text) != target
        {
            self.inline(&format!(" ({target})"));
        }
    }

    fn inline(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        for (_, link_text) in &mut self.links {
            link_text.push_str(text);
        }
        let pending_break = std::mem::take(&mut self.pending_break);
        if self.heading.is_none() && self.table.is_none() {
            self.emit_marker();
        }
        let sink = match (&mut self.heading, &mut self.table) {
            (Some(heading), _) => heading,
            (None, Some(table)) => &mut table.cell,
            (None, None) => &mut self.body,
        };
        if pending_break {
            let before = sink.chars().next_back();
            let after = text.chars().next();
            // Chinese lines are joined without a space; other scripts need one.
            let joins_cjk = before.is_some_and(is_cjk) || after.is_some_and(is_cjk);
            if before.is_some_and(|c| !c.is_whitespace()) && !joins_cjk {
                sink.push(' ');
            }
        }
        sink.push_str(text);
    }

    fn emit_marker(&mut self) {
        if let Some(marker) = self.marker.take() {
            self.body.push_str(&marker);
        }
    }

    fn line_break(&mut self) {
        self.pending_break = false;
        match (&mut self.heading, &mut self.table) {
            (Some(heading), _) => heading.push(' '),
            (None, Some(table)) => table.cell.push(' '),
            // Ends the current line, so an item's end and the next item's start give one break.
            (None, None) if !self.body.is_empty() && !self.body.ends_with('\n') => {
                self.body.push('\n')
            }
            (None, None) => {}
        }
    }

    fn block_break(&mut self) {
        self.pending_break = false;
        self.body.push_str("\n\n");
    }

    fn flush_section(&mut self) {
        let text = strip_cjk_emphasis_marks(&normalize(&std::mem::take(&mut self.body)));
        if !text.is_empty() {
            let heading_path = self.headings.iter().map(|(_, text)| text.clone()).collect();
            self.sections.push(Section {
                heading_path,
                page: None,
                text,
            });
        }
    }
}

/// Removes `**` left in the text next to Chinese or Japanese characters.
///
/// CommonMark's flanking rules do not close `**` between full-width punctuation and a letter
/// (`其**说明书（SDS）**为准`), so Chinese authors' bold marks survive parsing as literal asterisks.
fn strip_cjk_emphasis_marks(text: &str) -> String {
    if !text.contains("**") {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '*' && chars.get(i + 1) == Some(&'*') {
            let before = i.checked_sub(1).map(|j| chars[j]);
            let after = chars.get(i + 2).copied();
            if before.is_some_and(is_cjk) || after.is_some_and(is_cjk) {
                i += 2;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(source: &str) -> ExtractedDocument {
        extract(source.as_bytes(), "stem").unwrap()
    }

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|part| part.to_string()).collect()
    }

    #[test]
    fn sections_split_at_headings_with_their_heading_path() {
        let doc = md("Intro before any heading.\n\n\
            # VPN\n\nGlobalProtect connects you.\n\n\
            ## Windows\n\nOpen the *GlobalProtect* tray icon.\n\n\
            ### Error ERR-VPN-809\n\nRestart the `PanGPS` service.\n\n\
            ## macOS\n\nUse the menu bar.\n\n\
            # Printers\n\nFollow-me printing.\n");
        let got: Vec<(Vec<String>, &str)> = doc
            .sections
            .iter()
            .map(|s| (s.heading_path.clone(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (path(&[]), "Intro before any heading."),
                (path(&["VPN"]), "GlobalProtect connects you."),
                (
                    path(&["VPN", "Windows"]),
                    "Open the GlobalProtect tray icon."
                ),
                (
                    path(&["VPN", "Windows", "Error ERR-VPN-809"]),
                    "Restart the PanGPS service."
                ),
                (path(&["VPN", "macOS"]), "Use the menu bar."),
                (path(&["Printers"]), "Follow-me printing."),
            ]
        );
        assert!(doc.sections.iter().all(|s| s.page.is_none()));
        assert_eq!(doc.title, "VPN");
    }

    #[test]
    fn headings_without_body_make_no_section_but_stay_in_the_path() {
        let doc = md("# Guide\n## Part\n### Step\n\nDo it.\n");
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].heading_path,
            path(&["Guide", "Part", "Step"])
        );
    }

    #[test]
    fn skipped_heading_levels_pop_correctly() {
        let doc = md("# A\n### C\n\nc\n\n## B\n\nb\n");
        assert_eq!(doc.sections[0].heading_path, path(&["A", "C"]));
        assert_eq!(doc.sections[1].heading_path, path(&["A", "B"]));
    }

    #[test]
    fn title_is_first_h1_else_stem() {
        assert_eq!(
            md("## Not a title\n\ntext\n\n# Real **Title**\n").title,
            "Real Title"
        );
        assert_eq!(
            md("Setext title\n============\n\nbody\n").title,
            "Setext title"
        );
        assert_eq!(md("## Only h2\n\ntext\n").title, "stem");
    }

    #[test]
    fn paragraphs_are_separated_by_blank_lines_and_soft_breaks_join() {
        let doc = md("First line\ncontinues here.\n\nSecond  paragraph.  \nHard break.\n");
        assert_eq!(
            doc.sections[0].text,
            "First line continues here.\n\nSecond paragraph.\nHard break."
        );
    }

    #[test]
    fn chinese_soft_breaks_join_without_a_space() {
        let doc = md("进入受限空间前，\n必须检测氧气浓度。\nCheck O2\nfirst.\n");
        assert_eq!(
            doc.sections[0].text,
            "进入受限空间前，必须检测氧气浓度。Check O2 first."
        );
    }

    #[test]
    fn lists_keep_one_item_per_line_and_ordered_numbers() {
        let doc = md(
            "Steps:\n\n1. Open **Settings**\n2. Choose `Printers`\n\n- red\n- green\n  - light green\n\n\
            3. Third\n\n   Loose paragraph.\n\n4. Fourth\n",
        );
        assert_eq!(
            doc.sections[0].text,
            "Steps:\n\n1. Open Settings\n2. Choose Printers\n\nred\ngreen\nlight green\n\n\
             3. Third\n\nLoose paragraph.\n\n4. Fourth"
        );
    }

    #[test]
    fn table_rows_name_their_columns() {
        let doc = md("| Line | Product | OEE |\n|:-----|---------|----:|\n\
            | L1 | **PPR-9087** | 78.4% |\n| L2 | PPR-9090 | 81.0% |\n\nAfter.\n");
        assert_eq!(
            doc.sections[0].text,
            "Line: L1; Product: PPR-9087; OEE: 78.4%\nLine: L2; Product: PPR-9090; OEE: 81.0%\n\n\
             After."
        );
    }

    #[test]
    fn code_blocks_are_kept_as_text() {
        let doc = md(
            "Run:\n\n```powershell\nipconfig /flushdns\nnetsh winsock reset\n```\n\n    indented code\n",
        );
        assert_eq!(
            doc.sections[0].text,
            "Run:\n\nipconfig /flushdns\nnetsh winsock reset\n\nindented code"
        );
    }

    #[test]
    fn markup_noise_is_removed_and_link_targets_kept() {
        let doc = md("---\ntitle: front matter\n---\n\n\
            > Quoted **bold** and _em_ and ~~old~~.\n\n\
            Visit [the portal](https://passwords.example.internal) or <https://vpn.example.com>.\n\
            Mail [helpdesk@example.com](mailto:helpdesk@example.com), see [below](#faq).\n\n\
            <div align=\"center\">layout</div>\n\n\
            - [x] done task\n\n\
            ![Tray icon](icon.png)\n\n---\n\nEnd.");
        assert_eq!(
            doc.sections[0].text,
            "Quoted bold and em and old.\n\n\
             Visit the portal (https://passwords.example.internal) or https://vpn.example.com. \
             Mail helpdesk@example.com, see below.\n\n\
             done task\n\nTray icon\n\nEnd."
        );
    }

    #[test]
    fn bold_marks_that_commonmark_leaves_in_chinese_text_are_removed() {
        let doc = md(
            "# 说明\n\n以其**安全技术说明书（SDS）**为准，遵守**“高挂低用”**原则。\n\n2**10 = 1024\n",
        );
        assert_eq!(
            doc.sections[0].text,
            "以其安全技术说明书（SDS）为准，遵守“高挂低用”原则。\n\n2**10 = 1024"
        );
    }

    #[test]
    fn utf16_markdown_is_decoded() {
        let mut bytes = vec![0xff, 0xfe];
        bytes.extend(
            "# 叉车\n\n限速 5 km/h。\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let doc = extract(&bytes, "s").unwrap();
        assert_eq!(doc.title, "叉车");
        assert_eq!(doc.sections[0].heading_path, path(&["叉车"]));
        assert_eq!(doc.sections[0].text, "限速 5 km/h。");
    }
}
