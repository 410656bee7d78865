//! Harbor's registry authentication: Basic credentials or bearer tokens on `/v2`, the
//! `WWW-Authenticate` challenge, and the token service at `/service/token`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_auth::rbac::{self, Policy, Subject};
use berth_auth::token::{AccessEntry, Claims, IssuedAgainst, SERVICE, TokenIssuer};
use berth_core::identity::Identities;
use berth_oci::ErrorCode;
use http::request::Parts;
use http::{StatusCode, header};

use crate::access::{Access, Action, Authorizer, Decision};
use crate::error::ApiError;

/// Why an `Authorization` header proved nothing.
enum Refused {
    /// Wrong, unusable or expired credentials: the detail for the client.
    Credentials(&'static str),
    /// Too many password checks waiting, or too many failures from this client: retry after
    /// this many seconds.
    Wait { seconds: u64, why: &'static str },
    /// The check itself failed.
    Internal,
}

impl From<berth_core::identity::IdentityError> for Refused {
    fn from(e: berth_core::identity::IdentityError) -> Self {
        use berth_core::identity::IdentityError as E;
        match e {
            E::Busy => Refused::Wait { seconds: 1, why: "too many logins at once; retry shortly" },
            E::Delayed(wait) => Refused::Wait {
                seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                why: "too many failed logins from this client; retry later",
            },
            _ => Refused::Internal,
        }
    }
}

/// 429 with `Retry-After` on `/v2`.
fn retry_after(seconds: u64, why: &str) -> ApiError {
    ApiError::new(ErrorCode::TooManyRequests, why).with_header(header::RETRY_AFTER, &seconds.to_string())
}

/// What an `Authorization` header proved.
enum Caller {
    Anonymous,
    Subject(Subject),
    Token(Claims),
}

/// Authentication and the access decision for `/v2`, and the token service.
pub struct HarborAuth {
    identities: Identities,
    tokens: Arc<TokenIssuer>,
    /// `external_url` when configured; otherwise the realm is built from the request's Host.
    external_url: Option<String>,
    /// Tokens' lifetime (`token_expiration`).
    settings: berth_core::settings::SystemSettings,
}

fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Pull => "pull",
        Action::Push => "push",
        Action::Delete => "delete",
    }
}

