//! The HTTP face of lumbung, on `server.http_listen`: the JSON API (the gRPC methods' messages
//! in the protobuf JSON mapping) with its OpenAPI document, Dify's External Knowledge API, MCP
//! over streamable HTTP, and the content owners' console.
//!
//! Every handler calls the same service methods gRPC does (`KnowledgeApi`, `AdminApi`) with the
//! request's headers as the call's metadata, so that tokens, scopes, limits, admission, request
//! ids and metrics are one implementation whichever face a request comes in by.

mod api;
mod console;
mod dify;
pub(crate) mod mcp;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use lumbung_core::{NodeRole, ServerConfig};
use serde::Serialize;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::admin::AdminApi;
use crate::error::{code_name, http_status, retry_pushback};
use crate::knowledge::KnowledgeApi;
use crate::request::REQUEST_ID;
use crate::{App, Error, Result};

/// The services every HTTP handler calls.
#[derive(Clone)]
pub(crate) struct Services {
    pub app: Arc<App>,
    pub knowledge: Arc<KnowledgeApi>,
    pub admin: Arc<AdminApi>,
}

impl Services {
    pub fn new(app: Arc<App>) -> Services {
        Services {
            knowledge: Arc::new(KnowledgeApi::new(Arc::clone(&app))),
            admin: Arc::new(AdminApi::new(Arc::clone(&app))),
            app,
        }
    }
}

/// Serves the HTTP port on `listener` until `shutdown` completes. What it mounts follows the
/// node's role as gRPC does: a query node answers assistants (JSON search and ask, Dify, MCP);
/// an ingest node serves status, gaps and the console; a single node serves everything.
pub async fn serve_http(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let role = app.config.server.role;
    let max_request_bytes = app.config.server.max_request_bytes;
    let services = Services::new(Arc::clone(&app));
    let mcp_stop = tokio_util::sync::CancellationToken::new();
    let mut router = Router::new().merge(api::routes(role, services.clone()));
    if role != NodeRole::Ingest {
        router = router
            .merge(dify::routes(services.clone()))
            .merge(mcp::routes(services.clone(), mcp_stop.clone()));
    }
    // The console reads status and gaps, which live where ingest runs; its question box
    // answers from the same engine there.
    if role != NodeRole::Query {
        router = router.merge(console::routes(services));
    }
    let mut router = router.layer(DefaultBodyLimit::max(max_request_bytes));
    if app.open_to_local_callers() {
        let hosts: Arc<[String]> = allowed_hosts(&app.config.server).into();
        router = router.layer(middleware::from_fn_with_state(hosts, local_hosts_only));
    }
    tracing::info!(addr = %listener.local_addr()?, "serving HTTP");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Open MCP streams would otherwise hold the graceful shutdown forever.
            mcp_stop.cancel();
        })
        .await;
    served.map_err(Error::Io)
}

/// The `Host` names the port serves without a token: loopback's and `server.http_hosts`
/// (an entry without a port matches any port).
pub(crate) fn allowed_hosts(server: &ServerConfig) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    hosts.extend(server.http_hosts.iter().cloned());
    hosts
}

/// A `Host` header's name and port: `name`, `name:port`, `[v6]:port` or a bare IPv6 address.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[')
        && let Some((name, after)) = rest.split_once(']')
    {
        return (name, after.strip_prefix(':'));
    }
    if host.matches(':').count() > 1 {
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    }
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = split_host(&host);
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        let (allowed_name, allowed_port) = split_host(&entry);
        allowed_name == name && (allowed_port.is_none() || allowed_port == port)
    })
}

/// Mounted without a token file, when the port is the local administrator's, open to whoever
/// reaches it on loopback: a web page whose name an attacker rebinds to 127.0.0.1 reaches it
/// too, with its own name in `Host`, so only loopback's names (and `server.http_hosts`) are
/// served. With tokens a request must carry one, and the name it comes by does not matter.
async fn local_hosts_only(
    State(allowed): State<Arc<[String]>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(host) = request.headers().get(header::HOST) {
        let host = host.to_str().unwrap_or_default();
        if !host_allowed(host, &allowed) {
            return error_reply(&Status::permission_denied(format!(
                "Host {host:?} is not served without a token file: use localhost, or name it \
                 in server.http_hosts"
            )));
        }
    }
    next.run(request).await
}

/// The call's metadata: the HTTP request's headers, `authorization` and `x-request-id`
/// among them.
pub(crate) fn metadata(headers: &HeaderMap) -> MetadataMap {
    MetadataMap::from_headers(headers.clone())
}

/// A gRPC call's message in the JSON mapping, or its status as a JSON error.
pub(crate) fn json_reply<T: Serialize>(
    reply: std::result::Result<tonic::Response<T>, Status>,
) -> Response {
    match reply {
        Ok(response) => {
            let id = response.metadata().get(REQUEST_ID).cloned();
            let mut http = json_response(StatusCode::OK, response.get_ref());
            if let Some(id) = id.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
                http.headers_mut().insert(REQUEST_ID, id);
            }
            http
        }
        Err(status) => error_reply(&status),
    }
}

/// The JSON error body of the API: `{"code": "INVALID_ARGUMENT", "message": …, "requestId": …}`,
/// under the HTTP status `error::http_status` maps the code to, with `Retry-After` when the
/// caller should come back and `WWW-Authenticate` when it should bring a token.
pub(crate) fn error_reply(status: &Status) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody<'a> {
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        request_id: &'a str,
    }
    let request_id = status
        .metadata()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    let http = http_status(status.code());
    let mut response = json_response(
        http,
        &ErrorBody {
            code: code_name(status.code()),
            message: status.message(),
            request_id,
        },
    );
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(request_id)
        && !request_id.is_empty()
    {
        headers.insert(REQUEST_ID, id);
    }
    if let Some(wait) = retry_pushback(status) {
        // Retry-After counts whole seconds; round up so that a client never comes back early.
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
    }
    if status.code() == tonic::Code::Unauthenticated {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lumbung\""),
        );
    }
    response
}

pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "response not serialisable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A request's body as axum reads it: up to `server.max_request_bytes`.
pub(crate) type Body = std::result::Result<Bytes, BytesRejection>;

/// Reads a JSON body into `T`, naming the field that does not fit (`retrievalSetting.topK`);
/// a body over the limit is OUT_OF_RANGE, as an oversized gRPC message is.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(rejection.body_text())
        } else {
            Error::invalid("body", rejection.body_text())
        }
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        // A body that is not JSON at all has no field to name.
        let field = if err.inner().is_syntax() || err.inner().is_eof() || path == "." {
            "body"
        } else {
            path.as_str()
        };
        Error::invalid(field, err.inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|err| Error::invalid("body", err.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_and_by_port_when_one_is_given() {
        let allowed = allowed_hosts(&ServerConfig {
            http_hosts: vec!["kb.example.com".into(), "gateway:9000".into()],
            ..ServerConfig::default()
        });
        for host in [
            "localhost:8080",
            "127.0.0.1",
            "[::1]:8080",
            "LOCALHOST",
            "kb.example.com:80",
            "gateway:9000",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "attacker.example:8080",
            "gateway:9001",
            "localhost.attacker.example",
            "[::2]:8080",
            "",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }
}
