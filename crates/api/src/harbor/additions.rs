//! Harbor's artifact additions: build history, chart values, readme and dependencies, SBOM
//! documents, and the vulnerability reports of scans.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::additions::AdditionError;
use http::{StatusCode, header};

use super::{ApiResult, Caller, HarborApi, HarborError, repository_name};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/vulnerabilities",
            get(vulnerabilities),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/{addition}",
            get(addition),
        )
}

impl From<AdditionError> for HarborError {
    fn from(e: AdditionError) -> Self {
        HarborError::refused(&e)
    }
}

async fn addition(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference, kind)): Path<(String, String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let subject = &caller.subject;
    let artifact = api
        .projects
        .artifact_for_addition(subject, &caller.project(&project), &repository_name(&repo), &reference)
        .await?;
    let addition = api.registry.addition(artifact.repository_id, &artifact.digest, &kind).await?;
    Ok(([(header::CONTENT_TYPE, addition.content_type)], addition.content).into_response())
}

/// The report types a client takes (Harbor's `X-Accept-Vulnerabilities`, a comma-separated
/// list; Harbor's default when absent: its native report type and the adapter's), spaces left out.
fn accepted_reports(headers: &http::HeaderMap) -> Vec<String> {
    const DEFAULT: &str = "application/vnd.security.vulnerability.report; version=1.1, \
                           application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
    let listed = headers.get("x-accept-vulnerabilities").and_then(|v| v.to_str().ok()).unwrap_or(DEFAULT);
    listed.split(',').map(without_spaces).filter(|t| !t.is_empty()).collect()
}

/// A media type compared without its spaces (`a; version=1.1` is `a;version=1.1`).
fn without_spaces(media_type: &str) -> String {
    media_type.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The scan reports of the artifact of the types the client takes, keyed by report media
/// type, as Harbor answers (`{}` for an artifact never scanned, or whose scan has not
/// succeeded).
async fn vulnerabilities(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    headers: http::HeaderMap,
) -> ApiResult {
    let accepted = accepted_reports(&headers);
    let subject = &caller.subject;
    let reports = api
        .projects
        .vulnerability_reports(subject, &caller.project(&project), &repository_name(&repo), &reference)
        .await?;
    let mut by_type = serde_json::Map::new();
    for (mime, report) in reports.into_iter().filter(|(mime, _)| accepted.contains(&without_spaces(mime))) {
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| {
            HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", format!("a stored report: {e}"))
        })?;
        by_type.insert(mime, report);
    }
    Ok(([(header::CONTENT_TYPE, "application/json; charset=utf-8")], serde_json::Value::Object(by_type).to_string())
        .into_response())
}
