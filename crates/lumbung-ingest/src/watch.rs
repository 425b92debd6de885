//! Following the watched root while serving: file-system events (the `notify` crate) mark a
//! knowledge base as changed, and once it has been quiet for `ingest.settle_ms` it is synced;
//! a full reconcile runs at start and every `ingest.reconcile_interval_seconds` as the safety
//! net for events that were missed (network shares, a full event queue, a watch that could not
//! be set up).
//!
//! Everything funnels into the same idempotent run as `lumbung ingest`: the watcher only
//! decides *when* a knowledge base is compared with its folder, never *what* changed, so a lost,
//! doubled or reordered event can delay a change but never corrupt the indexes.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lumbung_core::KbName;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::scan::is_ignored;
use crate::{Ingestor, Progress, Result, SyncReport};

/// Events waiting for the watcher loop. When they come faster than it takes them, the rest is
/// dropped and a full reconcile is scheduled instead: a burst of files never grows memory.
const EVENT_CAPACITY: usize = 4096;
/// How long changes wait before they are looked at again while the disk is nearly full.
const DISK_RETRY: Duration = Duration::from_secs(10);

/// A knowledge base that never stops changing (a long copy) is still synced this many settle
/// periods after its first change; files still being written are left for the next round.
const MAX_DELAY_IN_SETTLE_PERIODS: u32 = 10;

enum Signal {
    Changed(Vec<PathBuf>),
    Stop,
}

/// The running watcher; dropping it stops it (the run in progress stops after its current
/// documents, and the next start redoes whatever was not recorded).
pub struct Watcher {
    signals: SyncSender<Signal>,
    cancel: Arc<AtomicBool>,
    /// Cleared when the loop ends for any reason but a stop: a panic in a sync, say.
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Kept alive for its events; `None` when `ingest.watch` is off or the watch failed.
    _events: Option<notify::RecommendedWatcher>,
    /// Whose rebuild jobs stop (to be resumed) when the watcher does.
    ingestor: Arc<Ingestor>,
}

impl Watcher {
    /// Starts the loop on a thread of its own: a full reconcile first, then changes as they
    /// come. File-system events are followed when `ingest.watch` is set; if the watch cannot be
    /// set up (for example too few inotify watches), that is logged and the periodic reconcile
    /// carries on alone. Rebuilds that a crash or a shutdown interrupted are resumed, and
    /// stopped again (to be resumed later) when the watcher is dropped.
    pub fn start(ingestor: Arc<Ingestor>) -> Result<Watcher> {
        match ingestor.resume_jobs() {
            Ok(resumed) if !resumed.is_empty() => {
                tracing::info!(jobs = ?resumed, "interrupted rebuilds resumed");
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "could not resume the interrupted rebuilds"),
        }
        let (signals, receiver) = sync_channel(EVENT_CAPACITY);
        let overflow = Arc::new(AtomicBool::new(false));
        let cancel = Arc::new(AtomicBool::new(false));
        let events = if ingestor.config().watch {
            match watch_root(ingestor.root(), signals.clone(), Arc::clone(&overflow)) {
                Ok(events) => Some(events),
                Err(err) => {
                    tracing::warn!(
                        root = %ingestor.root().display(),
                        error = %err,
                        "cannot watch the folders; relying on the periodic reconcile"
                    );
                    None
                }
            }
        } else {
            None
        };
        let config = ingestor.config();
        let settle = Duration::from_millis(config.settle_ms);
        let watch_loop = Loop {
            reconcile_every: Duration::from_secs(config.reconcile_interval_seconds),
            max_delay: settle * MAX_DELAY_IN_SETTLE_PERIODS,
            settle,
            ingestor: Arc::clone(&ingestor),
            receiver,
            overflow,
            cancel: Arc::clone(&cancel),
        };
        let alive = Arc::new(AtomicBool::new(true));
        let thread = {
            let (alive, cancel) = (Arc::clone(&alive), Arc::clone(&cancel));
            let niceness = watch_loop.ingestor.config.niceness;
            std::thread::Builder::new()
                .name("lumbung-watch".to_string())
                .spawn(move || {
                    // Its syncs write the indexes from this thread: they too yield to queries.
                    lumbung_core::lower_current_thread_priority(niceness);
                    run_guarded(&alive, &cancel, move || watch_loop.run())
                })
                .map_err(|err| crate::Error::io(Path::new("<watcher thread>"), err))?
        };
        Ok(Watcher {
            signals,
            cancel,
            alive,
            thread: Some(thread),
            _events: events,
            ingestor,
        })
    }
}

impl Watcher {
    /// Whether the loop still runs: false once it died (the cause is logged). Shared, so that
    /// health checking can follow it.
    pub fn liveness(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.alive)
    }
}

