//! `lumbung bench --scale N --kbs M`: what search costs at the company's size.
//!
//! Embedding a million chunks on two cores takes days, so the index is built from a real sample:
//! documents of ../shared/eval corpora (English, Indonesian, Chinese) are ingested through the
//! normal path into the knowledge base `sample` (real chunks, sentences and vectors), then the
//! other knowledge bases are filled with copies of those chunks (text, headings and sentence
//! vectors as they are) whose passage vectors are the sample's mixed with a share of another
//! sample vector and a little Gaussian noise, renormalised. Knowledge-base sizes follow a Zipf law: a few large, many small. Then the
//! graph is built, dense recall@10 of the graph search is measured against exact search, and a
//! fresh `lumbung` process (so that its memory is the serving memory, not the build's) opens
//! the data directory and is timed over gRPC for each retriever and scope. Queries are real
//! questions of the same collections, embedded by the real model at every call.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lumbung_core::{Chunk, ChunkId, Config, ContentHash, DocumentPath, KbGeneration, KbName};
use lumbung_embed::Embedder;
use lumbung_index::{EdgeVectorStore, LexicalIndex, TantivyLexicalIndex, VectorPoint, VectorStore};
use lumbung_ingest::{Catalog, DocumentRecord};
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_search::eval::{Collection, read_corpus};
use lumbung_server::App;
use tonic::transport::Channel;

use crate::bench::{mib, ms, percentile, status_kib};

/// The collections the sample and the queries come from, one per language.
const COLLECTIONS: [&str; 3] = ["scifact", "tydiqa_goldp_id", "cmrc2018_dev_zh"];

/// The knowledge base the real sample is ingested into.
const SAMPLE_KB: &str = "sample";

/// Chunks per derived document.
const CHUNKS_PER_DOCUMENT: usize = 8;

/// Standard deviation of the noise added to each entry of a derived vector: cosine to its
/// source vector about 0.93 at 384 dimensions, about what near-duplicate passages score.
const NOISE: f32 = 0.02;

/// The largest share of each of two other sample vectors mixed into a derived one. Copies of a
/// few hundred vectors with noise alone would be tight clusters of thousands of near-ties,
/// which no real collection is (and on which no graph search finds the exact ten); mixing
/// spreads them between real passages.
const MIX: f32 = 0.5;

/// Written into the work folder when a build is complete: "<chunks> <knowledge bases>".
const BUILT_MARKER: &str = "BUILT";

/// Chunks staged in the lexical index between commits while building.
const COMMIT_EVERY: usize = 50_000;

pub struct ScaleOptions {
    /// Chunks in the index, the sample's included.
    pub chunks: usize,
    /// Knowledge bases, the sample's included.
    pub kbs: usize,
    /// Real documents ingested as the sample, spread over the collections.
    pub sample_documents: usize,
    /// Where the BEIR collections are.
    pub corpora: PathBuf,
    /// Questions asked per scope and retriever (spread over the collections).
    pub queries: usize,
    /// Times each question is asked per scope and retriever.
    pub rounds: usize,
    /// Keep the built data in this folder instead of a temporary one; a folder holding a
    /// finished build of the same size is measured again without building.
    pub keep: Option<PathBuf>,
    /// Fail when dense recall@10 of any scope falls below this.
    pub min_recall: Option<f64>,
}

/// What the serving process needs to know: where the data is, which questions to ask.
pub struct ServeOptions {
    pub work: PathBuf,
    pub corpora: PathBuf,
    pub queries: usize,
    pub rounds: usize,
}

