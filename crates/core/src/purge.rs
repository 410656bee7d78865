//! Purging the audit log by age and event type (Harbor's `/system/purgeaudit`): a
//! `PURGE_AUDIT_LOG` job of the job service, queued at once or by its standing schedule (which
//! the job service's scheduler fires once per cluster).

use async_trait::async_trait;
use berth_db::{Db, DbError};
use berth_jobs::schedule;
use berth_jobs::{JobContext, JobError, JobRow, ScheduleRow, Worker};

use crate::Refusal;

/// Harbor's job name.
pub const JOB_KIND: &str = "PURGE_AUDIT_LOG";
/// Attempts a purge gets.
const ATTEMPTS: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::Refuses for PurgeError {
    fn refusal(&self) -> Refusal {
        match self {
            PurgeError::Invalid(_) => Refusal::Invalid,
            PurgeError::NotFound(_) => Refusal::NotFound,
            PurgeError::Db(_) => Refusal::Internal,
        }
    }
}

/// What a run purges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeParams {
    pub retention_hours: i64,
    /// Event types (`create_artifact`, ...); none: nothing is purged, as in Harbor.
    pub event_types: Vec<String>,
    pub dry_run: bool,
}

impl PurgeParams {
    /// From Harbor's parameters: `audit_retention_hour`, `include_event_types` (or the older
    /// `include_operations`: `create,delete,pull`), `dry_run`.
    pub fn from_json(v: &serde_json::Value) -> Result<PurgeParams, PurgeError> {
        let invalid = |m: &str| PurgeError::Invalid(m.to_string());
        let retention_hours = match &v["audit_retention_hour"] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|h| *h >= 0)
        .ok_or_else(|| invalid("audit_retention_hour must be a number of hours, 0 or more"))?;
        let list = |key: &str| -> Vec<String> {
            v[key]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let mut event_types = list("include_event_types");
        for t in &event_types {
            if !crate::audit::EVENT_TYPES.contains(&t.as_str()) {
                return Err(PurgeError::Invalid(format!("include_event_types: unknown event type {t:?}")));
            }
        }
        for op in list("include_operations") {
            let of_op: Vec<String> = crate::audit::EVENT_TYPES
                .iter()
                .filter(|t| t.split('_').next() == Some(op.as_str()))
                .map(|t| (*t).to_string())
                .collect();
            if of_op.is_empty() {
                return Err(PurgeError::Invalid(format!("include_operations: unknown operation {op:?}")));
            }
            event_types.extend(of_op);
        }
        event_types.sort();
        event_types.dedup();
        let dry_run = match &v["dry_run"] {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(s) => s == "true",
            serde_json::Value::Null => false,
            _ => return Err(invalid("dry_run must be true or false")),
        };
        Ok(PurgeParams { retention_hours, event_types, dry_run })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "audit_retention_hour": self.retention_hours,
            "include_event_types": self.event_types.join(","),
            "dry_run": self.dry_run,
        })
    }
}

/// The cron of a standing schedule (Harbor's presets, or `Custom`'s own).
fn cron_of(kind: &str, cron: Option<&str>) -> Result<String, PurgeError> {
    match schedule::cron_of(kind, cron) {
        Ok(Some(cron)) => Ok(cron),
        Ok(None) => Err(PurgeError::Invalid(format!("schedule type {kind:?} has no cron"))),
        Err(e) => Err(PurgeError::Invalid(e.to_string())),
    }
}

/// Purges as Harbor's API asks: runs queued, listed, stopped; the schedule.
#[derive(Clone)]
pub struct AuditPurge {
    db: Db,
}

impl AuditPurge {
    pub fn new(db: Db) -> AuditPurge {
        AuditPurge { db }
    }

    /// Queues a purge now; returns its id.
    pub async fn run_now(&self, params: &PurgeParams) -> Result<i64, PurgeError> {
        Ok(self.db.enqueue_job(JOB_KIND, &params.to_json().to_string(), ATTEMPTS).await?)
    }

    pub async fn run_info(&self, id: i64) -> Result<JobRow, PurgeError> {
        match self.db.job(id).await? {
            Some(job) if job.kind == JOB_KIND => Ok(job),
            _ => Err(PurgeError::NotFound(format!("purge run {id} not found"))),
        }
    }

