//! Harbor's REST API v2.0 (`/api/v2.0`): the operations implemented so far, with Harbor's
//! paths, JSON shapes, paging headers and error bodies (`{"errors":[{"code","message"}]}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_auth::rbac::Subject;
use berth_core::identity::Identities;
use berth_core::identity::UserView;
use berth_core::projects::{MemberUser, MemberView, ProjectError, ProjectRef, ProjectView, Projects, RepositoryView};
use berth_core::query::ListQuery;
use berth_core::robots::{PermissionReq, RobotError, RobotReq, RobotView, Robots};
use berth_core::users::{NewUserReq, UserError, Users};
use berth_core::{Refusal, Refuses};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::auth::{ApiAuthError, CSRF_HEADER, HarborAuth, SESSION_COOKIE};
use crate::time::rfc3339_millis;

mod additions;
mod artifact;
mod audit;
mod labels;
mod operations;
mod purge;

/// The version `systeminfo` reports: Harbor's API level, and ours.
pub(crate) const HARBOR_API_VERSION: &str = concat!("v2.15.0-berth-", env!("CARGO_PKG_VERSION"));

pub struct HarborApi {
    pub auth: Arc<HarborAuth>,
    pub registry: Arc<berth_core::Registry>,
    pub identities: Identities,
    pub projects: Projects,
    pub users: Users,
    pub robots: Robots,
    pub external_url: Option<String>,
}

/// An error in Harbor's shape.
pub struct HarborError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `Retry-After`, in seconds, for refusals that pass by themselves.
    retry_after: Option<u64>,
}

impl HarborError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HarborError {
        HarborError { status, code, message: message.into(), retry_after: None }
    }

    /// 429: over a limit that passes by itself; retry after a second.
    fn busy(message: impl Into<String>) -> HarborError {
        HarborError {
            retry_after: Some(1),
            ..HarborError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
        }
    }

    fn with_retry_after(self, seconds: u64) -> HarborError {
        HarborError { retry_after: Some(seconds), ..self }
    }

    fn bad_request(message: impl Into<String>) -> HarborError {
        HarborError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    fn unauthorized() -> HarborError {
        HarborError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized")
    }
}

impl IntoResponse for HarborError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.message, "internal error");
        }
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal server error".into()
        } else {
            self.message
        };
        let body = serde_json::json!({"errors": [{"code": self.code, "message": message}]});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl HarborError {
    /// Harbor's status and code for a service's refusal.
    fn refused(e: &dyn Refuses) -> HarborError {
        let (status, code) = match e.refusal() {
            Refusal::Invalid => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Refusal::Conflict => (StatusCode::CONFLICT, "CONFLICT"),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Refusal::Precondition => (StatusCode::PRECONDITION_FAILED, "PRECONDITION"),
            Refusal::Busy => return HarborError::busy(e.to_string()),
            Refusal::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        };
        HarborError::new(status, code, e.to_string())
    }
}

impl From<ApiAuthError> for HarborError {
    fn from(e: ApiAuthError) -> Self {
        match e {
            ApiAuthError::Unauthorized => HarborError::unauthorized(),
            ApiAuthError::Csrf => HarborError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "CSRF token invalid"),
            ApiAuthError::Wait { seconds, why } => HarborError::busy(why).with_retry_after(seconds),
            ApiAuthError::Internal => {
                HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "authentication backend failed")
            }
        }
    }
}

macro_rules! refused_from {
    ($($t:ty),*) => {$(
        impl From<$t> for HarborError {
            fn from(e: $t) -> Self {
                HarborError::refused(&e)
            }
        }
    )*};
}

refused_from!(ProjectError, UserError, RobotError);

type ApiResult = Result<Response, HarborError>;

