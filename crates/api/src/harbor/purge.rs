//! Harbor's audit-log purge: `/system/purgeaudit` (runs, their logs, stopping one) and its
//! schedule. System administrators only.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::purge::{AuditPurge, PurgeRunRow, PurgeSchedule};
use http::request::Parts;
use http::{StatusCode, header};

use super::{ApiResult, HarborApi, HarborError, created, paged, paging, query};
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

async fn admin(api: &HarborApi, parts: &Parts) -> Result<AuditPurge, HarborError> {
    api.sysadmin(parts, "purge the audit log").await?;
    Ok(AuditPurge::new(api.registry.db().clone()))
}

fn run_id(id: &str) -> Result<i64, HarborError> {
    id.parse().map_err(|_| HarborError::bad_request(format!("purge_id {id:?} is not a number")))
}

/// Harbor's `ExecHistory` of a run.
fn run_json(r: &PurgeRunRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "job_name": "PURGE_AUDIT_LOG",
        "job_kind": r.job_kind,
        "job_parameters": r.parameters,
        "job_status": r.status,
        "deleted": false,
        "creation_time": rfc3339_millis(r.created_at),
        "update_time": rfc3339_millis(r.updated_at),
    })
}

fn schedule_json(s: &PurgeSchedule) -> serde_json::Value {
    let next = s.next_after(berth_core::time::now_millis() / 1000).map(|t| rfc3339_millis(t * 1000));
    serde_json::json!({
        "job_name": "PURGE_AUDIT_LOG",
        "job_kind": "SCHEDULE",
        "job_parameters": s.parameters.to_string(),
        "schedule": {"type": s.kind, "cron": s.cron, "next_scheduled_time": next},
        "deleted": false,
        "creation_time": rfc3339_millis(s.created_at),
        "update_time": rfc3339_millis(s.updated_at),
    })
}

async fn list_runs(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let (runs, total) = purge.runs(size, (page - 1) * size).await?;
    let body: Vec<_> = runs.iter().map(run_json).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/system/purgeaudit", &q, page, size, total))
}

async fn found(purge: &AuditPurge, id: &str) -> Result<PurgeRunRow, HarborError> {
    purge
        .run_info(run_id(id)?)
        .await?
        .ok_or_else(|| HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("purge run {id} not found")))
}

async fn get_run(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    Ok(axum::Json(run_json(&found(&purge, &id).await?)).into_response())
}

async fn run_log(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    let run = found(&purge, &id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", run.log)).into_response())
}

async fn stop_run(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    found(&purge, &id).await?;
    purge.stop(run_id(&id)?).await?;
    Ok(StatusCode::OK.into_response())
}

async fn get_schedule(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    let body = purge.schedule().await?.map_or_else(|| serde_json::json!({}), |s| schedule_json(&s));
    Ok(axum::Json(body).into_response())
}

async fn set_schedule(State(api): State<Arc<HarborApi>>, parts: Parts, body: axum::body::Bytes) -> ApiResult {
    let purge = admin(&api, &parts).await?;
    let body: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| HarborError::bad_request(format!("invalid schedule: {e}")))?;
    let ran = purge.set_schedule(&body).await?;
    Ok(match (ran, parts.method == http::Method::POST) {
        (Some(id), _) => created(&format!("/api/v2.0/system/purgeaudit/{id}")),
        (None, true) => (StatusCode::CREATED, axum::body::Body::empty()).into_response(),
        (None, false) => StatusCode::OK.into_response(),
    })
}
