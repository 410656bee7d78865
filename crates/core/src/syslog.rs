//! Forwarding lines to a syslog server (RFC 5424 messages; over TCP and TLS framed by octet
//! counting as RFC 6587 and RFC 5425 say, or one per UDP datagram), through a bounded buffer
//! that a background task drains: a request never waits on the server, a server that goes away
//! and comes back gets what waited, and what does not fit is counted as dropped.
//!
//! Our own transport rather than `fasyslog`'s senders: those are blocking and neither reconnect
//! nor buffer, which is all the work here.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;

/// How lines reach the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
    Tls,
}

/// A syslog server: `tcp://host:port`, `udp://host:port`, `tls://host:port`, or `host:port`
/// (TCP, as Harbor's `audit_log_forward_endpoint` is given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let (transport, rest) = match s.split_once("://") {
            Some(("tcp", r)) => (Transport::Tcp, r),
            Some(("udp", r)) => (Transport::Udp, r),
            Some(("tls", r)) => (Transport::Tls, r),
            Some((other, _)) => {
                return Err(format!("syslog endpoint {s:?}: transport {other:?} is not tcp, udp or tls"));
            }
            None => (Transport::Tcp, s),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| format!("syslog endpoint {s:?} is not host:port"))?;
        Ok(Endpoint { transport, host: host.to_string(), port })
    }
}

/// Syslog severities used here.
#[derive(Clone, Copy, Debug)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

/// Facility local0 (16), where Harbor's components log.
const FACILITY_LOCAL0: u8 = 16;

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
pub fn format_rfc5424(severity: Severity, app: &str, msgid: &str, structured: &str, msg: &str) -> Vec<u8> {
    let pri = u16::from(FACILITY_LOCAL0) * 8 + severity as u16;
    let time = crate::time::rfc3339_millis(crate::time::now_millis());
    let host = hostname();
    let sd = if structured.is_empty() { "-" } else { structured };
    let mut out = Vec::with_capacity(msg.len() + 128);
    let _ = write!(out, "<{pri}>1 {time} {host} {app} {} {msgid} {sd} {msg}", std::process::id());
    out
}

/// An SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424 6.3.3).
pub fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hostname() -> &'static str {
    static HOST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "-".into())
    });
    &HOST
}

/// Counters a forwarder reports to.
pub trait ForwardStats: Send + Sync + 'static {
    fn queued(&self, n: usize);
    fn sent(&self);
    fn dropped(&self);
}

struct Queue {
    lines: VecDeque<Vec<u8>>,
    capacity: usize,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    stats: Arc<dyn ForwardStats>,
}

impl Forwarder {
    /// Starts the task that writes to `endpoint`, holding at most `capacity` lines while the
    /// server is away. `ca_pem`: the certificates that sign a TLS server's (else the public
    /// roots).
    pub fn start(
        endpoint: Endpoint,
        capacity: usize,
        ca_pem: Option<Vec<u8>>,
        stats: Arc<dyn ForwardStats>,
    ) -> Result<Forwarder, String> {
        let tls = match endpoint.transport {
            Transport::Tls => Some(tls_connector(ca_pem.as_deref())?),
            _ => None,
        };
        let f = Forwarder {
            queue: Arc::new(Mutex::new(Queue { lines: VecDeque::new(), capacity: capacity.max(1) })),
            wake: Arc::new(Notify::new()),
            stats,
        };
        tokio::spawn(drain(f.clone(), endpoint, tls));
        Ok(f)
    }

    /// Queues a line; drops it (and counts it) when the buffer is full. Never waits.
    pub fn send(&self, line: Vec<u8>) {
        let queued = match self.queue.lock() {
            Ok(mut q) if q.lines.len() < q.capacity => {
                q.lines.push_back(line);
                Some(q.lines.len())
            }
            _ => None,
        };
        match queued {
            Some(n) => {
                self.stats.queued(n);
                self.wake.notify_one();
            }
            None => self.stats.dropped(),
        }
    }

    /// Lines waiting.
    pub fn pending(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.lines.len())
    }

    fn front(&self) -> Option<Vec<u8>> {
        self.queue.lock().ok().and_then(|q| q.lines.front().cloned())
    }

    fn pop(&self) {
        let n = self.queue.lock().map_or(0, |mut q| {
            q.lines.pop_front();
            q.lines.len()
        });
        self.stats.queued(n);
        self.stats.sent();
    }
}

type TlsConnector = (tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>);

