//! The lexical index on tantivy: one tantivy document per chunk. It is also where chunks are
//! stored: their text, citation, language and embedded sentences come back from one snapshot
//! together with the BM25 hits.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lumbung_core::{Chunk, ChunkId, Citation, DocumentPath, KbGeneration, Language};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher,
    TantivyDocument, Term,
};

use crate::analyzer::{self, ANALYZER_NAME};
use crate::sentence_codec;
use crate::{Error, LexicalIndex, LexicalSnapshot, Result, ScoredChunk};

/// Indexing memory shared by the writer threads; tantivy flushes a segment when it is full.
const WRITER_HEAP_BYTES: usize = 64 << 20;

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
    /// What BM25 searches: the chunk's context (title and headings) and its text, as
    /// `Chunk::indexed_text` gives them. Not stored: `text` is what is returned.
    search_text: Field,
    language: Field,
    /// The chunk's sentences with their embeddings, in `sentence_codec`'s format.
    sentences: Field,
    page: Field,
    char_start: Field,
    char_end: Field,
    ordinal: Field,
}

fn schema() -> (Schema, Fields) {
    // Frequencies for BM25; no positions, since no query uses phrases.
    let analyzed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let mut builder = Schema::builder();
    let fields = Fields {
        chunk_id: builder.add_text_field("chunk_id", STRING | STORED),
        // "generation key\0path": one term per document, so a document is deleted with one
        // delete_term.
        doc_key: builder.add_text_field("doc_key", STRING),
        // The knowledge base's generation key (`KbGeneration::key`).
        kb: builder.add_text_field("kb", STRING | STORED),
        path: builder.add_text_field("path", STRING | STORED),
        title: builder.add_text_field("title", STORED),
        // One value per heading, outermost first: stored values keep their order.
        heading_path: builder.add_text_field("heading_path", STORED),
        text: builder.add_text_field("text", STORED),
        search_text: builder.add_text_field("search_text", analyzed),
        language: builder.add_text_field("language", STRING | STORED),
        sentences: builder.add_bytes_field("sentences", STORED),
        page: builder.add_u64_field("page", STORED),
        char_start: builder.add_u64_field("char_start", STORED),
        char_end: builder.add_u64_field("char_end", STORED),
        ordinal: builder.add_u64_field("ordinal", STORED | FAST),
    };
    (builder.build(), fields)
}

fn doc_key(kb: &KbGeneration, path: &DocumentPath) -> String {
    // Neither a generation's key nor a document path can contain NUL, so the key is unambiguous.
    format!("{}\u{0}{path}", kb.key())
}

/// Segments whose documents are more than this fraction deleted are merged even when their
/// size class has too few segments to merge: every edit of a document deletes its old chunks,
/// and tantivy's default (1.0, deletes never count) let a large segment keep them for ever.
const DELETED_FRACTION_BEFORE_MERGE: f32 = 0.2;

fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_del_docs_ratio_before_merge(DELETED_FRACTION_BEFORE_MERGE);
    policy
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
    /// The knowledge bases with documents in a commit (by its searcher generation).
    stored_kbs: Mutex<Option<(u64, Arc<HashSet<String>>)>>,
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
    /// Fails with [`Error::IncompatibleFormat`] if the index there has another schema (it was
    /// written by another version of lumbung), or if another writer holds it.
    pub fn open(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(tantivy::TantivyError::from)?;
        let index = Index::builder()
            .schema(schema)
            .open_or_create(directory)
            .map_err(|err| match err {
                tantivy::TantivyError::SchemaError(reason) => {
                    Error::IncompatibleFormat(format!("{}: {reason}", dir.display()))
                }
                other => other.into(),
            })?;
        let analyzer = analyzer::analyzer();
        index.tokenizers().register(ANALYZER_NAME, analyzer.clone());
        let writer = index.writer(WRITER_HEAP_BYTES)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let index = TantivyLexicalIndex {
            fields,
            writer: Mutex::new(writer),
            reader,
            reading: Arc::new(Reading {
                fields,
                analyzer,
                stored_kbs: Mutex::new(None),
            }),
        };
        index.reanalyze_if_stale(&dir.join(ANALYZER_STAMP_FILE))?;
        Ok(index)
    }

    /// The documents (chunks) and deleted documents of each committed segment, as the
    /// index's metadata records them: how much of the index merges have yet to reclaim.
    pub fn segment_sizes(&self) -> Result<Vec<(u32, u32)>> {
        let metas = self.writer()?.index().searchable_segment_metas()?;
        Ok(metas
            .iter()
            .map(|meta| (meta.max_doc(), meta.num_deleted_docs()))
            .collect())
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
                    let kb = self.reading.load_generation(&searcher, address)?;
                    writer.add_document(self.to_document(&kb, &chunk))?;
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

    fn to_document(&self, kb: &KbGeneration, chunk: &Chunk) -> TantivyDocument {
        let f = &self.fields;
        let citation = &chunk.citation;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.chunk_id, chunk.id.to_hex());
        doc.add_text(f.doc_key, doc_key(kb, &citation.document_path));
        doc.add_text(f.kb, kb.key());
        doc.add_text(f.path, citation.document_path.as_str());
        doc.add_text(f.title, &citation.title);
        for heading in &citation.heading_path {
            doc.add_text(f.heading_path, heading);
        }
        doc.add_text(f.text, &chunk.text);
        doc.add_text(f.search_text, chunk.indexed_text());
        doc.add_text(f.language, chunk.language.code());
        doc.add_bytes(f.sentences, &sentence_codec::encode(&chunk.sentences));
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
    /// The knowledge base and generation a stored chunk was filed under.
    fn load_generation(&self, searcher: &Searcher, address: DocAddress) -> Result<KbGeneration> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let key = doc
            .get_first(self.fields.kb)
            .and_then(|value| value.as_str())
            .ok_or_else(|| Error::InvalidStoredData("chunk without kb".to_string()))?;
        KbGeneration::from_key(key).map_err(|err| Error::InvalidStoredData(err.to_string()))
    }

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
                kb: KbGeneration::from_key(&text(f.kb, "kb")?)
                    .map_err(invalid)?
                    .kb()
                    .clone(),
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
            language: Language::from_code(&text(f.language, "language")?),
            sentences: sentence_codec::decode(
                doc.get_first(f.sentences)
                    .and_then(|value| value.as_bytes())
                    .ok_or_else(|| Error::InvalidStoredData("chunk without sentences".into()))?,
            )?,
            text: text(f.text, "text")?,
        })
    }

    /// The distinct analysed terms of `query` in the searched field, at most
    /// [`MAX_QUERY_TERMS`].
    fn query_terms(&self, query: &str) -> Vec<Term> {
        let mut seen = HashSet::new();
        analyzer::token_texts(&mut self.analyzer.clone(), query)
            .into_iter()
            .filter(|term| seen.insert(term.clone()))
            .take(MAX_QUERY_TERMS)
            .map(|term| Term::from_field_text(self.fields.search_text, &term))
            .collect()
    }
}

/// For each hit, the share of the query's term weight (the sum of the terms' IDF) that the
/// chunk holds: 1 when it holds every term, close to 0 when it shares only a common word or a
/// number with the question.
fn coverage(searcher: &Searcher, terms: &[Term], hits: &[DocAddress]) -> Result<Vec<f32>> {
    let weights = idf(searcher, terms)?;
    let all: f32 = weights.iter().sum();
    let mut found = vec![0f32; hits.len()];
    if all <= 0.0 {
        return Ok(found);
    }
    // Per segment, each term's postings are walked once, forwards, over the sorted hits.
    let mut by_segment: HashMap<u32, Vec<(DocId, usize)>> = HashMap::new();
    for (index, address) in hits.iter().enumerate() {
        by_segment
            .entry(address.segment_ord)
            .or_default()
            .push((address.doc_id, index));
    }
    for (segment_ord, mut docs) in by_segment {
        docs.sort_unstable();
        let segment = searcher.segment_reader(segment_ord);
        let inverted = segment.inverted_index(terms[0].field())?;
        for (term, weight) in terms.iter().zip(&weights) {
            let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
                continue;
            };
            for &(doc, index) in &docs {
                if postings.doc() <= doc && postings.seek(doc) == doc {
                    found[index] += weight;
                }
            }
        }
    }
    Ok(found.into_iter().map(|weight| weight / all).collect())
}

