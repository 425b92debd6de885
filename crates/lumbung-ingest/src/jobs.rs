//! Rebuilds as background jobs: a new generation of a knowledge base is built from its folder
//! beside the active one, brought up to date with what changed meanwhile, checked against the
//! catalog, and made active in one catalog transaction; the old generation is deleted a little
//! later, once no search can still be reading it.
//!
//! A crash or a `kill -9` at any point leaves a consistent state: before the swap the old
//! generation is active and the new one is recorded as building (the next start resumes it,
//! skipping the documents already recorded); after it the new one is active and the old one is
//! recorded as retired (the next start deletes it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lumbung_core::{KbGeneration, KbName};

use crate::catalog::{JobKind, JobRecord, JobState};
use crate::pipeline::{Outcome, Progress, RunOptions};
use crate::{Error, Ingestor, KbSettings, Result, now_ms};

/// Settle periods a rebuild waits for files still changing before it swaps them in as they
/// are (the watcher's longest wait too).
const MAX_SETTLE_WAITS: u32 = 10;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    /// Reading, embedding and writing the folder into the new generation.
    Building,
    /// Taking in what changed during the build, checking the new generation and making it
    /// active, while syncs of the knowledge base wait.
    Swapping,
    /// The new generation serves; the old one is deleted after `ingest.retire_after_ms`.
    Retiring,
    /// Ended: the record says how.
    Ended,
}

/// A job as status calls show it: its record, with the counts as of now while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub record: JobRecord,
    pub phase: JobPhase,
}

/// What stops a running job.
#[derive(Default)]
struct JobControl {
    /// Stops the build between two documents: set by a cancel and by a shutdown.
    stop: AtomicBool,
    /// Set by a cancel: the stopped build is discarded instead of left to be resumed.
    discard: AtomicBool,
}

pub(crate) struct RunningJob {
    status: Arc<Mutex<JobStatus>>,
    control: Arc<JobControl>,
    handle: Option<JoinHandle<()>>,
}

impl RunningJob {
    fn status(&self) -> MutexGuard<'_, JobStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl JobRecord {
    fn count(&mut self, progress: &Progress) {
        match progress {
            Progress::Planned {
                to_read, to_remove, ..
            } => self.documents_total += (to_read + to_remove) as u64,
            Progress::Document { outcome, .. } => {
                self.documents_done += 1;
                match outcome {
                    Outcome::Indexed { chunks, .. } => self.chunks_written += u64::from(*chunks),
                    Outcome::Failed(_) => self.documents_failed += 1,
                    Outcome::Unchanged | Outcome::Skipped(_) | Outcome::Removed => {}
                }
            }
        }
    }
}

impl Ingestor {
    fn jobs(&self) -> MutexGuard<'_, HashMap<KbName, RunningJob>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a rebuild of `kb` into a new generation on a thread of its own and returns its
    /// record at once. Searches and syncs go on against the active generation meanwhile.
    /// Fails with [`Error::JobRunning`] while another rebuild of `kb` is not finished.
    pub fn start_reindex(self: &Arc<Self>, kb: &KbName) -> Result<JobRecord> {
        if !self.knowledge_bases()?.contains(kb) {
            return Err(Error::UnknownKb(kb.to_string()));
        }
        let mut jobs = self.jobs();
        let generations = self.catalog.generations(kb)?;
        if let Some(building) = generations.building {
            return Err(Error::JobRunning {
                job: JobRecord::id_of(&KbGeneration::new(kb.clone(), building)),
            });
        }
        // The model kb.toml (or ingest.embedding_model) names now: a rebuild is how a
        // knowledge base moves to another model.
        let model = self
            .models
            .for_new_generation(&KbSettings::load(&self.root.join(kb.as_str())))?;
        let generation = generations.last.next();
        let record = JobRecord::new(&KbGeneration::new(kb.clone(), generation), JobKind::Reindex);
        self.catalog.update_generations(
            kb,
            |generations| {
                generations.building = Some(generation);
                generations.last = generation;
                generations.models.insert(generation, model);
                Ok(())
            },
            Some(&record),
        )?;
        self.spawn_job(&mut jobs, record.clone())?;
        Ok(record)
    }