pub async fn scale(
    mut config: Config,
    config_file: Option<PathBuf>,
    options: ScaleOptions,
) -> anyhow::Result<()> {
    anyhow::ensure!(options.kbs >= 1, "--kbs must be at least 1");
    let temporary;
    let work = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    config.data_dir = work.join("data");
    config.ingest_root = work.join("ingest");
    let built_marker = work.join(BUILT_MARKER);
    if built_marker.is_file() {
        let built = std::fs::read_to_string(&built_marker)?;
        let wanted = format!("{} {}", options.chunks, options.kbs);
        anyhow::ensure!(
            built.trim() == wanted,
            "{} holds an index of {built:?} (chunks, knowledge bases), not {wanted:?}",
            work.display()
        );
        println!(
            "scale: reusing the index built in {} ({} chunks over {} knowledge bases)",
            work.display(),
            options.chunks,
            options.kbs
        );
    } else {
        anyhow::ensure!(
            std::fs::read_dir(&work)?.next().is_none(),
            "{} is neither empty nor a finished --scale build",
            work.display()
        );
        build_index(&config, &options).await?;
        std::fs::write(&built_marker, format!("{} {}", options.chunks, options.kbs))?;
    }
    // 3. Recall of the graph search against exact search, for real questions.
    let questions = questions(&options.corpora, options.queries)?;
    let recall_config = config.clone();
    let recall_questions = questions.clone();
    let recalls =
        tokio::task::spawn_blocking(move || recall(&recall_config, &recall_questions, options.kbs))
            .await??;
    println!(
        "\ndense recall@10 of the graph search against exact search ({} questions):",
        questions.len()
    );
    println!(
        "{:<8} {:>8} {:>8} {:>14}",
        "scope", "mean", "min", "mean with ties"
    );
    for r in &recalls {
        println!(
            "{:<8} {:>8.4} {:>8.4} {:>14.4}",
            r.scope, r.mean, r.min, r.mean_with_ties
        );
    }
    println!(
        "data directory: {:.1} MiB on disk",
        directory_bytes(&config.data_dir)? as f64 / (1024.0 * 1024.0)
    );

    // 4. Search latency and memory in a fresh process serving that data directory.
    let mut serve = std::process::Command::new(std::env::current_exe()?);
    serve.arg("bench");
    if let Some(file) = &config_file {
        serve.arg("--config").arg(file);
    }
    serve
        .arg("--serve-scale")
        .arg(&work)
        .arg("--corpora")
        .arg(&options.corpora)
        .arg("--queries")
        .arg(options.queries.to_string())
        .arg("--rounds")
        .arg(options.rounds.to_string());
    let status = tokio::task::spawn_blocking(move || serve.status()).await??;
    anyhow::ensure!(status.success(), "the serving process failed: {status}");

    if let Some(min) = options.min_recall {
        for r in &recalls {
            anyhow::ensure!(
                r.mean >= min,
                "dense recall@10 scoped to {} is {:.4}, below --min-recall {min}",
                r.scope,
                r.mean
            );
        }
    }
    Ok(())
}

/// Steps 1 and 2 of [`scale`]: the real sample through the normal ingest path, then the derived
/// chunks and the graph.
async fn build_index(config: &Config, options: &ScaleOptions) -> anyhow::Result<()> {
    let kbs = kb_names(options.kbs)?;
    let sizes = kb_sizes(options.kbs, options.chunks);

    // 1. The real sample, through the normal ingest path.
    let sample_folder = config.ingest_root.join(SAMPLE_KB);
    let mut written = 0;
    let per_collection = options.sample_documents.div_ceil(COLLECTIONS.len());
    for name in COLLECTIONS {
        let dir = options.corpora.join(name);
        if !dir.join("corpus.jsonl").is_file() {
            println!(
                "note: {} is absent; the sample has no {name} documents",
                dir.display()
            );
            continue;
        }
        let mut corpus = read_corpus(&dir)?;
        corpus.truncate(per_collection);
        let folder = sample_folder.join(name);
        crate::eval::write_corpus(&corpus, &folder)?;
        written += corpus.len();
    }
    anyhow::ensure!(
        written > 0,
        "no collection of {} found under {} (give --corpora)",
        COLLECTIONS.join(", "),
        options.corpora.display()
    );
    for kb in &kbs {
        std::fs::create_dir_all(config.ingest_root.join(kb.kb().as_str()))?;
    }
    println!(
        "scale: {} chunks over {} knowledge bases (largest {}, median {}, smallest {}); sample: \
         {written} real documents of {} ingested into `{SAMPLE_KB}`, the other chunks are copies \
         of its chunks with derived vectors (the chunk's own plus up to {MIX} of each of two others' \
         plus Gaussian noise {NOISE} per entry, renormalised); query embedding is real",
        options.chunks,
        options.kbs,
        sizes.first().copied().unwrap_or(0),
        sizes[sizes.len() / 2],
        sizes.last().copied().unwrap_or(0),
        COLLECTIONS.join(", "),
    );
    let (app, report, seconds) = crate::eval::open_and_ingest(config.clone()).await?;
    println!(
        "sample ingest: {} documents, {} chunks in {seconds:.1} s = {:.1} chunks/s",
        report.indexed,
        report.chunks_written,
        report.chunks_written as f64 / seconds
    );
    tokio::task::spawn_blocking(move || drop(app)).await?;

    // 2. The derived chunks, written to both indexes directly, then the graph.
    let build_config = config.clone();
    let build = tokio::task::spawn_blocking(move || build(&build_config, &kbs, &sizes)).await??;
    println!(
        "build: {} derived chunks in {:.1} s ({:.0} chunks/s, vectors derived, not embedded); \
         graph and optimisation {:.1} s; {} segments, {} of {} points in a graph",
        build.derived,
        build.write_seconds,
        build.derived as f64 / build.write_seconds.max(1e-9),
        build.optimize_seconds,
        build.info.segments,
        build.info.indexed_points,
        build.info.points,
    );
    let (before, after, seconds) = build.wal_emptied;
    println!(
        "vector store WAL emptied (flush, close, replace, reopen) in {:.0} ms: WAL {:.1} -> {:.1} \
         MiB beside {:.1} MiB of segments",
        seconds * 1e3,
        mib(before.wal_bytes),
        mib(after.wal_bytes),
        mib(after.segment_bytes),
    );

    Ok(())
}

