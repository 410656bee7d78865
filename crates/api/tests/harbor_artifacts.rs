//! Harbor's artifact API over what `/v2` pushed: listing with tags and sizes, reading by tag
//! or digest, tagging, untagging and deleting.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn artifacts_tags_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (old, old_body) = s.push_image("t/app", "v1", &[b"layer one", b"layer two"]).await;
    let (new, _) = s.push_image("t/app", "v2", &[b"layer three"]).await;
    let base = s.url("/api/v2.0/projects/t/repositories/app/artifacts");

    let resp = s.client.get(&base).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "2");
    let list: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(list[0]["digest"], new.as_str(), "newest first");
    assert_eq!(list[1]["digest"], old.as_str());
    assert_eq!(list[1]["tags"][0]["name"], "v1");
    assert_eq!(list[1]["type"], "IMAGE");
    assert_eq!(list[1]["manifest_media_type"], OCI_MANIFEST);
    let config_len = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.len();
    assert_eq!(
        list[1]["size"].as_u64().unwrap() as usize,
        old_body.len() + config_len + "layer one".len() + "layer two".len()
    );

    // By tag and by digest.
    let by_tag: Value = s.client.get(format!("{base}/v1")).send().await.unwrap().json().await.unwrap();
    let by_digest: Value = s.client.get(format!("{base}/{old}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(by_tag, by_digest);
    assert_eq!(s.client.get(format!("{base}/nope")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // Tagging: visible on /v2 at once; a taken name is a conflict; a bad name is refused.
    let tags = format!("{base}/v1/tags");
    assert_eq!(
        s.client.post(&tags).json(&json!({"name": "stable"})).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let resp = s.client.head(s.url("/v2/t/app/manifests/stable")).send().await.unwrap();
    assert_eq!(header(&resp, "docker-content-digest"), old.as_str());
    assert_eq!(s.client.post(&tags).json(&json!({"name": "v2"})).send().await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(
        s.client.post(&tags).json(&json!({"name": "-bad"})).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let listed: Vec<Value> = s.client.get(&tags).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(), ["stable", "v1"]);

    // A developer tags but does not untag or delete.
    s.client
        .post(s.url("/api/v2.0/users"))
        .json(&json!({"username": "d", "password": "Passw0rdX"}))
        .send()
        .await
        .unwrap();
    s.client
        .post(s.url("/api/v2.0/projects/t/members"))
        .json(&json!({"role_id": 2, "member_user": {"username": "d"}}))
        .send()
        .await
        .unwrap();
    let dev = client_as("d", "Passw0rdX");
    assert_eq!(dev.post(&tags).json(&json!({"name": "dev-tag"})).send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(dev.delete(format!("{tags}/dev-tag")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(dev.delete(format!("{base}/v1")).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // Untag (a tag of another artifact is not found here), then delete.
    assert_eq!(s.client.delete(format!("{tags}/v2")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.client.delete(format!("{tags}/stable")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        s.client.head(s.url("/v2/t/app/manifests/stable")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.client.delete(format!("{base}/{old}")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.client.head(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.client.head(s.url("/v2/t/app/manifests/v2")).send().await.unwrap().status(), StatusCode::OK);
    let resp = s.client.get(&base).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "1");
}
