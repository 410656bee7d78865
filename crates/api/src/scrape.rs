//! `/metrics`: the process's metrics, then those computed at scrape time, in the format the
//! scraper asks for. On the main port only a system administrator may read them (unless
//! configured otherwise); on a port of their own, anyone who can reach it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use berth_core::Registry;
use berth_metrics::{Encoder, Format};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

/// Where and to whom `/metrics` is served on the main port.
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    pub path: String,
    /// Whether the main port asks for a system administrator.
    pub require_admin: bool,
}

#[derive(Clone)]
struct ScrapeState {
    registry: Arc<Registry>,
    auth: Option<Arc<crate::auth::HarborAuth>>,
    require_admin: bool,
}

/// The route on the main port.
pub(crate) fn route(
    registry: Arc<Registry>,
    auth: Option<Arc<crate::auth::HarborAuth>>,
    options: &MetricsOptions,
) -> Router {
    let state = ScrapeState { registry, auth, require_admin: options.require_admin };
    Router::new().route(&options.path, axum::routing::get(scrape)).with_state(state)
}

/// A router for a port of its own: `path`, open to anyone who reaches the port.
pub fn standalone_router(registry: Arc<Registry>, path: &str) -> Router {
    let state = ScrapeState { registry, auth: None, require_admin: false };
    Router::new().route(path, axum::routing::get(scrape)).with_state(state)
}

async fn scrape(State(state): State<ScrapeState>, parts: Parts) -> Response {
    if state.require_admin {
        let subject = match &state.auth {
            Some(auth) => auth.api_subject(&parts).await.ok(),
            None => None,
        };
        match subject {
            Some(s) if s.is_sysadmin() => {}
            Some(s) if !s.is_anonymous() => {
                return (StatusCode::FORBIDDEN, "metrics are for system administrators\n").into_response();
            }
            _ => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\""))],
                    "metrics are for system administrators\n",
                )
                    .into_response();
            }
        }
    }
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let mut enc = Encoder::new(format);
    berth_metrics::metrics().encode(&mut enc);
    if let Err(e) = state.registry.encode_scraped_metrics(&mut enc).await {
        tracing::warn!(error = %e, "metrics: reading the project counters failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "the database did not answer\n").into_response();
    }
    let self_registration = state.registry.settings().get().self_registration.to_string();
    let info = [(
        vec![
            berth_core::settings::AUTH_MODE.to_string(),
            crate::harbor::HARBOR_API_VERSION.to_string(),
            self_registration,
        ],
        1i64,
    )];
    enc.gauge_family(
        "harbor_system_info",
        "Information of Harbor system",
        &["auth_mode", "harbor_version", "self_registration"],
        &info,
    );
    ([(header::CONTENT_TYPE, format.content_type())], enc.finish()).into_response()
}
