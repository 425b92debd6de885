//! `lumbung eval DIR --lexical`: BM25 of the two lexical engines on the same chunks, tantivy
//! (the embedded default) and Qdrant's sparse vectors with IDF (the cluster's), served here by
//! the stand-in Qdrant (Qdrant's gRPC API over its own storage engine, in this process). Nothing
//! is embedded: the corpus is extracted and chunked as ingest does, and each engine is given
//! the same chunks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use lumbung_core::{
    Config, ContentHash, DocumentPath, KbGeneration, KbName, VectorStoreConfig, VectorStoreKind,
};
use lumbung_embed::{Chunker, Embedder};
use lumbung_index::{LexicalIndex, TantivyLexicalIndex, analyzer};
use lumbung_qdrant::stand_in::StandInQdrant;
use lumbung_qdrant::{Connection, QdrantLexicalIndex};
use lumbung_search::eval::{self, Collection};

use crate::eval::{Quality, ms};

pub struct LexicalEvalOptions {
    pub dir: PathBuf,
    pub max_queries: usize,
    pub max_documents: usize,
    /// Average chunk lengths (in analyzer terms) to write Qdrant's BM25 weights with, one
    /// collection each.
    pub average_terms: Vec<f32>,
}

/// Chunks asked per query, as `lumbung eval` asks passages: enough documents for Recall@100.
const CHUNKS_PER_QUERY: usize = 300;
/// Documents staged per commit.
const COMMIT_EVERY: usize = 500;

pub fn eval_lexical(config: Config, options: LexicalEvalOptions) -> anyhow::Result<()> {
    let collection =
        Collection::load(&options.dir)?.subset(options.max_queries, options.max_documents);
    anyhow::ensure!(
        !collection.queries.is_empty(),
        "{} has no query with a relevant document",
        options.dir.display()
    );
    let embedder = Embedder::load(&config.embedding, config.ingest.niceness)?;
    let chunker = Chunker::new(
        Arc::clone(embedder.tokenizer()),
        config.ingest.chunk_max_tokens,
        config.ingest.chunk_overlap_tokens,
    )?;
    drop(embedder);
    // A new index of its own: the first generation.
    let kb = KbGeneration::first(KbName::new(crate::eval::KB)?);

    // Extracted and chunked once, as ingest would the files `lumbung eval` writes.
    let started = Instant::now();
    let mut documents = Vec::with_capacity(collection.corpus.len());
    let mut document_of = HashMap::with_capacity(collection.corpus.len());
    for (n, document) in collection.corpus.iter().enumerate() {
        let path = DocumentPath::new(format!("doc-{n:07}.txt"))?;
        let text = if document.title.trim().is_empty() {
            document.text.clone()
        } else {
            format!("{}\n\n{}", document.title.trim(), document.text)
        };
        let hash = ContentHash::of_bytes(text.as_bytes());
        let extracted = lumbung_extract::extract(&path, text.as_bytes())?;
        let chunks = chunker.split(&kb, &path, &hash, &extracted.title, &extracted.sections);
        document_of.insert(path.as_str().to_string(), document.id.clone());
        documents.push((path, chunks));
    }
    let chunks: usize = documents.iter().map(|(_, chunks)| chunks.len()).sum();
    let mut analyzer = analyzer::analyzer();
    let terms: usize = documents
        .iter()
        .flat_map(|(_, chunks)| chunks)
        .map(|chunk| analyzer::token_texts(&mut analyzer, &chunk.indexed_text()).len())
        .sum();
    println!(
        "{}: {} documents, {chunks} chunks ({:.1} analyzer terms per chunk on average), \
         chunked in {:.1} s; {} queries",
        options.dir.display(),
        documents.len(),
        terms as f64 / chunks.max(1) as f64,
        started.elapsed().as_secs_f64(),
        collection.queries.len()
    );

    let work = tempfile::tempdir()?;
    let mut engines: Vec<(String, Arc<dyn LexicalIndex>)> = vec![(
        "tantivy".to_string(),
        Arc::new(TantivyLexicalIndex::open(&work.path().join("tantivy"))?),
    )];
    let stand_in = StandInQdrant::start(&work.path().join("qdrant"), None)?;
    for average in &options.average_terms {
        let store = VectorStoreConfig {
            kind: VectorStoreKind::Qdrant,
            url: stand_in.url(),
            bm25_average_chunk_terms: *average,
            ..VectorStoreConfig::default()
        };
        let connection = Connection::new(&store)?;
        let collection_name = format!("chunks-{}", *average as u32);
        engines.push((
            format!("qdrant avgdl {average}"),
            Arc::new(QdrantLexicalIndex::open(
                &connection,
                &store,
                &collection_name,
            )?),
        ));
    }

    println!(
        "{:<20} {:>8} {:>10} {:>7} {:>8} {:>8}",
        "engine", "nDCG@10", "Recall@100", "MRR@10", "index s", "p50 ms"
    );
    let scope = [kb.clone()];
    for (name, engine) in &engines {
        let started = Instant::now();
        for (n, (path, chunks)) in documents.iter().enumerate() {
            engine.replace_document(&kb, path, chunks)?;
            if n % COMMIT_EVERY == COMMIT_EVERY - 1 {
                engine.commit()?;
            }
        }
        engine.commit()?;
        let index_seconds = started.elapsed().as_secs_f64();
        let mut quality = Quality::default();
        let mut latencies = Vec::with_capacity(collection.queries.len());
        for query in &collection.queries {
            let started = Instant::now();
            let hits = engine.search(&query.text, &scope, CHUNKS_PER_QUERY)?;
            latencies.push(started.elapsed());
            let ranked = eval::documents_by_best_passage(hits.iter().filter_map(|hit| {
                document_of
                    .get(hit.chunk.citation.document_path.as_str())
                    .map(String::as_str)
            }));
            quality.add(&ranked, &collection.qrels[&query.id]);
        }
        latencies.sort();
        let [ndcg, recall, mrr] = quality.means();
        println!(
            "{:<20} {:>8.4} {:>10.4} {:>7.4} {:>8.1} {:>8.2}",
            name,
            ndcg,
            recall,
            mrr,
            index_seconds,
            ms(crate::bench::percentile(&latencies, 0.5)),
        );
    }
    Ok(())
}
