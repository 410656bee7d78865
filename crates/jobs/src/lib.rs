//! The job service: every piece of background work (GC, retention, scans, replication,
//! webhooks, audit purges) is a job in the database, run by a [`Worker`] registered for its
//! kind.
//!
//! - A job is claimed by one replica at a time, under a lease its runner renews every third of
//!   the lease; a replica that dies stops renewing, and another takes the job over when the
//!   lease runs out (the job must therefore be safe to run again from the start, or to resume
//!   from what it recorded).
//! - A worker's failure is retried with exponential backoff while attempts remain; a fatal one
//!   ends the job as `Error`.
//! - A stop asked for (`Db::request_job_stop`) reaches the worker at the next renewal, through
//!   [`JobContext::stop_requested`]; a worker that heeds it returns [`JobError::Stopped`].
//!
//! Garage's `Worker` trait is the model; the queue is a table of our own (`berth_db::jobs`),
//! since no crate offers one on both SQLite and PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub mod schedule;
pub mod scheduler;

use async_trait::async_trait;
use berth_db::jobs::{JobOutcome, JobRow, Renewal};
use berth_db::{Db, DbError, now_millis};

/// How a job's run went wrong.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a backend unreachable, a conflict).
    #[error("{0}")]
    Retry(String),
    /// Another attempt would fail the same way.
    #[error("{0}")]
    Fatal(String),
    /// The worker stopped because a stop was asked for.
    #[error("stopped")]
    Stopped,
}

impl From<DbError> for JobError {
    fn from(e: DbError) -> JobError {
        JobError::Retry(e.to_string())
    }
}

/// A kind of background work.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    /// The job kind it runs (Harbor's job names: `GARBAGE_COLLECTION`, `PURGE_AUDIT_LOG`, ...).
    fn kind(&self) -> &'static str;

    /// Runs one job. Called again from the start after a takeover or for a retry.
    async fn run(&self, job: &JobContext) -> Result<(), JobError>;
}

/// What a running job sees of itself.
pub struct JobContext {
    pub id: i64,
    /// The job's parameters (JSON).
    pub parameters: serde_json::Value,
    /// This claim's number, from 1.
    pub attempt: i64,
    /// What an earlier claim recorded with [`JobContext::save_progress`] (`Null` if nothing).
    pub progress: serde_json::Value,
    /// Harbor's trigger of the execution: `MANUAL` or `SCHEDULE`.
    pub trigger: String,
    db: Db,
    owner: String,
    stop: Arc<AtomicBool>,
}

impl JobContext {
    /// Adds a line to the job's log (Harbor's execution log).
    pub async fn log(&self, line: &str) -> Result<(), JobError> {
        let stamped = format!("{} {line}\n", now_millis());
        if self.db.append_job_log(self.id, &self.owner, &stamped).await? {
            Ok(())
        } else {
            // The claim is gone (taken over after a lost lease): nothing more of ours counts.
            Err(JobError::Stopped)
        }
    }

    /// Records how far the job got, for a takeover or a retry to resume from.
    pub async fn save_progress(&self, progress: &serde_json::Value) -> Result<(), JobError> {
        if self.db.save_job_progress(self.id, &self.owner, &progress.to_string()).await? {
            Ok(())
        } else {
            Err(JobError::Stopped)
        }
    }

