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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod monitor;
pub mod schedule;
pub mod scheduler;

pub use berth_db::jobs::JobRow;
pub use berth_db::schedules::ScheduleRow;

use async_trait::async_trait;
use berth_db::job_queues::PoolRow;
use berth_db::jobs::{JobOutcome, Renewal, status};
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

    /// Whether its jobs change or remove content (GC, retention): those are refused while
    /// the registry is read-only ([`JobService::refuse_changes_while`]).
    fn changes_content(&self) -> bool {
        false
    }
}

/// Says why content may not change now (Harbor's `read_only`), or `None` when it may.
pub type ChangeGate = Arc<dyn Fn() -> Option<String> + Send + Sync>;

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

/// This replica's pool of job runners: the workers it has, and the pool's name (Harbor's
/// worker pool id). Each runner claims under `<pool id>-<runner number>` (Harbor's worker id).
pub struct JobService {
    db: Db,
    pool_id: String,
    workers: HashMap<&'static str, Arc<dyn Worker>>,
    settings: JobSettings,
    /// The number the next spawned runner takes.
    next_runner: AtomicUsize,
    /// Asked before a job that changes content runs.
    gate: Option<ChangeGate>,
}

impl JobService {
    pub fn new(db: Db, settings: JobSettings) -> JobService {
        let pool_id = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        JobService { db, pool_id, workers: HashMap::new(), settings, next_runner: AtomicUsize::new(0), gate: None }
    }

    /// Ends each job whose worker [`Worker::changes_content`] as `Error`, without running it,
    /// while `gate` gives a reason: a scheduled one runs again at its next firing.
    pub fn refuse_changes_while(&mut self, gate: ChangeGate) {
        self.gate = Some(gate);
    }

    /// The pool's name.
    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// The name runner `n` of this pool claims under.
    pub fn runner_name(&self, n: usize) -> String {
        runner_name(&self.pool_id, n)
    }

