//! Harbor's `repository` tag: repositories of all projects or of one, their description, and
//! their deletion (through the content door, with everything in them).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use berth_core::projects::RepositoryView;
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, Query, json, json_body, list_query, ok, paged, paging, repository_name};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/repositories", get(list_all_repositories))
        .route("/api/v2.0/projects/{project}/repositories", get(list_repositories))
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}",
            get(get_repository).put(update_repository).delete(delete_repository),
        )
}

/// Harbor's `Repository`.
#[derive(Serialize)]
struct Repository {
    id: i64,
    project_id: i64,
    name: String,
    description: String,
    artifact_count: i64,
    pull_count: i64,
    creation_time: String,
    update_time: String,
}

impl From<&RepositoryView> for Repository {
    fn from(r: &RepositoryView) -> Repository {
        Repository {
            id: r.id,
            project_id: r.project_id,
            name: r.name.clone(),
            description: r.description.clone(),
            artifact_count: r.artifact_count,
            pull_count: r.pull_count,
            creation_time: rfc3339_millis(r.created_at),
            update_time: rfc3339_millis(r.updated_at),
        }
    }
}

async fn list_all_repositories(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    let (repos, total) = api.projects.repositories(&caller.subject, None, &list_query(&q)?, page, size).await?;
    let body: Vec<Repository> = repos.iter().map(Repository::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/repositories", &q, page, size, total))
}

async fn list_repositories(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let (page, size) = paging(&q)?;
    let project_ref = caller.project(&project);
    let (repos, total) =
        api.projects.repositories(&caller.subject, Some(&project_ref), &list_query(&q)?, page, size).await?;
    let body: Vec<Repository> = repos.iter().map(Repository::from).collect();
    let path = format!("/api/v2.0/projects/{project}/repositories");
    Ok(paged(json(body)?, &path, &q, page, size, total))
}

async fn get_repository(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult {
    let view = api.projects.repository(&caller.subject, &caller.project(&project), &repository_name(&repo)).await?;
    json(Repository::from(&view))
}

async fn update_repository(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, repo)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct RepositoryReq {
        #[serde(default)]
        description: String,
    }
    let req: RepositoryReq = json_body(&body)?;
    api.projects
        .set_repository_description(
            &caller.subject,
            &caller.project(&project),
            &repository_name(&repo),
            &req.description,
        )
        .await?;
    ok()
}

async fn delete_repository(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult {
    api.projects.delete_repository(&caller.subject, &caller.project(&project), &repository_name(&repo)).await?;
    ok()
}