fn tls_connector(ca_pem: Option<&[u8]>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("syslog CA file: {e}"))?;
                roots.add(cert).map_err(|e| format!("syslog CA file: {e}"))?;
            }
            if roots.is_empty() {
                return Err("syslog CA file holds no certificate".into());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

async fn connect(endpoint: &Endpoint, tls: Option<&TlsConnector>) -> std::io::Result<Conn> {
    let addr = (endpoint.host.as_str(), endpoint.port);
    match (&endpoint.transport, tls) {
        (Transport::Udp, _) => {
            let sock = UdpSocket::bind(if endpoint.host.contains(':') { "[::]:0" } else { "0.0.0.0:0" }).await?;
            sock.connect(addr).await?;
            Ok(Conn::Udp(sock))
        }
        (Transport::Tls, Some((connector, name))) => {
            let tcp = TcpStream::connect(addr).await?;
            Ok(Conn::Tls(Box::new(connector.connect(name.clone(), tcp).await?)))
        }
        _ => Ok(Conn::Tcp(TcpStream::connect(addr).await?)),
    }
}

/// Whether a TCP peer has closed or reset the connection: a server that went away is found
/// out before a line is written into a socket nobody reads, not after.
fn peer_gone(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn write_line(conn: &mut Conn, line: &[u8]) -> std::io::Result<()> {
    match conn {
        Conn::Udp(sock) => sock.send(line).await.map(|_| ()),
        Conn::Tcp(stream) => write_framed(stream, line).await,
        Conn::Tls(stream) => write_framed(stream.as_mut(), line).await,
    }
}

/// One octet-counted frame (`LEN SP MSG`, RFC 6587), once the peer is known to be there.
async fn write_framed<S: PeerStream>(stream: &mut S, line: &[u8]) -> std::io::Result<()> {
    if peer_gone(stream.tcp()) {
        return Err(std::io::ErrorKind::ConnectionReset.into());
    }
    let mut framed = format!("{} ", line.len()).into_bytes();
    framed.extend_from_slice(line);
    stream.write_all(&framed).await?;
    stream.flush().await
}

/// A stream over TCP, whose socket can be asked whether the peer is still there.
trait PeerStream: tokio::io::AsyncWrite + Unpin {
    fn tcp(&self) -> &TcpStream;
}

impl PeerStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl PeerStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Writes the queue out in order, reconnecting (after a pause that grows to 5 s) whenever the
/// server is away; a line leaves the queue only once written.
async fn drain(f: Forwarder, endpoint: Endpoint, tls: Option<tokio_rustls::TlsConnector>) {
    let tls =
        tls.and_then(|c| rustls::pki_types::ServerName::try_from(endpoint.host.clone()).ok().map(|name| (c, name)));
    let mut conn: Option<Conn> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        let Some(line) = f.front() else {
            // The sink was replaced (a new endpoint) and all it queued is sent: done.
            if Arc::strong_count(&f.queue) == 1 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), f.wake.notified()).await;
            continue;
        };
        if conn.is_none() {
            match connect(&endpoint, tls.as_ref()).await {
                Ok(c) => {
                    conn = Some(c);
                    pause = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!(error = %e, host = %endpoint.host, port = endpoint.port, "syslog server unreachable");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match write_line(c, &line).await {
            Ok(()) => f.pop(),
            Err(_) => conn = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("syslog.example:514").unwrap();
        assert_eq!((e.transport, e.host.as_str(), e.port), (Transport::Tcp, "syslog.example", 514));
        assert_eq!(Endpoint::parse("udp://10.0.0.1:514").unwrap().transport, Transport::Udp);
        assert_eq!(Endpoint::parse("tls://[::1]:6514").unwrap().host, "::1");
        assert!(Endpoint::parse("http://x:1").is_err());
        assert!(Endpoint::parse("nohost").is_err());
        assert!(Endpoint::parse(":514").is_err());
    }

    struct Quiet;

    impl ForwardStats for Quiet {
        fn queued(&self, _: usize) {}
        fn sent(&self) {}
        fn dropped(&self) {}
    }

    #[tokio::test]
    async fn udp_sends_one_message_per_datagram() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint::parse(&format!("udp://{}", server.local_addr().unwrap())).unwrap();
        let f = Forwarder::start(endpoint, 10, None, std::sync::Arc::new(Quiet)).unwrap();
        f.send(b"<134>1 - - berth - - - first".to_vec());
        f.send(b"<134>1 - - berth - - - second".to_vec());
        let mut buf = [0u8; 256];
        for expected in ["first", "second"] {
            let n = tokio::time::timeout(Duration::from_secs(5), server.recv(&mut buf)).await.unwrap().unwrap();
            let got = std::str::from_utf8(&buf[..n]).unwrap();
            // A datagram is the message itself, without TCP's octet count.
            assert!(got.starts_with("<134>1 ") && got.ends_with(expected), "{got}");
        }
    }

    #[test]
    fn messages_are_rfc5424() {
        let m = String::from_utf8(format_rfc5424(Severity::Info, "berth", "audit", "[a@1 k=\"v\"]", "hello")).unwrap();
        let parts: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(parts[0], "<134>1");
        assert!(parts[1].ends_with('Z') && parts[1].contains('T'), "{m}");
        assert_eq!((parts[3], parts[5], parts[6]), ("berth", "audit", "[a@1"));
        assert!(m.ends_with("k=\"v\"] hello"));
        assert_eq!(sd_escape("a\"b]c\\"), "a\\\"b\\]c\\\\");
    }
}
