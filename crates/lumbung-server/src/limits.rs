//! How much each caller, and all callers together, may ask of the service at once.
//!
//! Two gates, both answering RESOURCE_EXHAUSTED at once with a retry hint instead of queueing:
//! - per token, requests in flight and requests per second (a token bucket), so that one
//!   assistant's burst cannot take the service from the others;
//! - for the whole service, the requests that compute (Search, Ask, ExplainAnswer) running at
//!   once, with a short bounded queue. The bound is on whole requests, not on the tasks inside
//!   them: a request admitted runs to its end without waiting again behind later ones, which is
//!   what keeps the latency of admitted requests flat past saturation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lumbung_search::BoundedTurns;
use tokio::sync::OwnedSemaphorePermit;

use crate::{Error, Result};

/// What a token may ask at once; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLimits {
    pub max_concurrent: Option<u32>,
    pub requests_per_second: Option<f64>,
}

impl TokenLimits {
    pub const NONE: TokenLimits = TokenLimits {
        max_concurrent: None,
        requests_per_second: None,
    };
}

/// The retry hint of a full queue: about one request's time on a busy core.
const RETRY_WHEN_BUSY: Duration = Duration::from_millis(50);

/// In-flight counts and token buckets by token name.
#[derive(Default)]
pub struct TokenGate {
    tokens: Mutex<HashMap<String, TokenState>>,
}

struct TokenState {
    in_flight: u32,
    /// Requests that may start now without waiting for the bucket to refill.
    allowance: f64,
    refilled_at: Instant,
}

/// Holds one of a token's in-flight places until dropped.
pub struct TokenPermit {
    gate: Arc<TokenGate>,
    name: String,
}

impl Drop for TokenPermit {
    fn drop(&mut self) {
        let mut tokens = self
            .gate
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = tokens.get_mut(&self.name) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

impl TokenGate {
    /// Lets a request of token `name` in, or says when to try again.
    pub fn enter(self: &Arc<Self>, name: &str, limits: TokenLimits) -> Result<Option<TokenPermit>> {
        if limits == TokenLimits::NONE {
            return Ok(None);
        }
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let state = tokens.entry(name.to_string()).or_insert(TokenState {
            in_flight: 0,
            allowance: limits.requests_per_second.map_or(0.0, burst_of),
            refilled_at: now,
        });
        if let Some(max) = limits.max_concurrent
            && state.in_flight >= max
        {
            return Err(Error::ResourceExhausted {
                reason: format!(
                    "token {name:?} has reached max_concurrent = {max} requests in flight"
                ),
                retry_after: RETRY_WHEN_BUSY,
            });
        }
        if let Some(rate) = limits.requests_per_second {
            let elapsed = now.duration_since(state.refilled_at).as_secs_f64();
            state.allowance = (state.allowance + elapsed * rate).min(burst_of(rate));
            state.refilled_at = now;
            if state.allowance < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - state.allowance) / rate);
                return Err(Error::ResourceExhausted {
                    reason: format!("token {name:?} has reached requests_per_second = {rate}"),
                    retry_after: wait.max(Duration::from_millis(1)),
                });
            }
            state.allowance -= 1.0;
        }
        state.in_flight += 1;
        Ok(Some(TokenPermit {
            gate: Arc::clone(self),
            name: name.to_string(),
        }))
    }
}

/// A token may spend one second's worth of requests at once (at least one).
fn burst_of(rate: f64) -> f64 {
    rate.max(1.0)
}

/// The service-wide bound on requests that compute.
pub struct Admission {
    turns: BoundedTurns,
}

impl Admission {
    /// `max_running` 0 means one per core.
    pub fn new(max_running: usize, max_waiting: usize) -> Admission {
        let max_running = match max_running {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Admission {
            turns: BoundedTurns::new(max_running, max_waiting),
        }
    }

    /// Requests waiting for their turn now.
    pub fn waiting(&self) -> usize {
        self.turns.waiting()
    }

    /// Waits for a turn when fewer than `max_waiting` requests wait already; refuses at once
    /// otherwise.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit> {
        self.turns
            .take()
            .await
            .ok_or_else(|| Error::ResourceExhausted {
                reason: format!(
                    "the service is at capacity ({} requests wait already)",
                    self.turns.max_waiting()
                ),
                retry_after: RETRY_WHEN_BUSY,
            })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests set up files and wait")]
mod tests {
    use super::*;

    fn limits(max_concurrent: Option<u32>, requests_per_second: Option<f64>) -> TokenLimits {
        TokenLimits {
            max_concurrent,
            requests_per_second,
        }
    }

    #[test]
    fn a_token_gets_its_concurrency_and_no_more() {
        let gate = Arc::new(TokenGate::default());
        let two = limits(Some(2), None);
        let first = gate.enter("bot", two).unwrap();
        let second = gate.enter("bot", two).unwrap();
        let refused = gate.enter("bot", two).err().expect("a third is refused");
        assert!(
            refused.to_string().contains("max_concurrent = 2"),
            "{refused}"
        );
        assert!(
            gate.enter("other-bot", two).unwrap().is_some(),
            "tokens are apart"
        );
        drop(first);
        assert!(
            gate.enter("bot", two).is_ok(),
            "a finished request frees its place"
        );
        drop(second);
    }

    #[test]
    fn a_token_bucket_refills_at_its_rate_and_says_when() {
        let gate = Arc::new(TokenGate::default());
        let rate = limits(None, Some(4.0));
        for _ in 0..4 {
            drop(gate.enter("bot", rate).unwrap());
        }
        match gate.enter("bot", rate) {
            Err(Error::ResourceExhausted { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_millis(250), "{retry_after:?}")
            }
            other => panic!("expected a refusal, got {:?}", other.map(|p| p.is_some())),
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            gate.enter("bot", rate).is_ok(),
            "a quarter second refills one"
        );
    }

    #[test]
    fn no_limits_take_no_lock_state() {
        let gate = Arc::new(TokenGate::default());
        assert!(gate.enter("admin", TokenLimits::NONE).unwrap().is_none());
        assert!(gate.tokens.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admission_queues_a_few_then_refuses_at_once() {
        let admission = Arc::new(Admission::new(1, 1));
        let running = admission.admit().await.unwrap();
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.admit().await.map(drop) })
        };
        while admission.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let refused = admission.admit().await;
        assert!(
            matches!(refused, Err(Error::ResourceExhausted { .. })),
            "{:?}",
            refused.map(drop)
        );
        drop(running);
        waiter.await.unwrap().unwrap();
        assert_eq!(admission.waiting(), 0);

        // A waiter whose request is dropped gives its place back.
        let running = admission.admit().await.unwrap();
        let cancelled = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.admit().await.map(drop) })
        };
        while admission.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert_eq!(admission.waiting(), 0);
        drop(running);
    }
}