/// BM25's inverse document frequency of each term (Lucene's form, never negative).
fn idf(searcher: &Searcher, terms: &[Term]) -> Result<Vec<f32>> {
    let total = searcher.num_docs() as f32;
    terms
        .iter()
        .map(|term| {
            let df = searcher.doc_freq(term)? as f32;
            Ok((1.0 + (total - df + 0.5) / (df + 0.5)).ln())
        })
        .collect()
}

impl LexicalIndex for TantivyLexicalIndex {
    fn replace_document(
        &self,
        kb: &KbGeneration,
        path: &DocumentPath,
        chunks: &[Chunk],
    ) -> Result<()> {
        if let Some(stray) = chunks
            .iter()
            .find(|chunk| &chunk.citation.kb != kb.kb() || &chunk.citation.document_path != path)
        {
            return Err(Error::InvalidArgument(format!(
                "chunk {} belongs to {}/{}, not {kb}/{path}",
                stray.id, stray.citation.kb, stray.citation.document_path
            )));
        }
        let documents: Vec<TantivyDocument> = chunks
            .iter()
            .map(|chunk| self.to_document(kb, chunk))
            .collect();
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

    fn delete_document(&self, kb: &KbGeneration, path: &DocumentPath) -> Result<()> {
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(
            self.fields.doc_key,
            &doc_key(kb, path),
        ));
        Ok(())
    }

    fn delete_generation(&self, kb: &KbGeneration) -> Result<()> {
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.kb, kb.key()));
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

    fn count_chunks(&self, kb: &KbGeneration, path: Option<&DocumentPath>) -> Result<u64> {
        let term = match path {
            Some(path) => Term::from_field_text(self.fields.doc_key, &doc_key(kb, path)),
            None => Term::from_field_text(self.fields.kb, kb.key()),
        };
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let count = self.reader.searcher().search(&query, &Count)?;
        Ok(count as u64)
    }
}

impl TantivySnapshot {
    /// Whether every document of this commit (deleted ones included) belongs to a knowledge
    /// base of `scope`, by the knowledge-base terms of its segments.
    fn holds_only(&self, scope: &HashSet<&str>) -> Result<bool> {
        let generation = self.searcher.generation().generation_id();
        let mut stored = self
            .reading
            .stored_kbs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let present = match stored.as_ref() {
            Some((seen, present)) if *seen == generation => Arc::clone(present),
            _ => {
                let mut present = HashSet::new();
                for segment in self.searcher.segment_readers() {
                    let inverted = segment.inverted_index(self.reading.fields.kb)?;
                    let mut terms = inverted.terms().stream()?;
                    while terms.advance() {
                        present.insert(String::from_utf8_lossy(terms.key()).into_owned());
                    }
                }
                let present = Arc::new(present);
                *stored = Some((generation, Arc::clone(&present)));
                present
            }
        };
        drop(stored);
        Ok(present.iter().all(|kb| scope.contains(kb.as_str())))
    }
}

