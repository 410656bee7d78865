//! Harbor's `ping` tag: `GET /ping`, for load balancers and clients probing the API.

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};

use super::HarborApi;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/ping", get(ping))
}

async fn ping() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Pong").into_response()
}
