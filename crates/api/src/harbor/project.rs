//! Harbor's `project` tag: projects, whether a name is taken, a project's summary and whether
//! it may be deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::projects::ProjectView;
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use super::system_cve_allowlist::{CveAllowlistBody, CveAllowlistReq};
use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json, json_body, list_query, metadata_of, ok, paged,
    paging, query_get,
};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects", get(list_projects).head(project_exists).post(create_project))
        .route("/api/v2.0/projects/{project}", get(get_project).put(update_project).delete(delete_project))
        .route("/api/v2.0/projects/{project}/summary", get(project_summary))
        .route("/api/v2.0/projects/{project}/_deletable", get(project_deletable))
}

/// Harbor's `Project`.
#[derive(Serialize)]
pub(super) struct Project {
    project_id: i64,
    owner_id: i64,
    owner_name: String,
    name: String,
    registry_id: i64,
    creation_time: String,
    update_time: String,
    deleted: bool,
    togglable: bool,
    current_user_role_id: i64,
    current_user_role_ids: Vec<i64>,
    repo_count: i64,
    metadata: BTreeMap<String, String>,
    cve_allowlist: CveAllowlistBody,
}

impl From<&ProjectView> for Project {
    fn from(p: &ProjectView) -> Project {
        Project {
            project_id: p.id,
            owner_id: p.owner_id,
            owner_name: p.owner_name.clone(),
            name: p.name.clone(),
            registry_id: 0,
            creation_time: rfc3339_millis(p.created_at),
            update_time: rfc3339_millis(p.updated_at),
            deleted: false,
            togglable: true,
            current_user_role_id: p.role.map_or(0, |r| r.id()),
            current_user_role_ids: p.role.map(|r| r.id()).into_iter().collect(),
            repo_count: p.repo_count,
            metadata: p.metadata.clone(),
            cve_allowlist: CveAllowlistBody::from(&p.cve_allowlist),
        }
    }
}

/// Harbor's `ProjectSummary`.
#[derive(Serialize)]
struct ProjectSummary {
    repo_count: i64,
    project_admin_count: i64,
    maintainer_count: i64,
    developer_count: i64,
    guest_count: i64,
    limited_guest_count: i64,
}

/// Harbor's `ProjectDeletable`.
#[derive(Serialize)]
struct ProjectDeletable {
    deletable: bool,
    message: String,
}

async fn list_projects(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    let public = match query_get(&q, "public") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(HarborError::bad_request("public must be true or false")),
    };
    let name = query_get(&q, "name").unwrap_or("");
    let (projects, total) = api.projects.list(&caller.subject, name, public, &list_query(&q)?, page, size).await?;
    let body: Vec<Project> = projects.iter().map(Project::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/projects", &q, page, size, total))
}

async fn project_exists(State(api): State<Arc<HarborApi>>, Query(q): Query) -> ApiResult {
    let Some(name) = query_get(&q, "project_name").filter(|n| !n.is_empty()) else {
        return Err(HarborError::bad_request("project_name is required"));
    };
    let status = if api.projects.exists(name).await? { StatusCode::OK } else { StatusCode::NOT_FOUND };
    Ok((status, Body::empty()).into_response())
}

/// Harbor's `ProjectReq`: every key it has is taken or refused, and no other is accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectReq {
    project_name: String,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Option<String>>>,
    /// Bytes, -1 for none: system administrators only.
    #[serde(default)]
    storage_limit: Option<i64>,
    /// The project's own CVE allowlist.
    #[serde(default)]
    cve_allowlist: Option<CveAllowlistReq>,
    /// Only none: proxy cache projects are not served yet.
    #[serde(default)]
    registry_id: Option<i64>,
}

impl ProjectReq {
    /// Refuses what Berth cannot do yet rather than store it and do nothing.
    fn check_unsupported(&self) -> Result<(), HarborError> {
        if self.registry_id.is_some() {
            return Err(HarborError::bad_request("proxy cache projects (registry_id) are not supported yet"));
        }
        Ok(())
    }
}

async fn create_project(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: ProjectReq = json_body(&body)?;
    req.check_unsupported()?;
    let allowlist = req.cve_allowlist.map(CveAllowlistReq::checked).transpose()?;
    let mut metadata = metadata_of(req.metadata);
    if let Some(public) = req.public {
        metadata.entry("public".into()).or_insert_with(|| public.to_string());
    }
    let id = api
        .projects
        .create(&caller.subject, &req.project_name, metadata, req.storage_limit, allowlist.as_ref())
        .await?;
    let by_name =
        parts.headers.get("x-resource-name-in-location").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "true");
    let location =
        if by_name { format!("/api/v2.0/projects/{}", req.project_name) } else { format!("/api/v2.0/projects/{id}") };
    Ok(created(&location))
}

async fn get_project(State(api): State<Arc<HarborApi>>, caller: Caller, Path(project): Path<String>) -> ApiResult {
    let view = api.projects.get(&caller.subject, &caller.project(&project)).await?;
    json(Project::from(&view))
}

async fn update_project(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UpdateReq {
        #[serde(default)]
        metadata: Option<BTreeMap<String, Option<String>>>,
        #[serde(default)]
        cve_allowlist: Option<CveAllowlistReq>,
    }
    let req: UpdateReq = json_body(&body)?;
    // Both checked before either is written.
    let allowlist = req.cve_allowlist.map(CveAllowlistReq::checked).transpose()?;
    let project = caller.project(&project);
    api.projects.update_metadata(&caller.subject, &project, &metadata_of(req.metadata)).await?;
    if let Some(allowlist) = &allowlist {
        api.projects.set_project_cve_allowlist(&caller.subject, &project, allowlist).await?;
    }
    ok()
}

async fn delete_project(State(api): State<Arc<HarborApi>>, caller: Caller, Path(project): Path<String>) -> ApiResult {
    api.projects.delete(&caller.subject, &caller.project(&project)).await?;
    ok()
}

async fn project_summary(State(api): State<Arc<HarborApi>>, caller: Caller, Path(project): Path<String>) -> ApiResult {
    let sum = api.projects.summary(&caller.subject, &caller.project(&project)).await?;
    let [admins, developers, guests, maintainers, limited] = sum.members_by_role;
    json(ProjectSummary {
        repo_count: sum.repo_count,
        project_admin_count: admins,
        maintainer_count: maintainers,
        developer_count: developers,
        guest_count: guests,
        limited_guest_count: limited,
    })
}

async fn project_deletable(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult {
    let (deletable, message) = api.projects.deletable(&caller.subject, &caller.project(&project)).await?;
    json(ProjectDeletable { deletable, message })
}