fn rbac_action(name: &str) -> Option<rbac::Action> {
    match name {
        "pull" => Some(rbac::Action::Pull),
        "push" => Some(rbac::Action::Push),
        "delete" => Some(rbac::Action::Delete),
        _ => None,
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(berth_core::RegistryError::Internal(e.to_string()))
}

impl HarborAuth {
    pub fn new(
        identities: Identities,
        tokens: Arc<TokenIssuer>,
        settings: berth_core::settings::SystemSettings,
        external_url: Option<String>,
    ) -> HarborAuth {
        HarborAuth {
            identities,
            tokens,
            settings,
            external_url: external_url.map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    /// The token service's URL: under `external_url`, else under the address the client
    /// connected to, never under the request's `Host` (which the client writes, and which an
    /// attacker could make send credentials elsewhere).
    fn realm(&self, extensions: &http::Extensions) -> String {
        format!("{}/service/token", crate::client::own_url(self.external_url.as_deref(), extensions))
    }

    /// The Bearer challenge that sends clients to the token service; with `insufficient_scope`
    /// (RFC 6750) it tells them that a new token would not help.
    fn challenge_header(&self, extensions: &http::Extensions, scope: Option<&str>, insufficient: bool) -> String {
        let mut value = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", self.realm(extensions));
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if insufficient {
            value.push_str(",error=\"insufficient_scope\"");
        }
        value
    }

    /// 401 with the Bearer challenge.
    fn challenge(&self, extensions: &http::Extensions, scope: Option<String>, detail: &str) -> ApiError {
        let value = self.challenge_header(extensions, scope.as_deref(), false);
        ApiError::new(ErrorCode::Unauthorized, detail).with_header(header::WWW_AUTHENTICATE, &value)
    }

    /// Who the request's credentials name. Wrong credentials are an error, not anonymity.
    async fn caller(&self, request: &Parts) -> Result<Caller, Refused> {
        let Some(value) = request.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(Caller::Anonymous);
        };
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return self
                .tokens
                .verify(token.trim())
                .map(Caller::Token)
                .map_err(|_| Refused::Credentials("invalid or expired token"));
        }
        let Some((user, pass)) = parse_basic(value) else {
            return Err(Refused::Credentials("unsupported Authorization header"));
        };
        let source = crate::client::client_addr(&request.extensions);
        let result = if berth_core::robots::is_robot_name(&user) {
            self.identities.authenticate_robot(&user, &pass, source).await
        } else {
            self.identities.authenticate_user(&user, &pass, source).await
        };
        match result? {
            Some(subject) => Ok(Caller::Subject(subject)),
            None => Err(Refused::Credentials("invalid username or password")),
        }
    }

    /// The actions among `wanted` that `subject` may perform on repository `name`.
    async fn allowed_actions(&self, subject: &Subject, name: &str, wanted: &[&str]) -> Result<Vec<String>, ApiError> {
        Ok(self.grant(subject, name, wanted).await?.0)
    }

    /// The actions among `wanted` that `subject` may perform on repository `name`, and the id
    /// of its project (`None`: no such project).
    async fn grant(
        &self,
        subject: &Subject,
        name: &str,
        wanted: &[&str],
    ) -> Result<(Vec<String>, Option<i64>), ApiError> {
        let project = name.split('/').next().unwrap_or(name);
        let Some(access) = self.identities.project_access(subject, project).await.map_err(internal)? else {
            return Ok((Vec::new(), None));
        };
        let ctx = access.context();
        let mut out = Vec::new();
        for &action in wanted {
            let candidates: &[&str] =
                if action == "*" { &["pull", "push", "delete"] } else { std::slice::from_ref(&action) };
            for &a in candidates {
                if let Some(ra) = rbac_action(a)
                    && Policy::allows(subject, &ctx, rbac::Resource::Repository, ra)
                    && !out.iter().any(|o| o == a)
                {
                    out.push(a.to_string());
                }
            }
        }
        Ok((out, Some(access.id)))
    }

    /// What a token for `subject` is issued against: its id and credential's version (the
    /// projects are added as grants are made).
    async fn issued_against(&self, subject: &Subject) -> Result<IssuedAgainst, ApiError> {
        let (id, robot, credential) = match subject {
            Subject::Anonymous => return Ok(IssuedAgainst::default()),
            Subject::User { id, name, .. } => {
                let found = self.identities.user_with_credential(name).await.map_err(internal)?;
                (*id, false, found.map(|(_, c)| c).unwrap_or_default())
            }
            Subject::Robot { id, name, .. } => {
                let found = self.identities.usable_robot(name).await.map_err(internal)?;
                (*id, true, found.map(|(_, c)| c).unwrap_or_default())
            }
        };
        Ok(IssuedAgainst { id, robot, credential, projects: Default::default() })
    }

    /// The subject a token's grant rests on, if it still does: the same user or robot (by id),
    /// with the same credential, still usable, and (for `repo`) the same project (by id); what
    /// the subject may still do there the caller decides from the policy. Every lookup is
    /// answered from the caches, which writes on any replica invalidate, so a revoked grant ends
    /// within a second.
    async fn token_still_holds(&self, claims: &Claims, repo: Option<&str>) -> Result<Option<Subject>, ApiError> {
        // A token without what it was issued against is not one of ours (or predates this
        // check): the client asks for a new one.
        let Some(against) = &claims.berth else { return Ok(None) };
        let subject = if claims.sub.is_empty() {
            Subject::Anonymous
        } else if against.robot {
            match self.identities.usable_robot(&claims.sub).await.map_err(internal)? {
                Some((s @ Subject::Robot { id, .. }, credential))
                    if id == against.id && credential == against.credential =>
                {
                    s
                }
                _ => return Ok(None),
            }
        } else {
            match self.identities.user_with_credential(&claims.sub).await.map_err(internal)? {
                Some((s @ Subject::User { id, .. }, credential))
                    if id == against.id && credential == against.credential =>
                {
                    s
                }
                _ => return Ok(None),
            }
        };
        if let Some(repo) = repo {
            let project = repo.split('/').next().unwrap_or(repo);
            let Some(access) = self.identities.project_access(&subject, project).await.map_err(internal)? else {
                return Ok(None);
            };
            if against.projects.get(project) != Some(&access.id) {
                return Ok(None);
            }
        }
        Ok(Some(subject))
    }

    async fn decide(&self, request: &Parts, access: &Access) -> Result<Subject, ApiError> {
        let scope = access.repository.as_ref().map(|r| {
            let actions = match access.action {
                Action::Pull => "pull",
                Action::Push => "pull,push",
                Action::Delete => "delete",
            };
            let mut scope = format!("repository:{r}:{actions}");
            if let Some(from) = &access.mount_from {
                scope.push_str(&format!(" repository:{from}:pull"));
            }
            scope
        });
        let caller = match self.caller(request).await {
            Ok(c) => c,
            Err(Refused::Credentials(detail)) => return Err(self.challenge(&request.extensions, scope, detail)),
            Err(Refused::Wait { seconds, why }) => return Err(retry_after(seconds, why)),
            Err(Refused::Internal) => return Err(internal("authentication backend failed")),
        };
        let named = match &caller {
            Caller::Anonymous => false,
            Caller::Subject(_) => true,
            Caller::Token(claims) => !claims.sub.is_empty(),
        };
        // A named caller is told that a project does not exist (a push into a typo'd project
        // says so), before anything about tokens: no token could ever grant it.
        if let Some(repo) = &access.repository
            && named
            && let Some((project, _)) = repo.as_str().split_once('/')
            && self.identities.project_access(&Subject::Anonymous, project).await.map_err(internal)?.is_none()
        {
            return Err(ApiError::telling(ErrorCode::NameUnknown, format!("project {project} not found")));
        }
        // The user or robot a token was issued to, as it is now, which the policy must see
        // (`token_subject` hides an administrator without a catalog grant).
        let mut grantee = None;
        let subject = match &caller {
            Caller::Anonymous => Subject::Anonymous,
            Caller::Subject(s) => s.clone(),
            Caller::Token(claims) => {
                let repo = access.repository.as_ref().map(|r| r.as_str());
                match self.token_still_holds(claims, repo).await? {
                    Some(current) => {
                        grantee = Some(current.clone());
                        token_subject(claims, current)
                    }
                    None => return Err(self.challenge(&request.extensions, scope, "the token's grant was revoked")),
                }
            }
        };
        let Some(repo) = &access.repository else {
            // `/v2/` and `/v2/_catalog`: any authenticated caller (the catalog is filtered).
            return match caller {
                Caller::Anonymous => Err(self.challenge(&request.extensions, None, "authentication required")),
                _ => Ok(subject),
            };
        };
        if repo.as_str().split_once('/').is_none() {
            return Err(ApiError::new(
                ErrorCode::NameInvalid,
                format!("{repo} has no project: repository names have the form <project>/<repository>"),
            ));
        }
        let action = action_name(access.action);
        // What the subject may do now, from the policy: a token's grant never outlives it.
        let grantee = grantee.unwrap_or_else(|| subject.clone());
        let permitted = !self.allowed_actions(&grantee, repo.as_str(), &[action]).await?.is_empty();
        let granted = match &caller {
            Caller::Token(claims) => claims.access.iter().any(|e| {
                e.kind == "repository" && e.name == repo.as_str() && e.actions.iter().any(|a| a == action || a == "*")
            }),
            _ => permitted,
        };
        if permitted && granted {
            Ok(subject)
        } else if permitted || grantee.is_anonymous() {
            // A token that lacks what its subject may do now, or no credentials: a (new) token
            // from the token service will carry it.
            Err(self.challenge(&request.extensions, scope, "authentication required"))
        } else {
            // Authenticated, and not allowed: asking again will not help (Harbor's message).
            let value = self.challenge_header(&request.extensions, scope.as_deref(), true);
            Err(ApiError::telling(
                ErrorCode::Denied,
                format!("unauthorized to access repository: {repo}, action: {action}"),
            )
            .with_header(header::WWW_AUTHENTICATE, &value))
        }
    }
}

/// The subject a token stands for, as the catalog filter needs it: the user its grant still
/// rests on (`current`, looked up by `token_still_holds`), administrator only with a catalog
/// grant; a robot's or an anonymous token sees what anonymous callers see.
fn token_subject(claims: &Claims, current: Subject) -> Subject {
    let catalog = claims.access.iter().any(|e| e.kind == "registry" && e.name == "catalog");
    match current {
        Subject::User { id, name, sysadmin } => Subject::User { id, name, sysadmin: sysadmin && catalog },
        _ => Subject::Anonymous,
    }
}

/// Why a `/api/v2.0` caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAuthError {
    /// Wrong or unusable credentials: 401.
    Unauthorized,
    /// A session cookie on a mutating request without the matching CSRF header: 403.
    Csrf,
    /// Too many password checks waiting, or too many failures from this client: 429 with
    /// `Retry-After`.
    Wait { seconds: u64, why: &'static str },
    /// The check itself failed: 500.
    Internal,
}

impl From<berth_core::identity::IdentityError> for ApiAuthError {
    fn from(e: berth_core::identity::IdentityError) -> Self {
        match Refused::from(e) {
            Refused::Wait { seconds, why } => ApiAuthError::Wait { seconds, why },
            _ => ApiAuthError::Internal,
        }
    }
}

/// The portal's session cookie.
pub const SESSION_COOKIE: &str = "sid";
/// The header that carries the CSRF token (Harbor's name).
pub const CSRF_HEADER: &str = "x-harbor-csrf-token";

fn cookie<'a>(request: &'a Parts, name: &str) -> Option<&'a str> {
    request
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl HarborAuth {
    /// The caller of a `/api/v2.0` request: Basic credentials, a portal session (mutating
    /// requests must then carry the CSRF header), or nobody.
    pub async fn api_subject(&self, request: &Parts) -> Result<Subject, ApiAuthError> {
        if request.headers.contains_key(header::AUTHORIZATION) {
            return match self.caller(request).await {
                Ok(Caller::Anonymous) => Ok(Subject::Anonymous),
                Ok(Caller::Subject(s)) => Ok(s),
                Ok(Caller::Token(_)) | Err(Refused::Credentials(_)) => Err(ApiAuthError::Unauthorized),
                Err(Refused::Wait { seconds, why }) => Err(ApiAuthError::Wait { seconds, why }),
                Err(Refused::Internal) => Err(ApiAuthError::Internal),
            };
        }
        let Some(session_id) = cookie(request, SESSION_COOKIE) else {
            return Ok(Subject::Anonymous);
        };
        let Some((subject, csrf)) =
            self.identities.session_subject(session_id).await.map_err(|_| ApiAuthError::Internal)?
        else {
            return Err(ApiAuthError::Unauthorized);
        };
        let safe = matches!(request.method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let echoed = request.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !safe && !berth_auth::password::constant_time_eq(echoed.as_bytes(), csrf.as_bytes()) {
            return Err(ApiAuthError::Csrf);
        }
        Ok(subject)
    }

    /// `POST /c/login`: a session for the portal.
    pub async fn login(
        &self,
        request: &Parts,
        principal: &str,
        password: &str,
    ) -> Result<Option<berth_core::identity::Session>, ApiAuthError> {
        let source = crate::client::client_addr(&request.extensions);
        Ok(self.identities.login_session(principal, password, source).await?)
    }

    /// `GET /c/log_out`: ends the request's session, if any.
    pub async fn logout(&self, request: &Parts) -> Result<(), ApiAuthError> {
        match cookie(request, SESSION_COOKIE) {
            Some(id) => self.identities.end_session(id).await.map_err(|_| ApiAuthError::Internal),
            None => Ok(()),
        }
    }
}

impl Authorizer for HarborAuth {
    fn authorize<'a>(&'a self, request: &'a Parts, access: &'a Access) -> Decision<'a> {
        Box::pin(self.decide(request, access))
    }
}

