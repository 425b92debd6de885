//! PDF: one section per page that has text, numbered from 1 as a reader counts pages.
//!
//! `pdf-extract` panics on some malformed input, so every call into it runs under
//! [`guarded`] and a panic becomes an [`Error::Pdf`] for that file.

use lumbung_core::Section;
use pdf_extract::{Document, Object, PlainTextOutput};

use crate::guard::guarded;
use crate::limits::CharBudget;
use crate::whitespace::{normalize, unwrap_hard_wraps};
use crate::{Error, ExtractedDocument, Limits, Result};

pub(crate) fn extract(bytes: &[u8], stem: &str, limits: &Limits) -> Result<ExtractedDocument> {
    // Walking the page tree and reading the info dictionary can panic on broken files too.
    let (document, title, pages) = guarded("cannot read document", Error::Pdf, || {
        let document = load(bytes)?;
        let title = info_title(&document);
        let pages: Vec<u32> = document.get_pages().into_keys().collect();
        Ok((document, title, pages))
    })?;
    // Checked before any page is rendered: text extraction is the slow part.
    if pages.len() as u64 > u64::from(limits.max_pages) {
        return Err(limits.pages_exceeded());
    }
    let mut budget = CharBudget::new(limits);
    let mut sections = Vec::new();
    // `extract_text_from_mem_by_pages` stops silently at the first failing page, which would
    // index half a manual without telling anyone; going page by page names the page instead.
    for page in pages {
        let raw = guarded(&format!("page {page}"), Error::Pdf, || {
            page_text(&document, page)
        })?;
        // A PDF places every line on its own: wrapped paragraphs are joined again.
        let text = normalize(&unwrap_hard_wraps(&raw));
        budget.spend(&text)?;
        if !text.is_empty() {
            sections.push(Section {
                heading_path: Vec::new(),
                page: Some(page),
                text,
            });
        }
    }
    Ok(ExtractedDocument {
        title: title.unwrap_or_else(|| stem.to_string()),
        sections,
    })
}

fn load(bytes: &[u8]) -> Result<Document> {
    let mut document =
        Document::load_mem(bytes).map_err(|err| Error::Pdf(format!("cannot parse: {err}")))?;
    if document.is_encrypted() {
        // Many PDFs are encrypted only to restrict printing or copying, with an empty user
        // password; those can be read. Anything else needs a password nobody gave us.
        document
            .decrypt("")
            .map_err(|_| Error::Encrypted { format: "pdf" })?;
    }
    Ok(document)
}

fn page_text(document: &Document, page: u32) -> Result<String> {
    let mut text = String::new();
    let mut output = PlainTextOutput::new(&mut text);
    pdf_extract::output_doc_page(document, &mut output, page)
        .map_err(|err| Error::Pdf(format!("page {page}: {err}")))?;
    Ok(text)
}

/// The document information dictionary's `/Title`, when it holds something readable.
fn info_title(document: &Document) -> Option<String> {
    let info = match document.trailer.get(b"Info").ok()? {
        Object::Reference(id) => document.get_dictionary(*id).ok()?,
        Object::Dictionary(dict) => dict,
        _ => return None,
    };
    let title = pdf_extract::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = crate::whitespace::single_line(&title);
    // Generators often write placeholders such as "untitled" or the source file's name.
    let placeholder = title.eq_ignore_ascii_case("untitled")
        || [".doc", ".docx", ".pdf", ".ppt", ".pptx"]
            .iter()
            .any(|ext| title.to_ascii_lowercase().ends_with(ext));
    (!title.is_empty() && !placeholder).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"%PDF-1.7\n",
            b"not a pdf at all",
            b"%PDF-1.4\n1 0 obj\n<<",
        ] {
            let err = extract(bytes, "s", &Limits::default()).unwrap_err();
            assert!(matches!(err, Error::Pdf(_)), "{err:?}");
        }
    }
}
