//! Commands that call a running service over gRPC: `search`, `ask`, `status`, `gaps` (and
//! the connection that `kb` and `reindex` share).

use anyhow::Context;
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::{AskArgs, ClientArgs, GapsArgs, SearchArgs, StatusArgs};

/// Sends the caller's token with every request, as `authorization: Bearer <token>`.
#[derive(Clone)]
pub(crate) struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) type Authorized = InterceptedService<Channel, BearerToken>;

pub(crate) async fn knowledge_client(
    args: &ClientArgs,
) -> anyhow::Result<KnowledgeServiceClient<Authorized>> {
    let (channel, token) = connect(args).await?;
    Ok(KnowledgeServiceClient::with_interceptor(channel, token))
}

pub(crate) async fn admin_client(
    args: &ClientArgs,
) -> anyhow::Result<AdminServiceClient<Authorized>> {
    let (channel, token) = connect(args).await?;
    Ok(AdminServiceClient::with_interceptor(channel, token))
}

async fn connect(args: &ClientArgs) -> anyhow::Result<(Channel, BearerToken)> {
    let token = match &args.token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .context("the token must be printable ASCII")?,
        ),
        None => None,
    };
    Ok((channel(args).await?, BearerToken(token)))
}

/// The URL of `addr`, which may also be given as `serve --listen` prints it (`host:port`):
/// without a scheme it is `http://`, or `https://` when a CA is given for TLS.
fn endpoint_url(addr: &str, tls: bool) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

async fn channel(args: &ClientArgs) -> anyhow::Result<Channel> {
    let url = endpoint_url(&args.addr, args.tls_ca.is_some());
    let mut endpoint =
        Channel::from_shared(url.clone()).with_context(|| format!("invalid address {url:?}"))?;
    if url.starts_with("https://") || args.tls_ca.is_some() {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach lumbung at {url} (is `lumbung serve` running?)"))
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let mut client = knowledge_client(&args.client).await?;
    let response = client
        .search(v1::SearchRequest {
            query: args.query,
            knowledge_bases: args.kbs,
            top_k: args.top_k,
            retriever: args.retriever.to_proto().into(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        let passages: Vec<Value> = response.passages.iter().map(passage_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "passages": passages }))?
        );
        return Ok(());
    }
    if response.passages.is_empty() {
        println!("no passages found");
    }
    for (rank, passage) in response.passages.iter().enumerate() {
        let scores = passage.scores.unwrap_or_default();
        println!(
            "{}. {}  (fused {:.4})",
            rank + 1,
            cite(passage.citation.as_ref()),
            scores.fused
        );
        println!("   {}\n", one_line(&passage.text, 300));
    }
    Ok(())
}

