//! Prometheus metrics, served as text on their own port (`server.metrics_listen`), so that
//! scraping never competes with the gRPC port's limits and can be firewalled apart.
//!
//! Request counters and latencies are recorded by the handlers; everything that is a state
//! (documents and chunks per knowledge base, tasks waiting for a core, the watcher, index sizes
//! on disk) is read when scraped, so it cannot drift from what it describes.

use lumbung_core::disk::{allocated_bytes, available_bytes};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tonic::Code;

use crate::App;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    passages: Histogram,
    answers: IntCounterVec,
    embedding_batches: HistogramVec,
    documents: IntGaugeVec,
    failed_documents: IntGaugeVec,
    chunks: IntGaugeVec,
    state: IntGaugeVec,
    index_bytes: IntGaugeVec,
    disk_bytes: IntGaugeVec,
}

/// Latency buckets in seconds: from a BM25 lookup to an overloaded Ask.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("lumbung".to_string()), None).expect("a valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "gRPC requests by method and status code"),
            &["method", "code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("request_seconds", "gRPC request latency by method")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let passages = Histogram::with_opts(
            HistogramOpts::new("search_passages", "passages returned per Search")
                .buckets(vec![0.0, 1.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0]),
        )
        .expect("valid metric");
        let answers = IntCounterVec::new(
            Opts::new(
                "answers_total",
                "Ask outcomes: answered, or the hand-off reason",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let embedding_batches = HistogramVec::new(
            HistogramOpts::new(
                "embedding_batch_seconds",
                "model time per embedding batch, by session (query or passage)",
            )
            .buckets(vec![
                0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let failed_documents = IntGaugeVec::new(
            Opts::new(
                "failed_documents",
                "documents failed or skipped, per knowledge base and kind",
            ),
            &["kb", "kind"],
        )
        .expect("valid metric");
        let documents = IntGaugeVec::new(
            Opts::new(
                "documents",
                "documents per knowledge base by ingest state, as of its last sync",
            ),
            &["kb", "state"],
        )
        .expect("valid metric");
        let chunks = IntGaugeVec::new(
            Opts::new("chunks", "chunks served per knowledge base"),
            &["kb"],
        )
        .expect("valid metric");
        let state = IntGaugeVec::new(
            Opts::new(
                "state",
                "watcher_alive (1 or 0), cpu_tasks_waiting and requests_waiting, when scraped",
            ),
            &["what"],
        )
        .expect("valid metric");
        let index_bytes = IntGaugeVec::new(
            Opts::new(
                "index_bytes",
                "bytes on disk per part of the data directory (allocated blocks, as du counts)",
            ),
            &["part"],
        )
        .expect("valid metric");
        let disk_bytes = IntGaugeVec::new(
            Opts::new(
                "disk_bytes",
                "free: what the data directory's file system has left; reserve: what ingest \
                 keeps free (ingest.min_free_disk_mib), below which new and changed files wait",
            ),
            &["what"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(passages.clone()),
            Box::new(answers.clone()),
            Box::new(embedding_batches.clone()),
            Box::new(documents.clone()),
            Box::new(failed_documents.clone()),
            Box::new(chunks.clone()),
            Box::new(state.clone()),
            Box::new(index_bytes.clone()),
            Box::new(disk_bytes.clone()),
        ] {
            registry.register(metric).expect("each metric once");
        }
        Metrics {
            registry,
            requests,
            latency,
            passages,
            answers,
            embedding_batches,
            documents,
            failed_documents,
            chunks,
            state,
            index_bytes,
            disk_bytes,
        }
    }

    /// Runs a handler, counting it by method and outcome and timing it.
    pub async fn observe<T>(
        &self,
        method: &'static str,
        handler: impl Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        let started = Instant::now();
        let outcome = handler.await;
        let code = match &outcome {
            Ok(_) => Code::Ok,
            Err(err) => err.code(),
        };
        self.requests
            .with_label_values(&[method, &format!("{code:?}")])
            .inc();
        self.latency
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    /// What the embedder tells of each batch it runs.
    pub fn embedding_batches(&self) -> lumbung_embed::BatchObserver {
        let histogram = self.embedding_batches.clone();
        Arc::new(move |kind, _texts, elapsed| {
            histogram
                .with_label_values(&[kind.as_str()])
                .observe(elapsed.as_secs_f64());
        })
    }

    /// Model time of every batch of `kind` so far, in seconds.
    pub fn embedding_seconds(&self, kind: lumbung_embed::EmbedKind) -> f64 {
        self.embedding_batches
            .with_label_values(&[kind.as_str()])
            .get_sample_sum()
    }

    pub fn passages_returned(&self, count: usize) {
        self.passages.observe(count as f64);
    }

    /// `answered`, or the hand-off reason.
    pub fn answer(&self, outcome: &str) {
        self.answers.with_label_values(&[outcome]).inc();
    }

    /// The text exposition, with the states read now. Walks the data directory for its sizes:
    /// call it from a blocking thread.
    pub fn render(&self, app: &App) -> String {
        self.documents.reset();
        self.failed_documents.reset();
        self.chunks.reset();
        for (kb, entry) in app.registry().iter() {
            let summary = &entry.summary;
            for (state, count) in [
                ("indexed", summary.indexed),
                ("failed", summary.failed),
                ("skipped", summary.skipped),
            ] {
                self.documents
                    .with_label_values(&[kb.as_str(), state])
                    .set(i64::from(count));
            }
            for (kind, count) in summary.failures.iter() {
                self.failed_documents
                    .with_label_values(&[kb.as_str(), kind.as_str()])
                    .set(i64::from(count));
            }
            self.chunks
                .with_label_values(&[kb.as_str()])
                .set(summary.chunks as i64);
        }
        self.state
            .with_label_values(&["watcher_alive"])
            .set(i64::from(app.ingest_alive()));
        self.state
            .with_label_values(&["cpu_tasks_waiting"])
            .set(app.engine.pool_waiting() as i64);
        self.state
            .with_label_values(&["requests_waiting"])
            .set(app.admission.waiting() as i64);
        for part in ["lexical", "vectors", "catalog.redb", "gaps.redb"] {
            self.index_bytes
                .with_label_values(&[part])
                .set(allocated_bytes(&app.config.data_dir.join(part)) as i64);
        }
        match available_bytes(&app.config.data_dir) {
            Ok(free) => self
                .disk_bytes
                .with_label_values(&["free"])
                .set(free as i64),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the data directory's free space")
            }
        }
        self.disk_bytes
            .with_label_values(&["reserve"])
            .set((app.config.ingest.min_free_disk_mib << 20) as i64);
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("text encoding of gathered metrics");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let app = Arc::clone(&app);
            async move {
                #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
                let rendered = tokio::task::spawn_blocking(move || app.metrics.render(&app));
                rendered
                    .await
                    .unwrap_or_else(|err| format!("# metrics unavailable: {err}\n"))
            }
        }),
    );
    tracing::info!(addr = %listener.local_addr()?, "serving metrics");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(crate::Error::Io)
}
