//! Harbor's `user` tag: users, the current user and what they may do, passwords and the
//! administrator flag.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use berth_auth::rbac::Subject;
use berth_core::identity::UserView;
use berth_core::projects::ProjectRef;
use berth_core::users::{NewUserReq, Users};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json, json_body, list_query, ok, paged, paging, path_id,
    query_get,
};
use crate::auth::ApiAuthError;
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/users/current", get(current_user))
        .route("/api/v2.0/users/current/permissions", get(current_permissions))
        .route("/api/v2.0/users", get(list_users).post(create_user))
        .route("/api/v2.0/users/search", get(search_users))
        .route("/api/v2.0/users/{user_id}", get(get_user).put(update_user).delete(delete_user))
        .route("/api/v2.0/users/{user_id}/password", put(change_password))
        .route("/api/v2.0/users/{user_id}/sysadmin", put(set_sysadmin))
        .route("/api/v2.0/users/{user_id}/cli_secret", put(set_cli_secret))
}

/// Harbor's `UserResp`.
#[derive(Serialize)]
struct UserResp {
    user_id: i64,
    username: String,
    email: String,
    realname: String,
    comment: String,
    sysadmin_flag: bool,
    admin_role_in_auth: bool,
    creation_time: String,
    update_time: String,
}

impl From<&UserView> for UserResp {
    fn from(user: &UserView) -> UserResp {
        UserResp {
            user_id: user.id,
            username: user.username.clone(),
            email: user.email.clone().unwrap_or_default(),
            realname: user.realname.clone(),
            comment: user.comment.clone(),
            sysadmin_flag: user.sysadmin,
            admin_role_in_auth: false,
            creation_time: rfc3339_millis(user.created_at),
            update_time: rfc3339_millis(user.updated_at),
        }
    }
}

/// Harbor's `UserSearchRespItem`.
#[derive(Serialize)]
struct UserSearchRespItem {
    user_id: i64,
    username: String,
}

/// Harbor's `Permission`.
#[derive(Serialize)]
pub(super) struct Permission {
    pub resource: String,
    pub action: String,
}

pub(super) fn permission_list(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<Permission> {
    pairs.into_iter().map(|(resource, action)| Permission { resource, action }).collect()
}

fn user_id(raw: &str) -> Result<i64, HarborError> {
    path_id(raw, "user_id")
}

async fn current_user(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    let Subject::User { id, .. } = caller.subject else {
        return Err(HarborError::unauthorized());
    };
    let user = api
        .identities
        .user_view(id)
        .await
        .map_err(|e| HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?
        .ok_or_else(HarborError::unauthorized)?;
    json(UserResp::from(&user))
}

/// `GET /users/current/permissions?scope=/project/<id>&relative=true`: what the caller may do
/// there (`relative=false` prefixes each resource with the scope). The scope `/` lists system
/// permissions: all of them for an administrator, none otherwise.
async fn current_permissions(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let subject = caller.signed_in()?;
    let scope = query_get(&q, "scope").unwrap_or("/").trim_end_matches('/').to_string();
    let relative = query_get(&q, "relative").is_some_and(|v| v == "true");
    let pairs: Vec<(String, String)> = if scope.is_empty() {
        if subject.is_sysadmin() {
            berth_auth::rbac::ROBOT_SYSTEM_PERMISSIONS
                .iter()
                .flat_map(|(r, actions)| actions.iter().map(move |a| (r.as_str().to_string(), a.as_str().to_string())))
                .collect()
        } else {
            Vec::new()
        }
    } else {
        let id = scope
            .strip_prefix("/project/")
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or_else(|| HarborError::bad_request(format!("unsupported scope {scope:?}: use / or /project/<id>")))?;
        api.projects.permissions(subject, &ProjectRef::Id(id)).await?
    };
    let pairs =
        pairs.into_iter().map(|(r, a)| if relative || scope.is_empty() { (r, a) } else { (format!("{scope}/{r}"), a) });
    json(permission_list(pairs))
}

async fn list_users(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    let (users, total) = api.users.list(&caller.subject, &list_query(&q)?, page, size).await?;
    let body: Vec<UserResp> = users.iter().map(UserResp::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/users", &q, page, size, total))
}

async fn search_users(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    let Some(name) = query_get(&q, "username").filter(|n| !n.is_empty()) else {
        return Err(HarborError::bad_request("username is required"));
    };
    let (users, total) = api.users.search(&caller.subject, name, page, size).await?;
    let body: Vec<UserSearchRespItem> =
        users.into_iter().map(|(user_id, username)| UserSearchRespItem { user_id, username }).collect();
    Ok(paged(json(body)?, "/api/v2.0/users/search", &q, page, size, total))
}

#[derive(Deserialize)]
struct UserCreationReq {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
}

async fn create_user(State(api): State<Arc<HarborApi>>, caller: Caller, body: axum::body::Bytes) -> ApiResult {
    let req: UserCreationReq = json_body(&body)?;
    let email = req.email.as_deref().filter(|e| !e.is_empty());
    let new = NewUserReq {
        username: &req.username,
        email,
        realname: &req.realname,
        comment: &req.comment,
        password: &req.password,
    };
    let id = api.users.create(&caller.subject, &new).await?;
    Ok(created(&format!("/api/v2.0/users/{id}")))
}

async fn get_user(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let user = api.users.get(&caller.subject, user_id(&id)?).await?;
    json(UserResp::from(&user))
}

async fn update_user(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UserProfile {
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        realname: String,
        #[serde(default)]
        comment: String,
    }
    let req: UserProfile = json_body(&body)?;
    let email = req.email.as_deref().filter(|e| !e.is_empty());
    api.users.update_profile(&caller.subject, user_id(&id)?, email, &req.realname, &req.comment).await?;
    ok()
}

async fn delete_user(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    api.users.delete(&caller.subject, user_id(&id)?).await?;
    ok()
}

async fn change_password(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct PasswordReq {
        #[serde(default)]
        old_password: Option<String>,
        new_password: String,
    }
    let req: PasswordReq = json_body(&body)?;
    let id = user_id(&id)?;
    // The old password is a login: throttled, counted and audited as one.
    let old_verified = match (&caller.subject, Users::needs_old_password(&caller.subject, id)) {
        (Subject::User { name, .. }, Ok(true)) => {
            let old = req.old_password.as_deref().unwrap_or_default();
            let source = crate::client::client_addr(&parts.extensions);
            api.identities.authenticate_user(name, old, source).await.map_err(ApiAuthError::from)?.is_some()
        }
        _ => false,
    };
    api.users.change_password(&caller.subject, id, old_verified, &req.new_password).await?;
    ok()
}

async fn set_sysadmin(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UserSysAdminFlag {
        sysadmin_flag: bool,
    }
    let req: UserSysAdminFlag = json_body(&body)?;
    api.users.set_sysadmin(&caller.subject, user_id(&id)?, req.sysadmin_flag).await?;
    ok()
}

/// CLI secrets exist only when users come from OIDC; Berth authenticates against its own
/// database, so, as Harbor in `db_auth` mode, this answers 412.
async fn set_cli_secret(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    api.users.get(&caller.subject, user_id(&id)?).await?;
    Err(HarborError::new(
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION",
        "CLI secrets are only available in OIDC authentication mode",
    ))
}
