//! The one path every RPC takes before its handler: a request id and a tracing span, the
//! caller's identity, the caller's token limits, the service's admission for requests that
//! compute, and the request's count and latency.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::{App, Caller, Result};

/// The metadata key a client may set to tie its logs to the server's; the server answers with
/// the id it used (the client's, or one it made).
pub const REQUEST_ID: &str = "x-request-id";
/// A client's id longer than this is replaced by one of the server's.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What a request costs the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Reads of what is kept in memory or a few catalog rows, and jobs that run on their own
    /// threads (reindex): not bounded by admission.
    Lookup,
    /// Embeds the query and searches the indexes (Search, Ask, ExplainAnswer): waits for a
    /// turn among `server.max_concurrent_requests`.
    Compute,
}

impl App {
    /// Serves `request` with `handler`, given the caller it is made by.
    pub async fn serve_request<M, T, F, Fut>(
        &self,
        method: &'static str,
        work: Work,
        request: Request<M>,
        handler: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(Caller, M) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let (metadata, _, message) = request.into_parts();
        let id = request_id(&metadata);
        let span = tracing::info_span!(
            "request",
            id = %id,
            method,
            caller = tracing::field::Empty
        );
        let outcome = self
            .metrics
            .observe(method, async {
                let caller = self.caller(&metadata)?;
                tracing::Span::current().record("caller", caller.name.as_str());
                let _in_flight = self.token_gate.enter(&caller.name, caller.limits)?;
                let _turn = match work {
                    Work::Compute => Some(self.admission.admit().await?),
                    Work::Lookup => None,
                };
                handler(caller, message).await
            })
            .instrument(span)
            .await;
        let id = MetadataValue::try_from(id.as_str()).expect("ids are visible ASCII");
        match outcome {
            Ok(body) => {
                let mut response = Response::new(body);
                response.metadata_mut().insert(REQUEST_ID, id);
                Ok(response)
            }
            Err(err) => {
                let mut status = Status::from(err);
                status.metadata_mut().insert(REQUEST_ID, id);
                Err(status)
            }
        }
    }
}

/// The client's `x-request-id` when it is short visible ASCII, else a new one: unique within
/// the process, and unlikely to repeat across restarts.
fn request_id(metadata: &MetadataMap) -> String {
    let given = metadata
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic())
        });
    if let Some(id) = given {
        return id.to_string();
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&started.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&sequence.to_le_bytes());
    hasher.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_id_is_kept_when_sane_and_replaced_otherwise() {
        let mut metadata = MetadataMap::new();
        let made = request_id(&metadata);
        assert_eq!(made.len(), 16);
        assert_ne!(made, request_id(&metadata), "each request gets its own");
        metadata.insert(REQUEST_ID, "assistant-7/42".parse().unwrap());
        assert_eq!(request_id(&metadata), "assistant-7/42");
        metadata.insert(REQUEST_ID, "x".repeat(200).parse().unwrap());
        assert_eq!(request_id(&metadata).len(), 16);
        metadata.insert(REQUEST_ID, "has space".parse().unwrap());
        assert_eq!(request_id(&metadata).len(), 16);
    }
}