    /// Starts again the rebuilds that a crash or a shutdown interrupted, and deletes the
    /// generations left retired; returns the ids of the jobs resumed.
    pub fn resume_jobs(self: &Arc<Self>) -> Result<Vec<String>> {
        let mut jobs = self.jobs();
        let mut resumed = Vec::new();
        for kb in self.catalog.knowledge_bases()? {
            if jobs.get(&kb).is_some_and(|job| !job.finished()) {
                continue;
            }
            self.collect_retired(&kb)?;
            let Some(generation) = self.catalog.generations(&kb)?.building else {
                continue;
            };
            let record = self.recorded_job(&KbGeneration::new(kb.clone(), generation))?;
            tracing::info!(job = %record.id, "resuming an interrupted rebuild");
            resumed.push(record.id.clone());
            self.spawn_job(&mut jobs, record)?;
        }
        Ok(resumed)
    }

    /// Cancels the rebuild of `kb` and returns its id: a running job stops between two
    /// documents and discards its generation; one interrupted and not resumed is discarded
    /// at once. The active generation serves throughout. Fails with [`Error::NoJob`] when no
    /// rebuild of `kb` is under way (or it has already made its generation active).
    pub fn cancel_reindex(&self, kb: &KbName) -> Result<String> {
        let jobs = self.jobs();
        if let Some(job) = jobs.get(kb)
            && !job.finished()
        {
            let status = job.status();
            if matches!(status.phase, JobPhase::Building | JobPhase::Swapping) {
                job.control.discard.store(true, Ordering::SeqCst);
                job.control.stop.store(true, Ordering::SeqCst);
                return Ok(status.record.id.clone());
            }
            return Err(Error::NoJob(kb.to_string()));
        }
        let Some(generation) = self.catalog.generations(kb)?.building else {
            return Err(Error::NoJob(kb.to_string()));
        };
        let target = KbGeneration::new(kb.clone(), generation);
        let mut record = self.recorded_job(&target)?;
        self.end_build(&target, &mut record, JobState::Cancelled, None)?;
        Ok(record.id)
    }

    /// The job recorded for the build of `target`, or a new record for it (a build started
    /// before jobs were recorded).
    fn recorded_job(&self, target: &KbGeneration) -> Result<JobRecord> {
        Ok(self
            .catalog
            .jobs(target.kb())?
            .into_iter()
            .find(|job| job.generation == target.generation())
            .unwrap_or_else(|| JobRecord::new(target, JobKind::Reindex)))
    }

    /// The rebuild of `kb` running in this process, or else the last one recorded.
    pub fn job_status(&self, kb: &KbName) -> Result<Option<JobStatus>> {
        if let Some(job) = self.jobs().get(kb) {
            return Ok(Some(job.status().clone()));
        }
        Ok(self
            .catalog
            .jobs(kb)?
            .into_iter()
            .next()
            .map(|record| JobStatus {
                phase: match record.state {
                    JobState::Running => JobPhase::Building,
                    JobState::Succeeded | JobState::Failed | JobState::Cancelled => JobPhase::Ended,
                },
                record,
            }))
    }

