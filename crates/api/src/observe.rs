//! What every request passes through first: its id (`X-Request-Id`, the client's or a new one,
//! echoed), a span that puts the id, user, project and repository on each of its log lines, the
//! audit operator scope, and the HTTP metrics (Distribution's `registry_http_*` for `/v2`,
//! Harbor core's `harbor_core_http_*` for the rest).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use berth_metrics::{Counter, Gauge, Histogram, metrics};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body::{Frame, SizeHint};
use tracing::Instrument;
use tracing::field::Empty;

pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The client's request id when it is a sane token (printable ASCII, at most 128 bytes: it goes
/// into log lines), else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(REQUEST_ID)
        && !v.is_empty()
        && v.len() <= 128
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    new_request_id()
}

/// A random UUID (version 4 layout): a counter passed through SipHash under a key drawn once
/// per process, so ids are unique, cannot be guessed from one another (they were sequential,
/// which told a client how busy the registry is and what ids others got), and cost no system
/// call per request.
fn new_request_id() -> HeaderValue {
    use std::hash::BuildHasher;
    static KEY: std::sync::LazyLock<std::hash::RandomState> = std::sync::LazyLock::new(std::hash::RandomState::new);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let hi = KEY.hash_one((n, 0u8));
    let lo = KEY.hash_one((n, 1u8));
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        8 | (lo >> 62),
        (lo >> 48) & 0xfff,
        lo & 0xffff_ffff_ffff
    );
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("0"))
}

/// Distribution's route names, the `handler` label of `registry_http_*`.
pub(crate) const HANDLERS: [&str; 9] =
    ["base", "catalog", "tags", "manifest", "blob", "blob_upload", "blob_upload_chunk", "referrers", "unknown"];
const BLOB_UPLOAD: usize = 5;
const BLOB_UPLOAD_CHUNK: usize = 6;

const BASE: usize = 0;
const CATALOG: usize = 1;
const TAGS: usize = 2;
const MANIFEST: usize = 3;
const BLOB: usize = 4;
const REFERRERS: usize = 7;
const UNKNOWN: usize = 8;

/// The handler (an index into [`HANDLERS`]) of the path after `/v2/` and the repository it
/// names, recognised from the end, as the router does, in one pass.
pub(crate) fn registry_route(rest: &str) -> (usize, Option<&str>) {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return (BASE, None);
    }
    if rest == "_catalog" {
        return (CATALOG, None);
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return (TAGS, Some(repo));
    }
    let marker = ["/manifests/", "/blobs/", "/referrers/"]
        .iter()
        .filter_map(|m| rest.rfind(m).map(|at| (at, *m)))
        .max_by_key(|(at, _)| *at);
    let Some((at, marker)) = marker else { return (UNKNOWN, None) };
    let handler = match marker {
        "/blobs/" => match rest[at + marker.len()..].strip_prefix("uploads") {
            Some("" | "/") => BLOB_UPLOAD,
            Some(_) => BLOB_UPLOAD_CHUNK,
            None => BLOB,
        },
        "/manifests/" => MANIFEST,
        _ => REFERRERS,
    };
    (handler, Some(&rest[..at]))
}

/// The methods a `/v2` client sends, each with a slot of its own below.
const METHODS: [Method; 6] = [Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::PATCH, Method::DELETE];

/// One handler's metrics, resolved on first use and kept: the lookups by label values are
/// done once, not on every request of the hottest path.
#[derive(Default)]
struct HandlerMetrics {
    inflight: OnceLock<Arc<Gauge>>,
    request_size: OnceLock<Arc<Histogram>>,
    response_size: OnceLock<Arc<Histogram>>,
    duration: [OnceLock<Arc<Histogram>>; METHODS.len()],
}

fn handler_metrics(handler: usize) -> &'static HandlerMetrics {
    static ALL: LazyLock<[HandlerMetrics; HANDLERS.len()]> = LazyLock::new(Default::default);
    &ALL[handler]
}

impl HandlerMetrics {
    fn duration(&self, handler: usize, method: &Method) -> Arc<Histogram> {
        let family = &metrics().registry_duration;
        match METHODS.iter().position(|m| m == method) {
            Some(i) => self.duration[i].get_or_init(|| family.get(&[HANDLERS[handler], method.as_str()])).clone(),
            None => family.get(&[HANDLERS[handler], method.as_str()]),
        }
    }
}

