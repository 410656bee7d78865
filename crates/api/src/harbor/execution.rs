//! Harbor's `ExecHistory` (and `GCHistory`, the same shape): a job's execution, or with its
//! `schedule` the standing schedule of a job type. What `/system/gc` and `/system/purgeaudit`
//! answer.

use berth_jobs::schedule::Cron;
use berth_jobs::{JobRow, ScheduleRow};
use serde::Serialize;

use super::ScheduleObj;
use crate::time::rfc3339_millis;

#[derive(Serialize)]
pub(super) struct ExecHistory {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    job_name: &'static str,
    /// `MANUAL` or `SCHEDULE`.
    job_kind: String,
    job_parameters: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleObj>,
    deleted: bool,
    creation_time: String,
    update_time: String,
}

impl ExecHistory {
    /// An execution; `parameters`, the job's parameters as the API shows them (a job may add
    /// its results).
    pub(super) fn of_job(job_name: &'static str, job: &JobRow, parameters: String) -> ExecHistory {
        ExecHistory {
            id: Some(job.id),
            job_name,
            job_kind: job.trigger.clone(),
            job_parameters: parameters,
            job_status: Some(job.status.clone()),
            schedule: None,
            deleted: false,
            creation_time: rfc3339_millis(job.created_at),
            update_time: rfc3339_millis(job.updated_at),
        }
    }

    /// A standing schedule, with the next time it fires.
    pub(super) fn of_schedule(job_name: &'static str, s: &ScheduleRow) -> ExecHistory {
        let next = Cron::parse(&s.cron)
            .ok()
            .and_then(|c| c.next_after(berth_core::time::now_millis() / 1000))
            .map(|t| rfc3339_millis(t * 1000));
        ExecHistory {
            id: None,
            job_name,
            job_kind: "SCHEDULE".into(),
            job_parameters: s.parameters.clone(),
            job_status: None,
            schedule: Some(ScheduleObj { kind: s.cron_type.clone(), cron: s.cron.clone(), next_scheduled_time: next }),
            deleted: false,
            creation_time: rfc3339_millis(s.created_at),
            update_time: rfc3339_millis(s.updated_at),
        }
    }
}

/// What a GET of a job type's schedule answers: the standing schedule, or `{}` without one.
pub(super) fn schedule_body(job_name: &'static str, schedule: Option<&ScheduleRow>) -> super::ApiResult {
    match schedule {
        Some(s) => super::json(ExecHistory::of_schedule(job_name, s)),
        None => super::json(serde_json::json!({})),
    }
}

/// What setting a schedule answers: 201 with the run's location when it ran one now (`Manual`),
/// else 201 to a POST and 200 to a PUT.
pub(super) fn schedule_set(ran: Option<String>, method: &http::Method) -> axum::response::Response {
    use axum::response::IntoResponse;
    match (ran, method == http::Method::POST) {
        (Some(location), _) => super::created(&location),
        (None, true) => (http::StatusCode::CREATED, axum::body::Body::empty()).into_response(),
        (None, false) => http::StatusCode::OK.into_response(),
    }
}
