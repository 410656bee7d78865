//! The binary as a user starts it: flags, environment, help, and graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn help_describes_every_flag() {
    let top = run(Command::new(env!("CARGO_BIN_EXE_berth")).arg("--help"));
    assert!(top.contains("serve"), "{top}");
    let serve = run(Command::new(env!("CARGO_BIN_EXE_berth")).args(["serve", "--help"]));
    for flag in ["--config", "--data-dir", "--listen", "BERTH_"] {
        assert!(serve.contains(flag), "serve --help lacks {flag}: {serve}");
    }
    let migrate = run(Command::new(env!("CARGO_BIN_EXE_berth")).args(["admin", "migrate-data", "--help"]));
    for flag in ["--config", "--data-dir", "--to"] {
        assert!(migrate.contains(flag), "admin migrate-data --help lacks {flag}: {migrate}");
    }
}

/// Starts `berth serve --listen 127.0.0.1:0` with extra arguments and environment, waits until
/// `expect` holds a database, and stops it.
fn serve_until_database(args: &[&str], env: &[(&str, &std::path::Path)], expect: &std::path::Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args).stdout(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    for _ in 0..200 {
        if expect.join("berth.db").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(expect.join("berth.db").exists(), "no database in {}", expect.display());
}

#[test]
fn file_then_environment_then_flags_decide() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env, from_flag) = (dir.path().join("file"), dir.path().join("env"), dir.path().join("flag"));
    let config = dir.path().join("berth.yml");
    std::fs::write(&config, format!("data_dir: {}\nlog:\n  format: json\n", from_file.display())).unwrap();
    let config = config.to_str().unwrap();

    serve_until_database(&["--config", config], &[], &from_file);
    serve_until_database(&["--config", config], &[("BERTH_DATA_DIR", &from_env)], &from_env);
    serve_until_database(
        &["--config", config, "--data-dir", from_flag.to_str().unwrap()],
        &[("BERTH_DATA_DIR", &from_env)],
        &from_flag,
    );

    // A bad value is a clear error at start, not a crash later.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&from_flag)
        .env("BERTH_LOG__FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log.format"));
}

#[test]
fn a_newer_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth-layout-version"), "99\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this build"), "{out:?}");
}

