use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lumbung_core::KbName;
use lumbung_ingest::{DocumentRecord, DocumentState, KbStatus, LiveState};
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_server::AdminService;
use lumbung_proto::{timestamp_from_unix_millis, unix_millis_from_timestamp};
use tonic::{Request, Response, Status};

use crate::knowledge::{answer_question, sentence_to_proto};
use crate::{App, Error, Result};

pub struct AdminApi {
    app: Arc<App>,
}

impl AdminApi {
    pub fn new(app: Arc<App>) -> Self {
        AdminApi { app }
    }

    fn status(&self, request: v1::GetIngestStatusRequest) -> Result<v1::GetIngestStatusResponse> {
        let kbs = if request.knowledge_base.is_empty() {
            self.app.ingestor.knowledge_bases()?
        } else {
            self.app
                .resolve_kbs(std::slice::from_ref(&request.knowledge_base))
                .map_err(|err| match err {
                    Error::InvalidArgument { reason, .. } => {
                        Error::invalid("knowledge_base", reason)
                    }
                    other => other,
                })?
        };
        let mut statuses = Vec::with_capacity(kbs.len());
        for kb in kbs {
            let status = self.app.ingestor.status(&kb)?;
            statuses.push(kb_status(status, request.include_documents));
        }
        Ok(v1::GetIngestStatusResponse {
            knowledge_bases: statuses,
        })
    }

    async fn reindex(&self, request: v1::ReindexRequest) -> Result<v1::ReindexResponse> {
        if request.knowledge_base.is_empty() {
            return Err(Error::invalid("knowledge_base", "must not be empty"));
        }
        let kb = KbName::new(request.knowledge_base)
            .map_err(|err| Error::invalid("knowledge_base", err.to_string()))?;
        let ingestor = Arc::clone(&self.app.ingestor);
        let report = tokio::task::spawn_blocking(move || ingestor.sync_kb(&kb, true, &|_| {}))
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        Ok(v1::ReindexResponse {
            documents_indexed: report.indexed as u32,
            documents_failed: report.failed as u32,
            chunks: report.chunks_written,
        })
    }
}

impl AdminApi {
    async fn list_gaps(&self, request: v1::ListGapsRequest) -> Result<v1::ListGapsResponse> {
        if request.knowledge_base.is_empty() {
            return Err(Error::invalid("knowledge_base", "must not be empty"));
        }
        let kb = self
            .app
            .resolve_kbs(std::slice::from_ref(&request.knowledge_base))
            .map_err(|err| match err {
                Error::InvalidArgument { reason, .. } => Error::invalid("knowledge_base", reason),
                other => other,
            })?
            .remove(0);
        let since = request.since.as_ref().map(unix_millis_from_timestamp);
        let gaps = Arc::clone(&self.app.gaps);
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
        request: v1::ExplainAnswerRequest,
    ) -> Result<v1::ExplainAnswerResponse> {
        let ask = v1::AskRequest {
            question: request.question,
            knowledge_bases: request.knowledge_bases,
            max_sentences: 0,
        };
        let (response, answer) = answer_question(&self.app, &ask).await?;
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
        request: v1::SetAnswerDecisionRequest,
    ) -> Result<v1::SetAnswerDecisionResponse> {
        let app = Arc::clone(&self.app);
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
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    #[tracing::instrument(skip_all)]
    async fn get_ingest_status(
        &self,
        request: Request<v1::GetIngestStatusRequest>,
    ) -> Result<Response<v1::GetIngestStatusResponse>, Status> {
        Ok(Response::new(self.status(request.into_inner())?))
    }

    #[tracing::instrument(skip_all)]
    async fn reindex(
        &self,
        request: Request<v1::ReindexRequest>,
    ) -> Result<Response<v1::ReindexResponse>, Status> {
        Ok(Response::new(self.reindex(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_gaps(
        &self,
        request: Request<v1::ListGapsRequest>,
    ) -> Result<Response<v1::ListGapsResponse>, Status> {
        Ok(Response::new(self.list_gaps(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn explain_answer(
        &self,
        request: Request<v1::ExplainAnswerRequest>,
    ) -> Result<Response<v1::ExplainAnswerResponse>, Status> {
        Ok(Response::new(
            self.explain_answer(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn set_answer_decision(
        &self,
        request: Request<v1::SetAnswerDecisionRequest>,
    ) -> Result<Response<v1::SetAnswerDecisionResponse>, Status> {
        Ok(Response::new(
            self.set_answer_decision(request.into_inner()).await?,
        ))
    }
}
