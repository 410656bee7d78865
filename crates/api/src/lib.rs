//! HTTP: the distribution API under `/v2`.
//!
//! Handlers translate between HTTP and the domain in `berth-core`; they hold no SQL and no
//! storage logic. Every request passes the [`access::Authorizer`] before it is served.

pub mod access;
pub mod auth;
pub mod client;
mod error;
mod handlers;
pub mod harbor;
mod limit;
mod observe;
mod read_only;
mod route;
mod scrape;
mod serve;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use berth_core::Registry;
use berth_core::time;

pub use error::ApiError;
pub use handlers::AppState;
pub use scrape::{MetricsOptions, standalone_router as metrics_router};

/// Tunables of the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct ApiOptions {
    /// Most `/v2` requests handled at once; beyond it a request is refused at once with 429
    /// `TOOMANYREQUESTS` and `Retry-After`, rather than queued until it times out. 0: no limit.
    pub max_concurrent_requests: usize,
    /// `/metrics` on the main port, when set.
    pub metrics: Option<MetricsOptions>,
    /// Blob upload requests with a body one caller may have in flight; 0: no limit.
    pub max_uploads_per_client: usize,
}

/// The application's router. `authorizer` decides every `/v2` request (in production the
/// same [`auth::HarborAuth`] that serves `/service/token`).
pub fn router(
    registry: Arc<Registry>,
    authorizer: Arc<dyn access::Authorizer>,
    token_service: Option<Arc<auth::HarborAuth>>,
    harbor_api: Option<Arc<harbor::HarborApi>>,
    options: &ApiOptions,
) -> Router {
    let limiter = (options.max_concurrent_requests > 0)
        .then(|| Arc::new(tokio::sync::Semaphore::new(options.max_concurrent_requests)));
    let probes = Router::new()
        .route("/livez", axum::routing::get(livez))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(registry.clone());
    let scrape = options.metrics.as_ref().map(|m| scrape::route(registry.clone(), token_service.clone(), m));
    let uploads = limit::PerKey::new(options.max_uploads_per_client);
    let settings = registry.settings().clone();
    let state = AppState { registry, authorizer, limiter, uploads };
    let v2 = Router::new()
        .route("/v2", any(handlers::dispatch))
        .route("/v2/", any(handlers::dispatch))
        .route("/v2/{*rest}", any(handlers::dispatch))
        .with_state(state);
    let v2 = match token_service {
        Some(tokens) => {
            v2.merge(Router::new().route("/service/token", axum::routing::get(auth::token)).with_state(tokens))
        }
        None => v2,
    };
    let app = v2.merge(probes);
    let app = match harbor_api {
        Some(api) => app.merge(harbor::router(api)),
        None => app,
    };
    let app = match scrape {
        Some(scrape) => app.merge(scrape),
        None => app,
    };
    // Every request: its id and span, its metrics, and the audit operator (anonymous until
    // authentication names it, so that the records of its writes say who and from where).
    app.layer(axum::middleware::from_fn_with_state(settings, read_only::guard))
        .layer(axum::middleware::from_fn(observe::observe))
}

/// Liveness: the process can still serve. It does not look at dependencies, so that an
/// orchestrator does not restart replicas because the database is down; but it does need a
/// thread of the blocking pool within a few seconds (every file read and write takes one),
/// since a process whose pool is exhausted answers nothing else and only a restart helps.
async fn livez() -> axum::response::Response {
    use axum::response::IntoResponse;
    let probe = tokio::task::spawn_blocking(|| ());
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(())) => "ok".into_response(),
        _ => (http::StatusCode::SERVICE_UNAVAILABLE, "the blocking pool is exhausted").into_response(),
    }
}

/// Readiness: 200 when the database and storage answer, else 503; each dependency's state in
/// the body. Redis down makes the replica `degraded`, still ready: every replica shares Redis,
/// and taking them all out of the load balancer would turn its loss into an outage.
async fn readyz(axum::extract::State(registry): axum::extract::State<Arc<Registry>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let components = registry.health().await;
    let ready = berth_core::health::ready(&components);
    let degraded = components.iter().any(|c| !c.healthy());
    let body: Vec<_> = components
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "status": if c.healthy() { "healthy" } else { "unhealthy" }, "error": c.error}))
        .collect();
    let status = if ready { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE };
    let summary = match (ready, degraded) {
        (false, _) => "unready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    (status, axum::Json(serde_json::json!({"status": summary, "components": body}))).into_response()
}

pub use serve::{ServerLimits, serve, serve_with};
