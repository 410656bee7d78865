//! `redis.external.tls` with `ca_file`, against a redis-server of the test's own serving TLS
//! with a certificate for `localhost` from a CA the test makes: the CA's certificate is
//! trusted, another CA's is refused, and the binary reports Redis healthy over TLS, directly and
//! through a Sentinel that also speaks only TLS.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_core::shared::{SharedState, Tls};
use common::*;

struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_trusts_the_configured_ca_only() {
    if !have("redis-server") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other-ca");
    make_server_certificate(dir.path(), "ca");
    let port = free_port();
    let _redis = tls_redis(dir.path(), port, false);
    let url = format!("rediss://localhost:{port}/0");
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let other = std::fs::read(dir.path().join("other-ca.crt")).unwrap();
    let trusted = SharedState::connect_tls(&url, Tls { ca: Some(ca), client: None }, "berth-test:").unwrap();
    trusted.ping().await.expect("TLS with the server's CA");
    let untrusted = SharedState::connect_tls(&url, Tls { ca: Some(other), client: None }, "berth-test:").unwrap();
    assert!(untrusted.ping().await.is_err(), "a server certificate from another CA is refused");

    let data = tempfile::tempdir().unwrap();
    let addr = format!("localhost:{port}");
    let ca_file = dir.path().join("ca.crt").to_string_lossy().into_owned();
    let berth = Berth::start_with(
        data.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_REDIS__TYPE", "external"),
            ("BERTH_REDIS__EXTERNAL__ADDRS", &addr),
            ("BERTH_REDIS__EXTERNAL__TLS", "true"),
            ("BERTH_REDIS__EXTERNAL__CA_FILE", &ca_file),
        ],
    );
    let body: serde_json::Value = common::http().get(berth.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ready", "Redis reached over TLS: {body}");
}

/// Internal TLS as Harbor's chart sets it: a Redis that asks every client for a certificate
/// from its CA. With `cert_file`/`key_file` Berth is served; without, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_asks_for_a_client_certificate() {
    if !have("redis-server") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_server_certificate(dir.path(), "ca");
    make_client_certificate(dir.path(), "ca", "berth");
    let port = free_port();
    let _redis = tls_redis(dir.path(), port, true);
    let url = format!("rediss://localhost:{port}/0");
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let anonymous = SharedState::connect_tls(&url, Tls { ca: Some(read("ca.crt")), client: None }, "berth-test:");
    assert!(anonymous.unwrap().ping().await.is_err(), "no client certificate, no connection");
    let tls = Tls { ca: Some(read("ca.crt")), client: Some((read("client.crt"), read("client.key"))) };
    SharedState::connect_tls(&url, tls, "berth-test:").unwrap().ping().await.expect("with the client certificate");

    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let addr = format!("localhost:{port}");
    let mut env = vec![
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("BERTH_REDIS__TYPE", "external".into()),
        ("BERTH_REDIS__EXTERNAL__ADDRS", addr),
        ("BERTH_REDIS__EXTERNAL__TLS", "true".into()),
        ("BERTH_REDIS__EXTERNAL__CA_FILE", path("ca.crt")),
    ];
    let readiness = |env: &[(&str, String)]| {
        let data = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let berth = Berth::start_with(data.path(), &env);
        async move {
            let resp = common::http().get(berth.url("/readyz")).send().await.unwrap();
            let body: serde_json::Value = resp.json().await.unwrap();
            drop(data);
            body
        }
    };
    let refused = readiness(&env).await;
    assert_ne!(refused["status"], "ready", "without a certificate Redis refuses Berth: {refused}");
    env.push(("BERTH_REDIS__EXTERNAL__CERT_FILE", path("client.crt")));
    env.push(("BERTH_REDIS__EXTERNAL__KEY_FILE", path("client.key")));
    let served = readiness(&env).await;
    assert_eq!(served["status"], "ready", "Redis reached with the client certificate: {served}");
}

/// A redis-server speaking only TLS on `port` with `dir`'s `server.crt` (from `ca.crt`),
/// asking clients for a certificate when `auth_clients`; returns once it listens.
fn tls_redis(dir: &std::path::Path, port: u16, auth_clients: bool) -> Process {
    let redis = Process(
        Command::new("redis-server")
            .current_dir(dir)
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt"])
            .args(["--tls-auth-clients", if auth_clients { "yes" } else { "no" }])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_port(port);
    redis
}

fn wait_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_through_a_sentinel_over_tls() {
    if !have("redis-server") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other-ca");
    // The Sentinel names the master by address: the certificate carries it.
    make_server_certificate_for(dir.path(), "ca", "DNS:localhost,IP:127.0.0.1");
    let tls = ["--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt"];
    let (m, s) = (free_port(), free_port());
    let _master = Process(
        Command::new("redis-server")
            .current_dir(dir.path())
            .args(["--port", "0", "--tls-port", &m.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(tls)
            .args(["--tls-auth-clients", "no", "--tls-replication", "yes"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_port(m);
    std::fs::write(
        dir.path().join("sentinel.conf"),
        format!(
            "port 0\ntls-port {s}\nbind 127.0.0.1\ntls-cert-file server.crt\ntls-key-file server.key\n\
             tls-ca-cert-file ca.crt\ntls-auth-clients no\ntls-replication yes\n\
             sentinel monitor berthmaster 127.0.0.1 {m} 1\n"
        ),
    )
    .unwrap();
    let _sentinel = Process(
        Command::new("redis-server")
            .current_dir(dir.path())
            .args(["sentinel.conf", "--sentinel"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel"),
    );
    wait_port(s);

    let sentinels = [format!("localhost:{s}")];
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let other = std::fs::read(dir.path().join("other-ca.crt")).unwrap();
    let connect = |ca: &[u8]| {
        let tls = Some(Tls { ca: Some(ca.to_vec()), client: None });
        SharedState::connect_sentinel(&sentinels, "berthmaster", Default::default(), tls, "berth-test:").unwrap()
    };
    let mut answered = false;
    for _ in 0..50 {
        if connect(&ca).ping().await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "the master, named by the Sentinel, reached over TLS");
    assert!(connect(&other).ping().await.is_err(), "a Sentinel with another CA's certificate is refused");
    let plain = SharedState::connect_sentinel(&sentinels, "berthmaster", Default::default(), None, "berth-test:");
    assert!(plain.unwrap().ping().await.is_err(), "without TLS the Sentinel does not answer");

    let data = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt").to_string_lossy().into_owned();
    let berth = Berth::start_with(
        data.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_REDIS__TYPE", "external"),
            ("BERTH_REDIS__EXTERNAL__ADDRS", &sentinels[0]),
            ("BERTH_REDIS__EXTERNAL__SENTINEL_MASTER_SET", "berthmaster"),
            ("BERTH_REDIS__EXTERNAL__TLS", "true"),
            ("BERTH_REDIS__EXTERNAL__CA_FILE", &ca_file),
        ],
    );
    let body: serde_json::Value = common::http().get(berth.url("/readyz")).send().await.unwrap().json().await.unwrap();
    let redis = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "redis").unwrap().clone();
    assert_eq!(redis["status"], "healthy", "Redis through the Sentinel over TLS: {body}");
}
