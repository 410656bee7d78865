//! Harbor's `search` tag: projects and repositories whose names hold a term.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::project::Project;
use super::{ApiResult, Caller, HarborApi, Query, json, query_get};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/search", get(search))
}

/// Harbor's `Search`.
#[derive(Serialize)]
struct Search {
    project: Vec<Project>,
    repository: Vec<SearchRepository>,
}

/// Harbor's `SearchRepository`.
#[derive(Serialize)]
struct SearchRepository {
    project_id: i64,
    project_name: String,
    project_public: bool,
    repository_name: String,
    pull_count: i64,
    artifact_count: i64,
}

async fn search(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let term = query_get(&q, "q").unwrap_or("");
    let (projects, repos) = api.projects.search(&caller.subject, term).await?;
    json(Search {
        project: projects.iter().map(Project::from).collect(),
        repository: repos
            .into_iter()
            .map(|(r, project_name, project_public)| SearchRepository {
                project_id: r.project_id,
                project_name,
                project_public,
                repository_name: r.name,
                pull_count: r.pull_count,
                artifact_count: r.artifact_count,
            })
            .collect(),
    })
}
