//! Integration tests of lumbung-index against real engines on temporary folders: tantivy on
//! disk and an embedded Qdrant shard.

mod lexical;
mod vector;

use lumbung_core::{
    Chunk, ChunkId, Citation, ContentHash, DocumentPath, KbName, Language, QuantizedVector,
    Sentence, split_sentences,
};

pub fn kb(name: &str) -> KbName {
    KbName::new(name).unwrap()
}

pub fn path(path: &str) -> DocumentPath {
    DocumentPath::new(path).unwrap()
}

/// One version of a document: its chunks carry ids derived from the version's content hash.
pub struct Doc {
    pub kb: KbName,
    pub path: DocumentPath,
    pub hash: ContentHash,
    pub title: String,
}

impl Doc {
    pub fn new(kb_name: &str, doc_path: &str, version: &str) -> Doc {
        Doc {
            kb: kb(kb_name),
            path: path(doc_path),
            hash: ContentHash::of_bytes(format!("{kb_name}/{doc_path}@{version}").as_bytes()),
            title: doc_path.rsplit('/').next().unwrap().to_string(),
        }
    }

    pub fn id(&self, ordinal: u32) -> ChunkId {
        ChunkId::derive(&self.kb, &self.path, &self.hash, ordinal)
    }

    pub fn chunks(&self, texts: &[&str]) -> Vec<Chunk> {
        let mut offset = 0u32;
        texts
            .iter()
            .enumerate()
            .map(|(ordinal, text)| {
                let ordinal = ordinal as u32;
                let len = text.chars().count() as u32;
                let chunk = Chunk {
                    id: self.id(ordinal),
                    ordinal,
                    citation: Citation {
                        kb: self.kb.clone(),
                        document_path: self.path.clone(),
                        title: self.title.clone(),
                        heading_path: vec!["Guide".to_string(), format!("Part {ordinal}")],
                        page: (ordinal % 2 == 1).then_some(ordinal + 1),
                        char_range: offset..offset + len,
                    },
                    text: text.to_string(),
                    language: Language::detect(text),
                    // Every sentence embedded with a vector of its own, so that a round trip
                    // shows each one kept its range and its values.
                    sentences: split_sentences(text)
                        .into_iter()
                        .enumerate()
                        .map(|(n, range)| Sentence {
                            range: range.start as u32..range.end as u32,
                            embedding: Some(QuantizedVector::quantize(&[
                                0.5,
                                -0.25 * n as f32,
                                ordinal as f32 / 10.0,
                            ])),
                        })
                        .collect(),
                };
                offset += len;
                chunk
            })
            .collect()
    }
}
