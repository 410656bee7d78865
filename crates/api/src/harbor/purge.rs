//! Harbor's audit-log purge: `/system/purgeaudit` (runs, their logs, stopping one) and its
//! schedule. System administrators only.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::purge::{AuditPurge, PurgeRunRow, PurgeSchedule};
use http::{Method, StatusCode, header};
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, HarborError, Query, ScheduleObj, created, json, paged, paging};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/system/purgeaudit", get(list_runs))
        .route("/api/v2.0/system/purgeaudit/schedule", get(get_schedule).post(set_schedule).put(set_schedule))
        .route("/api/v2.0/system/purgeaudit/{purge_id}", get(get_run).put(stop_run))
        .route("/api/v2.0/system/purgeaudit/{purge_id}/log", get(run_log))
}

impl From<berth_core::purge::PurgeError> for HarborError {
    fn from(e: berth_core::purge::PurgeError) -> Self {
        HarborError::refused(&e)
    }
}

fn admin(api: &HarborApi, caller: &Caller) -> Result<AuditPurge, HarborError> {
    caller.sysadmin("purge the audit log")?;
    Ok(AuditPurge::new(api.registry.db().clone()))
}

fn run_id(id: &str) -> Result<i64, HarborError> {
    id.parse().map_err(|_| HarborError::bad_request(format!("purge_id {id:?} is not a number")))
}

/// Harbor's `ExecHistory`: a run, or (with its `schedule`) the schedule.
#[derive(Serialize)]
struct ExecHistory {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    job_name: &'static str,
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

fn run_json(r: &PurgeRunRow) -> ExecHistory {
    ExecHistory {
        id: Some(r.id),
        job_name: "PURGE_AUDIT_LOG",
        job_kind: r.job_kind.clone(),
        job_parameters: r.parameters.clone(),
        job_status: Some(r.status.clone()),
        schedule: None,
        deleted: false,
        creation_time: rfc3339_millis(r.created_at),
        update_time: rfc3339_millis(r.updated_at),
    }
}

fn schedule_json(s: &PurgeSchedule) -> ExecHistory {
    let next = s.next_after(berth_core::time::now_millis() / 1000).map(|t| rfc3339_millis(t * 1000));
    ExecHistory {
        id: None,
        job_name: "PURGE_AUDIT_LOG",
        job_kind: "SCHEDULE".into(),
        job_parameters: s.parameters.to_string(),
        job_status: None,
        schedule: Some(ScheduleObj { kind: s.kind.clone(), cron: s.cron.clone(), next_scheduled_time: next }),
        deleted: false,
        creation_time: rfc3339_millis(s.created_at),
        update_time: rfc3339_millis(s.updated_at),
    }
}

async fn list_runs(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let purge = admin(&api, &caller)?;
    let (page, size) = paging(&q)?;
    let (runs, total) = purge.runs(size, (page - 1) * size).await?;
    let body: Vec<ExecHistory> = runs.iter().map(run_json).collect();
    Ok(paged(json(body)?, "/api/v2.0/system/purgeaudit", &q, page, size, total))
}

async fn found(purge: &AuditPurge, id: &str) -> Result<PurgeRunRow, HarborError> {
    purge
        .run_info(run_id(id)?)
        .await?
        .ok_or_else(|| HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("purge run {id} not found")))
}

async fn get_run(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    json(run_json(&found(&purge, &id).await?))
}

async fn run_log(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    let run = found(&purge, &id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", run.log)).into_response())
}

async fn stop_run(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    found(&purge, &id).await?;
    purge.stop(run_id(&id)?).await?;
    Ok(StatusCode::OK.into_response())
}

async fn get_schedule(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let purge = admin(&api, &caller)?;
    match purge.schedule().await? {
        Some(s) => json(schedule_json(&s)),
        None => json(serde_json::json!({})),
    }
}

async fn set_schedule(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    method: Method,
    body: axum::body::Bytes,
) -> ApiResult {
    let purge = admin(&api, &caller)?;
    let body: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| HarborError::bad_request(format!("invalid schedule: {e}")))?;
    let ran = purge.set_schedule(&body).await?;
    Ok(match (ran, method == Method::POST) {
        (Some(id), _) => created(&format!("/api/v2.0/system/purgeaudit/{id}")),
        (None, true) => (StatusCode::CREATED, axum::body::Body::empty()).into_response(),
        (None, false) => StatusCode::OK.into_response(),
    })
}
