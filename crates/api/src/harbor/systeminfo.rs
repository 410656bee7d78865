//! Harbor's `systeminfo` tag: what the portal and clients learn about the installation, the CA
//! certificate, and the storage volume's capacity.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;

use super::{ApiResult, Caller, HARBOR_API_VERSION, HarborApi, HarborError, json};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/systeminfo", get(systeminfo))
        .route("/api/v2.0/systeminfo/getcert", get(system_cert))
        .route("/api/v2.0/systeminfo/volumes", get(system_volumes))
}

/// Harbor's `GeneralInfo`. Anonymous callers see how to sign in and the banner; the rest is for
/// signed-in callers, as in Harbor.
#[derive(Serialize)]
struct GeneralInfo {
    auth_mode: &'static str,
    primary_auth_mode: bool,
    self_registration: bool,
    banner_message: String,
    oidc_provider_name: String,
    #[serde(flatten)]
    signed_in: Option<SignedInInfo>,
}

#[derive(Serialize)]
struct SignedInInfo {
    harbor_version: &'static str,
    current_time: String,
    external_url: String,
    registry_url: String,
    project_creation_restriction: String,
    has_ca_root: bool,
    read_only: bool,
    with_chartmuseum: bool,
    notification_enable: bool,
    registry_storage_provider_name: String,
}

async fn systeminfo(State(api): State<Arc<HarborApi>>, caller: Caller, parts: Parts) -> ApiResult {
    let settings = api.registry.settings().get();
    let signed_in = if caller.subject.is_anonymous() {
        None
    } else {
        let external_url = crate::client::own_url(api.external_url.as_deref(), &parts.extensions);
        let registry_url = external_url.split("://").nth(1).unwrap_or(&external_url).to_string();
        Some(SignedInInfo {
            harbor_version: HARBOR_API_VERSION,
            current_time: crate::time::rfc3339(std::time::SystemTime::now()),
            external_url,
            registry_url,
            project_creation_restriction: settings.project_creation_restriction.clone(),
            has_ca_root: api.ca_certificate.is_some(),
            read_only: settings.read_only,
            with_chartmuseum: false,
            notification_enable: false,
            registry_storage_provider_name: api.registry.storage_provider().to_string(),
        })
    };
    json(GeneralInfo {
        auth_mode: berth_core::settings::AUTH_MODE,
        primary_auth_mode: false,
        self_registration: settings.self_registration,
        banner_message: settings.banner_message.clone(),
        // Users come from Berth's own database; there is no OpenID provider to name.
        oidc_provider_name: String::new(),
        signed_in,
    })
}

/// The CA of the automatic TLS certificate, as Harbor serves the one it made (`ca.crt`, for
/// the docker CLI's `certs.d`); without one (plain HTTP, or certificates from files), 404 as
/// Harbor answers.
async fn system_cert(State(api): State<Arc<HarborApi>>) -> ApiResult {
    match &api.ca_certificate {
        Some(pem) => Ok((
            StatusCode::OK,
            [
                (http::header::CONTENT_TYPE, "application/octet-stream"),
                (http::header::CONTENT_DISPOSITION, "attachment; filename=ca.crt"),
            ],
            pem.clone(),
        )
            .into_response()),
        None => Err(HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no root CA certificate is configured")),
    }
}

/// Harbor's `SystemInfo` and `Storage`.
#[derive(Serialize)]
struct SystemInfo {
    storage: Vec<Storage>,
}

#[derive(Serialize)]
struct Storage {
    total: u64,
    free: u64,
}

/// Capacity of the blob volume, for administrators.
async fn system_volumes(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    caller.sysadmin("see volumes")?;
    let capacity = api
        .registry
        .storage_capacity()
        .await
        .map_err(|e| HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?;
    json(SystemInfo { storage: capacity.map(|(total, free)| Storage { total, free }).into_iter().collect() })
}
