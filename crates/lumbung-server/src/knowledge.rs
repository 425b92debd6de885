use std::sync::Arc;

use lumbung_core::{KbGeneration, KbName, ModelName};
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_server::KnowledgeService;
use lumbung_search::{
    Answer, HandOff, Passage, Retriever, Scope, SearchRequest, SupportingSentence,
};
use tonic::{Request, Response, Status};

use crate::request::Work;
use crate::{App, Caller, Error, Result};

const DEFAULT_TOP_K: u32 = 10;
const DEFAULT_MAX_SENTENCES: u32 = 3;
const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1_000;

pub struct KnowledgeApi {
    app: Arc<App>,
}

impl KnowledgeApi {
    pub fn new(app: Arc<App>) -> Self {
        KnowledgeApi { app }
    }

    async fn search(
        &self,
        caller: &Caller,
        request: v1::SearchRequest,
    ) -> Result<v1::SearchResponse> {
        let scope = self
            .app
            .scope(caller, &request.knowledge_bases, "knowledge_bases")?;
        if scope.is_empty() {
            return Ok(v1::SearchResponse {
                passages: Vec::new(),
            });
        }
        let top_k = if request.top_k == 0 {
            DEFAULT_TOP_K
        } else {
            request.top_k
        };
        let retriever = match v1::Retriever::try_from(request.retriever) {
            Ok(v1::Retriever::Unspecified | v1::Retriever::Hybrid) => Retriever::Hybrid,
            Ok(v1::Retriever::Bm25) => Retriever::Bm25,
            Ok(v1::Retriever::Dense) => Retriever::Dense,
            Ok(v1::Retriever::HybridRerank) => Retriever::HybridRerank,
            Err(_) => {
                let reason = format!("unknown value {}", request.retriever);
                return Err(Error::invalid("retriever", reason));
            }
        };
        let request = SearchRequest {
            query: request.query,
            scope,
            top_k: top_k as usize,
            retriever,
        };
        let passages = self.app.engine.search(&request).await?;
        self.app.metrics.passages_returned(passages.len());
        Ok(v1::SearchResponse {
            passages: passages.iter().map(passage_to_proto).collect(),
        })
    }

    async fn ask(&self, caller: &Caller, request: v1::AskRequest) -> Result<v1::AskResponse> {
        let (response, answer) = answer_question(&self.app, caller, &request).await?;
        self.app.metrics.answer(match response.hand_off_reason() {
            v1::HandOffReason::Unspecified => "answered",
            v1::HandOffReason::NoMatchingPassage => "no_matching_passage",
            v1::HandOffReason::NotSupported => "not_supported",
            v1::HandOffReason::OutsideKnowledgeBases => "outside_knowledge_bases",
        });
        self.app.note_outcome(&request.question, &response, &answer);
        Ok(response)
    }

