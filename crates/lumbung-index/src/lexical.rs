//! The lexical index on tantivy: one tantivy document per chunk.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use lumbung_core::{Chunk, ChunkId, Citation, DocumentPath, KbName};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use crate::analyzer::{self, ANALYZER_NAME};
use crate::{Error, LexicalIndex, LexicalSnapshot, Result, ScoredChunk};

/// Indexing memory shared by the writer threads; tantivy flushes a segment when it is full.
const WRITER_HEAP_BYTES: usize = 64 << 20;

/// Title and headings repeat across every chunk of a document, so a match there says less about
/// a chunk than a match in its own text: they count, but less.
const TITLE_BOOST: f32 = 0.3;
const HEADING_BOOST: f32 = 0.5;

/// A pasted log or e-mail must not turn into a query with thousands of clauses.
const MAX_QUERY_TERMS: usize = 256;

/// File in the index folder naming the analyzer version its terms were produced by.
const ANALYZER_STAMP_FILE: &str = "lumbung-analyzer";

#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_key: Field,
    kb: Field,
    path: Field,
    title: Field,
    heading_path: Field,
    text: Field,
    page: Field,
    char_start: Field,
    char_end: Field,
    ordinal: Field,
}

fn schema() -> (Schema, Fields) {
    let analyzed = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER_NAME)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let mut builder = Schema::builder();
    let fields = Fields {
        chunk_id: builder.add_text_field("chunk_id", STRING | STORED),
        // "kb\0path": one term per document, so a document is deleted with one delete_term.
        doc_key: builder.add_text_field("doc_key", STRING),
        kb: builder.add_text_field("kb", STRING | STORED),
        path: builder.add_text_field("path", STRING | STORED),
        title: builder.add_text_field("title", analyzed.clone()),
        // One value per heading, outermost first: stored values keep their order.
        heading_path: builder.add_text_field("heading_path", analyzed.clone()),
        text: builder.add_text_field("text", analyzed),
        page: builder.add_u64_field("page", STORED),
        char_start: builder.add_u64_field("char_start", STORED),
        char_end: builder.add_u64_field("char_end", STORED),
        ordinal: builder.add_u64_field("ordinal", STORED | FAST),
    };
    (builder.build(), fields)
}

fn doc_key(kb: &KbName, path: &DocumentPath) -> String {
    // Neither a kb name nor a document path can contain NUL, so the key is unambiguous.
    format!("{kb}\u{0}{path}")
}

/// BM25 over chunks in a tantivy index on local disk.
///
/// One writer behind a mutex stages changes from any thread; [`LexicalIndex::commit`] makes all
/// of them visible at once. Uncommitted changes are lost when the index is dropped.
pub struct TantivyLexicalIndex {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    reading: Arc<Reading>,
}

/// What turns a query into tantivy terms and stored documents back into chunks.
struct Reading {
    fields: Fields,
    analyzer: TextAnalyzer,
}

/// One commit of the index, searched and looked up consistently.
struct TantivySnapshot {
    searcher: Searcher,
    reading: Arc<Reading>,
}

impl std::fmt::Debug for TantivyLexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyLexicalIndex")
            .finish_non_exhaustive()
    }
}

impl TantivyLexicalIndex {
    /// Opens the index in `dir`, creating the folder and an empty index when there is none.
    /// An index whose terms came from another version of the analyzer is analysed again from its
    /// stored chunks first, so that queries and documents are always cut the same way.
    ///
    /// Fails if the index there has another schema, or if another writer holds it.
    pub fn open(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(tantivy::TantivyError::from)?;
        let index = Index::builder().schema(schema).open_or_create(directory)?;
        let analyzer = analyzer::analyzer();
        index.tokenizers().register(ANALYZER_NAME, analyzer.clone());
        let writer = index.writer(WRITER_HEAP_BYTES)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let index = TantivyLexicalIndex {
            fields,
            writer: Mutex::new(writer),
            reader,
            reading: Arc::new(Reading { fields, analyzer }),
        };
        index.reanalyze_if_stale(&dir.join(ANALYZER_STAMP_FILE))?;
        Ok(index)
    }

