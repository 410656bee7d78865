//! The HTTP server: accepting connections, and the limits that keep slow or hostile clients
//! from holding what others need.
//!
//! `axum::serve` has no timeouts at all: a client that sends a header line every ten seconds,
//! or declares a body and stalls, or stops reading a response, holds its connection (and
//! whatever its request holds) for as long as it likes, and a shutdown waits for it. Here:
//! - the request head must arrive within `header_read_timeout` (hyper's own timer);
//! - a body may pause at most `body_read_timeout` between bytes, after which the request
//!   sees a body error (the upload fails, nothing of it is acknowledged);
//! - a response write may be blocked at most `write_timeout` (a client that stops reading);
//! - a keep-alive connection with no request may be idle at most `idle_timeout`;
//! - at most `max_connections` connections, and `max_connections_per_client` from one
//!   address; beyond, new connections are closed as soon as they are accepted;
//! - at shutdown, requests in flight get `shutdown_timeout` to finish, then everything closes.
//!
//! With TLS, the handshake must end within `header_read_timeout` too; then HTTP/2 or HTTP/1.1,
//! as ALPN chose.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::client::{ClientAddr, LocalAddr, LocalTls, OverHttps, TrustedProxies};
use crate::limit::{Held, PerKey};

/// The server's limits (`http.*` in the configuration).
#[derive(Clone, Debug)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    /// 0: no limit.
    pub max_connections: usize,
    /// 0: no limit.
    pub max_connections_per_client: usize,
    pub shutdown_timeout: Duration,
    /// Peers whose `X-Forwarded-For`/`Forwarded` name the client; they are not held to the
    /// per-client connection cap (every client behind them shares their address).
    pub trusted_proxies: TrustedProxies,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_connections: 10_000,
            max_connections_per_client: 512,
            shutdown_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then requests in flight get
/// `limits.shutdown_timeout` to finish before every connection is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, limits, None, shutdown).await
}

/// As [`serve`], over TLS when `tls` is given (its resolver decides the certificate of each
/// handshake, so a renewed one is served to the next connection).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let limits = Arc::new(limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = PerKey::new(limits.max_connections);
    let per_client = PerKey::new(limits.max_connections_per_client);
    let unlimited = PerKey::new(0);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let http = Arc::new(http);
    let mut either = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    either.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    either.http2().timer(TokioTimer::new());
    let either = Arc::new(either);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken: wait
                    // a moment rather than spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let per_client = if limits.trusted_proxies.trusts(peer.ip()) { &unlimited } else { &per_client };
        let slot = match Slot::take(&connections, per_client, peer.ip()) {
            Ok(slot) => slot,
            Err(limit) => {
                berth_metrics::metrics().limit_refusals.get(&[limit]).inc();
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let activity = Arc::new(Activity::new());
        let timed = TimedIo { inner: stream, activity: activity.clone() };
        let service = ConnectionService {
            app: app.clone(),
            peer,
            local,
            limits: limits.clone(),
            activity: activity.clone(),
            https: tls.is_some(),
        };
        let limits = limits.clone();
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(timed), service));
                tokio::spawn(async move {
                    watched(conn, &activity, &limits, peer).await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(timed));
                let either = either.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, peer = %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = watcher.watch(either.serve_connection(TokioIo::new(stream), service).into_owned());
                    watched(conn, &activity, &limits, peer).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "waiting for requests in flight to finish");
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            seconds = limits.shutdown_timeout.as_secs(),
            "requests still in flight after http.shutdown_timeout_seconds; closing their connections"
        );
    }
    Ok(())
}

/// Serves a connection until it ends or its watchdog closes it (idle, or a write blocked).
async fn watched<E: std::fmt::Display>(
    conn: impl Future<Output = Result<(), E>>,
    activity: &Activity,
    limits: &ServerLimits,
    peer: SocketAddr,
) {
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
        }
        why = activity.watchdog(limits.idle_timeout, limits.write_timeout) => {
            tracing::debug!(peer = %peer, "closing a connection: {why}");
        }
    }
}

