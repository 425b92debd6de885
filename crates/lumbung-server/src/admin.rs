use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lumbung_core::KbName;
use lumbung_ingest::{DocumentRecord, DocumentState, FailureKind, KbStatus, LiveState};
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_server::AdminService;
use lumbung_proto::{timestamp_from_unix_millis, unix_millis_from_timestamp};
use lumbung_search::Scope;
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

    /// The one knowledge base a request names in its `knowledge_base` field, checked against
    /// what the caller may read.
    async fn one_kb(&self, caller: &Caller, name: &str) -> Result<KbName> {
        if name.is_empty() {
            return Err(Error::invalid("knowledge_base", "must not be empty"));
        }
        let scope = self
            .app
            .scope(caller, &[name.to_string()], "knowledge_base")?;
        Ok(scope.kbs()[0].clone())
    }

    async fn status(
        &self,
        caller: &Caller,
        request: v1::GetIngestStatusRequest,
    ) -> Result<v1::GetIngestStatusResponse> {
        let scope = if request.knowledge_base.is_empty() {
            self.app.scope(caller, &[], "knowledge_base")?
        } else {
            Scope::resolved(vec![self.one_kb(caller, &request.knowledge_base).await?])
        };
        let ingestor = Arc::clone(self.app.ingestor()?);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        let statuses = tokio::task::spawn_blocking(move || -> Result<Vec<_>> {
            let mut statuses = Vec::with_capacity(scope.kbs().len());
            for kb in scope.kbs() {
                let status = ingestor.status(kb)?;
                statuses.push(kb_status(status, request.include_documents));
            }
            Ok(statuses)
        })
        .await
        .map_err(|err| Error::Task(err.to_string()))??;
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
        let kb = self.one_kb(caller, &request.knowledge_base).await?;
        let ingestor = Arc::clone(self.app.ingestor()?);
        #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
        let report = tokio::task::spawn_blocking(move || ingestor.sync_kb(&kb, true, &|_| {}))
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        Ok(v1::ReindexResponse {
            documents_indexed: report.indexed as u32,
            documents_failed: report.failed as u32,
            chunks: report.chunks_written,
        })
    }

    async fn list_gaps(
        &self,
        caller: &Caller,
        request: v1::ListGapsRequest,
    ) -> Result<v1::ListGapsResponse> {
        let kb = self.one_kb(caller, &request.knowledge_base).await?;
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
    } = status;
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
    let (settings_error, readers) = match settings {
        Ok(settings) => (String::new(), settings.readers),
        Err(reason) => (reason, Vec::new()),
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
