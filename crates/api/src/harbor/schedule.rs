//! Harbor's `/schedules`: the job service's standing schedules (one per job type: collections,
//! audit purges, housekeeping), and whether the scheduler is paused. System administrators,
//! and robots given `jobservice-monitor`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use berth_auth::rbac::{Action, Resource};
use berth_jobs::monitor::{Monitor, MonitorError};
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, HarborError, Query, json, paged, paging};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/schedules", get(list)).route("/api/v2.0/schedules/{job_type}/paused", get(paused))
}

/// Harbor's `ScheduleTask`.
#[derive(Serialize)]
struct ScheduleTask {
    id: i64,
    /// The job type it fires (Harbor's vendor type).
    vendor_type: String,
    /// Harbor's vendor id: a retention policy's for its schedule, 0 for system schedules.
    vendor_id: i64,
    cron: String,
    update_time: String,
}

/// Harbor's `SchedulerStatus`.
#[derive(Serialize)]
struct SchedulerStatus {
    paused: bool,
}

async fn list(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    caller.system(Resource::JobserviceMonitor, Action::List)?;
    let monitor = Monitor::new(api.registry.db().clone(), api.job_lease);
    let (page, size) = paging(&q)?;
    let (schedules, total) = monitor.schedules(size, (page - 1) * size).await?;
    let body: Vec<ScheduleTask> = schedules
        .into_iter()
        .map(|s| ScheduleTask {
            id: s.id,
            vendor_type: s.job_type,
            vendor_id: s.vendor_id,
            cron: s.cron,
            update_time: rfc3339_millis(s.updated_at),
        })
        .collect();
    Ok(paged(json(body)?, "/api/v2.0/schedules", &q, page, size, total))
}

async fn paused(State(api): State<Arc<HarborApi>>, caller: Caller, Path(job_type): Path<String>) -> ApiResult {
    caller.system(Resource::JobserviceMonitor, Action::List)?;
    let monitor = Monitor::new(api.registry.db().clone(), api.job_lease);
    // Harbor answers 400 for a job type other than `all` here.
    let paused = monitor.scheduler_paused(&job_type).await.map_err(|e| match e {
        MonitorError::Invalid(m) => HarborError::bad_request(m),
        e => e.into(),
    })?;
    json(SchedulerStatus { paused })
}