    /// Rewrites every chunk with the current analyzer unless `stamp` names it; all in one
    /// commit, so a crash in between leaves the old index and the old stamp.
    fn reanalyze_if_stale(&self, stamp: &Path) -> Result<()> {
        let current = analyzer::ANALYZER_VERSION;
        let written = match fs_err::read_to_string(stamp) {
            Ok(version) => Some(version),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err.into()),
        };
        if written.as_deref() == Some(current) {
            return Ok(());
        }
        let searcher = self.reader.searcher();
        let total = searcher.num_docs();
        if total > 0 {
            tracing::info!(
                chunks = total,
                from = written.as_deref().unwrap_or("unknown"),
                to = %current,
                "lexical index written by another analyzer: analysing it again"
            );
            let mut writer = self.writer()?;
            // Removes the committed segments only; the searcher above still reads them.
            writer.delete_all_documents()?;
            for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
                for doc_id in segment.doc_ids_alive() {
                    let address = DocAddress::new(segment_ord as u32, doc_id);
                    let chunk = self.reading.load_chunk(&searcher, address)?;
                    writer.add_document(self.to_document(&chunk))?;
                }
            }
            writer.commit()?;
            self.reader.reload()?;
        }
        let staged = stamp.with_extension("staged");
        fs_err::write(&staged, current)?;
        fs_err::rename(&staged, stamp)?;
        Ok(())
    }

    fn writer(&self) -> Result<MutexGuard<'_, IndexWriter>> {
        self.writer.lock().map_err(|_| Error::WriterPoisoned)
    }

    fn to_document(&self, chunk: &Chunk) -> TantivyDocument {
        let f = &self.fields;
        let citation = &chunk.citation;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.chunk_id, chunk.id.to_hex());
        doc.add_text(f.doc_key, doc_key(&citation.kb, &citation.document_path));
        doc.add_text(f.kb, citation.kb.as_str());
        doc.add_text(f.path, citation.document_path.as_str());
        doc.add_text(f.title, &citation.title);
        for heading in &citation.heading_path {
            doc.add_text(f.heading_path, heading);
        }
        doc.add_text(f.text, &chunk.text);
        if let Some(page) = citation.page {
            doc.add_u64(f.page, page.into());
        }
        doc.add_u64(f.char_start, citation.char_range.start.into());
        doc.add_u64(f.char_end, citation.char_range.end.into());
        doc.add_u64(f.ordinal, chunk.ordinal.into());
        doc
    }
}

impl Reading {
    fn load_chunk(&self, searcher: &Searcher, address: DocAddress) -> Result<Chunk> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let f = &self.fields;
        let text = |field: Field, name: &str| -> Result<String> {
            doc.get_first(field)
                .and_then(|value| value.as_str())
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidStoredData(format!("chunk without {name}")))
        };
        let number = |field: Field| -> Result<Option<u32>> {
            doc.get_first(field)
                .and_then(|value| value.as_u64())
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| Error::InvalidStoredData(format!("{n} out of range")))
                })
                .transpose()
        };
        let required = |field: Field, name: &str| -> Result<u32> {
            number(field)?.ok_or_else(|| Error::InvalidStoredData(format!("chunk without {name}")))
        };
        let invalid = |err: lumbung_core::Error| Error::InvalidStoredData(err.to_string());
        Ok(Chunk {
            id: ChunkId::from_hex(&text(f.chunk_id, "chunk_id")?).map_err(invalid)?,
            ordinal: required(f.ordinal, "ordinal")?,
            citation: Citation {
                kb: KbName::new(text(f.kb, "kb")?).map_err(invalid)?,
                document_path: DocumentPath::new(text(f.path, "path")?).map_err(invalid)?,
                title: text(f.title, "title")?,
                heading_path: doc
                    .get_all(f.heading_path)
                    .filter_map(|value| value.as_str().map(str::to_string))
                    .collect(),
                page: number(f.page)?,
                char_range: required(f.char_start, "char_start")?
                    ..required(f.char_end, "char_end")?,
            },
            text: text(f.text, "text")?,
        })
    }

    /// The query matching any analysed term of `query` in text, title or headings, scored by
    /// BM25; `None` when the query has no searchable term.
    fn text_query(&self, query: &str) -> Option<BooleanQuery> {
        let mut seen = HashSet::new();
        let terms: Vec<String> = analyzer::token_texts(&mut self.analyzer.clone(), query)
            .into_iter()
            .filter(|term| seen.insert(term.clone()))
            .take(MAX_QUERY_TERMS)
            .collect();
        if terms.is_empty() {
            return None;
        }
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 3);
        for term in &terms {
            for (field, boost) in [
                (f.text, 1.0),
                (f.title, TITLE_BOOST),
                (f.heading_path, HEADING_BOOST),
            ] {
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                let query: Box<dyn Query> = if boost == 1.0 {
                    Box::new(query)
                } else {
                    Box::new(BoostQuery::new(Box::new(query), boost))
                };
                clauses.push((Occur::Should, query));
            }
        }
        Some(BooleanQuery::new(clauses))
    }
}

