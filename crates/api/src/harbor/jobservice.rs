//! Harbor's job service dashboard (`/jobservice`): the replicas' worker pools and their workers
//! (Berth's runners), stopping a job and reading its log, the queues by job type with stop,
//! pause and resume. Answered from the database by `berth_jobs::monitor`, so any replica
//! answers for the cluster. System administrators, and robots given `jobservice-monitor`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use berth_auth::rbac::{Action, Resource};
use berth_jobs::monitor::{Monitor, MonitorError, QueueAction};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, HarborError, json, json_body};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/jobservice/pools", get(pools))
        .route("/api/v2.0/jobservice/pools/{pool_id}/workers", get(workers))
        .route("/api/v2.0/jobservice/jobs/{job_id}", put(stop_job))
        .route("/api/v2.0/jobservice/jobs/{job_id}/log", get(job_log))
        .route("/api/v2.0/jobservice/queues", get(queues))
        .route("/api/v2.0/jobservice/queues/{job_type}", put(queue_action))
}

impl From<MonitorError> for HarborError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Invalid(m) => HarborError::new(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", m),
            MonitorError::NotFound(m) => HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m),
            MonitorError::Db(e) => HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()),
        }
    }
}

fn monitor(api: &HarborApi, caller: &Caller, action: Action) -> Result<Monitor, HarborError> {
    caller.system(Resource::JobserviceMonitor, action)?;
    Ok(Monitor::new(api.registry.db().clone(), api.job_lease))
}

/// Harbor's `WorkerPool`: a replica's pool of runners.
#[derive(Serialize)]
struct WorkerPool {
    pid: i64,
    worker_pool_id: String,
    start_at: String,
    heartbeat_at: String,
    concurrency: i64,
    host: String,
}

/// Harbor's `Worker`: a runner, and the job it runs (empty strings when idle, as Harbor).
#[derive(Serialize)]
struct Worker {
    id: String,
    pool_id: String,
    job_name: String,
    job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_at: Option<String>,
    check_in: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkin_at: Option<String>,
}

/// Harbor's `JobQueue`.
#[derive(Serialize)]
struct JobQueue {
    job_type: String,
    count: i64,
    /// Seconds the oldest pending job has waited since it became due.
    latency: i64,
    paused: bool,
}

/// Harbor's `ActionRequest`.
#[derive(Deserialize)]
struct ActionRequest {
    action: Option<String>,
}

async fn pools(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::List)?;
    let body: Vec<WorkerPool> = monitor
        .pools()
        .await?
        .into_iter()
        .map(|p| WorkerPool {
            pid: p.pid,
            worker_pool_id: p.pool_id,
            start_at: rfc3339_millis(p.started_at),
            heartbeat_at: rfc3339_millis(p.heartbeat_at),
            concurrency: p.concurrency,
            host: p.host,
        })
        .collect();
    json(body)
}

async fn workers(State(api): State<Arc<HarborApi>>, caller: Caller, Path(pool_id): Path<String>) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::List)?;
    let body: Vec<Worker> = monitor
        .runners(&pool_id)
        .await?
        .into_iter()
        .map(|r| match r.job {
            Some(job) => Worker {
                id: r.id,
                pool_id: r.pool_id,
                job_name: job.kind,
                job_id: job.id.to_string(),
                start_at: Some(rfc3339_millis(job.started_at)),
                check_in: String::new(),
                checkin_at: Some(rfc3339_millis(job.updated_at)),
            },
            None => Worker {
                id: r.id,
                pool_id: r.pool_id,
                job_name: String::new(),
                job_id: String::new(),
                start_at: None,
                check_in: String::new(),
                checkin_at: None,
            },
        })
        .collect();
    json(body)
}

async fn stop_job(State(api): State<Arc<HarborApi>>, caller: Caller, Path(job_id): Path<String>) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::Stop)?;
    monitor.stop_job(&job_id).await?;
    Ok(StatusCode::OK.into_response())
}

async fn job_log(State(api): State<Arc<HarborApi>>, caller: Caller, Path(job_id): Path<String>) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::List)?;
    let log = monitor.job_log(&job_id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

async fn queues(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::List)?;
    let now = berth_core::time::now_millis();
    let body: Vec<JobQueue> = monitor
        .queues()
        .await?
        .into_iter()
        .map(|q| JobQueue {
            job_type: q.kind,
            count: q.pending,
            latency: q.oldest_due.map_or(0, |due| ((now - due) / 1000).max(0)),
            paused: q.paused,
        })
        .collect();
    json(body)
}

async fn queue_action(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(job_type): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let monitor = monitor(&api, &caller, Action::Stop)?;
    let request: ActionRequest = json_body(&body)?;
    let action = QueueAction::parse(request.action.as_deref().unwrap_or_default())?;
    monitor.queue_action(&job_type, action).await?;
    Ok(StatusCode::OK.into_response())
}
