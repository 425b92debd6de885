//! The JSON API: `Search`, `Ask`, the knowledge bases, their ingest status and gaps, each the
//! gRPC method's messages in the protobuf JSON mapping (lowerCamelCase names, enums by name,
//! 64-bit integers as strings, timestamps in RFC 3339), and the OpenAPI document describing it.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lumbung_core::NodeRole;
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_server::AdminService;
use lumbung_proto::v1::knowledge_service_server::KnowledgeService;
use serde::Deserialize;
use tonic::Status;

use super::{Body, Services, error_reply, json_reply, metadata, parse_json};
use crate::Error;

/// The OpenAPI document of this API, checked in beside the protos it follows; a test requests
/// every path it names.
pub(crate) const OPENAPI: &str = include_str!("../../../../api/openapi.json");

pub(super) fn routes(role: NodeRole, services: Services) -> Router {
    let mut router = Router::new().route("/openapi.json", get(openapi));
    if role != NodeRole::Ingest {
        router = router
            .route("/v1/search", post(search))
            .route("/v1/ask", post(ask))
            .route("/v1/knowledge-bases", get(list_knowledge_bases));
    }
    if role != NodeRole::Query {
        router = router
            .route("/v1/knowledge-bases/{knowledge_base}/status", get(status))
            .route("/v1/knowledge-bases/{knowledge_base}/gaps", get(gaps));
    }
    router.with_state(services)
}

async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// The call of a gRPC method with `message` and the HTTP request's headers as metadata.
fn call<M>(headers: &HeaderMap, message: M) -> tonic::Request<M> {
    tonic::Request::from_parts(metadata(headers), Default::default(), message)
}

/// The caller is checked before the body is read, so that a request without a valid token is
/// refused as such whatever it carries.
fn authenticate(services: &Services, headers: &HeaderMap) -> Result<(), Error> {
    services.app.caller(&metadata(headers)).map(drop)
}

fn refuse(err: Error) -> Response {
    error_reply(&Status::from(err))
}

async fn search(State(services): State<Services>, headers: HeaderMap, body: Body) -> Response {
    if let Err(err) = authenticate(&services, &headers) {
        return refuse(err);
    }
    let request: v1::SearchRequest = match parse_json(body) {
        Ok(request) => request,
        Err(err) => return refuse(err),
    };
    json_reply(services.knowledge.search(call(&headers, request)).await)
}

async fn ask(State(services): State<Services>, headers: HeaderMap, body: Body) -> Response {
    if let Err(err) = authenticate(&services, &headers) {
        return refuse(err);
    }
    let request: v1::AskRequest = match parse_json(body) {
        Ok(request) => request,
        Err(err) => return refuse(err),
    };
    json_reply(services.knowledge.ask(call(&headers, request)).await)
}

/// A query string's parameters as `T`, or INVALID_ARGUMENT naming the one that does not fit.
fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, Error> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(value)| value)
        .map_err(|rejection| Error::invalid("query", rejection.body_text()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParameters {
    #[serde(default, alias = "page_size")]
    page_size: u32,
    #[serde(default, alias = "page_token")]
    page_token: String,
}

async fn list_knowledge_bases(
    State(services): State<Services>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parameters: ListParameters = match query(&uri) {
        Ok(parameters) => parameters,
        Err(err) => return refuse(err),
    };
    let request = v1::ListKnowledgeBasesRequest {
        page_size: parameters.page_size,
        page_token: parameters.page_token,
    };
    json_reply(
        services
            .knowledge
            .list_knowledge_bases(call(&headers, request))
            .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusParameters {
    #[serde(default, alias = "include_documents")]
    include_documents: bool,
}

async fn status(
    State(services): State<Services>,
    Path(knowledge_base): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parameters: StatusParameters = match query(&uri) {
        Ok(parameters) => parameters,
        Err(err) => return refuse(err),
    };
    // An empty name would ask for every knowledge base: this path names one.
    if knowledge_base.is_empty() {
        return refuse(Error::invalid("knowledge_base", "must not be empty"));
    }
    let request = v1::GetIngestStatusRequest {
        knowledge_base,
        include_documents: parameters.include_documents,
    };
    json_reply(
        services
            .admin
            .get_ingest_status(call(&headers, request))
            .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GapParameters {
    /// RFC 3339.
    since: Option<String>,
}

async fn gaps(
    State(services): State<Services>,
    Path(knowledge_base): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parameters: GapParameters = match query(&uri) {
        Ok(parameters) => parameters,
        Err(err) => return refuse(err),
    };
    let since = match parameters.since {
        None => None,
        Some(since) => match serde_json::from_value(serde_json::Value::String(since)) {
            Ok(timestamp) => Some(timestamp),
            Err(err) => {
                return refuse(Error::invalid(
                    "since",
                    format!("not an RFC 3339 time ({err})"),
                ));
            }
        },
    };
    let request = v1::ListGapsRequest {
        knowledge_base,
        since,
    };
    json_reply(services.admin.list_gaps(call(&headers, request)).await)
}
