//! The production topology on one machine: three `berth serve` replicas on one PostgreSQL
//! database, one Redis and one S3-compatible server (moto's), behind nginx round-robin with no
//! sticky sessions. PostgreSQL and Redis are servers of the test's own, which it stops and
//! starts again without disturbing the servers other tests share.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_oci::Digest;
use common::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Nginx {
    child: Child,
    addr: String,
    access_log: PathBuf,
}

impl Drop for Nginx {
    /// A fast shutdown (SIGTERM), which the master passes to its workers and waits for; then
    /// SIGKILL to the whole process group for anything left. (SIGKILL to the master alone left
    /// its worker listening after every run.)
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

fn start_nginx(dir: &Path, upstreams: &[&str]) -> Nginx {
    let port = free_port();
    let servers: String = upstreams.iter().map(|u| format!("server {u} max_fails=0;\n")).collect();
    let d = dir.display();
    let conf = format!(
        "user root;\nworker_processes 1;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           log_format up '$request_method $uri $status $upstream_addr';\n\
           access_log {d}/access.log up;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           upstream berth {{ {servers} }}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             client_max_body_size 0;\n\
             location / {{\n\
               proxy_pass http://berth;\n\
               proxy_http_version 1.1;\n\
               proxy_set_header Host $http_host;\n\
               proxy_request_buffering off;\n\
               proxy_buffering off;\n\
               proxy_next_upstream error timeout;\n\
             }}\n\
           }}\n\
         }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("nginx")
        .process_group(0)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Nginx { child, addr, access_log: dir.join("access.log") };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("nginx did not start: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
}

/// Pushes one small image (config and one layer, monolithic) under `repo:tag` at `base`.
async fn push_image(client: &reqwest::Client, base: &str, repo: &str, tag: &str, layer: &[u8]) -> Option<Digest> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
    let mut descriptors = Vec::new();
    for (bytes, media_type) in [(&config[..], "config"), (layer, "layer")] {
        let digest = Digest::sha256_of(bytes);
        let resp = client
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
            .body(bytes.to_vec())
            .send()
            .await
            .ok()?;
        if resp.status() != 201 {
            return None;
        }
        descriptors.push((media_type, digest, bytes.len()));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": descriptors[0].1.to_string(), "size": descriptors[0].2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": descriptors[1].1.to_string(), "size": descriptors[1].2}],
    })
    .to_string();
    let resp = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .ok()?;
    (resp.status() == 201).then(|| Digest::sha256_of(manifest.as_bytes()))
}

async fn manifest_digest(client: &reqwest::Client, base: &str, repo: &str, tag: &str) -> Option<String> {
    let resp =
        client.get(format!("{base}/v2/{repo}/manifests/{tag}")).header("accept", OCI_MANIFEST).send().await.unwrap();
    (resp.status() == 200).then(|| resp.headers()["docker-content-digest"].to_str().unwrap().to_string())
}

/// A push the cluster acknowledged, and when.
#[derive(Clone)]
struct AckedPush {
    tag: String,
    digest: Digest,
    layer: Vec<u8>,
    at: std::time::Instant,
}

