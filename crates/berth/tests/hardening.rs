//! The binary under the load an attacker or a careless client puts on it: bounded counts and
//! times, asserting bounds on memory and that the service still answers, never on speed.

mod common;

use common::*;

/// The most memory the process ever held (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// Finding 1: 300 concurrent Basic logins with wrong passwords from one address once grew the
/// process to 5.7 GB (an Argon2 of 19 MiB on each of up to 512 blocking threads). Hashing now
/// runs on a fixed set of workers behind a bounded queue: what does not fit is refused with
/// 429 and `Retry-After`, memory stays bounded, and the registry keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_in_parallel_do_not_exhaust_memory() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let client = http_builder().pool_max_idle_per_host(0).build().unwrap();
    let url = berth.url("/api/v2.0/users/current");
    let logins: Vec<_> = (0..300)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client.get(&url).basic_auth(format!("x{i}"), Some(format!("y{i}"))).send().await.unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let (mut refused, mut busy) = (0, 0);
    for login in logins {
        match login.await.unwrap() {
            (401, _) => refused += 1,
            (429, true) => busy += 1,
            other => panic!("a wrong password answered {other:?}"),
        }
    }
    let peak = peak_rss_mib(berth.child.id());
    assert!(peak <= 300, "the process grew to {peak} MiB under 300 concurrent wrong logins");
    assert_eq!(refused + busy, 300);
    assert!(busy > 0, "300 checks at once cannot all have been queued");
    // Still serving.
    let r = client.get(berth.url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(berth.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    eprintln!("300 wrong logins: {refused} answered 401, {busy} answered 429; peak RSS {peak} MiB");
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A monolithic push of `bytes` as a blob of `repo`; the upload's location.
async fn push_blob(client: &reqwest::Client, berth: &Berth, repo: &str, bytes: &[u8]) -> reqwest::StatusCode {
    let r = client.post(berth.url(&format!("/v2/{repo}/blobs/uploads/"))).send().await.unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{}{location}{sep}digest={}", berth.url(""), sha256_digest(bytes));
    client.put(url).body(bytes.to_vec()).send().await.unwrap().status()
}

/// A PATCH that declares 100 MiB, sends 1,000 bytes and stalls, on a connection of its own.
async fn stalled_patch(berth: &Berth, client: &reqwest::Client, repo: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let r = client.post(berth.url(&format!("/v2/{repo}/blobs/uploads/"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let mut stream = tokio::net::TcpStream::connect(&berth.addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nAuthorization: {ADMIN_BASIC}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 104857600\r\n\r\n",
        berth.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7u8; 1000]).await.unwrap();
    stream
}

/// Finding 2: 512 uploads that send 1,000 bytes of a declared 100 MiB and stall once held a
/// blocking thread each, which exhausted the pool: blob GETs, pushes and logins timed out
/// while `/livez` said 200. Now a stalled upload holds no thread, and the registry serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_uploads_hold_no_thread_and_the_registry_serves() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            // No caps: what is shown is that stalled uploads cost no thread, not that they are
            // refused.
            ("BERTH_HTTP__MAX_UPLOADS_PER_CLIENT", "0"),
            ("BERTH_HTTP__MAX_CONNECTIONS_PER_CLIENT", "0"),
        ],
    );
    let admin = admin_client();
    let layer = b"a layer pulled while uploads stall".to_vec();
    assert_eq!(push_blob(&admin, &berth, "library/app", &layer).await, 201);
    let r = admin
        .post(berth.url("/api/v2.0/users"))
        .json(&serde_json::json!({"username": "dev", "email": "dev@example.com", "realname": "Dev",
            "password": "Dev12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    let mut stalled = Vec::new();
    for _ in 0..512 {
        stalled.push(stalled_patch(&berth, &admin, "library/app").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let quick = http_builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let digest = sha256_digest(&layer);
    let r = quick
        .get(berth.url(&format!("/v2/library/app/blobs/{digest}")))
        .header("authorization", ADMIN_BASIC)
        .send()
        .await
        .expect("a blob GET while uploads stall");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), layer);
    let mut pusher = reqwest::header::HeaderMap::new();
    pusher.insert("authorization", ADMIN_BASIC.parse().unwrap());
    let quick_admin =
        http_builder().default_headers(pusher).timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let big: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(push_blob(&quick_admin, &berth, "library/app", &big).await, 201, "a push while uploads stall");
    let r = quick
        .get(berth.url("/api/v2.0/users/current"))
        .basic_auth("dev", Some("Dev12345678"))
        .send()
        .await
        .expect("a new login while uploads stall");
    assert_eq!(r.status(), 200);
    assert_eq!(quick.get(berth.url("/livez")).send().await.unwrap().status(), 200);
    assert_eq!(quick.get(berth.url("/readyz")).send().await.unwrap().status(), 200);
    drop(stalled);
}

/// The caps: a caller's uploads beyond `http.max_uploads_per_client` are refused with 429 and
/// `Retry-After` while another caller still uploads; a body that pauses longer than
/// `http.body_read_timeout_seconds` fails and gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_per_caller_are_capped_and_stalled_bodies_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_HTTP__MAX_UPLOADS_PER_CLIENT", "3"),
            ("BERTH_HTTP__BODY_READ_TIMEOUT_SECONDS", "2"),
        ],
    );
    let admin = admin_client();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_patch(&berth, &admin, "library/app").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = push_blob(&admin, &berth, "library/app", b"one too many").await;
    assert_eq!(r, 429, "a fourth upload of the same caller");
    // Another caller is not held up.
    let r = admin
        .post(berth.url("/api/v2.0/users"))
        .json(&serde_json::json!({"username": "dev", "email": "dev@example.com", "realname": "Dev",
            "password": "Dev12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = admin
        .post(berth.url("/api/v2.0/projects/library/members"))
        .json(&serde_json::json!({"role_id": 2, "member_user": {"username": "dev"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let mut dev = reqwest::header::HeaderMap::new();
    dev.insert("authorization", "Basic ZGV2OkRldjEyMzQ1Njc4".parse().unwrap());
    let dev = http_builder().default_headers(dev).build().unwrap();
    assert_eq!(push_blob(&dev, &berth, "library/app", b"another caller").await, 201);
    // The stalled bodies time out, and their places come back.
    for mut s in stalled {
        use tokio::io::AsyncReadExt;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "a stalled upload was not ended by the body timeout");
    }
    assert_eq!(push_blob(&admin, &berth, "library/app", b"after the timeout").await, 201);
}

/// Finding 3: connections that send a header line every few seconds stayed open for minutes,
/// and SIGTERM did not exit while they were open. Now the head must arrive within
/// `http.header_read_timeout_seconds`, an idle keep-alive connection closes after
/// `http.idle_timeout_seconds`, and shutdown waits at most `http.shutdown_timeout_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_and_shutdown_has_a_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_HTTP__HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("BERTH_HTTP__IDLE_TIMEOUT_SECONDS", "2"),
            ("BERTH_HTTP__SHUTDOWN_TIMEOUT_SECONDS", "2"),
            ("BERTH_HTTP__BODY_READ_TIMEOUT_SECONDS", "600"),
        ],
    );
    // 200 clients dribbling header lines, one a second.
    let addr = berth.addr.clone();
    let dribblers: Vec<_> = (0..200)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let started = std::time::Instant::now();
                s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").await.unwrap();
                for n in 0..30 {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if s.write_all(format!("X-Slow-{i}-{n}: y\r\n").as_bytes()).await.is_err() {
                        return started.elapsed();
                    }
                    let mut buf = [0u8; 1];
                    match tokio::time::timeout(std::time::Duration::from_millis(1), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                        _ => {}
                    }
                }
                started.elapsed()
            })
        })
        .collect();
    for d in dribblers {
        let open_for = d.await.unwrap();
        assert!(open_for < std::time::Duration::from_secs(10), "a dribbling client stayed {open_for:?}");
    }
    // An idle keep-alive connection is closed.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
    // Shutdown while a request is stuck in flight (a stalled upload) and slow clients hang on.
    let admin = admin_client();
    let _stalled = stalled_patch(&berth, &admin, "library/app").await;
    let mut hangers = Vec::new();
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\n").await.unwrap();
        hangers.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    berth.signal("TERM");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = berth.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "SIGTERM did not exit");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(berth.log().iter().any(|l| l.contains("shutdown_timeout")), "the deadline was not reported");
}