/// The project and repository a Harbor API path names (`/projects/{p}/repositories/{r}`).
fn api_target(path: &str) -> (Option<&str>, Option<&str>) {
    let mut seg = path.split('/');
    let mut project = None;
    let mut repository = None;
    while let Some(s) = seg.next() {
        match s {
            "projects" if project.is_none() => project = seg.next(),
            "repositories" if project.is_some() && repository.is_none() => repository = seg.next(),
            _ => {}
        }
    }
    (project, repository)
}

/// The `operation` label of `harbor_core_http_*`: Harbor's operation id where the route is
/// one of its API's, else the route's pattern (bounded: one per route), else `unknown`.
fn core_operation(method: &Method, matched: Option<&MatchedPath>) -> String {
    let Some(matched) = matched else { return "unknown".into() };
    crate::harbor::operation_id(method.as_str(), matched.as_str())
        .map_or_else(|| matched.as_str().to_string(), str::to_string)
}

/// Decrements a gauge when the request is done, however it ends (a dropped future included).
struct InFlight<G: std::ops::Deref<Target = Gauge>>(G);

impl<G: std::ops::Deref<Target = Gauge>> InFlight<G> {
    fn enter(g: G) -> InFlight<G> {
        g.inc();
        InFlight(g)
    }
}

impl<G: std::ops::Deref<Target = Gauge>> Drop for InFlight<G> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let source = crate::client::client_addr(req.extensions()).map(|a| a.to_string());
    let path = req.uri().path();
    let (route, project, repository) = match path.strip_prefix("/v2").filter(|r| r.is_empty() || r.starts_with('/')) {
        Some(rest) => {
            let (handler, repository) = registry_route(rest);
            let project = repository.map(|r| r.split('/').next().unwrap_or(r));
            (Route::Registry(handler), project, repository)
        }
        None => {
            let (project, repository) = api_target(path);
            (Route::Core(core_operation(&method, req.extensions().get::<MatchedPath>())), project, repository)
        }
    };
    // `otel.name` (the span's name in a trace: the method and Distribution's handler or
    // Harbor's operation) is made only for a span that is kept; `status` is recorded once the
    // response is ready.
    let span = tracing::info_span!(
        "request",
        otel.name = Empty,
        id = id.to_str().unwrap_or(""),
        method = method.as_str(),
        path,
        user = Empty,
        project,
        repository,
        status = Empty,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("{method} {}", route.name()));
    }
    let record_status = span.clone();
    let m = metrics();
    let mut response = match route {
        Route::Registry(handler) => {
            let handles = handler_metrics(handler);
            let _inflight =
                InFlight::enter(&**handles.inflight.get_or_init(|| m.registry_inflight.get(&[HANDLERS[handler]])));
            let uploading = matches!(handler, BLOB_UPLOAD | BLOB_UPLOAD_CHUNK)
                && matches!(method, Method::POST | Method::PATCH | Method::PUT);
            let _upload = uploading.then(|| InFlight::enter(&m.uploads_in_flight));
            let request_size = handles.request_size.get_or_init(|| m.registry_request_size.get(&[HANDLERS[handler]]));
            let req = count_request_body(req, Some(request_size));
            let response = berth_core::audit::Operator::scope(source, next.run(req)).instrument(span).await;
            m.registry_requests.get(&[response.status().as_str(), HANDLERS[handler], method.as_str()]).inc();
            handles.duration(handler, &method).observe(start.elapsed().as_secs_f64());
            let response_size =
                handles.response_size.get_or_init(|| m.registry_response_size.get(&[HANDLERS[handler]]));
            count_response_body(response, Some(response_size))
        }
        Route::Core(operation) => {
            let _inflight = InFlight::enter(m.core_inflight.get(&[&operation]));
            let req = count_request_body(req, None);
            let response = berth_core::audit::Operator::scope(source, next.run(req)).instrument(span).await;
            m.core_requests.get(&[response.status().as_str(), method.as_str(), &operation]).inc();
            m.core_duration.get(&[method.as_str(), &operation]).observe(start.elapsed().as_secs_f64());
            count_response_body(response, None)
        }
    };
    record_status.record("status", response.status().as_u16());
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// What a request is counted under.
enum Route {
    /// `/v2`: a handler, an index into [`HANDLERS`].
    Registry(usize),
    /// Everything else: Harbor's operation id or the route's pattern.
    Core(String),
}

