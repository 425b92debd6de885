use std::sync::Arc;

use lumbung_core::{
    Chunk, ChunkId, Citation, ContentHash, DocumentPath, KbGeneration, Language, Section, Sentence,
    split_sentences,
};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::{Error, Result};

/// What joins the sections of a document into the text that citations' character ranges
/// point into.
pub const SECTION_SEPARATOR: &str = "\n\n";

/// The extracted text of a document: its sections joined by [`SECTION_SEPARATOR`]. Every chunk's
/// `citation.char_range` indexes the characters of this string.
pub fn document_text(sections: &[Section]) -> String {
    sections
        .iter()
        .map(|section| section.text.as_str())
        .collect::<Vec<_>>()
        .join(SECTION_SEPARATOR)
}

/// Splits documents into chunks measured in the embedding model's tokens.
///
/// Sizes count the tokens of the chunk text alone, without the passage prefix and the special
/// tokens the model adds, so `max_tokens` should leave a few tokens of room below the model's
/// input limit. Text is split at the largest boundary that fits (paragraphs, then sentences,
/// then words, then characters), so text without spaces, such as Chinese, is still cut to size.
pub struct Chunker {
    text: TextSplitter<Arc<Tokenizer>>,
    markdown: MarkdownSplitter<Arc<Tokenizer>>,
    max_tokens: usize,
}

impl Chunker {
    /// A chunker whose chunks hold at most `max_tokens` tokens, consecutive chunks of one section
    /// sharing up to `overlap_tokens` of them.
    ///
    /// The tokenizer is shared, not copied (the model's takes about 280 MiB), unless it
    /// truncates or pads: then a copy without either is made, since truncation would
    /// under-count long chunks and padding would be counted.
    pub fn new(
        tokenizer: Arc<Tokenizer>,
        max_tokens: usize,
        overlap_tokens: usize,
    ) -> Result<Chunker> {
        if max_tokens == 0 {
            return Err(Error::InvalidChunking(
                "max_tokens must be positive".to_string(),
            ));
        }
        if overlap_tokens >= max_tokens {
            return Err(Error::InvalidChunking(format!(
                "overlap_tokens ({overlap_tokens}) must be smaller than max_tokens ({max_tokens})"
            )));
        }
        let tokenizer = if tokenizer.get_truncation().is_some() || tokenizer.get_padding().is_some()
        {
            let mut plain = Tokenizer::clone(&tokenizer);
            plain
                .with_truncation(None)
                .map_err(|err| Error::InvalidChunking(format!("tokenizer: {err}")))?;
            plain.with_padding(None);
            Arc::new(plain)
        } else {
            tokenizer
        };
        let config = |sizer: Arc<Tokenizer>| {
            ChunkConfig::new(max_tokens)
                .with_sizer(sizer)
                .with_overlap(overlap_tokens)
                .map_err(|err| Error::InvalidChunking(err.to_string()))
        };
        Ok(Chunker {
            text: TextSplitter::new(config(Arc::clone(&tokenizer))?),
            markdown: MarkdownSplitter::new(config(tokenizer)?),
            max_tokens,
        })
    }

    /// The largest chunk, in tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Splits the extracted sections of one document into chunks.
    ///
    /// A chunk never crosses a section boundary and keeps its section's heading path and page.
    /// `citation.char_range` holds character offsets into [`document_text`] of the sections, and
    /// slicing that text by them gives the chunk text exactly. Ordinals run from 0 across the
    /// document and ids are [`ChunkId::derive`]d from them, so the same input gives the same ids.
    /// Markdown documents (by extension) are split at Markdown structure first. Each chunk
    /// carries its detected language and its sentences, not yet embedded.
    pub fn split(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        hash: &ContentHash,
        title: &str,
        sections: &[Section],
    ) -> Vec<Chunk> {
        let markdown = matches!(path.extension().as_deref(), Some("md" | "markdown"));
        let separator_chars = SECTION_SEPARATOR.chars().count();
        let mut chunks = Vec::new();
        let mut section_start = 0;
        for (index, section) in sections.iter().enumerate() {
            if index > 0 {
                section_start += separator_chars;
            }
            let pieces: Vec<(usize, &str)> = if markdown {
                self.markdown
                    .chunk_char_indices(&section.text)
                    .map(|piece| (piece.char_offset, piece.chunk))
                    .collect()
            } else {
                self.text
                    .chunk_char_indices(&section.text)
                    .map(|piece| (piece.char_offset, piece.chunk))
                    .collect()
            };
            for (char_offset, text) in pieces {
                let start = section_start + char_offset;
                let end = start + text.chars().count();
                let ordinal = to_u32(chunks.len());
                chunks.push(Chunk {
                    id: ChunkId::derive(kb, path, hash, ordinal),
                    ordinal,
                    citation: Citation {
                        kb: kb.kb().clone(),
                        document_path: path.clone(),
                        title: title.to_string(),
                        heading_path: section.heading_path.clone(),
                        page: section.page,
                        char_range: to_u32(start)..to_u32(end),
                    },
                    text: text.to_string(),
                    language: Language::detect(text),
                    sentences: split_sentences(text)
                        .into_iter()
                        .map(|range| Sentence {
                            range: to_u32(range.start)..to_u32(range.end),
                            embedding: None,
                        })
                        .collect(),
                });
            }
            section_start += section.text.chars().count();
        }
        chunks
    }
}

