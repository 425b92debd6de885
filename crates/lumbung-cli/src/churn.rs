//! `lumbung bench --churn ROUNDS`: a year of edits in minutes. A copy of the samples is served
//! with its watcher while every round edits every text document, renames the PDF to and fro,
//! deletes one document and puts back the one deleted the round before; a client searches ten
//! times a second. After each round, once the watcher has taken everything in, it prints the
//! disk each part of the data directory takes (allocated blocks, as `du` counts them), the
//! process's resident memory, the chunks served and what `lumbung check` finds, then the
//! growth of each part from the first round to the last. A sampler reads the data
//! directory's size five times a second: its peak in each round, above what the round left,
//! is the disk that merges, vacuums and log replacements need for a while (what
//! `ingest.min_free_disk_mib` must cover).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lumbung_core::Config;
use lumbung_core::disk::allocated_bytes as allocated;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_server::App;
use tonic::transport::Channel;

use crate::bench::{self, mib};

/// How long one round's changes may take to be indexed before the benchmark gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(600);

/// The data directory's parts, in bytes of allocated blocks.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    vector_segments: u64,
    vector_wal: u64,
    lexical: u64,
    catalog: u64,
    total: u64,
}

impl Sizes {
    const PARTS: [&str; 5] = [
        "vector segments",
        "vector WAL",
        "lexical",
        "catalog",
        "total",
    ];

    fn of(data_dir: &Path) -> Sizes {
        let mut sizes = Sizes {
            lexical: allocated(&data_dir.join("lexical")),
            catalog: allocated(&data_dir.join("catalog.redb")),
            total: allocated(data_dir),
            ..Sizes::default()
        };
        // One store per embedding model.
        for store in std::fs::read_dir(data_dir.join("vectors"))
            .into_iter()
            .flatten()
            .flatten()
        {
            sizes.vector_segments += allocated(&store.path().join("segments"));
            sizes.vector_wal += allocated(&store.path().join("wal"));
        }
        sizes
    }

    fn parts(&self) -> [u64; 5] {
        [
            self.vector_segments,
            self.vector_wal,
            self.lexical,
            self.catalog,
            self.total,
        ]
    }
}

/// What one round left behind.
struct Measured {
    sizes: Sizes,
    rss_bytes: u64,
    chunks: u64,
    /// Differences `lumbung check` reports, over every knowledge base.
    problems: usize,
}