/// Runs the watcher loop; when it ends other than by a stop, by a panic or otherwise, says so
/// in the log with the cause and clears `alive`, so that the service stops reporting itself
/// healthy instead of silently serving an index that no longer follows its folders.
fn run_guarded(alive: &AtomicBool, cancel: &AtomicBool, run: impl FnOnce()) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    if cancel.load(Ordering::Relaxed) && outcome.is_ok() {
        return;
    }
    let cause = match &outcome {
        Ok(()) => "the loop ended".to_string(),
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string()),
    };
    tracing::error!(
        cause,
        "the folder watcher died: changes are no longer ingested"
    );
    alive.store(false, Ordering::SeqCst);
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // A full queue is fine: the loop sees `cancel` after its current step.
        let _ = self.signals.try_send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.ingestor.stop_jobs();
    }
}

fn watch_root(
    root: &Path,
    signals: SyncSender<Signal>,
    overflow: Arc<AtomicBool>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let paths = match event {
            // Reads (ours included: ingest opens every file it indexes) change nothing.
            Ok(event)
                if matches!(event.kind, EventKind::Access(kind)
                    if kind != AccessKind::Close(AccessMode::Write)) =>
            {
                return;
            }
            Ok(event) if !event.need_rescan() => event.paths,
            // The kernel dropped events, or the watch broke: only a full scan is safe.
            Ok(_) | Err(_) => {
                overflow.store(true, Ordering::Relaxed);
                return;
            }
        };
        match signals.try_send(Signal::Changed(paths)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => overflow.store(true, Ordering::Relaxed),
        }
    })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// What an event path means for the loop.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Kb(KbName),
    /// The root itself changed: compare everything.
    All,
    /// A temporary, hidden or lock file, or a folder that is not a knowledge base.
    Nothing,
}

fn target_of(root: &Path, path: &Path) -> Target {
    let Ok(relative) = path.strip_prefix(root) else {
        return Target::All;
    };
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy()),
            _ => return Target::All,
        }
    }
    let Some(first) = parts.first() else {
        return Target::All;
    };
    if parts.iter().any(|part| is_ignored(part)) {
        return Target::Nothing;
    }
    match KbName::new(first.to_string()) {
        Ok(kb) => Target::Kb(kb),
        Err(_) => Target::Nothing,
    }
}

/// When a changed knowledge base became due.
struct Dirty {
    first: Instant,
    last: Instant,
}

impl Dirty {
    fn due_at(&self, settle: Duration, max_delay: Duration) -> Instant {
        (self.last + settle).min(self.first + max_delay)
    }
}

struct Loop {
    ingestor: Arc<Ingestor>,
    receiver: Receiver<Signal>,
    overflow: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
    settle: Duration,
    max_delay: Duration,
    reconcile_every: Duration,
}