pub fn router(api: Arc<HarborApi>) -> Router {
    Router::new()
        .route("/c/login", axum::routing::post(portal_login))
        .route("/c/log_out", get(portal_logout))
        .route("/api/v2.0/ping", get(ping))
        .route("/api/v2.0/health", get(health))
        .route("/api/v2.0/systeminfo", get(systeminfo))
        .route("/api/v2.0/users/current", get(current_user))
        .route("/api/v2.0/users", get(list_users).post(create_user))
        .route("/api/v2.0/users/search", get(search_users))
        .route("/api/v2.0/users/{user_id}", get(get_user).put(update_user).delete(delete_user))
        .route("/api/v2.0/users/{user_id}/password", axum::routing::put(change_password))
        .route("/api/v2.0/users/{user_id}/sysadmin", axum::routing::put(set_sysadmin))
        .route("/api/v2.0/users/{user_id}/cli_secret", axum::routing::put(set_cli_secret))
        .route("/api/v2.0/projects", get(list_projects).head(project_exists).post(create_project))
        .route("/api/v2.0/projects/{project}", get(get_project).put(update_project).delete(delete_project))
        .route("/api/v2.0/robots", get(list_robots).post(create_robot))
        .route(
            "/api/v2.0/robots/{robot_id}",
            get(get_robot).put(update_robot).patch(refresh_robot).delete(delete_robot),
        )
        .route("/api/v2.0/projects/{project}/summary", get(project_summary))
        .route("/api/v2.0/projects/{project}/_deletable", get(project_deletable))
        .route("/api/v2.0/systeminfo/getcert", get(system_cert))
        .route("/api/v2.0/systeminfo/volumes", get(system_volumes))
        .route("/api/v2.0/projects/{project}/metadatas", get(list_metadata).post(add_metadata))
        .route("/api/v2.0/projects/{project}/metadatas/", get(list_metadata).post(add_metadata))
        .route(
            "/api/v2.0/projects/{project}/metadatas/{meta}",
            get(get_metadata).put(update_metadata).delete(delete_metadata),
        )
        .route("/api/v2.0/repositories", get(list_all_repositories))
        .route("/api/v2.0/search", get(search))
        .route("/api/v2.0/statistics", get(statistics))
        .route("/api/v2.0/projects/{project}/repositories", get(list_repositories))
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}",
            get(get_repository).put(update_repository).delete(delete_repository),
        )
        .route("/api/v2.0/users/current/permissions", get(current_permissions))
        .route("/api/v2.0/permissions", get(permission_sets))
        .route("/api/v2.0/projects/{project}/members", get(list_members).post(add_member))
        .route("/api/v2.0/projects/{project}/members/{mid}", get(get_member).put(update_member).delete(delete_member))
        .merge(artifact::routes())
        .merge(labels::routes())
        .merge(audit::routes())
        .merge(purge::routes())
        .merge(additions::routes())
        .with_state(api)
}

/// Harbor's operation id of a route of its API (`matched`: the route's pattern, parameters
/// under any name), for the `operation` label of the core HTTP metrics.
pub(crate) fn operation_id(method: &str, matched: &str) -> Option<&'static str> {
    let rest = matched.strip_prefix("/api/v2.0")?;
    let mut template = String::with_capacity(rest.len());
    let mut in_param = false;
    for c in rest.chars() {
        match c {
            '{' => {
                in_param = true;
                template.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => template.push(c),
            _ => {}
        }
    }
    let template = template.trim_end_matches('/');
    let find =
        |m: &str| operations::OPERATIONS.iter().find(|(om, t, _)| *om == m && *t == template).map(|(_, _, op)| *op);
    // A HEAD is served by the GET route where Harbor has no HEAD operation of its own.
    find(method).or_else(|| if method == "HEAD" { find("GET") } else { None })
}

impl HarborApi {
    /// The caller, who must be a system administrator (401 when anonymous, else 403 saying that
    /// only administrators may `what`).
    async fn sysadmin(&self, parts: &Parts, what: &str) -> Result<Subject, HarborError> {
        let subject = self.subject(parts).await?;
        if subject.is_anonymous() {
            return Err(HarborError::unauthorized());
        }
        if !subject.is_sysadmin() {
            return Err(HarborError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("only system administrators may {what}"),
            ));
        }
        Ok(subject)
    }

    async fn subject(&self, parts: &Parts) -> Result<Subject, HarborError> {
        let subject = self.auth.api_subject(parts).await;
        if let Ok(Subject::User { name, .. } | Subject::Robot { name, .. }) = &subject {
            berth_core::audit::Operator::identify(name);
        }
        Ok(subject?)
    }
}

fn query(parts: &Parts) -> Vec<(String, String)> {
    parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `page` (from 1) and `page_size` (1 to 100, default 10), as Harbor validates them.
fn paging(q: &[(String, String)]) -> Result<(i64, i64), HarborError> {
    let page = match query_get(q, "page") {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| HarborError::bad_request("page must be a positive integer"))?,
    };
    let size = match query_get(q, "page_size") {
        None | Some("") => 10,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=100).contains(s))
            .ok_or_else(|| HarborError::bad_request("page_size must be between 1 and 100"))?,
    };
    // The offset, `page * size` and the next page's number must be numbers: a page past
    // any listing is the client's mistake, not an overflow.
    if page == i64::MAX || page.checked_mul(size).is_none() {
        return Err(HarborError::bad_request("page is past the end of any listing"));
    }
    Ok((page, size))
}

