//! Garbage collection in the real binary: a collection SIGKILLed with its replica at random
//! moments is taken over after the restart and finishes, with nothing referenced lost; and
//! `berth admin gc` runs one beside a serving registry, dry and for real.

mod common;

use std::process::Command;
use std::time::Duration;

use berth_oci::Digest;
use common::{ADMIN_PASSWORD, Berth, admin_client, push_blob};
use reqwest::StatusCode;
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ENV: [(&str, &str); 3] = [
    ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ("BERTH_GC__TIME_WINDOW_HOURS", "0"),
    ("BERTH_JOBS__LEASE_SECONDS", "2"),
];

/// Pushes an image of one layer; its manifest digest and blobs (config, layer).
async fn push_image(
    client: &reqwest::Client,
    berth: &Berth,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> (Digest, Vec<Digest>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(client, berth, repo, config).await;
    let l = push_blob(client, berth, repo, layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let resp = client
        .put(berth.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    (Digest::sha256_of(&manifest), vec![c, l])
}

/// The manifest and each blob pull with the bytes their digests name.
async fn pulls_whole(client: &reqwest::Client, berth: &Berth, repo: &str, manifest: &Digest, blobs: &[Digest]) {
    let resp = client
        .get(berth.url(&format!("/v2/{repo}/manifests/{manifest}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{repo}@{manifest}");
    assert_eq!(&Digest::sha256_of(&resp.bytes().await.unwrap()), manifest);
    for b in blobs {
        let resp = client.get(berth.url(&format!("/v2/{repo}/blobs/{b}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{repo} blob {b}");
        assert_eq!(&Digest::sha256_of(&resp.bytes().await.unwrap()), b);
    }
}

async fn blob_status(client: &reqwest::Client, berth: &Berth, repo: &str, digest: &Digest) -> StatusCode {
    client.head(berth.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.unwrap().status()
}

async fn wait_success(client: &reqwest::Client, berth: &Berth, id: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v: Value =
            client.get(berth.url(&format!("/api/v2.0/system/gc/{id}"))).send().await.unwrap().json().await.unwrap();
        if v["job_status"] == "Success" {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "collection {id} did not succeed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_collection_killed_with_its_replica_is_taken_over_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let mut berth = Berth::start_with(dir.path(), &ENV);
    let kept = push_image(&client, &berth, "library/app", "v1", b"the kept layer").await;
    // Deterministic "random" kill delays, spread over the collection's run.
    let delays_ms = [5u64, 60, 150, 25];
    let mut taken_over = 0;
    for (round, delay) in delays_ms.iter().enumerate() {
        let mut garbage = Vec::new();
        for i in 0..300 {
            garbage.push(push_blob(&client, &berth, "library/app", format!("garbage {round} {i}").as_bytes()).await);
        }
        let body = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "workers": 2}});
        let resp = client.post(berth.url("/api/v2.0/system/gc/schedule")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
        let id = resp.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
        // Killed while it runs (the runner claims within its poll of a second).
        let running = Duration::from_secs(5);
        let started = std::time::Instant::now();
        loop {
            let v: Value =
                client.get(berth.url(&format!("/api/v2.0/system/gc/{id}"))).send().await.unwrap().json().await.unwrap();
            if v["job_status"] != "Pending" || started.elapsed() > running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        berth.kill();
        berth = Berth::start_with(dir.path(), &ENV);
        let done = wait_success(&client, &berth, &id, Duration::from_secs(60)).await;
        let log = client.get(berth.url(&format!("/api/v2.0/system/gc/{id}/log"))).send().await.unwrap();
        if log.text().await.unwrap().matches("garbage collection").count() >= 2 {
            taken_over += 1;
        }
        pulls_whole(&client, &berth, "library/app", &kept.0, &kept.1).await;
        assert!(stored_file(dir.path(), &kept.1[1]).exists(), "the kept layer is on disk where it is looked for");
        for g in &garbage {
            assert_eq!(
                blob_status(&client, &berth, "library/app", g).await,
                StatusCode::NOT_FOUND,
                "round {round}: {done}"
            );
            let file = stored_file(dir.path(), g);
            assert!(!file.exists(), "round {round}: {} is still on disk", file.display());
        }
    }
    assert!(taken_over >= 2, "only {taken_over} of {} collections were killed while running", delays_ms.len());
}

/// Where the filesystem driver keeps a blob of the data directory.
fn stored_file(data_dir: &std::path::Path, digest: &Digest) -> std::path::PathBuf {
    let hex = digest.as_str().trim_start_matches("sha256:");
    data_dir.join("blobs").join("sha256").join(&hex[..2]).join(hex)
}

fn admin_gc(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["admin", "gc", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("BERTH_GC__TIME_WINDOW_HOURS", "0")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

#[tokio::test]
async fn berth_admin_gc_runs_beside_the_serving_registry() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start_with(dir.path(), &ENV[..1]);
    let kept = push_image(&client, &berth, "library/app", "v1", b"kept").await;
    let lonely = push_blob(&client, &berth, "library/app", b"lonely blob").await;

    let (ok, out) = admin_gc(dir.path(), &["--dry-run"]);
    assert!(ok, "{out}");
    assert!(out.contains("Success: 1 blobs and 0 manifests would be deleted"), "{out}");
    assert_eq!(blob_status(&client, &berth, "library/app", &lonely).await, StatusCode::OK, "a dry run deleted");

    // Read-only: a collection is refused (a dry run, above, would still be taken).
    let read_only =
        |on: bool| client.put(berth.url("/api/v2.0/configurations")).json(&serde_json::json!({"read_only": on})).send();
    assert_eq!(read_only(true).await.unwrap().status(), StatusCode::OK);
    let (ok, out) = admin_gc(dir.path(), &["--workers", "4"]);
    assert!(!ok && out.contains("read-only"), "{out}");
    assert_eq!(blob_status(&client, &berth, "library/app", &lonely).await, StatusCode::OK);
    assert_eq!(read_only(false).await.unwrap().status(), StatusCode::OK);

    let (ok, out) = admin_gc(dir.path(), &["--workers", "4"]);
    assert!(ok, "{out}");
    assert!(out.contains("Success: 1 blobs and 0 manifests deleted"), "{out}");
    assert_eq!(blob_status(&client, &berth, "library/app", &lonely).await, StatusCode::NOT_FOUND);
    pulls_whole(&client, &berth, "library/app", &kept.0, &kept.1).await;

    let (ok, _) = admin_gc(dir.path(), &["--workers", "11"]);
    assert!(!ok, "11 workers are refused");
    // Both runs are in the history the API shows.
    let history: Vec<Value> = client.get(berth.url("/api/v2.0/system/gc")).send().await.unwrap().json().await.unwrap();
    assert_eq!(history.len(), 2);
}
