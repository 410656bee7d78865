//! Logs and forwarded audit records, end to end with the binary: rsyslog from Debian receives
//! both, including what waited while it was killed; no password, secret or token appears in any
//! log line, at the most verbose level, on standard output or in syslog; request ids and users
//! are on a request's lines.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::*;

/// rsyslogd listening on loopback TCP, writing each message as received to `received.log`.
struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        Rsyslog::start_with(dir, port, "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\n")
    }

    /// Over TLS (RFC 5425), with `server.crt` and `server.key` signed by `ca.crt` in `dir`.
    fn start_tls(dir: &Path, port: u16) -> Rsyslog {
        Rsyslog::start_with(
            dir,
            port,
            "global(workDirectory=\"{dir}\" DefaultNetstreamDriver=\"ossl\" \
             DefaultNetstreamDriverCAFile=\"{dir}/ca.crt\" DefaultNetstreamDriverCertFile=\"{dir}/server.crt\" \
             DefaultNetstreamDriverKeyFile=\"{dir}/server.key\")\n\
             module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n",
        )
    }

    fn start_with(dir: &Path, port: u16, head: &str) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        let head = head.replace("{dir}", &dir.display().to_string());
        std::fs::write(
            &conf,
            format!(
                "{head}\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{dir}/received.log\" template=\"raw\")\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .spawn()
            .expect("rsyslogd");
        // Listening once a connection is accepted.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Rsyslog { child };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("rsyslogd did not listen on {port}");
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("received.log")).unwrap_or_default()
}

async fn wait_until(dir: &Path, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let text = received(dir);
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn audit_records_and_logs_reach_rsyslog_across_its_restart() {
    if !have("rsyslogd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let syslog_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let rsyslog = Rsyslog::start(syslog_dir.path(), port);
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let berth = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_AUDIT__AUDIT_LOG_FORWARD_ENDPOINT", &endpoint),
            ("BERTH_LOG__EXTERNAL_ENDPOINT", &endpoint),
        ],
    );
    let client = admin_client();
    let create = |name: &'static str| {
        client.post(berth.url("/api/v2.0/projects")).json(&serde_json::json!({ "project_name": name })).send()
    };
    assert_eq!(create("syslog-one").await.unwrap().status(), 201);
    let text = wait_until(syslog_dir.path(), Duration::from_secs(10), |t| t.contains("resource=\"syslog-one\"")).await;
    assert!(text.contains("resource=\"syslog-one\" operation=\"create\""), "{text}");
    assert!(text.contains(" berth listening on http://") || text.contains("listening on http://"), "{text}");

    // rsyslog is killed; what happens meanwhile waits in Berth's buffer.
    rsyslog.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for name in ["syslog-two", "syslog-three"] {
        assert_eq!(create(name).await.unwrap().status(), 201);
    }
    let rsyslog = Rsyslog::start(syslog_dir.path(), port);
    let text =
        wait_until(syslog_dir.path(), Duration::from_secs(15), |t| t.contains("resource=\"syslog-three\"")).await;
    for name in ["syslog-one", "syslog-two", "syslog-three"] {
        let lines = text.lines().filter(|l| l.contains(&format!("resource=\"{name}\""))).count();
        assert_eq!(lines, 1, "{name} once: {text}");
    }
    drop(rsyslog);
}