impl Loop {
    fn run(self) {
        let mut dirty: HashMap<KbName, Dirty> = HashMap::new();
        let mut reconcile_at = Instant::now();
        while !self.cancel.load(Ordering::Relaxed) {
            let now = Instant::now();
            if self.overflow.swap(false, Ordering::Relaxed) {
                reconcile_at = now;
            }
            if now >= reconcile_at {
                // Whatever was marked is covered by the full run.
                dirty.clear();
                let started = Instant::now();
                match self.ingestor.reconcile_all(&self.cancel, &log_progress) {
                    Ok(report) => {
                        log_report("reconciled every knowledge base", &report, started);
                        if report.deferred > 0 {
                            // Some files were still changing: look again once they settle.
                            let at = self.retry_deferred_at();
                            for kb in self.ingestor.knowledge_bases().unwrap_or_default() {
                                mark(&mut dirty, kb, at);
                            }
                        }
                    }
                    Err(err) => tracing::error!(error = %err, "reconcile failed"),
                }
                reconcile_at = Instant::now() + self.reconcile_every;
                continue;
            }
            let due: Vec<KbName> = dirty
                .iter()
                .filter(|(_, d)| now >= d.due_at(self.settle, self.max_delay))
                .map(|(kb, _)| kb.clone())
                .collect();
            if !due.is_empty() {
                for kb in due {
                    dirty.remove(&kb);
                    self.sync(&kb, &mut dirty);
                }
                continue;
            }
            let next = dirty
                .values()
                .map(|d| d.due_at(self.settle, self.max_delay))
                .min()
                .map_or(reconcile_at, |at| at.min(reconcile_at));
            match self
                .receiver
                .recv_timeout(next.saturating_duration_since(now))
            {
                Ok(Signal::Changed(paths)) => {
                    let now = Instant::now();
                    for path in paths {
                        match target_of(self.ingestor.root(), &path) {
                            Target::Kb(kb) => mark(&mut dirty, kb, now),
                            Target::All => reconcile_at = now,
                            Target::Nothing => {}
                        }
                    }
                }
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// When to look again at deferred files: once they settle, or, while the disk is nearly
    /// full (which defers every change), after [`DISK_RETRY`] instead of every settle period.
    fn retry_deferred_at(&self) -> Instant {
        if self.ingestor.disk_shortage().is_some() {
            Instant::now() + DISK_RETRY
        } else {
            Instant::now()
        }
    }

    fn sync(&self, kb: &KbName, dirty: &mut HashMap<KbName, Dirty>) {
        let started = Instant::now();
        match self.ingestor.reconcile_kb(kb, &self.cancel, &log_progress) {
            Ok(report) => {
                log_report("synced a changed knowledge base", &report, started);
                if report.deferred > 0 {
                    mark(dirty, kb.clone(), self.retry_deferred_at());
                }
            }
            // A folder that appeared and vanished again before it was synced.
            Err(crate::Error::UnknownKb(_)) => {}
            Err(err) => tracing::error!(kb = %kb, error = %err, "sync failed"),
        }
    }
}

fn mark(dirty: &mut HashMap<KbName, Dirty>, kb: KbName, now: Instant) {
    dirty
        .entry(kb)
        .and_modify(|d| d.last = now)
        .or_insert(Dirty {
            first: now,
            last: now,
        });
}

fn log_report(what: &str, report: &SyncReport, started: Instant) {
    let changed = report.indexed + report.failed + report.skipped + report.removed;
    if changed == 0 && report.deferred == 0 {
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{what}: no change"
        );
        return;
    }
    tracing::info!(
        indexed = report.indexed,
        reused_vectors = report.reused_vectors,
        failed = report.failed,
        skipped = report.skipped,
        removed = report.removed,
        deferred = report.deferred,
        chunks = report.chunks_written,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "{what}"
    );
}

/// Logs each document of a run: the service's record of what it did.
pub fn log_progress(progress: &Progress) {
    match progress {
        Progress::Planned {
            kb,
            to_read,
            to_remove,
        } => {
            if to_read + to_remove > 0 {
                tracing::info!(kb = %kb, to_read, to_remove, "sync planned");
            }
        }
        Progress::Document { kb, path, outcome } => {
            tracing::info!(kb = %kb, path = %path, outcome = ?outcome, "document");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_paths_map_to_their_knowledge_base() {
        let root = Path::new("/srv/ingest");
        let kb = |name: &str| Target::Kb(KbName::new(name).unwrap());
        assert_eq!(
            target_of(root, Path::new("/srv/ingest/it/vpn.md")),
            kb("it")
        );
        assert_eq!(
            target_of(root, Path::new("/srv/ingest/it/a/b.pdf")),
            kb("it")
        );
        assert_eq!(target_of(root, Path::new("/srv/ingest/it")), kb("it"));
        assert_eq!(target_of(root, Path::new("/srv/ingest")), Target::All);
        assert_eq!(target_of(root, Path::new("/elsewhere/x")), Target::All);
        for ignored in [
            "/srv/ingest/it/~$report.docx",
            "/srv/ingest/it/.~lock.plan.xlsx#",
            "/srv/ingest/it/.git/index",
            "/srv/ingest/it/upload.part",
            "/srv/ingest/Not A Kb/x.md",
        ] {
            assert_eq!(
                target_of(root, Path::new(ignored)),
                Target::Nothing,
                "{ignored}"
            );
        }
    }

    #[test]
    fn a_busy_knowledge_base_is_still_synced_after_the_longest_delay() {
        let start = Instant::now();
        let settle = Duration::from_millis(100);
        let max_delay = settle * MAX_DELAY_IN_SETTLE_PERIODS;
        let quiet = Dirty {
            first: start,
            last: start,
        };
        assert_eq!(quiet.due_at(settle, max_delay), start + settle);
        let busy = Dirty {
            first: start,
            last: start + Duration::from_secs(5),
        };
        assert_eq!(busy.due_at(settle, max_delay), start + max_delay);
    }

    #[test]
    fn a_dying_loop_clears_liveness_and_a_stop_does_not() {
        let (alive, cancel) = (AtomicBool::new(true), AtomicBool::new(false));
        run_guarded(&alive, &cancel, || panic!("a stage failed"));
        assert!(!alive.load(Ordering::SeqCst));

        let (alive, cancel) = (AtomicBool::new(true), AtomicBool::new(false));
        run_guarded(&alive, &cancel, || {});
        assert!(
            !alive.load(Ordering::SeqCst),
            "ending without a stop is dying too"
        );

        let (alive, cancel) = (AtomicBool::new(true), AtomicBool::new(true));
        run_guarded(&alive, &cancel, || {});
        assert!(alive.load(Ordering::SeqCst), "a stop is not a death");
    }
}