impl LexicalSnapshot for TantivySnapshot {
    fn search(&self, query: &str, kbs: &[KbGeneration], limit: usize) -> Result<Vec<ScoredChunk>> {
        if kbs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let terms = self.reading.query_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let text_query = BooleanQuery::new(
            terms
                .iter()
                .map(|term| {
                    let query = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                    (Occur::Should, Box::new(query) as Box<dyn Query>)
                })
                .collect(),
        );
        let searcher = &self.searcher;
        let scope: HashSet<&str> = kbs.iter().map(KbGeneration::key).collect();
        // A filter that every document passes only costs time: at a million chunks one on 600
        // knowledge bases made a search four times slower.
        let query: Box<dyn Query> = if self.holds_only(&scope)? {
            Box::new(text_query)
        } else {
            let kb_terms = kbs
                .iter()
                .map(|kb| Term::from_field_text(self.reading.fields.kb, kb.key()));
            // Score 0 so that the filter selects documents without changing their BM25 order.
            let kb_filter = ConstScoreQuery::new(Box::new(TermSetQuery::new(kb_terms)), 0.0);
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(kb_filter) as Box<dyn Query>),
                (Occur::Must, Box::new(text_query)),
            ]))
        };
        let hits = searcher.search(query.as_ref(), &TopDocs::with_limit(limit))?;
        let addresses: Vec<DocAddress> = hits.iter().map(|(_, address)| *address).collect();
        let coverage = coverage(searcher, &terms, &addresses)?;
        hits.into_iter()
            .zip(coverage)
            .map(|((score, address), coverage)| {
                Ok(ScoredChunk {
                    chunk: self.reading.load_chunk(searcher, address)?,
                    score,
                    coverage,
                })
            })
            .collect()
    }

    fn term_weights(&self, text: &str) -> Result<Vec<(String, f32)>> {
        let terms = self.reading.query_terms(text);
        let weights = idf(&self.searcher, &terms)?;
        Ok(terms
            .iter()
            .zip(weights)
            .filter_map(|(term, weight)| Some((term.value().as_str()?.to_string(), weight)))
            .collect())
    }

    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        let searcher = &self.searcher;
        let mut found = HashMap::with_capacity(ids.len());
        for address in live_addresses(searcher, self.reading.fields.chunk_id, ids)? {
            let chunk = self.reading.load_chunk(searcher, address)?;
            found.insert(chunk.id, chunk);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

/// The live documents whose `field` holds one of `ids`, at most one each.
///
/// Each id is looked up in the term dictionary of one segment after another, largest first, and
/// dropped from the search once found live: at a million chunks a `TermSetQuery` over eight
/// segments took 7 ms for 150 ids (`lumbung bench --scale`), most of a dense search's fetch.
fn live_addresses(searcher: &Searcher, field: Field, ids: &[ChunkId]) -> Result<Vec<DocAddress>> {
    let mut wanted: Vec<Term> = ids
        .iter()
        .map(|id| Term::from_field_text(field, &id.to_hex()))
        .collect();
    let mut segments: Vec<(u32, &tantivy::SegmentReader)> =
        (0u32..).zip(searcher.segment_readers()).collect();
    segments.sort_by_key(|(_, segment)| std::cmp::Reverse(segment.num_docs()));
    let mut addresses = Vec::with_capacity(wanted.len());
    for (ordinal, segment) in segments {
        if wanted.is_empty() {
            break;
        }
        let inverted = segment.inverted_index(field)?;
        let alive = segment.alive_bitset();
        let mut index = 0;
        while index < wanted.len() {
            let mut live = None;
            if let Some(mut postings) =
                inverted.read_postings(&wanted[index], IndexRecordOption::Basic)?
            {
                let mut doc = postings.doc();
                while doc != tantivy::TERMINATED {
                    if alive.is_none_or(|alive| alive.is_alive(doc)) {
                        live = Some(doc);
                        break;
                    }
                    doc = postings.advance();
                }
            }
            match live {
                Some(doc) => {
                    addresses.push(DocAddress::new(ordinal, doc));
                    wanted.swap_remove(index);
                }
                None => index += 1,
            }
        }
    }
    Ok(addresses)
}
