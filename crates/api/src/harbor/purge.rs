//! Harbor's audit-log purge: `/system/purgeaudit` (runs, their logs, stopping one) and its
//! schedule. System administrators only.

use std::sync::Arc;

use super::execution::ExecHistory;
use super::{ApiResult, Caller, HarborApi, HarborError, Query, json, paged, paging};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::purge::{AuditPurge, JOB_KIND};
use berth_jobs::JobRow;
use http::{Method, StatusCode, header};

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

fn run_json(job: &JobRow) -> ExecHistory {
    ExecHistory::of_job(JOB_KIND, job, job.parameters.clone())
}

async fn list_runs(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let purge = admin(&api, &caller)?;
    let (page, size) = paging(&q)?;
    let (runs, total) = purge.runs(size, (page - 1) * size).await?;
    let body: Vec<ExecHistory> = runs.iter().map(run_json).collect();
    Ok(paged(json(body)?, "/api/v2.0/system/purgeaudit", &q, page, size, total))
}

async fn found(purge: &AuditPurge, id: &str) -> Result<JobRow, HarborError> {
    Ok(purge.run_info(run_id(id)?).await?)
}

async fn get_run(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    json(run_json(&found(&purge, &id).await?))
}

async fn run_log(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    let run = found(&purge, &id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], run.log).into_response())
}

async fn stop_run(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let purge = admin(&api, &caller)?;
    purge.stop(run_id(&id)?).await?;
    Ok(StatusCode::OK.into_response())
}

async fn get_schedule(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let purge = admin(&api, &caller)?;
    super::execution::schedule_body(JOB_KIND, purge.schedule().await?.as_ref())
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
    Ok(super::execution::schedule_set(ran.map(|id| format!("/api/v2.0/system/purgeaudit/{id}")), &method))
}