/// `resp` with a `Location` header (a path that is not a valid header value is left out).
fn with_location(mut resp: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// 201 Created with an empty body and the new resource's `Location`, as Harbor answers creations.
fn created(location: &str) -> Response {
    with_location((StatusCode::CREATED, Body::empty()).into_response(), location)
}

/// Harbor's `q` and `sort` of a listing.
fn list_query(q: &[(String, String)]) -> Result<ListQuery, HarborError> {
    berth_core::query::parse(query_get(q, "q"), query_get(q, "sort")).map_err(HarborError::bad_request)
}

/// `X-Total-Count` and RFC 5988 `Link` headers of a paged list.
fn paged(mut resp: Response, path: &str, q: &[(String, String)], page: i64, size: i64, total: i64) -> Response {
    let link = |p: i64, rel: &str| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(k, _)| k != "page" && k != "page_size") {
            s.append_pair(k, v);
        }
        s.append_pair("page", &p.to_string()).append_pair("page_size", &size.to_string());
        format!("<{path}?{}>; rel=\"{rel}\"", s.finish())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page * size < total {
        links.push(link(page + 1, "next"));
    }
    let headers = resp.headers_mut();
    headers.insert("x-total-count", HeaderValue::from(total));
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(" , "))
    {
        headers.insert(header::LINK, v);
    }
    resp
}

async fn ping() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Pong").into_response()
}

async fn health(State(api): State<Arc<HarborApi>>) -> Response {
    let mut components = vec![serde_json::json!({"name": "core", "status": "healthy"})];
    for c in api.registry.health().await {
        components.push(match &c.error {
            None => serde_json::json!({"name": c.name, "status": "healthy"}),
            Some(e) => serde_json::json!({"name": c.name, "status": "unhealthy", "error": e}),
        });
    }
    let healthy = components.iter().all(|c| c["status"] == "healthy");
    axum::Json(serde_json::json!({"status": if healthy { "healthy" } else { "unhealthy" }, "components": components}))
        .into_response()
}

async fn systeminfo(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let restriction = api.projects.setting("project_creation_restriction").await?.unwrap_or_else(|| "everyone".into());
    let external = crate::client::own_url(api.external_url.as_deref(), &parts.extensions);
    let registry_url = external.split("://").nth(1).unwrap_or(&external).to_string();
    let mut info = serde_json::json!({
        "auth_mode": "db_auth",
        "primary_auth_mode": false,
        "self_registration": false,
        "harbor_version": HARBOR_API_VERSION,
        "current_time": crate::time::rfc3339(std::time::SystemTime::now()),
    });
    // Harbor shows the rest only to signed-in callers.
    if !subject.is_anonymous() {
        let extra = serde_json::json!({
            "external_url": external,
            "registry_url": registry_url,
            "project_creation_restriction": restriction,
            "has_ca_root": false,
            "read_only": false,
            "with_chartmuseum": false,
            "notification_enable": false,
            "registry_storage_provider_name": api.registry.storage_provider(),
        });
        if let (Some(info), Some(extra)) = (info.as_object_mut(), extra.as_object()) {
            info.extend(extra.clone());
        }
    }
    Ok(axum::Json(info).into_response())
}

async fn current_user(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let Subject::User { id, .. } = api.subject(&parts).await? else {
        return Err(HarborError::unauthorized());
    };
    let user = api
        .identities
        .user_view(id)
        .await
        .map_err(|e| HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?
        .ok_or_else(HarborError::unauthorized)?;
    Ok(axum::Json(user_json(&user)).into_response())
}

fn user_json(user: &UserView) -> serde_json::Value {
    serde_json::json!({
        "user_id": user.id,
        "username": user.username,
        "email": user.email.clone().unwrap_or_default(),
        "realname": user.realname,
        "comment": user.comment,
        "sysadmin_flag": user.sysadmin,
        "admin_role_in_auth": false,
        "creation_time": rfc3339_millis(user.created_at),
        "update_time": rfc3339_millis(user.updated_at),
    })
}

fn user_id(raw: &str) -> Result<i64, HarborError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HarborError::bad_request("user_id must be a positive integer"))
}

