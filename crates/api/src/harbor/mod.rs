//! Harbor's REST API v2.0 (`/api/v2.0`): the operations implemented so far, with Harbor's
//! paths, JSON shapes, paging headers and error bodies (`{"errors":[{"code","message"}]}`).
//!
//! One module per tag of Harbor's swagger (`user`, `project`, `artifact`, ...), each with its
//! routes and its response types (`Serialize` structs named as Harbor's definitions). Every
//! handler learns who calls from the [`Caller`] extractor and reads its query through [`Query`];
//! this module holds what they share: the error shape, paging, and the router.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use berth_auth::rbac::{Action, Policy, Resource, Subject};
use berth_core::identity::Identities;
use berth_core::projects::{ProjectError, ProjectRef, Projects};
use berth_core::query::ListQuery;
use berth_core::robots::{RobotError, Robots};
use berth_core::users::{UserError, Users};
use berth_core::{Refusal, Refuses};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::auth::{ApiAuthError, HarborAuth};

mod additions;
mod artifact;
mod audit;
mod configure;
mod execution;
mod gc;
mod health;
mod icon;
mod immutable;
mod jobservice;
mod labels;
mod member;
mod operations;
mod permissions;
mod ping;
mod portal;
mod project;
mod project_metadata;
mod purge;
mod quota;
mod repository;
mod retention;
mod robot;
mod scan;
mod scan_all;
mod scanner;
mod schedule;
mod search;
mod securityhub;
mod statistic;
mod system_cve_allowlist;
mod systeminfo;
mod user;

/// The version `systeminfo` reports: Harbor's API level, and ours.
pub(crate) const HARBOR_API_VERSION: &str = concat!("v2.15.0-berth-", env!("CARGO_PKG_VERSION"));

pub struct HarborApi {
    pub auth: Arc<HarborAuth>,
    pub registry: Arc<berth_core::Registry>,
    pub identities: Identities,
    pub projects: Projects,
    pub users: Users,
    pub robots: Robots,
    pub retention: berth_retention::Retention,
    /// The CA of the automatic TLS certificate, which `systeminfo/getcert` serves.
    pub ca_certificate: Option<String>,
    pub external_url: Option<String>,
    /// Hours of content a collection leaves alone when its parameters name none
    /// (`gc.time_window_hours`, Harbor's `GC_TIME_WINDOW_HOURS`).
    pub gc_time_window_hours: i64,
    /// The job service's lease (`jobs.lease_seconds`): a pool silent for longer is gone.
    pub job_lease: std::time::Duration,
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
        .merge(portal::routes())
        .merge(ping::routes())
        .merge(health::routes())
        .merge(systeminfo::routes())
        .merge(system_cve_allowlist::routes())
        .merge(user::routes())
        .merge(permissions::routes())
        .merge(project::routes())
        .merge(project_metadata::routes())
        .merge(member::routes())
        .merge(robot::routes())
        .merge(repository::routes())
        .merge(search::routes())
        .merge(statistic::routes())
        .merge(artifact::routes())
        .merge(scan::routes())
        .merge(scan_all::routes())
        .merge(securityhub::routes())
        .merge(scanner::routes())
        .merge(icon::routes())
        .merge(labels::routes())
        .merge(immutable::routes())
        .merge(quota::routes())
        .merge(configure::routes())
        .merge(retention::routes())
        .merge(audit::routes())
        .merge(purge::routes())
        .merge(gc::routes())
        .merge(jobservice::routes())
        .merge(schedule::routes())
        .merge(additions::routes())
        .route("/api/v2.0/{*rest}", any(unknown_operation))
        .with_state(api)
}

/// Paths of Harbor's API that Berth does not serve answer as Harbor answers an unknown path:
/// 404 with its error body, so that a client prints a reason rather than an empty response.
async fn unknown_operation(parts: Parts) -> HarborError {
    HarborError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("{} {} is not an operation this registry serves", parts.method, parts.uri.path()),
    )
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

/// Who calls Harbor's API, from Basic credentials, a portal session (whose mutating calls must
/// echo the CSRF token) or nothing; and how they name projects (`X-Is-Resource-Name`). Every
/// handler takes one, so that the audit log's operator and the 401s are decided in one place.
pub(super) struct Caller {
    pub subject: Subject,
    /// `X-Is-Resource-Name: true`: a `{project_name_or_id}` that looks like a number is a name.
    names_projects: bool,
}

impl FromRequestParts<Arc<HarborApi>> for Caller {
    type Rejection = HarborError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<HarborApi>) -> Result<Caller, HarborError> {
        let subject = api.auth.api_subject(parts).await?;
        if let Subject::User { name, .. } | Subject::Robot { name, .. } = &subject {
            berth_core::audit::Operator::identify(name);
        }
        let names_projects = parts
            .headers
            .get("x-is-resource-name")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Caller { subject, names_projects })
    }
}