pub async fn churn(config: Config, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rounds > 0, "--churn needs at least one round");
    let samples = bench::ingest_samples(config).await?;
    let (app, root) = (Arc::clone(&samples.app), samples.root.clone());
    let data_dir = app.config.data_dir.clone();
    println!(
        "churn: {rounds} rounds over a copy of the samples in {} (served, watched)",
        root.display()
    );
    let watcher = app.watch()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lumbung_server::serve(Arc::clone(&app), listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let searching = Arc::new(AtomicBool::new(true));
    let (searches, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = tokio::spawn(search_until_stopped(
        KnowledgeServiceClient::new(channel),
        Arc::clone(&searching),
        Arc::clone(&searches),
        Arc::clone(&failed),
    ));

    let mut documents = Documents::of(&root)?;
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>8} {:>9} {:>7} {:>7}",
        "round",
        "segments",
        "wal",
        "lexical",
        "catalog",
        "total",
        "peak",
        "rss",
        "chunks",
        "problems",
        "searches",
        "failed",
        "secs"
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "", "MiB", "MiB", "MiB", "MiB", "MiB", "MiB", "MiB"
    );
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = sample_peak(data_dir.clone(), Arc::clone(&searching), Arc::clone(&peak))?;
    let mut first: Option<Measured> = None;
    let mut last = None;
    // The largest total a round left, and the largest excess of a round's peak over it.
    let (mut largest, mut largest_round, mut headroom) = (0u64, 0usize, 0u64);
    for round in 1..=rounds {
        let started = Instant::now();
        peak.store(0, Ordering::SeqCst);
        documents.change(round)?;
        wait_until_indexed(&app, &root).await?;
        let measured = measure(&app, &data_dir).await?;
        let round_peak = peak.load(Ordering::SeqCst).max(measured.sizes.total);
        if measured.sizes.total > largest {
            (largest, largest_round) = (measured.sizes.total, round);
        }
        headroom = headroom.max(round_peak - measured.sizes.total);
        let sizes = measured.sizes.parts().map(mib);
        println!(
            "{round:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>7} {:>8} {:>9} {:>7} {:>7.1}",
            sizes[0],
            sizes[1],
            sizes[2],
            sizes[3],
            sizes[4],
            mib(round_peak),
            mib(measured.rss_bytes),
            measured.chunks,
            measured.problems,
            searches.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst),
            started.elapsed().as_secs_f64()
        );
        if first.is_none() {
            first = Some(measured);
        } else {
            last = Some(measured);
        }
    }
    searching.store(false, Ordering::SeqCst);
    client.await?;
    sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the size sampler panicked"))?;
    if let Some(first) = &first {
        println!(
            "\nlargest data directory after a round: {:.1} MiB (round {largest_round}), x{:.2} \
             round 1's; largest peak within a round above what it left: {:.1} MiB",
            mib(largest),
            largest as f64 / first.sizes.total.max(1) as f64,
            mib(headroom)
        );
    }
    if let (Some(first), Some(last)) = (first, last) {
        println!("growth from round 1 to round {rounds} (allocated MiB):");
        for ((part, before), after) in Sizes::PARTS
            .iter()
            .zip(first.sizes.parts())
            .zip(last.sizes.parts())
        {
            println!(
                "{part:<16} {:>9.1} -> {:>9.1}  x{:.2}",
                mib(before),
                mib(after),
                after as f64 / before.max(1) as f64
            );
        }
        println!(
            "{:<16} {:>9.1} -> {:>9.1}  x{:.2}",
            "rss",
            mib(first.rss_bytes),
            mib(last.rss_bytes),
            last.rss_bytes as f64 / first.rss_bytes.max(1) as f64
        );
    }
    println!(
        "searches during the churn: {}, failed: {}",
        searches.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    tokio::task::spawn_blocking(move || drop(watcher)).await?;
    let _ = stop_server.send(());
    server.await??;
    // The service closes its stores before their temporary folder goes.
    tokio::task::spawn_blocking(move || {
        drop(app);
        drop(samples);
    })
    .await?;
    Ok(())
}

/// The documents the rounds change: the text files are edited, the PDF renamed, and one text
/// file at a time is deleted and put back a round later.
struct Documents {
    /// Each text document with its original text.
    texts: Vec<(PathBuf, String)>,
    /// The PDF, as it is named now.
    pdf: Option<PathBuf>,
    /// The document deleted last round, with the text to put back.
    deleted: Option<(PathBuf, String)>,
}

impl Documents {
    fn of(root: &Path) -> anyhow::Result<Documents> {
        let mut texts = Vec::new();
        let mut pdf = None;
        for kb in std::fs::read_dir(root)? {
            for file in std::fs::read_dir(kb?.path())? {
                let path = file?.path();
                match path.extension().and_then(|e| e.to_str()) {
                    Some("md" | "txt") => {
                        let text = std::fs::read_to_string(&path)?;
                        texts.push((path, text));
                    }
                    Some("pdf") => pdf = Some(path),
                    _ => {}
                }
            }
        }
        texts.sort();
        Ok(Documents {
            texts,
            pdf,
            deleted: None,
        })
    }

