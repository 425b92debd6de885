//! `lumbung bench`: ingest the watched root into a fresh data directory, then time `Search`
//! through a real gRPC server on 127.0.0.1:0, for each retriever, in one process so that the
//! BM25-only and dense-only runs are the baselines of the hybrid one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lumbung_core::Config;
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_server::App;

/// Questions in the users' three languages, about the sample knowledge bases.
const QUERIES: [&str; 10] = [
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

pub async fn bench(mut config: Config, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    config.data_dir = dir.path().join("data");
    println!("ingest root: {}", config.ingest_root.display());

    let started = Instant::now();
    let app = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    println!(
        "open (model load, empty indexes): {:>8.1} ms",
        ms(started.elapsed())
    );

    let started = Instant::now();
    let report = app.sync_all().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "ingest: {} documents, {} chunks, {} failed in {:.2} s = {:.1} documents/s, {:.1} chunks/s",
        report.indexed,
        report.chunks_written,
        report.failed,
        elapsed,
        report.indexed as f64 / elapsed,
        report.chunks_written as f64 / elapsed
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lumbung_server::serve(app, listener, async {
        let _ = stopped.await;
    }));
    let mut client = KnowledgeServiceClient::connect(format!("http://{addr}")).await?;

    println!(
        "\nSearch over gRPC, top_k 10, {} queries x {rounds} rounds each (ms):",
        QUERIES.len()
    );
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>8}",
        "retriever", "p50", "p90", "p99", "max"
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
        for query in QUERIES {
            client.search(search(query)).await?;
        }
        let mut latencies = Vec::with_capacity(QUERIES.len() * rounds);
        for _ in 0..rounds {
            for query in QUERIES {
                let started = Instant::now();
                client.search(search(query)).await?;
                latencies.push(started.elapsed());
            }
        }
        latencies.sort();
        let name = retriever
            .as_str_name()
            .trim_start_matches("RETRIEVER_")
            .to_lowercase();
        println!(
            "{:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name,
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.90)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
