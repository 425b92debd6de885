//! `lumbung eval DIR`: retrieval quality on a collection in the BEIR layout. The corpus is
//! written as text files into a temporary knowledge base and ingested by the normal pipeline;
//! every query goes through `SearchEngine::search`, the call the gRPC `Search` handler makes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lumbung_core::{Config, KbName};
use lumbung_ingest::SyncReport;
use lumbung_search::eval::{self, Collection, CorpusDocument};
use lumbung_search::{Retriever, Scope, SearchRequest};
use lumbung_server::App;
use serde_json::json;

use crate::local::{ingest_bar, show_progress};

pub const KB: &str = "eval";
/// Passages asked per query: enough distinct documents for Recall@100 when documents have
/// several chunks.
const PASSAGES_PER_QUERY: usize = 300;

pub struct EvalOptions {
    pub dir: PathBuf,
    pub max_queries: usize,
    pub max_documents: usize,
    pub json: bool,
    pub work_dir: Option<PathBuf>,
    pub rerank: bool,
}

/// The scores of one retriever over the collection's queries.
struct RetrieverScores {
    name: &'static str,
    ndcg_at_10: f64,
    recall_at_100: f64,
    mrr_at_10: f64,
    p50: Duration,
    p99: Duration,
}

pub async fn eval(mut config: Config, options: EvalOptions) -> anyhow::Result<()> {
    let collection =
        Collection::load(&options.dir)?.subset(options.max_queries, options.max_documents);
    anyhow::ensure!(
        !collection.queries.is_empty(),
        "{} has no query with a relevant document",
        options.dir.display()
    );
    let work_dir = WorkDir::new(options.work_dir.as_deref())?;
    let work = work_dir.path();
    let folder = work.join("ingest").join(KB);
    let document_of = write_corpus(&collection.corpus, &folder)?;
    config.ingest_root = work.join("ingest");
    config.data_dir = work.join("data");
    // Asking for PASSAGES_PER_QUERY passages makes each retriever fetch that many, enough for
    // Recall@100; search.candidates itself stays as configured, since normalised fusion
    // scales scores over that many hits.
    config.search.max_top_k = config.search.max_top_k.max(PASSAGES_PER_QUERY);
    config.rerank.enabled = options.rerank;
    let settings = json!({
        "search": config.search,
        "rerank_candidates": config.rerank.candidates,
        "chunk_max_tokens": config.ingest.chunk_max_tokens,
    });

    let (app, report, ingest_seconds) = open_and_ingest(config).await?;
    // Counted from the catalog: a reused work folder ingests nothing new.
    let summary = app.ingestor()?.status(&KbName::new(KB)?)?.summary;
    if !options.json {
        println!(
            "{}: {} documents ({} chunks, {} failed; {} embedded now) ingested in \
             {ingest_seconds:.1} s; {} queries",
            options.dir.display(),
            summary.indexed,
            summary.chunks,
            summary.failed,
            report.chunks_embedded,
            collection.queries.len()
        );
    }

    let mut rows = Vec::new();
    let mut retrievers = vec![
        ("bm25", Retriever::Bm25),
        ("dense", Retriever::Dense),
        ("hybrid", Retriever::Hybrid),
    ];
    if options.rerank {
        retrievers.push(("hybrid+rerank", Retriever::HybridRerank));
    }
    for (name, retriever) in retrievers {
        rows.push(score(&app, &collection, &document_of, name, retriever).await?);
    }

    if options.json {
        let retrievers: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "retriever": r.name,
                    "ndcg_at_10": r.ndcg_at_10,
                    "recall_at_100": r.recall_at_100,
                    "mrr_at_10": r.mrr_at_10,
                    "latency_p50_ms": ms(r.p50),
                    "latency_p99_ms": ms(r.p99),
                })
            })
            .collect();
        let body = json!({
            "collection": options.dir.display().to_string(),
            "documents": collection.corpus.len(),
            "chunks": summary.chunks,
            "queries": collection.queries.len(),
            "ingest_seconds": ingest_seconds,
            "settings": settings,
            "retrievers": retrievers,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!(
            "{:<13} {:>8} {:>10} {:>7} {:>8} {:>8}",
            "retriever", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p99 ms"
        );
        for r in &rows {
            println!(
                "{:<13} {:>8.4} {:>10.4} {:>7.4} {:>8.2} {:>8.2}",
                r.name,
                r.ndcg_at_10,
                r.recall_at_100,
                r.mrr_at_10,
                ms(r.p50),
                ms(r.p99)
            );
        }
        if !options.rerank {
            println!("(hybrid+rerank: add --rerank)");
        }
    }
    Ok(())
}

