//! Harbor's artifact model over what `/v2` pushed: accessories (OCI 1.1 subjects and cosign's
//! tag scheme) listed under their subject, an index's untagged children under the index,
//! deletion that leaves nothing behind on either API, and the content door's policy hook.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use berth_core::content::{ContentChange, ContentEvent, ContentPolicy, ContentSubscriber, PolicyRefusal};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes a manifest under `reference`; returns its digest.
async fn put(s: &TestServer, repo: &str, reference: &str, media_type: &str, body: &Value) -> berth_oci::Digest {
    let bytes = serde_json::to_vec(body).unwrap();
    let resp = s
        .client
        .put(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    berth_oci::Digest::sha256_of(&bytes)
}

/// An artifact manifest of `artifact_type` on an empty config, naming `subject` if given.
fn artifact(empty: &berth_oci::Digest, artifact_type: &str, subject: Option<(&berth_oci::Digest, usize)>) -> Value {
    let mut m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
    });
    if let Some((d, size)) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size});
    }
    m
}

async fn get_json(s: &TestServer, path: &str) -> (String, Value) {
    let resp = s.client.get(s.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let total = resp.headers().get("x-total-count").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (total, resp.json().await.unwrap())
}

/// A subject with a cosign tag-scheme signature, a notation signature, an SBOM by subject, and
/// a signature of that SBOM.
async fn signed_image(s: &TestServer, repo: &str) -> (berth_oci::Digest, Vec<berth_oci::Digest>) {
    let (subject, body) = s.push_image(repo, "v1", &[b"the image layer"]).await;
    let empty = s.push_blob(repo, b"{}").await;
    let cosign_tag = format!("sha256-{}.sig", subject.hex());
    let simplesigning = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": empty.to_string(), "size": 2}],
    });
    let cosign = put(s, repo, &cosign_tag, OCI_MANIFEST, &simplesigning).await;
    let notation = artifact(&empty, "application/vnd.cncf.notary.signature", Some((&subject, body.len())));
    let notation = put(
        s,
        repo,
        &berth_oci::Digest::sha256_of(&serde_json::to_vec(&notation).unwrap()).to_string(),
        OCI_MANIFEST,
        &notation,
    )
    .await;
    let sbom_body = artifact(&empty, "application/spdx+json", Some((&subject, body.len())));
    let sbom_len = serde_json::to_vec(&sbom_body).unwrap().len();
    let sbom = put(
        s,
        repo,
        &berth_oci::Digest::sha256_of(&serde_json::to_vec(&sbom_body).unwrap()).to_string(),
        OCI_MANIFEST,
        &sbom_body,
    )
    .await;
    let nested = artifact(&empty, "application/vnd.dev.cosign.artifact.sig.v1+json", Some((&sbom, sbom_len)));
    let nested = put(
        s,
        repo,
        &berth_oci::Digest::sha256_of(&serde_json::to_vec(&nested).unwrap()).to_string(),
        OCI_MANIFEST,
        &nested,
    )
    .await;
    (subject, vec![cosign, notation, sbom, nested])
}

#[tokio::test]
async fn accessories_are_listed_under_their_subject_and_deleted_with_it_on_both_apis() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for (repo, through_v2) in [("t/harbor", false), ("t/v2", true)] {
        let (subject, accessories) = signed_image(&s, repo).await;
        let name = repo.trim_start_matches("t/");
        let base = format!("/api/v2.0/projects/t/repositories/{name}/artifacts");
        let (total, list) = get_json(&s, &format!("{base}?with_accessory=true")).await;
        assert_eq!(total, "1", "accessories are not artifacts: {list}");
        assert_eq!(list[0]["digest"], subject.as_str());
        let types: Vec<&str> =
            list[0]["accessories"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
        assert_eq!(types.len(), 3, "{types:?}");
        for t in ["signature.cosign", "signature.notation", "subject.accessory"] {
            assert!(types.contains(&t), "{t} in {types:?}");
        }
        let (_, repo_json) = get_json(&s, &format!("/api/v2.0/projects/t/repositories/{name}")).await;
        assert_eq!(repo_json["artifact_count"], 1);
        let (total, _) = get_json(&s, &format!("{base}?q=base%3D*")).await;
        assert_eq!(total, "5", "base=* lists every manifest");
        let (_, of_sbom) = get_json(&s, &format!("{base}/{}/accessories", accessories[2])).await;
        assert_eq!(of_sbom[0]["digest"], accessories[3].as_str(), "an accessory's own accessory");

        let resp = if through_v2 {
            s.client.delete(s.url(&format!("/v2/{repo}/manifests/{subject}"))).send().await.unwrap()
        } else {
            s.client.delete(s.url(&format!("{base}/{subject}"))).send().await.unwrap()
        };
        assert!(resp.status().is_success(), "{}", resp.status());
        let (total, left) = get_json(&s, &format!("{base}?q=base%3D*")).await;
        assert_eq!(total, "0", "nothing stays behind: {left}");
        let (_, referrers) = get_json(&s, &format!("/v2/{repo}/referrers/{subject}")).await;
        assert_eq!(referrers["manifests"], json!([]));
        let (_, tags) = get_json(&s, &format!("/v2/{repo}/tags/list")).await;
        assert!(tags["tags"].as_array().is_none_or(|t| t.is_empty()), "{tags}");
        for d in &accessories {
            let resp = s.client.get(s.url(&format!("/v2/{repo}/manifests/{d}"))).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        }
    }
}

