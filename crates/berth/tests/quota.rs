//! A project's storage quota under parallel pushes through two replicas on one PostgreSQL
//! database and one bucket: no push is let past the limit, and the usage the API shows is the
//! recount of what the project holds.

mod common;

use berth_oci::Digest;
use common::*;
use sqlx::Row;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LIMIT: i64 = 100_000;
const PUSHES: usize = 24;

/// Pushes a one-layer image; the manifest's digest if the whole push was acknowledged.
async fn push(client: &reqwest::Client, base: &str, tag: &str, layer: &[u8]) -> Option<Digest> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
    let mut descriptors = Vec::new();
    for bytes in [&config[..], layer] {
        let digest = Digest::sha256_of(bytes);
        let resp = client
            .post(format!("{base}/v2/capped/app/blobs/uploads/?digest={digest}"))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        if !refused_by_quota(resp, 201).await {
            return None;
        }
        descriptors.push((digest, bytes.len()));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": descriptors[0].0.to_string(), "size": descriptors[0].1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": descriptors[1].0.to_string(), "size": descriptors[1].1}],
    })
    .to_string();
    let resp = client
        .put(format!("{base}/v2/capped/app/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    refused_by_quota(resp, 201).await.then(|| Digest::sha256_of(manifest.as_bytes()))
}

/// Whether `resp` has the `ok` status; otherwise it must be the quota's refusal.
async fn refused_by_quota(resp: reqwest::Response, ok: u16) -> bool {
    let status = resp.status().as_u16();
    if status == ok {
        return true;
    }
    let body = resp.text().await.unwrap_or_default();
    assert!(status == 403 && body.contains("DENIED") && body.contains("Quota exceeded"), "{status}: {body}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pushes_through_two_replicas_stay_under_the_quota() {
    let Some(admin_url) = postgres_url() else { return };
    let Some(s3) = s3_url() else { return };
    let mut env = external_database_env(&admin_url).await;
    env.extend(s3_storage_env(&s3));
    let database = env.iter().find(|(k, _)| k == "BERTH_DATABASE__EXTERNAL__DATABASE").unwrap().1.clone();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let replicas: Vec<Berth> = dirs.iter().map(|d| Berth::start_with(d.path(), &env_refs)).collect();
    let client = admin_client();
    let resp = client
        .post(replicas[0].url("/api/v2.0/projects"))
        .json(&serde_json::json!({"project_name": "capped", "storage_limit": LIMIT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // Each push adds a little over 8 KiB of its own: the limit lets about a dozen in.
    let mut pushes = Vec::new();
    for i in 0..PUSHES {
        let (client, base) = (client.clone(), replicas[i % 2].url(""));
        let base = base.trim_end_matches('/').to_string();
        pushes.push(tokio::spawn(async move {
            let layer: Vec<u8> =
                (0..8192u32).map(|b| (b as u8) ^ (i as u8).wrapping_mul(31)).chain([i as u8]).collect();
            push(&client, &base, &format!("t{i}"), &layer).await.map(|d| (i, d))
        }));
    }
    let mut acked = Vec::new();
    for p in pushes {
        if let Some(done) = p.await.unwrap() {
            acked.push(done);
        }
    }
    assert!(!acked.is_empty() && acked.len() < PUSHES, "{} of {PUSHES} pushes acknowledged", acked.len());

    let quotas: serde_json::Value =
        client.get(replicas[1].url("/api/v2.0/quotas?page_size=100")).send().await.unwrap().json().await.unwrap();
    let quota = quotas.as_array().unwrap().iter().find(|q| q["ref"]["name"] == "capped").unwrap().clone();
    assert_eq!(quota["hard"]["storage"], LIMIT);
    let used = quota["used"]["storage"].as_i64().unwrap();
    assert!(used <= LIMIT, "usage {used} past the limit {LIMIT}");

    // The recount: every distinct blob linked and manifest stored in the project's repositories.
    let url = format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let recount: i64 = sqlx::query(
        "SELECT COALESCE(SUM(size), 0)::BIGINT FROM ( \
           SELECT DISTINCT b.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
             JOIN repositories r ON r.id = rb.repository_id JOIN projects p ON p.id = r.project_id WHERE p.name = 'capped' \
           UNION \
           SELECT DISTINCT m.digest, m.size FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             JOIN projects p ON p.id = r.project_id WHERE p.name = 'capped') held",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(used, recount);

    // Every acknowledged push pulls through either replica.
    for (i, digest) in &acked {
        for r in &replicas {
            let resp = client
                .get(r.url(&format!("/v2/capped/app/manifests/t{i}")))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["docker-content-digest"].to_str().unwrap(), digest.to_string());
        }
    }
}
