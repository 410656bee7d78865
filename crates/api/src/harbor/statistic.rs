//! Harbor's `statistic` tag: counts of the projects and repositories the caller can see.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, json};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/statistics", get(statistics))
}

/// Harbor's `Statistic`; the storage consumed is shown to administrators only.
#[derive(Serialize)]
struct Statistic {
    private_project_count: i64,
    private_repo_count: i64,
    public_project_count: i64,
    public_repo_count: i64,
    total_project_count: i64,
    total_repo_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_storage_consumption: Option<i64>,
}

async fn statistics(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let st = api.projects.statistics(&caller.subject).await?;
    json(Statistic {
        private_project_count: st.private_projects,
        private_repo_count: st.private_repositories,
        public_project_count: st.public_projects,
        public_repo_count: st.public_repositories,
        total_project_count: st.public_projects + st.private_projects,
        total_repo_count: st.public_repositories + st.private_repositories,
        total_storage_consumption: st.storage_bytes,
    })
}