#[tokio::test]
async fn no_secret_reaches_a_log_line_and_request_lines_carry_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BERTH_LOG__LEVEL", "trace"), ("BERTH_LOG__FORMAT", "json")],
    );
    let client = admin_client();
    let secret_password = "Zq7-unloggable-Passw0rd";
    let resp = client
        .post(berth.url("/api/v2.0/users"))
        .json(&serde_json::json!({"username": "leaky", "email": "leaky@example.com", "realname": "L",
            "password": secret_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // Basic credentials, a failed login, a token, a portal login, a robot's secret.
    let user = http_builder().build().unwrap();
    let token: serde_json::Value = user
        .get(berth.url("/service/token?service=harbor-registry&scope=repository:library/app:pull"))
        .basic_auth("leaky", Some(secret_password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let resp = user
        .get(berth.url("/v2/library/app/tags/list"))
        .bearer_auth(&token)
        .header("x-request-id", "req-trace-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-trace-7");
    let wrong = "Wr0ng-but-still-secret";
    let resp = user.get(berth.url("/api/v2.0/users/current")).basic_auth("leaky", Some(wrong)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = user
        .post(berth.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal=leaky&password={secret_password}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let robot: serde_json::Value = client
        .post(berth.url("/api/v2.0/robots"))
        .json(&serde_json::json!({"name": "logbot", "level": "system", "duration": -1, "permissions": [
            {"kind": "project", "namespace": "library", "access": [{"resource": "repository", "action": "pull"}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let robot_secret = robot["secret"].as_str().unwrap().to_string();
    let resp = user
        .get(berth.url("/v2/_catalog"))
        .basic_auth(robot["name"].as_str().unwrap(), Some(&robot_secret))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(berth.wait_for_log("req-trace-7", Duration::from_secs(5)).await, "a line of the request names its id");

    let log = berth.log();
    assert!(log.len() > 50, "trace level logs plenty: {}", log.len());
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("leaky:{secret_password}"));
    let admin_basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let token_signature = token.rsplit('.').next().unwrap().to_string();
    for secret in [secret_password, wrong, ADMIN_PASSWORD, &robot_secret, &token_signature, &basic, &admin_basic] {
        let found: Vec<&String> = log.iter().filter(|l| l.contains(secret)).collect();
        assert!(found.is_empty(), "a secret in the log: {found:#?}");
    }
    // The request's lines carry its id and user, as JSON fields of its span.
    let line = log.iter().find(|l| l.contains("req-trace-7")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    // The request's span, among those the line is in (a database call's may be the innermost).
    let span = v["spans"].as_array().unwrap().iter().find(|s| s["name"] == "request").unwrap();
    assert_eq!(span["id"], "req-trace-7", "{line}");
    assert_eq!(span["repository"], "library/app", "{line}");
    assert_eq!(span["project"], "library", "{line}");
    assert!(
        log.iter().any(|l| l.contains("req-trace-7") && l.contains("\"user\":\"leaky\"")),
        "lines after authentication name the user"
    );
}

#[tokio::test]
async fn audit_records_reach_rsyslog_over_tls_when_its_certificate_is_trusted() {
    let ossl = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so");
    if !have("rsyslogd") || !have("openssl") {
        return;
    }
    if !ossl.exists() {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "rsyslog-openssl is not installed");
        eprintln!("SKIPPED: rsyslog-openssl is not installed");
        return;
    }
    let syslog_dir = tempfile::tempdir().unwrap();
    make_ca(syslog_dir.path(), "ca");
    make_server_certificate_for(syslog_dir.path(), "ca", "DNS:localhost,IP:127.0.0.1");
    let port = free_port();
    let _rsyslog = Rsyslog::start_tls(syslog_dir.path(), port);
    let endpoint = format!("tls://localhost:{port}");
    let ca = syslog_dir.path().join("ca.crt");
    let create = |berth: &Berth, name: &'static str| {
        admin_client().post(berth.url("/api/v2.0/projects")).json(&serde_json::json!({ "project_name": name })).send()
    };

    // Trusting the server's CA: delivered.
    let dir = tempfile::tempdir().unwrap();
    let trusting = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_AUDIT__AUDIT_LOG_FORWARD_ENDPOINT", &endpoint),
            ("BERTH_AUDIT__FORWARD_CA_FILE", ca.to_str().unwrap()),
        ],
    );
    assert_eq!(create(&trusting, "tls-trusted").await.unwrap().status(), 201);
    let text = wait_until(syslog_dir.path(), Duration::from_secs(10), |t| t.contains("resource=\"tls-trusted\"")).await;
    assert!(text.contains("resource=\"tls-trusted\" operation=\"create\""), "{text}");

    // Trusting only the public roots: the handshake fails and nothing is delivered.
    let dir = tempfile::tempdir().unwrap();
    let untrusting = Berth::start_with(
        dir.path(),
        &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BERTH_AUDIT__AUDIT_LOG_FORWARD_ENDPOINT", &endpoint)],
    );
    assert_eq!(create(&untrusting, "tls-untrusted").await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!received(syslog_dir.path()).contains("tls-untrusted"));
    let metrics = admin_client().get(untrusting.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let queued: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("berth_audit_forward_queued "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    // The first start's records (the administrator, the library project) wait with it.
    assert!(queued >= 1.0, "the records wait: {queued}");
    let sent = metrics.lines().find_map(|l| l.strip_prefix("berth_audit_forward_sent_total "));
    assert_eq!(sent, Some("0"));
}
