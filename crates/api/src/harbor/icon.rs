//! Harbor's `icon` tag: `GET /icons/{digest}`, an artifact's icon as base64 with its type.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use base64::Engine as _;
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, json};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/icons/{digest}", get(get_icon))
}

/// Harbor's `Icon`.
#[derive(Serialize)]
struct Icon {
    #[serde(rename = "content-type")]
    content_type: String,
    content: String,
}

async fn get_icon(State(api): State<Arc<HarborApi>>, caller: Caller, Path(digest): Path<String>) -> ApiResult {
    let icon = api.projects.icon(&caller.subject, &digest).await?;
    json(Icon {
        content_type: icon.content_type,
        content: base64::engine::general_purpose::STANDARD.encode(&icon.content),
    })
}
