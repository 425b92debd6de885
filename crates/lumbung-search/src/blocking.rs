use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::{Error, Result};

/// Turns to run, of which at most `max_running` are held at once, with at most `max_waiting`
/// callers waiting for one: past that a caller is refused at once, so that under a burst the
/// callers admitted keep their latency instead of every caller waiting longer. A caller
/// dropped while it waits (its client cancelled, its deadline passed) gives its place back.
#[derive(Clone)]
pub struct BoundedTurns {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Takes a waiting place back when the wait ends, however it ends.
struct WaitingPlace<'a>(&'a AtomicUsize);

impl Drop for WaitingPlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BoundedTurns {
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        BoundedTurns {
            permits: Arc::new(Semaphore::new(max_running.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// Callers waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    /// A turn, held until the permit is dropped; `None` when `max_waiting` callers wait
    /// already.
    pub async fn take(&self) -> Option<OwnedSemaphorePermit> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => return Some(permit),
            Err(TryAcquireError::NoPermits) => {}
            Err(TryAcquireError::Closed) => unreachable!("the semaphore is never closed"),
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let _place = WaitingPlace(&self.waiting);
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        Some(permit.expect("the semaphore is never closed"))
    }
}

/// Runs blocking work (index reads, query embedding) off the async workers, with
/// [`BoundedTurns`]: past its queue, work is refused at once with [`Error::Overloaded`], and a
/// request dropped while it waits never starts its work.
#[derive(Clone)]
pub struct CpuPool {
    turns: BoundedTurns,
}

impl CpuPool {
    pub fn new(max_parallel: usize, max_waiting: usize) -> Self {
        CpuPool {
            turns: BoundedTurns::new(max_parallel, max_waiting),
        }
    }

    /// One permit per available core, plus one so that I/O waits do not idle a core.
    pub fn for_this_machine(max_waiting: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        CpuPool::new(cores + 1, max_waiting)
    }

    /// Tasks waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.turns.waiting()
    }

    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.turns.take().await.ok_or_else(|| {
            Error::Overloaded(format!(
                "{} tasks already wait for the CPU",
                self.turns.max_waiting()
            ))
        })?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| Error::Task(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_than_its_bound() {
        let pool = CpuPool::new(2, 8);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    /// Starts a task that holds `pool`'s only permit until the returned sender sends.
    async fn occupy_every_permit(
        pool: &CpuPool,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().unwrap()).await })
        };
        while pool.turns.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (release, busy)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_frees_its_places() {
        let pool = CpuPool::new(1, 2);
        let (release, busy) = occupy_every_permit(&pool).await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|| ()).await })
            })
            .collect();
        while pool.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|| ()).await;
        assert!(matches!(refused, Err(Error::Overloaded(_))), "{refused:?}");
        assert_eq!(pool.waiting(), 2, "a refused task takes no place");

        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
        assert_eq!(pool.waiting(), 0);

        // A waiter dropped before its turn (its client gone) gives its place back and its
        // work never runs.
        let ran = Arc::new(AtomicUsize::new(0));
        let (release, busy) = occupy_every_permit(&pool).await;
        let cancelled = {
            let (pool, ran) = (pool.clone(), Arc::clone(&ran));
            tokio::spawn(async move { pool.run(move || ran.fetch_add(1, Ordering::SeqCst)).await })
        };
        while pool.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert_eq!(pool.waiting(), 0, "a cancelled waiter gives its place back");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "and its work never ran");
    }
}
