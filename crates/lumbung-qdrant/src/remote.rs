//! Calls to Qdrant from blocking code, with retries on transient failures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qdrant_client::{Qdrant, QdrantError};
use tokio::runtime::Runtime;
use tonic::Code;

use crate::{Error, Result};

/// The first wait after a transient failure; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(2);

/// A connection to a Qdrant server or cluster, shared by the stores opened on it.
#[derive(Clone)]
pub struct Connection {
    remote: Arc<Remote>,
}

impl Connection {
    /// A client of `config.url` (no call is made until a store is opened).
    pub fn new(config: &lumbung_core::VectorStoreConfig) -> Result<Connection> {
        let remote = Remote::connect(
            &config.url,
            &config.api_key,
            Duration::from_millis(config.timeout_ms),
        )?;
        Ok(Connection {
            remote: Arc::new(remote),
        })
    }

    pub(crate) fn remote(&self) -> Arc<Remote> {
        Arc::clone(&self.remote)
    }

    /// Whether the collection `name` exists, retried for `budget`.
    pub fn collection_exists(&self, name: &str, budget: Duration) -> Result<bool> {
        let name = name.to_string();
        self.remote
            .call("collection exists", budget, move |client| {
                let name = name.clone();
                async move { client.collection_exists(name).await }
            })
    }
}

/// The Qdrant client and the runtime its connections live on.
///
/// The `VectorStore` trait is blocking and is called from threads of every kind (a search's CPU
/// pool, ingest's writer, a CLI without a runtime), so each call runs as a task on a runtime of
/// the client's own and the calling thread waits for its result: no caller needs a runtime, and
/// none can deadlock one by blocking a worker of it.
pub(crate) struct Remote {
    client: Arc<Qdrant>,
    runtime: ClientRuntime,
    url: String,
}

impl Remote {
    fn connect(url: &str, api_key: &str, timeout: Duration) -> Result<Remote> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("qdrant-client")
            .enable_all()
            .build()?;
        let api_key = Some(api_key).filter(|key| !key.is_empty());
        // The compatibility check would block on a runtime of its own at build time and print to
        // stdout; versions are not checked, the calls lumbung makes exist since Qdrant 1.10.
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(timeout)
            .connect_timeout(timeout)
            .skip_compatibility_check()
            .build()
            .map_err(|err| Error::Client(err.to_string()))?;
        Ok(Remote {
            client: Arc::new(client),
            runtime: ClientRuntime(Some(runtime)),
            url: url.to_string(),
        })
    }

    /// Runs `call` until it succeeds, fails for good, or `budget` has passed since the first
    /// attempt; transient failures (Qdrant unreachable, overloaded, a timeout) are retried
    /// with exponential backoff. Every call lumbung makes is idempotent (upserts by id,
    /// deletes by filter, reads), so a retry after a timeout that did apply cannot double
    /// anything.
    pub(crate) fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        budget: Duration,
        call: F,
    ) -> Result<T>
    where
        F: Fn(Arc<Qdrant>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, QdrantError>> + Send + 'static,
        T: Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let url = self.url.clone();
        let (reply, result) = std::sync::mpsc::sync_channel(1);
        self.runtime.handle().spawn(async move {
            let outcome = retry(operation, &url, budget, || call(Arc::clone(&client))).await;
            // The caller waits on the other end until this is sent.
            let _ = reply.send(outcome);
        });
        result
            .recv()
            .map_err(|_| Error::Client(format!("{operation}: the client runtime stopped")))?
    }
}

impl Remote {
    /// The points of `collection` that `filter` keeps (all without one).
    pub(crate) fn count(
        &self,
        operation: &'static str,
        collection: &str,
        filter: Option<qdrant_client::qdrant::Filter>,
        exact: bool,
        budget: Duration,
    ) -> Result<u64> {
        let request = qdrant_client::qdrant::CountPoints {
            collection_name: collection.to_string(),
            filter,
            exact: Some(exact),
            ..Default::default()
        };
        let response = self.call(operation, budget, move |client| {
            let request = request.clone();
            async move { client.count(request).await }
        })?;
        Ok(response.result.map_or(0, |result| result.count))
    }

    /// Deletes the points of `collection` that `filter` keeps, waiting until Qdrant applied it.
    pub(crate) fn delete_where(
        &self,
        operation: &'static str,
        collection: &str,
        filter: qdrant_client::qdrant::Filter,
        ordering: qdrant_client::qdrant::WriteOrdering,
        budget: Duration,
    ) -> Result<()> {
        use qdrant_client::qdrant::{DeletePoints, PointsSelector, points_selector};
        let request = DeletePoints {
            collection_name: collection.to_string(),
            wait: Some(true),
            points: Some(PointsSelector {
                points_selector_one_of: Some(points_selector::PointsSelectorOneOf::Filter(filter)),
            }),
            ordering: Some(ordering),
            ..DeletePoints::default()
        };
        self.call(operation, budget, move |client| {
            let request = request.clone();
            async move { client.delete_points(request).await }
        })?;
        Ok(())
    }
}

async fn retry<T, Fut>(
    operation: &'static str,
    url: &str,
    budget: Duration,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T, QdrantError>>,
{
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let err = match attempt().await {
            Ok(value) => {
                if attempts > 1 {
                    tracing::info!(operation, attempts, url, "Qdrant reachable again");
                }
                return Ok(value);
            }
            Err(err) => err,
        };
        let Some(pushback) = transient(&err) else {
            return Err(match err {
                QdrantError::ResponseError { status } => Error::Refused { operation, status },
                other => Error::Client(format!("{operation}: {other}")),
            });
        };
        let pause = pushback.unwrap_or(wait);
        if started.elapsed() + pause > budget {
            return Err(Error::Unreachable {
                url: url.to_string(),
                operation,
                attempts,
                elapsed_ms: started.elapsed().as_millis() as u64,
                last: err.to_string(),
            });
        }
        if attempts == 1 {
            tracing::warn!(operation, url, error = %err, "Qdrant call failed; retrying");
        }
        tokio::time::sleep(pause).await;
        wait = (wait * 2).min(MAX_WAIT);
    }
}

/// Whether a failure may pass by itself, and how long Qdrant asked to wait if it said.
///
/// qdrant-client reports a server it could not connect to at first as INTERNAL "Failed to
/// connect to ..." and one lost later as UNAVAILABLE; its own timeout is CANCELLED.
fn transient(err: &QdrantError) -> Option<Option<Duration>> {
    match err {
        QdrantError::ResourceExhaustedError {
            retry_after_seconds,
            ..
        } => Some(Some(Duration::from_secs(*retry_after_seconds))),
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unknown => Some(None),
            Code::Internal if status.message().starts_with("Failed to connect") => Some(None),
            _ => None,
        },
        _ => None,
    }
}

/// A runtime that may be dropped anywhere: dropping a tokio runtime from inside another one's
/// async context panics, and the store can be dropped by a server's tasks.
struct ClientRuntime(Option<Runtime>);

impl ClientRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is taken only on drop"),
        }
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_retrying_cannot_mend_are_not_retried() {
        let status = |code, message: &str| QdrantError::ResponseError {
            status: tonic::Status::new(code, message),
        };
        assert!(transient(&status(Code::Unavailable, "connection refused")).is_some());
        assert!(transient(&status(Code::Internal, "Failed to connect to http://x")).is_some());
        assert!(transient(&status(Code::Internal, "segment corrupted")).is_none());
        assert!(transient(&status(Code::InvalidArgument, "wrong dimension")).is_none());
        assert!(transient(&status(Code::NotFound, "no collection")).is_none());
    }
}