async fn ready(client: &reqwest::Client, berth: &Berth) -> u16 {
    client.get(berth.url("/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_nginx() {
    let Some(pg_bin) = postgres_bin() else { return };
    let Some(s3_url) = s3_url() else { return };
    if !have("nginx") || !have("skopeo") || !have("umoci") {
        return;
    }
    if !have("redis-server") {
        return;
    }
    let pg_dir = tempfile::tempdir().unwrap();
    let mut pg = PostgresServer::start(&pg_bin, pg_dir.path(), false);
    let redis_dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(redis_dir.path());

    let mut env = external_database_env(&pg.url("postgres")).await;
    env.extend(s3_storage_env(&s3_url));
    for (k, v) in [
        ("BERTH_REDIS__TYPE", "external".into()),
        ("BERTH_REDIS__EXTERNAL__ADDRS", format!("127.0.0.1:{}", redis.port)),
    ] {
        env.push((k.to_string(), v));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas: Vec<Option<Berth>> = dirs.iter().map(|d| Some(Berth::start_with(d.path(), &env))).collect();
    let addrs: Vec<String> = replicas.iter().map(|r| r.as_ref().unwrap().addr.clone()).collect();
    let nginx_dir = tempfile::tempdir().unwrap();
    let nginx = start_nginx(nginx_dir.path(), &addrs.iter().map(String::as_str).collect::<Vec<_>>());
    let lb = format!("http://{}", nginx.addr);
    let client = admin_client();

    // An upload in chunks: with round-robin and no sticky sessions, each request of it lands
    // on another replica (nginx's log names the upstream of each). The chunks' sizes make the
    // object store's multipart upload cross replicas: the first is too small for a part and is
    // staged, the second joins it into the first part, the third is a part of its own, and the
    // last is staged until the final part.
    const MIB: usize = 1 << 20;
    let sizes = [3 * MIB, 4 * MIB, 6 * MIB, MIB + 12_345];
    let data: Vec<u8> = (0..sizes.iter().sum::<usize>() as u32 / 4 + 1).flat_map(|i| i.to_le_bytes()).collect();
    let data = &data[..sizes.iter().sum::<usize>()];
    let digest = Digest::sha256_of(data);
    let resp = client.post(format!("{lb}/v2/library/chunked/blobs/uploads/")).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let mut location = resp.headers()["location"].to_str().unwrap().to_string();
    let mut start = 0;
    for (i, size) in sizes.into_iter().enumerate() {
        let part = &data[start..start + size];
        let last = start + part.len() == data.len();
        let url = if last {
            let sep = if location.contains('?') { '&' } else { '?' };
            format!("{lb}{location}{sep}digest={digest}")
        } else {
            format!("{lb}{location}")
        };
        let req = if last { client.put(url) } else { client.patch(url) };
        let resp = req
            .header("content-range", format!("{start}-{}", start + part.len() - 1))
            .body(part.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), if last { 201 } else { 202 }, "chunk {i}");
        location = resp.headers()["location"].to_str().unwrap().to_string();
        start += size;
    }
    // nginx writes a request's log line when the request ends, which may be just after the
    // client has its answer.
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(&nginx.access_log).unwrap();
        if log.lines().filter(|l| l.contains("/v2/library/chunked/blobs/uploads")).count() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let upstreams: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/v2/library/chunked/blobs/uploads"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(upstreams.len(), 5, "{log}");
    assert!(upstreams.windows(2).all(|w| w[0] != w[1]), "each request on another replica than the last: {log}");
    let distinct: std::collections::BTreeSet<&str> = upstreams.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "the upload's requests went to every replica: {log}");
    for addr in &addrs {
        let resp = client.get(format!("http://{addr}/v2/library/chunked/blobs/{digest}")).send().await.unwrap();
        assert!(resp.bytes().await.unwrap().as_ref() == data, "the same bytes from {addr}");
    }

    // skopeo pushes an image through nginx; every replica serves it, byte for byte.
    let work = tempfile::tempdir().unwrap();
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        ADMIN_CREDS,
        &src,
        &format!("docker://{}/library/app:v1", nginx.addr),
    ]));
    let original = layout_blobs(&work.path().join("layout"));
    let pushed = manifest_digest(&client, &lb, "library/app", "v1").await.expect("pushed through nginx");
    for addr in &addrs {
        let base = format!("http://{addr}");
        assert_eq!(manifest_digest(&client, &base, "library/app", "v1").await.as_deref(), Some(pushed.as_str()));
        let manifest: serde_json::Value =
            serde_json::from_slice(&original[pushed.trim_start_matches("sha256:")]).unwrap();
        for layer in manifest["layers"].as_array().unwrap() {
            let d = layer["digest"].as_str().unwrap();
            let bytes = client.get(format!("{base}/v2/library/app/blobs/{d}")).send().await.unwrap().bytes().await;
            assert_eq!(bytes.unwrap().as_ref(), original[d.trim_start_matches("sha256:")].as_slice());
        }
    }

    // podman pushes through nginx too (its own upload pattern), and pulls back the same image
    // from a replica directly.
    if have("podman") {
        let rootfs = work.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/motd"), "pushed by podman through nginx\n").unwrap();
        let tar = work.path().join("rootfs.tar");
        run(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg("."));
        let id = run(podman(work.path()).arg("import").arg(&tar).arg("localhost/cluster:1")).trim().to_string();
        let through_lb = format!("{}/library/podman:v1", nginx.addr);
        run(podman(work.path()).args([
            "push",
            "--tls-verify=false",
            "--creds",
            ADMIN_CREDS,
            "localhost/cluster:1",
            &through_lb,
        ]));
        let direct = format!("{}/library/podman:v1", addrs[2]);
        let other = work.path().join("other-store");
        run(podman(&other).args(["pull", "--tls-verify=false", "--creds", ADMIN_CREDS, &direct]));
        let pulled = run(podman(&other).args(["image", "inspect", "--format", "{{.Id}}", &direct]));
        let (id, pulled) = (id.trim_start_matches("sha256:"), pulled.trim());
        assert!(
            id.starts_with(pulled) || pulled.starts_with(id),
            "the same image from another replica: {id} vs {pulled}"
        );
    }

    // A token issued by one replica, used on another, ends within a second of its grant
    // ending on a third (the member is removed there; the caches carry the change).
    let third = format!("http://{}", addrs[2]);
    let r = client
        .post(format!("{third}/api/v2.0/projects"))
        .json(&serde_json::json!({"project_name": "team", "metadata": {"public": "false"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    push_image(&client, &third, "team/app", "v1", b"team layer").await.unwrap();
    let r = client
        .post(format!("{third}/api/v2.0/users"))
        .json(&serde_json::json!({"username": "dev", "email": "dev@example.com", "realname": "Dev",
            "password": "Dev12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{third}/api/v2.0/projects/team/members"))
        .json(&serde_json::json!({"role_id": 3, "member_user": {"username": "dev"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = http()
        .get(format!("http://{}/service/token?service=harbor-registry&scope=repository:team/app:pull", addrs[0]))
        .basic_auth("dev", Some("Dev12345678"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    let with_token =
        |addr: &str| http().get(format!("http://{addr}/v2/team/app/manifests/v1")).bearer_auth(&token).send();
    assert_eq!(with_token(&addrs[1]).await.unwrap().status(), 200);
    let members: serde_json::Value =
        client.get(format!("{third}/api/v2.0/projects/team/members")).send().await.unwrap().json().await.unwrap();
    let mid = members.as_array().unwrap().iter().find(|m| m["entity_name"] == "dev").unwrap()["id"].as_i64().unwrap();
    let removed = std::time::Instant::now();
    let r = client.delete(format!("{third}/api/v2.0/projects/team/members/{mid}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    loop {
        // Still signed in, no longer a member: 403.
        if with_token(&addrs[1]).await.unwrap().status() == 403 {
            break;
        }
        assert!(removed.elapsed() < Duration::from_secs(1), "the token still pulled a second after its grant ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A tag moved through one replica is seen through the others at once.
    let first = format!("http://{}", addrs[0]);
    let moved = push_image(&client, &first, "library/moving", "latest", b"one").await.unwrap();
    let moved_again = push_image(&client, &first, "library/moving", "latest", b"two").await.unwrap();
    assert_ne!(moved, moved_again);
    for addr in &addrs[1..] {
        let seen = manifest_digest(&client, &format!("http://{addr}"), "library/moving", "latest").await;
        assert_eq!(seen.as_deref(), Some(moved_again.as_str()), "on {addr}");
    }

    // Redis stops: pushes and logins go on; it starts again: every replica uses it again.
    redis.stop();
    assert!(push_image(&client, &lb, "library/noredis", "v1", b"without redis").await.is_some());
    redis.restart();
    for r in replicas.iter().flatten() {
        let mut redis_state = serde_json::Value::Null;
        for _ in 0..100 {
            let body: serde_json::Value = client.get(r.url("/readyz")).send().await.unwrap().json().await.unwrap();
            redis_state = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "redis").unwrap().clone();
            if redis_state["status"] == "healthy" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(redis_state["status"], "healthy", "Redis back on {}", r.addr);
    }

    // PostgreSQL stops (an immediate shutdown, as a crash): every replica goes unready; it
    // starts again: every replica recovers by itself and pushes work again.
    pg.stop();
    for r in replicas.iter().flatten() {
        let mut state = 0;
        for _ in 0..100 {
            state = ready(&client, r).await;
            if state == 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state, 503, "unready without the database");
    }
    pg.restart();
    for r in replicas.iter().flatten() {
        let mut state = 0;
        for _ in 0..100 {
            state = ready(&client, r).await;
            if state == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state, 200, "ready again when the database is back");
    }
    assert!(push_image(&client, &lb, "library/afterpg", "v1", b"after the outage").await.is_some());

    // A push storm through nginx, and one replica killed in the middle of it: every push that
    // was acknowledged can be pulled afterwards, whole.
    let acked: Arc<Mutex<Vec<AckedPush>>> = Default::default();
    let mut storm = Vec::new();
    for w in 0..4 {
        let (client, lb, acked) = (client.clone(), lb.clone(), acked.clone());
        storm.push(tokio::spawn(async move {
            for i in 0..15 {
                let tag = format!("w{w}-{i}");
                let layer = format!("storm layer {w} {i} ").repeat(2000).into_bytes();
                if let Some(d) = push_image(&client, &lb, "library/storm", &tag, &layer).await {
                    acked.lock().unwrap().push(AckedPush { tag, digest: d, layer, at: std::time::Instant::now() });
                }
            }
        }));
    }
    // Kill once the storm is well under way.
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed_at = std::time::Instant::now();
    if let Some(victim) = replicas[1].take() {
        victim.kill();
    }
    for t in storm {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 30, "most pushes succeed with two replicas left: {}", acked.len());
    let before = acked.iter().filter(|a| a.at < killed_at).count();
    assert!(
        before > 0 && before < acked.len(),
        "the kill fell in the middle of the storm ({before} of {})",
        acked.len()
    );
    for AckedPush { tag, digest, layer, .. } in &acked {
        assert_eq!(
            manifest_digest(&client, &lb, "library/storm", tag).await.as_deref(),
            Some(digest.as_str()),
            "acknowledged {tag}"
        );
        let d = Digest::sha256_of(layer);
        let bytes = client.get(format!("{lb}/v2/library/storm/blobs/{d}")).send().await.unwrap().bytes().await;
        assert_eq!(bytes.unwrap().as_ref(), layer.as_slice());
    }
    // Stopping nginx takes its workers along: nothing listens on its port afterwards (a
    // worker used to outlive every run).
    let nginx_addr = nginx.addr.clone();
    drop(nginx);
    assert!(std::net::TcpStream::connect(&nginx_addr).is_err(), "an nginx worker still listens on {nginx_addr}");
}