impl Caller {
    /// Harbor's `{project_name_or_id}`: a name when `X-Is-Resource-Name: true` or when it is
    /// not a number.
    fn project<'a>(&self, raw: &'a str) -> ProjectRef<'a> {
        match raw.parse::<i64>() {
            Ok(id) if !self.names_projects => ProjectRef::Id(id),
            _ => ProjectRef::Name(raw),
        }
    }

    /// 401 for anonymous callers.
    fn signed_in(&self) -> Result<&Subject, HarborError> {
        if self.subject.is_anonymous() { Err(HarborError::unauthorized()) } else { Ok(&self.subject) }
    }

    /// The caller, who must be a system administrator (401 when anonymous, else 403 saying that
    /// only administrators may `what`).
    fn sysadmin(&self, what: &str) -> Result<&Subject, HarborError> {
        let subject = self.signed_in()?;
        if !subject.is_sysadmin() {
            return Err(HarborError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("only system administrators may {what}"),
            ));
        }
        Ok(subject)
    }

    /// The caller, who must be a system administrator or a system robot given `action` on
    /// `resource` (401 when anonymous, else 403 naming what was refused).
    fn system(&self, resource: Resource, action: Action) -> Result<&Subject, HarborError> {
        let subject = self.signed_in()?;
        if !Policy::allows_system(subject, resource, action) {
            return Err(HarborError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("{action} on {resource} is for system administrators and robots given it"),
            ));
        }
        Ok(subject)
    }
}

/// A request's query string as pairs, with `q` decoded a second time as Harbor decodes it
/// (clients send it encoded twice: `q=Level%253Dsystem`).
pub(super) struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, std::convert::Infallible> {
        Ok(Query(query(parts)))
    }
}

fn query(parts: &Parts) -> Vec<(String, String)> {
    let Some(raw) = parts.uri.query() else { return Vec::new() };
    form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .map(|(k, v)| {
            // As Harbor unescapes `q` again; unlike Go's `url.QueryUnescape`, a `+` stays a
            // `+` (a client that sent `%2B` meant one: media types carry them), and an escape
            // that is not one stays as written.
            let v =
                if k == "q" { percent_encoding::percent_decode_str(&v).decode_utf8_lossy().into_owned() } else { v };
            (k, v)
        })
        .collect()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The page size that lists everything: Harbor answers `page_size=0` unpaged (harbor-cli
/// relies on it to look names up).
const UNPAGED: i64 = i64::MAX;

/// `page` (from 1) and `page_size` (1 to 100, default 10), as Harbor validates them;
/// `page_size=0` is everything, on one page, whatever `page` says.
fn paging(q: &[(String, String)]) -> Result<(i64, i64), HarborError> {
    let size = match query_get(q, "page_size") {
        None | Some("") => 10,
        Some("0") => return Ok((1, UNPAGED)),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=100).contains(s))
            .ok_or_else(|| HarborError::bad_request("page_size must be between 0 and 100"))?,
    };
    let page = match query_get(q, "page") {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| HarborError::bad_request("page must be a positive integer"))?,
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

/// Harbor's `ScheduleObj`: a standing schedule's type, cron and next time.
#[derive(serde::Serialize)]
struct ScheduleObj {
    #[serde(rename = "type")]
    kind: String,
    cron: String,
    next_scheduled_time: Option<String>,
}

/// 201 Created with an empty body and the new resource's `Location`, as Harbor answers creations.
fn created(location: &str) -> Response {
    with_location((StatusCode::CREATED, Body::empty()).into_response(), location)
}

/// A `true`/`false` query parameter, `default` when absent; anything else is refused.
pub(super) fn switch(q: &[(String, String)], key: &str, default: bool) -> Result<bool, HarborError> {
    match query_get(q, key) {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(HarborError::bad_request(format!("{key} must be true or false"))),
    }
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

/// A JSON request body, or 400 saying what is wrong with it.
fn json_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, HarborError> {
    serde_json::from_slice(bytes).map_err(|e| HarborError::bad_request(format!("invalid request body: {e}")))
}

/// 200 with an empty body, as Harbor answers updates and deletions.
fn ok() -> ApiResult {
    Ok((StatusCode::OK, Body::empty()).into_response())
}

/// 200 with `body` as JSON.
fn json<T: serde::Serialize>(body: T) -> ApiResult {
    Ok(axum::Json(body).into_response())
}

/// Harbor's `{repository_name}` has its slashes encoded twice (`a%252Fb`): the router decoded
/// once, this decodes the rest.
fn repository_name(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// A positive id from the path, or 400 naming the parameter.
fn path_id(raw: &str, name: &str) -> Result<i64, HarborError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HarborError::bad_request(format!("{name} must be a positive integer")))
}

/// Project metadata as Harbor's requests carry it: absent values are left out.
fn metadata_of(req: Option<BTreeMap<String, Option<String>>>) -> BTreeMap<String, String> {
    req.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}