fn read_response(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
        let n = stream.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn request(addr: &str, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    read_response(&mut s)
}

fn header_value(response: &str, name: &str) -> Option<String> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let created = request(
        &berth.addr,
        &format!(
            "POST /v2/library/graceful/blobs/uploads/ HTTP/1.1\r\nHost: t\r\nAuthorization: {ADMIN_BASIC}\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    let location = header_value(&created, "location").expect("location");

    // Half a chunked request, then SIGTERM, then the other half.
    let mut s = TcpStream::connect(&berth.addr).unwrap();
    write!(
        s,
        "PATCH {location} HTTP/1.1\r\nHost: t\r\nAuthorization: {ADMIN_BASIC}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    berth.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"6\r\n world\r\n0\r\n\r\n").unwrap();
    let response = read_response(&mut s);
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    assert_eq!(header_value(&response, "range").as_deref(), Some("0-10"));
    drop(s);

    let mut berth = berth;
    let status = wait_exit(&mut berth.child);
    assert!(status.success(), "berth exited with {status}");

    // The acknowledged bytes are there after a restart.
    let berth = Berth::start(dir.path());
    let status =
        request(&berth.addr, &format!("GET {location} HTTP/1.1\r\nHost: t\r\nAuthorization: {ADMIN_BASIC}\r\n\r\n"));
    assert!(status.starts_with("HTTP/1.1 204"), "{status}");
    assert_eq!(header_value(&status, "range").as_deref(), Some("0-10"));
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("berth did not exit after SIGTERM");
}

#[test]
fn first_start_generates_the_admin_password_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[]);
    let file = dir.path().join("initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 8);
    std::thread::sleep(Duration::from_millis(200));
    let printed: Vec<String> = berth.log().into_iter().filter(|l| l.contains(&password)).collect();
    assert_eq!(printed.len(), 1, "the password is printed exactly once: {printed:?}");
    assert!(printed[0].starts_with("berth: administrator"), "and never through the log: {printed:?}");
    drop(berth);

    let berth = Berth::start_with(dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(berth.log().iter().all(|l| !l.contains(&password) && !l.contains("generated password")));
}

#[test]
fn a_configured_admin_password_is_used_and_must_be_strong() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("BERTH_ADMIN_PASSWORD", "weak")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("administrator password"), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("weak"), "the refused password is not echoed");

    let secret_file = dir.path().join("admin-secret");
    std::fs::write(&secret_file, "FromFile12345\n").unwrap();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD_FILE", secret_file.to_str().unwrap())]);
    assert!(!dir.path().join("initial-admin-password").exists());
    std::thread::sleep(Duration::from_millis(200));
    assert!(berth.log().iter().all(|l| !l.contains("FromFile12345")));
}

/// Pull statistics are written every second while serving, and what is pending when a
/// graceful shutdown begins is written before the process exits.
#[tokio::test]
async fn pull_statistics_are_flushed_while_serving_and_at_shutdown() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start(dir.path());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let digest = berth_oci::Digest::sha256_of(config);
    let resp = client
        .post(berth.url(&format!("/v2/library/stats/blobs/uploads/?digest={digest}")))
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.to_string(), "size": config.len()},
        "layers": [],
    });
    let resp = client
        .put(berth.url("/v2/library/stats/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let pull = || client.get(berth.url("/v2/library/stats/manifests/v1")).header("accept", OCI_MANIFEST).send();
    let count = |berth: &Berth| {
        let url = berth.url("/api/v2.0/projects/library/repositories/stats");
        let client = client.clone();
        async move {
            let repo: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
            repo["pull_count"].as_i64().unwrap()
        }
    };

    assert_eq!(pull().await.unwrap().status(), 200);
    let mut seen = 0;
    for _ in 0..50 {
        seen = count(&berth).await;
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "the periodic flush wrote the first pull");

    assert_eq!(pull().await.unwrap().status(), 200);
    berth.signal("TERM");
    let mut berth = berth;
    assert!(wait_exit(&mut berth.child).success());
    drop(berth);
    let berth = Berth::start(dir.path());
    assert_eq!(count(&berth).await, 2, "the pull made just before SIGTERM was written at shutdown");
}

/// With `database.type: external`, everything lives in PostgreSQL: nothing in the data
/// directory's database file, and a restart (or another process) finds it all there.
#[tokio::test]
async fn serves_from_an_external_postgres_database() {
    let Some(admin_url) = postgres_url() else { return };
    let env = external_database_env(&admin_url).await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();

    let berth = Berth::start_with(dir.path(), &env);
    let resp = client
        .post(berth.url("/api/v2.0/projects"))
        .json(&serde_json::json!({"project_name": "pg", "metadata": {"public": "false"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let blob = b"stored in postgres";
    let digest = berth_oci::Digest::sha256_of(blob);
    let resp = client
        .post(berth.url(&format!("/v2/pg/app/blobs/uploads/?digest={digest}")))
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    drop(berth);
    assert!(!dir.path().join("berth.db").exists(), "no embedded database with database.type external");

    // A second process on a different data directory (the blobs' root is shared through the
    // first one's) sees the project and the blob: the metadata is in PostgreSQL.
    let other = tempfile::tempdir().unwrap();
    let mut env2 = env.clone();
    let blobs = dir.path().to_string_lossy().into_owned();
    env2.push(("BERTH_STORAGE__FILESYSTEM__ROOT", &blobs));
    let berth = Berth::start_with(other.path(), &env2);
    let project: serde_json::Value =
        client.get(berth.url("/api/v2.0/projects/pg")).send().await.unwrap().json().await.unwrap();
    assert_eq!(project["name"], "pg");
    let resp = client.get(berth.url(&format!("/v2/pg/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob);
}

/// Losing the database makes the replica unready (liveness stays up); when the database comes
/// back the replica is ready again by itself, without a restart. (Multi-threaded: the proxy
/// must run while `Berth::start_with` blocks this thread.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_recovers() {
    let Some(admin_url) = postgres_url() else { return };
    let mut env = external_database_env(&admin_url).await;
    let proxy = CuttableProxy::start(postgres_host_port(&admin_url)).await;
    through_proxy(&mut env, &proxy);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &env);
    let client = common::http();
    let ready = || async { client.get(berth.url("/readyz")).send().await.unwrap().status().as_u16() };
    let wait_for = |want: u16| async move {
        for _ in 0..100 {
            if ready().await == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert_eq!(ready().await, 200);

    proxy.cut();
    assert!(wait_for(503).await, "unready within 10 s of losing the database");
    assert_eq!(client.get(berth.url("/livez")).send().await.unwrap().status(), 200);
    let health: serde_json::Value =
        client.get(berth.url("/api/v2.0/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "unhealthy");

    proxy.restore();
    assert!(wait_for(200).await, "ready again within 10 s of the database coming back");
    let resp =
        client.get(berth.url("/api/v2.0/projects/library")).header("authorization", ADMIN_BASIC).send().await.unwrap();
    assert_eq!(resp.status(), 200, "requests work again without a restart");
}

/// Three replicas started at the same moment on one fresh PostgreSQL database and one shared
/// blob volume: the schema is migrated once and the administrator made once (no replica fails
/// on the race), a token issued by one replica is accepted by the others, and an upload begun
/// on one replica continues on another and finishes on a third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_database_tokens_and_uploads() {
    let Some(admin_url) = postgres_url() else { return };
    let shared = tempfile::tempdir().unwrap();
    let mut env = external_database_env(&admin_url).await;
    env.push(("BERTH_STORAGE__FILESYSTEM__ROOT".into(), shared.path().to_string_lossy().into_owned()));
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let starting: Vec<_> = dirs
        .iter()
        .map(|d| {
            let (path, env) = (d.path().to_path_buf(), env.clone());
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Berth::start_with(&path, &env)
            })
        })
        .collect();
    let replicas: Vec<Berth> = starting.into_iter().map(|t| t.join().expect("a replica failed to start")).collect();

    let client = common::http();
    let token: serde_json::Value = client
        .get(replicas[0].url("/service/token?service=harbor-registry&scope=repository:library/shared:pull,push"))
        .header("authorization", ADMIN_BASIC)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());

    let data = b"begun on one replica, continued on another, finished on a third".to_vec();
    let digest = berth_oci::Digest::sha256_of(&data);
    let resp = client
        .post(replicas[1].url("/v2/library/shared/blobs/uploads/"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "a token from replica 0 works on replica 1");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = client
        .patch(replicas[2].url(&location))
        .header("authorization", &bearer)
        .header("content-range", format!("0-{}", 19))
        .body(data[..20].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = client
        .put(replicas[0].url(&format!("{location}{sep}digest={digest}")))
        .header("authorization", &bearer)
        .header("content-range", format!("20-{}", data.len() - 1))
        .body(data[20..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    for r in &replicas {
        let resp =
            client.get(r.url(&format!("/v2/library/shared/blobs/{digest}"))).header("authorization", &bearer).send();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    }
    // Every replica serves the one administrator made at the race.
    for r in &replicas {
        let me =
            client.get(r.url("/api/v2.0/users/current")).header("authorization", ADMIN_BASIC).send().await.unwrap();
        assert_eq!(me.status(), 200);
    }
}

/// Housekeeping is a job of the job service, fired by its schedule once per cluster: with one
/// replica of two killed, the survivor runs it and purges upload sessions abandoned for longer
/// than the configured age; the dead replica's pool leaves `/jobservice/pools` within its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_runs_on_a_surviving_replica_and_purges_abandoned_uploads() {
    let Some(admin_url) = postgres_url() else { return };
    let shared = tempfile::tempdir().unwrap();
    let mut env = external_database_env(&admin_url).await;
    for (k, v) in [
        ("BERTH_STORAGE__FILESYSTEM__ROOT", shared.path().to_str().unwrap()),
        ("BERTH_MAINTENANCE__INTERVAL_SECONDS", "1"),
        ("BERTH_MAINTENANCE__UPLOAD_MAX_AGE_SECONDS", "2"),
        ("BERTH_JOBS__LEASE_SECONDS", "2"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Berth::start_with(dir_a.path(), &env);
    let b = Berth::start_with(dir_b.path(), &env);
    let client = common::http();
    let pools = || async {
        let resp =
            client.get(b.url("/api/v2.0/jobservice/pools")).header("authorization", ADMIN_BASIC).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Vec<serde_json::Value>>().await.unwrap().len()
    };
    let until_pools = |n: usize| async move {
        for _ in 0..100 {
            if pools().await == n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(until_pools(2).await, "both replicas' pools are listed");
    let schedules: Vec<serde_json::Value> = client
        .get(b.url("/api/v2.0/schedules"))
        .header("authorization", ADMIN_BASIC)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        schedules.iter().any(|s| s["vendor_type"] == "HOUSEKEEPING" && s["cron"] == "*/1 * * * * *"),
        "{schedules:?}"
    );

    a.kill();
    let resp = client
        .post(b.url("/v2/library/abandoned/blobs/uploads/"))
        .header("authorization", ADMIN_BASIC)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(b.wait_for_log("purged abandoned upload sessions", Duration::from_secs(15)).await);
    let resp = client.get(b.url(&location)).header("authorization", ADMIN_BASIC).send().await.unwrap();
    assert_eq!(resp.status(), 404, "the abandoned session is gone");
    assert!(until_pools(1).await, "the killed replica's pool leaves the list");
}

/// Redis is reported by readiness but not required: with it down the replica is `degraded`,
/// still ready, and pushes and logins go on; with it up, `ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_degrades_without_stopping_anything() {
    let client = common::http();
    let dir = tempfile::tempdir().unwrap();
    let down = [
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_REDIS__TYPE", "external"),
        ("BERTH_REDIS__EXTERNAL__ADDRS", "127.0.0.1:1"),
    ];
    let berth = Berth::start_with(dir.path(), &down);
    let resp = client.get(berth.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let redis = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "redis").unwrap().clone();
    assert_eq!(redis["status"], "unhealthy");
    let blob = b"pushed while Redis is down";
    let digest = berth_oci::Digest::sha256_of(blob);
    let resp = client
        .post(berth.url(&format!("/v2/library/noredis/blobs/uploads/?digest={digest}")))
        .header("authorization", ADMIN_BASIC)
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "Basic login and push work without Redis");
    drop(berth);

    let Some(url) = redis_url() else { return };
    let addr = url.trim_start_matches("redis://").split('/').next().unwrap().to_string();
    let up = [
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_REDIS__TYPE", "external"),
        ("BERTH_REDIS__EXTERNAL__ADDRS", addr.as_str()),
    ];
    let berth = Berth::start_with(dir.path(), &up);
    let body: serde_json::Value = client.get(berth.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
}

/// `berth admin migrate-data` moves an embedded installation with a few hundred artifacts to
/// PostgreSQL and S3: afterwards every artifact pulls byte for byte from the new installation,
/// users log in with their passwords, labels and pull counts are there; a second run into the
/// same database is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_data_moves_an_embedded_installation() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let Some(admin_url) = postgres_url() else { return };
    let Some(s3_url) = s3_url() else { return };
    let source_dir = tempfile::tempdir().unwrap();
    let client = admin_client();

    let berth = Berth::start(source_dir.path());
    let mut pushed = Vec::new();
    for i in 0..240 {
        // One layer larger than an object store's part, the rest small.
        let layer = if i == 7 { vec![7u8; 12 << 20] } else { format!("layer {i} ").repeat(100 + i).into_bytes() };
        let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{i}}}"#).into_bytes();
        let mut descs = Vec::new();
        for bytes in [&config, &layer] {
            let d = berth_oci::Digest::sha256_of(bytes);
            let url = berth.url(&format!("/v2/library/app{}/blobs/uploads/?digest={d}", i % 4));
            assert_eq!(client.post(url).body(bytes.clone()).send().await.unwrap().status(), 201);
            descs.push(serde_json::json!({"mediaType": "application/octet-stream", "digest": d.to_string(), "size": bytes.len()}));
        }
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descs[0], "layers": [descs[1]]}).to_string();
        let url = berth.url(&format!("/v2/library/app{}/manifests/v{i}", i % 4));
        let resp = client.put(url).header("content-type", OCI_MANIFEST).body(manifest.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        pushed.push((format!("library/app{}", i % 4), format!("v{i}"), manifest, layer));
    }
    let resp = client
        .post(berth.url("/api/v2.0/users"))
        .json(&serde_json::json!({"username": "carol", "password": "Carol1234", "email": "carol@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp =
        client.post(berth.url("/api/v2.0/labels")).json(&serde_json::json!({"name": "prod", "scope": "g"})).send();
    let label_id = resp.await.unwrap().headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let resp = client
        .post(berth.url("/api/v2.0/projects/library/repositories/app0/artifacts/v0/labels"))
        .json(&serde_json::json!({"id": label_id.parse::<i64>().unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    berth.signal("TERM");
    let mut berth = berth;
    assert!(wait_exit(&mut berth.child).success());
    drop(berth);

    // The target: a fresh database and a fresh prefix in a bucket, as a configuration file.
    let mut env = external_database_env(&admin_url).await;
    env.extend(s3_storage_env(&s3_url));
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let target_dir = tempfile::tempdir().unwrap();
    let mut yaml = format!(
        "database:\n  type: external\n  external:\n    host: {}\n    port: {}\n    username: {}\n    database: {}\n",
        get("BERTH_DATABASE__EXTERNAL__HOST"),
        get("BERTH_DATABASE__EXTERNAL__PORT"),
        get("BERTH_DATABASE__EXTERNAL__USERNAME"),
        get("BERTH_DATABASE__EXTERNAL__DATABASE"),
    );
    let password = get("BERTH_DATABASE__EXTERNAL__PASSWORD");
    if !password.is_empty() {
        yaml.push_str(&format!("    password: {password}\n"));
    }
    yaml.push_str("storage:\n  type: s3\n  s3:\n");
    for key in ["BUCKET", "REGION", "ENDPOINT", "PATH_STYLE", "ACCESS_KEY", "SECRET_KEY", "ROOT"] {
        yaml.push_str(&format!("    {}: {}\n", key.to_lowercase(), get(&format!("BERTH_STORAGE__S3__{key}"))));
    }
    let target_file = target_dir.path().join("target.yml");
    std::fs::write(&target_file, yaml).unwrap();

    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["admin", "migrate-data", "--data-dir"])
            .arg(source_dir.path())
            .arg("--to")
            .arg(&target_file)
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("manifests") && stdout.contains("copied and verified"), "{stdout}");
    let again = migrate();
    assert!(!again.status.success(), "a second run into a database that has users is refused");

    let new_data = tempfile::tempdir().unwrap();
    let berth = Berth::start_with_config(new_data.path(), &target_file);
    for (repo, tag, manifest, layer) in &pushed {
        let resp = client
            .get(berth.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{repo}:{tag}");
        assert_eq!(resp.text().await.unwrap(), *manifest);
        let d = berth_oci::Digest::sha256_of(layer);
        let bytes = client.get(berth.url(&format!("/v2/{repo}/blobs/{d}"))).send().await.unwrap().bytes().await;
        assert_eq!(bytes.unwrap().as_ref(), layer.as_slice());
    }
    let carol = common::http()
        .get(berth.url("/api/v2.0/users/current"))
        .basic_auth("carol", Some("Carol1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(carol.status(), 200, "passwords came along");
    let art: serde_json::Value = client
        .get(berth.url("/api/v2.0/projects/library/repositories/app0/artifacts/v0?with_label=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(art["labels"][0]["name"], "prod");
    // New rows continue after the copied ids.
    let resp =
        client.post(berth.url("/api/v2.0/labels")).json(&serde_json::json!({"name": "new", "scope": "g"})).send();
    assert_eq!(resp.await.unwrap().status(), 201);
}

/// On object storage with `storage.redirect`, blob GETs answer 307 to a presigned URL of the
/// bucket (a Range header works there too), HEADs are answered by the registry, and skopeo
/// follows the redirects to copy an image out byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_reads_redirect_to_object_storage() {
    let Some(s3_url) = s3_url() else { return };
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut env = s3_storage_env(&s3_url);
    env.push(("BERTH_STORAGE__REDIRECT".into(), "true".into()));
    env.push(("BERTH_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(dir.path(), &env);

    let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_be_bytes()).collect();
    let digest = berth_oci::Digest::sha256_of(&data);
    let client = admin_client();
    let project = serde_json::json!({"project_name": "private", "metadata": {"public": "false"}});
    let resp = client.post(berth.url("/api/v2.0/projects")).json(&project).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let url = berth.url(&format!("/v2/private/redirected/blobs/uploads/?digest={digest}"));
    assert_eq!(client.post(url).body(data.clone()).send().await.unwrap().status(), 201);

    let no_follow = http_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let blob = berth.url(&format!("/v2/private/redirected/blobs/{digest}"));
    let resp = no_follow.get(&blob).header("authorization", ADMIN_BASIC).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&s3_url) && location.contains("X-Amz-Signature"), "{location}");
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    let head = no_follow.head(&blob).header("authorization", ADMIN_BASIC).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], data.len().to_string().as_str());
    // The presigned URL needs no registry credentials, and serves ranges.
    let bytes = no_follow.get(&location).send().await.unwrap().bytes().await.unwrap();
    assert!(bytes.as_ref() == data, "the bucket serves the blob");
    let part = client.get(&blob).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[10..20]);
    // Access is checked before the redirect: no credentials, no URL.
    let anonymous = no_follow.get(&blob).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let work = tempfile::tempdir().unwrap();
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    let repo = format!("docker://{}/library/app:v1", berth.addr);
    run(Command::new("skopeo").args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, &src, &repo]));
    let out = work.path().join("out");
    let dest = format!("oci:{}:v1", out.display());
    run(Command::new("skopeo").args(["copy", "--src-tls-verify=false", "--src-creds", ADMIN_CREDS, &repo, &dest]));
    let (original, copied) = (layout_blobs(&work.path().join("layout")), layout_blobs(&out));
    for (name, bytes) in &original {
        if let Some(c) = copied.get(name) {
            assert!(c == bytes, "blob {name} differs");
        }
    }
    assert!(copied.len() >= 3 && copied.keys().all(|k| original.contains_key(k)), "{:?}", copied.keys());
}

/// With `secret_key_file`, the token signing key the replicas share is kept sealed in the
/// database: replicas with the same key file accept each other's tokens, the stored value is
/// no PEM, and a replica with another key refuses to start and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_signing_key_is_sealed_with_the_secret_key() {
    let Some(admin_url) = postgres_url() else { return };
    let mut env = external_database_env(&admin_url).await;
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("secret"), "the installation's secret\n").unwrap();
    std::fs::write(keys.path().join("other"), "another secret\n").unwrap();
    env.push(("BERTH_SECRET_KEY_FILE".into(), keys.path().join("secret").to_string_lossy().into_owned()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = Berth::start_with(dirs[0].path(), &env_refs);
    let second = Berth::start_with(dirs[1].path(), &env_refs);

    let client = common::http();
    let token: serde_json::Value = client
        .get(first.url("/service/token?service=harbor-registry&scope=repository:library/sealed:pull"))
        .header("authorization", ADMIN_BASIC)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let resp = client.get(second.url("/v2/library/sealed/tags/list")).header("authorization", &bearer).send();
    assert_eq!(resp.await.unwrap().status(), 404, "the token is accepted (the repository does not exist)");

    let database = env.iter().find(|(k, _)| k == "BERTH_DATABASE__EXTERNAL__DATABASE").unwrap().1.clone();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let db = berth_db::Db::connect(&format!("{base}/{database}"), 1).await.unwrap();
    let stored = db.setting("token_signing_key_pem").await.unwrap().unwrap();
    assert!(stored.starts_with("sealed:v1:") && !stored.contains("PRIVATE KEY"), "{stored}");
    db.close().await;

    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "BERTH_SECRET_KEY_FILE");
    wrong.push(("BERTH_SECRET_KEY_FILE".into(), keys.path().join("other").to_string_lossy().into_owned()));
    let third = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(third.path())
        .envs(wrong.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a replica with another secret key does not start");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("secret_key_file"), "{said}");
}
