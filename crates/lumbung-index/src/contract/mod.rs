//! The behaviour every [`VectorStore`] and every [`LexicalIndex`](crate::LexicalIndex) must
//! have, as test cases that take a fresh, empty store: the embedded engines (`lumbung-index`'s
//! tests) and the Qdrant backend (`lumbung-qdrant`'s) run the same cases through
//! [`vector_store_contract!`](crate::vector_store_contract) and
//! [`lexical_index_contract!`](crate::lexical_index_contract).
//!
//! Only with the `contract` feature; a test helper, not part of the engine.

pub mod lexical;
pub mod vector;

use lumbung_core::{
    Chunk, ChunkId, Citation, ContentHash, DocumentPath, Generation, KbGeneration, KbName,
    Language, QuantizedVector, Sentence, split_sentences,
};

use crate::{ScoredChunk, VectorPoint};

/// The dimension of the stores the cases are given.
pub const DIM: usize = 8;

/// Test cases, one `#[test]` each, for the store `open` returns: `open` is an expression of a
/// closure returning `(guard, Arc<dyn VectorStore>)` of an empty store of [`DIM`] dimensions,
/// where the guard keeps what the store needs (a folder, a server) alive for the test.
#[macro_export]
macro_rules! vector_store_contract {
    ($open:expr) => {
        $crate::vector_store_contract!(@cases $open;
            nearest_neighbour_comes_first_with_cosine_scores,
            kb_filter_is_applied_inside_the_search,
            a_scope_of_a_few_knowledge_bases_holds_the_best_of_each,
            a_scope_of_every_knowledge_base_never_returns_one_written_later,
            replace_leaves_only_the_new_version_and_is_idempotent,
            delete_removes_only_that_document,
            stored_vectors_come_back_in_the_order_asked,
            invalid_vectors_are_refused_and_nothing_is_written,
            concurrent_writers_readers_and_flushes_share_one_store,
            each_language_has_its_mean_and_can_be_searched_alone,
            generations_of_one_knowledge_base_are_apart,
        );
    };
    (@cases $open:expr; $($case:ident,)*) => {$(
        #[test]
        fn $case() {
            let (_guard, store) = ($open)();
            $crate::contract::vector::$case(store);
        }
    )*};
}

/// Test cases, one `#[test]` each, for the lexical index `open` returns: `open` is an
/// expression of a closure returning `(guard, Arc<dyn LexicalIndex>)` of an empty index.
#[macro_export]
macro_rules! lexical_index_contract {
    ($open:expr) => {
        $crate::lexical_index_contract!(@cases $open;
            replace_is_invisible_until_commit_then_round_trips_every_field,
            kb_filter_is_applied_inside_the_query,
            replacing_a_document_leaves_exactly_the_new_chunks,
            a_scope_of_every_knowledge_base_stays_a_filter_once_another_arrives,
            delete_removes_only_that_document,
            chinese_indonesian_and_accented_queries_find_their_chunks,
            headings_and_titles_are_searched_with_every_chunk,
            coverage_is_the_share_of_the_query_weight_a_chunk_holds,
            user_text_never_breaks_the_query,
            chunks_of_another_document_are_rejected,
            concurrent_writers_and_readers_share_one_index,
            generations_of_one_knowledge_base_are_apart,
        );
    };
    (@cases $open:expr; $($case:ident,)*) => {$(
        #[test]
        fn $case() {
            let (_guard, index) = ($open)();
            $crate::contract::lexical::$case(index);
        }
    )*};
}

/// The first generation of the knowledge base `name`.
pub fn kb(name: &str) -> KbGeneration {
    KbGeneration::first(KbName::new(name).unwrap())
}

/// Generation `number` of the knowledge base `name`.
pub fn kb_generation(name: &str, number: u32) -> KbGeneration {
    KbGeneration::new(KbName::new(name).unwrap(), Generation::new(number).unwrap())
}

pub fn path(path: &str) -> DocumentPath {
    DocumentPath::new(path).unwrap()
}

/// One version of a document: its chunks carry ids derived from the version's content hash.
pub struct Doc {
    pub kb: KbGeneration,
    pub path: DocumentPath,
    pub hash: ContentHash,
    pub title: String,
}

impl Doc {
    pub fn new(kb_name: &str, doc_path: &str, version: &str) -> Doc {
        Doc::in_generation(kb(kb_name), doc_path, version)
    }

    pub fn in_generation(kb: KbGeneration, doc_path: &str, version: &str) -> Doc {
        let kb_name = kb.kb().to_string();
        Doc {
            kb,
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
                        kb: self.kb.kb().clone(),
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

/// The unit vector along `axis`, tilted towards the next axis by `tilt`.
pub fn axis(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis % DIM] = 1.0;
    v[(axis + 1) % DIM] = tilt;
    v
}

pub fn point(id: ChunkId, vector: Vec<f32>) -> VectorPoint {
    VectorPoint {
        id,
        language: Language::Unknown,
        vector,
    }
}

pub fn points(doc: &Doc, vectors: Vec<Vec<f32>>) -> Vec<VectorPoint> {
    vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(doc.id(i as u32), v))
        .collect()
}

pub fn ids(hits: &[(ChunkId, f32)]) -> Vec<ChunkId> {
    hits.iter().map(|(id, _)| *id).collect()
}

pub fn sorted(mut ids: Vec<ChunkId>) -> Vec<ChunkId> {
    ids.sort();
    ids
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

pub fn ids_of(hits: &[ScoredChunk]) -> Vec<ChunkId> {
    hits.iter().map(|hit| hit.chunk.id).collect()
}

pub fn sorted_ids(hits: &[ScoredChunk]) -> Vec<ChunkId> {
    sorted(ids_of(hits))
}
