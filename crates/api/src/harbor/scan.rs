//! Harbor's `scan` tag: scanning an artifact with the project's scanner (the built-in one).
//! The scan runs on the job service; its report is served by `additions/vulnerabilities`
//! and summarised in listings' `scan_overview`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::StatusCode;

use super::{ApiResult, Caller, HarborApi, repository_name};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/scan", post(scan_artifact))
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/stop",
            post(stop_scan),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/{report_id}/log",
            get(scan_log),
        )
}

/// Reads Harbor's `ScanType` body: absent (where it is optional) or `vulnerability`.
fn scan_type(body: &[u8], required: bool) -> Result<(), super::HarborError> {
    if body.is_empty() {
        return if required { Err(super::HarborError::bad_request("scan_type is required")) } else { Ok(()) };
    }
    let parsed: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| super::HarborError::bad_request(format!("the body is not JSON: {e}")))?;
    match parsed.get("scan_type").and_then(|t| t.as_str()) {
        None if !required => Ok(()),
        Some("vulnerability") => Ok(()),
        None => Err(super::HarborError::bad_request("scan_type is required")),
        Some(other) => Err(super::HarborError::bad_request(format!(
            "scan_type {other:?} is not supported; only \"vulnerability\""
        ))),
    }
}

/// Stops the artifact's scan that has not ended: 202 (400 when none is going on).
async fn stop_scan(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    scan_type(&body, true)?;
    let repository = repository_name(&repo);
    api.projects.stop_scan(&caller.subject, &caller.project(&project), &repository, &reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The log of one scan, as text (Harbor's `getReportLog`).
async fn scan_log(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference, report)): Path<(String, String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let repository = repository_name(&repo);
    let log =
        api.projects.scan_log(&caller.subject, &caller.project(&project), &repository, &reference, &report).await?;
    Ok(([(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// Queues a scan: 202, as Harbor (the body's `scan_type`, when given, must be Harbor's
/// `vulnerability`; SBOM generation comes later).
async fn scan_artifact(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    scan_type(&body, false)?;
    let repository = repository_name(&repo);
    api.projects.scan_artifact(&caller.subject, &caller.project(&project), &repository, &reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
