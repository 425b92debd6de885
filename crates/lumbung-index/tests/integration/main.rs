//! Integration tests of lumbung-index against real engines on temporary folders: tantivy on
//! disk and an embedded Qdrant shard.

mod lexical;
mod vector;

pub use lumbung_index::contract::{Doc, kb, path};
