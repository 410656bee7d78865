//! Berth's outbound HTTP clients in the real binary: internal TLS to object storage
//! (`storage.ca_file`), and the outbound proxy (Harbor's `proxy` section) with a recording
//! proxy on loopback. The servers behind it are named by host names that do not resolve (`s3proxied`,
//! `feeds`, `otel`): a request reaches one only through the proxy, which connects every name
//! to loopback. Shown: object storage (`registry`), the vulnerability database download
//! (`trivy`, over plain HTTP and through a CONNECT tunnel to an HTTPS mirror signed by an
//! internal CA) and the trace exporter (`core`) through the proxy; a component not listed,
//! and a host `no_proxy` names, go direct; the standard `HTTP_PROXY` variables stand in for an
//! unset configuration.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SCANNER_METADATA: &str = "/api/v2.0/scanners/00000000-0000-4000-8000-000000000b17/metadata";
const UPDATED_AT: &str = "harbor.scanner-adapter/vulnerability-database-updated-at";

fn alpine_feed() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scan/tests/fixtures/vulndb/alpine-secdb-json-pschou-oval-f6c0ccb7.tar.gz");
    std::fs::read(path).unwrap()
}

/// A forward proxy that records the authority of each connection's first request (`GET
/// http://host:port/...` or `CONNECT host:port`) and connects every host name to loopback.
struct RecordingProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(forward(inbound, record.clone()));
            }
        });
        RecordingProxy { url, seen }
    }

    fn saw(&self, host: &str) -> bool {
        self.seen.lock().unwrap().iter().any(|a| a.split(':').next() == Some(host))
    }
}

async fn forward(mut inbound: tokio::net::TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match inbound.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap()]).to_string();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = if method == "CONNECT" {
        target.to_string()
    } else {
        target.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or("")).to_string()
    };
    seen.lock().unwrap().push(authority.clone());
    let port = authority.rsplit(':').next().unwrap_or("80");
    let Ok(mut outbound) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await else { return };
    if method == "CONNECT" {
        // Bytes after the CONNECT head (none: the client waits for the answer) would be lost.
        if inbound.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
            return;
        }
    } else if outbound.write_all(&head).await.is_err() {
        // Servers take the absolute form of the request target, so the head goes on as it came.
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}