impl Route {
    fn name(&self) -> &str {
        match self {
            Route::Registry(h) => HANDLERS[*h],
            Route::Core(op) => op,
        }
    }
}

/// Request bodies: one that is known to be empty (GET, HEAD, most of the API) is counted as it
/// is, without a wrapper; others as they are read.
fn count_request_body(req: Request, sizes: Option<&Arc<Histogram>>) -> Request {
    use http_body::Body as _;
    if req.body().size_hint().exact() == Some(0) {
        if let Some(h) = sizes {
            h.observe(0.0);
        }
        return req;
    }
    req.map(|b| Body::new(CountedBody::new(b, &metrics().received_bytes, sizes.cloned())))
}

/// Response bodies: one of a known size (manifests, API answers) is counted at once, without a
/// wrapper on the hottest path; a stream (blobs) as it is sent, so that what a client that
/// went away never got is not counted.
fn count_response_body(resp: Response, sizes: Option<&Arc<Histogram>>) -> Response {
    use http_body::Body as _;
    if let Some(n) = resp.body().size_hint().exact().filter(|n| *n <= 64 * 1024) {
        metrics().sent_bytes.add(n);
        if let Some(h) = sizes {
            h.observe(n as f64);
        }
        return resp;
    }
    resp.map(|b| Body::new(CountedBody::new(b, &metrics().sent_bytes, sizes.cloned())))
}

/// A body that adds the bytes it passes to a counter as they pass, and its whole size to a
/// histogram when it is dropped (read to the end or not).
struct CountedBody {
    inner: Body,
    bytes: u64,
    total: &'static Counter,
    sizes: Option<Arc<Histogram>>,
}

impl CountedBody {
    fn new(inner: Body, total: &'static Counter, sizes: Option<Arc<Histogram>>) -> CountedBody {
        CountedBody { inner, bytes: 0, total, sizes }
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if let Some(h) = &self.sizes {
            h.observe(self.bytes as f64);
        }
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.bytes += n;
            self.total.add(n);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_handlers_from_the_end_of_the_path() {
        for (path, handler) in [
            ("", "base"),
            ("/", "base"),
            ("/_catalog", "catalog"),
            ("/lib/app/tags/list", "tags"),
            ("/lib/app/manifests/latest", "manifest"),
            ("/lib/blobs/app/manifests/v1", "manifest"),
            ("/lib/manifests/blobs/sha256:abc", "blob"),
            ("/lib/app/blobs/uploads/", "blob_upload"),
            ("/lib/app/blobs/uploads", "blob_upload"),
            ("/lib/app/blobs/uploads/1234-abcd", "blob_upload_chunk"),
            ("/lib/app/referrers/sha256:abc", "referrers"),
            ("/lib/app/other", "unknown"),
        ] {
            assert_eq!(HANDLERS[registry_route(path).0], handler, "{path}");
        }
        assert_eq!(registry_route("/lib/team/app/manifests/v1"), (MANIFEST, Some("lib/team/app")));
        assert_eq!(registry_route("/lib/app/tags/list"), (TAGS, Some("lib/app")));
        assert_eq!(registry_route("/lib/app/blobs/uploads/1"), (BLOB_UPLOAD_CHUNK, Some("lib/app")));
        assert_eq!(registry_route("/_catalog"), (CATALOG, None));
        assert_eq!(
            api_target("/api/v2.0/projects/lib/repositories/team%252Fapp/artifacts"),
            (Some("lib"), Some("team%252Fapp"))
        );
        assert_eq!(api_target("/api/v2.0/users/3"), (None, None));
    }

    #[test]
    fn request_ids_are_the_clients_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        let generated = request_id(&h);
        assert_ne!(generated, "has space");
        assert_eq!(generated.len(), 36);
        assert_ne!(new_request_id(), new_request_id());
        // Not sequential: consecutive ids share no long prefix, as a counter's would.
        let ids: Vec<String> = (0..64).map(|_| new_request_id().to_str().unwrap().to_string()).collect();
        let shared_prefixes = ids.windows(2).filter(|w| w[0][..8] == w[1][..8]).count();
        assert!(shared_prefixes < 4, "{ids:?}");
        assert!(ids.iter().all(|id| id.as_bytes()[14] == b'4' && b"89ab".contains(&id.as_bytes()[19])), "{ids:?}");
    }
}
