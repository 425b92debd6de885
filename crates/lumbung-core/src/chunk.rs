use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{ChunkId, DocumentPath, KbName, Language};

/// A run of text from one place in a document: what extraction produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Headings enclosing this text, outermost first (empty where the format has none).
    pub heading_path: Vec<String>,
    /// 1-based page number, where the format has pages.
    pub page: Option<u32>,
    pub text: String,
}

/// Where a passage comes from, precisely enough for a person to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub kb: KbName,
    pub document_path: DocumentPath,
    pub title: String,
    pub heading_path: Vec<String>,
    pub page: Option<u32>,
    /// Character (not byte) offsets into the document's extracted text.
    pub char_range: Range<u32>,
}

/// The unit that is embedded, indexed and returned by search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: ChunkId,
    /// Position of the chunk within its document, from 0.
    pub ordinal: u32,
    pub citation: Citation,
    /// Exactly the document's words: what is returned and quoted.
    pub text: String,
    /// The language of `text`, detected at ingest.
    pub language: Language,
    /// The sentences of `text`, in order, with their embeddings once ingest has computed them.
    pub sentences: Vec<Sentence>,
}

/// One sentence of a chunk (a line of a list or a table row counts as one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    /// Byte offsets into the chunk's `text`.
    pub range: Range<u32>,
    pub embedding: Option<QuantizedVector>,
}

/// Longest context put before a chunk's text, in characters: deep or long headings must not
/// crowd the chunk's own words out of the model's input.
const MAX_CONTEXT_CHARS: usize = 300;

/// Joins the parts of a chunk's context.
const CONTEXT_SEPARATOR: &str = " > ";

impl Chunk {
    /// Where the chunk sits in its document: the title and the heading path, outermost first,
    /// joined by [`CONTEXT_SEPARATOR`], for example `VPN Access (GlobalProtect) > Error codes
    /// and what to do > ERR-VPN-809: certificate expired or missing`.
    ///
    /// The title is left out where it would be counted twice (the chunk's text starts with it,
    /// as the first chunk of a text file does, or the first heading is the title) and where it
    /// is only the file name (a file name is not a title). Headings equal to the part before
    /// them are left out. When the whole is longer than [`MAX_CONTEXT_CHARS`], the outermost
    /// parts go first.
    pub fn context(&self) -> String {
        let citation = &self.citation;
        let title = citation.title.trim();
        let mut parts: Vec<&str> = Vec::with_capacity(citation.heading_path.len() + 1);
        let title_repeats = title.is_empty()
            || title == citation.document_path.file_stem()
            || self.text.trim_start().starts_with(title);
        if !title_repeats {
            parts.push(title);
        }
        for heading in &citation.heading_path {
            let heading = heading.trim();
            if !heading.is_empty() && parts.last() != Some(&heading) {
                parts.push(heading);
            }
        }
        let separator_chars = CONTEXT_SEPARATOR.chars().count();
        let mut chars: usize = parts.iter().map(|p| p.chars().count()).sum::<usize>()
            + separator_chars * parts.len().saturating_sub(1);
        let mut first = 0;
        while chars > MAX_CONTEXT_CHARS && first + 1 < parts.len() {
            chars -= parts[first].chars().count() + separator_chars;
            first += 1;
        }
        let context = parts[first..].join(CONTEXT_SEPARATOR);
        if chars > MAX_CONTEXT_CHARS {
            // One heading alone is too long: keep its end, the most specific words.
            let skip = chars - MAX_CONTEXT_CHARS;
            return context.chars().skip(skip).collect();
        }
        context
    }

    /// The text that is embedded and analysed for BM25: the [`Chunk::context`], a blank line,
    /// then the chunk's own text. Search and citations return `text` alone.
    pub fn indexed_text(&self) -> String {
        let context = self.context();
        if context.is_empty() {
            self.text.clone()
        } else {
            format!("{context}\n\n{}", self.text)
        }
    }

    /// The text of one of the chunk's sentences.
    pub fn sentence_text(&self, sentence: &Sentence) -> &str {
        let Range { start, end } = sentence.range;
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// What is embedded for each of the chunk's sentences, in order: the sentence under the most
    /// specific part of the chunk's context (its heading, or the title), because a sentence
    /// alone often lacks its subject ("At least 14 characters." under "Password rules").
    pub fn sentence_embedding_texts(&self) -> Vec<String> {
        let context = self.context();
        let label = context.rsplit(CONTEXT_SEPARATOR).next().unwrap_or("");
        self.sentences
            .iter()
            .map(|sentence| {
                let text = self.sentence_text(sentence);
                if label.is_empty() {
                    text.to_string()
                } else {
                    format!("{label}: {text}")
                }
            })
            .collect()
    }
}

/// A unit-length embedding stored as signed bytes and one scale, a quarter of its `f32` size.
/// Dot products with it are within about 0.01 of the exact cosine, far below the gaps between
/// the sentences it ranks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedVector {
    scale: f32,
    values: Vec<i8>,
}

impl QuantizedVector {
    /// Scales `vector` so that its largest component becomes ±127.
    pub fn quantize(vector: &[f32]) -> QuantizedVector {
        let largest = vector.iter().fold(0f32, |max, x| max.max(x.abs()));
        if largest == 0.0 || !largest.is_finite() {
            return QuantizedVector {
                scale: 0.0,
                values: vec![0; vector.len()],
            };
        }
        let scale = largest / 127.0;
        let values = vector
            .iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        QuantizedVector { scale, values }
    }

