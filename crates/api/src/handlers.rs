//! The distribution API's endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_core::{Page, Puller, Registry};
use berth_oci::range::{RangeRequest, parse_content_range, parse_range};
use berth_oci::{Digest, ErrorCode, Reference, RepositoryName, Tag, media_type};
use berth_store::ByteStream;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;

use crate::access::{Access, Action, Authorizer, required_access};
use crate::error::ApiError;
use crate::route::{self, Endpoint};
use berth_auth::rbac::Subject;

pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
const DIGEST_HEADER: &str = "docker-content-digest";
const UPLOAD_UUID_HEADER: &str = "docker-upload-uuid";

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub authorizer: Arc<dyn Authorizer>,
    pub limiter: Option<Arc<tokio::sync::Semaphore>>,
    /// Blob upload requests each caller has in flight (`http.max_uploads_per_client`).
    pub uploads: Arc<crate::limit::PerKey<String>>,
}

type ApiResult = Result<Response, ApiError>;

/// The `Range` header of upload responses: Distribution's `0-<last byte>`, `0-0` when empty.
pub fn range_header(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn query_pairs(req: &Parts) -> Vec<(String, String)> {
    req.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(TryStreamExt::map_err(body.into_data_stream(), |e| e.to_string()))
}

/// Whether a request has a body to read (uploads may be finished with an empty PUT).
fn has_body(h: &HeaderMap) -> bool {
    match header_str(h, header::CONTENT_LENGTH) {
        Some(len) => len.trim() != "0",
        None => h.contains_key(header::TRANSFER_ENCODING),
    }
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

fn empty(status: StatusCode) -> Response {
    let mut r = (status, Body::empty()).into_response();
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn parse_digest_param(q: &[(String, String)]) -> Result<Option<Digest>, ApiError> {
    match query_get(q, "digest") {
        None => Ok(None),
        Some(d) => Digest::parse(d).map(Some).map_err(|e| ApiError::new(ErrorCode::DigestInvalid, e.to_string())),
    }
}

/// The entry point of every `/v2` request.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let rest = req.uri().path().strip_prefix("/v2").unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest).to_string();
    let permit = match &state.limiter {
        Some(limiter) => match limiter.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let mut resp =
                    ApiError::new(ErrorCode::TooManyRequests, "the registry is at its request limit; retry shortly")
                        .with_header(header::RETRY_AFTER, "1")
                        .into_response();
                resp.headers_mut().insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
                return resp;
            }
        },
        None => None,
    };
    let result = handle(&state, &rest, req).await;
    drop(permit);
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn handle(state: &AppState, rest: &str, req: Request) -> ApiResult {
    let endpoint = match route::parse(rest) {
        Ok(e) => e,
        // A manifest asked for by a reference that cannot be a tag is simply not there (the
        // OCI conformance suite's `.INVALID_MANIFEST_NAME`); storing under one stays invalid.
        Err(e) if e.code == Some(ErrorCode::ManifestInvalid) && matches!(*req.method(), Method::GET | Method::HEAD) => {
            return Err(ApiError::new(ErrorCode::ManifestUnknown, e.detail));
        }
        Err(e) => return Err(e),
    };
    let (req, body) = req.into_parts();
    let access = required_access(&endpoint, &req.method, req.uri.query());
    let subject = state.authorizer.authorize(&req, &access).await?;
    if let Subject::User { name, .. } | Subject::Robot { name, .. } = &subject {
        berth_core::audit::Operator::identify(name);
    }
    let reg = &state.registry;
    let method = req.method.clone();
    // A caller's uploads that carry bytes count against its cap while they are received, so
    // that one client's stalled or endless uploads cannot take every worker.
    let _upload = match (&endpoint, &method) {
        (Endpoint::Upload(..), &Method::PATCH | &Method::PUT) | (Endpoint::UploadStart(_), &Method::POST)
            if has_body(&req.headers) =>
        {
            let caller = match &subject {
                Subject::User { name, .. } | Subject::Robot { name, .. } => name.clone(),
                Subject::Anonymous => "anonymous".to_string(),
            };
            match state.uploads.enter(caller) {
                Some(held) => Some(held),
                None => {
                    berth_metrics::metrics().limit_refusals.get(&["uploads_per_client"]).inc();
                    return Err(ApiError::new(
                        ErrorCode::TooManyRequests,
                        "too many uploads in flight for this caller (http.max_uploads_per_client); retry shortly",
                    )
                    .with_header(header::RETRY_AFTER, "1"));
                }
            }
        }
        _ => None,
    };
    match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => {
            let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{}").into_response();
            if req.method == Method::HEAD {
                *r.body_mut() = Body::empty();
            }
            Ok(r)
        }
        (Endpoint::Catalog, Method::GET) => catalog(reg, &req, &subject).await,
        (Endpoint::Tags(name), Method::GET) => tags(reg, &name, &req).await,
        (Endpoint::Manifest(name, reference), Method::GET | Method::HEAD) => {
            let puller = puller(state, &req, &name).await;
            manifest_get(reg, &name, &reference, &req, puller).await
        }
        (Endpoint::Manifest(name, reference), Method::PUT) => manifest_put(reg, &name, &reference, &req, body).await,
        (Endpoint::Manifest(name, reference), Method::DELETE) => {
            reg.content().delete_manifest(&name, &reference).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (Endpoint::Blob(name, digest), Method::GET | Method::HEAD) => blob_get(reg, &name, &digest, &req).await,
        (Endpoint::Blob(name, digest), Method::DELETE) => {
            reg.blob_delete(&name, &digest).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (Endpoint::UploadStart(name), Method::POST) => upload_start(state, &name, &req, body).await,
        (Endpoint::Upload(name, id), Method::GET) => {
            let st = reg.upload_status(&name, &id).await?;
            Ok(upload_response(StatusCode::NO_CONTENT, &name, &st.id, st.offset))
        }
        (Endpoint::Upload(name, id), Method::PATCH) => upload_patch(reg, &name, &id, &req, body).await,
        (Endpoint::Upload(name, id), Method::PUT) => upload_put(reg, &name, &id, &req, body).await,
        (Endpoint::Upload(name, id), Method::DELETE) => {
            reg.upload_cancel(&name, &id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Endpoint::Referrers(name, digest), Method::GET) => referrers(reg, &name, &digest, &req).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

// ---- listings

fn paging(req: &Parts) -> Result<(Option<i64>, Option<String>), ApiError> {
    let q = query_pairs(req);
    let n = match query_get(&q, "n") {
        None | Some("") => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::new(ErrorCode::Unsupported, format!("n must be a non-negative integer, not {s:?}"))
                .with_status(StatusCode::BAD_REQUEST)
        })?),
    };
    Ok((n, query_get(&q, "last").map(str::to_string)))
}

fn with_next_link(mut resp: Response, path: &str, n: Option<i64>, page: &Page) -> Response {
    if let (true, Some(last)) = (page.more, page.items.last()) {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(n) = n {
            query.append_pair("n", &n.to_string());
        }
        query.append_pair("last", last);
        set(&mut resp, "link", &format!("<{path}?{}>; rel=\"next\"", query.finish()));
    }
    resp
}

async fn catalog(reg: &Registry, req: &Parts, subject: &Subject) -> ApiResult {
    let (n, last) = paging(req)?;
    // Only what the caller can see: everything for an administrator, else public projects and
    // the caller's own.
    let visible_to = match subject {
        Subject::User { sysadmin: true, .. } => None,
        Subject::User { id, .. } => Some(*id),
        _ => Some(0),
    };
    let page = reg.catalog(n, last.as_deref(), visible_to).await?;
    let resp = axum::Json(serde_json::json!({ "repositories": page.items })).into_response();
    Ok(with_next_link(resp, "/v2/_catalog", n, &page))
}

async fn tags(reg: &Registry, name: &RepositoryName, req: &Parts) -> ApiResult {
    let (n, last) = paging(req)?;
    let page = reg.tags(name, n, last.as_deref()).await?;
    let resp = axum::Json(serde_json::json!({ "name": name.as_str(), "tags": page.items })).into_response();
    Ok(with_next_link(resp, &format!("/v2/{name}/tags/list"), n, &page))
}

async fn referrers(reg: &Registry, name: &RepositoryName, digest: &Digest, req: &Parts) -> ApiResult {
    let q = query_pairs(req);
    let artifact_type = query_get(&q, "artifactType").filter(|s| !s.is_empty());
    let manifests = reg.referrers(name, digest, artifact_type).await?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": manifests,
    });
    let mut resp = axum::Json(body).into_response();
    set(&mut resp, "content-type", media_type::OCI_INDEX);
    if artifact_type.is_some() {
        set(&mut resp, "oci-filters-applied", "artifactType");
    }
    Ok(resp)
}

