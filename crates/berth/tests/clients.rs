//! End to end with real clients against the real binary: skopeo with an OCI layout made by
//! umoci, podman (Docker schema 2 and a multi-arch OCI index, as Harbor shows it), oras (Python
//! SDK), the docker CLI, and PyPI's harborapi over Harbor's API.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn skopeo_copies_an_umoci_layout_there_and_back_byte_for_byte() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    let remote = format!("docker://{}/library/umoci:v1", berth.addr);
    run(Command::new("skopeo").args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, &src, &remote]));
    let back = work.path().join("back");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--src-creds", ADMIN_CREDS, &remote])
        .arg(format!("oci:{}:v1", back.display())));

    let original = layout_blobs(&work.path().join("layout"));
    let copied = layout_blobs(&back);
    // The copy has the manifest, the config and both layers, each byte for byte (the
    // original layout also holds the empty image umoci started from).
    assert_eq!(copied.len(), 4, "{:?}", copied.keys());
    for (name, bytes) in &copied {
        assert_eq!(original.get(name), Some(bytes), "blob {name} differs");
    }
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", "--creds", ADMIN_CREDS, &remote]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn podman_pushes_and_pulls_schema2_and_an_oci_index() {
    if !have("podman") || !have("skopeo") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/motd"), "hello from podman\n").unwrap();
    let tar = work.path().join("rootfs.tar");
    run(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg("."));
    let id = run(podman(work.path()).arg("import").arg(&tar).arg("localhost/e2e:1")).trim().to_string();

    let remote = format!("{}/library/podman-img:v1", berth.addr);
    run(podman(work.path()).args([
        "push",
        "--tls-verify=false",
        "--creds",
        ADMIN_CREDS,
        "--format",
        "v2s2",
        "localhost/e2e:1",
        &remote,
    ]));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        ADMIN_CREDS,
        &format!("docker://{remote}"),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");

    // Pull into an empty store: the same image comes back.
    let other = work.path().join("other");
    run(podman(&other).args(["pull", "--tls-verify=false", "--creds", ADMIN_CREDS, &remote]));
    let pulled = run(podman(&other).args(["image", "inspect", "--format", "{{.Id}}", &remote]));
    assert!(
        id.ends_with(pulled.trim()) || pulled.trim().ends_with(id.trim_start_matches("sha256:")),
        "{id} vs {pulled}"
    );

    // A multi-arch OCI index with `podman manifest push --all`: the image above (amd64) and an
    // arm64 one.
    std::fs::write(rootfs.join("etc/motd"), "hello from arm64\n").unwrap();
    let arm_tar = work.path().join("rootfs-arm64.tar");
    run(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&arm_tar).arg("."));
    run(podman(work.path())
        .args(["import", "--arch", "arm64", "--os", "linux"])
        .arg(&arm_tar)
        .arg("localhost/e2e:arm"));
    run(podman(work.path()).args(["manifest", "create", "e2elist"]));
    run(podman(work.path()).args(["manifest", "add", "e2elist", "containers-storage:localhost/e2e:1"]));
    run(podman(work.path()).args(["manifest", "add", "e2elist", "containers-storage:localhost/e2e:arm"]));
    let list = format!("{}/library/podman-list:v1", berth.addr);
    run(podman(work.path())
        .args(["manifest", "push", "--all", "--format", "oci", "--tls-verify=false", "--creds", ADMIN_CREDS, "e2elist"])
        .arg(format!("docker://{list}")));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        ADMIN_CREDS,
        &format!("docker://{list}"),
    ]));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    // Harbor's view: one artifact, its children in `references` with their platforms, and
    // not counted on their own.
    let artifacts = api(&berth, "GET", "/api/v2.0/projects/library/repositories/podman-list/artifacts", json!({}));
    let artifacts = artifacts.as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let mut platforms: Vec<String> = artifacts[0]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["child_id"].as_i64().unwrap() > 0, "{r}");
            format!("{}/{}", r["platform"]["os"].as_str().unwrap(), r["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let repository = api(&berth, "GET", "/api/v2.0/projects/library/repositories/podman-list", json!({}));
    assert_eq!(repository["artifact_count"], 1);
    let child = artifacts[0]["references"][0]["child_digest"].as_str().unwrap();
    let child = api(
        &berth,
        "GET",
        &format!("/api/v2.0/projects/library/repositories/podman-list/artifacts/{child}"),
        json!({}),
    );
    assert!(["amd64", "arm64"].contains(&child["extra_attrs"]["architecture"].as_str().unwrap()), "{child}");
    let third = work.path().join("third");
    run(podman(&third).args(["pull", "--tls-verify=false", "--creds", ADMIN_CREDS, &list]));
    let pulled = run(podman(&third).args(["image", "inspect", "--format", "{{.Id}}", &list]));
    assert!(!pulled.trim().is_empty());
}

#[test]
fn oras_pushes_and_pulls_an_artifact() {
    if !have("python3") {
        return;
    }
    let has_oras = Command::new("python3").args(["-c", "import oras.client"]).status().is_ok_and(|s| s.success());
    if !has_oras {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "the oras Python SDK is not installed");
        eprintln!("SKIPPED: the oras Python SDK is not installed (pip install oras)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/oras_roundtrip.py");
    let out = run(Command::new("python3").arg(script).arg(&berth.addr).args(["admin", ADMIN_PASSWORD]));
    assert!(out.contains("oras roundtrip ok"), "{out}");
}

#[test]
fn docker_cli_inspects_a_manifest() {
    if !have("docker") || !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let remote = format!("{}/library/docker-inspect:v1", berth.addr);
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, "--format", "v2s2", &src])
        .arg(format!("docker://{remote}")));
    let out = run(Command::new("docker").env("DOCKER_CONFIG", work.path().join("docker-config")).args([
        "manifest",
        "inspect",
        "--insecure",
        &remote,
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}

/// Calls Harbor's API as the administrator (a few set-up calls for the tests below).
fn api(berth: &Berth, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = common::http();
        let req =
            client.request(method.parse().unwrap(), berth.url(path)).header("authorization", ADMIN_BASIC).json(&body);
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
        resp.json().await.unwrap_or(serde_json::Value::Null)
    })
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn skopeo_cannot_move_an_immutable_tag() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let image = format!("{}:v1", work.path().join("layout").display());
    let src = format!("oci:{image}");
    let remote = format!("docker://{}/library/app:release-1", berth.addr);
    let copy = |to: &str| {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, &src, to]);
        cmd
    };
    let inspect = || {
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", "--creds", ADMIN_CREDS, &remote]))
    };
    run(&mut copy(&remote));
    let first = inspect();
    api(
        &berth,
        "POST",
        "/api/v2.0/projects/library/immutabletagrules",
        json!({
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "release-*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        }),
    );
    // The same image again moves nothing.
    run(&mut copy(&remote));
    // Another image is refused under the immutable tag, and the tag still names the first.
    run(Command::new("umoci").args(["config", "--image", &image, "--config.env", "CHANGED=1"]));
    let err = fails(&mut copy(&remote));
    assert!(err.contains("configured as immutable"), "{err}");
    assert_eq!(inspect(), first);
    // A tag no rule selects takes it.
    run(&mut copy(&format!("docker://{}/library/app:latest", berth.addr)));
}

#[test]
fn real_clients_log_in_and_are_refused_where_roles_forbid() {
    if !have("docker") || !have("podman") || !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    api(&berth, "POST", "/api/v2.0/projects", serde_json::json!({"project_name": "team"}));
    for (name, role) in [("devuser", 2), ("guestuser", 3)] {
        api(&berth, "POST", "/api/v2.0/users", serde_json::json!({"username": name, "password": "Passw0rdX"}));
        api(
            &berth,
            "POST",
            "/api/v2.0/projects/team/members",
            serde_json::json!({"role_id": role, "member_user": {"username": name}}),
        );
    }

    // docker login (the CLI logs in without a daemon) and podman login.
    let docker_config = work.path().join("docker");
    let login = |user: &str, password: &str| {
        let mut cmd = Command::new("sh");
        cmd.env("DOCKER_CONFIG", &docker_config)
            .arg("-c")
            .arg(format!("echo '{password}' | docker login --username '{user}' --password-stdin {}", berth.addr));
        cmd
    };
    assert!(run(&mut login("admin", ADMIN_PASSWORD)).contains("Login Succeeded"));
    fails(&mut login("admin", "Wrong12345"));
    let auth_file = work.path().join("podman-auth.json");
    run(podman(work.path())
        .args(["login", "--tls-verify=false", "--username", "devuser", "--password", "Passw0rdX", "--authfile"])
        .arg(&auth_file)
        .arg(&berth.addr));
    fails(
        podman(work.path())
            .args(["login", "--tls-verify=false", "--username", "devuser", "--password", "nope", "--authfile"])
            .arg(&auth_file)
            .arg(&berth.addr),
    );

    // skopeo: a developer pushes, a guest cannot, and pulls.
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    let remote = format!("docker://{}/team/app:v1", berth.addr);
    let err = fails(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "guestuser:Passw0rdX",
        &src,
        &remote,
    ]));
    assert!(err.to_lowercase().contains("denied") || err.contains("403") || err.contains("unauthorized"), "{err}");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "devuser:Passw0rdX",
        &src,
        &remote,
    ]));
    run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "guestuser:Passw0rdX",
        &remote,
    ]));
    // A token for one repository does not open another: anonymous pulls of the private project fail.
    fails(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", "--no-creds", &remote]));

    // oras with a robot account: push with a push robot, refused with a pull-only robot.
    let has_oras = Command::new("python3").args(["-c", "import oras.client"]).status().is_ok_and(|s| s.success());
    if !has_oras {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "the oras Python SDK is not installed");
        return;
    }
    let robot = |name: &str, actions: &[&str]| {
        let access: Vec<_> =
            actions.iter().map(|a| serde_json::json!({"resource": "repository", "action": a})).collect();
        let created = api(
            &berth,
            "POST",
            "/api/v2.0/robots",
            serde_json::json!({
                "name": name, "level": "project", "duration": -1,
                "permissions": [{"kind": "project", "namespace": "team", "access": access}],
            }),
        );
        (created["name"].as_str().unwrap().to_string(), created["secret"].as_str().unwrap().to_string())
    };
    let (pusher, pusher_secret) = robot("pusher", &["pull", "push"]);
    let (reader, reader_secret) = robot("reader", &["pull"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/oras_roundtrip.py");
    let out = run(Command::new("python3").arg(&script).arg(&berth.addr).args([&pusher, &pusher_secret, "team"]));
    assert!(out.contains("oras roundtrip ok"), "{out}");
    fails(Command::new("python3").arg(&script).arg(&berth.addr).args([&reader, &reader_secret, "team"]));
}

/// PyPI's harborapi, whose pydantic models are Harbor's schema, over every operation Berth
/// serves that it has a method for (81 calls; it has none for `/auditlog-exts` or `/jobservice`).
#[test]
fn harborapi_drives_every_served_operation() {
    let have_it = Command::new("python3").args(["-c", "import harborapi"]).output().is_ok_and(|o| o.status.success());
    if !have_it {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "harborapi is missing and BERTH_E2E_REQUIRED is set");
        eprintln!("SKIPPED: harborapi is not installed (run .ci/run to install the end-to-end clients)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/harborapi_all.py");
    let out = run(Command::new("python3").arg(script).arg(&berth.addr).arg(ADMIN_PASSWORD));
    assert!(out.contains("harborapi ok 122"), "{out}");
}

#[test]
fn skopeo_pushes_and_retention_removes_what_its_dry_run_listed() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let image = format!("{}:v1", work.path().join("layout").display());
    let inspect = |tag: &str| {
        let remote = format!("docker://{}/library/app:{tag}", berth.addr);
        Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}", "--tls-verify=false", "--creds", ADMIN_CREDS, &remote])
            .output()
            .unwrap()
    };
    let mut digests = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        // Each push a new image: its config changes.
        run(Command::new("umoci").args(["config", "--image", &image, "--config.env", &format!("TAG={tag}")]));
        let remote = format!("docker://{}/library/app:{tag}", berth.addr);
        run(Command::new("skopeo").args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            ADMIN_CREDS,
            &format!("oci:{image}"),
            &remote,
        ]));
        digests.push(String::from_utf8(inspect(tag).stdout).unwrap().trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let library = api(&berth, "GET", "/api/v2.0/projects/library", json!(null));
    api(
        &berth,
        "POST",
        "/api/v2.0/retentions",
        json!({
            "algorithm": "or", "scope": {"level": "project", "ref": library["project_id"]},
            "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
            "rules": [{"action": "retain", "template": "latestPushedK", "params": {"latestPushedK": 1},
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "app"}]}}],
        }),
    );
    let library = api(&berth, "GET", "/api/v2.0/projects/library", json!(null));
    let policy = format!("/api/v2.0/retentions/{}", library["metadata"]["retention_id"].as_str().unwrap());
    // The digests a finished execution's table marks DEL.
    let execute = |dry_run: bool| -> Vec<String> {
        api(&berth, "POST", &format!("{policy}/executions"), json!({"dry_run": dry_run}));
        let id = api(&berth, "GET", &format!("{policy}/executions"), json!(null))[0]["id"].clone();
        for _ in 0..200 {
            let list = api(&berth, "GET", &format!("{policy}/executions"), json!(null));
            if list[0]["status"] == "Success" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let tasks = api(&berth, "GET", &format!("{policy}/executions/{id}/tasks"), json!(null));
        let log = text(&berth, &format!("{policy}/executions/{id}/tasks/{}", tasks[0]["id"]));
        let mut marked: Vec<String> = log
            .lines()
            .filter(|l| l.ends_with("| DEL |"))
            .map(|l| l.split('|').nth(1).unwrap().trim().to_string())
            .collect();
        marked.sort();
        marked
    };
    let listed = execute(true);
    let mut expected = vec![digests[0].clone(), digests[1].clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(inspect("v1").status.success(), "a dry run removes nothing");
    assert_eq!(execute(false), listed);
    for tag in ["v1", "v2"] {
        assert!(!inspect(tag).status.success(), "{tag} was listed and is gone");
    }
    assert!(inspect("v3").status.success());
}

/// A text body of the API, as the administrator.
fn text(berth: &Berth, path: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = common::http().get(berth.url(path)).header("authorization", ADMIN_BASIC).send().await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.text().await.unwrap()
    })
}

