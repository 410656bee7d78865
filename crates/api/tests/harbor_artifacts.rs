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
    let dev = s.member("t", "d", 2).await;
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

#[tokio::test]
async fn accessories_are_the_referrers_with_harbor_types() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (subject, subject_body) = s.push_image("t/app", "v1", &[b"layer"]).await;
    let empty = s.push_blob("t/app", b"{}").await;
    let mut pushed = Vec::new();
    for artifact_type in ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.example.sbom"] {
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_body.len()},
        }))
        .unwrap();
        let d = berth_oci::Digest::sha256_of(&body);
        let resp = s
            .client
            .put(s.url(&format!("/v2/t/app/manifests/{d}")))
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        pushed.push(d);
    }
    let url = s.url("/api/v2.0/projects/t/repositories/app/artifacts/v1/accessories");
    let resp = s.client.get(&url).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "2");
    let list: Vec<Value> = resp.json().await.unwrap();
    let by_digest = |d: &berth_oci::Digest| list.iter().find(|a| a["digest"] == d.as_str()).unwrap().clone();
    assert_eq!(by_digest(&pushed[0])["type"], "signature.cosign");
    assert_eq!(by_digest(&pushed[1])["type"], "subject.accessory");
    assert_eq!(by_digest(&pushed[0])["subject_artifact_digest"], subject.as_str());
    assert_eq!(by_digest(&pushed[0])["subject_artifact_repo"], "t/app");
    // An artifact without accessories has none.
    let none: Vec<Value> = s
        .client
        .get(s.url(&format!("/api/v2.0/projects/t/repositories/app/artifacts/{}/accessories", pushed[0])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn copying_an_artifact_and_its_index_children() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (child, child_body) = s.push_image("t/src", "child", &[b"arm layer"]).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": child_body.len(), "platform": {"os": "linux", "architecture": "arm64"}}],
    }))
    .unwrap();
    let resp = s
        .client
        .put(s.url("/v2/t/src/manifests/multi"))
        .header("content-type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let index_digest = berth_oci::Digest::sha256_of(&index);

    // By tag, into another project: the tag comes along, and the copy pulls byte for byte.
    let url = s.url("/api/v2.0/projects/open/repositories/copy/artifacts?from=t/src:multi");
    let resp = s.client.post(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "location").ends_with(index_digest.as_str()));
    let got = s.client.get(s.url("/v2/open/copy/manifests/multi")).header("accept", OCI_INDEX).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), index);
    let child_copy = s.client.get(s.url(&format!("/v2/open/copy/manifests/{child}"))).send().await.unwrap();
    assert_eq!(child_copy.bytes().await.unwrap(), child_body);
    let child_manifest: Value = serde_json::from_slice(&child_body).unwrap();
    let layer = child_manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = s.client.get(s.url(&format!("/v2/open/copy/blobs/{layer}"))).send().await.unwrap();
    assert_eq!(blob.bytes().await.unwrap(), &b"arm layer"[..]);

    // By digest: no tag.
    let resp = s
        .client
        .post(s.url(&format!("/api/v2.0/projects/open/repositories/bydigest/artifacts?from=t/src@{child}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let tags: Value = s.client.get(s.url("/v2/open/bydigest/tags/list")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["tags"], json!([]));

    // Refusals: a source the caller cannot read, a destination it cannot write, bad input.
    let guest = s.member("t", "g", 3).await;
    assert_eq!(
        guest
            .post(s.url("/api/v2.0/projects/t/repositories/x/artifacts?from=t/src:multi"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        guest
            .post(s.url("/api/v2.0/projects/open/repositories/x/artifacts?from=t/src:multi"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    for bad in ["nonsense", "t/src:nope", "t/src"] {
        let status = s
            .client
            .post(s.url(&format!("/api/v2.0/projects/open/repositories/x/artifacts?from={bad}")))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{bad}: {status}");
    }
}

#[tokio::test]
async fn pulls_are_counted_per_repository_and_timed_per_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (pulled, _) = s.push_image("t/app", "v1", &[b"layer one"]).await;
    let (never, _) = s.push_image("t/app", "v2", &[b"layer two"]).await;
    let manifest = s.url("/v2/t/app/manifests/v1");
    let accept = "application/vnd.oci.image.manifest.v1+json";
    for _ in 0..2 {
        let resp = s.client.get(&manifest).header("accept", accept).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // A HEAD is how clients check for a manifest; Harbor does not count it as a pull.
    let resp = s.client.head(s.url(&format!("/v2/t/app/manifests/{never}"))).header("accept", accept).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::OK);
    s.registry.pulls().flush().await.unwrap();

    let repo: Value =
        s.client.get(s.url("/api/v2.0/projects/t/repositories/app")).send().await.unwrap().json().await.unwrap();
    assert_eq!(repo["pull_count"], 2);
    let arts = s.url("/api/v2.0/projects/t/repositories/app/artifacts");
    let a: Value = s.client.get(format!("{arts}/v1")).send().await.unwrap().json().await.unwrap();
    let b: Value = s.client.get(format!("{arts}/v2")).send().await.unwrap().json().await.unwrap();
    assert!(a["pull_time"].as_str().unwrap().starts_with("20"), "{a}");
    assert_eq!(b["pull_time"], "0001-01-01T00:00:00.000Z");
    assert!(a["pull_time"].as_str().unwrap() >= a["push_time"].as_str().unwrap());

    let list: Vec<Value> = s.client.get(format!("{arts}?sort=-pull_time")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["digest"], pulled.as_str());
    let recent: Vec<Value> = s
        .client
        .get(format!("{arts}?q=pull_time%3D%5B2000-01-01%2000%3A00%3A00~%5D"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["digest"], pulled.as_str());
    let sorted: Vec<Value> =
        s.client.get(s.url("/api/v2.0/repositories?sort=-pull_count")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sorted[0]["name"], "t/app");
    s.stop().await;
}