async fn list_users(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let (users, total) = api.users.list(&subject, &list_query(&q)?, page, size).await?;
    let body: Vec<_> = users.iter().map(user_json).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/users", &q, page, size, total))
}

async fn search_users(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let Some(name) = query_get(&q, "username").filter(|n| !n.is_empty()) else {
        return Err(HarborError::bad_request("username is required"));
    };
    let (users, total) = api.users.search(&subject, name, page, size).await?;
    let body: Vec<_> = users.iter().map(|(id, name)| serde_json::json!({"user_id": id, "username": name})).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/users/search", &q, page, size, total))
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

async fn create_user(State(api): State<Arc<HarborApi>>, parts: Parts, body: axum::body::Bytes) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let req: UserCreationReq = json_body(&body)?;
    let email = req.email.as_deref().filter(|e| !e.is_empty());
    let new = NewUserReq {
        username: &req.username,
        email,
        realname: &req.realname,
        comment: &req.comment,
        password: &req.password,
    };
    let id = api.users.create(&subject, &new).await?;
    Ok(created(&format!("/api/v2.0/users/{id}")))
}

async fn get_user(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let user = api.users.get(&subject, user_id(&id)?).await?;
    Ok(axum::Json(user_json(&user)).into_response())
}

async fn update_user(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    parts: Parts,
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
    let subject = api.subject(&parts).await?;
    let req: UserProfile = json_body(&body)?;
    let email = req.email.as_deref().filter(|e| !e.is_empty());
    api.users.update_profile(&subject, user_id(&id)?, email, &req.realname, &req.comment).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn delete_user(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.users.delete(&subject, user_id(&id)?).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn change_password(
    State(api): State<Arc<HarborApi>>,
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
    let subject = api.subject(&parts).await?;
    let req: PasswordReq = json_body(&body)?;
    let id = user_id(&id)?;
    // The old password is a login: throttled, counted and audited as one.
    let old_verified = match (&subject, Users::needs_old_password(&subject, id)) {
        (Subject::User { name, .. }, Ok(true)) => {
            let old = req.old_password.as_deref().unwrap_or_default();
            let source = crate::client::client_addr(&parts.extensions);
            api.identities.authenticate_user(name, old, source).await.map_err(ApiAuthError::from)?.is_some()
        }
        _ => false,
    };
    api.users.change_password(&subject, id, old_verified, &req.new_password).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn set_sysadmin(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UserSysAdminFlag {
        sysadmin_flag: bool,
    }
    let subject = api.subject(&parts).await?;
    let req: UserSysAdminFlag = json_body(&body)?;
    api.users.set_sysadmin(&subject, user_id(&id)?, req.sysadmin_flag).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

/// CLI secrets exist only when users come from OIDC; Berth authenticates against its own
/// database, so, as Harbor in `db_auth` mode, this answers 412.
async fn set_cli_secret(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.users.get(&subject, user_id(&id)?).await?;
    Err(HarborError::new(
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION",
        "CLI secrets are only available in OIDC authentication mode",
    ))
}

fn project_json(p: &ProjectView) -> serde_json::Value {
    let role_ids: Vec<i64> = p.role.map(|r| r.id()).into_iter().collect();
    serde_json::json!({
        "project_id": p.id,
        "owner_id": p.owner_id,
        "owner_name": p.owner_name,
        "name": p.name,
        "registry_id": 0,
        "creation_time": rfc3339_millis(p.created_at),
        "update_time": rfc3339_millis(p.updated_at),
        "deleted": false,
        "togglable": true,
        "current_user_role_id": p.role.map_or(0, |r| r.id()),
        "current_user_role_ids": role_ids,
        "repo_count": p.repo_count,
        "metadata": p.metadata,
        "cve_allowlist": {"project_id": p.id, "items": []},
    })
}

/// Harbor's `{project_name_or_id}`: a name when `X-Is-Resource-Name: true` or when it is not
/// a number.
fn project_ref<'a>(parts: &Parts, raw: &'a str) -> ProjectRef<'a> {
    let by_name = parts
        .headers
        .get("x-is-resource-name")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match raw.parse::<i64>() {
        Ok(id) if !by_name => ProjectRef::Id(id),
        _ => ProjectRef::Name(raw),
    }
}

async fn list_projects(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let public = match query_get(&q, "public") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(HarborError::bad_request("public must be true or false")),
    };
    let name = query_get(&q, "name").unwrap_or("");
    let (projects, total) = api.projects.list(&subject, name, public, &list_query(&q)?, page, size).await?;
    let body: Vec<_> = projects.iter().map(project_json).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/projects", &q, page, size, total))
}

async fn project_exists(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let q = query(&parts);
    let Some(name) = query_get(&q, "project_name").filter(|n| !n.is_empty()) else {
        return Err(HarborError::bad_request("project_name is required"));
    };
    let status = if api.projects.exists(name).await? { StatusCode::OK } else { StatusCode::NOT_FOUND };
    Ok((status, Body::empty()).into_response())
}

#[derive(Deserialize)]
struct ProjectReq {
    project_name: String,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Option<String>>>,
}

fn json_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, HarborError> {
    serde_json::from_slice(bytes).map_err(|e| HarborError::bad_request(format!("invalid request body: {e}")))
}

fn metadata_of(req: Option<BTreeMap<String, Option<String>>>) -> BTreeMap<String, String> {
    req.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}

async fn create_project(State(api): State<Arc<HarborApi>>, parts: Parts, body: axum::body::Bytes) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let req: ProjectReq = json_body(&body)?;
    let mut metadata = metadata_of(req.metadata);
    if let Some(public) = req.public {
        metadata.entry("public".into()).or_insert_with(|| public.to_string());
    }
    let id = api.projects.create(&subject, &req.project_name, metadata).await?;
    let by_name =
        parts.headers.get("x-resource-name-in-location").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "true");
    let location =
        if by_name { format!("/api/v2.0/projects/{}", req.project_name) } else { format!("/api/v2.0/projects/{id}") };
    Ok(created(&location))
}