/// A Harbor-style error body (`/service/token` and `/api/v2.0` use it).
fn harbor_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    (status, axum::Json(body)).into_response()
}

/// Splits `type:name:actions`; the name may itself contain `:`.
fn parse_scope(scope: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((kind, name, actions.split(',').filter(|a| !a.is_empty()).collect()))
}

/// `GET /service/token`: a JWT granting, for each requested repository scope, every action
/// among pull, push and delete that the caller may perform there (Harbor's rule).
pub async fn token(State(auth): State<Arc<HarborAuth>>, req: Parts) -> Response {
    let query: Vec<(String, String)> =
        req.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    if let Some((_, service)) = query.iter().find(|(k, _)| k == "service")
        && service != SERVICE
    {
        return harbor_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &format!("unknown service {service:?}"));
    }
    let scopes: Vec<&str> =
        query.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ')).filter(|s| !s.is_empty()).collect();
    let subject = match auth.caller(&req).await {
        Ok(Caller::Subject(s)) => s,
        Ok(Caller::Anonymous) => Subject::Anonymous,
        // A token is not a credential for getting another token.
        Ok(Caller::Token(_)) | Err(Refused::Credentials(_)) => {
            return harbor_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid credentials");
        }
        Err(Refused::Wait { seconds, why }) => {
            let mut response = harbor_error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", why);
            response.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from(seconds));
            return response;
        }
        Err(Refused::Internal) => {
            return harbor_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error");
        }
    };
    // Bounded at issuance: a token of a thousand scopes was a hundred kilobytes, remembered.
    if scopes.len() > berth_auth::token::MAX_SCOPES || scopes.iter().any(|s| s.len() > 512) {
        return harbor_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!("at most {} scopes of at most 512 bytes each", berth_auth::token::MAX_SCOPES),
        );
    }
    if subject.is_anonymous() && scopes.is_empty() {
        return harbor_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required");
    }
    let mut against = match auth.issued_against(&subject).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let mut access = Vec::new();
    for scope in scopes {
        let Some((kind, name, _wanted)) = parse_scope(scope) else {
            return harbor_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &format!("malformed scope {scope:?}"));
        };
        let actions = match kind {
            // As Harbor: every action the caller may perform, whatever was asked. Clients such
            // as oras-py reuse the token of a pull for the push that follows and do not ask again.
            "repository" => match auth.grant(&subject, name, &["*"]).await {
                Ok((actions, project)) => {
                    if let (Some(id), Some(project_name)) = (project, name.split('/').next()) {
                        against.projects.insert(project_name.to_string(), id);
                    }
                    actions
                }
                Err(e) => return e.into_response(),
            },
            "registry" if name == "catalog" && subject.is_sysadmin() => vec!["*".to_string()],
            _ => Vec::new(),
        };
        access.push(AccessEntry { kind: kind.to_string(), name: name.to_string(), actions });
    }
    let name = match &subject {
        Subject::Anonymous => String::new(),
        Subject::User { name, .. } | Subject::Robot { name, .. } => name.clone(),
    };
    let lifetime = std::time::Duration::from_secs(auth.settings.get().token_expiration_minutes * 60);
    match auth.tokens.issue_for(&name, access, against, lifetime) {
        Ok(t) => axum::Json(serde_json::json!({
            "token": t.token,
            "access_token": t.token,
            "expires_in": t.expires_in,
            "issued_at": crate::time::rfc3339(t.issued_at),
        }))
        .into_response(),
        Err(e) => internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:library/app:pull,push"),
            Some(("repository", "library/app", vec!["pull", "push"]))
        );
        assert_eq!(parse_scope("repository:host:5000/app:pull"), Some(("repository", "host:5000/app", vec!["pull"])));
        assert_eq!(parse_scope("registry:catalog:*"), Some(("registry", "catalog", vec!["*"])));
        assert_eq!(parse_scope("nonsense"), None);
    }

    #[test]
    fn basic_credentials() {
        assert_eq!(parse_basic("Basic YWRtaW46SGFyYm9yMTIzNDU="), Some(("admin".into(), "Harbor12345".into())));
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Digest x"), None);
    }
}