    /// The database the job works on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether a stop was asked for, or the claim was lost: a long job checks it between steps.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The settings of a [`JobService`].
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often an idle runner looks for work.
    pub poll: Duration,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for JobSettings {
    fn default() -> JobSettings {
        JobSettings {
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// This replica's runner of jobs: the workers it has, and the name it claims under.
pub struct JobService {
    db: Db,
    owner: String,
    workers: HashMap<&'static str, Arc<dyn Worker>>,
    settings: JobSettings,
}

impl JobService {
    pub fn new(db: Db, settings: JobSettings) -> JobService {
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        JobService { db, owner, workers: HashMap::new(), settings }
    }

    /// The name this runner's claims carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn register(&mut self, worker: Arc<dyn Worker>) {
        self.workers.insert(worker.kind(), worker);
    }

    /// Queues a job of `kind` with `parameters`, tried at most `max_attempts` times.
    pub async fn enqueue(&self, kind: &str, parameters: &serde_json::Value, max_attempts: i64) -> Result<i64, DbError> {
        self.db.enqueue_job(kind, &parameters.to_string(), max_attempts).await
    }

    /// Claims one due job of a registered kind and runs it to its end; the job's id, or `None`
    /// when there was nothing to do.
    pub async fn run_one(&self) -> Result<Option<i64>, DbError> {
        let kinds: Vec<&str> = self.workers.keys().copied().collect();
        let lease_ms = self.settings.lease.as_millis() as i64;
        let Some(job) = self.db.claim_job(&self.owner, &kinds, now_millis(), lease_ms).await? else {
            return Ok(None);
        };
        let id = job.id;
        self.run_claimed(job).await?;
        Ok(Some(id))
    }

    async fn run_claimed(&self, job: JobRow) -> Result<(), DbError> {
        let Some(worker) = self.workers.get(job.kind.as_str()).cloned() else { return Ok(()) };
        let stop = Arc::new(AtomicBool::new(job.stop_requested));
        let context = JobContext {
            id: job.id,
            parameters: serde_json::from_str(&job.parameters).unwrap_or(serde_json::Value::Null),
            attempt: job.attempts,
            progress: serde_json::from_str(&job.progress).unwrap_or(serde_json::Value::Null),
            trigger: job.trigger.clone(),
            db: self.db.clone(),
            owner: self.owner.clone(),
            stop: stop.clone(),
        };
        let lost = Arc::new(AtomicBool::new(false));
        // Aborted when this future ends or is dropped: a runner that is gone renews nothing.
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.db.clone(),
            job.id,
            self.owner.clone(),
            self.settings.lease,
            stop,
            lost.clone(),
        )));
        let result = worker.run(&context).await;
        drop(_heartbeat);
        if lost.load(Ordering::Relaxed) {
            tracing::warn!(job = job.id, kind = %job.kind, "the job's lease was lost; another replica has it");
            return Ok(());
        }
        let outcome = match &result {
            Ok(()) => JobOutcome::Success,
            Err(JobError::Stopped) => JobOutcome::Stopped,
            Err(JobError::Fatal(_)) => JobOutcome::Error,
            Err(JobError::Retry(_)) => JobOutcome::Retry { run_after: now_millis() + self.backoff(job.attempts) },
        };
        if let Err(e) = &result {
            let line = format!("{} attempt {} failed: {e}\n", now_millis(), job.attempts);
            self.db.append_job_log(job.id, &self.owner, &line).await?;
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
        }
        self.db.finish_job(job.id, &self.owner, &outcome).await?;
        Ok(())
    }

    /// The delay before retry number `attempt` (ms): doubling from `backoff`, capped.
    fn backoff(&self, attempt: i64) -> i64 {
        let base = self.settings.backoff.as_millis() as i64;
        let cap = self.settings.max_backoff.as_millis() as i64;
        let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(30);
        base.saturating_mul(1i64 << doublings).min(cap)
    }

    /// Runs jobs until the process ends: one at a time on this runner (start several for
    /// concurrency), looking again every `poll` when idle, and at once after a job.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_one().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "the job service could not claim work"),
                }
                tokio::time::sleep(self.settings.poll).await;
            }
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of it; tells the worker of a stop, and notes a lost claim.
async fn heartbeat(db: Db, id: i64, owner: String, lease: Duration, stop: Arc<AtomicBool>, lost: Arc<AtomicBool>) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let until = now_millis() + lease.as_millis() as i64;
        match db.renew_job_lease(id, &owner, until).await {
            Ok(Renewal::Held { stop_requested }) => {
                if stop_requested {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Ok(Renewal::Lost) => {
                lost.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                return;
            }
            // A database that does not answer now may answer at the next beat, within the lease.
            Err(e) => tracing::warn!(job = id, error = %e, "could not renew a job's lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_doubles_up_to_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("b.db")).await.unwrap();
        let settings =
            JobSettings { backoff: Duration::from_secs(5), max_backoff: Duration::from_secs(60), ..Default::default() };
        let s = JobService::new(db, settings);
        let delays: Vec<i64> = (1..=6).map(|a| s.backoff(a)).collect();
        assert_eq!(delays, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
        assert_eq!(s.backoff(i64::MAX), 60_000);
    }
}
