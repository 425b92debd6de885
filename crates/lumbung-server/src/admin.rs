use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lumbung_core::KbName;
use lumbung_ingest::{
    DocumentRecord, DocumentState, FailureKind, Ingestor, JobPhase, JobRecord, JobState, JobStatus,
    KbSettings, KbStatus, LiveState,
};
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_server::AdminService;
use lumbung_proto::{timestamp_from_unix_millis, unix_millis_from_timestamp};
use tonic::{Request, Response, Status};

use crate::knowledge::{answer_question, sentence_to_proto};
use crate::request::Work;
use crate::{App, Caller, Error, Result};

pub struct AdminApi {
    app: Arc<App>,
}

impl AdminApi {
    pub fn new(app: Arc<App>) -> Self {
        AdminApi { app }
    }

    /// The one knowledge base a request names in its `field`, checked against what the
    /// caller may read.
    fn one_kb(&self, caller: &Caller, name: &str, field: &str) -> Result<KbName> {
        if name.is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        let scope = self.app.scope(caller, &[name.to_string()], field)?;
        scope
            .kbs()
            .next()
            .cloned()
            .ok_or_else(|| Error::KbNotFound(name.to_string()))
    }

    /// Runs `work` with the ingestor on a blocking thread: the calls it makes block, so each
    /// caller allows clippy's `disallowed_methods` for its closure.
    async fn with_ingestor<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<Ingestor>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let ingestor = Arc::clone(self.app.ingestor()?);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        tokio::task::spawn_blocking(move || work(&ingestor))
            .await
            .map_err(|err| Error::Task(err.to_string()))?
    }

    async fn status(
        &self,
        caller: &Caller,
        request: v1::GetIngestStatusRequest,
    ) -> Result<v1::GetIngestStatusResponse> {
        let kbs: Vec<KbName> = if request.knowledge_base.is_empty() {
            let scope = self.app.scope(caller, &[], "knowledge_base")?;
            scope.kbs().cloned().collect()
        } else {
            vec![self.one_kb(caller, &request.knowledge_base, "knowledge_base")?]
        };
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        let statuses = self
            .with_ingestor(move |ingestor| {
                let mut statuses = Vec::with_capacity(kbs.len());
                for kb in &kbs {
                    let status = ingestor.status(kb)?;
                    statuses.push(kb_status(status, request.include_documents));
                }
                Ok(statuses)
            })
            .await?;
        Ok(v1::GetIngestStatusResponse {
            knowledge_bases: statuses,
        })
    }

    async fn reindex(
        &self,
        caller: &Caller,
        request: v1::ReindexRequest,
    ) -> Result<v1::ReindexResponse> {
        caller.require_admin()?;
        let kb = self.one_kb(caller, &request.knowledge_base, "knowledge_base")?;
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        let record = self
            .with_ingestor(move |ingestor| Ok(ingestor.start_reindex(&kb)?))
            .await?;
        Ok(v1::ReindexResponse {
            job: Some(job_to_proto(&JobStatus {
                record,
                phase: JobPhase::Building,
            })),
        })
    }

    async fn cancel_reindex(
        &self,
        caller: &Caller,
        request: v1::CancelReindexRequest,
    ) -> Result<v1::CancelReindexResponse> {
        caller.require_admin()?;
        let kb = self.one_kb(caller, &request.knowledge_base, "knowledge_base")?;
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        let job_id = self
            .with_ingestor(move |ingestor| Ok(ingestor.cancel_reindex(&kb)?))
            .await?;
        Ok(v1::CancelReindexResponse { job_id })
    }

    async fn create_kb(
        &self,
        caller: &Caller,
        request: v1::CreateKnowledgeBaseRequest,
    ) -> Result<v1::CreateKnowledgeBaseResponse> {
        caller.require_admin()?;
        if request.name.is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let kb = KbName::new(request.name.clone())
            .map_err(|err| Error::invalid("name", err.to_string()))?;
        let optional = |text: String| (!text.trim().is_empty()).then_some(text);
        let settings = KbSettings {
            title: optional(request.title),
            description: optional(request.description),
            language: optional(request.language),
            escalation: optional(request.escalation),
            readers: request.readers,
            embedding_model: optional(request.embedding_model),
        };
        settings
            .validate()
            .map_err(|invalid| Error::invalid(invalid.field, invalid.reason))?;
        if let Some(model) = &settings.embedding_model {
            let configured = lumbung_core::ModelName::new(model.as_str())
                .ok()
                .and_then(|name| self.app.config.embedding_model(&name));
            if configured.is_none() {
                return Err(Error::invalid(
                    "embedding_model",
                    format!(
                        "{model:?} is not a model this service loads ([embedding]'s name or a \
                         key of [embedding_models])"
                    ),
                ));
            }
        }
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        let folder = self
            .with_ingestor(move |ingestor| Ok(ingestor.create_kb(&kb, &settings)?))
            .await?;
        Ok(v1::CreateKnowledgeBaseResponse {
            folder: folder.display().to_string(),
        })
    }

    async fn delete_kb(
        &self,
        caller: &Caller,
        request: v1::DeleteKnowledgeBaseRequest,
    ) -> Result<v1::DeleteKnowledgeBaseResponse> {
        caller.require_admin()?;
        let kb = self.one_kb(caller, &request.name, "name")?;
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        self.with_ingestor(move |ingestor| Ok(ingestor.delete_kb(&kb, request.remove_folder)?))
            .await?;
        Ok(v1::DeleteKnowledgeBaseResponse {})
    }

    async fn backup(
        &self,
        caller: &Caller,
        request: v1::BackupRequest,
    ) -> Result<v1::BackupResponse> {
        caller.require_admin()?;
        let directory = std::path::PathBuf::from(&request.directory);
        if request.directory.is_empty() || !directory.is_absolute() {
            return Err(Error::invalid(
                "directory",
                "must be an absolute path on the service's machine",
            ));
        }
        let decision = self.app.decision_path();
        #[allow(
            clippy::disallowed_methods,
            reason = "inside with_ingestor, on a blocking thread"
        )]
        let manifest = self
            .with_ingestor(move |ingestor| Ok(ingestor.backup(&directory, &[decision])?))
            .await?;
        Ok(v1::BackupResponse {
            knowledge_bases: manifest.knowledge_bases.len() as u32,
            documents: manifest.knowledge_bases.iter().map(|kb| kb.documents).sum(),
            chunks: manifest.knowledge_bases.iter().map(|kb| kb.chunks).sum(),
            version: manifest.version,
        })
    }

    async fn list_gaps(
        &self,
        caller: &Caller,
        request: v1::ListGapsRequest,
    ) -> Result<v1::ListGapsResponse> {
        let kb = self.one_kb(caller, &request.knowledge_base, "knowledge_base")?;
        let since = request.since.as_ref().map(unix_millis_from_timestamp);
        let gaps = Arc::clone(&self.app.gaps);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        let listed = tokio::task::spawn_blocking(move || gaps.list(kb.as_str(), since))
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        Ok(v1::ListGapsResponse {
            gaps: listed
                .into_iter()
                .map(|gap| v1::Gap {
                    question: gap.question,
                    count: gap.count,
                    first_asked: Some(timestamp_from_unix_millis(gap.first_seen_ms)),
                    last_asked: Some(timestamp_from_unix_millis(gap.last_seen_ms)),
                })
                .collect(),
        })
    }

    async fn explain_answer(
        &self,
        caller: &Caller,
        request: v1::ExplainAnswerRequest,
    ) -> Result<v1::ExplainAnswerResponse> {
        let ask = v1::AskRequest {
            question: request.question,
            knowledge_bases: request.knowledge_bases,
            max_sentences: 0,
        };
        let (response, answer) = answer_question(&self.app, caller, &ask).await?;
        let (features, candidate_sentences) = match answer {
            Some(answer) => (
                answer.features.values,
                answer.sentences.iter().map(sentence_to_proto).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(v1::ExplainAnswerResponse {
            answer: Some(response),
            feature_names: lumbung_search::FEATURE_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            features,
            min_confidence: self.app.engine.ask_config().min_confidence,
            candidate_sentences,
        })
    }

    async fn set_answer_decision(
        &self,
        caller: &Caller,
        request: v1::SetAnswerDecisionRequest,
    ) -> Result<v1::SetAnswerDecisionResponse> {
        caller.require_admin()?;
        let app = Arc::clone(&self.app);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        let decision = tokio::task::spawn_blocking(move || app.set_decision(&request.parameters))
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        Ok(v1::SetAnswerDecisionResponse {
            fitted_on: decision.fitted_on,
        })
    }
}

fn kb_status(status: KbStatus, include_documents: bool) -> v1::KnowledgeBaseStatus {
    let KbStatus {
        kb,
        settings,
        summary,
        records,
        in_progress,
        generations,
        model,
        next_model,
        job,
        disk_shortage,
    } = status;
    let source_bytes = records.iter().map(|record| record.size_bytes).sum();
    let live: HashMap<_, _> = in_progress.iter().cloned().collect();
    let mut documents: Vec<v1::DocumentStatus> = records
        .iter()
        .filter(|r| {
            include_documents || (r.state == DocumentState::Failed && !live.contains_key(&r.path))
        })
        .map(|record| document_status(record, live.get(&record.path).copied()))
        .collect();
    if include_documents {
        // New documents of the run in progress have no row yet.
        let recorded: HashSet<_> = records.iter().map(|r| &r.path).collect();
        documents.extend(
            in_progress
                .iter()
                .filter(|(path, _)| !recorded.contains(path))
                .map(|(path, state)| v1::DocumentStatus {
                    path: path.to_string(),
                    state: live_state(*state).into(),
                    ..v1::DocumentStatus::default()
                }),
        );
        documents.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let (settings_error, readers) = match (settings, &next_model) {
        (Ok(settings), Ok(_)) => (String::new(), settings.readers),
        // kb.toml names a model the service does not load: its next rebuild would fail.
        (Ok(settings), Err(reason)) => (reason.clone(), settings.readers),
        (Err(reason), _) => (reason, Vec::new()),
    };
    v1::KnowledgeBaseStatus {
        name: kb.to_string(),
        documents_indexed: summary.indexed,
        documents_failed: summary.failed,
        documents_skipped: summary.skipped,
        documents_queued: summary.queued,
        documents_indexing: summary.indexing,
        chunks: summary.chunks,
        last_change: summary.last_change_ms.map(timestamp_from_unix_millis),
        documents,
        settings_error,
        readers,
        failures: summary
            .failures
            .iter()
            .map(|(kind, documents)| v1::FailureCount {
                kind: failure_kind(kind).into(),
                documents,
            })
            .collect(),
        generation: generations.active.get(),
        building_generation: generations.building.map_or(0, |g| g.get()),
        building_embedding_model: generations
            .building
            .and_then(|g| generations.model(g))
            .map(ToString::to_string)
            .unwrap_or_default(),
        embedding_model: model.to_string(),
        next_embedding_model: next_model
            .map(|model| model.to_string())
            .unwrap_or_default(),
        job: job.as_ref().map(job_to_proto),
        source_bytes,
        ingest_paused: disk_shortage
            .map(|shortage| shortage.to_string())
            .unwrap_or_default(),
    }
}

fn job_to_proto(job: &JobStatus) -> v1::Job {
    let JobStatus { record, phase } = job;
    let JobRecord {
        id,
        kb,
        generation,
        kind: _,
        state,
        started_at_ms,
        finished_at_ms,
        error,
        documents_total,
        documents_done,
        documents_failed,
        chunks_written,
    } = record;
    v1::Job {
        id: id.clone(),
        knowledge_base: kb.to_string(),
        generation: generation.get(),
        state: match state {
            JobState::Running => v1::JobState::Running,
            JobState::Succeeded => v1::JobState::Succeeded,
            JobState::Failed => v1::JobState::Failed,
            JobState::Cancelled => v1::JobState::Cancelled,
        }
        .into(),
        phase: match phase {
            JobPhase::Building => v1::JobPhase::Building,
            JobPhase::Swapping => v1::JobPhase::Swapping,
            JobPhase::Retiring => v1::JobPhase::Retiring,
            JobPhase::Ended => v1::JobPhase::Ended,
        }
        .into(),
        started: Some(timestamp_from_unix_millis(*started_at_ms)),
        finished: finished_at_ms.map(timestamp_from_unix_millis),
        documents_total: *documents_total,
        documents_done: *documents_done,
        documents_failed: *documents_failed,
        chunks_written: *chunks_written,
        error: error.clone().unwrap_or_default(),
    }
}

fn failure_kind(kind: FailureKind) -> v1::FailureKind {
    match kind {
        FailureKind::Unsupported => v1::FailureKind::Unsupported,
        FailureKind::TooLarge => v1::FailureKind::TooLarge,
        FailureKind::Corrupt => v1::FailureKind::Corrupt,
        FailureKind::Encrypted => v1::FailureKind::Encrypted,
        FailureKind::Timeout => v1::FailureKind::Timeout,
        FailureKind::Empty => v1::FailureKind::Empty,
        FailureKind::Unreadable => v1::FailureKind::Unreadable,
        FailureKind::Embedding => v1::FailureKind::Embedding,
    }
}

fn live_state(state: LiveState) -> v1::DocumentState {
    match state {
        LiveState::Queued => v1::DocumentState::Queued,
        LiveState::Indexing => v1::DocumentState::Indexing,
    }
}

/// A catalog row, in the state of the run in progress when it is part of it.
fn document_status(record: &DocumentRecord, live: Option<LiveState>) -> v1::DocumentStatus {
    let state = match (live, record.state) {
        (Some(state), _) => live_state(state),
        (None, DocumentState::Indexed) => v1::DocumentState::Indexed,
        (None, DocumentState::Failed) => v1::DocumentState::Failed,
        (None, DocumentState::Skipped) => v1::DocumentState::Skipped,
    };
    v1::DocumentStatus {
        path: record.path.to_string(),
        state: state.into(),
        error: record.error.clone().unwrap_or_default(),
        chunks: record.chunks,
        size_bytes: record.size_bytes,
        content_hash: record.content_hash.as_str().to_string(),
        indexed_at: Some(timestamp_from_unix_millis(record.recorded_at_ms)),
        failure_kind: record
            .failure
            .filter(|_| record.state != DocumentState::Indexed)
            .map_or(v1::FailureKind::Unspecified, failure_kind)
            .into(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn get_ingest_status(
        &self,
        request: Request<v1::GetIngestStatusRequest>,
    ) -> Result<Response<v1::GetIngestStatusResponse>, Status> {
        self.app
            .serve_request(
                "GetIngestStatus",
                Work::Lookup,
                request,
                |caller, message| async move { self.status(&caller, message).await },
            )
            .await
    }

    async fn reindex(
        &self,
        request: Request<v1::ReindexRequest>,
    ) -> Result<Response<v1::ReindexResponse>, Status> {
        self.app
            .serve_request(
                "Reindex",
                Work::Lookup,
                request,
                |caller, message| async move { self.reindex(&caller, message).await },
            )
            .await
    }

    async fn cancel_reindex(
        &self,
        request: Request<v1::CancelReindexRequest>,
    ) -> Result<Response<v1::CancelReindexResponse>, Status> {
        self.app
            .serve_request(
                "CancelReindex",
                Work::Lookup,
                request,
                |caller, message| async move { self.cancel_reindex(&caller, message).await },
            )
            .await
    }

    async fn create_knowledge_base(
        &self,
        request: Request<v1::CreateKnowledgeBaseRequest>,
    ) -> Result<Response<v1::CreateKnowledgeBaseResponse>, Status> {
        self.app
            .serve_request(
                "CreateKnowledgeBase",
                Work::Lookup,
                request,
                |caller, message| async move { self.create_kb(&caller, message).await },
            )
            .await
    }

    async fn delete_knowledge_base(
        &self,
        request: Request<v1::DeleteKnowledgeBaseRequest>,
    ) -> Result<Response<v1::DeleteKnowledgeBaseResponse>, Status> {
        self.app
            .serve_request(
                "DeleteKnowledgeBase",
                Work::Lookup,
                request,
                |caller, message| async move { self.delete_kb(&caller, message).await },
            )
            .await
    }

    async fn backup(
        &self,
        request: Request<v1::BackupRequest>,
    ) -> Result<Response<v1::BackupResponse>, Status> {
        self.app
            .serve_request(
                "Backup",
                Work::Lookup,
                request,
                |caller, message| async move { self.backup(&caller, message).await },
            )
            .await
    }

    async fn list_gaps(
        &self,
        request: Request<v1::ListGapsRequest>,
    ) -> Result<Response<v1::ListGapsResponse>, Status> {
        self.app
            .serve_request(
                "ListGaps",
                Work::Lookup,
                request,
                |caller, message| async move { self.list_gaps(&caller, message).await },
            )
            .await
    }

    async fn explain_answer(
        &self,
        request: Request<v1::ExplainAnswerRequest>,
    ) -> Result<Response<v1::ExplainAnswerResponse>, Status> {
        self.app
            .serve_request(
                "ExplainAnswer",
                Work::Compute,
                request,
                |caller, message| async move { self.explain_answer(&caller, message).await },
            )
            .await
    }

    async fn set_answer_decision(
        &self,
        request: Request<v1::SetAnswerDecisionRequest>,
    ) -> Result<Response<v1::SetAnswerDecisionResponse>, Status> {
        self.app
            .serve_request(
                "SetAnswerDecision",
                Work::Lookup,
                request,
                |caller, message| async move { self.set_answer_decision(&caller, message).await },
            )
            .await
    }
}
