//! The Model Context Protocol server (the official Rust SDK, `rmcp`): tools `search_knowledge`
//! and `ask_knowledge`, and the knowledge bases as resources (`lumbung://knowledge-bases/<name>`).
//!
//! Served two ways over one handler: streamable HTTP at `/mcp` on the HTTP port, where each
//! request's `Authorization: Bearer` reaches the same service methods gRPC calls; and stdio
//! (`lumbung mcp`) for assistants on a desktop, which calls a running service over gRPC with the
//! token it was started with. [`Knowledge`] is what the handler needs from either.
//!
//! HTTP is stateless (no MCP session is kept between requests, responses are plain JSON): any
//! query node behind a load balancer answers any request, and a revoked token stops working at
//! the next call.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_server::KnowledgeService;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::{Services, error_reply, metadata};
use crate::knowledge::KnowledgeApi;

/// Where the knowledge bases are found as resources.
const RESOURCE_PREFIX: &str = "lumbung://knowledge-bases/";
const SEARCH_TOOL: &str = "search_knowledge";
const ASK_TOOL: &str = "ask_knowledge";
/// `ListKnowledgeBases`' largest page.
const PAGE_SIZE: u32 = 1_000;

/// What the MCP handler asks of lumbung: the knowledge service's calls, made with `metadata`
/// (the caller's token) as gRPC's are.
pub trait Knowledge: Send + Sync + 'static {
    fn search(
        &self,
        metadata: MetadataMap,
        request: v1::SearchRequest,
    ) -> impl Future<Output = Result<v1::SearchResponse, Status>> + Send;
    fn ask(
        &self,
        metadata: MetadataMap,
        request: v1::AskRequest,
    ) -> impl Future<Output = Result<v1::AskResponse, Status>> + Send;
    fn list(
        &self,
        metadata: MetadataMap,
        request: v1::ListKnowledgeBasesRequest,
    ) -> impl Future<Output = Result<v1::ListKnowledgeBasesResponse, Status>> + Send;
}

