//! `lumbung bench`: copy the watched root into a temporary folder, ingest it into a fresh data
//! directory, then time `Search` through a real gRPC server on 127.0.0.1:0 for each retriever
//! (in one process, so that the BM25-only and dense-only runs are the baselines of the hybrid
//! one) and `Ask` (the hybrid search plus sentence selection), the time from saving a file to
//! finding it, and optionally a burst of many files ingested by the watcher while Search is
//! timed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lumbung_core::{ChunkId, Config};
use lumbung_embed::EmbedKind;
use lumbung_ingest::DocumentRecord;
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_server::App;
use tonic::transport::Channel;

/// Questions in the users' three languages, about the sample knowledge bases.
pub(crate) const QUERIES: [&str; 10] = [
    "How do I reset my password?",
    "GlobalProtect ERR-VPN-809 certificate expired",
    "Bagaimana cara mengatasi ERR-VPN-809?",
    "laptop baru harus dikembalikan dalam berapa hari",
    "受限空间作业前氧气浓度应在什么范围",
    "焊接作业需要佩戴哪些防护用品",
    "What is the forklift speed limit inside the workshop?",
    "What was the scrap rate of PPR-9087 on line L1?",
    "How is OEE calculated?",
    "printer driver installation on Windows",
];

/// The `n`th of the benchmark clients' searches: [`QUERIES`] in turn, hybrid, top 10, over
/// every knowledge base.
pub(crate) fn hybrid_search(n: usize) -> v1::SearchRequest {
    v1::SearchRequest {
        query: QUERIES[n % QUERIES.len()].to_string(),
        knowledge_bases: Vec::new(),
        top_k: 10,
        retriever: v1::Retriever::Hybrid.into(),
    }
}

/// What to measure besides ingest and search latency.
pub struct BenchOptions {
    /// Times each query is sent per retriever.
    pub rounds: usize,
    /// Files saved one after another to time change-to-searchable.
    pub edits: usize,
    /// Files dropped at once into a new knowledge base; 0 skips the burst.
    pub burst: usize,
    /// Concurrent clients of the load phase at its peak; 0 skips it.
    pub load: usize,
    /// How long each load phase runs.
    pub load_seconds: u64,
    /// Rebuild each sample knowledge base while Search and Ask are timed.
    pub reindex: bool,
    /// Then move each to another embedding model ([`CHANGED_MODEL`]) the same way.
    pub model_change: bool,
}

/// The model `--model-change` moves the samples to: `[embedding]`'s own int8 file, its vectors
/// cut to 256 dimensions, so another file and another vector dimension with no other model to
/// download.
const CHANGED_MODEL: &str = "e5-small-int8-256";

pub async fn bench(mut config: Config, options: BenchOptions) -> anyhow::Result<()> {
    if options.model_change {
        let changed = lumbung_core::EmbeddingConfig {
            name: String::new(),
            onnx_file: "model-int8.onnx".to_string(),
            query_onnx_file: String::new(),
            dimension: 256,
            truncate_dimension: true,
            ..config.embedding.clone()
        };
        config
            .embedding_models
            .insert(CHANGED_MODEL.to_string(), changed);
    }
    let samples = ingest_samples(config).await?;
    println!(
        "ingest root: {} (copied to {})",
        samples.source.display(),
        samples.root.display()
    );
    println!(
        "open (model load, empty indexes): {:>8.1} ms",
        ms(samples.open)
    );
    println!("{}", samples.ingest);
    let IngestedSamples {
        app,
        root,
        settle_ms,
        _dir,
        ..
    } = samples;
    let data_dir = app.config.data_dir.clone();
    let retire_after = Duration::from_millis(app.config.ingest.retire_after_ms);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = app.watch()?;
    let server = tokio::spawn(lumbung_server::serve(app, listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = KnowledgeServiceClient::new(channel.clone());
    search_latency(&mut client, options.rounds).await?;
    if options.load > 0 {
        load(
            addr,
            options.load,
            Duration::from_secs(options.load_seconds),
        )
        .await?;
    }
    if options.reindex {
        reindex(channel.clone(), &data_dir, retire_after).await?;
    }
    if options.model_change {
        model_change(channel.clone(), &root, &data_dir, retire_after).await?;
    }
    change_to_searchable(&mut client, &root, options.edits, settle_ms).await?;
    if options.burst > 0 {
        burst(channel, &root, options.burst).await?;
    }
    tokio::task::spawn_blocking(move || drop(watcher)).await?;
    let _ = stop.send(());
    server.await??;
    Ok(())
}

async fn search_latency(
    client: &mut KnowledgeServiceClient<Channel>,
    rounds: usize,
) -> anyhow::Result<()> {
    println!(
        "\nSearch (top_k 10) and Ask (3 sentences) over gRPC, {} queries x {rounds} rounds \
         each (ms):",
        QUERIES.len()
    );
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>8}",
        "call", "p50", "p90", "p99", "max"
    );
    for retriever in [
        v1::Retriever::Bm25,
        v1::Retriever::Dense,
        v1::Retriever::Hybrid,
    ] {
        let search = |query: &str| v1::SearchRequest {
            query: query.to_string(),
            knowledge_bases: Vec::new(),
            top_k: 10,
            retriever: retriever.into(),
        };
        let name = retriever
            .as_str_name()
            .trim_start_matches("RETRIEVER_")
            .to_lowercase();
        let latencies = time_rounds(rounds, async |query| {
            client.search(search(query)).await?;
            Ok(())
        })
        .await?;
        print_latencies(&name, latencies);
    }
    let latencies = time_rounds(rounds, async |query| {
        let ask = v1::AskRequest {
            question: query.to_string(),
            knowledge_bases: Vec::new(),
            max_sentences: 3,
        };
        client.ask(ask).await?;
        Ok(())
    })
    .await?;
    print_latencies("ask", latencies);
    Ok(())
}