#[test]
fn skopeo_push_over_the_quota_is_refused_and_stores_nothing() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    let remote = format!("docker://{}/capped/app:v1", berth.addr);
    api(&berth, "POST", "/api/v2.0/projects", json!({"project_name": "capped", "storage_limit": 1}));
    let capped = api(&berth, "GET", "/api/v2.0/projects/capped", json!(null));
    let quota_path = format!("/api/v2.0/quotas?reference=project&reference_id={}", capped["project_id"]);
    let used = || api(&berth, "GET", &quota_path, json!(null))[0]["used"]["storage"].as_i64().unwrap();
    // Published blobs (upload sessions, which housekeeping purges, are not content).
    let stored = || walk_files(&data.path().join("blobs"));
    let copy = || {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, &src, &remote]);
        cmd
    };
    let err = fails(&mut copy());
    assert!(err.contains("Quota exceeded"), "{err}");
    assert_eq!((used(), stored()), (0, 0), "nothing of the refused push is counted or stored");
    // With room, the same push goes through and is counted.
    let quota_id = api(&berth, "GET", &quota_path, json!(null))[0]["id"].clone();
    api(&berth, "PUT", &format!("/api/v2.0/quotas/{quota_id}"), json!({"hard": {"storage": 1 << 20}}));
    run(&mut copy());
    assert!(used() > 0 && stored() > 0);
}

/// How many files are under `dir` (none if it does not exist).
fn walk_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.map_while(Result::ok).map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { 1 }).sum()
}