/// A request to the current-user endpoint as `user:password`, from `client` as a trusted
/// proxy in front of Berth says (`X-Forwarded-For`).
async fn login_from(berth: &Berth, client: &str, user: &str, password: &str) -> reqwest::Response {
    http()
        .get(berth.url("/api/v2.0/users/current"))
        .basic_auth(user, Some(password))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
}

/// Finding 5: ten wrong passwords from anywhere locked the account for everyone, and behind
/// a proxy ten failures for made-up names locked every user. Now the guessing client waits
/// (429 with `Retry-After`), growing each time, while the owner from another client signs in;
/// the client is the one the trusted proxy names; every refusal is in the audit log and the
/// metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_delay_the_guessing_client_never_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BERTH_HTTP__TRUSTED_PROXIES", "[127.0.0.1]")],
    );
    let (attacker, owner) = ("192.0.2.7", "198.51.100.4");
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(login_from(&berth, attacker, "admin", "Guess12345").await.status().as_u16());
    }
    assert_eq!(&statuses[..6], &[401; 6], "five free failures, then the sixth is checked and fails: {statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "then the client waits: {statuses:?}");
    let r = login_from(&berth, attacker, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429, "even the right password waits from the guessing client");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1, "{wait}");
    // The owner, from elsewhere, is not held up.
    assert_eq!(login_from(&berth, owner, "admin", ADMIN_PASSWORD).await.status(), 200);
    // Made-up names from one client behind the proxy lock nobody else.
    for n in 0..40 {
        let _ = login_from(&berth, "203.0.113.50", &format!("ghost{n}"), "Guess12345").await;
    }
    assert_eq!(login_from(&berth, "203.0.113.50", "admin", ADMIN_PASSWORD).await.status(), 429);
    assert_eq!(login_from(&berth, "203.0.113.51", "admin", ADMIN_PASSWORD).await.status(), 200);
    // Every decision is recorded.
    let logs: serde_json::Value = admin_client()
        .get(berth.url("/api/v2.0/auditlog-exts?page_size=100&q=operation%3Dlogin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let descriptions: Vec<&str> =
        logs.as_array().unwrap().iter().filter_map(|l| l["operation_description"].as_str()).collect();
    assert!(descriptions.iter().any(|d| d.contains("192.0.2.7 must wait")), "{descriptions:?}");
    assert!(descriptions.iter().filter(|d| **d == "login failed").count() >= 6, "{descriptions:?}");
    let metrics = admin_client().get(berth.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let delayed = metrics
        .lines()
        .find(|l| l.starts_with("berth_limit_refusals_total{limit=\"login_delay\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(delayed >= 5.0, "berth_limit_refusals_total{{limit=\"login_delay\"}} = {delayed}");
}

/// Without `http.trusted_proxies`, `X-Forwarded-For` is the client's own text and is ignored:
/// a client cannot dodge its wait by claiming another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    for n in 0..7 {
        let _ = login_from(&berth, &format!("192.0.2.{n}"), "admin", "Guess12345").await;
    }
    let r = login_from(&berth, "198.51.100.99", "admin", "Guess12345").await;
    assert_eq!(r.status(), 429, "the peer, 127.0.0.1, is the client whatever it claims");
}

/// Every path under `dir` whose mode lets group or others in.
fn open_to_others(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:o}", path.display()));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    found
}

/// Finding 8: `berth.db` was 0644 and `blobs/`, `uploads/`, `tmp/` 0755 (0777 under umask
/// 000), so any local user could read password hashes and private images. Now everything is
/// the owner's only, whatever the umask; what an older version left is fixed at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_the_owners_only_whatever_the_umask() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |data: &std::path::Path| {
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000; exec \"$0\" serve --listen 127.0.0.1:0 --data-dir \"$1\"")
            .arg(env!("CARGO_BIN_EXE_berth"))
            .arg(data)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BERTH_LOG__FORMAT", "text")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut log = Vec::new();
        let addr = loop {
            let line = lines.next().expect("berth stopped before listening").unwrap();
            if let Some(i) = line.find("listening on http://") {
                break line[i + "listening on http://".len()..].split_whitespace().next().unwrap().to_string();
            }
            log.push(line);
        };
        (child, addr, log)
    };
    let (mut child, addr, _) = serve(&data);
    // Some content, so that blobs and uploads exist.
    let client = admin_client();
    let r = client.post(format!("http://{addr}/v2/library/app/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let blob = b"private layer";
    let digest = sha256_digest(blob);
    let r = client
        .post(format!("http://{addr}/v2/library/app/blobs/uploads/?digest={digest}"))
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(open_to_others(&data), Vec::<String>::new(), "under umask 000");
    // As an older version left it: the directory and the database readable by all.
    for p in [data.clone(), data.join("blobs"), data.join("uploads"), data.join("tmp")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(data.join("berth.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, _, log) = serve(&data);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(open_to_others(&data), Vec::<String>::new(), "fixed at start");
    assert!(log.iter().any(|l| l.contains("owner-only")), "the fix was not said: {log:?}");
}

/// Finding 15: behind an `https` `external_url` the session cookie is `Secure`, the realm is
/// the external URL whatever `Host` says, and `RUST_LOG` is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_the_session_cookie_is_secure_and_rust_log_counts() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_EXTERNAL_URL", "https://registry.example"),
            ("RUST_LOG", "debug"),
        ],
    );
    let r = http()
        .post(berth.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal=admin&password={ADMIN_PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<&str> = r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(cookies.iter().all(|c| c.contains("; Secure")), "{cookies:?}");
    let r = http().get(berth.url("/v2/")).header("host", "evil.example").send().await.unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("realm=\"https://registry.example/service/token\""), "{challenge}");
    assert!(berth.log().iter().any(|l| l.contains("DEBUG")), "RUST_LOG=debug was ignored");
}