/// In the service's own process: the gRPC service's methods, called directly.
impl Knowledge for KnowledgeApi {
    async fn search(
        &self,
        metadata: MetadataMap,
        request: v1::SearchRequest,
    ) -> Result<v1::SearchResponse, Status> {
        let call = tonic::Request::from_parts(metadata, Default::default(), request);
        KnowledgeService::search(self, call)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn ask(
        &self,
        metadata: MetadataMap,
        request: v1::AskRequest,
    ) -> Result<v1::AskResponse, Status> {
        let call = tonic::Request::from_parts(metadata, Default::default(), request);
        KnowledgeService::ask(self, call)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn list(
        &self,
        metadata: MetadataMap,
        request: v1::ListKnowledgeBasesRequest,
    ) -> Result<v1::ListKnowledgeBasesResponse, Status> {
        let call = tonic::Request::from_parts(metadata, Default::default(), request);
        KnowledgeService::list_knowledge_bases(self, call)
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Every knowledge base `metadata`'s token reads, page after page: a service holds hundreds,
/// more than one page of `ListKnowledgeBases`.
pub(crate) async fn every_knowledge_base<K: Knowledge>(
    knowledge: &K,
    metadata: &MetadataMap,
) -> Result<Vec<v1::KnowledgeBase>, Status> {
    let mut every = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = v1::ListKnowledgeBasesRequest {
            page_size: PAGE_SIZE,
            page_token,
        };
        let page = knowledge.list(metadata.clone(), request).await?;
        every.extend(page.knowledge_bases);
        if page.next_page_token.is_empty() {
            return Ok(every);
        }
        page_token = page.next_page_token;
    }
}

/// The MCP server over any [`Knowledge`].
pub struct McpServer<K> {
    knowledge: Arc<K>,
}

impl<K> Clone for McpServer<K> {
    fn clone(&self) -> Self {
        McpServer {
            knowledge: Arc::clone(&self.knowledge),
        }
    }
}

impl<K: Knowledge> McpServer<K> {
    pub fn new(knowledge: Arc<K>) -> Self {
        McpServer { knowledge }
    }

    /// The knowledge bases the caller reads, as the resources list them.
    async fn knowledge_bases(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Vec<v1::KnowledgeBase>, ErrorData> {
        every_knowledge_base(&*self.knowledge, &call_metadata(context))
            .await
            .map_err(|status| ErrorData::internal_error(status.message().to_string(), None))
    }
}

/// The caller's token: the HTTP request's headers on the HTTP transport; nothing on stdio,
/// where the gRPC client adds its own.
fn call_metadata(context: &RequestContext<RoleServer>) -> MetadataMap {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .map(|parts| metadata(&parts.headers))
        .unwrap_or_default()
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => unreachable!("tool schemas are objects"),
    }
}

fn tools() -> Vec<Tool> {
    let knowledge_bases = json!({
        "type": "array",
        "items": {"type": "string"},
        "description": "Knowledge-base names to draw from (see the resources); empty or absent \
                        means every knowledge base the token may read."
    });
    vec![
        Tool::new(
            SEARCH_TOOL,
            "Search the company's knowledge bases: ranked passages, each with its document, \
             section and page to cite. Use it to read around a topic; use ask_knowledge for a \
             direct answer.",
            schema(json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "The question or keywords, in \
                              English, Indonesian or Chinese."},
                    "knowledge_bases": knowledge_bases,
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 100,
                              "description": "Passages to return; 10 when absent."}
                },
                "required": ["query"]
            })),
        ),
        Tool::new(
            ASK_TOOL,
            "Answer a question from the company's knowledge bases: the sentences that answer it, \
             each cited, or, when the knowledge bases do not hold the answer, a hand-off with \
             the reason and the contact to route the question to. Never answer beyond what it \
             returns.",
            schema(json!({
                "type": "object",
                "properties": {
                    "question": {"type": "string", "description": "The user's question, in \
                                 English, Indonesian or Chinese."},
                    "knowledge_bases": knowledge_bases,
                    "max_sentences": {"type": "integer", "minimum": 1, "maximum": 10,
                                      "description": "Supporting sentences at most; 3 when \
                                      absent."}
                },
                "required": ["question"]
            })),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArguments {
    query: String,
    #[serde(default)]
    knowledge_bases: Vec<String>,
    #[serde(default)]
    top_k: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArguments {
    question: String,
    #[serde(default)]
    knowledge_bases: Vec<String>,
    #[serde(default)]
    max_sentences: u32,
}

/// A failed call as the tool's result: the model reads it and can correct its arguments.
/// Only an unauthenticated caller fails the request itself.
fn tool_failure(status: Status) -> Result<CallToolResponse, ErrorData> {
    if status.code() == Code::Unauthenticated {
        return Err(ErrorData::invalid_request(
            status.message().to_string(),
            None,
        ));
    }
    let text = format!(
        "{}: {}",
        crate::error::code_name(status.code()),
        status.message()
    );
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
}

fn arguments<T: serde::de::DeserializeOwned>(request: &CallToolRequestParams) -> Result<T, Status> {
    let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
    serde_path_to_error::deserialize(arguments).map_err(|err| {
        let field = err.path().to_string();
        Status::invalid_argument(format!("invalid {field}: {}", err.inner()))
    })
}

/// Where a cited sentence or passage comes from, in words: `vpn-access.md › Error codes (page 2)`.
fn cite(citation: &v1::Citation) -> String {
    let mut place = format!("{}: {}", citation.knowledge_base, citation.document_path);
    if !citation.heading_path.is_empty() {
        place.push_str(" › ");
        place.push_str(&citation.heading_path.join(" › "));
    }
    if let Some(page) = citation.page {
        place.push_str(&format!(" (page {page})"));
    }
    place
}

fn search_result(response: &v1::SearchResponse) -> CallToolResult {
    let mut text = String::new();
    for (rank, passage) in response.passages.iter().enumerate() {
        let citation = passage.citation.clone().unwrap_or_default();
        text.push_str(&format!(
            "[{}] {}\n{}\n\n",
            rank + 1,
            cite(&citation),
            passage.text
        ));
    }
    if text.is_empty() {
        text.push_str("No passage matches.");
    }
    let structured = serde_json::to_value(response).unwrap_or(Value::Null);
    let mut result = CallToolResult::success(vec![ContentBlock::text(text.trim_end())]);
    result.structured_content = Some(structured);
    result
}

fn ask_result(response: &v1::AskResponse) -> CallToolResult {
    let text = if response.status() == v1::AnswerStatus::Answered {
        let mut text = format!("ANSWERED (confidence {:.2}):\n", response.confidence);
        for sentence in &response.sentences {
            let citation = sentence.citation.clone().unwrap_or_default();
            text.push_str(&format!("- {} [{}]\n", sentence.text, cite(&citation)));
        }
        text
    } else {
        let reason = response.hand_off_reason().as_str_name();
        let mut text = format!(
            "NO ANSWER: {} ({reason}, confidence {:.2}). Hand the question to a person",
            response.no_answer_reason, response.confidence
        );
        match &response.escalation {
            Some(escalation) if !escalation.contact.is_empty() => text.push_str(&format!(
                ": {} (for {}).",
                escalation.contact, escalation.knowledge_base
            )),
            Some(escalation) => text.push_str(&format!(
                " responsible for {}; it names no contact.",
                escalation.knowledge_base
            )),
            None => text.push('.'),
        }
        text
    };
    let structured = serde_json::to_value(response).unwrap_or(Value::Null);
    let mut result = CallToolResult::success(vec![ContentBlock::text(text.trim_end())]);
    result.structured_content = Some(structured);
    result
}

impl<K: Knowledge> ServerHandler for McpServer<K> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("lumbung", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "The company's knowledge bases (English, Indonesian, Chinese). Call ask_knowledge \
             for an answer: when it says NO ANSWER, tell the user so and give them the contact \
             it names instead of answering from elsewhere. Cite the document of every sentence \
             you use.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let metadata = call_metadata(&context);
        match request.name.as_ref() {
            SEARCH_TOOL => {
                let arguments: SearchArguments = match arguments(&request) {
                    Ok(arguments) => arguments,
                    Err(status) => return tool_failure(status),
                };
                let search = v1::SearchRequest {
                    query: arguments.query,
                    knowledge_bases: arguments.knowledge_bases,
                    top_k: arguments.top_k,
                    retriever: v1::Retriever::Hybrid.into(),
                };
                match self.knowledge.search(metadata, search).await {
                    Ok(response) => Ok(search_result(&response).into()),
                    Err(status) => tool_failure(status),
                }
            }
            ASK_TOOL => {
                let arguments: AskArguments = match arguments(&request) {
                    Ok(arguments) => arguments,
                    Err(status) => return tool_failure(status),
                };
                let ask = v1::AskRequest {
                    question: arguments.question,
                    knowledge_bases: arguments.knowledge_bases,
                    max_sentences: arguments.max_sentences,
                };
                match self.knowledge.ask(metadata, ask).await {
                    Ok(response) => Ok(ask_result(&response).into()),
                    Err(status) => tool_failure(status),
                }
            }
            other => Err(ErrorData::invalid_params(
                format!("no tool {other:?}: the tools are {SEARCH_TOOL} and {ASK_TOOL}"),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .knowledge_bases(&context)
            .await?
            .iter()
            .map(|kb| {
                let mut resource = Resource::new(format!("{RESOURCE_PREFIX}{}", kb.name), &kb.name)
                    .with_mime_type("application/json");
                if !kb.title.is_empty() {
                    resource = resource.with_title(&kb.title);
                }
                if !kb.description.is_empty() {
                    resource = resource.with_description(&kb.description);
                }
                resource
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let not_found = || {
            ErrorData::resource_not_found(
                format!(
                    "no knowledge base {:?} readable with this token",
                    request.uri
                ),
                None,
            )
        };
        let name = request
            .uri
            .strip_prefix(RESOURCE_PREFIX)
            .ok_or_else(not_found)?;
        let kb = self
            .knowledge_bases(&context)
            .await?
            .into_iter()
            .find(|kb| kb.name == name)
            .ok_or_else(not_found)?;
        let text = serde_json::to_string_pretty(&kb)
            .map_err(|err| ErrorData::internal_error(err.to_string(), None))?;
        let contents =
            ResourceContents::text(text, request.uri.clone()).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// `/mcp`: MCP over streamable HTTP. A request without a valid token is refused with 401 before
/// the protocol reads it.
pub(super) fn routes(services: Services, stop: CancellationToken) -> Router {
    let server = McpServer::new(Arc::clone(&services.knowledge));
    let hosts = super::allowed_hosts(&services.app.config.server);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(services.app.config.server.max_request_bytes)
        .with_cancellation_token(stop);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(services, require_token))
}

async fn require_token(State(services): State<Services>, request: Request, next: Next) -> Response {
    match services.app.caller(&metadata(request.headers())) {
        Ok(_) => next.run(request).await,
        Err(err) => error_reply(&Status::from(err)),
    }
}
