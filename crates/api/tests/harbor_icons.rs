//! Artifact icons: an artifact's own (a layer annotated `io.goharbor.artifact.v1alpha1.icon`,
//! as Harbor reads it) or the one built in for its type, served by `GET /icons/{digest}` to
//! callers who may read the artifact.

mod common;

use base64::Engine as _;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test]
async fn an_artifact_shows_its_own_icon_or_its_types() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // An image with an icon layer, in the private project `t`.
    let mut manifest: Value = serde_json::from_slice(&s.image_manifest("t/app", &[b"layer"]).await).unwrap();
    let icon = s.push_blob("t/app", PNG).await;
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": "image/png", "digest": icon.to_string(), "size": PNG.len(),
        "annotations": {"io.goharbor.artifact.v1alpha1.icon": ""},
    }));
    let resp = s
        .client
        .put(s.url("/v2/t/app/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    s.push_image("t/plain", "v1", &[b"plain"]).await;

    let artifact: Value = s
        .client
        .get(s.url("/api/v2.0/projects/t/repositories/app/artifacts/v1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(artifact["icon"], icon.as_str());
    let got: Value =
        s.client.get(s.url(&format!("/api/v2.0/icons/{icon}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["content-type"], "image/png");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(got["content"].as_str().unwrap()).unwrap(), PNG);
    // Not to who may not read the artifact: as if there were none.
    let resp = s.anon.get(s.url(&format!("/api/v2.0/icons/{icon}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let outsider = s.user("outsider").await;
    assert_eq!(
        outsider.get(s.url(&format!("/api/v2.0/icons/{icon}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Without one, the image icon built in, for anyone.
    let plain: Value = s
        .client
        .get(s.url("/api/v2.0/projects/t/repositories/plain/artifacts/v1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let builtin = plain["icon"].as_str().unwrap();
    assert!(builtin.starts_with("sha256:") && builtin != icon.as_str(), "{builtin}");
    let got: Value =
        s.anon.get(s.url(&format!("/api/v2.0/icons/{builtin}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["content-type"], "image/svg+xml");
    let svg = base64::engine::general_purpose::STANDARD.decode(got["content"].as_str().unwrap()).unwrap();
    assert_eq!(berth_oci::Digest::sha256_of(&svg).as_str(), builtin, "served under its digest");

    // Bad digests are refused; unknown ones are not found.
    assert_eq!(s.client.get(s.url("/api/v2.0/icons/nope")).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let unknown = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        s.client.get(s.url(&format!("/api/v2.0/icons/{unknown}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}
