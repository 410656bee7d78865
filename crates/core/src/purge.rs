//! Purging the audit log by age and event type (Harbor's `/system/purgeaudit`): at once, or on
//! a schedule that one replica at a time fires (each scheduled second is claimed in the database
//! with a compare-and-set, so a time fires once however many replicas look).

use std::time::Duration;

pub use berth_db::PurgeRunRow;
use berth_db::{Db, DbError};
use berth_jobs::schedule::{self, Cron};

use crate::Refusal;

const SCHEDULE_KEY: &str = "purge_audit_schedule";
const LAST_FIRED_KEY: &str = "purge_audit_last_fired";
/// How far back a replica looks for a missed scheduled time (one down longer skips to now).
const MOST_CATCH_UP_SECONDS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::Refuses for PurgeError {
    fn refusal(&self) -> Refusal {
        match self {
            PurgeError::Invalid(_) => Refusal::Invalid,
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

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "audit_retention_hour": self.retention_hours,
            "include_event_types": self.event_types.join(","),
            "dry_run": self.dry_run,
        })
    }
}

/// A standing schedule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgeSchedule {
    /// `Hourly`, `Daily`, `Weekly` or `Custom`.
    pub kind: String,
    pub cron: String,
    pub parameters: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PurgeSchedule {
    /// The next time it fires after `after` (seconds since the epoch).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        Cron::parse(&self.cron).ok()?.next_after(after)
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

#[derive(Clone)]
pub struct AuditPurge {
    db: Db,
}

impl AuditPurge {
    pub fn new(db: Db) -> AuditPurge {
        AuditPurge { db }
    }

    /// Runs a purge now and records the run (`job_kind`: `MANUAL` or `SCHEDULE`); returns its id.
    pub async fn run(&self, job_kind: &str, params: &PurgeParams) -> Result<i64, PurgeError> {
        let id = self.db.start_purge_run(job_kind, &params.to_json().to_string()).await?;
        let before = crate::time::now_millis() - params.retention_hours * 3_600_000;
        let (status, log) = match self.db.purge_audit_logs(before, Some(&params.event_types), params.dry_run).await {
            Ok(n) if params.dry_run => (
                "Success",
                format!(
                    "dry run: {n} audit records older than {} hours of types [{}] would be purged",
                    params.retention_hours,
                    params.event_types.join(",")
                ),
            ),
            Ok(n) => (
                "Success",
                format!(
                    "{n} audit records older than {} hours of types [{}] purged",
                    params.retention_hours,
                    params.event_types.join(",")
                ),
            ),
            Err(e) => ("Error", format!("purge failed: {e}")),
        };
        tracing::info!(run = id, status, "{log}");
        self.db.finish_purge_run(id, status, &log).await?;
        Ok(id)
    }

    pub async fn run_info(&self, id: i64) -> Result<Option<PurgeRunRow>, PurgeError> {
        Ok(self.db.purge_run(id).await?)
    }

    pub async fn runs(&self, limit: i64, offset: i64) -> Result<(Vec<PurgeRunRow>, i64), PurgeError> {
        Ok(self.db.purge_runs(limit, offset).await?)
    }

    /// Stops a run still going; a run that has ended (or none by that id) is left as it is.
    pub async fn stop(&self, id: i64) -> Result<(), PurgeError> {
        self.db.finish_purge_run(id, "Stopped", "stopped by request").await?;
        Ok(())
    }

    pub async fn schedule(&self) -> Result<Option<PurgeSchedule>, PurgeError> {
        let Some(text) = self.db.setting(SCHEDULE_KEY).await? else { return Ok(None) };
        Ok(serde_json::from_str(&text).ok())
    }

    /// Sets the schedule from Harbor's body (`schedule.type`, `schedule.cron`, `parameters`):
    /// `Manual` runs at once (the run's id is returned), `None` removes the schedule.
    pub async fn set_schedule(&self, body: &serde_json::Value) -> Result<Option<i64>, PurgeError> {
        let kind = body["schedule"]["type"].as_str().unwrap_or_default();
        if kind == "None" {
            self.db.set_setting(SCHEDULE_KEY, "").await?;
            return Ok(None);
        }
        let params = PurgeParams::from_json(&body["parameters"])?;
        if kind == "Manual" {
            return Ok(Some(self.run("MANUAL", &params).await?));
        }
        let cron = cron_of(kind, body["schedule"]["cron"].as_str())?;
        let now = crate::time::now_millis();
        let created_at = self.schedule().await?.map_or(now, |s| s.created_at);
        let schedule =
            PurgeSchedule { kind: kind.to_string(), cron, parameters: params.to_json(), created_at, updated_at: now };
        let text = serde_json::to_string(&schedule).map_err(|e| PurgeError::Invalid(e.to_string()))?;
        // Times before the change are not owed a run.
        self.db.set_setting(LAST_FIRED_KEY, &(now / 1000).to_string()).await?;
        self.db.set_setting(SCHEDULE_KEY, &text).await?;
        Ok(None)
    }

    /// Runs the schedule's purge if a scheduled second has passed since the last fired one and
    /// this replica claims it first. Returns the run's id.
    pub async fn tick(&self, now_secs: i64) -> Result<Option<i64>, PurgeError> {
        let Some(schedule) = self.schedule().await? else { return Ok(None) };
        let Ok(cron) = Cron::parse(&schedule.cron) else { return Ok(None) };
        let last_text = self.db.setting(LAST_FIRED_KEY).await?;
        let last = last_text.as_deref().and_then(|t| t.parse::<i64>().ok()).unwrap_or(now_secs);
        let from = last.max(now_secs - MOST_CATCH_UP_SECONDS) + 1;
        if !cron.fires_within(from, now_secs) {
            return Ok(None);
        }
        if !self.db.compare_and_set_setting(LAST_FIRED_KEY, last_text.as_deref(), &now_secs.to_string()).await? {
            return Ok(None);
        }
        let params = PurgeParams::from_json(&schedule.parameters)?;
        Ok(Some(self.run("SCHEDULE", &params).await?))
    }

    /// Looks at the schedule every `every`, for as long as the process runs.
    pub async fn run_scheduler(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.tick(crate::time::now_millis() / 1000).await {
                tracing::warn!(error = %e, "scheduled audit purge failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_knows_its_next_time() {
        // 2023-11-14T22:13:20Z.
        let t = 1_700_000_000;
        let hourly = PurgeSchedule {
            kind: "Hourly".into(),
            cron: "0 0 * * * *".into(),
            parameters: serde_json::Value::Null,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(hourly.next_after(t), Some(1_700_002_800));
        let every_ten_seconds = PurgeSchedule { cron: "*/10 * * * * *".into(), ..hourly.clone() };
        assert_eq!(every_ten_seconds.next_after(t), Some(1_700_000_010));
        let february_30 = PurgeSchedule { cron: "0 0 0 30 2 *".into(), ..hourly };
        assert_eq!(february_30.next_after(t), None, "a cron that never fires has no next time");
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