    /// Runs, newest first, and how many there are.
    pub async fn runs(&self, limit: i64, offset: i64) -> Result<(Vec<JobRow>, i64), PurgeError> {
        Ok(self.db.jobs_of_kind(JOB_KIND, limit, offset).await?)
    }

    /// Stops a run still going; a run that has ended is left as it ended.
    pub async fn stop(&self, id: i64) -> Result<(), PurgeError> {
        self.run_info(id).await?;
        self.db.request_job_stop(id).await?;
        Ok(())
    }

    pub async fn schedule(&self) -> Result<Option<ScheduleRow>, PurgeError> {
        Ok(self.db.job_schedule(JOB_KIND).await?)
    }

    /// Sets the schedule from Harbor's body (`schedule.type`, `schedule.cron`, `parameters`):
    /// `Manual` queues a run at once (its id is returned), `None` removes the schedule.
    pub async fn set_schedule(&self, body: &serde_json::Value) -> Result<Option<i64>, PurgeError> {
        let kind = body["schedule"]["type"].as_str().unwrap_or_default();
        if kind == "None" {
            self.db.delete_job_schedule(JOB_KIND).await?;
            return Ok(None);
        }
        let params = PurgeParams::from_json(&body["parameters"])?;
        if kind == "Manual" {
            return Ok(Some(self.run_now(&params).await?));
        }
        let cron = cron_of(kind, body["schedule"]["cron"].as_str())?;
        self.db.set_job_schedule(JOB_KIND, kind, &cron, &params.to_json().to_string()).await?;
        Ok(None)
    }
}

/// The `PURGE_AUDIT_LOG` job: one statement per purge, so it is safe to run again.
pub struct PurgeAuditWorker {
    db: Db,
}

impl PurgeAuditWorker {
    pub fn new(db: Db) -> PurgeAuditWorker {
        PurgeAuditWorker { db }
    }
}

#[async_trait]
impl Worker for PurgeAuditWorker {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let params = PurgeParams::from_json(&job.parameters).map_err(|e| JobError::Fatal(e.to_string()))?;
        let before = crate::time::now_millis() - params.retention_hours * 3_600_000;
        let types = params.event_types.join(",");
        let n = self.db.purge_audit_logs(before, Some(&params.event_types), params.dry_run).await?;
        let line = if params.dry_run {
            format!(
                "dry run: {n} audit records older than {} hours of types [{types}] would be purged",
                params.retention_hours
            )
        } else {
            format!("{n} audit records older than {} hours of types [{types}] purged", params.retention_hours)
        };
        tracing::info!(job = job.id, "{line}");
        job.log(&line).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_schedules_need_a_cron() {
        assert!(cron_of("Custom", Some("every minute")).is_err());
        assert!(cron_of("Manual", None).is_err(), "not a standing schedule");
        assert_eq!(cron_of("Daily", None).unwrap(), "0 0 0 * * *");
    }

    #[test]
    fn harbor_parameters() {
        let p = PurgeParams::from_json(&serde_json::json!({
            "audit_retention_hour": 168, "include_event_types": "create_artifact, pull_artifact", "dry_run": true
        }))
        .unwrap();
        assert_eq!(
            p,
            PurgeParams {
                retention_hours: 168,
                event_types: vec!["create_artifact".into(), "pull_artifact".into()],
                dry_run: true
            }
        );
        let p =
            PurgeParams::from_json(&serde_json::json!({"audit_retention_hour": "24", "include_operations": "pull"}))
                .unwrap();
        assert_eq!(p.event_types, vec!["pull_artifact".to_string()]);
        assert!(!p.dry_run);
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"audit_retention_hour": -1}),
            serde_json::json!({"audit_retention_hour": 1, "include_event_types": "steal_artifact"}),
            serde_json::json!({"audit_retention_hour": 1, "include_operations": "steal"}),
            serde_json::json!({"audit_retention_hour": 1, "dry_run": 3}),
        ] {
            assert!(PurgeParams::from_json(&bad).is_err(), "{bad}");
        }
    }
}