    /// Stops every rebuild between two documents and waits for their threads; they are
    /// resumed at the next start ([`Ingestor::resume_jobs`]). For a clean shutdown.
    pub fn stop_jobs(&self) {
        let handles: Vec<JoinHandle<()>> = self
            .jobs()
            .values_mut()
            .filter_map(|job| {
                job.control.stop.store(true, Ordering::SeqCst);
                job.handle.take()
            })
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// Stops the rebuild of `kb` running in this process (discarding its generation or
    /// leaving it to be resumed), waits for its thread and forgets it.
    pub(crate) fn stop_job(&self, kb: &KbName, discard: bool) {
        let job = self.jobs().remove(kb);
        if let Some(mut job) = job {
            job.control.discard.store(discard, Ordering::SeqCst);
            job.control.stop.store(true, Ordering::SeqCst);
            if let Some(handle) = job.handle.take() {
                let _ = handle.join();
            }
        }
    }

    /// Waits until the rebuild of `kb` running in this process has ended (tests and tools).
    pub fn wait_for_job(&self, kb: &KbName) {
        let handle = self.jobs().get_mut(kb).and_then(|job| job.handle.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn spawn_job(
        self: &Arc<Self>,
        jobs: &mut HashMap<KbName, RunningJob>,
        record: JobRecord,
    ) -> Result<()> {
        let kb = record.kb.clone();
        let target = KbGeneration::new(kb.clone(), record.generation);
        let status = Arc::new(Mutex::new(JobStatus {
            record,
            phase: JobPhase::Building,
        }));
        let control = Arc::new(JobControl::default());
        let handle = {
            let (ingestor, status, control) =
                (Arc::clone(self), Arc::clone(&status), Arc::clone(&control));
            std::thread::Builder::new()
                .name("lumbung-rebuild".to_string())
                .spawn(move || {
                    // It writes the indexes from this thread: it too yields to queries.
                    lumbung_core::lower_current_thread_priority(ingestor.config.niceness);
                    ingestor.run_job(&target, &status, &control)
                })
                .map_err(|err| Error::io(std::path::Path::new("rebuild thread"), err))?
        };
        jobs.insert(
            kb,
            RunningJob {
                status,
                control,
                handle: Some(handle),
            },
        );
        Ok(())
    }

    fn run_job(&self, target: &KbGeneration, status: &Mutex<JobStatus>, control: &JobControl) {
        let lock = || status.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = self.build(target, status, control);
        let mut record = lock().record.clone();
        let ended = match outcome {
            Ok(true) => Ok(()),
            // A shutdown: the generation stays building, to be resumed at the next start.
            Ok(false) if !control.discard.load(Ordering::SeqCst) => {
                tracing::info!(job = %record.id, "rebuild stopped; it resumes at the next start");
                Ok(())
            }
            Ok(false) => {
                tracing::info!(job = %record.id, "rebuild cancelled");
                self.end_build(target, &mut record, JobState::Cancelled, None)
            }
            Err(err) => {
                tracing::error!(job = %record.id, error = %err, "rebuild failed; the active generation still serves");
                self.end_build(target, &mut record, JobState::Failed, Some(err.to_string()))
            }
        };
        if let Err(err) = ended {
            tracing::error!(job = %record.id, error = %err, "could not record the end of a rebuild");
        }
        let mut status = lock();
        status.record = record;
        status.phase = JobPhase::Ended;
    }

    /// Builds `target`, swaps it in and deletes the old generation. `Ok(false)` when stopped
    /// before the swap.
    fn build(
        &self,
        target: &KbGeneration,
        status: &Mutex<JobStatus>,
        control: &JobControl,
    ) -> Result<bool> {
        let kb = target.kb();
        let status_now = || status.lock().unwrap_or_else(PoisonError::into_inner);
        let progress = |event: &Progress| status_now().record.count(event);
        let options = RunOptions {
            force: false,
            settle_ms: self.config.settle_ms,
            cancel: Some(&control.stop),
        };
        let stopped = || control.stop.load(Ordering::SeqCst);
        self.run_generation(target, options, &progress)?;
        if stopped() {
            return Ok(false);
        }
        {
            let lock = self.sync_lock(kb);
            let _sync = lock.lock().unwrap_or_else(PoisonError::into_inner);
            status_now().phase = JobPhase::Swapping;
            // What changed in the folder while the build ran: syncs wrote it into the active
            // generation only. None can run now, and the next one writes the new generation.
            self.catch_up(target, options, &progress, &stopped)?;
            if stopped() {
                return Ok(false);
            }
            let problems = self.verify_generation(target)?;
            if !problems.is_empty() {
                return Err(Error::BuildCheck {
                    generation: target.to_string(),
                    problems: problems.join("; "),
                });
            }
            let mut record = {
                // Decided under the status lock that a cancel takes too: either the cancel
                // comes first and the build is discarded, or it finds the job retiring and
                // answers that it is too late.
                let mut status = status_now();
                if stopped() {
                    return Ok(false);
                }
                status.phase = JobPhase::Retiring;
                status.record.clone()
            };
            record.state = JobState::Succeeded;
            record.finished_at_ms = Some(now_ms());
            let generation = target.generation();
            self.catalog.update_generations(
                kb,
                |generations| {
                    if generations.building != Some(generation) {
                        return Err(Error::NoJob(kb.to_string()));
                    }
                    generations.retired.push(generations.active);
                    generations.active = generation;
                    generations.building = None;
                    Ok(())
                },
                Some(&record),
            )?;
            status_now().record = record;
            // The swap is committed: a failure from here on does not undo it.
            if let Err(err) = self.refresh_registry(Some(kb)) {
                tracing::error!(kb = %kb, error = %err, "registry not refreshed after a swap");
            }
        }
        tracing::info!(kb = %kb, generation = %target.generation(), "rebuilt generation active");
        let grace = Duration::from_millis(self.config.retire_after_ms);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if stopped() {
                // Deleted at the next start instead.
                return Ok(true);
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        // The swap is done whatever happens here: what is not deleted now is at the next
        // start.
        if let Err(err) = self.collect_retired(kb) {
            tracing::warn!(kb = %kb, error = %err, "could not delete the retired generation yet");
        }
        Ok(true)
    }

    /// Brings `target` in step with the folder before it is swapped in. Files still changing
    /// are waited for (a settle period at a time, as many as the watcher waits at most), then
    /// taken as they are: the generation swapped in must hold every document of the folder,
    /// where a sync could leave a changing file for later because the old version still
    /// answers.
    fn catch_up(
        &self,
        target: &KbGeneration,
        options: RunOptions<'_>,
        progress: &(dyn Fn(&Progress) + Sync),
        stopped: &dyn Fn() -> bool,
    ) -> Result<()> {
        let mut report = self.run_generation(target, options, progress)?;
        let mut waits = 0;
        while report.deferred > 0 && waits < MAX_SETTLE_WAITS && !stopped() {
            std::thread::sleep(Duration::from_millis(self.config.settle_ms));
            waits += 1;
            report = self.run_generation(target, options, progress)?;
        }
        if report.deferred > 0 && !stopped() {
            let now = RunOptions {
                settle_ms: 0,
                ..options
            };
            self.run_generation(target, now, progress)?;
        }
        Ok(())
    }

    /// Gives up the generation `target` is building: it is retired (and its chunks and rows
    /// deleted) and the job recorded as `state`, in one transaction with the first.
    fn end_build(
        &self,
        target: &KbGeneration,
        record: &mut JobRecord,
        state: JobState,
        error: Option<String>,
    ) -> Result<()> {
        record.state = state;
        record.error = error;
        record.finished_at_ms = Some(now_ms());
        let generation = target.generation();
        self.catalog.update_generations(
            target.kb(),
            |generations| {
                if generations.building == Some(generation) {
                    generations.building = None;
                    generations.retired.push(generation);
                }
                Ok(())
            },
            Some(record),
        )?;
        self.collect_retired(target.kb())
    }

    /// Deletes the chunks and then the rows of the generations of `kb` that no longer serve,
    /// and forgets them. Idempotent: a crash half-way leaves them retired, to be deleted again.
    pub(crate) fn collect_retired(&self, kb: &KbName) -> Result<()> {
        let recorded = self.catalog.generations(kb)?;
        let retired = recorded.retired.clone();
        if retired.is_empty() {
            return Ok(());
        }
        for generation in &retired {
            let target = KbGeneration::new(kb.clone(), *generation);
            self.lexical.delete_generation(&target)?;
            // Each model's store holds only its own generations, but one recorded before models
            // were may be in any.
            match recorded.model(*generation) {
                Some(model) => self.models.get(model)?.vectors.delete_generation(&target)?,
                None => {
                    for model in self.models.all() {
                        model.vectors.delete_generation(&target)?;
                    }
                }
            }
        }
        self.lexical.commit()?;
        for model in self.models.all() {
            model.vectors.flush()?;
        }
        for generation in &retired {
            self.catalog
                .remove_generation(&KbGeneration::new(kb.clone(), *generation))?;
        }
        self.catalog.update_generations(
            kb,
            |current| {
                current.retired.retain(|g| !retired.contains(g));
                current.models.retain(|g, _| !retired.contains(g));
                Ok(())
            },
            None,
        )?;
        tracing::info!(kb = %kb, generations = ?retired, "retired generations deleted");
        Ok(())
    }
}
