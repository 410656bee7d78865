//! Collections as Harbor's API sees them: queued now, scheduled, listed, stopped. What the
//! `/system/gc` handlers ask; the collecting itself is the job's ([`crate::GarbageCollector`]).

use berth_core::{Refusal, Refuses};
pub use berth_db::jobs::JobRow;
pub use berth_db::schedules::ScheduleRow;
use berth_db::{Db, DbError};
use berth_jobs::schedule::cron_of;

use crate::{GcParams, JOB_KIND};

/// Attempts a collection gets (a takeover after its replica died counts as one).
const ATTEMPTS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuses for GcError {
    fn refusal(&self) -> Refusal {
        match self {
            GcError::Invalid(_) => Refusal::Invalid,
            GcError::Conflict(_) => Refusal::Conflict,
            GcError::NotFound(_) => Refusal::NotFound,
            GcError::Db(_) => Refusal::Internal,
        }
    }
}

#[derive(Clone)]
pub struct Collections {
    db: Db,
    /// Hours, for parameters that name none (`gc.time_window_hours`).
    default_window: i64,
}

impl Collections {
    pub fn new(db: Db, default_window: i64) -> Collections {
        Collections { db, default_window }
    }

    /// Executions, newest first, and how many there are.
    pub async fn history(&self, limit: i64, offset: i64) -> Result<(Vec<JobRow>, i64), GcError> {
        Ok(self.db.jobs_of_kind(JOB_KIND, limit, offset).await?)
    }

    pub async fn execution(&self, id: i64) -> Result<JobRow, GcError> {
        match self.db.job(id).await? {
            Some(job) if job.kind == JOB_KIND => Ok(job),
            _ => Err(GcError::NotFound(format!("GC execution {id} not found"))),
        }
    }

    /// Asks a collection to stop (one that has ended stays as it ended).
    pub async fn stop(&self, id: i64) -> Result<(), GcError> {
        self.execution(id).await?;
        self.db.request_job_stop(id).await?;
        Ok(())
    }

    pub async fn schedule(&self) -> Result<Option<ScheduleRow>, GcError> {
        Ok(self.db.job_schedule(JOB_KIND).await?)
    }

    /// Harbor's `Schedule` body: `schedule.type` `Manual` queues a collection now (its id is
    /// returned; refused while another is queued or running), `None` removes the schedule,
    /// `Hourly`, `Daily`, `Weekly` and `Custom` (with its `cron`) set it.
    pub async fn set_schedule(&self, body: &serde_json::Value) -> Result<Option<i64>, GcError> {
        let kind = body["schedule"]["type"].as_str().unwrap_or_default();
        if kind == "None" {
            self.db.delete_job_schedule(JOB_KIND).await?;
            return Ok(None);
        }
        let params = GcParams::from_json(&body["parameters"], self.default_window)
            .map_err(|e| GcError::Invalid(e.to_string()))?;
        if kind == "Manual" {
            return self.run_now(&params).await.map(Some);
        }
        let cron = match cron_of(kind, body["schedule"]["cron"].as_str()) {
            Ok(Some(cron)) => cron,
            Ok(None) => return Err(GcError::Invalid(format!("schedule type {kind:?} has no cron"))),
            Err(e) => return Err(GcError::Invalid(e.to_string())),
        };
        // A firing takes the time window configured on the day it fires, unless one was given.
        let mut parameters = serde_json::to_value(&params).map_err(|e| GcError::Invalid(e.to_string()))?;
        if body["parameters"].get("time_window").is_none()
            && let serde_json::Value::Object(map) = &mut parameters
        {
            map.remove("time_window");
        }
        self.db.set_job_schedule(JOB_KIND, kind, &cron, &parameters.to_string()).await?;
        Ok(None)
    }

    /// Queues a collection now; refused while another is queued or running.
    pub async fn run_now(&self, params: &GcParams) -> Result<i64, GcError> {
        if let Some(running) = self.db.job_in_progress(JOB_KIND).await? {
            return Err(GcError::Conflict(format!(
                "a garbage collection is already queued or running (execution {running})"
            )));
        }
        let parameters = serde_json::to_string(params).map_err(|e| GcError::Invalid(e.to_string()))?;
        Ok(self.db.enqueue_job(JOB_KIND, &parameters, ATTEMPTS).await?)
    }
}
