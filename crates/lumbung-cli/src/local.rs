//! Commands that open the data directory themselves: `serve` and `ingest`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lumbung_core::{Config, KbName};
use lumbung_ingest::{Outcome, Progress};
use lumbung_server::App;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let app = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Search answers from what is already indexed while the folders are synced.
    let syncing = Arc::clone(&app);
    tokio::spawn(async move {
        let started = Instant::now();
        match syncing.sync_all().await {
            Ok(report) => tracing::info!(
                indexed = report.indexed,
                unchanged = report.unchanged,
                failed = report.failed,
                skipped = report.skipped,
                removed = report.removed,
                chunks = report.chunks_written,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "initial sync done"
            ),
            Err(err) => tracing::error!(error = %err, "initial sync failed"),
        }
    });
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    lumbung_server::serve(app, listener, shutdown).await?;
    Ok(())
}

pub fn ingest(config: Config, kb: Option<String>, force: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let app = App::open(config)?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {wide_msg}")?
            .progress_chars("=> "),
    );
    let progress = |event: &Progress| match event {
        Progress::Planned {
            kb,
            to_read,
            to_remove,
        } => {
            bar.set_prefix(kb.to_string());
            bar.set_position(0);
            bar.set_length((to_read + to_remove) as u64);
        }
        Progress::Document { path, outcome, .. } => {
            bar.inc(1);
            match outcome {
                Outcome::Failed(error) => bar.println(format!("failed  {path}: {error}")),
                Outcome::Skipped(reason) => bar.println(format!("skipped {path}: {reason}")),
                _ => bar.set_message(path.to_string()),
            }
        }
    };
    let report = match kb {
        Some(name) => app
            .ingestor
            .sync_kb(&KbName::new(name)?, force, &progress)?,
        None => app.ingestor.sync_all(force, &progress)?,
    };
    bar.finish_and_clear();
    println!(
        "indexed {} documents ({} chunks), {} unchanged, {} failed, {} skipped, {} removed in {:.1} s",
        report.indexed,
        report.chunks_written,
        report.unchanged,
        report.failed,
        report.skipped,
        report.removed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