async fn get_project(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let view = api.projects.get(&subject, &project_ref(&parts, &project)).await?;
    Ok(axum::Json(project_json(&view)).into_response())
}

async fn update_project(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UpdateReq {
        #[serde(default)]
        metadata: Option<BTreeMap<String, Option<String>>>,
    }
    let subject = api.subject(&parts).await?;
    let req: UpdateReq = json_body(&body)?;
    api.projects.update_metadata(&subject, &project_ref(&parts, &project), &metadata_of(req.metadata)).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn delete_project(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.projects.delete(&subject, &project_ref(&parts, &project)).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

fn member_json(m: &MemberView) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "project_id": m.project_id,
        "entity_name": m.entity_name,
        "entity_id": m.entity_id,
        "entity_type": m.entity_type,
        "role_id": m.role.id(),
        "role_name": m.role.name(),
    })
}

fn member_id(raw: &str) -> Result<i64, HarborError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HarborError::bad_request("mid must be a positive integer"))
}

async fn list_members(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let name = query_get(&q, "entityname").unwrap_or("");
    let (members, total) = api.projects.members(&subject, &project_ref(&parts, &project), name, page, size).await?;
    let body: Vec<_> = members.iter().map(member_json).collect();
    let path = format!("/api/v2.0/projects/{project}/members");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

async fn add_member(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct UserEntity {
        #[serde(default)]
        user_id: Option<i64>,
        #[serde(default)]
        username: Option<String>,
    }
    #[derive(Deserialize)]
    struct ProjectMember {
        role_id: i64,
        #[serde(default)]
        member_user: Option<UserEntity>,
        #[serde(default)]
        member_group: Option<serde_json::Value>,
    }
    let subject = api.subject(&parts).await?;
    let req: ProjectMember = json_body(&body)?;
    if req.member_group.is_some() {
        return Err(HarborError::bad_request("group members need user groups, which this installation does not have"));
    }
    let user = match &req.member_user {
        Some(UserEntity { user_id: Some(id), .. }) if *id > 0 => MemberUser::Id(*id),
        Some(UserEntity { username: Some(name), .. }) if !name.is_empty() => MemberUser::Name(name),
        _ => return Err(HarborError::bad_request("member_user with a user_id or username is required")),
    };
    let project_ref = project_ref(&parts, &project);
    let id = api.projects.add_member(&subject, &project_ref, user, req.role_id).await?;
    Ok(created(&format!("/api/v2.0/projects/{project}/members/{id}")))
}

async fn get_member(
    State(api): State<Arc<HarborApi>>,
    Path((project, mid)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let member = api.projects.member(&subject, &project_ref(&parts, &project), member_id(&mid)?).await?;
    Ok(axum::Json(member_json(&member)).into_response())
}

async fn update_member(
    State(api): State<Arc<HarborApi>>,
    Path((project, mid)): Path<(String, String)>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct RoleRequest {
        role_id: i64,
    }
    let subject = api.subject(&parts).await?;
    let req: RoleRequest = json_body(&body)?;
    api.projects.set_member_role(&subject, &project_ref(&parts, &project), member_id(&mid)?, req.role_id).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn delete_member(
    State(api): State<Arc<HarborApi>>,
    Path((project, mid)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.projects.remove_member(&subject, &project_ref(&parts, &project), member_id(&mid)?).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

fn robot_json(r: &RobotView) -> serde_json::Value {
    let permissions: Vec<_> = r
        .permissions
        .iter()
        .map(|p| {
            let access: Vec<_> =
                p.access.iter().map(|(res, act)| serde_json::json!({"resource": res, "action": act})).collect();
            serde_json::json!({"kind": p.kind, "namespace": p.namespace, "access": access})
        })
        .collect();
    serde_json::json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "level": r.level,
        "duration": r.duration,
        "editable": r.editable,
        "disable": r.disable,
        "expires_at": r.expires_at,
        "permissions": permissions,
        "creator_type": r.creator_type,
        "creator_ref": r.creator_ref.parse::<i64>().unwrap_or(0),
        "creation_time": rfc3339_millis(r.created_at),
        "update_time": rfc3339_millis(r.updated_at),
    })
}

#[derive(Deserialize)]
struct AccessJson {
    resource: String,
    action: String,
}

#[derive(Deserialize)]
struct PermissionJson {
    kind: String,
    namespace: String,
    #[serde(default)]
    access: Vec<AccessJson>,
}

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
    permissions: Vec<PermissionJson>,
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
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HarborError::bad_request("robot_id must be a positive integer"))
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

async fn list_robots(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let project = robot_scope(&api, &q).await?;
    let (robots, total) = api.robots.list(&subject, project, page, size).await?;
    let body: Vec<_> = robots.iter().map(robot_json).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/robots", &q, page, size, total))
}

async fn create_robot(State(api): State<Arc<HarborApi>>, parts: Parts, body: axum::body::Bytes) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let req: RobotJson = json_body(&body)?;
    let created = api.robots.create(&subject, &req.into()).await?;
    let resp = (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "id": created.id,
            "name": created.name,
            "secret": created.secret,
            "creation_time": rfc3339_millis(created.created_at),
            "expires_at": created.expires_at,
        })),
    )
        .into_response();
    Ok(with_location(resp, &format!("/api/v2.0/robots/{}", created.id)))
}