// ---- manifests

/// Whether a client's `Accept` list admits a media type. No `Accept`, or a wildcard, admits all.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut listed = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mt = item.split(';').next().unwrap_or("").trim();
            if mt.is_empty() {
                continue;
            }
            listed = true;
            if mt == media_type || mt == "*/*" || mt == "application/*" {
                return true;
            }
        }
    }
    !listed
}

fn etag(digest: &Digest) -> String {
    format!("\"{digest}\"")
}

fn not_modified(headers: &HeaderMap, digest: &Digest) -> bool {
    header_str(headers, header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag(digest) || t.trim() == "*"))
}

/// Who pulls: a signing client (its User-Agent names cosign or notation, as Harbor looks) whose
/// caller may also push to the repository passes the project's pull policies.
async fn puller(state: &AppState, req: &Parts, name: &RepositoryName) -> Puller {
    let agent = header_str(&req.headers, header::USER_AGENT).unwrap_or_default().to_ascii_lowercase();
    if req.method != Method::GET || !(agent.contains("cosign") || agent.contains("notation")) {
        return Puller::Client;
    }
    let push = Access { repository: Some(name.clone()), action: Action::Push, mount_from: None };
    match state.authorizer.authorize(req, &push).await {
        Ok(_) => Puller::SigningClient,
        Err(_) => Puller::Client,
    }
}

