//! `lumbung kb list | describe | create | delete` and `lumbung reindex`: knowledge bases and
//! their rebuilds on a running service.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use lumbung_proto::v1;
use serde_json::json;

use crate::client::{
    admin_client, format_timestamp, kb_status_json, print_statuses_json, status_error,
};
use crate::{BackupArgs, KbCommand, ReindexArgs};

/// How often `reindex --wait` asks for the job's progress.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub async fn kb(command: KbCommand) -> anyhow::Result<()> {
    match command {
        KbCommand::List { client } => {
            let mut admin = admin_client(&client).await?;
            let response = admin
                .get_ingest_status(v1::GetIngestStatusRequest::default())
                .await
                .map_err(status_error)?
                .into_inner();
            if client.json {
                return print_statuses_json(&response);
            }
            println!(
                "{:<24} {:>4} {:>9} {:>7} {:>9} {:>10}  {:<20} rebuild",
                "knowledge base", "gen", "documents", "failed", "chunks", "source", "last change"
            );
            for kb in &response.knowledge_bases {
                println!(
                    "{:<24} {:>4} {:>9} {:>7} {:>9} {:>10}  {:<20} {}",
                    kb.name,
                    kb.generation,
                    kb.documents_indexed,
                    kb.documents_failed,
                    kb.chunks,
                    bytes(kb.source_bytes),
                    kb.last_change
                        .map(format_timestamp)
                        .unwrap_or_else(|| "-".into()),
                    kb.job.as_ref().map(job_line).unwrap_or_else(|| "-".into()),
                );
            }
            Ok(())
        }
        KbCommand::Describe { name, client } => {
            let mut admin = admin_client(&client).await?;
            let response = admin
                .get_ingest_status(v1::GetIngestStatusRequest {
                    knowledge_base: name,
                    include_documents: false,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let Some(kb) = response.knowledge_bases.first() else {
                anyhow::bail!("the service returned no status");
            };
            if client.json {
                println!("{}", serde_json::to_string_pretty(&kb_status_json(kb))?);
                return Ok(());
            }
            describe(kb);
            Ok(())
        }
        KbCommand::Create {
            name,
            title,
            description,
            language,
            escalation,
            readers,
            embedding_model,
            client,
        } => {
            let mut admin = admin_client(&client).await?;
            let response = admin
                .create_knowledge_base(v1::CreateKnowledgeBaseRequest {
                    name: name.clone(),
                    title: title.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                    language: language.unwrap_or_default(),
                    escalation: escalation.unwrap_or_default(),
                    readers,
                    embedding_model: embedding_model.unwrap_or_default(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if client.json {
                println!("{}", json!({ "name": name, "folder": response.folder }));
            } else {
                println!(
                    "created {name}: put its documents in {} (settings in its kb.toml)",
                    response.folder
                );
            }
            Ok(())
        }
        KbCommand::Delete {
            name,
            remove_folder,
            client,
        } => {
            let mut admin = admin_client(&client).await?;
            admin
                .delete_knowledge_base(v1::DeleteKnowledgeBaseRequest {
                    name: name.clone(),
                    remove_folder,
                })
                .await
                .map_err(status_error)?;
            if client.json {
                println!(
                    "{}",
                    json!({ "deleted": name, "folder_removed": remove_folder })
                );
            } else if remove_folder {
                println!("deleted {name}, its indexes and its folder");
            } else {
                println!(
                    "deleted {name} from the indexes; its folder is kept and no longer indexed \
                     (`lumbung kb create {name}` takes it back)"
                );
            }
            Ok(())
        }
    }
}

fn describe(kb: &v1::KnowledgeBaseStatus) {
    println!("{}", kb.name);
    println!(
        "  generation      {}{}",
        kb.generation,
        if kb.building_generation > 0 {
            format!(" (building {})", kb.building_generation)
        } else {
            String::new()
        }
    );
    println!("  embedding model {}", kb.embedding_model);
    if !kb.building_embedding_model.is_empty() {
        println!("  building with   {}", kb.building_embedding_model);
    } else if !kb.next_embedding_model.is_empty() && kb.next_embedding_model != kb.embedding_model {
        println!(
            "  next rebuild    {} (`lumbung reindex --kb {}` moves it there)",
            kb.next_embedding_model, kb.name
        );
    }
    println!(
        "  documents       {} indexed, {} failed, {} skipped, {} queued, {} indexing",
        kb.documents_indexed,
        kb.documents_failed,
        kb.documents_skipped,
        kb.documents_queued,
        kb.documents_indexing
    );
    println!("  chunks          {}", kb.chunks);
    println!("  source files    {}", bytes(kb.source_bytes));
    println!(
        "  last change     {}",
        kb.last_change
            .map(format_timestamp)
            .unwrap_or_else(|| "-".into())
    );
    if !kb.readers.is_empty() {
        println!("  readers         {}", kb.readers.join(", "));
    }
    if !kb.settings_error.is_empty() {
        println!("  kb.toml ignored {}", kb.settings_error);
    }
    if !kb.ingest_paused.is_empty() {
        println!("  ingest paused   {}", kb.ingest_paused);
    }
    for failure in &kb.failures {
        println!(
            "  not indexed     {} {}",
            failure.documents,
            failure
                .kind()
                .as_str_name()
                .trim_start_matches("FAILURE_KIND_")
                .to_lowercase()
        );
    }
    for document in &kb.documents {
        println!("  failed          {}: {}", document.path, document.error);
    }
    if let Some(job) = &kb.job {
        println!("  rebuild         {}", job_line(job));
        if !job.error.is_empty() {
            println!("                  {}", job.error);
        }
    }
}

fn job_line(job: &v1::Job) -> String {
    let state = job
        .state()
        .as_str_name()
        .trim_start_matches("JOB_STATE_")
        .to_lowercase();
    let phase = job
        .phase()
        .as_str_name()
        .trim_start_matches("JOB_PHASE_")
        .to_lowercase();
    let when = job
        .finished
        .or(job.started)
        .map(format_timestamp)
        .unwrap_or_default();
    format!(
        "{} {state} ({phase}, {}/{} documents, {} chunks) {when}",
        job.id, job.documents_done, job.documents_total, job.chunks_written
    )
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let mut admin = admin_client(&args.client).await?;
    if args.cancel {
        let response = admin
            .cancel_reindex(v1::CancelReindexRequest {
                knowledge_base: args.kb,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        if args.client.json {
            println!("{}", json!({ "cancelled": response.job_id }));
        } else {
            println!(
                "cancelled {}: its generation is discarded, the active one serves",
                response.job_id
            );
        }
        return Ok(());
    }
    let started = admin
        .reindex(v1::ReindexRequest {
            knowledge_base: args.kb.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner()
        .job
        .ok_or_else(|| anyhow::anyhow!("the service started a job without saying which"))?;
    if !args.wait {
        if args.client.json {
            println!(
                "{}",
                json!({ "job": started.id, "generation": started.generation })
            );
        } else {
            println!(
                "started {}: `lumbung reindex --kb {} --wait` follows it, `lumbung kb describe \
                 {}` shows it",
                started.id, args.kb, args.kb
            );
        }
        return Ok(());
    }
    let bar = (!args.client.json).then(|| {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} documents {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        )
    });
    if let Some(bar) = &bar {
        bar.set_prefix(started.id.clone());
    }
    let ended = loop {
        let status = admin
            .get_ingest_status(v1::GetIngestStatusRequest {
                knowledge_base: args.kb.clone(),
                include_documents: false,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let job = status
            .knowledge_bases
            .into_iter()
            .next()
            .and_then(|kb| kb.job)
            .filter(|job| job.id == started.id)
            .ok_or_else(|| anyhow::anyhow!("job {} is no longer reported", started.id))?;
        if let Some(bar) = &bar {
            bar.set_length(job.documents_total);
            bar.set_position(job.documents_done);
            bar.set_message(format!(
                "{}, {} chunks",
                job.phase()
                    .as_str_name()
                    .trim_start_matches("JOB_PHASE_")
                    .to_lowercase(),
                job.chunks_written
            ));
        }
        if job.state() != v1::JobState::Running {
            break job;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if args.client.json {
        println!(
            "{}",
            json!({
                "job": ended.id,
                "state": ended.state().as_str_name(),
                "documents": ended.documents_done,
                "documents_failed": ended.documents_failed,
                "chunks": ended.chunks_written,
                "error": ended.error,
            })
        );
    } else {
        println!("{}", job_line(&ended));
    }
    match ended.state() {
        v1::JobState::Succeeded => Ok(()),
        state => anyhow::bail!(
            "{} ended {}{}; the previous generation still serves",
            ended.id,
            state
                .as_str_name()
                .trim_start_matches("JOB_STATE_")
                .to_lowercase(),
            if ended.error.is_empty() {
                String::new()
            } else {
                format!(": {}", ended.error)
            }
        ),
    }
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let directory = std::path::absolute(&args.dir)?;
    let mut admin = admin_client(&args.client).await?;
    let response = admin
        .backup(v1::BackupRequest {
            directory: directory.display().to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        println!(
            "{}",
            json!({
                "directory": directory.display().to_string(),
                "knowledge_bases": response.knowledge_bases,
                "documents": response.documents,
                "chunks": response.chunks,
                "version": response.version,
            })
        );
    } else {
        println!(
            "backed up {} knowledge bases ({} documents, {} chunks) into {} (backup version {})",
            response.knowledge_bases,
            response.documents,
            response.chunks,
            directory.display(),
            response.version
        );
    }
    Ok(())
}