/// Writes each corpus document as `<id>.txt` (title on the first line, as BEIR joins title
/// and text) and returns the document id of each file name. A file that already holds the
/// text is left alone, so that a reused work folder is not ingested again; files of documents
/// no longer in the collection are removed.
pub fn write_corpus(
    corpus: &[CorpusDocument],
    folder: &Path,
) -> anyhow::Result<HashMap<String, String>> {
    std::fs::create_dir_all(folder)?;
    let mut document_of = HashMap::with_capacity(corpus.len());
    for (n, document) in corpus.iter().enumerate() {
        let plain = !document.id.is_empty()
            && document.id.len() <= 100
            && document
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let file = if plain {
            format!("{}.txt", document.id)
        } else {
            format!("doc-{n:07}.txt")
        };
        let text = if document.title.trim().is_empty() {
            document.text.clone()
        } else {
            format!("{}\n\n{}", document.title.trim(), document.text)
        };
        let path = folder.join(&file);
        if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
            std::fs::write(&path, text)?;
        }
        document_of.insert(file, document.id.clone());
    }
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !document_of.contains_key(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(document_of)
}

async fn score(
    app: &App,
    collection: &Collection,
    document_of: &HashMap<String, String>,
    name: &'static str,
    retriever: Retriever,
) -> anyhow::Result<RetrieverScores> {
    let scope = Scope::resolved(vec![app.ingestor()?.serving(&KbName::new(KB)?)?]);
    let mut quality = Quality::default();
    let mut latencies = Vec::with_capacity(collection.queries.len());
    for query in &collection.queries {
        let request = SearchRequest {
            query: query.text.clone(),
            scope: scope.clone(),
            top_k: PASSAGES_PER_QUERY,
            retriever,
        };
        let started = Instant::now();
        let passages = app.engine.search(&request).await?;
        latencies.push(started.elapsed());
        let ranked = eval::documents_by_best_passage(passages.iter().filter_map(|p| {
            document_of
                .get(p.chunk.citation.document_path.as_str())
                .map(String::as_str)
        }));
        quality.add(&ranked, &collection.qrels[&query.id]);
    }
    latencies.sort();
    let [ndcg_at_10, recall_at_100, mrr_at_10] = quality.means();
    Ok(RetrieverScores {
        name,
        ndcg_at_10,
        recall_at_100,
        mrr_at_10,
        p50: crate::bench::percentile(&latencies, 0.5),
        p99: crate::bench::percentile(&latencies, 0.99),
    })
}

/// nDCG@10, Recall@100 and MRR@10 summed over queries.
#[derive(Default)]
pub struct Quality {
    sums: [f64; 3],
    queries: usize,
}

impl Quality {
    /// Adds one query's documents in ranked order, against its relevant ones.
    pub fn add(&mut self, ranked: &[String], relevant: &HashMap<String, u32>) {
        self.sums[0] += eval::ndcg_at(ranked, relevant, 10);
        self.sums[1] += eval::recall_at(ranked, relevant, 100);
        self.sums[2] += eval::mrr_at(ranked, relevant, 10);
        self.queries += 1;
    }

    /// The means of nDCG@10, Recall@100 and MRR@10.
    pub fn means(&self) -> [f64; 3] {
        self.sums.map(|sum| sum / self.queries.max(1) as f64)
    }
}

/// Opens the engine on `config` and syncs every knowledge base of its ingest root, with a
/// progress bar; returns how long the sync took in seconds.
pub async fn open_and_ingest(config: Config) -> anyhow::Result<(Arc<App>, SyncReport, f64)> {
    let app = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    let started = Instant::now();
    let ingestor = Arc::clone(app.ingestor()?);
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bar = ingest_bar()?;
        let report = ingestor.sync_all(false, &|event| show_progress(&bar, event))?;
        bar.finish_and_clear();
        Ok(report)
    })
    .await??;
    Ok((app, report, started.elapsed().as_secs_f64()))
}

/// Where an evaluation keeps its corpus files and data: the folder `--work-dir` names (kept,
/// so that a second run only searches), or a temporary one removed when this is dropped.
pub struct WorkDir {
    path: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn new(named: Option<&Path>) -> std::io::Result<WorkDir> {
        Ok(match named {
            Some(dir) => WorkDir {
                path: dir.to_path_buf(),
                _temporary: None,
            },
            None => {
                let temporary = tempfile::tempdir()?;
                WorkDir {
                    path: temporary.path().to_path_buf(),
                    _temporary: Some(temporary),
                }
            }
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