impl LexicalIndex for TantivyLexicalIndex {
    fn replace_document(&self, kb: &KbName, path: &DocumentPath, chunks: &[Chunk]) -> Result<()> {
        if let Some(stray) = chunks
            .iter()
            .find(|chunk| &chunk.citation.kb != kb || &chunk.citation.document_path != path)
        {
            return Err(Error::InvalidArgument(format!(
                "chunk {} belongs to {}/{}, not {kb}/{path}",
                stray.id, stray.citation.kb, stray.citation.document_path
            )));
        }
        let documents: Vec<TantivyDocument> =
            chunks.iter().map(|chunk| self.to_document(chunk)).collect();
        let writer = self.writer()?;
        // The delete only hits documents added before it, so the new chunks survive it.
        writer.delete_term(Term::from_field_text(
            self.fields.doc_key,
            &doc_key(kb, path),
        ));
        for document in documents {
            writer.add_document(document)?;
        }
        Ok(())
    }

    fn delete_document(&self, kb: &KbName, path: &DocumentPath) -> Result<()> {
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(
            self.fields.doc_key,
            &doc_key(kb, path),
        ));
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        let mut writer = self.writer()?;
        let opstamp = writer.commit()?;
        // Reloading under the writer lock keeps a later commit from being overtaken by this one.
        self.reader.reload()?;
        tracing::debug!(opstamp, "lexical index committed");
        Ok(())
    }

    fn snapshot(&self) -> Arc<dyn LexicalSnapshot> {
        Arc::new(TantivySnapshot {
            searcher: self.reader.searcher(),
            reading: Arc::clone(&self.reading),
        })
    }

    fn count_chunks(&self, kb: &KbName, path: Option<&DocumentPath>) -> Result<u64> {
        let term = match path {
            Some(path) => Term::from_field_text(self.fields.doc_key, &doc_key(kb, path)),
            None => Term::from_field_text(self.fields.kb, kb.as_str()),
        };
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let count = self.reader.searcher().search(&query, &Count)?;
        Ok(count as u64)
    }
}

impl LexicalSnapshot for TantivySnapshot {
    fn search(&self, query: &str, kbs: &[KbName], limit: usize) -> Result<Vec<ScoredChunk>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let Some(text_query) = self.reading.text_query(query) else {
            return Ok(Vec::new());
        };
        let kb_terms = kbs
            .iter()
            .map(|kb| Term::from_field_text(self.reading.fields.kb, kb.as_str()));
        // Score 0 so that the filter selects documents without changing their BM25 order.
        let kb_filter = ConstScoreQuery::new(Box::new(TermSetQuery::new(kb_terms)), 0.0);
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(kb_filter) as Box<dyn Query>),
            (Occur::Must, Box::new(text_query)),
        ]);
        let searcher = &self.searcher;
        let hits = searcher.search(&query, &TopDocs::with_limit(limit))?;
        hits.into_iter()
            .map(|(score, address)| {
                Ok(ScoredChunk {
                    chunk: self.reading.load_chunk(searcher, address)?,
                    score,
                })
            })
            .collect()
    }

    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let terms = ids
            .iter()
            .map(|id| Term::from_field_text(self.reading.fields.chunk_id, &id.to_hex()));
        let searcher = &self.searcher;
        let addresses = searcher.search(&TermSetQuery::new(terms), &DocSetCollector)?;
        let mut found = HashMap::with_capacity(addresses.len());
        for address in addresses {
            let chunk = self.reading.load_chunk(searcher, address)?;
            found.insert(chunk.id, chunk);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}