/// A connection's place under the limits, given back when it closes.
struct Slot {
    _total: Held<()>,
    _client: Held<IpAddr>,
}

impl Slot {
    fn take(total: &Arc<PerKey<()>>, per_client: &Arc<PerKey<IpAddr>>, client: IpAddr) -> Result<Slot, &'static str> {
        let total = total.enter(()).ok_or("connections")?;
        let client = per_client.enter(client).ok_or("connections_per_client")?;
        berth_metrics::metrics().connections_open.inc();
        Ok(Slot { _total: total, _client: client })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        berth_metrics::metrics().connections_open.dec();
    }
}

/// What a connection's watchdog looks at: when bytes last moved, since when a write has been
/// blocked, and how many requests are being handled.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last read or write that moved bytes.
    last_progress: AtomicU64,
    /// Milliseconds since `start` (plus one, so that 0 means "not blocked") at which a write
    /// first found the socket full.
    write_blocked_since: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_progress: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn progressed(&self) {
        self.last_progress.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Completes when the connection is to be closed: idle too long with no request, or a
    /// write blocked too long.
    async fn watchdog(&self, idle: Duration, write: Duration) -> &'static str {
        let tick = (idle.min(write) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = self.now_ms();
            let blocked = self.write_blocked_since.load(Ordering::Relaxed);
            if blocked > 0 && now.saturating_sub(blocked - 1) > write.as_millis() as u64 {
                return "the client has not read the response for http.write_timeout_seconds";
            }
            let quiet = now.saturating_sub(self.last_progress.load(Ordering::Relaxed));
            if self.in_flight.load(Ordering::Relaxed) == 0 && quiet > idle.as_millis() as u64 {
                return "idle for http.idle_timeout_seconds";
            }
        }
    }
}

/// The socket, noting progress for the watchdog.
struct TimedIo {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TimedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.progressed();
        }
        polled
    }
}

impl TimedIo {
    fn note_write<T>(&self, polled: &Poll<std::io::Result<T>>) {
        match polled {
            Poll::Pending => {
                let _ = self.activity.write_blocked_since.compare_exchange(
                    0,
                    self.activity.now_ms() + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(_) => {
                self.activity.write_blocked_since.store(0, Ordering::Relaxed);
                self.activity.progressed();
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails when the client sends nothing for `timeout`.
struct TimedBody {
    inner: hyper::body::Incoming,
    timeout: Duration,
    /// Armed when a poll finds nothing to read; reset by data.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the client sent no body bytes for {0} s (http.body_read_timeout_seconds)")]
struct BodyTimeout(u64);

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                let was_waiting = std::mem::replace(&mut self.waiting, true);
                let sleep = match &mut self.sleep {
                    Some(sleep) => {
                        if !was_waiting {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    empty => empty.insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let seconds = self.timeout.as_secs();
                        Poll::Ready(Some(Err(Box::new(BodyTimeout(seconds)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a request as in flight while its handler runs (the watchdog closes only idle
/// connections).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.progressed();
    }
}

/// The router for one connection: the peer's address on every request, bodies with a timeout.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    limits: Arc<ServerLimits>,
    activity: Arc<Activity>,
    /// The connection is TLS: every request came over HTTPS.
    https: bool,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        use tower::ServiceExt;
        let in_flight = InFlight::enter(&self.activity);
        let timeout = self.limits.body_read_timeout;
        let mut req = req.map(|inner| axum::body::Body::new(TimedBody { inner, timeout, sleep: None, waiting: false }));
        let client = self.limits.trusted_proxies.client(self.peer, req.headers());
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(ClientAddr(client));
        if self.https {
            req.extensions_mut().insert(LocalTls);
        }
        if self.https || self.limits.trusted_proxies.forwarded_https(self.peer, req.headers()) {
            req.extensions_mut().insert(OverHttps);
        }
        if let Some(local) = self.local {
            req.extensions_mut().insert(LocalAddr(local));
        }
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(req).await;
            drop(in_flight);
            response
        })
    }
}