async fn manifest_get(
    reg: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    req: &Parts,
    puller: Puller,
) -> ApiResult {
    let head = req.method == Method::HEAD;
    let m = reg.manifest_read_by(name, reference, !head, puller).await?;
    if !accepts(&req.headers, &m.media_type) {
        let only_schema1 = req
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .all(|t| media_type::is_schema1(t.split(';').next().unwrap_or("").trim()));
        let detail = if only_schema1 {
            format!("manifest is {}; Docker schema 1 is not supported", m.media_type)
        } else {
            format!("manifest is {}, which the Accept header does not list", m.media_type)
        };
        return Err(ApiError::new(ErrorCode::ManifestUnknown, detail));
    }
    let mut resp = if not_modified(&req.headers, &m.digest) {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        let mut r = match m.bytes {
            Some(bytes) => (StatusCode::OK, bytes).into_response(),
            None => (StatusCode::OK, Body::empty()).into_response(),
        };
        set(&mut r, "content-length", &m.size.to_string());
        r
    };
    set(&mut resp, "content-type", &m.media_type);
    set(&mut resp, DIGEST_HEADER, m.digest.as_str());
    set(&mut resp, "etag", &etag(&m.digest));
    Ok(resp)
}

async fn manifest_put(
    reg: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    req: &Parts,
    body: Body,
) -> ApiResult {
    let q = query_pairs(req);
    let extra_tags = q
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| Tag::parse(v).map_err(|e| ApiError::new(ErrorCode::ManifestInvalid, e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let content_type = header_str(&req.headers, header::CONTENT_TYPE).map(str::to_string);
    let limit = berth_oci::manifest::MAX_MANIFEST_SIZE;
    let too_large = || {
        ApiError::new(ErrorCode::SizeInvalid, format!("a manifest may have at most {limit} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if header_str(&req.headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l > limit)
    {
        return Err(too_large());
    }
    let bytes: Bytes = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                too_large()
            } else {
                ApiError::new(ErrorCode::ManifestInvalid, format!("reading the body: {e}"))
            }
        })?
        .to_bytes();
    let (digest, subject) =
        reg.content().put_manifest(name, reference, content_type.as_deref(), bytes, &extra_tags).await?;
    let mut resp = empty(StatusCode::CREATED);
    set(&mut resp, "location", &format!("/v2/{name}/manifests/{digest}"));
    set(&mut resp, DIGEST_HEADER, digest.as_str());
    if let Some(subject) = subject {
        set(&mut resp, "oci-subject", subject.as_str());
    }
    Ok(resp)
}

// ---- blobs

async fn blob_get(reg: &Registry, name: &RepositoryName, digest: &Digest, req: &Parts) -> ApiResult {
    let head = req.method == Method::HEAD;
    let size = reg.blob_size(name, digest).await?;
    let range = match header_str(&req.headers, header::RANGE) {
        Some(r) => parse_range(r, size),
        None => RangeRequest::Full,
    };
    let (status, range) = match range {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::new(ErrorCode::RangeInvalid, format!("the blob has {size} bytes"))
                .with_header(header::CONTENT_RANGE, &format!("bytes */{size}")));
        }
    };
    if not_modified(&req.headers, digest) {
        let mut r = empty(StatusCode::NOT_MODIFIED);
        set(&mut r, DIGEST_HEADER, digest.as_str());
        set(&mut r, "etag", &etag(digest));
        return Ok(r);
    }
    if !head && let Some(url) = reg.blob_redirect(digest).await? {
        // The bytes come from the storage; a client repeats its Range header there.
        let mut r = empty(StatusCode::TEMPORARY_REDIRECT);
        set(&mut r, "location", &url);
        set(&mut r, DIGEST_HEADER, digest.as_str());
        return Ok(r);
    }
    let len = range.map_or(size, |r| r.len());
    let mut resp = if head {
        (status, Body::empty()).into_response()
    } else {
        let blob = reg.blob_read(name, digest, range).await?;
        (status, Body::from_stream(blob.body.into_stream())).into_response()
    };
    set(&mut resp, "content-length", &len.to_string());
    set(&mut resp, "content-type", "application/octet-stream");
    set(&mut resp, DIGEST_HEADER, digest.as_str());
    set(&mut resp, "etag", &etag(digest));
    set(&mut resp, "accept-ranges", "bytes");
    if let Some(r) = range {
        set(&mut resp, "content-range", &format!("bytes {}-{}/{size}", r.start, r.end));
    }
    Ok(resp)
}

