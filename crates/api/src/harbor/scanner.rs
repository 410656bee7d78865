//! Harbor's `scanner` tag (`/scanners`: registrations, the default, ping, metadata) and a
//! project's scanner. Berth's built-in scanner is the one registration; registering, changing
//! or deleting registrations is refused with the reason (`berth_core::scanners`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use berth_auth::rbac::{Action, Resource};
use berth_core::scanners::{EXTERNAL_REFUSED, ScannerMetadata, ScannerRegistration};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, HarborError, Query, json, json_body, ok, paged, paging};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/scanners", get(list).post(register))
        .route("/api/v2.0/scanners/ping", post(ping))
        .route("/api/v2.0/scanners/{registration_id}", get(get_one).put(update).delete(delete).patch(set_default))
        .route("/api/v2.0/scanners/{registration_id}/metadata", get(metadata))
        .route("/api/v2.0/projects/{project}/scanner", get(project_scanner).put(set_project_scanner))
        .route("/api/v2.0/projects/{project}/scanner/candidates", get(candidates))
}

/// Harbor's `ScannerRegistration`.
#[derive(Serialize)]
struct Registration {
    uuid: String,
    name: String,
    description: String,
    url: String,
    disabled: bool,
    is_default: bool,
    auth: String,
    access_credential: String,
    #[serde(rename = "skip_certVerify")]
    skip_cert_verify: bool,
    use_internal_addr: bool,
    adapter: String,
    vendor: String,
    version: String,
    health: String,
    capabilities: BTreeMap<&'static str, bool>,
}

impl From<ScannerRegistration> for Registration {
    fn from(s: ScannerRegistration) -> Registration {
        Registration {
            uuid: s.uuid,
            name: s.name,
            description: s.description,
            url: s.url,
            disabled: false,
            is_default: s.is_default,
            auth: String::new(),
            access_credential: String::new(),
            skip_cert_verify: false,
            use_internal_addr: true,
            adapter: s.scanner.name,
            vendor: s.scanner.vendor,
            version: s.scanner.version,
            health: "healthy".to_string(),
            capabilities: BTreeMap::from([("support_vulnerability", true), ("support_sbom", false)]),
        }
    }
}

/// Harbor's `ScannerAdapterMetadata`.
#[derive(Serialize)]
struct AdapterMetadata {
    scanner: berth_core::scans::ScannerRef,
    capabilities: Vec<Capability>,
    properties: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Capability {
    #[serde(rename = "type")]
    kind: &'static str,
    consumes_mime_types: Vec<&'static str>,
    produces_mime_types: Vec<&'static str>,
}

impl From<ScannerMetadata> for AdapterMetadata {
    fn from(m: ScannerMetadata) -> AdapterMetadata {
        let mut properties = BTreeMap::from([(
            "harbor.scanner-adapter/scanner-type".to_string(),
            "os-package-vulnerability".to_string(),
        )]);
        if let Some(at) = m.database_updated_at {
            properties.insert("harbor.scanner-adapter/vulnerability-database-updated-at".into(), rfc3339_millis(at));
        }
        for (feed, advisories) in m.feeds {
            properties.insert(format!("berth.vulnerability-database/{feed}"), format!("{advisories} advisories"));
        }
        AdapterMetadata {
            scanner: m.scanner,
            capabilities: vec![Capability {
                kind: "vulnerability",
                consumes_mime_types: m.consumes,
                produces_mime_types: m.produces,
            }],
            properties,
        }
    }
}

/// The page `q` asks for of registrations listed whole.
fn one_page(all: Vec<ScannerRegistration>, path: &str, q: &[(String, String)]) -> ApiResult {
    let (page, size) = paging(q)?;
    let total = all.len() as i64;
    let body: Vec<Registration> =
        all.into_iter().skip(((page - 1) * size) as usize).take(size as usize).map(Registration::from).collect();
    Ok(paged(json(body)?, path, q, page, size, total))
}

fn refused() -> HarborError {
    HarborError::bad_request(EXTERNAL_REFUSED)
}

async fn list(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    caller.system(Resource::Scanner, Action::List)?;
    one_page(api.projects.scanners(), "/api/v2.0/scanners", &q)
}

async fn register(caller: Caller) -> ApiResult {
    caller.system(Resource::Scanner, Action::Create)?;
    Err(refused())
}

async fn ping(caller: Caller) -> ApiResult {
    caller.system(Resource::Scanner, Action::Read)?;
    Err(refused())
}

async fn get_one(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.system(Resource::Scanner, Action::Read)?;
    json(Registration::from(api.projects.scanner(&id)?))
}

/// The built-in registration is Berth's own: not changed, not deleted.
async fn update(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.system(Resource::Scanner, Action::Update)?;
    api.projects.scanner(&id)?;
    Err(HarborError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "the built-in scanner's registration cannot be changed"))
}

async fn delete(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.system(Resource::Scanner, Action::Delete)?;
    api.projects.scanner(&id)?;
    Err(HarborError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "the built-in scanner's registration cannot be deleted"))
}

/// Harbor's `IsDefault`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsDefault {
    is_default: bool,
}

async fn set_default(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    caller.system(Resource::Scanner, Action::Update)?;
    let req: IsDefault = json_body(&body)?;
    api.projects.scanner(&id)?;
    if !req.is_default {
        return Err(HarborError::bad_request("the built-in scanner is the only registration: it stays the default"));
    }
    ok()
}

async fn metadata(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.system(Resource::Scanner, Action::Read)?;
    json(AdapterMetadata::from(api.projects.scanner_metadata(&id).await?))
}

async fn project_scanner(State(api): State<Arc<HarborApi>>, caller: Caller, Path(project): Path<String>) -> ApiResult {
    json(Registration::from(api.projects.project_scanner(&caller.subject, &caller.project(&project)).await?))
}

/// Harbor's `ProjectScanner`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectScanner {
    uuid: String,
}

async fn set_project_scanner(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: ProjectScanner = json_body(&body)?;
    api.projects.set_project_scanner(&caller.subject, &caller.project(&project), &req.uuid).await?;
    ok()
}

async fn candidates(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let all = api.projects.project_scanner_candidates(&caller.subject, &caller.project(&project)).await?;
    one_page(all, &format!("/api/v2.0/projects/{project}/scanner/candidates"), &q)
}