async fn get_robot(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let robot = api.robots.get(&subject, robot_id(&id)?).await?;
    Ok(axum::Json(robot_json(&robot)).into_response())
}

async fn update_robot(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let req: RobotJson = json_body(&body)?;
    api.robots.update(&subject, robot_id(&id)?, &req.into()).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn refresh_robot(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct RobotSec {
        #[serde(default)]
        secret: Option<String>,
    }
    let subject = api.subject(&parts).await?;
    let req: RobotSec = if body.is_empty() { RobotSec { secret: None } } else { json_body(&body)? };
    let secret = api.robots.refresh_secret(&subject, robot_id(&id)?, req.secret.as_deref()).await?;
    Ok(axum::Json(serde_json::json!({"secret": secret})).into_response())
}

async fn delete_robot(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.robots.delete(&subject, robot_id(&id)?).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

/// `POST /c/login` with a form `principal=…&password=…`: sets the session cookie (HttpOnly) and
/// hands out the CSRF token (header and readable cookie) that mutating calls must echo.
async fn portal_login(State(api): State<Arc<HarborApi>>, parts: Parts, body: axum::body::Bytes) -> ApiResult {
    // Login CSRF: a page elsewhere must not sign a browser in under the attacker's account.
    // Browsers say where a request comes from; other clients send neither header.
    if cross_site(&parts, api.external_url.as_deref()) {
        return Err(HarborError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "cross-site login refused"));
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let principal = query_get(&form, "principal").unwrap_or("");
    let password = query_get(&form, "password").unwrap_or("");
    let session = api.auth.login(&parts, principal, password).await?;
    let Some(session) = session else { return Err(HarborError::unauthorized()) };
    let mut resp = (StatusCode::OK, Body::empty()).into_response();
    let headers = resp.headers_mut();
    // Secure whenever the client reached Berth over HTTPS, so the cookie never goes out in
    // the clear afterwards.
    let https = api.external_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        || parts.extensions.get::<crate::client::OverHttps>().is_some();
    let secure = if https { "; Secure" } else { "" };
    let cookies = [
        format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}", session.id),
        format!("__csrf={}; Path=/; SameSite=Strict{secure}", session.csrf),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&session.csrf) {
        headers.insert(CSRF_HEADER, v);
    }
    Ok(resp)
}

/// Whether a browser says the request comes from another site: `Sec-Fetch-Site: cross-site`,
/// or an `Origin` whose host is neither the request's nor `external_url`'s.
fn cross_site(parts: &Parts, external_url: Option<&str>) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = header("origin") else { return false };
    let authority = |url: &str| url.split("://").nth(1).unwrap_or(url).trim_end_matches('/').to_ascii_lowercase();
    let origin = authority(origin);
    let host = header("host").map(str::to_ascii_lowercase);
    let external = external_url.map(authority);
    Some(&origin) != host.as_ref() && Some(&origin) != external.as_ref()
}

