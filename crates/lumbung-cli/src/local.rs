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
    // Search answers from what is already indexed while the folders are synced and watched; a
    // query node watches nothing.
    let watcher = match app.config.server.role {
        lumbung_core::NodeRole::Query => None,
        lumbung_core::NodeRole::All | lumbung_core::NodeRole::Ingest => Some(app.watch()?),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let mut side_ports = Vec::new();
    if let Some(addr) = app.config.server.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        side_ports.push(tokio::spawn(lumbung_server::serve_metrics(
            Arc::clone(&app),
            listener,
            until_stopped(),
        )));
    }
    if let Some(addr) = app.config.server.http_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for HTTP"))?;
        side_ports.push(tokio::spawn(lumbung_server::serve_http(
            Arc::clone(&app),
            listener,
            until_stopped(),
        )));
    }
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    lumbung_server::serve(app, listener, shutdown).await?;
    drop(stopped);
    for port in side_ports {
        port.await??;
    }
    // Stops the run in progress after its current documents; the rest is redone next start.
    tokio::task::spawn_blocking(move || drop(watcher)).await?;
    Ok(())
}

/// Prints every difference between the catalog and the indexes; true when there is none.
pub fn check(config: Config, kb: Option<String>) -> anyhow::Result<bool> {
    let app = App::open(config)?;
    let kbs = match kb {
        Some(name) => vec![KbName::new(name)?],
        None => app.ingestor()?.knowledge_bases()?,
    };
    let mut consistent = true;
    for kb in kbs {
        let problems = app.ingestor()?.verify(&kb)?;
        if problems.is_empty() {
            let status = app.ingestor()?.status(&kb)?;
            let building = match status.generations.building {
                Some(generation) => {
                    format!("; generation {generation} being built, resumed at the next start")
                }
                None => String::new(),
            };
            println!(
                "{kb}: consistent ({} documents indexed, {} chunks, generation {}{building})",
                status.summary.indexed, status.summary.chunks, status.generations.active
            );
        }
        for problem in problems {
            println!("{problem}");
            consistent = false;
        }
    }
    Ok(consistent)
}

/// A progress bar for ingest runs: one line per knowledge base, failures printed above it.
pub fn ingest_bar() -> anyhow::Result<ProgressBar> {
    Ok(ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {eta} {wide_msg}")?
            .progress_chars("=> "),
    ))
}

/// Moves `bar` along with the documents of a run.
pub fn show_progress(bar: &ProgressBar, event: &Progress) {
    match event {
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
    }
}

pub fn ingest(config: Config, kb: Option<String>, force: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let app = App::open(config)?;
    let bar = ingest_bar()?;
    let progress = |event: &Progress| show_progress(&bar, event);
    let report = match kb {
        Some(name) => app
            .ingestor()?
            .sync_kb(&KbName::new(name)?, force, &progress)?,
        None => app.ingestor()?.sync_all(force, &progress)?,
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

/// Restores the backup in `dir` into the configured (empty) data directory, with the files of
/// the data directory it carries, and checks every knowledge base.
pub fn restore(config: Config, dir: &std::path::Path) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let app = App::open(config)?;
    let manifest = app.ingestor()?.restore(dir)?;
    for file in &manifest.files {
        std::fs::copy(dir.join("files").join(file), data_dir.join(file))?;
    }
    for kb in &manifest.knowledge_bases {
        println!(
            "{}: restored generation {} ({} documents, {} chunks)",
            kb.name, kb.generation, kb.documents, kb.chunks
        );
    }
    println!(
        "restored a backup of {} taken by lumbung {} into {}",
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(manifest.created_at_ms.max(0) as u64)
        ),
        manifest.lumbung_version,
        data_dir.display()
    );
    Ok(())
}
