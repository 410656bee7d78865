//! Harbor's `scanAll` tag: scanning every image (now, or on a standing schedule), stopping it,
//! and the progress of the latest run and of the latest scheduled one. System administrators
//! only. A run is a `SCAN_ALL` job whose tasks are the scans it queues (`berth_scan::scan_all`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use berth_core::scans::{ScanAll, ScanAllStats};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, HarborError, json, json_body};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/system/scanAll/schedule", get(get_schedule).post(set_schedule).put(set_schedule))
        .route("/api/v2.0/system/scanAll/stop", post(stop))
        .route("/api/v2.0/scans/all/metrics", get(latest))
        .route("/api/v2.0/scans/schedule/metrics", get(latest_scheduled))
}

fn admin(api: &HarborApi, caller: &Caller) -> Result<ScanAll, HarborError> {
    caller.sysadmin("scan all artifacts")?;
    Ok(ScanAll::new(api.registry.db().clone()))
}

/// Harbor's `Stats`.
#[derive(Serialize, Default)]
struct Stats {
    total: i64,
    completed: i64,
    metrics: BTreeMap<String, i64>,
    ongoing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<String>,
}

impl From<ScanAllStats> for Stats {
    fn from(s: ScanAllStats) -> Stats {
        Stats {
            total: s.total,
            completed: s.completed,
            metrics: s.by_status.into_iter().collect(),
            ongoing: s.ongoing,
            trigger: Some(s.trigger),
        }
    }
}

/// Harbor's `Schedule` as a request gives it; scan all takes no parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleReq {
    schedule: ScheduleObjReq,
    #[serde(default)]
    parameters: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ScheduleObjReq {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    cron: Option<String>,
    /// Harbor's read-only field, which clients send back as they read it.
    #[serde(default, rename = "next_scheduled_time")]
    _next_scheduled_time: Option<String>,
}

async fn get_schedule(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    super::execution::schedule_body(berth_core::scans::SCAN_ALL, admin(&api, &caller)?.schedule().await?.as_ref())
}

async fn set_schedule(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    method: Method,
    body: axum::body::Bytes,
) -> ApiResult {
    let scan_all = admin(&api, &caller)?;
    let req: ScheduleReq = json_body(&body)?;
    if req.parameters.is_some_and(|p| !p.is_empty()) {
        return Err(HarborError::bad_request("scan all takes no parameters"));
    }
    let ran = scan_all.set_schedule(&req.schedule.kind, req.schedule.cron.as_deref()).await?;
    Ok(super::execution::schedule_set(ran.map(|_| "/api/v2.0/scans/all/metrics".to_string()), &method))
}

async fn stop(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    admin(&api, &caller)?.stop().await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn latest(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    json(admin(&api, &caller)?.stats(false).await?.map(Stats::from).unwrap_or_default())
}

async fn latest_scheduled(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    json(admin(&api, &caller)?.stats(true).await?.map(Stats::from).unwrap_or_default())
}