async fn portal_logout(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    api.auth
        .logout(&parts)
        .await
        .map_err(|_| HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "could not end the session"))?;
    let mut resp = (StatusCode::OK, Body::empty()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0")) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn list_metadata(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let map = api.projects.metadata(&subject, &project_ref(&parts, &project), None).await?;
    Ok(axum::Json(map).into_response())
}

async fn get_metadata(
    State(api): State<Arc<HarborApi>>,
    Path((project, meta)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let map = api.projects.metadata(&subject, &project_ref(&parts, &project), Some(&meta)).await?;
    Ok(axum::Json(map).into_response())
}

async fn add_metadata(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let entries: BTreeMap<String, String> = json_body(&body)?;
    api.projects.add_metadata(&subject, &project_ref(&parts, &project), &entries).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn update_metadata(
    State(api): State<Arc<HarborApi>>,
    Path((project, meta)): Path<(String, String)>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let entries: BTreeMap<String, String> = json_body(&body)?;
    api.projects.update_metadata_key(&subject, &project_ref(&parts, &project), &meta, &entries).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn delete_metadata(
    State(api): State<Arc<HarborApi>>,
    Path((project, meta)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.projects.delete_metadata_key(&subject, &project_ref(&parts, &project), &meta).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

fn permission_list(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<serde_json::Value> {
    pairs.into_iter().map(|(resource, action)| serde_json::json!({"resource": resource, "action": action})).collect()
}

/// `GET /users/current/permissions?scope=/project/<id>&relative=true`: what the caller may do
/// there (`relative=false` prefixes each resource with the scope). The scope `/` lists system
/// permissions: all of them for an administrator, none otherwise.
async fn current_permissions(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    if subject.is_anonymous() {
        return Err(HarborError::unauthorized());
    }
    let q = query(&parts);
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
        api.projects.permissions(&subject, &ProjectRef::Id(id)).await?
    };
    let pairs =
        pairs.into_iter().map(|(r, a)| if relative || scope.is_empty() { (r, a) } else { (format!("{scope}/{r}"), a) });
    Ok(axum::Json(permission_list(pairs)).into_response())
}

/// `GET /permissions`: the permissions a robot account may be given, per scope.
async fn permission_sets(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    if api.subject(&parts).await?.is_anonymous() {
        return Err(HarborError::unauthorized());
    }
    let flatten = |table: &[(berth_auth::rbac::Resource, &[berth_auth::rbac::Action])]| {
        permission_list(
            table
                .iter()
                .flat_map(|(r, actions)| actions.iter().map(move |a| (r.as_str().to_string(), a.as_str().to_string()))),
        )
    };
    Ok(axum::Json(serde_json::json!({
        "system": flatten(berth_auth::rbac::ROBOT_SYSTEM_PERMISSIONS),
        "project": flatten(berth_auth::rbac::ROBOT_PROJECT_PERMISSIONS),
    }))
    .into_response())
}

fn repository_json(r: &RepositoryView) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "project_id": r.project_id,
        "name": r.name,
        "description": r.description,
        "artifact_count": r.artifact_count,
        "pull_count": r.pull_count,
        "creation_time": rfc3339_millis(r.created_at),
        "update_time": rfc3339_millis(r.updated_at),
    })
}

/// Harbor's `{repository_name}` has its slashes encoded twice (`a%252Fb`): the router decoded
/// once, this decodes the rest.
fn repository_name(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

async fn list_all_repositories(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let (repos, total) = api.projects.repositories(&subject, None, &list_query(&q)?, page, size).await?;
    let body: Vec<_> = repos.iter().map(repository_json).collect();
    Ok(paged(axum::Json(body).into_response(), "/api/v2.0/repositories", &q, page, size, total))
}

async fn list_repositories(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let (page, size) = paging(&q)?;
    let project_ref = project_ref(&parts, &project);
    let (repos, total) = api.projects.repositories(&subject, Some(&project_ref), &list_query(&q)?, page, size).await?;
    let body: Vec<_> = repos.iter().map(repository_json).collect();
    let path = format!("/api/v2.0/projects/{project}/repositories");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

async fn get_repository(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let view = api.projects.repository(&subject, &project_ref(&parts, &project), &repository_name(&repo)).await?;
    Ok(axum::Json(repository_json(&view)).into_response())
}

async fn update_repository(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo)): Path<(String, String)>,
    parts: Parts,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct RepositoryReq {
        #[serde(default)]
        description: String,
    }
    let subject = api.subject(&parts).await?;
    let req: RepositoryReq = json_body(&body)?;
    api.projects
        .set_repository_description(&subject, &project_ref(&parts, &project), &repository_name(&repo), &req.description)
        .await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn delete_repository(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let subject = api.subject(&parts).await?;
    api.projects.delete_repository(&subject, &project_ref(&parts, &project), &repository_name(&repo)).await?;
    Ok((StatusCode::OK, Body::empty()).into_response())
}

async fn search(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let q = query(&parts);
    let term = query_get(&q, "q").unwrap_or("");
    let (projects, repos) = api.projects.search(&subject, term).await?;
    let repository: Vec<_> = repos
        .iter()
        .map(|(r, project, public)| {
            serde_json::json!({
                "project_id": r.project_id,
                "project_name": project,
                "project_public": public,
                "repository_name": r.name,
                "pull_count": r.pull_count,
                "artifact_count": r.artifact_count,
            })
        })
        .collect();
    let project: Vec<_> = projects.iter().map(project_json).collect();
    Ok(axum::Json(serde_json::json!({"project": project, "repository": repository})).into_response())
}

async fn statistics(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let st = api.projects.statistics(&subject).await?;
    let mut body = serde_json::json!({
        "private_project_count": st.private_projects,
        "private_repo_count": st.private_repositories,
        "public_project_count": st.public_projects,
        "public_repo_count": st.public_repositories,
        "total_project_count": st.public_projects + st.private_projects,
        "total_repo_count": st.public_repositories + st.private_repositories,
    });
    if let Some(bytes) = st.storage_bytes {
        body["total_storage_consumption"] = bytes.into();
    }
    Ok(axum::Json(body).into_response())
}

async fn project_summary(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let sum = api.projects.summary(&subject, &project_ref(&parts, &project)).await?;
    let [admins, developers, guests, maintainers, limited] = sum.members_by_role;
    Ok(axum::Json(serde_json::json!({
        "repo_count": sum.repo_count,
        "project_admin_count": admins,
        "maintainer_count": maintainers,
        "developer_count": developers,
        "guest_count": guests,
        "limited_guest_count": limited,
    }))
    .into_response())
}

async fn project_deletable(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    let (deletable, message) = api.projects.deletable(&subject, &project_ref(&parts, &project)).await?;
    Ok(axum::Json(serde_json::json!({"deletable": deletable, "message": message})).into_response())
}

/// Harbor serves the CA certificate it was installed with; Berth has none until TLS is
/// configured, and answers as Harbor does without one: 404.
async fn system_cert() -> ApiResult {
    Err(HarborError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no root CA certificate is configured"))
}

/// Capacity of the blob volume, for administrators.
async fn system_volumes(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    api.sysadmin(&parts, "see volumes").await?;
    let capacity = api
        .registry
        .storage_capacity()
        .await
        .map_err(|e| HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?;
    let storage: Vec<_> =
        capacity.map(|(total, free)| serde_json::json!({"total": total, "free": free})).into_iter().collect();
    Ok(axum::Json(serde_json::json!({"storage": storage})).into_response())
}