/// Calls `call` with each of [`QUERIES`] once unmeasured (connections and caches warm up), then
/// `rounds` times timed; the latencies of the timed calls.
async fn time_rounds(
    rounds: usize,
    mut call: impl AsyncFnMut(&'static str) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(QUERIES.len() * rounds);
    for round in 0..=rounds {
        for query in QUERIES {
            let started = Instant::now();
            call(query).await?;
            if round > 0 {
                latencies.push(started.elapsed());
            }
        }
    }
    Ok(latencies)
}

fn print_latencies(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        name,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Rebuilds each sample knowledge base through the admin API twice: alone (the rebuild's own
/// time, and the data directory's size before, at its peak during the build and after the old
/// generation is deleted), then with a client running Search and Ask on it without pause (the
/// time then, and the client's latency and failures during the build against the same
/// client's before it, the baseline).
async fn reindex(channel: Channel, data_dir: &Path, retire_after: Duration) -> anyhow::Result<()> {
    let mut admin = AdminServiceClient::new(channel.clone());
    let kbs = admin
        .get_ingest_status(v1::GetIngestStatusRequest::default())
        .await?
        .into_inner()
        .knowledge_bases;
    println!(
        "\nreindex, one knowledge base at a time: alone, then with a client searching (hybrid) \
         and asking it without pause (seconds; data directory in MiB; client p50 ms before / \
         during the rebuild):"
    );
    println!(
        "{:<18} {:>5} {:>6} {:>7} {:>8} {:>8} {:>8} {:>9} {:>13} {:>13} {:>7} {:>6}",
        "knowledge base",
        "docs",
        "chunks",
        "alone",
        "before",
        "peak",
        "after",
        "w/ client",
        "search p50",
        "ask p50",
        "failed",
        "empty"
    );
    for kb in kbs {
        let name = kb.name.clone();
        let before = disk_bytes(data_dir);
        let alone = rebuild(&mut admin, &name, data_dir, None).await?;
        tokio::time::sleep(retire_after + Duration::from_millis(500)).await;
        let after = disk_bytes(data_dir);

        let mut client = KnowledgeServiceClient::new(channel.clone());
        let baseline = baseline(&mut client, &name).await;
        let loaded = rebuild(&mut admin, &name, data_dir, Some(&mut client)).await?;
        tokio::time::sleep(retire_after + Duration::from_millis(500)).await;
        println!(
            "{:<18} {:>5} {:>6} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>6.1} / {:<5.1} {:>6.1} / {:<5.1} {:>7} {:>6}",
            name,
            kb.documents_indexed,
            kb.chunks,
            alone.seconds,
            mib(before),
            mib(alone.peak_bytes),
            mib(after),
            loaded.seconds,
            p50(&baseline.search),
            p50(&loaded.calls.search),
            p50(&baseline.ask),
            p50(&loaded.calls.ask),
            loaded.calls.failed,
            loaded.calls.empty
        );
    }
    Ok(())
}

/// Moves each sample knowledge base to [`CHANGED_MODEL`] (its `kb.toml` in the watched copy
/// names it, then a rebuild) while a client searches and asks it without pause: the rebuild's
/// time, and the client's latency and failures during it against the same client's before it.
async fn model_change(
    channel: Channel,
    root: &Path,
    data_dir: &Path,
    retire_after: Duration,
) -> anyhow::Result<()> {
    let mut admin = AdminServiceClient::new(channel.clone());
    let kbs = admin
        .get_ingest_status(v1::GetIngestStatusRequest::default())
        .await?
        .into_inner()
        .knowledge_bases;
    println!(
        "\nmodel change to {CHANGED_MODEL} ([embedding]'s int8 file, vectors cut to 256 \
         dimensions), one knowledge base at a time, with a client searching and asking it \
         without pause (seconds; data directory in MiB; client p50 ms before / during):"
    );
    println!(
        "{:<18} {:>6} {:>22} {:>9} {:>8} {:>8} {:>13} {:>13} {:>7} {:>6}",
        "knowledge base",
        "chunks",
        "model now",
        "w/ client",
        "before",
        "after",
        "search p50",
        "ask p50",
        "failed",
        "empty"
    );
    for kb in kbs {
        let name = kb.name.clone();
        let before = disk_bytes(data_dir);
        let mut client = KnowledgeServiceClient::new(channel.clone());
        let baseline = baseline(&mut client, &name).await;
        let settings = root.join(&name).join("kb.toml");
        let mut toml = std::fs::read_to_string(&settings).unwrap_or_default();
        toml.push_str(&format!("\nembedding_model = \"{CHANGED_MODEL}\"\n"));
        std::fs::write(&settings, toml)?;
        let changed = rebuild(&mut admin, &name, data_dir, Some(&mut client)).await?;
        tokio::time::sleep(retire_after + Duration::from_millis(500)).await;
        let now = kb_status(&mut admin, &name).await?;
        println!(
            "{:<18} {:>6} {:>22} {:>9.1} {:>8.1} {:>8.1} {:>6.1} / {:<5.1} {:>6.1} / {:<5.1} {:>7} {:>6}",
            name,
            now.chunks,
            now.embedding_model,
            changed.seconds,
            mib(before),
            mib(disk_bytes(data_dir)),
            p50(&baseline.search),
            p50(&changed.calls.search),
            p50(&baseline.ask),
            p50(&changed.calls.ask),
            changed.calls.failed,
            changed.calls.empty
        );
    }
    Ok(())
}

/// Each of [`QUERIES`] searched and asked once on `kb`: the calls a rebuild's are compared
/// with.
async fn baseline(client: &mut KnowledgeServiceClient<Channel>, kb: &str) -> Calls {
    let mut calls = Calls::default();
    for query in QUERIES {
        calls.record(search_and_ask(client, kb, query).await);
    }
    calls
}

/// The status of one knowledge base, without its documents.
async fn kb_status(
    admin: &mut AdminServiceClient<Channel>,
    kb: &str,
) -> anyhow::Result<v1::KnowledgeBaseStatus> {
    admin
        .get_ingest_status(v1::GetIngestStatusRequest {
            knowledge_base: kb.to_string(),
            include_documents: false,
        })
        .await?
        .into_inner()
        .knowledge_bases
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no status for {kb}"))
}

/// The median, in milliseconds.
fn p50(values: &[Duration]) -> f64 {
    let mut values = values.to_vec();
    values.sort();
    ms(percentile(&values, 0.5))
}

/// What a client saw.
#[derive(Default)]
struct Calls {
    search: Vec<Duration>,
    ask: Vec<Duration>,
    failed: usize,
    /// Searches without a passage.
    empty: usize,
}

impl Calls {
    fn record(&mut self, outcome: anyhow::Result<((Duration, bool), (Duration, bool))>) {
        match outcome {
            Ok(((search, search_empty), (ask, _))) => {
                self.search.push(search);
                self.ask.push(ask);
                self.empty += usize::from(search_empty);
            }
            Err(_) => self.failed += 1,
        }
    }
}

struct Rebuilt {
    seconds: f64,
    peak_bytes: u64,
    calls: Calls,
}

/// One rebuild of `kb`, polled until it ends; with `client`, a Search and an Ask between two
/// polls.
async fn rebuild(
    admin: &mut AdminServiceClient<Channel>,
    kb: &str,
    data_dir: &Path,
    mut client: Option<&mut KnowledgeServiceClient<Channel>>,
) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let job = admin
        .reindex(v1::ReindexRequest {
            knowledge_base: kb.to_string(),
        })
        .await?
        .into_inner()
        .job
        .ok_or_else(|| anyhow::anyhow!("no job"))?;
    let mut peak_bytes = 0;
    let mut calls = Calls::default();
    let mut n = 0;
    let ended = loop {
        let status = kb_status(admin, kb).await?;
        peak_bytes = peak_bytes.max(disk_bytes(data_dir));
        if let Some(job) = status.job.filter(|j| j.id == job.id)
            && job.state() != v1::JobState::Running
        {
            break job;
        }
        match client.as_deref_mut() {
            Some(client) => {
                calls.record(search_and_ask(client, kb, QUERIES[n % QUERIES.len()]).await);
                n += 1;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    anyhow::ensure!(
        ended.state() == v1::JobState::Succeeded,
        "{kb}: the rebuild ended {:?}: {}",
        ended.state(),
        ended.error
    );
    Ok(Rebuilt {
        seconds: started.elapsed().as_secs_f64(),
        peak_bytes,
        calls,
    })
}

/// One hybrid Search and one Ask on `kb`: their latencies, and whether the search was empty.
async fn search_and_ask(
    client: &mut KnowledgeServiceClient<Channel>,
    kb: &str,
    query: &str,
) -> anyhow::Result<((Duration, bool), (Duration, bool))> {
    let started = Instant::now();
    let passages = client
        .search(v1::SearchRequest {
            query: query.to_string(),
            knowledge_bases: vec![kb.to_string()],
            top_k: 10,
            retriever: v1::Retriever::Hybrid.into(),
        })
        .await?
        .into_inner()
        .passages;
    let search = (started.elapsed(), passages.is_empty());
    let started = Instant::now();
    let answer = client
        .ask(v1::AskRequest {
            question: query.to_string(),
            knowledge_bases: vec![kb.to_string()],
            max_sentences: 3,
        })
        .await?
        .into_inner();
    Ok((search, (started.elapsed(), answer.sentences.is_empty())))
}

/// Saves a file with a word found nowhere else, then polls Search (BM25, every 5 ms) until a
/// passage holds it: what a content owner waits for, settle time included.
async fn change_to_searchable(
    client: &mut KnowledgeServiceClient<Channel>,
    root: &Path,
    edits: usize,
    settle_ms: u64,
) -> anyhow::Result<()> {
    if edits == 0 {
        return Ok(());
    }
    let kb = "it-helpdesk";
    let mut waits = Vec::with_capacity(edits);
    for edit in 0..edits {
        let marker = format!("benchmarker{edit}x{}", std::process::id());
        let text = format!(
            "# Badge printer

The badge printer in hall {edit} needs ribbon code {marker}.
"
        );
        let saved = Instant::now();
        std::fs::write(root.join(kb).join("badge-printer.md"), text)?;
        loop {
            let passages = client
                .search(v1::SearchRequest {
                    query: marker.clone(),
                    knowledge_bases: vec![kb.to_string()],
                    top_k: 1,
                    retriever: v1::Retriever::Bm25.into(),
                })
                .await?
                .into_inner()
                .passages;
            if passages.iter().any(|p| p.text.contains(&marker)) {
                break;
            }
            anyhow::ensure!(
                saved.elapsed() < Duration::from_secs(120),
                "edit {edit} not searchable after two minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        waits.push(saved.elapsed());
    }
    waits.sort();
    println!(
        "
change to searchable, one edited file, {edits} edits (ms, ingest.settle_ms = {settle_ms} \
         included): p50 {:.0}, min {:.0}, max {:.0}",
        ms(percentile(&waits, 0.5)),
        ms(waits[0]),
        ms(*waits.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

/// Drops `files` small documents at once into a new knowledge base and lets the watcher ingest
/// them while Search is timed on the other knowledge bases; reports throughput, search latency
/// meanwhile and the peak memory of the process.
async fn burst(channel: Channel, root: &Path, files: usize) -> anyhow::Result<()> {
    let kb = "bench-burst";
    let folder = root.join(kb);
    let staging = root.join(".bench-burst-staging");
    std::fs::create_dir_all(&staging)?;
    for i in 0..files {
        std::fs::write(
            staging.join(format!("note-{i:05}.md")),
            format!(
                "# Maintenance note {i}

Machine M-{i} on line {} needs grease type G-{} \
                 every {} operating hours; record it on card MN-{i:05}.
",
                i % 9,
                i % 5,
                100 + i % 400
            ),
        )?;
    }
    let hwm_before = peak_rss_kib();
    // One rename: the whole folder appears at once, as when an archive is unpacked elsewhere.
    let started = Instant::now();
    std::fs::rename(&staging, &folder)?;
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut search = KnowledgeServiceClient::new(channel);
    let mut latencies = Vec::new();
    let status = loop {
        let status = admin
            .get_ingest_status(v1::GetIngestStatusRequest {
                knowledge_base: kb.to_string(),
                include_documents: false,
            })
            .await;
        if let Ok(status) = status
            && let Some(status) = status.into_inner().knowledge_bases.into_iter().next()
            && (status.documents_indexed + status.documents_failed) as usize >= files
        {
            break status;
        }
        for query in QUERIES {
            let sent = Instant::now();
            search
                .search(v1::SearchRequest {
                    query: query.to_string(),
                    knowledge_bases: Vec::new(),
                    top_k: 10,
                    retriever: v1::Retriever::Hybrid.into(),
                })
                .await?;
            latencies.push(sent.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "burst not ingested within an hour"
        );
    };
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "
burst of {files} files into a new knowledge base, ingested by the watcher: {} indexed, \
         {} failed, {} chunks in {elapsed:.1} s = {:.1} files/s, {:.1} chunks/s",
        status.documents_indexed,
        status.documents_failed,
        status.chunks,
        f64::from(status.documents_indexed) / elapsed,
        status.chunks as f64 / elapsed,
    );
    println!(
        "hybrid Search meanwhile, {} calls (ms): p50 {:.1}, p99 {:.1}, max {:.1}",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    if let (Some(before), Some(after)) = (hwm_before, peak_rss_kib()) {
        println!(
            "peak resident memory: {:.0} MiB before the burst, {:.0} MiB after",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
    }
    Ok(())
}

/// Hybrid searches from 1, 2, 4, ... up to `peak` concurrent clients, each on its own
/// connection, sending one request after another (after a refusal, waiting the retry pushback
/// the server sends) for `phase` per client count: throughput,
/// latency of the admitted requests, refusals and errors by code, and resident memory after
/// each phase. The one-client phase is the unloaded baseline of the others.
async fn load(addr: std::net::SocketAddr, peak: usize, phase: Duration) -> anyhow::Result<()> {
    println!(
        "\nload: hybrid Search (top_k 10), each client on its own connection, {} s per phase",
        phase.as_secs()
    );
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>9}  {:<40} {:>8}",
        "clients", "admitted", "req/s", "p50 ms", "p99 ms", "refused and errors by code", "RSS MiB"
    );
    let mut clients = 1;
    loop {
        let deadline = Instant::now() + phase;
        let mut tasks = Vec::with_capacity(clients);
        for c in 0..clients {
            let channel = Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            tasks.push(tokio::spawn(async move {
                let mut client = KnowledgeServiceClient::new(channel);
                let mut admitted = Vec::new();
                let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
                let mut i = c;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = client.search(hybrid_search(i)).await;
                    match outcome {
                        Ok(_) => admitted.push(sent.elapsed()),
                        Err(status) => {
                            *codes.entry(format!("{:?}", status.code())).or_default() += 1;
                            // A well-behaved client waits as long as the server asks.
                            let pushback = status
                                .metadata()
                                .get("grpc-retry-pushback-ms")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse().ok());
                            if let Some(wait) = pushback {
                                tokio::time::sleep(Duration::from_millis(wait)).await;
                            }
                        }
                    }
                    i += 1;
                }
                (admitted, codes)
            }));
        }
        let mut admitted = Vec::new();
        let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
        for task in tasks {
            let (mut latencies, counts) = task.await?;
            admitted.append(&mut latencies);
            for (code, count) in counts {
                *codes.entry(code).or_default() += count;
            }
        }
        admitted.sort();
        let refused = if codes.is_empty() {
            "none".to_string()
        } else {
            codes
                .iter()
                .map(|(code, count)| format!("{code} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{:>7} {:>9} {:>9.1} {:>9.1} {:>9.1}  {:<40} {:>8}",
            clients,
            admitted.len(),
            admitted.len() as f64 / phase.as_secs_f64(),
            ms(percentile(&admitted, 0.5)),
            ms(percentile(&admitted, 0.99)),
            refused,
            resident_kib().map_or("-".to_string(), |kib| format!("{:.0}", kib as f64 / 1024.0)),
        );
        if clients >= peak {
            return Ok(());
        }
        clients = (clients * 2).min(peak);
    }
}

/// The process's resident set size now (VmRSS), on Linux.
pub(crate) fn resident_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// The process's peak resident set size (VmHWM), on Linux.
fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// A memory figure of this process, in KiB, by its `/proc/self/status` label (`"RssAnon:"`).
pub fn status_kib(label: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(label))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The samples copied into a temporary folder and ingested into empty indexes by a fresh
/// service.
pub(crate) struct IngestedSamples {
    pub app: Arc<App>,
    /// The copy the service watches, and the ingest root it was copied from.
    pub root: PathBuf,
    source: PathBuf,
    settle_ms: u64,
    /// Model load and opening the empty indexes.
    open: Duration,
    ingest: IngestRun,
    _dir: tempfile::TempDir,
}

/// One ingest of the samples.
struct IngestRun {
    documents: usize,
    chunks: u64,
    failed: usize,
    embedding: Embedding,
}

impl IngestRun {
    fn chunks_per_second(&self) -> f64 {
        self.chunks as f64 / self.embedding.seconds
    }
}

impl std::fmt::Display for IngestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.embedding.seconds;
        write!(
            f,
            "ingest: {} documents, {} chunks, {} failed in {:.2} s = {:.2} documents/s, {:.1} \
             chunks/s, {:.0} tokens/s embedded (chunks and their sentences, {} tokens)",
            self.documents,
            self.chunks,
            self.failed,
            seconds,
            self.documents as f64 / seconds,
            self.chunks_per_second(),
            self.embedding.tokens_per_second(),
            self.embedding.tokens
        )
    }
}

/// The passage embedding done over a stretch of work: tokens read, wall time, and the time the
/// passage session spent running the model.
struct Embedding {
    tokens: u64,
    seconds: f64,
    model_seconds: f64,
}

impl Embedding {
    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }

    fn tokens_per_model_second(&self) -> f64 {
        self.tokens as f64 / self.model_seconds
    }

    /// The share of the wall time the model ran.
    fn model_busy(&self) -> f64 {
        self.model_seconds / self.seconds
    }
}

/// Started before a stretch of work, stopped after it: the [`Embedding`] done in between, by
/// the embedder's token count and the metrics' model time.
struct EmbeddingMeter {
    started: Instant,
    tokens: u64,
    model_seconds: f64,
}

impl EmbeddingMeter {
    fn start(app: &App) -> anyhow::Result<EmbeddingMeter> {
        Ok(EmbeddingMeter {
            tokens: app
                .ingestor()?
                .embedder()?
                .tokens_embedded(EmbedKind::Passage),
            model_seconds: app.metrics.embedding_seconds(EmbedKind::Passage),
            started: Instant::now(),
        })
    }

    fn stop(self, app: &App) -> anyhow::Result<Embedding> {
        Ok(Embedding {
            seconds: self.started.elapsed().as_secs_f64(),
            tokens: app
                .ingestor()?
                .embedder()?
                .tokens_embedded(EmbedKind::Passage)
                - self.tokens,
            model_seconds: app.metrics.embedding_seconds(EmbedKind::Passage) - self.model_seconds,
        })
    }
}

pub(crate) async fn ingest_samples(mut config: Config) -> anyhow::Result<IngestedSamples> {
    let dir = tempfile::tempdir()?;
    config.data_dir = dir.path().join("data");
    let root = dir.path().join("ingest");
    copy_dir(&config.ingest_root, &root)?;
    let source = std::mem::replace(&mut config.ingest_root, root.clone());
    let settle_ms = config.ingest.settle_ms;

    let started = Instant::now();
    let app = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    let open = started.elapsed();

    let meter = EmbeddingMeter::start(&app)?;
    let report = app.sync_all().await?;
    let ingest = IngestRun {
        documents: report.indexed,
        chunks: report.chunks_written,
        failed: report.failed,
        embedding: meter.stop(&app)?,
    };
    Ok(IngestedSamples {
        app,
        root,
        source,
        settle_ms,
        open,
        ingest,
        _dir: dir,
    })
}

/// `lumbung bench --ingest-share N`: ingest's speed as a share of the embedding ceiling of the
/// same work. Each of `rounds` rounds ingests the samples into fresh indexes, then embeds the
/// same texts alone ([`embedding_alone`]). The two alternate because this machine's speed
/// drifts by up to a fifth from one minute to the next; the medians are compared. Where the
/// rest goes is split by the passage session's model time: the share of ingest's time the
/// model ran at all, and the tokens it read per second of model time in either case.
pub async fn ingest_share(config: Config, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rounds >= 1, "--ingest-share must be at least 1");
    println!(
        "{:<6} {:>9} {:>13} {:>12} {:>6} {:>11} {:>16} {:>15}",
        "round",
        "chunks/s",
        "ingest tok/s",
        "alone tok/s",
        "share",
        "model busy",
        "ingest model t/s",
        "alone model t/s"
    );
    let mut rows = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let samples = ingest_samples(config.clone()).await?;
        anyhow::ensure!(
            samples.ingest.failed == 0 && samples.ingest.embedding.tokens > 0,
            "the samples did not ingest cleanly: {}",
            samples.ingest
        );
        let app = Arc::clone(&samples.app);
        let alone = tokio::task::spawn_blocking(move || embedding_alone(&app)).await??;
        let ingest = &samples.ingest.embedding;
        let row = ShareRow {
            chunks_per_second: samples.ingest.chunks_per_second(),
            ingest_tokens_per_second: ingest.tokens_per_second(),
            alone_tokens_per_second: alone.tokens_per_second(),
            model_busy: ingest.model_busy(),
            ingest_tokens_per_model_second: ingest.tokens_per_model_second(),
            alone_tokens_per_model_second: alone.tokens_per_model_second(),
        };
        row.print(&round.to_string());
        rows.push(row);
    }
    let column = |value: fn(&ShareRow) -> f64| median(rows.iter().map(value).collect());
    ShareRow {
        chunks_per_second: column(|row| row.chunks_per_second),
        ingest_tokens_per_second: column(|row| row.ingest_tokens_per_second),
        alone_tokens_per_second: column(|row| row.alone_tokens_per_second),
        model_busy: column(|row| row.model_busy),
        ingest_tokens_per_model_second: column(|row| row.ingest_tokens_per_model_second),
        alone_tokens_per_model_second: column(|row| row.alone_tokens_per_model_second),
    }
    .print("median");
    Ok(())
}

/// One round of `--ingest-share` (or the medians of all).
struct ShareRow {
    chunks_per_second: f64,
    ingest_tokens_per_second: f64,
    alone_tokens_per_second: f64,
    /// The share of ingest's time the model ran.
    model_busy: f64,
    ingest_tokens_per_model_second: f64,
    alone_tokens_per_model_second: f64,
}

impl ShareRow {
    fn print(&self, label: &str) {
        println!(
            "{label:<6} {:>9.2} {:>13.0} {:>12.0} {:>5.0}% {:>10.0}% {:>16.0} {:>15.0}",
            self.chunks_per_second,
            self.ingest_tokens_per_second,
            self.alone_tokens_per_second,
            100.0 * self.ingest_tokens_per_second / self.alone_tokens_per_second,
            100.0 * self.model_busy,
            self.ingest_tokens_per_model_second,
            self.alone_tokens_per_model_second
        );
    }
}

/// Embeds again every text `app` ingested (each chunk's indexed text and each of its
/// sentences, read back from the index), in one call with nothing else running, so that the
/// embedder sorts them all by token count: the fastest this model embeds that work here.
fn embedding_alone(app: &App) -> anyhow::Result<Embedding> {
    let ingestor = app.ingestor()?;
    let mut texts = Vec::new();
    for kb in ingestor.knowledge_bases()? {
        let ids: Vec<ChunkId> = ingestor
            .catalog()
            .list(&ingestor.active_generation(&kb)?)?
            .iter()
            .flat_map(DocumentRecord::chunk_ids)
            .collect();
        for chunk in ingestor.lexical().get_chunks(&ids)? {
            texts.push(chunk.indexed_text());
            texts.extend(chunk.sentence_embedding_texts());
        }
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let meter = EmbeddingMeter::start(app)?;
    ingestor.embedder()?.embed_passages(&texts)?;
    meter.stop(app)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Duration::from_millis(5));
        assert_eq!(percentile(&values, 0.9), Duration::from_millis(9));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(10));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
