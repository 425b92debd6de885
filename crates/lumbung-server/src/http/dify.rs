//! Dify's External Knowledge API (docs.dify.ai, "External Knowledge API"): Dify posts
//! `{knowledge_id, query, retrieval_setting: {top_k, score_threshold}, metadata_condition}` to
//! `{endpoint}/retrieval` with `Authorization: Bearer {API key}` and takes back
//! `{"records": [{content, score, title, metadata}]}`.
//!
//! The knowledge id is a knowledge base's name and the API key a lumbung token. Records are
//! hybrid search's passages in its order; `score` is the passage's dense similarity to the
//! query (languages' means taken out, clamped to 0..1), a measure that compares across
//! questions, so `score_threshold` drops weak passages rather than a share of the best one.
//! Failures answer `{"error_code", "error_msg"}` with Dify's codes: 1001 for an Authorization
//! header that is not `Bearer <key>`, 1002 for a key that is not a token, 2001 for a knowledge
//! base that does not exist (or that the token may not read); others carry the HTTP status
//! as their code.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_server::KnowledgeService;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};

use super::{Body, Services, json_response, metadata, parse_json};
use crate::Error;
use crate::error::http_status;

/// Dify's documented error codes.
const INVALID_AUTHORIZATION_HEADER: u32 = 1001;
const AUTHORIZATION_FAILED: u32 = 1002;
const KNOWLEDGE_NOT_FOUND: u32 = 2001;
/// Passages fetched per record asked for when a metadata condition filters them afterwards.
const FILTER_OVERFETCH: u32 = 4;

pub(super) fn routes(services: Services) -> Router {
    Router::new()
        .route("/retrieval", post(retrieval))
        .with_state(services)
}

#[derive(Debug, Deserialize)]
struct RetrievalRequest {
    knowledge_id: String,
    query: String,
    retrieval_setting: RetrievalSetting,
    #[serde(default)]
    metadata_condition: Option<MetadataCondition>,
}

#[derive(Debug, Deserialize)]
struct RetrievalSetting {
    top_k: u32,
    score_threshold: f32,
}

