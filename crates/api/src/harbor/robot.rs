//! Harbor's `robot` tag: system and project robot accounts, their permissions and secrets.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::robots::{PermissionReq, RobotReq, RobotView};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, json, json_body, ok, paged, paging, path_id, query_get,
    with_location,
};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/robots", get(list_robots).post(create_robot)).route(
        "/api/v2.0/robots/{robot_id}",
        get(get_robot).put(update_robot).patch(refresh_robot).delete(delete_robot),
    )
}

/// Harbor's `Robot` (its secret is never shown again after creation).
#[derive(Serialize)]
struct Robot {
    id: i64,
    name: String,
    description: String,
    level: String,
    duration: i64,
    editable: bool,
    disable: bool,
    expires_at: i64,
    permissions: Vec<RobotPermission>,
    creator_type: String,
    creator_ref: i64,
    creation_time: String,
    update_time: String,
}

/// Harbor's `RobotPermission`, requested and shown.
#[derive(Serialize, Deserialize)]
struct RobotPermission {
    kind: String,
    namespace: String,
    #[serde(default)]
    access: Vec<Access>,
}

/// Harbor's `Access`.
#[derive(Serialize, Deserialize)]
struct Access {
    resource: String,
    action: String,
}

impl From<&PermissionReq> for RobotPermission {
    fn from(p: &PermissionReq) -> RobotPermission {
        RobotPermission {
            kind: p.kind.clone(),
            namespace: p.namespace.clone(),
            access: p
                .access
                .iter()
                .map(|(resource, action)| Access { resource: resource.clone(), action: action.clone() })
                .collect(),
        }
    }
}

impl From<&RobotView> for Robot {
    fn from(r: &RobotView) -> Robot {
        Robot {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone(),
            level: r.level.clone(),
            duration: r.duration,
            editable: r.editable,
            disable: r.disable,
            expires_at: r.expires_at,
            permissions: r.permissions.iter().map(RobotPermission::from).collect(),
            creator_type: r.creator_type.clone(),
            creator_ref: r.creator_ref.parse::<i64>().unwrap_or(0),
            creation_time: rfc3339_millis(r.created_at),
            update_time: rfc3339_millis(r.updated_at),
        }
    }
}

/// Harbor's `RobotCreated`: the one answer that carries the secret.
#[derive(Serialize)]
struct RobotCreated {
    id: i64,
    name: String,
    secret: String,
    creation_time: String,
    expires_at: i64,
}

/// Harbor's `RobotSec`.
#[derive(Serialize, Deserialize)]
struct RobotSec {
    #[serde(default)]
    secret: Option<String>,
}

/// Harbor's `RobotCreate` (and the body of an update).
#[derive(Deserialize)]
struct RobotJson {
    name: String,
    #[serde(default)]
    description: String,
    level: String,
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    permissions: Vec<RobotPermission>,
}

impl From<RobotJson> for RobotReq {
    fn from(r: RobotJson) -> RobotReq {
        RobotReq {
            name: r.name,
            description: r.description,
            level: r.level,
            disable: r.disable,
            duration: r.duration,
            secret: r.secret.filter(|s| !s.is_empty()),
            permissions: r
                .permissions
                .into_iter()
                .map(|p| PermissionReq {
                    kind: p.kind,
                    namespace: p.namespace,
                    access: p.access.into_iter().map(|a| (a.resource, a.action)).collect(),
                })
                .collect(),
        }
    }
}

fn robot_id(raw: &str) -> Result<i64, HarborError> {
    path_id(raw, "robot_id")
}

/// Harbor's `q` for robots: `Level=system`, or `Level=project,ProjectID=<id>`.
async fn robot_scope(api: &HarborApi, q: &[(String, String)]) -> Result<Option<i64>, HarborError> {
    let Some(query) = query_get(q, "q").filter(|s| !s.is_empty()) else { return Ok(None) };
    let mut project = None;
    let mut level = "system";
    for term in query.split(',') {
        let (k, v) = term.split_once('=').ok_or_else(|| HarborError::bad_request(format!("invalid q {query:?}")))?;
        let v = v.trim_start_matches('~').trim_matches('"');
        match k {
            "Level" | "level" => level = if v == "project" { "project" } else { "system" },
            "ProjectID" | "project_id" => {
                project = Some(v.parse::<i64>().map_err(|_| HarborError::bad_request("ProjectID must be a number"))?)
            }
            "ProjectName" | "project_name" => {
                project = Some(api.robots.project_id(v).await?.ok_or_else(|| {
                    HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("project {v} not found"))
                })?)
            }
            other => return Err(HarborError::bad_request(format!("unsupported query key {other:?}"))),
        }
    }
    match (level, project) {
        ("project", None) => Err(HarborError::bad_request("Level=project needs ProjectID")),
        ("system", Some(_)) => Err(HarborError::bad_request("ProjectID goes with Level=project")),
        (_, p) => Ok(p),
    }
}

async fn list_robots(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    let project = robot_scope(&api, &q).await?;
    let (robots, total) = api.robots.list(&caller.subject, project, page, size).await?;
    let body: Vec<Robot> = robots.iter().map(Robot::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/robots", &q, page, size, total))
}

async fn create_robot(State(api): State<Arc<HarborApi>>, caller: Caller, body: axum::body::Bytes) -> ApiResult {
    let req: RobotJson = json_body(&body)?;
    let created = api.robots.create(&caller.subject, &req.into()).await?;
    let body = RobotCreated {
        id: created.id,
        name: created.name,
        secret: created.secret,
        creation_time: rfc3339_millis(created.created_at),
        expires_at: created.expires_at,
    };
    let resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    Ok(with_location(resp, &format!("/api/v2.0/robots/{}", created.id)))
}

async fn get_robot(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let robot = api.robots.get(&caller.subject, robot_id(&id)?).await?;
    json(Robot::from(&robot))
}

async fn update_robot(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: RobotJson = json_body(&body)?;
    api.robots.update(&caller.subject, robot_id(&id)?, &req.into()).await?;
    ok()
}

/// `PATCH /robots/{id}`: a new secret, generated (and returned) or given by the caller (and,
/// as Harbor answers, not echoed back: the caller has it already).
async fn refresh_robot(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: RobotSec = if body.is_empty() { RobotSec { secret: None } } else { json_body(&body)? };
    let given = req.secret.as_deref().filter(|s| !s.is_empty());
    let secret = api.robots.refresh_secret(&caller.subject, robot_id(&id)?, given).await?;
    json(RobotSec { secret: Some(if given.is_some() { String::new() } else { secret }) })
}

async fn delete_robot(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    api.robots.delete(&caller.subject, robot_id(&id)?).await?;
    ok()
}