#[tokio::test]
async fn an_index_is_one_artifact_with_its_children_as_references() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let amd = s.image_manifest("t/multi", &[b"amd64 layer"]).await;
    let arm = s.image_manifest("t/multi", &[b"arm64 layer"]).await;
    let amd_d = put(
        &s,
        "t/multi",
        &berth_oci::Digest::sha256_of(&amd).to_string(),
        OCI_MANIFEST,
        &serde_json::from_slice(&amd).unwrap(),
    )
    .await;
    // The arm64 child is also tagged: it stands on its own and survives the index.
    let arm_d = put(&s, "t/multi", "arm-only", OCI_MANIFEST, &serde_json::from_slice(&arm).unwrap()).await;
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd_d.to_string(), "size": amd.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm_d.to_string(), "size": arm.len(), "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    });
    let index_d = put(&s, "t/multi", "latest", OCI_INDEX, &index).await;
    let base = "/api/v2.0/projects/t/repositories/multi/artifacts";
    let (total, list) = get_json(&s, base).await;
    assert_eq!(total, "2", "the index and the tagged child: {list}");
    let idx = list.as_array().unwrap().iter().find(|a| a["digest"] == index_d.as_str()).unwrap();
    assert_eq!(idx["type"], "IMAGE");
    let refs = idx["references"].as_array().unwrap();
    let amd_ref = refs.iter().find(|r| r["child_digest"] == amd_d.as_str()).unwrap();
    assert_eq!(amd_ref["platform"]["architecture"], "amd64");
    assert_eq!(amd_ref["parent_id"], idx["id"]);
    assert!(amd_ref["child_id"].as_i64().unwrap() > 0);
    // An image's extra_attrs come from its config.
    let (_, child) = get_json(&s, &format!("{base}/{arm_d}")).await;
    assert_eq!(child["extra_attrs"]["architecture"], "amd64");
    assert_eq!(child["extra_attrs"]["os"], "linux");
    assert!(child["addition_links"]["build_history"]["href"].as_str().unwrap().ends_with("/additions/build_history"));
    assert!(child["tags"][0]["id"].as_i64().unwrap() > 0);

    // A child an index references cannot go first.
    let resp = s.client.delete(s.url(&format!("{base}/{amd_d}"))).send().await.unwrap();
    assert_error(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION").await;
    let resp = s.client.delete(s.url(&format!("/v2/t/multi/manifests/{amd_d}"))).send().await.unwrap();
    assert_error(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION").await;

    let resp = s.client.delete(s.url(&format!("{base}/{index_d}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (total, left) = get_json(&s, &format!("{base}?q=base%3D*")).await;
    assert_eq!(total, "1", "the untagged child went with the index, the tagged one stayed: {left}");
    assert_eq!(left[0]["digest"], arm_d.as_str());
}

/// Refuses every change that names the tag `frozen`, while switched on; counts events.
#[derive(Default)]
struct Frozen {
    on: AtomicBool,
    events: AtomicUsize,
}

#[async_trait::async_trait]
impl ContentPolicy for Frozen {
    async fn check(&self, change: &ContentChange) -> Result<(), PolicyRefusal> {
        if self.on.load(Ordering::SeqCst) && change.tags().contains(&"frozen") {
            return Err(PolicyRefusal {
                refusal: berth_core::Refusal::Precondition,
                message: format!("the tag frozen of {} is frozen", change.repository()),
            });
        }
        Ok(())
    }
}

impl ContentSubscriber for Frozen {
    fn published(&self, _event: &ContentEvent) {
        self.events.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_policy_hooks_into_every_content_change_by_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let frozen = Arc::new(Frozen::default());
    s.registry.content().add_policy(frozen.clone());
    s.registry.content().subscribe(frozen.clone());
    let (d, body) = s.push_image("t/app", "frozen", &[b"frozen layer"]).await;
    let (other, _) = s.push_image("t/app", "other", &[b"other layer"]).await;
    let before = frozen.events.load(Ordering::SeqCst);
    assert_eq!(before, 2, "one event per push");
    frozen.on.store(true, Ordering::SeqCst);

    let refused = |resp: reqwest::Response| assert_error(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    // /v2 PUT of the tag.
    let resp = s
        .client
        .put(s.url("/v2/t/app/manifests/frozen"))
        .header("content-type", OCI_MANIFEST)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    refused(resp).await;
    // Tag add.
    let resp = s
        .client
        .post(s.url(&format!("/api/v2.0/projects/t/repositories/app/artifacts/{other}/tags")))
        .json(&json!({"name": "frozen"}))
        .send()
        .await
        .unwrap();
    refused(resp).await;
    // Copy with the tag.
    let resp = s
        .client
        .post(s.url("/api/v2.0/projects/t/repositories/copy/artifacts?from=t/app:frozen"))
        .send()
        .await
        .unwrap();
    refused(resp).await;
    // Delete: the artifact on both APIs, the tag on both.
    let resp =
        s.client.delete(s.url(&format!("/api/v2.0/projects/t/repositories/app/artifacts/{d}"))).send().await.unwrap();
    refused(resp).await;
    let resp = s.client.delete(s.url(&format!("/v2/t/app/manifests/{d}"))).send().await.unwrap();
    refused(resp).await;
    let resp = s.client.delete(s.url("/v2/t/app/manifests/frozen")).send().await.unwrap();
    refused(resp).await;
    let resp = s
        .client
        .delete(s.url(&format!("/api/v2.0/projects/t/repositories/app/artifacts/{d}/tags/frozen")))
        .send()
        .await
        .unwrap();
    refused(resp).await;
    // Nothing changed, nothing was published, and the copy's repository was not made.
    assert_eq!(frozen.events.load(Ordering::SeqCst), before);
    let resp = s.client.get(s.url("/api/v2.0/projects/t/repositories/copy")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (total, _) = get_json(&s, "/api/v2.0/projects/t/repositories/app/artifacts").await;
    assert_eq!(total, "2");
    // Other changes pass, and are published once each.
    let resp = s.client.delete(s.url("/v2/t/app/manifests/other")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(frozen.events.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_cnab_bundle_shows_its_bundle_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // As cnab-to-oci pushes a bundle: the bundle.json as the config of one manifest, the
    // invocation image, and an index naming both.
    let bundle = json!({"schemaVersion": "v1.2.0", "name": "hello", "version": "0.1.0",
        "description": "a bundle", "invocationImages": [{"imageType": "docker", "image": "hello:0.1.0"}]});
    let bundle_bytes = serde_json::to_vec(&bundle).unwrap();
    let config = s.push_blob("t/hello", &bundle_bytes).await;
    let config_manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cnab.config.v1+json", "digest": config.to_string(), "size": bundle_bytes.len()},
        "layers": []});
    let config_digest = put(&s, "t/hello", "cfg", OCI_MANIFEST, &config_manifest).await;
    let config_size = serde_json::to_vec(&config_manifest).unwrap().len();
    let image: Value = serde_json::from_slice(&s.image_manifest("t/hello", &[b"invocation"]).await).unwrap();
    let image_digest = put(&s, "t/hello", "inv", OCI_MANIFEST, &image).await;
    let image_size = serde_json::to_vec(&image).unwrap().len();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "annotations": {"io.cnab.runtime_version": "v1.0.0", "org.opencontainers.artifactType": "application/vnd.cnab.manifest.v1"},
    "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": config_digest.to_string(), "size": config_size,
         "annotations": {"io.cnab.manifest.type": "config"}},
        {"mediaType": OCI_MANIFEST, "digest": image_digest.to_string(), "size": image_size,
         "annotations": {"io.cnab.manifest.type": "invocation"}},
    ]});
    put(&s, "t/hello", "0.1.0", "application/vnd.oci.image.index.v1+json", &index).await;
    // The tags of the parts go; the bundle is then the one artifact.
    for tag in ["cfg", "inv"] {
        let resp = s
            .client
            .delete(s.url(&format!("/api/v2.0/projects/t/repositories/hello/artifacts/{tag}/tags/{tag}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (total, artifacts) = get_json(&s, "/api/v2.0/projects/t/repositories/hello/artifacts").await;
    assert_eq!(total, "1", "{artifacts}");
    let a = &artifacts[0];
    assert_eq!(a["type"], "CNAB");
    assert_eq!(a["extra_attrs"], bundle);
    assert_eq!(a["references"].as_array().unwrap().len(), 2);
}
