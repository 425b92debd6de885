use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{ChunkId, DocumentPath, KbName};

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
    pub text: String,
}