fn upload_response(status: StatusCode, name: &RepositoryName, id: &str, offset: u64) -> Response {
    let mut resp = empty(status);
    set(&mut resp, "location", &format!("/v2/{name}/blobs/uploads/{id}"));
    set(&mut resp, "range", &range_header(offset));
    set(&mut resp, UPLOAD_UUID_HEADER, id);
    resp
}

fn blob_created(name: &RepositoryName, digest: &Digest) -> Response {
    let mut resp = empty(StatusCode::CREATED);
    set(&mut resp, "location", &format!("/v2/{name}/blobs/{digest}"));
    set(&mut resp, DIGEST_HEADER, digest.as_str());
    resp
}

async fn upload_start(state: &AppState, name: &RepositoryName, req: &Parts, body: Body) -> ApiResult {
    let reg = &state.registry;
    let q = query_pairs(req);
    if let Some(mount) = query_get(&q, "mount") {
        let digest = Digest::parse(mount).map_err(|e| ApiError::new(ErrorCode::DigestInvalid, e.to_string()))?;
        if let Some(from) = mount_source(state, req, &digest, query_get(&q, "from")).await?
            && reg.blob_mount(name, &digest, &from).await?.is_some()
        {
            return Ok(blob_created(name, &digest));
        }
        // Not mountable: the client uploads instead (spec: 202 with a new session).
        let st = reg.upload_start(name).await?;
        return Ok(upload_response(StatusCode::ACCEPTED, name, &st.id, st.offset));
    }
    if let Some(digest) = parse_digest_param(&q)? {
        // Monolithic upload: the whole blob in this request.
        let length = header_str(&req.headers, header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        let body = has_body(&req.headers).then(|| body_stream(body));
        reg.blob_upload_whole(name, &digest, length, body).await?;
        return Ok(blob_created(name, &digest));
    }
    let st = reg.upload_start(name).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, &st.id, st.offset))
}

/// The repository to mount from: the named one if the caller may pull from it; without `from`,
/// the first repository holding the blob that the caller may pull from.
async fn mount_source(
    state: &AppState,
    req: &Parts,
    digest: &Digest,
    from: Option<&str>,
) -> Result<Option<RepositoryName>, ApiError> {
    let candidates = match from {
        Some(f) => vec![RepositoryName::parse(f).map_err(|e| ApiError::new(ErrorCode::NameInvalid, e.to_string()))?],
        None => {
            state.registry.blob_sources(digest).await?.iter().filter_map(|n| RepositoryName::parse(n).ok()).collect()
        }
    };
    for candidate in candidates {
        let access = Access { repository: Some(candidate.clone()), action: Action::Pull, mount_from: None };
        if state.authorizer.authorize(req, &access).await.is_ok() {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn chunk_range(headers: &HeaderMap) -> Result<Option<berth_oci::range::ByteRange>, ApiError> {
    match header_str(headers, header::CONTENT_RANGE) {
        None => Ok(None),
        Some(v) => parse_content_range(v).map(Some).ok_or_else(|| {
            ApiError::new(ErrorCode::BlobUploadInvalid, format!("malformed Content-Range {v:?}"))
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
        }),
    }
}

async fn upload_patch(reg: &Registry, name: &RepositoryName, id: &str, req: &Parts, body: Body) -> ApiResult {
    let range = chunk_range(&req.headers)?;
    let st = reg.upload_append(name, id, range, body_stream(body)).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, &st.id, st.offset))
}

async fn upload_put(reg: &Registry, name: &RepositoryName, id: &str, req: &Parts, body: Body) -> ApiResult {
    let q = query_pairs(req);
    let digest = parse_digest_param(&q)?
        .ok_or_else(|| ApiError::new(ErrorCode::DigestInvalid, "the digest query parameter is required"))?;
    let range = chunk_range(&req.headers)?;
    let body = has_body(&req.headers).then(|| body_stream(body));
    reg.upload_finish(name, id, &digest, range, body).await?;
    Ok(blob_created(name, &digest))
}