pub async fn ask(args: AskArgs) -> anyhow::Result<()> {
    let mut client = knowledge_client(&args.client).await?;
    let response = client
        .ask(v1::AskRequest {
            question: args.question,
            knowledge_bases: args.kbs,
            max_sentences: args.max_sentences,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let answered = response.status() == v1::AnswerStatus::Answered;
    if args.client.json {
        let sentences: Vec<Value> = response
            .sentences
            .iter()
            .map(|s| {
                json!({
                    "text": s.text,
                    "chunk_id": s.chunk_id,
                    "similarity": s.similarity,
                    "citation": s.citation.as_ref().map(citation_json),
                })
            })
            .collect();
        let body = json!({
            "status": if answered { "answered" } else { "no_answer" },
            "confidence": response.confidence,
            "sentences": sentences,
            "no_answer_reason": response.no_answer_reason,
            "hand_off_reason": hand_off_name(response.hand_off_reason()),
            "escalation": response.escalation.as_ref().map(|e| json!({
                "knowledge_base": e.knowledge_base,
                "contact": e.contact,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    if !answered {
        println!(
            "No answer ({}, confidence {:.2}): {}",
            hand_off_name(response.hand_off_reason()),
            response.confidence,
            response.no_answer_reason
        );
        if let Some(escalation) = &response.escalation {
            let contact = match escalation.contact.as_str() {
                "" => "no escalation contact in its kb.toml",
                contact => contact,
            };
            println!("Ask a person: {contact} ({})", escalation.knowledge_base);
        }
        return Ok(());
    }
    println!("Confidence {:.2}", response.confidence);
    for sentence in &response.sentences {
        println!(
            "- {}\n  [{}]",
            sentence.text,
            cite(sentence.citation.as_ref())
        );
    }
    Ok(())
}

fn hand_off_name(reason: v1::HandOffReason) -> &'static str {
    match reason {
        v1::HandOffReason::Unspecified => "",
        v1::HandOffReason::NoMatchingPassage => "no_matching_passage",
        v1::HandOffReason::NotSupported => "not_supported",
        v1::HandOffReason::OutsideKnowledgeBases => "outside_knowledge_bases",
    }
}

pub async fn gaps(args: GapsArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(since) => Some(parse_since(since)?),
        None => None,
    };
    let mut client = admin_client(&args.client).await?;
    let response = client
        .list_gaps(v1::ListGapsRequest {
            knowledge_base: args.kb.clone(),
            since,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        let gaps: Vec<Value> = response
            .gaps
            .iter()
            .map(|gap| {
                json!({
                    "question": gap.question,
                    "count": gap.count,
                    "first_asked": gap.first_asked.map(format_timestamp),
                    "last_asked": gap.last_asked.map(format_timestamp),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "gaps": gaps }))?
        );
        return Ok(());
    }
    if response.gaps.is_empty() {
        println!("{}: no unanswered questions", args.kb);
        return Ok(());
    }
    println!("{:>5}  {:<20}  question", "asked", "last asked");
    for gap in &response.gaps {
        println!(
            "{:>5}  {:<20}  {}",
            gap.count,
            gap.last_asked.map(format_timestamp).unwrap_or_default(),
            gap.question
        );
    }
    Ok(())
}

/// `--since`: a span back from now (`30m`, `12h`, `7d`) or an RFC 3339 time.
fn parse_since(since: &str) -> anyhow::Result<lumbung_proto::Timestamp> {
    let time = match humantime::parse_duration(since) {
        Ok(span) => std::time::SystemTime::now() - span,
        Err(_) => humantime::parse_rfc3339_weak(since).map_err(|err| {
            anyhow::anyhow!(
                "--since {since:?}: neither a span like 7d nor an RFC 3339 time ({err})"
            )
        })?,
    };
    let millis = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i64,
        Err(before) => -(before.duration().as_millis() as i64),
    };
    Ok(lumbung_proto::timestamp_from_unix_millis(millis))
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut client = admin_client(&args.client).await?;
    let response = client
        .get_ingest_status(v1::GetIngestStatusRequest {
            knowledge_base: args.kb.unwrap_or_default(),
            include_documents: args.documents,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        return print_statuses_json(&response);
    }
    println!(
        "{:<24} {:>8} {:>7} {:>8} {:>7} {:>8} {:>8}  last change",
        "knowledge base", "indexed", "queued", "indexing", "failed", "skipped", "chunks"
    );
    for kb in &response.knowledge_bases {
        println!(
            "{:<24} {:>8} {:>7} {:>8} {:>7} {:>8} {:>8}  {}",
            kb.name,
            kb.documents_indexed,
            kb.documents_queued,
            kb.documents_indexing,
            kb.documents_failed,
            kb.documents_skipped,
            kb.chunks,
            kb.last_change
                .map(format_timestamp)
                .unwrap_or_else(|| "-".into())
        );
        if !kb.settings_error.is_empty() {
            println!("    kb.toml ignored: {}", kb.settings_error);
        }
        if !kb.ingest_paused.is_empty() {
            println!("    ingest paused: {}", kb.ingest_paused);
        }
        if !kb.failures.is_empty() {
            let kinds: Vec<String> = kb
                .failures
                .iter()
                .map(|f| format!("{} {}", f.documents, failure_kind_name(f.kind())))
                .collect();
            println!("    not indexed: {}", kinds.join(", "));
        }
        for doc in &kb.documents {
            let state = doc
                .state()
                .as_str_name()
                .trim_start_matches("DOCUMENT_STATE_")
                .to_lowercase();
            let error = match (doc.failure_kind(), doc.error.is_empty()) {
                (_, true) => String::new(),
                (v1::FailureKind::Unspecified, false) => format!(": {}", doc.error),
                (kind, false) => format!(": [{}] {}", failure_kind_name(kind), doc.error),
            };
            println!("    {state:<8} {}{error}", doc.path);
        }
    }
    Ok(())
}

fn cite(citation: Option<&v1::Citation>) -> String {
    let Some(c) = citation else {
        return "(no citation)".to_string();
    };
    let mut out = format!("{}/{}", c.knowledge_base, c.document_path);
    if !c.heading_path.is_empty() {
        out.push_str(&format!(" > {}", c.heading_path.join(" > ")));
    }
    if let Some(page) = c.page {
        out.push_str(&format!(" (page {page})"));
    }
    out
}

pub(crate) fn format_timestamp(t: lumbung_proto::Timestamp) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let cut: String = flat.chars().take(max_chars).collect();
    format!("{cut}…")
}

fn citation_json(c: &v1::Citation) -> Value {
    json!({
        "knowledge_base": c.knowledge_base,
        "document_path": c.document_path,
        "title": c.title,
        "heading_path": c.heading_path,
        "page": c.page,
        "char_start": c.char_start,
        "char_end": c.char_end,
    })
}

fn passage_json(p: &v1::Passage) -> Value {
    let s = p.scores.unwrap_or_default();
    json!({
        "chunk_id": p.chunk_id,
        "text": p.text,
        "citation": p.citation.as_ref().map(citation_json),
        "scores": {
            "fused": s.fused, "bm25": s.bm25, "bm25_rank": s.bm25_rank,
            "bm25_coverage": s.bm25_coverage, "dense": s.dense, "dense_rank": s.dense_rank,
            "best_sentence": s.best_sentence, "rerank": s.rerank,
        },
    })
}

/// `too_large` for `FAILURE_KIND_TOO_LARGE`: the label the metrics use too.
fn failure_kind_name(kind: v1::FailureKind) -> String {
    kind.as_str_name()
        .trim_start_matches("FAILURE_KIND_")
        .to_lowercase()
}

/// `{"knowledge_bases": [...]}` of a status response, pretty-printed.
pub(crate) fn print_statuses_json(response: &v1::GetIngestStatusResponse) -> anyhow::Result<()> {
    let kbs: Vec<Value> = response
        .knowledge_bases
        .iter()
        .map(kb_status_json)
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "knowledge_bases": kbs }))?
    );
    Ok(())
}

pub(crate) fn kb_status_json(kb: &v1::KnowledgeBaseStatus) -> Value {
    let documents: Vec<Value> = kb
        .documents
        .iter()
        .map(|d| {
            json!({
                "path": d.path,
                "state": d.state().as_str_name(),
                "error": d.error,
                "failure_kind": failure_kind_name(d.failure_kind()),
                "chunks": d.chunks,
                "size_bytes": d.size_bytes,
                "content_hash": d.content_hash,
                "indexed_at_seconds": d.indexed_at.map(|t| t.seconds),
            })
        })
        .collect();
    json!({
        "name": kb.name,
        "documents_indexed": kb.documents_indexed,
        "documents_failed": kb.documents_failed,
        "documents_skipped": kb.documents_skipped,
        "documents_queued": kb.documents_queued,
        "documents_indexing": kb.documents_indexing,
        "chunks": kb.chunks,
        "last_change_seconds": kb.last_change.map(|t| t.seconds),
        "settings_error": kb.settings_error,
        "ingest_paused": kb.ingest_paused,
        "readers": kb.readers,
        "failures": kb
            .failures
            .iter()
            .map(|f| (failure_kind_name(f.kind()), Value::from(f.documents)))
            .collect::<serde_json::Map<String, Value>>(),
        "documents": documents,
        "generation": kb.generation,
        "building_generation": kb.building_generation,
        "embedding_model": kb.embedding_model,
        "source_bytes": kb.source_bytes,
        "job": kb.job.as_ref().map(|job| json!({
            "id": job.id,
            "generation": job.generation,
            "state": job.state().as_str_name(),
            "phase": job.phase().as_str_name(),
            "started_seconds": job.started.map(|t| t.seconds),
            "finished_seconds": job.finished.map(|t| t.seconds),
            "documents_total": job.documents_total,
            "documents_done": job.documents_done,
            "documents_failed": job.documents_failed,
            "chunks_written": job.chunks_written,
            "error": job.error,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn an_address_without_a_scheme_is_taken_as_serve_prints_it() {
        assert_eq!(
            endpoint_url("127.0.0.1:50061", false),
            "http://127.0.0.1:50061"
        );
        assert_eq!(
            endpoint_url("kb.example:443", true),
            "https://kb.example:443"
        );
        assert_eq!(
            endpoint_url("http://[::1]:50051", true),
            "http://[::1]:50051"
        );
        assert_eq!(
            endpoint_url("https://kb.example", false),
            "https://kb.example"
        );
    }
}
