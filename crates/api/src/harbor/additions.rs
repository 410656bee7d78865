//! Harbor's artifact additions: build history, chart values, readme and dependencies, SBOM
//! documents, and the vulnerability reports of scans.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::additions::AdditionError;
use http::header;

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

/// The scan reports of the artifact, keyed by report media type, as Harbor answers. No scanner
/// has reported on anything yet (scanning is a later feature), so the map is empty: the same
/// answer Harbor gives for an artifact that was never scanned.
async fn vulnerabilities(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let subject = &caller.subject;
    api.projects.artifact_for_addition(subject, &caller.project(&project), &repository_name(&repo), &reference).await?;
    Ok(([(header::CONTENT_TYPE, "application/json; charset=utf-8")], "{}").into_response())
}
