//! The content owners' console: server-rendered pages, no script, on the HTTP port under
//! `/console`. Per knowledge base the owner sees its documents (failed first, with the reason
//! in plain words), its gaps (handed-off questions, most often asked first) and a box that asks
//! a question exactly as an assistant would, through the same `Ask`.
//!
//! A person logs in with a token; it is kept in an HttpOnly, SameSite=Strict cookie and sent
//! with every call as `authorization: Bearer`, so the console sees exactly the knowledge bases
//! the token may read. Without a token file (loopback only) no login is needed, as for gRPC.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lumbung_core::DocumentPath;
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_server::AdminService;
use lumbung_proto::v1::knowledge_service_server::KnowledgeService;
use serde::Deserialize;
use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::Services;
use super::mcp::every_knowledge_base;
use crate::{Error, Result};

const COOKIE: &str = "lumbung_console";

pub(super) fn routes(services: Services) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/kb/{kb}", get(knowledge_base))
        .route("/console/kb/{kb}/document", get(document))
        .with_state(services)
}

/// The calls' metadata of the cookie's token; `None` when there is no valid one (then the
/// login it is).
fn session(services: &Services, headers: &HeaderMap) -> Option<MetadataMap> {
    let mut metadata = MetadataMap::new();
    if let Some(token) = cookie(headers, COOKIE)
        && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
    {
        metadata.insert("authorization", value);
    }
    services.app.caller(&metadata).ok().map(|_| metadata)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn call<M>(metadata: &MetadataMap, message: M) -> tonic::Request<M> {
    tonic::Request::from_parts(metadata.clone(), Default::default(), message)
}

/// HTML-escapes text for an element's content or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto}
main{max-width:72rem;margin:1rem auto;padding:0 1.2rem}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.8rem 1.2rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eceef2;vertical-align:top}
.failed{color:#a31515;font-weight:600}.skipped{color:#8a6100}.indexed{color:#216e39}
.pending{color:#3d5a80}.muted{color:#5f6b7a;font-size:.9em}
.answer{border-left:4px solid #216e39;padding-left:.8rem}
.handoff{border-left:4px solid #a31515;padding-left:.8rem}
input[type=text],input[type=password]{width:60%;padding:.4rem}
button{padding:.4rem .9rem}
mark{background:#fff1a8}
.chunk{border-bottom:1px solid #eceef2;padding:.5rem 0;white-space:pre-wrap}
#cited{background:#fffbe0}
";

fn page(title: &str, logged_in: bool, body: &str) -> Response {
    let logout = if logged_in {
        r#"<form method="post" action="/console/logout"><button type="submit">Log out</button></form>"#
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · lumbung</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/console\">lumbung</a><span>{title}</span>{logout}</header>\
         <main>{body}</main></body></html>",
        title = escape(title),
    ))
    .into_response()
}

/// A failed call's page: its message, under the HTTP status its code maps to.
fn failure_page(status: &Status) -> Response {
    let http = crate::error::http_status(status.code());
    let body = format!(
        "<section><h2>{}</h2><p id=\"error\">{}</p><p><a href=\"/console\">Back</a></p></section>",
        http.canonical_reason().unwrap_or("Error"),
        escape(status.message())
    );
    (http, page("Error", true, &body)).into_response()
}

async fn login_page(State(services): State<Services>) -> Response {
    login_form(&services, None)
}

fn login_form(services: &Services, error: Option<&str>) -> Response {
    if services.app.open_to_local_callers() {
        // No token file: everyone who reaches this loopback port is the local administrator.
        return Redirect::to("/console").into_response();
    }
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"failed\" id=\"error\">{}</p>", escape(e))
    });
    let body = format!(
        "<section><h2>Log in</h2><p>Paste the token your administrator gave you for your \
         knowledge bases.</p>{error}<form method=\"post\" action=\"/console/login\">\
         <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required> \
         <button type=\"submit\" id=\"login\">Log in</button></form></section>"
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    (status, page("Log in", false, &body)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(services): State<Services>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    let mut metadata = MetadataMap::new();
    let valid = MetadataValue::try_from(format!("Bearer {token}"))
        .ok()
        .map(|value| metadata.insert("authorization", value))
        .is_some()
        && !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_graphic())
        && services.app.caller(&metadata).is_ok();
    if !valid {
        return login_form(&services, Some("That token is not valid."));
    }
    // Behind a TLS proxy the cookie must not travel over plain HTTP.
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/console").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("lumbung_console=; Path=/console; HttpOnly; Max-Age=0"),
    );
    response
}

fn kb_link(name: &str) -> String {
    format!("/console/kb/{}", encode(name))
}

async fn home(State(services): State<Services>, headers: HeaderMap) -> Response {
    let Some(metadata) = session(&services, &headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let knowledge_bases = match every_knowledge_base(&*services.knowledge, &metadata).await {
        Ok(knowledge_bases) => knowledge_bases,
        Err(status) => return failure_page(&status),
    };
    let statuses = match services
        .admin
        .get_ingest_status(call(&metadata, v1::GetIngestStatusRequest::default()))
        .await
    {
        Ok(response) => response.into_inner().knowledge_bases,
        Err(status) => return failure_page(&status),
    };
    let mut rows = String::new();
    for kb in &knowledge_bases {
        let status = statuses.iter().find(|s| s.name == kb.name);
        let failed = status.map_or(0, |s| s.documents_failed);
        let pending = status.map_or(0, |s| s.documents_queued + s.documents_indexing);
        let _ = write!(
            rows,
            "<tr><td><a href=\"{link}\">{name}</a><div class=\"muted\">{title}</div></td>\
             <td>{indexed}</td><td class=\"{failed_class}\">{failed}</td><td>{pending}</td>\
             <td>{chunks}</td><td>{paused}</td></tr>",
            link = kb_link(&kb.name),
            name = escape(&kb.name),
            title = escape(&kb.title),
            indexed = kb.documents_indexed,
            failed_class = if failed > 0 { "failed" } else { "" },
            chunks = kb.chunks,
            paused = escape(status.map_or("", |s| s.ingest_paused.as_str())),
        );
    }
    let body = if knowledge_bases.is_empty() {
        "<section><p>Your token reads no knowledge base.</p></section>".to_string()
    } else {
        format!(
            "<section><h2>Knowledge bases</h2><table id=\"knowledge-bases\"><tr><th>Name</th>\
             <th>Indexed</th><th>Failed</th><th>In progress</th><th>Passages</th>\
             <th>Ingest paused</th></tr>{rows}</table></section>"
        )
    };
    page("Knowledge bases", true, &body)
}

#[derive(Deserialize)]
struct AskParameters {
    #[serde(default)]
    question: String,
}

async fn knowledge_base(
    State(services): State<Services>,
    Path(kb): Path<String>,
    Query(parameters): Query<AskParameters>,
    headers: HeaderMap,
) -> Response {
    let Some(metadata) = session(&services, &headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let status = match services
        .admin
        .get_ingest_status(call(
            &metadata,
            v1::GetIngestStatusRequest {
                knowledge_base: kb.clone(),
                include_documents: true,
            },
        ))
        .await
    {
        Ok(response) => response
            .into_inner()
            .knowledge_bases
            .pop()
            .unwrap_or_default(),
        Err(status) => return failure_page(&status),
    };
    let gaps = match services
        .admin
        .list_gaps(call(
            &metadata,
            v1::ListGapsRequest {
                knowledge_base: kb.clone(),
                since: None,
            },
        ))
        .await
    {
        Ok(response) => response.into_inner().gaps,
        Err(status) => return failure_page(&status),
    };
    let about = every_knowledge_base(&*services.knowledge, &metadata)
        .await
        .ok()
        .and_then(|listed| listed.into_iter().find(|k| k.name == kb))
        .unwrap_or_default();
    let question = parameters.question.trim();
    let answer = if question.is_empty() {
        String::new()
    } else {
        let asked = services
            .knowledge
            .ask(call(
                &metadata,
                v1::AskRequest {
                    question: question.to_string(),
                    knowledge_bases: vec![kb.clone()],
                    max_sentences: 3,
                },
            ))
            .await;
        match asked {
            Ok(response) => render_answer(&response.into_inner()),
            Err(status) => format!(
                "<div class=\"handoff\" id=\"answer\"><p>{}</p></div>",
                escape(status.message())
            ),
        }
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<section><h2>{title}</h2><p>{description}</p><p class=\"muted\">{indexed} documents \
         indexed, {failed} failed, {skipped} skipped · {chunks} passages · questions it cannot \
         answer go to: {contact}</p>{settings_error}{paused}</section>",
        title = escape(if about.title.is_empty() {
            &kb
        } else {
            &about.title
        }),
        description = escape(&about.description),
        indexed = status.documents_indexed,
        failed = status.documents_failed,
        skipped = status.documents_skipped,
        chunks = status.chunks,
        contact = escape(if about.escalation.is_empty() {
            "nobody (kb.toml names no escalation)"
        } else {
            &about.escalation
        }),
        settings_error = if status.settings_error.is_empty() {
            String::new()
        } else {
            format!(
                "<p class=\"failed\">kb.toml: {}</p>",
                escape(&status.settings_error)
            )
        },
        paused = if status.ingest_paused.is_empty() {
            String::new()
        } else {
            format!(
                "<p class=\"failed\">New files wait: {}</p>",
                escape(&status.ingest_paused)
            )
        },
    );
    let _ = write!(
        body,
        "<section><h2>Try a question</h2><form method=\"get\" action=\"{link}\">\
         <input type=\"text\" name=\"question\" id=\"question\" value=\"{question}\" \
         placeholder=\"Ask as an assistant would\"> <button type=\"submit\" id=\"ask\">Ask\
         </button></form>{answer}</section>",
        link = kb_link(&kb),
        question = escape(question),
    );
    body.push_str(&render_documents(&kb, &status.documents));
    body.push_str(&render_gaps(&gaps));
    page(&kb, true, &body)
}

fn citation_link(citation: &v1::Citation, from: u32, to: u32) -> String {
    let mut place = citation.title.clone();
    // A document's first heading is usually its title.
    let headings = match citation.heading_path.split_first() {
        Some((first, rest)) if *first == citation.title => rest,
        _ => citation.heading_path.as_slice(),
    };
    for heading in headings {
        place.push_str(" › ");
        place.push_str(heading);
    }
    if let Some(page) = citation.page {
        let _ = write!(place, " (page {page})");
    }
    format!(
        "<a class=\"citation\" href=\"{kb}/document?path={path}&amp;from={from}&amp;to={to}#cited\">\
         {document}</a> <span class=\"muted\">{place}</span>",
        kb = kb_link(&citation.knowledge_base),
        path = encode(&citation.document_path),
        document = escape(&citation.document_path),
        place = escape(&place),
    )
}

fn render_answer(answer: &v1::AskResponse) -> String {
    if answer.status() == v1::AnswerStatus::Answered {
        let mut out = format!(
            "<div class=\"answer\" id=\"answer\"><p><strong>Answered</strong> \
             <span class=\"muted\">confidence {:.2}</span></p><ol>",
            answer.confidence
        );
        for sentence in &answer.sentences {
            let citation = sentence.citation.clone().unwrap_or_default();
            let _ = write!(
                out,
                "<li><p class=\"sentence\">{}</p><p>{}</p></li>",
                escape(&sentence.text),
                citation_link(&citation, citation.char_start, citation.char_end)
            );
        }
        out.push_str("</ol></div>");
        return out;
    }
    let reason = match answer.hand_off_reason() {
        v1::HandOffReason::NoMatchingPassage => "no passage matches the question",
        v1::HandOffReason::NotSupported => {
            "passages match, but none supports an answer confidently enough"
        }
        v1::HandOffReason::OutsideKnowledgeBases => "another knowledge base holds the answer",
        v1::HandOffReason::Unspecified => "no answer",
    };
    let contact = match &answer.escalation {
        Some(escalation) if !escalation.contact.is_empty() => format!(
            "Handed to <strong>{}</strong> (of {}).",
            escape(&escalation.contact),
            escape(&escalation.knowledge_base)
        ),
        Some(escalation) => format!(
            "It belongs to {}, whose kb.toml names no escalation contact.",
            escape(&escalation.knowledge_base)
        ),
        None => String::new(),
    };
    format!(
        "<div class=\"handoff\" id=\"answer\"><p><strong>Handed off</strong>: {reason} \
         <span class=\"muted\">confidence {confidence:.2}</span></p><p>{explanation}</p>\
         <p>{contact}</p></div>",
        confidence = answer.confidence,
        explanation = escape(&answer.no_answer_reason),
    )
}

/// What a content owner can do about a failure, in plain words.
fn failure_in_plain_words(kind: v1::FailureKind) -> &'static str {
    match kind {
        v1::FailureKind::Unsupported => "lumbung does not read this type of file.",
        v1::FailureKind::TooLarge => {
            "The file is too large (size, pages, rows or text): split it into smaller files."
        }
        v1::FailureKind::Corrupt => {
            "The file is damaged or is not really the type its name says: open it, save it \
             again (or export a new copy) and put it back."
        }
        v1::FailureKind::Encrypted => {
            "The file is protected with a password: save a copy without the password."
        }
        v1::FailureKind::Timeout => {
            "Reading the file took too long: split it or save it in a simpler format."
        }
        v1::FailureKind::Empty => {
            "The file holds no text to index (a scan without text, or an empty file)."
        }
        v1::FailureKind::Unreadable => {
            "The file could not be read from the folder: check its permissions."
        }
        v1::FailureKind::Embedding => "The service failed on this file: tell your administrator.",
        v1::FailureKind::Unspecified => "The file could not be indexed.",
    }
}

/// Failed first, then those in progress, skipped, and indexed; by path within each.
fn state_order(state: v1::DocumentState) -> u8 {
    match state {
        v1::DocumentState::Failed => 0,
        v1::DocumentState::Queued | v1::DocumentState::Indexing => 1,
        v1::DocumentState::Skipped => 2,
        v1::DocumentState::Indexed | v1::DocumentState::Unspecified => 3,
    }
}

fn render_documents(kb: &str, documents: &[v1::DocumentStatus]) -> String {
    let mut documents: Vec<&v1::DocumentStatus> = documents.iter().collect();
    documents.sort_by(|a, b| {
        state_order(a.state())
            .cmp(&state_order(b.state()))
            .then(a.path.cmp(&b.path))
    });
    let mut rows = String::new();
    for document in documents {
        let (class, state) = match document.state() {
            v1::DocumentState::Failed => ("failed", "failed"),
            v1::DocumentState::Skipped => ("skipped", "skipped"),
            v1::DocumentState::Queued => ("pending", "waiting"),
            v1::DocumentState::Indexing => ("pending", "being indexed"),
            v1::DocumentState::Indexed | v1::DocumentState::Unspecified => ("indexed", "indexed"),
        };
        let reason = match document.state() {
            v1::DocumentState::Failed | v1::DocumentState::Skipped => format!(
                "<span class=\"reason\">{}</span><div class=\"muted\">{}</div>",
                failure_in_plain_words(document.failure_kind()),
                escape(&document.error)
            ),
            _ => String::new(),
        };
        let path = if document.state() == v1::DocumentState::Indexed {
            format!(
                "<a href=\"{}/document?path={}\">{}</a>",
                kb_link(kb),
                encode(&document.path),
                escape(&document.path)
            )
        } else {
            escape(&document.path)
        };
        let _ = write!(
            rows,
            "<tr class=\"document\"><td>{path}</td><td class=\"{class}\">{state}</td>\
             <td>{reason}</td><td>{chunks}</td></tr>",
            chunks = document.chunks,
        );
    }
    format!(
        "<section><h2>Documents</h2><table id=\"documents\"><tr><th>File</th><th>State</th>\
         <th>Why</th><th>Passages</th></tr>{rows}</table></section>"
    )
}

fn render_gaps(gaps: &[v1::Gap]) -> String {
    if gaps.is_empty() {
        return "<section><h2>Unanswered questions</h2><p>None yet: every question asked was \
                answered.</p></section>"
            .to_string();
    }
    let mut rows = String::new();
    for gap in gaps {
        let last = gap
            .last_asked
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr class=\"gap\"><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
            gap.count,
            escape(&gap.question),
            escape(&last)
        );
    }
    format!(
        "<section><h2>Unanswered questions</h2><p class=\"muted\">Handed off to a person, most \
         often asked first: what to write next.</p><table id=\"gaps\"><tr><th>Asked</th>\
         <th>Question</th><th>Last asked</th></tr>{rows}</table></section>"
    )
}

#[derive(Deserialize)]
struct DocumentParameters {
    path: String,
    /// The cited characters, marked on the page.
    from: Option<u32>,
    to: Option<u32>,
}

async fn document(
    State(services): State<Services>,
    Path(kb): Path<String>,
    Query(parameters): Query<DocumentParameters>,
    headers: HeaderMap,
) -> Response {
    let Some(metadata) = session(&services, &headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let app = std::sync::Arc::clone(&services.app);
    let path = parameters.path.clone();
    #[allow(clippy::disallowed_methods, reason = "on a blocking thread")]
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<lumbung_core::Chunk>> {
        let caller = app.caller(&metadata)?;
        let scope = app.scope(&caller, std::slice::from_ref(&kb), "knowledge_base")?;
        let path =
            DocumentPath::new(path).map_err(|err| Error::invalid("path", err.to_string()))?;
        let ingestor = app.ingestor()?;
        let Some(generation) = scope.generations().first() else {
            return Err(Error::KbNotFound(kb));
        };
        let record = ingestor
            .catalog()
            .get(generation, &path)?
            .ok_or_else(|| Error::invalid("path", format!("{path} is not indexed in {kb}")))?;
        let ids: Vec<_> = record.chunk_ids().collect();
        let mut chunks = ingestor.lexical().get_chunks(&ids)?;
        chunks.sort_by_key(|chunk| chunk.ordinal);
        Ok(chunks)
    });
    let chunks = match read.await {
        Ok(Ok(chunks)) => chunks,
        Ok(Err(err)) => return failure_page(&Status::from(err)),
        Err(err) => return failure_page(&Status::internal(err.to_string())),
    };
    let cited = parameters.from.zip(parameters.to);
    let mut body = format!(
        "<section><h2>{}</h2><p class=\"muted\">The passages lumbung indexed from this file, in \
         order; the cited passage is marked.</p>",
        escape(&parameters.path)
    );
    for chunk in &chunks {
        let range = &chunk.citation.char_range;
        let section = chunk.citation.heading_path.join(" › ");
        let holds_citation = cited.is_some_and(|(from, _)| range.contains(&from));
        let text = match cited.filter(|_| holds_citation) {
            Some((from, to)) => mark(
                &chunk.text,
                from - range.start,
                to.saturating_sub(range.start),
            ),
            None => escape(&chunk.text),
        };
        let _ = write!(
            body,
            "<div class=\"chunk\"{id}><div class=\"muted\">{section}{page}</div>{text}</div>",
            id = if holds_citation { " id=\"cited\"" } else { "" },
            section = escape(&section),
            page = chunk
                .citation
                .page
                .map_or(String::new(), |page| format!(" · page {page}")),
        );
    }
    body.push_str("</section>");
    page(&parameters.path, true, &body)
}

/// The text with the characters `from..to` (counted in characters) in a `<mark>`.
fn mark(text: &str, from: u32, to: u32) -> String {
    let chars: Vec<char> = text.chars().collect();
    let from = (from as usize).min(chars.len());
    let to = (to as usize).clamp(from, chars.len());
    let part = |range: std::ops::Range<usize>| escape(&chars[range].iter().collect::<String>());
    format!(
        "{}<mark>{}</mark>{}",
        part(0..from),
        part(from..to),
        part(to..chars.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_marked_by_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(mark("数据<备份>", 2, 6), "数据<mark>&lt;备份&gt;</mark>");
        assert_eq!(mark("abc", 5, 9), "abc<mark></mark>");
        assert_eq!(encode("a b/ç.md"), "a%20b/%C3%A7.md");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; lumbung_console=lmb_x; z=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("lmb_x"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