/// The serving half of [`scale`], in its own process.
pub async fn serve_scale(mut config: Config, options: ServeOptions) -> anyhow::Result<()> {
    config.data_dir = options.work.join("data");
    config.ingest_root = options.work.join("ingest");
    let started = Instant::now();
    let app = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    println!(
        "\nserving process: open {:.1} s, RSS after open {}",
        started.elapsed().as_secs_f64(),
        rss()
    );
    let mut kbs: Vec<String> = app
        .ingestor()?
        .knowledge_bases()?
        .into_iter()
        .map(|kb| kb.as_str().to_string())
        .collect();
    kbs.sort();
    let questions = questions(&options.corpora, options.queries)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lumbung_server::serve(app, listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = KnowledgeServiceClient::new(channel);

    println!(
        "Search (top_k 10) over gRPC, {} questions x {} rounds per row, ms:",
        questions.len(),
        options.rounds
    );
    println!(
        "{:<8} {:<8} {:>8} {:>8} {:>8} {:>8}",
        "call", "scope", "p50", "p90", "p99", "max"
    );
    let retrievers = [
        v1::Retriever::Hybrid,
        v1::Retriever::Bm25,
        v1::Retriever::Dense,
    ];
    let scopes = ["one", "ten", "all"];
    let mut latencies = vec![vec![Vec::new(); scopes.len()]; retrievers.len()];
    for (s, scope) in scopes.into_iter().enumerate() {
        for round in 0..=options.rounds {
            for (n, question) in questions.iter().enumerate() {
                // Each question is scoped to other knowledge bases, large and small; "all" is
                // an empty list, which the service reads as every knowledge base.
                let knowledge_bases: Vec<String> =
                    match scope_of(scope, (n * 7919 + round * 104_729) % kbs.len(), kbs.len()) {
                        Some(picked) => picked.into_iter().map(|i| kbs[i].clone()).collect(),
                        None => Vec::new(),
                    };
                // The retrievers take turns at going first, so that none alone pays for
                // reading the scope's pages from disk the first time.
                for turn in 0..retrievers.len() {
                    let r = (n + round + turn) % retrievers.len();
                    let request = v1::SearchRequest {
                        query: question.clone(),
                        knowledge_bases: knowledge_bases.clone(),
                        top_k: 10,
                        retriever: retrievers[r].into(),
                    };
                    let started = Instant::now();
                    client.search(request).await?;
                    // Round 0 warms connections and caches up.
                    if round > 0 {
                        latencies[r][s].push(started.elapsed());
                    }
                }
            }
        }
    }
    for (retriever, by_scope) in retrievers.iter().zip(&mut latencies) {
        let name = retriever
            .as_str_name()
            .trim_start_matches("RETRIEVER_")
            .to_lowercase();
        for (scope, latencies) in scopes.iter().zip(by_scope) {
            latencies.sort();
            println!(
                "{name:<8} {scope:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                ms(percentile(latencies, 0.5)),
                ms(percentile(latencies, 0.9)),
                ms(percentile(latencies, 0.99)),
                ms(latencies.last().copied().unwrap_or_default()),
            );
        }
    }
    println!("RSS after the searches: {}", rss());
    let _ = stop.send(());
    server.await??;
    Ok(())
}

struct Built {
    derived: usize,
    write_seconds: f64,
    optimize_seconds: f64,
    info: lumbung_index::VectorIndexInfo,
    /// The vector store's disk before and after its write-ahead log was emptied, and how
    /// long the emptying (flush, close, replace, reopen) took: what searches wait for when
    /// the service empties it.
    wal_emptied: (
        lumbung_index::VectorDiskUsage,
        lumbung_index::VectorDiskUsage,
        f64,
    ),
}

/// Writes `sizes[k]` chunks into knowledge base `kbs[k]` (the sample's own chunks count for
/// it), copying the sample's chunks with derived vectors, then optimises the vector store.
fn build(config: &Config, kbs: &[KbGeneration], sizes: &[usize]) -> anyhow::Result<Built> {
    let data = &config.data_dir;
    let sample_kb = KbGeneration::first(KbName::new(SAMPLE_KB)?);
    let records = Catalog::open(&data.join("catalog.redb"))?.list(&sample_kb)?;
    let ids: Vec<ChunkId> = records.iter().flat_map(DocumentRecord::chunk_ids).collect();
    let lexical = TantivyLexicalIndex::open(&data.join("lexical"))?;
    let vectors = EdgeVectorStore::open(
        &lumbung_server::embedded_vectors(data, &config.default_model()),
        config.embedding.dimension,
        &config.vector_index,
    )?;
    let chunks = lexical.get_chunks(&ids)?;
    let mut by_id: std::collections::HashMap<ChunkId, Vec<f32>> =
        vectors.get_vectors(&ids)?.into_iter().collect();
    let sample: Vec<(Chunk, Vec<f32>)> = chunks
        .into_iter()
        .filter_map(|chunk| {
            let vector = by_id.remove(&chunk.id)?;
            Some((chunk, vector))
        })
        .collect();
    anyhow::ensure!(!sample.is_empty(), "the sample produced no chunks");

    let started = Instant::now();
    let mut random = XorShift(0x5EED_1234_ABCD_0001);
    let mut derived = 0usize;
    let mut staged = 0usize;
    let total: usize = sizes.iter().sum();
    for (kb, &size) in kbs.iter().zip(sizes) {
        let own = if kb == &sample_kb { sample.len() } else { 0 };
        let mut remaining = size.saturating_sub(own);
        let mut document = 0usize;
        while remaining > 0 {
            let count = remaining.min(CHUNKS_PER_DOCUMENT);
            remaining -= count;
            document += 1;
            let path = DocumentPath::new(format!("derived/doc-{document:06}.md"))?;
            let hash = ContentHash::of_bytes(format!("{kb}/{path}").as_bytes());
            let mut chunks = Vec::with_capacity(count);
            let mut points = Vec::with_capacity(count);
            for ordinal in 0..count as u32 {
                let (source, vector) = &sample[random.below(sample.len())];
                let (_, second) = &sample[random.below(sample.len())];
                let (_, third) = &sample[random.below(sample.len())];
                let mut chunk = source.clone();
                chunk.id = ChunkId::derive(kb, &path, &hash, ordinal);
                chunk.ordinal = ordinal;
                chunk.citation.kb = kb.kb().clone();
                chunk.citation.document_path = path.clone();
                points.push(VectorPoint {
                    id: chunk.id,
                    language: chunk.language,
                    vector: random.derived(vector, [second, third]),
                });
                chunks.push(chunk);
            }
            lexical.replace_document(kb, &path, &chunks)?;
            vectors.upsert_document(kb, &path, &hash, &points)?;
            derived += count;
            staged += count;
            if staged >= COMMIT_EVERY {
                lexical.commit()?;
                vectors.flush()?;
                staged = 0;
                println!(
                    "  {derived} of {} derived chunks written ({:.0} s)",
                    total.saturating_sub(sample.len()),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    lexical.commit()?;
    vectors.flush()?;
    let write_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    vectors.optimize()?;
    vectors.flush()?;
    let optimize_seconds = started.elapsed().as_secs_f64();
    let before = vectors.disk_usage();
    let started = Instant::now();
    vectors.empty_wal()?;
    let wal_emptied = (
        before,
        vectors.disk_usage(),
        started.elapsed().as_secs_f64(),
    );
    Ok(Built {
        derived,
        write_seconds,
        optimize_seconds,
        info: vectors.index_info()?,
        wal_emptied,
    })
}

/// Recall@10 of the graph search against exact search for one scope.
struct Recall {
    scope: &'static str,
    mean: f64,
    min: f64,
    /// Counting a result within [`TIE_EPSILON`] of the exact tenth as a hit.
    mean_with_ties: f64,
}

/// The similarity difference under which two points are equally near (ann-benchmarks' 1e-3).
const TIE_EPSILON: f32 = 1e-3;

/// Recall@10 of the graph search against exact search, per scope.
fn recall(config: &Config, questions: &[String], kb_count: usize) -> anyhow::Result<Vec<Recall>> {
    let embedder = Embedder::load(&config.embedding, 0)?;
    let vectors = EdgeVectorStore::open(
        &lumbung_server::embedded_vectors(&config.data_dir, &config.default_model()),
        config.embedding.dimension,
        &lumbung_core::VectorIndexConfig {
            // Measuring must not start an optimisation.
            optimize_after_changes: 0,
            ..config.vector_index.clone()
        },
    )?;
    // A reused build made with other graph settings gets its graphs rebuilt first.
    let started = Instant::now();
    if vectors.optimize()? {
        println!(
            "graphs rebuilt for the current [vector_index] settings in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let kbs = kb_names(kb_count)?;
    let mut rows = Vec::new();
    for scope in ["one", "ten", "all"] {
        let (mut strict, mut with_ties) = (Vec::new(), Vec::new());
        for (n, question) in questions.iter().enumerate() {
            let scoped: Vec<KbGeneration> = match scope_of(scope, (n * 7919) % kbs.len(), kbs.len())
            {
                Some(picked) => picked.into_iter().map(|i| kbs[i].clone()).collect(),
                None => kbs.clone(),
            };
            let vector = embedder.embed_query(question)?;
            let exact = vectors.search_exact(&vector, &scoped, 10)?;
            if exact.is_empty() {
                continue;
            }
            let found = vectors.search(&vector, &scoped, 10)?;
            let found_ids: HashSet<ChunkId> = found.iter().map(|(id, _)| *id).collect();
            let hits = exact
                .iter()
                .filter(|(id, _)| found_ids.contains(id))
                .count();
            strict.push(hits as f64 / exact.len() as f64);
            // As ann-benchmarks counts: a result as close as the exact tenth (within
            // TIE_EPSILON) is a hit; which of several equally near points comes back is a tie.
            let tenth = exact.last().map_or(f32::MIN, |(_, score)| *score);
            let near_enough = found
                .iter()
                .filter(|(_, score)| *score >= tenth - TIE_EPSILON)
                .count()
                .min(exact.len());
            with_ties.push(near_enough as f64 / exact.len() as f64);
        }
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
        let min = |values: &[f64]| values.iter().copied().fold(1.0, f64::min);
        rows.push(Recall {
            scope,
            mean: mean(&strict),
            min: min(&strict),
            mean_with_ties: mean(&with_ties),
        });
    }
    Ok(rows)
}

/// The knowledge bases (indexes into a list of `count`) a question is scoped to, starting at
/// `first`: that one, ten spread over the list, or `None` for all. Recall and latency pick them
/// the same way.
fn scope_of(scope: &str, first: usize, count: usize) -> Option<Vec<usize>> {
    match scope {
        "one" => Some(vec![first]),
        "ten" => {
            let mut picked: Vec<usize> = (0..10.min(count))
                .map(|i| (first + i * 61) % count)
                .collect();
            // Steps of 61 come back to a knowledge base already picked when the list's
            // length divides one of 61, 122, ... 549.
            let mut seen = HashSet::new();
            picked.retain(|i| seen.insert(*i));
            Some(picked)
        }
        _ => None,
    }
}

/// `sample` first, then `kb-0001`, `kb-0002`, ..., each at its first generation (the build
/// writes them in a new data directory).
fn kb_names(count: usize) -> anyhow::Result<Vec<KbGeneration>> {
    let mut names = vec![KbGeneration::first(KbName::new(SAMPLE_KB)?)];
    for n in 1..count {
        names.push(KbGeneration::first(KbName::new(format!("kb-{n:04}"))?));
    }
    Ok(names)
}

/// Chunks per knowledge base, largest first: a Zipf law (the k-th largest holds about 1/k of
/// the largest), at least one chunk each, summing to `chunks`.
fn kb_sizes(kbs: usize, chunks: usize) -> Vec<usize> {
    let weights: Vec<f64> = (1..=kbs).map(|k| 1.0 / k as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut sizes: Vec<usize> = weights
        .iter()
        .map(|w| ((w / total) * chunks as f64).floor().max(1.0) as usize)
        .collect();
    let assigned: usize = sizes.iter().sum();
    sizes[0] += chunks.saturating_sub(assigned);
    sizes
}

/// Up to `count` questions spread over the collections, in file order.
fn questions(corpora: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let per_collection = count.div_ceil(COLLECTIONS.len());
    let mut questions = Vec::new();
    for name in COLLECTIONS {
        let dir = corpora.join(name);
        if !dir.join("queries.jsonl").is_file() {
            continue;
        }
        let collection = Collection::load(&dir)?;
        questions.extend(
            collection
                .queries
                .into_iter()
                .take(per_collection)
                .map(|query| query.text),
        );
    }
    questions.truncate(count);
    anyhow::ensure!(
        !questions.is_empty(),
        "no questions under {}",
        corpora.display()
    );
    Ok(questions)
}

fn directory_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += directory_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Resident memory now: all of it, then the part that is the process's own (anonymous) and the
/// part that is mapped files (index and vector files the kernel may drop and read again).
fn rss() -> String {
    let mib = |label| status_kib(label).map(|kib| kib as f64 / 1024.0);
    match (mib("VmRSS:"), mib("RssAnon:"), mib("RssFile:")) {
        (Some(total), Some(anon), Some(file)) => {
            format!("{total:.0} MiB ({anon:.0} MiB anonymous, {file:.0} MiB mapped files)")
        }
        _ => "-".to_string(),
    }
}

/// A small deterministic generator: the same build for the same arguments.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// `source` with random shares (each up to [`MIX`]) of two others and noise of standard
    /// deviation [`NOISE`] per entry, at unit length: a point between real passages, nearest
    /// `source`.
    fn derived(&mut self, source: &[f32], others: [&Vec<f32>; 2]) -> Vec<f32> {
        let mut share = || MIX * (self.next() >> 11) as f32 / (1u64 << 53) as f32;
        let (a, b) = (share(), share());
        let mut out: Vec<f32> = source
            .iter()
            .zip(others[0].iter().zip(others[1]))
            .map(|(x, (y, z))| x + a * y + b * z)
            .collect();
        for x in &mut out {
            *x += NOISE * self.normal();
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        out.iter_mut().for_each(|x| *x /= norm);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_uneven_and_add_up() {
        let sizes = kb_sizes(600, 1_000_000);
        assert_eq!(sizes.iter().sum::<usize>(), 1_000_000);
        assert!(sizes.iter().all(|&s| s >= 1));
        assert!(sizes[0] > 50 * sizes[599], "{} vs {}", sizes[0], sizes[599]);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn scopes_pick_one_ten_distinct_or_all() {
        assert_eq!(scope_of("one", 7, 600), Some(vec![7]));
        let ten = scope_of("ten", 590, 600).unwrap();
        assert_eq!(ten.len(), 10);
        assert_eq!(&ten[..2], &[590, 51]);
        // 122 = 2 x 61: the third step would come back to the first.
        let short = scope_of("ten", 0, 122).unwrap();
        assert_eq!(short, vec![0, 61]);
        assert_eq!(scope_of("all", 3, 600), None);
    }

    #[test]
    fn derived_vectors_stay_close_to_their_source() {
        let mut random = XorShift(7);
        let source: Vec<f32> = (0..384).map(|i| if i == 3 { 1.0 } else { 0.0 }).collect();
        let other: Vec<f32> = (0..384).map(|i| if i == 5 { 1.0 } else { 0.0 }).collect();
        let derived = random.derived(&source, [&other, &other]);
        let norm: f32 = derived.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert!(derived[3] > derived[5] && derived[3] > 0.7, "{derived:?}");
    }
}
