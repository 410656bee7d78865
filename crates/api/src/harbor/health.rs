//! Harbor's `health` tag: `GET /health`, the state of each component Berth depends on.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::{ApiResult, HarborApi, json};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/health", get(health))
}

/// Harbor's `OverallHealthStatus`.
#[derive(Serialize)]
struct OverallHealthStatus {
    status: &'static str,
    components: Vec<ComponentHealthStatus>,
}

/// Harbor's `ComponentHealthStatus`.
#[derive(Serialize)]
struct ComponentHealthStatus {
    name: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn status(healthy: bool) -> &'static str {
    if healthy { "healthy" } else { "unhealthy" }
}

async fn health(State(api): State<Arc<HarborApi>>) -> ApiResult {
    let mut components = vec![ComponentHealthStatus { name: "core".into(), status: "healthy", error: None }];
    for c in api.registry.health().await {
        components.push(ComponentHealthStatus {
            name: c.name.to_string(),
            status: status(c.error.is_none()),
            error: c.error,
        });
    }
    let healthy = components.iter().all(|c| c.error.is_none());
    json(OverallHealthStatus { status: status(healthy), components })
}
