//! Harbor's `member` tag: a project's members and their roles.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use berth_core::projects::{MemberUser, MemberView};
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json, json_body, ok, paged, paging, path_id, query_get,
};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects/{project}/members", get(list_members).post(add_member))
        .route("/api/v2.0/projects/{project}/members/{mid}", get(get_member).put(update_member).delete(delete_member))
}

/// Harbor's `ProjectMemberEntity`.
#[derive(Serialize)]
struct ProjectMemberEntity {
    id: i64,
    project_id: i64,
    entity_name: String,
    entity_id: i64,
    entity_type: String,
    role_id: i64,
    role_name: &'static str,
}

impl From<&MemberView> for ProjectMemberEntity {
    fn from(m: &MemberView) -> ProjectMemberEntity {
        ProjectMemberEntity {
            id: m.id,
            project_id: m.project_id,
            entity_name: m.entity_name.clone(),
            entity_id: m.entity_id,
            entity_type: m.entity_type.clone(),
            role_id: m.role.id(),
            role_name: m.role.name(),
        }
    }
}

fn member_id(raw: &str) -> Result<i64, HarborError> {
    path_id(raw, "mid")
}

async fn list_members(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let (page, size) = paging(&q)?;
    let name = query_get(&q, "entityname").unwrap_or("");
    let (members, total) = api.projects.members(&caller.subject, &caller.project(&project), name, page, size).await?;
    let body: Vec<ProjectMemberEntity> = members.iter().map(ProjectMemberEntity::from).collect();
    let path = format!("/api/v2.0/projects/{project}/members");
    Ok(paged(json(body)?, &path, &q, page, size, total))
}

#[derive(Deserialize)]
struct UserEntity {
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    username: Option<String>,
}

/// Harbor's `UserGroup` as a member request names one.
#[derive(Deserialize)]
struct UserGroup {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    ldap_group_dn: Option<String>,
}

impl UserGroup {
    /// A group that names nothing, which Harbor ignores (harbor-cli always sends `{}` beside
    /// `member_user`).
    fn is_empty(&self) -> bool {
        self.id.unwrap_or(0) == 0
            && self.group_name.as_deref().unwrap_or("").is_empty()
            && self.ldap_group_dn.as_deref().unwrap_or("").is_empty()
    }
}

async fn add_member(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct ProjectMember {
        role_id: i64,
        #[serde(default)]
        member_user: Option<UserEntity>,
        #[serde(default)]
        member_group: Option<UserGroup>,
    }
    let req: ProjectMember = json_body(&body)?;
    if req.member_group.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(HarborError::bad_request("group members need user groups, which this installation does not have"));
    }
    let user = match &req.member_user {
        Some(UserEntity { user_id: Some(id), .. }) if *id > 0 => MemberUser::Id(*id),
        Some(UserEntity { username: Some(name), .. }) if !name.is_empty() => MemberUser::Name(name),
        _ => return Err(HarborError::bad_request("member_user with a user_id or username is required")),
    };
    let id = api.projects.add_member(&caller.subject, &caller.project(&project), user, req.role_id).await?;
    Ok(created(&format!("/api/v2.0/projects/{project}/members/{id}")))
}

async fn get_member(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, mid)): Path<(String, String)>,
) -> ApiResult {
    let member = api.projects.member(&caller.subject, &caller.project(&project), member_id(&mid)?).await?;
    json(ProjectMemberEntity::from(&member))
}

async fn update_member(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, mid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct RoleRequest {
        role_id: i64,
    }
    let req: RoleRequest = json_body(&body)?;
    api.projects.set_member_role(&caller.subject, &caller.project(&project), member_id(&mid)?, req.role_id).await?;
    ok()
}

async fn delete_member(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((project, mid)): Path<(String, String)>,
) -> ApiResult {
    api.projects.remove_member(&caller.subject, &caller.project(&project), member_id(&mid)?).await?;
    ok()
}
