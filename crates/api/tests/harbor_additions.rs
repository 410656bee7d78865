//! Harbor's artifact additions, read from what was pushed: an image's build history, a Helm
//! chart's values, readme and dependencies, an SBOM accessory's document; and the (empty)
//! vulnerability reports.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CHART_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Pushes a manifest with the given config and layers (media type, bytes) under `tag`.
async fn push(s: &TestServer, repo: &str, tag: &str, config: (&str, &[u8]), layers: &[(&str, Vec<u8>)]) -> String {
    let config_digest = s.push_blob(repo, config.1).await;
    let mut descs = Vec::new();
    for (media_type, bytes) in layers {
        let d = s.push_blob(repo, bytes).await;
        descs.push(json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config.0, "digest": config_digest.to_string(), "size": config.1.len()},
        "layers": descs,
    });
    let resp = s
        .client
        .put(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    header(&resp, "docker-content-digest").to_string()
}

fn chart_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let files: &[(&str, &str)] = &[
        (
            "web/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 1.2.3\ndependencies:\n  - name: redis\n    version: \"17.0.0\"\n    repository: https://charts.example.com\n",
        ),
        ("web/values.yaml", "replicaCount: 2\nimage:\n  tag: stable\n"),
        ("web/README.md", "# web\n\nA web chart.\n"),
        ("web/charts/redis/values.yaml", "not: these\n"),
        ("web/templates/deployment.yaml", "kind: Deployment\n"),
    ];
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

async fn get(s: &TestServer, c: &reqwest::Client, path: &str) -> (StatusCode, String, String) {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status();
    let content_type = header(&resp, "content-type").to_string();
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test]
async fn additions_come_from_the_pushed_content() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let history = json!([
        {"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
        {"created": "2026-01-02T00:00:00Z", "created_by": "RUN make", "empty_layer": true},
    ]);
    let config = json!({"architecture": "amd64", "os": "linux", "history": history}).to_string();
    push(&s, "t/img", "v1", ("application/vnd.oci.image.config.v1+json", config.as_bytes()), &[]).await;
    push(
        &s,
        "t/chart",
        "1.2.3",
        (CHART_CONFIG, br#"{"name":"web","version":"1.2.3"}"#),
        &[(CHART_CONTENT, chart_archive())],
    )
    .await;
    let img = "/api/v2.0/projects/t/repositories/img/artifacts/v1/additions";
    let chart = "/api/v2.0/projects/t/repositories/chart/artifacts/1.2.3/additions";

    let (status, content_type, body) = get(&s, &s.client, &format!("{img}/build_history")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), history);

    let (status, content_type, body) = get(&s, &s.client, &format!("{chart}/values.yaml")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "replicaCount: 2\nimage:\n  tag: stable\n"),
        "not the subchart's"
    );
    assert!(content_type.starts_with("text/plain"));
    let (status, content_type, body) = get(&s, &s.client, &format!("{chart}/readme.md")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "# web\n\nA web chart.\n"));
    assert!(content_type.starts_with("text/markdown"));
    let (status, _, body) = get(&s, &s.client, &format!("{chart}/dependencies")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"name": "redis", "version": "17.0.0", "repository": "https://charts.example.com"}])
    );

    // What an artifact of that type does not have is refused, as Harbor does, with 400.
    for path in [
        format!("{chart}/build_history"),
        format!("{img}/values.yaml"),
        format!("{img}/sbom"),
        format!("{img}/nonsense"),
    ] {
        let resp = s.client.get(s.url(&path)).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let resp = s.client.get(s.url("/api/v2.0/projects/t/repositories/img/artifacts/v9/additions/build_history")).send();
    assert_error(resp.await.unwrap(), StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let resp = s.anon.get(s.url(&format!("{img}/build_history"))).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let outsider = s.user("outsider").await;
    let resp = outsider.get(s.url(&format!("{img}/build_history"))).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // No scanner has reported on anything: an empty set of reports.
    let (status, _, body) = get(&s, &s.client, &format!("{img}/vulnerabilities")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "{}"));
    s.stop().await;
}

#[tokio::test]
async fn an_sbom_accessory_serves_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let document = json!({"spdxVersion": "SPDX-2.3", "name": "app"}).to_string().into_bytes();
    let config = b"{}";
    let config_digest = s.push_blob("t/app", config).await;
    let layer = s.push_blob("t/app", &document).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.goharbor.harbor.sbom.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest.to_string(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": layer.to_string(), "size": document.len()}],
    });
    let resp = s
        .client
        .put(s.url("/v2/t/app/manifests/sbom"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, _, body) =
        get(&s, &s.client, "/api/v2.0/projects/t/repositories/app/artifacts/sbom/additions/sbom").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_bytes(), document.as_slice());
    s.stop().await;
}
