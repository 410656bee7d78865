//! Harbor's garbage collection: `/system/gc` (executions, their logs, stopping one) and its
//! schedule. A collection is a `GARBAGE_COLLECTION` job of the job service (`berth-gc`); this
//! module queues, schedules and reports them. System administrators only.

use std::sync::Arc;

use super::execution::ExecHistory;
use super::{ApiResult, Caller, HarborApi, HarborError, Query, json, paged, paging};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_gc::collections::{Collections, GcError, JobRow};
use berth_gc::{JOB_KIND, report_of};
use http::{Method, StatusCode, header};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/system/gc", get(history))
        .route("/api/v2.0/system/gc/schedule", get(get_schedule).post(set_schedule).put(set_schedule))
        .route("/api/v2.0/system/gc/{gc_id}", get(execution).put(stop))
        .route("/api/v2.0/system/gc/{gc_id}/log", get(log))
}

impl From<GcError> for HarborError {
    fn from(e: GcError) -> Self {
        HarborError::refused(&e)
    }
}

fn admin(api: &HarborApi, caller: &Caller) -> Result<Collections, HarborError> {
    caller.sysadmin("run garbage collection")?;
    Ok(Collections::new(api.registry.db().clone(), api.gc_time_window_hours))
}

fn gc_id(id: &str) -> Result<i64, HarborError> {
    id.parse().map_err(|_| HarborError::bad_request(format!("gc_id {id:?} is not a number")))
}

/// Harbor's `GCHistory`: the parameters, and once it has run, what it freed and purged (as
/// Harbor's `extra_attrs`: `freed_space`, `purged_blobs`, `purged_manifests`).
fn execution_json(job: &JobRow) -> ExecHistory {
    let mut parameters: serde_json::Value =
        serde_json::from_str(&job.parameters).unwrap_or(serde_json::Value::Object(Default::default()));
    if let (Some(report), serde_json::Value::Object(map)) = (report_of(&job.progress), &mut parameters) {
        map.insert("freed_space".into(), report.freed_space.into());
        map.insert("purged_blobs".into(), report.purged_blobs.into());
        map.insert("purged_manifests".into(), report.purged_manifests.into());
        map.insert("purged_artifacts".into(), report.purged_artifacts.into());
    }
    ExecHistory::of_job(JOB_KIND, job, parameters.to_string())
}

async fn history(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let gc = admin(&api, &caller)?;
    let (page, size) = paging(&q)?;
    let (jobs, total) = gc.history(size, (page - 1) * size).await?;
    let body: Vec<ExecHistory> = jobs.iter().map(execution_json).collect();
    Ok(paged(json(body)?, "/api/v2.0/system/gc", &q, page, size, total))
}

async fn execution(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let gc = admin(&api, &caller)?;
    json(execution_json(&gc.execution(gc_id(&id)?).await?))
}

async fn log(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let gc = admin(&api, &caller)?;
    let job = gc.execution(gc_id(&id)?).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], job.log).into_response())
}

async fn stop(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let gc = admin(&api, &caller)?;
    gc.stop(gc_id(&id)?).await?;
    Ok(StatusCode::OK.into_response())
}

async fn get_schedule(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let gc = admin(&api, &caller)?;
    super::execution::schedule_body(JOB_KIND, gc.schedule().await?.as_ref())
}

async fn set_schedule(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    method: Method,
    body: axum::body::Bytes,
) -> ApiResult {
    let gc = admin(&api, &caller)?;
    let body: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| HarborError::bad_request(format!("invalid schedule: {e}")))?;
    let ran = gc.set_schedule(&body).await?;
    Ok(super::execution::schedule_set(ran.map(|id| format!("/api/v2.0/system/gc/{id}")), &method))
}
