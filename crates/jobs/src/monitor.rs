//! What Harbor's job service dashboard asks of the job service (`/jobservice`, `/schedules`):
//! the replicas' pools and their runners, the queues by kind, stopping a job, pausing a queue
//! or the scheduler, the standing schedules. Answers from the database, so any replica answers
//! for the whole cluster.

use berth_db::job_queues::{PoolRow, QueueRow, RunningJob, SCHEDULER_QUEUE};
use berth_db::jobs::JobRow;
use berth_db::schedules::ScheduleRow;
use berth_db::{Db, DbError, now_millis};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The request names something that cannot be done (an action, a job type).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What to do with a queue's pending jobs (Harbor's `ActionRequest.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Stop every pending job (Harbor: "stop and clean").
    Stop,
    Pause,
    Resume,
}

impl QueueAction {
    pub fn parse(action: &str) -> Result<QueueAction, MonitorError> {
        match action {
            "stop" => Ok(QueueAction::Stop),
            "pause" => Ok(QueueAction::Pause),
            "resume" => Ok(QueueAction::Resume),
            other => Err(MonitorError::Invalid(format!("action must be stop, pause or resume, not {other:?}"))),
        }
    }
}

/// Harbor's job ids are strings; Berth's are numbers, so another string names no job.
fn job_id(id: &str) -> Result<i64, MonitorError> {
    id.parse().map_err(|_| job_not_found(id))
}

fn job_not_found(id: &str) -> MonitorError {
    MonitorError::NotFound(format!("job {id} not found"))
}

/// A runner of a pool, and what it runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerState {
    pub id: String,
    pub pool_id: String,
    pub job: Option<RunningJob>,
}

#[derive(Clone)]
pub struct Monitor {
    db: Db,
    /// A pool silent for longer than this (ms) is gone.
    pool_silence_ms: i64,
}

impl Monitor {
    /// A pool beats every third of the job service's `lease`: silent for a whole lease (three
    /// beats missed), its replica is gone.
    pub fn new(db: Db, lease: std::time::Duration) -> Monitor {
        Monitor { db, pool_silence_ms: (lease.as_millis() as i64).max(1000) }
    }

    /// The pools of the replicas alive now.
    pub async fn pools(&self) -> Result<Vec<PoolRow>, MonitorError> {
        Ok(self.db.job_pools(now_millis() - self.pool_silence_ms).await?)
    }

    /// The runners of pool `pool_id` (`all`: of every pool), each with the job it runs.
    pub async fn runners(&self, pool_id: &str) -> Result<Vec<RunnerState>, MonitorError> {
        let pools: Vec<PoolRow> =
            self.pools().await?.into_iter().filter(|p| pool_id == "all" || p.pool_id == pool_id).collect();
        if pools.is_empty() && pool_id != "all" {
            return Err(MonitorError::NotFound(format!("worker pool {pool_id} not found")));
        }
        let running = self.db.running_jobs().await?;
        let mut out = Vec::new();
        for pool in pools {
            for n in 0..pool.concurrency {
                let id = crate::runner_name(&pool.pool_id, n);
                let job = running.iter().find(|j| j.runner == id).cloned();
                out.push(RunnerState { id, pool_id: pool.pool_id.clone(), job });
            }
        }
        Ok(out)
    }

    /// Asks job `id` to stop (one that has ended stays as it ended).
    pub async fn stop_job(&self, id: &str) -> Result<(), MonitorError> {
        match self.db.request_job_stop(job_id(id)?).await? {
            Some(_) => Ok(()),
            None => Err(job_not_found(id)),
        }
    }

    pub async fn job_log(&self, id: &str) -> Result<String, MonitorError> {
        let job: Option<JobRow> = self.db.job(job_id(id)?).await?;
        job.map(|j| j.log).ok_or_else(|| job_not_found(id))
    }

    /// Every job kind's queue.
    pub async fn queues(&self) -> Result<Vec<QueueRow>, MonitorError> {
        Ok(self.db.job_queues().await?)
    }

    /// Stops, pauses or resumes the pending jobs of `job_type` (`all`: of every kind). The
    /// queue `SCHEDULER` is the scheduler's: pausing it pauses every standing schedule.
    pub async fn queue_action(&self, job_type: &str, action: QueueAction) -> Result<(), MonitorError> {
        if job_type == SCHEDULER_QUEUE {
            return match action {
                QueueAction::Stop => {
                    Err(MonitorError::Invalid("the scheduler's queue can be paused or resumed, not stopped".into()))
                }
                QueueAction::Pause | QueueAction::Resume => {
                    self.db.set_job_queue_paused(Some(SCHEDULER_QUEUE), action == QueueAction::Pause).await?;
                    Ok(())
                }
            };
        }
        let kind = match job_type {
            "all" => None,
            kind if self.queues().await?.iter().any(|q| q.kind == kind) => Some(kind),
            kind => return Err(MonitorError::NotFound(format!("job queue {kind} not found"))),
        };
        match action {
            QueueAction::Stop => self.db.stop_pending_jobs(kind).await?,
            QueueAction::Pause => self.db.set_job_queue_paused(kind, true).await?,
            QueueAction::Resume => self.db.set_job_queue_paused(kind, false).await?,
        };
        Ok(())
    }

    /// Standing schedules by id, a page of them, and how many there are.
    pub async fn schedules(&self, limit: i64, offset: i64) -> Result<(Vec<ScheduleRow>, i64), MonitorError> {
        let all = self.db.job_schedules().await?;
        let total = all.len() as i64;
        let mut all = all;
        all.sort_by_key(|s| s.id);
        let page = all.into_iter().skip(offset.max(0) as usize).take(limit.max(0) as usize).collect();
        Ok((page, total))
    }

    /// Whether the scheduler is paused; Harbor asks it of the job type `all` only.
    pub async fn scheduler_paused(&self, job_type: &str) -> Result<bool, MonitorError> {
        if job_type != "all" {
            return Err(MonitorError::Invalid(format!("job_type can only be 'all', not {job_type:?}")));
        }
        Ok(self.db.job_queue_paused(SCHEDULER_QUEUE).await?)
    }
}
