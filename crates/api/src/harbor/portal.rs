//! The portal's session (not a tag of Harbor's swagger, but Harbor's paths): `POST /c/login`
//! signs a browser in with a cookie and a CSRF token, `GET /c/log_out` ends the session.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use super::{ApiResult, HarborApi, HarborError, query_get};
use crate::auth::{CSRF_HEADER, SESSION_COOKIE};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/c/login", post(portal_login)).route("/c/log_out", get(portal_logout))
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
