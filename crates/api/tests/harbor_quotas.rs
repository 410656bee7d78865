//! Harbor's quotas: `storage_limit` at project creation, `/quotas`, and the limit held at the
//! door: blob uploads, mounts, manifest PUTs and copies that would pass it are refused with
//! Harbor's 403 and record nothing; content the project holds already passes even over the
//! limit; garbage collection brings the usage down.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn quota_of(s: &TestServer, project_id: i64) -> Value {
    let resp =
        s.client.get(s.url(&format!("/api/v2.0/quotas?reference=project&reference_id={project_id}"))).send().await;
    let list: Value = resp.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0].clone()
}

async fn used(s: &TestServer, project_id: i64) -> i64 {
    quota_of(s, project_id).await["used"]["storage"].as_i64().unwrap()
}

async fn create_project(s: &TestServer, body: Value) -> i64 {
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap()
}

async fn refused_by_quota(resp: reqwest::Response) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!((status, &body["errors"][0]["code"]), (StatusCode::FORBIDDEN, &json!("DENIED")), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("Quota exceeded when processing the request of adding"), "{message}");
    assert!(message.contains("will exceed the configured upper limit of"), "{message}");
}

async fn set_limit(s: &TestServer, quota_id: i64, limit: i64) {
    let resp =
        s.client.put(s.url(&format!("/api/v2.0/quotas/{quota_id}"))).json(&json!({"hard": {"storage": limit}})).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_limit_is_held_at_every_write_and_usage_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let pid = create_project(&s, json!({"project_name": "capped", "storage_limit": 4096})).await;
    let quota = quota_of(&s, pid).await;
    assert_eq!((&quota["hard"]["storage"], &quota["used"]["storage"]), (&json!(4096), &json!(0)));
    assert_eq!((&quota["ref"]["name"], &quota["ref"]["owner_name"]), (&json!("capped"), &json!("admin")));
    let quota_id = quota["id"].as_i64().unwrap();

    // Under the limit: in. Usage counts each distinct blob and manifest once.
    let (first, manifest) = s.push_image("capped/app", "v1", &[&[1u8; 1000]]).await;
    let after_first = used(&s, pid).await;
    let config_and_layer = after_first - manifest.len() as i64;
    assert!(config_and_layer >= 1000, "{after_first}");
    s.push_image("capped/other", "v1", &[&[1u8; 1000]]).await;
    assert_eq!(used(&s, pid).await, after_first, "the same content in a second repository counts once");

    // A blob that would pass the limit: refused, not linked, usage unchanged.
    let big = vec![2u8; 4000];
    let digest = berth_oci::Digest::sha256_of(&big);
    let resp = s.client.post(s.url(&format!("/v2/capped/app/blobs/uploads/?digest={digest}"))).body(big.clone()).send();
    refused_by_quota(resp.await.unwrap()).await;
    let head = s.client.head(s.url(&format!("/v2/capped/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.registry.store().stat(&digest).await.unwrap(), None, "refused before its bytes were written");
    assert_eq!(used(&s, pid).await, after_first);
    // The same by a chunked upload, refused at its end.
    let resp = s.client.post(s.url("/v2/capped/app/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = s.client.put(s.url(&format!("{location}{sep}digest={digest}"))).body(big.clone()).send();
    let resp = resp.await.unwrap();
    refused_by_quota(resp).await;
    assert_eq!(s.registry.store().stat(&digest).await.unwrap(), None, "refused before its bytes were published");
    assert_eq!(used(&s, pid).await, after_first);

    // A mount of a blob another project holds.
    let (_, _) = s.push_image("t/big", "v1", &[&big]).await;
    let resp = s.client.post(s.url(&format!("/v2/capped/app/blobs/uploads/?mount={digest}&from=t/big"))).send();
    refused_by_quota(resp.await.unwrap()).await;
    assert_eq!(used(&s, pid).await, after_first);

    // A copy of an artifact from another project.
    let resp = s.client.post(s.url("/api/v2.0/projects/capped/repositories/copied/artifacts?from=t/big:v1")).send();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{}", resp.text().await.unwrap());
    assert_eq!(used(&s, pid).await, after_first);

    // A manifest whose own bytes would pass the limit: the limit set to the usage exactly.
    set_limit(&s, quota_id, after_first).await;
    let second = s.image_manifest("capped/app", &[&[1u8; 1000]]).await;
    let mut other = serde_json::from_slice::<Value>(&second).unwrap();
    other["annotations"] = json!({"note": "a different manifest of the same blobs"});
    let resp = s
        .client
        .put(s.url("/v2/capped/app/manifests/v2"))
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(&other).unwrap())
        .send()
        .await
        .unwrap();
    refused_by_quota(resp).await;
    assert_eq!(
        s.client.get(s.url("/v2/capped/app/manifests/v2")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // What the project holds already passes, even at (or over) the limit.
    set_limit(&s, quota_id, 1).await;
    let resp = s
        .client
        .put(s.url("/v2/capped/app/manifests/again"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(used(&s, pid).await, after_first);

    // Deleting the artifact leaves its blobs linked; a collection brings the usage down.
    set_limit(&s, quota_id, -1).await;
    let resp = s.client.delete(s.url("/api/v2.0/projects/capped/repositories/other")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(used(&s, pid).await, after_first, "app holds the same content");
    let resp = s.client.delete(s.url(&format!("/v2/capped/app/manifests/{first}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(used(&s, pid).await, config_and_layer);
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "time_window": 0}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let gc = s.wait_ended(header(&resp, "location")).await;
    assert_eq!(gc["job_status"], "Success", "{gc}");
    assert_eq!(used(&s, pid).await, 0);
}

#[tokio::test]
async fn quotas_are_set_by_administrators_within_harbors_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // Out of range, or set by someone else: refused, and no project is made.
    for limit in [0, -2, (1i64 << 50) + 1] {
        let resp =
            s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "bad", "storage_limit": limit}));
        assert_error(resp.send().await.unwrap(), StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let user = s.user("someone").await;
    let resp = user.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "mine", "storage_limit": 10}));
    assert_error(resp.send().await.unwrap(), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = s.client.head(s.url("/api/v2.0/projects?project_name=mine")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Without a limit a project's quota is unlimited.
    let resp = user.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "mine"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mine: i64 = header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap();
    let quota = quota_of(&s, mine).await;
    assert_eq!(quota["hard"]["storage"], -1);
    let id = quota["id"].as_i64().unwrap();

    // Only administrators list and set; a member reads its project's; others learn nothing.
    assert_error(user.get(s.url("/api/v2.0/quotas")).send().await.unwrap(), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = user.put(s.url(&format!("/api/v2.0/quotas/{id}"))).json(&json!({"hard": {"storage": 5}})).send();
    assert_error(resp.await.unwrap(), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let own: Value = user.get(s.url(&format!("/api/v2.0/quotas/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(own["ref"]["name"], "mine");
    let stranger = s.user("stranger").await;
    let resp = stranger.get(s.url(&format!("/api/v2.0/quotas/{id}"))).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    for body in [
        json!({"hard": {"storage": 0}}),
        json!({"hard": {"count": 5}}),
        json!({"hard": {"storage": 5}, "x": 1}),
        json!({}),
    ] {
        let resp = s.client.put(s.url(&format!("/api/v2.0/quotas/{id}"))).json(&body).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    assert_eq!(quota_of(&s, mine).await["hard"]["storage"], -1);
    let resp = s.client.get(s.url("/api/v2.0/quotas?reference=repository")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let resp = s.client.get(s.url("/api/v2.0/quotas/99999")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Sorted by usage, as Harbor's portal asks.
    s.push_image("mine/app", "v1", &[b"some bytes in mine"]).await;
    let sorted: Value =
        s.client.get(s.url("/api/v2.0/quotas?sort=-used.storage")).send().await.unwrap().json().await.unwrap();
    let usage: Vec<i64> = sorted.as_array().unwrap().iter().map(|q| q["used"]["storage"].as_i64().unwrap()).collect();
    assert!(usage.windows(2).all(|w| w[0] >= w[1]) && usage[0] > 0, "{usage:?}");
}

async fn put_manifest(s: &TestServer, repo: &str, reference: &str, body: &[u8]) -> reqwest::Response {
    let url = s.url(&format!("/v2/{repo}/manifests/{reference}"));
    s.client.put(url).header("content-type", OCI_MANIFEST).body(body.to_vec()).send().await.unwrap()
}

/// Refused as over the per-repository limit of 2 `what`s, with `/v2`'s code (`DENIED`) or the
/// REST API's (`FORBIDDEN`).
async fn refused_per_repository(resp: reqwest::Response, what: &str, code: &str) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!((status, &body["errors"][0]["code"]), (StatusCode::FORBIDDEN, &json!(code)), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("upper limit of 2 {what}s per repository")), "{message}");
}

#[tokio::test]
async fn repositories_are_limited_in_tags_and_artifacts_beyond_harbor() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let pid = create_project(&s, json!({"project_name": "few"})).await;
    let quota_id = quota_of(&s, pid).await["id"].as_i64().unwrap();
    let limits = json!({"hard": {"tags_per_repository": 2, "artifacts_per_repository": 2}});
    let resp = s.client.put(s.url(&format!("/api/v2.0/quotas/{quota_id}"))).json(&limits).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let hard = quota_of(&s, pid).await["hard"].clone();
    assert_eq!(hard, json!({"storage": -1, "tags_per_repository": 2, "artifacts_per_repository": 2}));

    let (_, m1) = s.push_image("few/app", "v1", &[b"first"]).await;
    let (a2, _) = s.push_image("few/app", "v2", &[b"second"]).await;
    // A third tag, by a push or through Harbor's API: refused, and not there.
    refused_per_repository(put_manifest(&s, "few/app", "v3", &m1).await, "tag", "DENIED").await;
    let resp =
        s.client.post(s.url("/api/v2.0/projects/few/repositories/app/artifacts/v1/tags")).json(&json!({"name": "v3"}));
    refused_per_repository(resp.send().await.unwrap(), "tag", "FORBIDDEN").await;
    assert_eq!(s.client.get(s.url("/v2/few/app/manifests/v3")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    // Moving a tag adds none; the artifact it left, untagged, still counts.
    assert_eq!(put_manifest(&s, "few/app", "v2", &m1).await.status(), StatusCode::CREATED);
    let m3 = s.image_manifest("few/app", &[b"third"]).await;
    let d3 = berth_oci::Digest::sha256_of(&m3);
    refused_per_repository(put_manifest(&s, "few/app", &d3.to_string(), &m3).await, "artifact", "DENIED").await;
    // Each repository counts its own.
    s.push_image("few/other", "v1", &[b"first"]).await;
    s.push_image("few/other", "v2", &[b"second"]).await;
    // Deleting makes room.
    let resp = s.client.delete(s.url(&format!("/v2/few/app/manifests/{a2}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(put_manifest(&s, "few/app", &d3.to_string(), &m3).await.status(), StatusCode::CREATED);

    // Lifted, the limits are gone from the quota; storage stayed as it was.
    let limits = json!({"hard": {"tags_per_repository": -1, "artifacts_per_repository": -1}});
    let resp = s.client.put(s.url(&format!("/api/v2.0/quotas/{quota_id}"))).json(&limits).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(quota_of(&s, pid).await["hard"], json!({"storage": -1}));
    assert_eq!(put_manifest(&s, "few/app", "v3", &m1).await.status(), StatusCode::CREATED);
    for bad in [
        json!({"hard": {"tags_per_repository": 0}}),
        json!({"hard": {"artifacts_per_repository": -5}}),
        json!({"hard": {}}),
    ] {
        let resp = s.client.put(s.url(&format!("/api/v2.0/quotas/{quota_id}"))).json(&bad).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
}
