//! Harbor's `projectMetadata` tag: a project's metadata, as a whole and key by key.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use super::{ApiResult, Caller, HarborApi, json, json_body, ok};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects/{project}/metadatas", get(list_metadata).post(add_metadata))
        .route("/api/v2.0/projects/{project}/metadatas/", get(list_metadata).post(add_metadata))
        .route(
            "/api/v2.0/projects/{project}/metadatas/{meta}",
            get(get_metadata).put(update_metadata).delete(delete_metadata),
        )
}

async fn list_metadata(State(api): State<Arc<HarborApi>>, caller: Caller, Path(project): Path<String>) -> ApiResult {
    json(api.projects.metadata(&caller.subject, &caller.project(&project), None).await?)
}

async fn get_metadata(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, meta)): Path<(String, String)>,
) -> ApiResult {
    json(api.projects.metadata(&caller.subject, &caller.project(&project), Some(&meta)).await?)
}

async fn add_metadata(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let entries: BTreeMap<String, String> = json_body(&body)?;
    api.projects.add_metadata(&caller.subject, &caller.project(&project), &entries).await?;
    ok()
}

async fn update_metadata(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, meta)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let entries: BTreeMap<String, String> = json_body(&body)?;
    api.projects.update_metadata_key(&caller.subject, &caller.project(&project), &meta, &entries).await?;
    ok()
}

async fn delete_metadata(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, meta)): Path<(String, String)>,
) -> ApiResult {
    api.projects.delete_metadata_key(&caller.subject, &caller.project(&project), &meta).await?;
    ok()
}