/// A feed mirror serving Alpine's secdb at `/alpine/secdb.tar.gz`, and an OTLP receiver
/// counting the trace exports it is sent; its port.
async fn mirror(tls: Option<Arc<rustls::ServerConfig>>) -> (u16, Arc<Mutex<usize>>) {
    let feed = alpine_feed();
    let exports: Arc<Mutex<usize>> = Arc::default();
    let counted = exports.clone();
    let app = axum::Router::new()
        .route("/alpine/secdb.tar.gz", axum::routing::get(move || std::future::ready(feed.clone())))
        .route(
            "/v1/traces",
            axum::routing::post(move || {
                *counted.lock().unwrap() += 1;
                std::future::ready("")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = berth_api::ServerLimits::default();
    tokio::spawn(berth_api::serve_with(listener, app, limits, tls, std::future::pending()));
    (port, exports)
}

/// The moto server's port (its URL is `http://127.0.0.1:PORT`).
fn moto_port(url: &str) -> String {
    url.rsplit(':').next().unwrap().trim_end_matches('/').to_string()
}

/// `storage` settings for moto reached as `http://HOST:PORT`.
fn s3_env_at(host: &str, s3: &str) -> Vec<(String, String)> {
    let mut env = s3_storage_env(&format!("http://{host}:{}", moto_port(s3)));
    env.push(("BERTH_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    env
}

fn start(dir: &std::path::Path, env: &[(String, String)]) -> Berth {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Berth::start_with(dir, &env)
}

/// Waits for the scanner's metadata to show a database; whether it did.
async fn database_imported(berth: &Berth) -> bool {
    let client = admin_client();
    for _ in 0..200 {
        let metadata: serde_json::Value =
            client.get(berth.url(SCANNER_METADATA)).send().await.unwrap().json().await.unwrap();
        if metadata["properties"].get(UPDATED_AT).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_component_reaches_its_servers_through_the_proxy() {
    let Some(s3) = s3_url() else { return };
    let proxy = RecordingProxy::start().await;
    let (port, exports) = mirror(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = s3_env_at("s3proxied", &s3);
    env.extend(
        [
            ("BERTH_PROXY__HTTP_PROXY", proxy.url.clone()),
            ("BERTH_VULNDB__URLS", format!("http://feeds:{port}/alpine/secdb.tar.gz")),
            ("BERTH_TRACE__ENABLED", "true".into()),
            ("BERTH_TRACE__OTEL__ENDPOINT", format!("otel:{port}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let berth = start(dir.path(), &env);
    assert!(berth.log().iter().any(|l| l.contains("outbound proxy: http: http://127.0.0.1")), "{:?}", berth.log());

    // registry: a blob pushed lands in S3 (moto) through the proxy, and reads back.
    let client = admin_client();
    let digest = push_blob(&client, &berth, "library/proxied", b"through the proxy").await;
    let blob = client.get(berth.url(&format!("/v2/library/proxied/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(blob.bytes().await.unwrap().as_ref(), b"through the proxy");
    assert!(proxy.saw("s3proxied"), "{:?}", proxy.seen.lock().unwrap());

    // trivy: a first start with a feed never imported downloads it at once.
    assert!(database_imported(&berth).await, "{:?}", berth.log());
    assert!(proxy.saw("feeds"));

    // core: the trace exporter's requests.
    for _ in 0..50 {
        if *exports.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(*exports.lock().unwrap() > 0, "no trace export arrived");
    assert!(proxy.saw("otel"));
}

/// A component left out of `proxy.components`, and a host in `no_proxy`, go direct: their
/// servers' names do not resolve without the proxy, so the download fails and the proxy
/// sees nothing of it, while the listed component still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_component_and_a_no_proxy_host_go_direct() {
    let Some(s3) = s3_url() else { return };
    let (port, _) = mirror(None).await;
    for (case, more) in [
        ("unlisted", vec![("BERTH_PROXY__COMPONENTS", "registry,core".to_string())]),
        ("no_proxy", vec![("BERTH_PROXY__NO_PROXY", ".corp.example,feeds".to_string())]),
    ] {
        let proxy = RecordingProxy::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut env = s3_env_at("s3proxied", &s3);
        env.push(("BERTH_PROXY__HTTP_PROXY".into(), proxy.url.clone()));
        env.push(("BERTH_VULNDB__URLS".into(), format!("http://feeds:{port}/alpine/secdb.tar.gz")));
        env.extend(more.into_iter().map(|(k, v)| (k.to_string(), v)));
        let berth = start(dir.path(), &env);
        push_blob(&admin_client(), &berth, "library/proxied", case.as_bytes()).await;
        assert!(proxy.saw("s3proxied"), "{case}");
        assert!(berth.wait_for_log("feeds failed", Duration::from_secs(20)).await, "{case}: {:?}", berth.log());
        assert!(!proxy.saw("feeds"), "{case}: {:?}", proxy.seen.lock().unwrap());
    }
}

/// With nothing configured, `HTTP_PROXY` and `HTTPS_PROXY` serve (as for curl and Go's
/// programs); an `https://` feed goes through a CONNECT tunnel, and is trusted by the
/// internal CA `vulndb.ca_file` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_variables_serve_and_https_goes_through_a_tunnel() {
    let Some(s3) = s3_url() else { return };
    if !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_certificate_for(certs.path(), "ca", "DNS:feeds");
    let (port, _) = mirror(Some(server_tls(certs.path()))).await;

    let proxy = RecordingProxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = s3_env_at("s3proxied", &s3);
    env.extend(
        [
            ("HTTP_PROXY", proxy.url.clone()),
            ("https_proxy", proxy.url.clone()),
            ("BERTH_VULNDB__URLS", format!("https://feeds:{port}/alpine/secdb.tar.gz")),
            ("BERTH_VULNDB__CA_FILE", certs.path().join("ca.crt").display().to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let berth = start(dir.path(), &env);
    push_blob(&admin_client(), &berth, "library/proxied", b"from the environment").await;
    assert!(proxy.saw("s3proxied"));
    assert!(database_imported(&berth).await, "{:?}", berth.log());
    assert!(proxy.seen.lock().unwrap().contains(&format!("feeds:{port}")));
}

/// A server's TLS configuration with `dir`'s `server.crt` and `server.key`.
fn server_tls(dir: &std::path::Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    berth_store::install_tls_provider();
    let chain: Vec<_> =
        rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.crt")).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    Arc::new(rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap())
}

/// A TLS terminator on loopback in front of `target` (`host:port`), its certificate `dir`'s
/// `server.crt`; its port.
async fn tls_front(dir: &std::path::Path, target: String) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// Internal TLS to object storage: S3 (moto) behind TLS with a certificate an internal CA
/// signed. Trusting `storage.ca_file`, a blob pushed lands there and reads back; with the
/// public roots only, the certificate is refused and the push fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_storage_over_tls_trusts_storage_ca_file() {
    let Some(s3) = s3_url() else { return };
    if !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_certificate(certs.path(), "ca");
    let port = tls_front(certs.path(), format!("127.0.0.1:{}", moto_port(&s3))).await;
    let ca = certs.path().join("ca.crt").display().to_string();
    let client = admin_client();
    for trusted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = s3_env_at("localhost", &s3);
        for (k, v) in env.iter_mut() {
            if k == "BERTH_STORAGE__S3__ENDPOINT" {
                *v = format!("https://localhost:{port}");
            }
        }
        if trusted {
            env.push(("BERTH_STORAGE__CA_FILE".into(), ca.clone()));
        }
        let berth = start(dir.path(), &env);
        let data = format!("over TLS, trusted: {trusted}");
        let digest = berth_oci::Digest::sha256_of(data.as_bytes());
        let pushed = client
            .post(berth.url(&format!("/v2/library/tls/blobs/uploads/?digest={digest}")))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        if !trusted {
            assert!(pushed.status().is_server_error(), "{}", pushed.status());
            continue;
        }
        assert_eq!(pushed.status(), reqwest::StatusCode::CREATED);
        let blob = client.get(berth.url(&format!("/v2/library/tls/blobs/{digest}"))).send().await.unwrap();
        assert_eq!(blob.text().await.unwrap(), data);
    }
}