    /// Rebuilds a vector from [`QuantizedVector::scale`] and [`QuantizedVector::values`].
    pub fn from_parts(scale: f32, values: Vec<i8>) -> QuantizedVector {
        QuantizedVector { scale, values }
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    pub fn values(&self) -> &[i8] {
        &self.values
    }

    pub fn dimension(&self) -> usize {
        self.values.len()
    }

    /// The squared length (about 1 for a quantized unit vector).
    pub fn norm_squared(&self) -> f32 {
        let sum: f32 = self
            .values
            .iter()
            .map(|v| f32::from(*v) * f32::from(*v))
            .sum();
        sum * self.scale * self.scale
    }

    /// The dot product with an `f32` vector (the cosine, for unit-length vectors).
    pub fn dot(&self, other: &[f32]) -> f32 {
        let sum: f32 = self
            .values
            .iter()
            .zip(other)
            .map(|(a, b)| f32::from(*a) * b)
            .sum();
        sum * self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentHash;

    fn chunk(path: &str, title: &str, headings: &[&str], text: &str) -> Chunk {
        let kb = KbName::new("kb").unwrap();
        let document_path = DocumentPath::new(path).unwrap();
        Chunk {
            id: ChunkId::derive(
                &crate::KbGeneration::first(kb.clone()),
                &document_path,
                &ContentHash::of_bytes(b"x"),
                0,
            ),
            ordinal: 0,
            citation: Citation {
                kb,
                document_path,
                title: title.to_string(),
                heading_path: headings.iter().map(|h| h.to_string()).collect(),
                page: None,
                char_range: 0..text.chars().count() as u32,
            },
            text: text.to_string(),
            language: Language::Unknown,
            sentences: Vec::new(),
        }
    }

    #[test]
    fn context_is_title_and_headings_without_repeats() {
        let markdown = chunk(
            "vpn-access.md",
            "VPN Access (GlobalProtect)",
            &[
                "VPN Access (GlobalProtect)",
                "Error codes and what to do",
                "ERR-VPN-809: certificate expired or missing",
            ],
            "The laptop's device certificate is older than its one-year lifetime.",
        );
        assert_eq!(
            markdown.context(),
            "VPN Access (GlobalProtect) > Error codes and what to do > ERR-VPN-809: certificate \
             expired or missing"
        );
        assert!(markdown.indexed_text().ends_with(
            "missing\n\nThe laptop's device certificate is older than its one-year lifetime."
        ));

        let pdf = chunk(
            "report.pdf",
            "Downtime report",
            &["Top causes"],
            "IMM-4 pump.",
        );
        assert_eq!(pdf.context(), "Downtime report > Top causes");
    }

    #[test]
    fn a_title_the_text_starts_with_or_a_file_name_is_left_out() {
        let first = chunk(
            "shift.txt",
            "Shift handover",
            &[],
            "Shift handover\n\nLine 3 stopped.",
        );
        assert_eq!(first.context(), "");
        assert_eq!(first.indexed_text(), first.text);
        let later = chunk("shift.txt", "Shift handover", &[], "Restarted at 14:45.");
        assert_eq!(later.context(), "Shift handover");
        let untitled = chunk("4983.txt", "4983", &[], "Alterations of white matter.");
        assert_eq!(untitled.context(), "");
    }

    #[test]
    fn sentences_are_embedded_under_the_most_specific_heading() {
        let mut rules = chunk(
            "password.md",
            "Password Reset",
            &["Password Reset", "Password rules"],
            "At least 14 characters. Valid 180 days.",
        );
        rules.sentences = [0..23, 24..39]
            .into_iter()
            .map(|range| Sentence {
                range,
                embedding: None,
            })
            .collect();
        assert_eq!(
            rules.sentence_embedding_texts(),
            [
                "Password rules: At least 14 characters.",
                "Password rules: Valid 180 days."
            ]
        );
        rules.citation.heading_path.clear();
        rules.citation.title = "password".to_string();
        assert_eq!(
            rules.sentence_embedding_texts(),
            ["At least 14 characters.", "Valid 180 days."],
            "no context, no label"
        );
    }

    #[test]
    fn long_contexts_drop_their_outermost_parts() {
        let long = "h".repeat(200);
        let title = "T".repeat(100);
        let c = chunk("a.md", &title, &[&long, "Specific heading"], "text");
        assert_eq!(c.context(), format!("{long} > Specific heading"));
        let longer = "x".repeat(400);
        let c = chunk("a.md", "Title", &["Outer", &longer], "text");
        assert_eq!(c.context().chars().count(), MAX_CONTEXT_CHARS);
        assert!(c.context().chars().all(|ch| ch == 'x'));
    }

    #[test]
    fn quantized_dot_products_stay_close_to_exact() {
        let a: Vec<f32> = (0..384)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 40.0)
            .collect();
        let b: Vec<f32> = (0..384)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 35.0)
            .collect();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|x| x / norm(&a)).collect(),
            b.iter().map(|x| x / norm(&b)).collect(),
        );
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let quantized = QuantizedVector::quantize(&a);
        assert!((quantized.dot(&b) - exact).abs() < 0.01);
        assert!((quantized.dot(&a) - 1.0).abs() < 0.01);
        assert!((quantized.norm_squared() - 1.0).abs() < 0.01);
        let zero = QuantizedVector::quantize(&[0.0; 4]);
        assert_eq!(zero.dot(&[1.0; 4]), 0.0);
        let rebuilt = QuantizedVector::from_parts(quantized.scale(), quantized.values().to_vec());
        assert_eq!(rebuilt, quantized);
    }
}