    fn list(
        &self,
        caller: &Caller,
        request: v1::ListKnowledgeBasesRequest,
    ) -> Result<v1::ListKnowledgeBasesResponse> {
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(Error::invalid(
                    "page_size",
                    format!("{n} is above {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        } as usize;
        // The token is the last name of the previous page: names are unique and sorted.
        if !request.page_token.is_empty() && KbName::new(request.page_token.clone()).is_err() {
            return Err(Error::invalid(
                "page_token",
                "not a token from a previous page",
            ));
        }
        let scope = self.app.scope(caller, &[], "knowledge_bases")?;
        let kbs: Vec<&KbName> = scope
            .kbs()
            .filter(|kb| request.page_token.is_empty() || kb.as_str() > request.page_token.as_str())
            .collect();
        let registry = self.app.registry();
        let page: Vec<v1::KnowledgeBase> = kbs
            .iter()
            .take(page_size)
            .filter_map(|kb| registry.get(*kb).map(|entry| (kb, entry)))
            .map(|(kb, entry)| {
                // A broken kb.toml is reported by GetIngestStatus; here it reads as no settings.
                let settings = entry.settings.clone().unwrap_or_default();
                v1::KnowledgeBase {
                    name: kb.to_string(),
                    documents_indexed: entry.summary.indexed,
                    chunks: entry.summary.chunks,
                    title: settings.title.unwrap_or_default(),
                    description: settings.description.unwrap_or_default(),
                    language: settings.language.unwrap_or_default(),
                    escalation: settings.escalation.unwrap_or_default(),
                }
            })
            .collect();
        let next_page_token = if kbs.len() > page_size {
            page.last().map(|kb| kb.name.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(v1::ListKnowledgeBasesResponse {
            knowledge_bases: page,
            next_page_token,
        })
    }
}

/// What `Ask` answers to `request`, with the engine's answer it was made from (the held-back
/// sentences and the decision's signals included).
pub(crate) async fn answer_question(
    app: &App,
    caller: &Caller,
    request: &v1::AskRequest,
) -> Result<(v1::AskResponse, Option<Answer>)> {
    let scope = app.scope(caller, &request.knowledge_bases, "knowledge_bases")?;
    let max_sentences = if request.max_sentences == 0 {
        DEFAULT_MAX_SENTENCES
    } else {
        request.max_sentences
    };
    if request.question.trim().is_empty() {
        return Err(Error::invalid("question", "must not be empty"));
    }
    if scope.is_empty() {
        let response = v1::AskResponse {
            status: v1::AnswerStatus::NoAnswer.into(),
            no_answer_reason: "there is no knowledge base to draw from".to_string(),
            hand_off_reason: v1::HandOffReason::NoMatchingPassage.into(),
            ..v1::AskResponse::default()
        };
        return Ok((response, None));
    }
    let ask = |scope: Scope| async move {
        app.engine
            .ask(&request.question, &scope, max_sentences as usize)
            .await
            .map_err(rename_query_field)
    };
    let answer = ask(scope.clone()).await?;
    let Some(hand_off) = answer.hand_off else {
        let response = v1::AskResponse {
            status: v1::AnswerStatus::Answered.into(),
            sentences: answer.sentences.iter().map(sentence_to_proto).collect(),
            confidence: answer.confidence,
            ..v1::AskResponse::default()
        };
        return Ok((response, Some(answer)));
    };
    // Named knowledge bases that do not hold the answer: another one may, and then the
    // assistant can say whom to ask instead of "nobody knows".
    let mut reason = match hand_off {
        HandOff::NoPassage => v1::HandOffReason::NoMatchingPassage,
        HandOff::NotSupported => v1::HandOffReason::NotSupported,
    };
    let mut belongs_to = match scope.generations() {
        [only] => Some(only.kb().clone()),
        _ => answer.closest_kb.clone(),
    };
    let mut explanation = hand_off.explanation().to_string();
    if !request.knowledge_bases.is_empty() {
        // Only among those the caller may read: a hand-off must not reveal the others.
        let others: Vec<(KbGeneration, ModelName)> = app
            .scope(caller, &[], "knowledge_bases")?
            .entries()
            .filter(|(generation, _)| !scope.contains(generation.kb()))
            .map(|(generation, model)| (generation.clone(), model.clone()))
            .collect();
        if !others.is_empty() {
            let elsewhere = ask(Scope::resolved(others)).await?;
            if elsewhere.answered() {
                reason = v1::HandOffReason::OutsideKnowledgeBases;
                belongs_to = elsewhere
                    .sentences
                    .first()
                    .map(|s| s.citation.kb.clone())
                    .or(elsewhere.closest_kb);
                explanation = format!(
                    "the requested knowledge bases do not hold the answer; {} does",
                    belongs_to.as_ref().map_or("another", |kb| kb.as_str())
                );
            }
        }
    }
    let escalation = belongs_to.map(|kb| v1::Escalation {
        contact: app.escalation_contact(&kb),
        knowledge_base: kb.to_string(),
    });
    let response = v1::AskResponse {
        status: v1::AnswerStatus::NoAnswer.into(),
        sentences: Vec::new(),
        no_answer_reason: explanation,
        confidence: answer.confidence,
        hand_off_reason: reason.into(),
        escalation,
    };
    Ok((response, Some(answer)))
}

pub(crate) fn sentence_to_proto(sentence: &SupportingSentence) -> v1::SupportingSentence {
    v1::SupportingSentence {
        text: sentence.text.clone(),
        citation: Some((&sentence.citation).into()),
        chunk_id: sentence.chunk_id.to_hex(),
        similarity: sentence.similarity,
    }
}

/// `Ask` calls its text `question`; the search it runs calls it `query`.
fn rename_query_field(err: lumbung_search::Error) -> Error {
    match err {
        lumbung_search::Error::InvalidArgument {
            field: "query",
            reason,
        } => Error::invalid("question", reason),
        other => other.into(),
    }
}

pub fn passage_to_proto(passage: &Passage) -> v1::Passage {
    v1::Passage {
        chunk_id: passage.chunk.id.to_hex(),
        text: passage.chunk.text.clone(),
        citation: Some((&passage.chunk.citation).into()),
        scores: Some(v1::Scores {
            fused: passage.fused_score,
            bm25: passage.bm25.map(|s| s.score),
            bm25_rank: passage.bm25.map(|s| s.rank),
            dense: passage.dense.map(|s| s.score),
            dense_rank: passage.dense.map(|s| s.rank),
            rerank: passage.rerank,
            best_sentence: passage.best_sentence,
            bm25_coverage: passage.bm25_coverage,
        }),
    }
}

#[tonic::async_trait]
impl KnowledgeService for KnowledgeApi {
    async fn search(
        &self,
        request: Request<v1::SearchRequest>,
    ) -> Result<Response<v1::SearchResponse>, Status> {
        self.app
            .serve_request(
                "Search",
                Work::Compute,
                request,
                |caller, message| async move { self.search(&caller, message).await },
            )
            .await
    }

    async fn ask(
        &self,
        request: Request<v1::AskRequest>,
    ) -> Result<Response<v1::AskResponse>, Status> {
        self.app
            .serve_request(
                "Ask",
                Work::Compute,
                request,
                |caller, message| async move { self.ask(&caller, message).await },
            )
            .await
    }

    async fn list_knowledge_bases(
        &self,
        request: Request<v1::ListKnowledgeBasesRequest>,
    ) -> Result<Response<v1::ListKnowledgeBasesResponse>, Status> {
        self.app
            .serve_request(
                "ListKnowledgeBases",
                Work::Lookup,
                request,
                |caller, message| async move { self.list(&caller, message) },
            )
            .await
    }
}