/// Offsets and ordinals past `u32::MAX` cannot occur for files within the ingest size limit;
/// saturating keeps a pathological input from wrapping around to a wrong but plausible value.
fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::OnceLock;

    use super::*;

    /// The model's real tokenizer: sizes in these tests are the sizes ingest will see.
    fn shared_tokenizer() -> &'static Tokenizer {
        static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
        TOKENIZER.get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../runtime/models/multilingual-e5-small/tokenizer.json");
            assert!(
                path.is_file(),
                "{} is missing: run scripts/setup-runtime.sh first",
                path.display()
            );
            Tokenizer::from_file(&path).expect("tokenizer.json loads")
        })
    }

    fn tokenizer() -> Tokenizer {
        shared_tokenizer().clone()
    }

    fn tokens(text: &str) -> usize {
        shared_tokenizer().encode(text, false).unwrap().len()
    }

    fn section(heading: &[&str], page: Option<u32>, text: &str) -> Section {
        Section {
            heading_path: heading.iter().map(|h| h.to_string()).collect(),
            page,
            text: text.to_string(),
        }
    }

    struct Doc {
        kb: KbGeneration,
        path: DocumentPath,
        hash: ContentHash,
    }

    fn doc(path: &str) -> Doc {
        Doc {
            kb: KbGeneration::first(lumbung_core::KbName::new("safety").unwrap()),
            path: DocumentPath::new(path).unwrap(),
            hash: ContentHash::of_bytes(path.as_bytes()),
        }
    }

    fn split(chunker: &Chunker, doc: &Doc, sections: &[Section]) -> Vec<Chunk> {
        chunker.split(&doc.kb, &doc.path, &doc.hash, "Welding safety", sections)
    }

    fn sample_sections() -> Vec<Section> {
        let english = "Welders must wear a helmet with a shaded lens, flame-resistant gloves and \
                       leather boots. Keep the work area ventilated and free of flammable material. "
            .repeat(6);
        let chinese = "焊接作业前必须检查设备接地是否良好，佩戴防护面罩、阻燃手套和绝缘安全鞋，\
                       作业区域应保持通风并清除易燃物品。动火作业需要办理许可证并安排专人监护。"
            .repeat(5);
        let indonesian = "Pekerja wajib memakai helm las, sarung tangan tahan api dan sepatu \
                          keselamatan. Area kerja harus berventilasi baik. "
            .repeat(5);
        vec![
            section(&["Welding", "Equipment"], Some(1), &english),
            section(&[], Some(2), "   \n  "),
            section(&["焊接", "防护"], Some(3), &chinese),
            section(&["Pengelasan"], None, &indonesian),
        ]
    }

    #[test]
    fn chunks_fit_the_token_budget_and_map_back_to_the_document_text() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 64, 0).unwrap();
        let sections = sample_sections();
        let chunks = split(&chunker, &doc("guides/welding.txt"), &sections);
        let text: Vec<char> = document_text(&sections).chars().collect();

        assert!(chunks.len() > 6, "only {} chunks", chunks.len());
        for (index, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.ordinal as usize, index);
            let size = tokens(&chunk.text);
            assert!(
                size <= 64,
                "chunk {index} has {size} tokens: {:?}",
                chunk.text
            );
            assert!(!chunk.text.trim().is_empty());
            let range =
                chunk.citation.char_range.start as usize..chunk.citation.char_range.end as usize;
            let sliced: String = text[range].iter().collect();
            assert_eq!(sliced, chunk.text, "chunk {index} does not map back");
        }
    }

    #[test]
    fn chunks_keep_their_section_and_never_cross_it() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 64, 0).unwrap();
        let sections = sample_sections();
        let chunks = split(&chunker, &doc("guides/welding.txt"), &sections);
        let mut start = 0u32;
        let bounds: Vec<(u32, u32)> = sections
            .iter()
            .map(|s| {
                let len = s.text.chars().count() as u32;
                let bound = (start, start + len);
                start += len + 2;
                bound
            })
            .collect();
        for chunk in &chunks {
            let owner = bounds
                .iter()
                .position(|&(s, e)| {
                    s <= chunk.citation.char_range.start && chunk.citation.char_range.end <= e
                })
                .expect("chunk lies within one section");
            assert_eq!(chunk.citation.heading_path, sections[owner].heading_path);
            assert_eq!(chunk.citation.page, sections[owner].page);
            assert_eq!(chunk.citation.title, "Welding safety");
            assert_eq!(chunk.citation.kb.as_str(), "safety");
            assert_ne!(owner, 1, "the blank section yields no chunk");
        }
        let owners: Vec<&Vec<String>> = chunks.iter().map(|c| &c.citation.heading_path).collect();
        assert!(owners.contains(&&sections[0].heading_path));
        assert!(owners.contains(&&sections[2].heading_path));
        assert!(owners.contains(&&sections[3].heading_path));
    }

    #[test]
    fn chinese_without_spaces_is_split_within_budget() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 32, 0).unwrap();
        let text =
            "个人防护装备包括安全帽防护眼镜耳塞防尘口罩阻燃工作服和安全鞋进入车间前必须穿戴整齐"
                .repeat(8);
        assert!(!text.contains(' '));
        let chunks = split(
            &chunker,
            &doc("zh/ppe.txt"),
            &[section(&["防护"], None, &text)],
        );
        assert!(chunks.len() >= 4, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(tokens(&chunk.text) <= 32, "{} tokens", tokens(&chunk.text));
        }
        let rejoined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            rejoined, text,
            "without overlap the chunks cover the text exactly"
        );
    }

    #[test]
    fn chunks_carry_their_language_and_sentences() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 200, 0).unwrap();
        let sections = [
            section(
                &["Welding"],
                None,
                "Wear a shaded helmet. Keep the area ventilated.",
            ),
            section(&["焊接"], None, "焊接前检查接地。佩戴防护面罩。"),
        ];
        let chunks = split(&chunker, &doc("guides/welding.txt"), &sections);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].language, Language::En);
        assert_eq!(chunks[1].language, Language::Zh);
        let sentences: Vec<Vec<&str>> = chunks
            .iter()
            .map(|c| c.sentences.iter().map(|s| c.sentence_text(s)).collect())
            .collect();
        assert_eq!(
            sentences,
            [
                vec!["Wear a shaded helmet.", "Keep the area ventilated."],
                vec!["焊接前检查接地。", "佩戴防护面罩。"]
            ]
        );
        assert!(chunks[0].sentences.iter().all(|s| s.embedding.is_none()));
    }

    #[test]
    fn ids_are_deterministic_and_derived_from_the_ordinal() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 64, 0).unwrap();
        let doc = doc("guides/welding.txt");
        let first = split(&chunker, &doc, &sample_sections());
        let second = split(&chunker, &doc, &sample_sections());
        assert_eq!(first, second);
        for chunk in &first {
            assert_eq!(
                chunk.id,
                ChunkId::derive(&doc.kb, &doc.path, &doc.hash, chunk.ordinal)
            );
        }
        let other = Doc {
            hash: ContentHash::of_bytes(b"edited"),
            ..doc
        };
        let edited = split(&chunker, &other, &sample_sections());
        assert_ne!(
            first[0].id, edited[0].id,
            "a new content hash gives new ids"
        );
    }

    #[test]
    fn overlap_repeats_text_between_neighbours() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 48, 16).unwrap();
        let sections = [sample_sections().remove(0)];
        let chunks = split(&chunker, &doc("guides/welding.txt"), &sections);
        assert!(chunks.len() > 2);
        assert!(chunks.iter().all(|c| tokens(&c.text) <= 48));
        // The overlap is an upper bound that text-splitter fills with whole sentences where
        // they fit, so not every pair overlaps, but some must.
        let overlapping = chunks
            .windows(2)
            .filter(|pair| pair[1].citation.char_range.start < pair[0].citation.char_range.end)
            .count();
        assert!(overlapping > 0, "no neighbouring chunks overlap");
    }

    #[test]
    fn markdown_documents_map_back_too() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 40, 0).unwrap();
        let body =
            "Intro paragraph about **welding** safety.\n\n- helmet with shaded lens\n- gloves\n\n\
                    ```\nweld --amps 120\n```\n\n"
                .repeat(6);
        let sections = [
            section(&["Guide"], None, "Title line"),
            section(&["Guide", "PPE"], None, &body),
        ];
        let chunks = split(&chunker, &doc("guides/ppe.md"), &sections);
        let text: Vec<char> = document_text(&sections).chars().collect();
        assert!(chunks.len() > 2);
        for chunk in &chunks {
            assert!(tokens(&chunk.text) <= 40);
            let range =
                chunk.citation.char_range.start as usize..chunk.citation.char_range.end as usize;
            assert_eq!(text[range].iter().collect::<String>(), chunk.text);
        }
    }

    #[test]
    fn impossible_sizes_are_rejected() {
        assert!(matches!(
            Chunker::new(Arc::new(tokenizer()), 0, 0),
            Err(Error::InvalidChunking(_))
        ));
        let err = Chunker::new(Arc::new(tokenizer()), 32, 32)
            .err()
            .expect("overlap equal to max is rejected");
        assert!(err.to_string().contains("overlap_tokens"), "{err}");
    }

    #[test]
    fn empty_documents_give_no_chunks() {
        let chunker = Chunker::new(Arc::new(tokenizer()), 32, 0).unwrap();
        assert!(split(&chunker, &doc("a.txt"), &[]).is_empty());
        assert!(split(&chunker, &doc("a.txt"), &[section(&[], None, " \n\t ")]).is_empty());
    }
}
