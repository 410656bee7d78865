//! HTTP: the distribution API under `/v2`.
//!
//! Handlers translate between HTTP and the domain in `berth-core`; they hold no SQL and no
//! storage logic. Every request passes the [`access::Authorizer`] before it is served.

pub mod access;
pub mod auth;
mod error;
mod handlers;
pub mod harbor;
mod route;
mod time;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use berth_core::Registry;

pub use error::ApiError;
pub use handlers::AppState;

/// Tunables of the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct ApiOptions {
    /// Most `/v2` requests handled at once; beyond it a request is refused at once with 429
    /// `TOOMANYREQUESTS` and `Retry-After`, rather than queued until it times out. 0: no limit.
    pub max_concurrent_requests: usize,
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
    let state = AppState { registry, authorizer, limiter };
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
    match harbor_api {
        Some(api) => v2.merge(harbor::router(api)),
        None => v2,
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