    /// The kinds of job this pool runs.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.workers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    pub fn register(&mut self, worker: Arc<dyn Worker>) {
        self.workers.insert(worker.kind(), worker);
    }

    /// Queues a job of `kind` with `parameters`, tried at most `max_attempts` times.
    pub async fn enqueue(&self, kind: &str, parameters: &serde_json::Value, max_attempts: i64) -> Result<i64, DbError> {
        self.db.enqueue_job(kind, &parameters.to_string(), max_attempts).await
    }

    /// Claims one due job of a registered kind as runner 0 and runs it to its end; the job's
    /// id, or `None` when there was nothing to do.
    pub async fn run_one(&self) -> Result<Option<i64>, DbError> {
        self.run_one_as(&self.runner_name(0)).await
    }

    async fn run_one_as(&self, runner: &str) -> Result<Option<i64>, DbError> {
        let kinds = self.kinds();
        let lease_ms = self.settings.lease.as_millis() as i64;
        let Some(job) = self.db.claim_job(runner, &kinds, now_millis(), lease_ms).await? else {
            return Ok(None);
        };
        let id = job.id;
        self.run_claimed(job, runner).await?;
        Ok(Some(id))
    }

    async fn run_claimed(&self, job: JobRow, runner: &str) -> Result<(), DbError> {
        let Some(worker) = self.workers.get(job.kind.as_str()).cloned() else { return Ok(()) };
        let stop = Arc::new(AtomicBool::new(job.stop_requested));
        let context = JobContext {
            id: job.id,
            parameters: serde_json::from_str(&job.parameters).unwrap_or(serde_json::Value::Null),
            attempt: job.attempts,
            progress: serde_json::from_str(&job.progress).unwrap_or(serde_json::Value::Null),
            trigger: job.trigger.clone(),
            db: self.db.clone(),
            owner: runner.to_string(),
            stop: stop.clone(),
        };
        let lost = Arc::new(AtomicBool::new(false));
        // Aborted when this future ends or is dropped: a runner that is gone renews nothing.
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.db.clone(),
            job.id,
            runner.to_string(),
            self.settings.lease,
            stop,
            lost.clone(),
        )));
        let began = Instant::now();
        let refused = match &self.gate {
            Some(gate) if worker.changes_content() => gate(),
            _ => None,
        };
        let result = match refused {
            Some(why) => Err(JobError::Fatal(why)),
            None => worker.run(&context).await,
        };
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
            self.db.append_job_log(job.id, runner, &line).await?;
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
        }
        self.db.finish_job(job.id, runner, &outcome).await?;
        // Harbor's task metrics count each run by how it ended; a failed run that will be
        // retried counts as an error, since it was one.
        let ended = match outcome {
            JobOutcome::Success => status::SUCCESS,
            JobOutcome::Stopped => status::STOPPED,
            JobOutcome::Error | JobOutcome::Retry { .. } => status::ERROR,
        };
        let m = berth_metrics::metrics();
        m.job_tasks.get(&[job.kind.as_str(), ended]).inc();
        m.job_process_time.get(&[job.kind.as_str(), ended]).observe(began.elapsed().as_secs_f64());
        Ok(())
    }

    /// The delay before retry number `attempt` (ms): doubling from `backoff`, capped.
    fn backoff(&self, attempt: i64) -> i64 {
        let base = self.settings.backoff.as_millis() as i64;
        let cap = self.settings.max_backoff.as_millis() as i64;
        let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(30);
        base.saturating_mul(1i64 << doublings).min(cap)
    }

    /// Starts this replica's pool: `runners` runners, the pool's heartbeat (what
    /// `/jobservice/pools` lists), and the queues of its kinds made known.
    pub async fn start(self: Arc<Self>, runners: usize) -> Result<JobPool, DbError> {
        self.db.ensure_job_queues(&self.kinds()).await?;
        let row = PoolRow {
            pool_id: self.pool_id.clone(),
            pid: i64::from(std::process::id()),
            host: host_name(),
            concurrency: runners as i64,
            started_at: now_millis(),
            heartbeat_at: now_millis(),
        };
        self.db.beat_job_pool(&row).await?;
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = (0..runners).map(|_| self.clone().spawn()).collect();
        let (db, every) = (self.db.clone(), self.settings.lease / 3);
        tasks.push(tokio::spawn(async move {
            let mut row = row;
            loop {
                tokio::time::sleep(every).await;
                row.heartbeat_at = now_millis();
                if let Err(e) = db.beat_job_pool(&row).await {
                    tracing::warn!(error = %e, "could not record the job pool's heartbeat");
                }
            }
        }));
        Ok(JobPool { service: self, tasks })
    }

    /// Runs jobs until the process ends as the next runner of this pool: one at a time (spawn
    /// several for concurrency), looking again every `poll` when idle, and at once after a job.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let runner = self.runner_name(self.next_runner.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            loop {
                match self.run_one_as(&runner).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "the job service could not claim work"),
                }
                tokio::time::sleep(self.settings.poll).await;
            }
        })
    }
}

/// The name runner `n` of pool `pool_id` claims under (Harbor's worker id).
pub fn runner_name(pool_id: &str, n: impl std::fmt::Display) -> String {
    format!("{pool_id}-{n}")
}

/// The pool of a runner named by [`runner_name`].
pub fn pool_of(runner: &str) -> &str {
    runner.rsplit_once('-').map_or(runner, |(pool, _)| pool)
}

/// A started pool: its runners and heartbeat, until [`JobPool::stop`].
pub struct JobPool {
    service: Arc<JobService>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl JobPool {
    /// Stops the runners (a job cut off is taken over when its lease ends, and resumes from
    /// what it recorded) and takes the pool off the list.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Err(e) = self.service.db.remove_job_pool(&self.service.pool_id).await {
            tracing::warn!(error = %e, "could not take the job pool off the list");
        }
    }
}

/// This machine's name, for the pool list (Harbor shows the host of each pool).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
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