    /// Round `round`'s changes: every text document but the one deleted gets a new last line
    /// (replacing the previous round's, so files do not grow), the PDF moves to the other of
    /// two names, the one deleted last round comes back and another is deleted.
    fn change(&mut self, round: usize) -> anyhow::Result<()> {
        if let Some((path, text)) = self.deleted.take() {
            std::fs::write(&path, text)?;
        }
        let deleting = round % self.texts.len();
        for (index, (path, text)) in self.texts.iter().enumerate() {
            if index == deleting {
                std::fs::remove_file(path)?;
                self.deleted = Some((path.clone(), text.clone()));
            } else {
                std::fs::write(
                    path,
                    format!("{text}\n\nRevision {round}: reviewed again on round {round}.\n"),
                )?;
            }
        }
        if let Some(pdf) = &self.pdf {
            let stem = pdf.file_stem().and_then(|s| s.to_str()).unwrap_or("report");
            let renamed = match stem.strip_suffix("-moved") {
                Some(original) => pdf.with_file_name(format!("{original}.pdf")),
                None => pdf.with_file_name(format!("{stem}-moved.pdf")),
            };
            std::fs::rename(pdf, &renamed)?;
            self.pdf = Some(renamed);
        }
        Ok(())
    }
}

/// Waits until every file under `root` is recorded with its current size and modification
/// time, no row is left for a file that is gone, and no run has documents in progress.
async fn wait_until_indexed(app: &Arc<App>, root: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let app = Arc::clone(app);
        let root = root.to_path_buf();
        let done = tokio::task::spawn_blocking(move || indexed(&app, &root)).await??;
        if done {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the round's changes were not indexed within {ROUND_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn indexed(app: &App, root: &Path) -> anyhow::Result<bool> {
    let ingestor = app.ingestor()?;
    for kb in ingestor.knowledge_bases()? {
        let folder = root.join(kb.as_str());
        let status = ingestor.status(&kb)?;
        if !status.in_progress.is_empty() {
            return Ok(false);
        }
        let mut on_disk = 0;
        for file in std::fs::read_dir(&folder)? {
            let file = file?;
            let name = file.file_name().to_string_lossy().into_owned();
            if name == lumbung_ingest::SETTINGS_FILE {
                continue;
            }
            on_disk += 1;
            let metadata = file.metadata()?;
            // As the scan records it.
            let mtime_ms = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            let recorded = status.records.iter().any(|record| {
                record.path.as_str() == name
                    && record.size_bytes == metadata.len()
                    && record.mtime_ms == mtime_ms
            });
            if !recorded {
                return Ok(false);
            }
        }
        if status.records.len() != on_disk {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the data directory's allocated size five times a second into `peak` (the largest
/// since it was last reset) while `running` is set.
fn sample_peak(
    data_dir: PathBuf,
    running: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("churn-size-sampler".to_string())
        .spawn(move || {
            while running.load(Ordering::SeqCst) {
                peak.fetch_max(allocated(&data_dir), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
}

async fn measure(app: &Arc<App>, data_dir: &Path) -> anyhow::Result<Measured> {
    let app = Arc::clone(app);
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let ingestor = app.ingestor()?;
        let mut chunks = 0;
        let mut problems = 0;
        for kb in ingestor.knowledge_bases()? {
            chunks += ingestor.status(&kb)?.summary.chunks;
            problems += ingestor.verify(&kb)?.len();
        }
        Ok(Measured {
            sizes: Sizes::of(&data_dir),
            // 0 where /proc does not tell.
            rss_bytes: bench::resident_kib().unwrap_or(0) * 1024,
            chunks,
            problems,
        })
    })
    .await?
}

/// Between two searches of the client: ten a second, a busy assistant's rate, leaves ingest
/// (at nice 19) the cores it needs; without a pause a round took ten times longer.
const SEARCH_PAUSE: Duration = Duration::from_millis(100);

/// Searches every knowledge base (hybrid), ten times a second, until `searching` is cleared.
async fn search_until_stopped(
    mut client: KnowledgeServiceClient<Channel>,
    searching: Arc<AtomicBool>,
    searches: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let mut n = 0;
    while searching.load(Ordering::SeqCst) {
        let searched = client.search(bench::hybrid_search(n)).await;
        n += 1;
        searches.fetch_add(1, Ordering::SeqCst);
        if searched.is_err() {
            failed.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(SEARCH_PAUSE).await;
    }
}
