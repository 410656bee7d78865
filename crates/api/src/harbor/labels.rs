//! Harbor's label API (`/labels`) and labels on artifacts.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use berth_core::labels::{LabelReq, LabelRow, LabelScope};
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json, json_body, list_query, ok, paged, paging,
    query_get, repository_name,
};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/labels", get(list_labels).post(create_label))
        .route("/api/v2.0/labels/{label_id}", get(get_label).put(update_label).delete(delete_label))
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/labels",
            post(add_artifact_label),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/labels/{label_id}",
            delete(remove_artifact_label),
        )
}

/// Harbor's `Label`.
#[derive(Serialize)]
pub(super) struct Label {
    id: i64,
    name: String,
    description: String,
    color: String,
    scope: &'static str,
    project_id: i64,
    creation_time: String,
    update_time: String,
}

impl From<&LabelRow> for Label {
    fn from(l: &LabelRow) -> Label {
        let (scope, project_id) = match l.scope {
            LabelScope::Global => ("g", 0),
            LabelScope::Project(p) => ("p", p),
        };
        Label {
            id: l.id,
            name: l.name.clone(),
            description: l.description.clone(),
            color: l.color.clone(),
            scope,
            project_id,
            creation_time: rfc3339_millis(l.created_at),
            update_time: rfc3339_millis(l.updated_at),
        }
    }
}

fn label_id(raw: &str) -> Result<i64, HarborError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HarborError::bad_request("label_id must be a positive integer"))
}

/// `scope` (`g`, the default, or `p`) and, for `p`, a `project_id`.
fn scope_of(scope: Option<&str>, project_id: Option<i64>) -> Result<LabelScope, HarborError> {
    match (scope.unwrap_or("g"), project_id.filter(|p| *p != 0)) {
        ("g", None) => Ok(LabelScope::Global),
        ("g", Some(_)) => Err(HarborError::bad_request("a global label has no project_id")),
        ("p", Some(p)) if p > 0 => Ok(LabelScope::Project(p)),
        ("p", _) => Err(HarborError::bad_request("a project label needs a positive project_id")),
        (other, _) => Err(HarborError::bad_request(format!("invalid scope {other:?}: use g or p"))),
    }
}

async fn list_labels(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let subject = &caller.subject;
    let (page, size) = paging(&q)?;
    let project_id = match query_get(&q, "project_id").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(p.parse::<i64>().map_err(|_| HarborError::bad_request("project_id must be an integer"))?),
    };
    let scope = scope_of(query_get(&q, "scope").filter(|s| !s.is_empty()), project_id)?;
    let name = query_get(&q, "name").unwrap_or("");
    let (labels, total) = api.projects.labels(subject, scope, name, &list_query(&q)?, page, size).await?;
    let body: Vec<Label> = labels.iter().map(Label::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/labels", &q, page, size, total))
}

#[derive(Deserialize)]
struct LabelJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    project_id: Option<i64>,
}

async fn create_label(State(api): State<Arc<HarborApi>>, caller: Caller, body: axum::body::Bytes) -> ApiResult {
    let subject = &caller.subject;
    let req: LabelJson = json_body(&body)?;
    let scope = scope_of(req.scope.as_deref(), req.project_id)?;
    let label = LabelReq {
        name: req.name.as_deref().unwrap_or(""),
        description: req.description.as_deref().unwrap_or(""),
        color: req.color.as_deref().unwrap_or(""),
    };
    let id = api.projects.create_label(subject, scope, &label).await?;
    Ok(created(&format!("/api/v2.0/labels/{id}")))
}

async fn get_label(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, caller: Caller) -> ApiResult {
    let subject = &caller.subject;
    let label = api.projects.label(subject, label_id(&id)?).await?;
    json(Label::from(&label))
}

/// Fields left out keep their values; scope and project cannot change.
async fn update_label(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    let subject = &caller.subject;
    let id = label_id(&id)?;
    let req: LabelJson = json_body(&body)?;
    let current = api.projects.label(subject, id).await?;
    if req.scope.is_some() || req.project_id.is_some() {
        let scope = scope_of(req.scope.as_deref(), req.project_id)?;
        if scope != current.scope {
            return Err(HarborError::bad_request("a label's scope and project cannot change"));
        }
    }
    let label = LabelReq {
        name: req.name.as_deref().unwrap_or(&current.name),
        description: req.description.as_deref().unwrap_or(&current.description),
        color: req.color.as_deref().unwrap_or(&current.color),
    };
    api.projects.update_label(subject, id, &label).await?;
    ok()
}

async fn delete_label(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, caller: Caller) -> ApiResult {
    let subject = &caller.subject;
    api.projects.delete_label(subject, label_id(&id)?).await?;
    ok()
}

async fn add_artifact_label(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    let subject = &caller.subject;
    let req: LabelJson = json_body(&body)?;
    let id = req.id.filter(|id| *id > 0).ok_or_else(|| HarborError::bad_request("the label's id is required"))?;
    api.projects
        .add_artifact_label(subject, &caller.project(&project), &repository_name(&repo), &reference, id)
        .await?;
    ok()
}

async fn remove_artifact_label(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference, id)): Path<(String, String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let subject = &caller.subject;
    let id = label_id(&id)?;
    api.projects
        .remove_artifact_label(subject, &caller.project(&project), &repository_name(&repo), &reference, id)
        .await?;
    ok()
}