#[derive(Debug, Deserialize)]
struct MetadataCondition {
    #[serde(default)]
    logical_operator: LogicalOperator,
    conditions: Vec<Condition>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum LogicalOperator {
    #[default]
    And,
    Or,
}

#[derive(Debug, Deserialize)]
struct Condition {
    /// A metadata key of the records (one name, or several any of which may match).
    name: ConditionName,
    comparison_operator: String,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ConditionName {
    One(String),
    Any(Vec<String>),
}

#[derive(Debug, Serialize)]
struct Record {
    content: String,
    score: f32,
    title: String,
    metadata: Map<String, Value>,
}

fn failure(http: StatusCode, error_code: u32, error_msg: impl Into<String>) -> Response {
    json_response(
        http,
        &json!({ "error_code": error_code, "error_msg": error_msg.into() }),
    )
}

/// A failed call in Dify's terms: its documented codes where it has one, else the HTTP status
/// the gRPC code maps to, as both status and code.
fn failure_of(status: &Status) -> Response {
    let (http, code) = match status.code() {
        Code::Unauthenticated => (StatusCode::FORBIDDEN, AUTHORIZATION_FAILED),
        Code::NotFound => (StatusCode::NOT_FOUND, KNOWLEDGE_NOT_FOUND),
        other => {
            let http = http_status(other);
            (http, u32::from(http.as_u16()))
        }
    };
    failure(http, code, status.message())
}

async fn retrieval(State(services): State<Services>, headers: HeaderMap, body: Body) -> Response {
    // Dify always sends the key; a header that is not `Bearer <key>` is its own error.
    let bearer = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|key| !key.trim().is_empty());
    let calls = metadata(&headers);
    if let Err(err) = services.app.caller(&calls) {
        return if bearer {
            failure(StatusCode::FORBIDDEN, AUTHORIZATION_FAILED, err.to_string())
        } else {
            failure(
                StatusCode::FORBIDDEN,
                INVALID_AUTHORIZATION_HEADER,
                "Invalid Authorization header format. Expected 'Bearer <api-key>' format.",
            )
        };
    }
    let request: RetrievalRequest = match parse_json(body) {
        Ok(request) => request,
        Err(err) => return failure_of(&Status::from(err)),
    };
    let setting = &request.retrieval_setting;
    if !(0.0..=1.0).contains(&setting.score_threshold) {
        let err = Error::invalid("retrieval_setting.score_threshold", "must be within 0 to 1");
        return failure_of(&Status::from(err));
    }
    if setting.top_k == 0 {
        let err = Error::invalid("retrieval_setting.top_k", "must be at least 1");
        return failure_of(&Status::from(err));
    }
    if request.knowledge_id.is_empty() {
        let err = Error::invalid("knowledge_id", "must name a knowledge base");
        return failure_of(&Status::from(err));
    }
    if let Some(condition) = &request.metadata_condition
        && let Err(err) = condition.check()
    {
        return failure_of(&Status::from(err));
    }
    // Dify may ask for more than one search returns: it gets what there is.
    let max_fetch = u32::try_from(services.app.config.search.max_top_k).unwrap_or(u32::MAX);
    let top_k = setting.top_k.min(max_fetch);
    let fetch = match &request.metadata_condition {
        Some(_) => top_k.saturating_mul(FILTER_OVERFETCH).min(max_fetch),
        None => top_k,
    };
    let search = v1::SearchRequest {
        query: request.query.clone(),
        knowledge_bases: vec![request.knowledge_id.clone()],
        top_k: fetch,
        retriever: v1::Retriever::Hybrid.into(),
    };
    let call = tonic::Request::from_parts(calls, Default::default(), search);
    let passages = match services.knowledge.search(call).await {
        Ok(response) => response.into_inner().passages,
        Err(status) => return failure_of(&status),
    };
    let records: Vec<Record> = passages
        .into_iter()
        .map(record)
        .filter(|record| record.score >= setting.score_threshold)
        .filter(|record| {
            request
                .metadata_condition
                .as_ref()
                .is_none_or(|condition| condition.matches(&record.metadata))
        })
        .take(top_k as usize)
        .collect();
    json_response(StatusCode::OK, &json!({ "records": records }))
}

fn record(passage: v1::Passage) -> Record {
    let citation = passage.citation.unwrap_or_default();
    let scores = passage.scores.unwrap_or_default();
    let score = scores.dense.unwrap_or(0.0).clamp(0.0, 1.0);
    let mut metadata = Map::new();
    metadata.insert("knowledge_base".into(), citation.knowledge_base.into());
    metadata.insert("document_path".into(), citation.document_path.into());
    metadata.insert("section".into(), citation.heading_path.join(" > ").into());
    metadata.insert("heading_path".into(), citation.heading_path.into());
    if let Some(page) = citation.page {
        metadata.insert("page".into(), page.into());
    }
    metadata.insert("char_start".into(), citation.char_start.into());
    metadata.insert("char_end".into(), citation.char_end.into());
    metadata.insert("chunk_id".into(), passage.chunk_id.into());
    metadata.insert("fused_score".into(), json!(scores.fused));
    Record {
        content: passage.text,
        score,
        title: citation.title,
        metadata,
    }
}

/// The comparison operators Dify documents.
const OPERATORS: &[&str] = &[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "in",
    "not in",
    "empty",
    "not empty",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
];

impl MetadataCondition {
    fn check(&self) -> crate::Result<()> {
        for (index, condition) in self.conditions.iter().enumerate() {
            if !OPERATORS.contains(&condition.comparison_operator.as_str()) {
                return Err(Error::invalid(
                    &format!("metadata_condition.conditions[{index}].comparison_operator"),
                    format!(
                        "{:?} is not one of {}",
                        condition.comparison_operator,
                        OPERATORS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, metadata: &Map<String, Value>) -> bool {
        let mut results = self.conditions.iter().map(|c| c.matches(metadata));
        match self.logical_operator {
            LogicalOperator::And => results.all(|matched| matched),
            LogicalOperator::Or => results.any(|matched| matched),
        }
    }
}

impl Condition {
    fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match &self.name {
            ConditionName::One(name) => self.matches_field(metadata.get(name)),
            ConditionName::Any(names) => names
                .iter()
                .any(|name| self.matches_field(metadata.get(name))),
        }
    }

    /// A field the record lacks is empty; a list (the heading path) matches when one of its
    /// entries does, for the positive operators.
    fn matches_field(&self, field: Option<&Value>) -> bool {
        let text = match field {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                })
                .collect::<Vec<_>>()
                .join(" > "),
            Some(other) => other.to_string(),
        };
        let number = field.and_then(Value::as_f64);
        let wanted_text = match &self.value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let wanted_list: Vec<String> = match &self.value {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                })
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Number(n)) => vec![n.to_string()],
            _ => Vec::new(),
        };
        let wanted_number = match &self.value {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let compare = |holds: fn(f64, f64) -> bool| match (number, wanted_number) {
            (Some(have), Some(want)) => holds(have, want),
            _ => false,
        };
        match self.comparison_operator.as_str() {
            "contains" => text.contains(&wanted_text),
            "not contains" => !text.contains(&wanted_text),
            "start with" => text.starts_with(&wanted_text),
            "end with" => text.ends_with(&wanted_text),
            "is" => text == wanted_text,
            "is not" => text != wanted_text,
            "in" => wanted_list.contains(&text),
            "not in" => !wanted_list.contains(&text),
            "empty" => text.is_empty(),
            "not empty" => !text.is_empty(),
            "=" => compare(|a, b| a == b),
            "≠" => compare(|a, b| a != b),
            ">" => compare(|a, b| a > b),
            "<" => compare(|a, b| a < b),
            "≥" => compare(|a, b| a >= b),
            "≤" => compare(|a, b| a <= b),
            // The records carry no dates.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Map<String, Value> {
        let passage = v1::Passage {
            chunk_id: "ab".into(),
            text: "Restart the router.".into(),
            citation: Some(v1::Citation {
                knowledge_base: "it-helpdesk".into(),
                document_path: "network/vpn.md".into(),
                title: "VPN".into(),
                heading_path: vec!["VPN".into(), "Windows".into()],
                page: Some(3),
                char_start: 10,
                char_end: 29,
            }),
            scores: Some(v1::Scores {
                dense: Some(1.4),
                ..Default::default()
            }),
        };
        let record = record(passage);
        assert_eq!(record.score, 1.0, "clamped to Dify's 0..1");
        record.metadata
    }

    fn condition(name: &str, operator: &str, value: Value) -> Condition {
        Condition {
            name: ConditionName::One(name.into()),
            comparison_operator: operator.into(),
            value: Some(value),
        }
    }

    #[test]
    fn conditions_compare_text_lists_and_numbers() {
        let metadata = metadata();
        let holds = |name, operator, value| condition(name, operator, value).matches(&metadata);
        assert!(holds("document_path", "start with", json!("network/")));
        assert!(holds("document_path", "end with", json!(".md")));
        assert!(holds("document_path", "contains", json!("vpn")));
        assert!(!holds("document_path", "not contains", json!("vpn")));
        assert!(holds("knowledge_base", "is", json!("it-helpdesk")));
        assert!(holds("knowledge_base", "in", json!(["hr", "it-helpdesk"])));
        assert!(holds("knowledge_base", "not in", json!(["hr"])));
        assert!(holds("section", "is", json!("VPN > Windows")));
        assert!(holds("page", "=", json!(3)));
        assert!(holds("page", "≥", json!("2")));
        assert!(!holds("page", "<", json!(3)));
        assert!(holds("missing", "empty", Value::Null));
        assert!(!holds("document_path", "empty", Value::Null));
        assert!(holds("document_path", "not empty", Value::Null));
        assert!(!holds("page", "before", json!("2024-01-01")));
        let either = MetadataCondition {
            logical_operator: LogicalOperator::Or,
            conditions: vec![
                condition("knowledge_base", "is", json!("hr")),
                condition("page", ">", json!(1)),
            ],
        };
        assert!(either.matches(&metadata));
        let both = MetadataCondition {
            logical_operator: LogicalOperator::And,
            ..either
        };
        assert!(!both.matches(&metadata));
        let unknown = MetadataCondition {
            logical_operator: LogicalOperator::And,
            conditions: vec![condition("page", "like", json!(1))],
        };
        let err = unknown.check().unwrap_err().to_string();
        assert!(err.contains("conditions[0].comparison_operator"), "{err}");
    }
}
