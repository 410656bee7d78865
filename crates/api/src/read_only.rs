//! Harbor's `read_only` setting at the door: while it is on, every request that would change
//! something (pushes, deletes, API writes) is refused with Harbor's answer, and pulls go on.
//! Changing the configuration stays open, so that an administrator can turn it off again.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_core::settings::{READ_ONLY_MESSAGE, SystemSettings};
use http::{Method, StatusCode};

/// Whether `method` on `path` would change what the registry holds.
fn changes_content(method: &Method, path: &str) -> bool {
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let guarded = path.starts_with("/v2/") || path.starts_with("/api/");
    writes && guarded && !(method == Method::PUT && path.trim_end_matches('/') == "/api/v2.0/configurations")
}

pub async fn guard(State(settings): State<SystemSettings>, request: Request, next: Next) -> Response {
    if changes_content(request.method(), request.uri().path()) && settings.get().read_only {
        // The same body serves `/v2` and Harbor's API: both use `{"errors":[{code, message}]}`.
        let body = serde_json::json!({"errors": [{"code": "DENIED", "message": READ_ONLY_MESSAGE}]});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_guarded_but_reads_and_the_way_out_are_not() {
        assert!(changes_content(&Method::PUT, "/v2/p/r/manifests/1"));
        assert!(changes_content(&Method::POST, "/v2/p/r/blobs/uploads/"));
        assert!(changes_content(&Method::DELETE, "/api/v2.0/projects/p"));
        assert!(!changes_content(&Method::GET, "/v2/p/r/manifests/1"));
        assert!(!changes_content(&Method::HEAD, "/v2/p/r/blobs/sha256:00"));
        assert!(!changes_content(&Method::PUT, "/api/v2.0/configurations"));
        assert!(!changes_content(&Method::POST, "/c/login"));
        assert!(!changes_content(&Method::POST, "/service/token"));
    }
}
