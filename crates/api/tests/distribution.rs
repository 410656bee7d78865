//! The distribution API end to end over HTTP, against a server in process.

mod common;

use berth_oci::{Algorithm, Digest};
use common::*;
use reqwest::StatusCode;

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

#[tokio::test]
async fn base_endpoint_announces_the_api_version() {
    let (_d, s) = server().await;
    for path in ["/v2/", "/v2"] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "docker-distribution-api-version"), "registry/2.0");
    }
    let resp = s.client.get(s.url("/v2/t/no/such/endpoint")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&resp, "docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn monolithic_push_then_pull_with_ranges() {
    let (_d, s) = server().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = s.push_blob("t/lib/app", &data).await;
    let url = s.url(&format!("/v2/t/lib/app/blobs/{digest}"));

    let resp = s.client.head(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length"), "100000");
    assert_eq!(header(&resp, "docker-content-digest"), digest.as_str());
    assert_eq!(header(&resp, "etag"), format!("\"{digest}\""));
    assert_eq!(header(&resp, "content-type"), "application/octet-stream");

    let resp = s.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), data);

    let resp = s.client.get(&url).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 10-19/100000");
    assert_eq!(header(&resp, "content-length"), "10");
    assert_eq!(resp.bytes().await.unwrap(), &data[10..20]);

    let resp = s.client.get(&url).header("range", "bytes=-5").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap(), &data[99_995..]);

    let resp = s.client.get(&url).header("range", "bytes=100000-").send().await.unwrap();
    assert_eq!(header(&resp, "content-range"), "bytes */100000");
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;

    // An inverted range cannot be satisfied (the OCI conformance suite's `bytes=500-0`).
    for inverted in ["bytes=500-0", "bytes=20-10"] {
        let resp = s.client.get(&url).header("range", inverted).send().await.unwrap();
        assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;
    }

    let resp = s.client.get(&url).header("if-none-match", format!("\"{digest}\"")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    // A blob is visible only in the repository it was pushed to.
    let resp = s.client.get(s.url(&format!("/v2/t/lib/other/blobs/{digest}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    s.push_blob("t/lib/other", b"x").await;
    let resp = s.client.get(s.url(&format!("/v2/t/lib/other/blobs/{digest}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn post_then_put_and_sha512() {
    let (_d, s) = server().await;
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let data = b"post then put".to_vec();
        let digest = Digest::of(algorithm, &data);
        let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&resp, "range"), "0-0");
        assert!(!header(&resp, "docker-upload-uuid").is_empty());
        let location = header(&resp, "location").to_string();
        assert!(location.starts_with("/v2/t/a/blobs/uploads/"));
        let resp = s
            .client
            .put(s.url(&format!("{location}?digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(header(&resp, "location"), format!("/v2/t/a/blobs/{digest}"));
        assert_eq!(header(&resp, "docker-content-digest"), digest.as_str());
        let got = s.client.get(s.url(&format!("/v2/t/a/blobs/{digest}"))).send().await.unwrap();
        assert_eq!(got.bytes().await.unwrap(), data);
    }
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let (_d, s) = server().await;
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..50).map(|i| Ok(vec![i as u8; 10_000])).collect();
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.as_ref().unwrap().clone()).collect();
    let resp = s
        .client
        .patch(s.url(&location))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range"), "0-499999");
    let location = header(&resp, "location").to_string();
    let status = s.client.get(s.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-499999");
    let digest = Digest::sha256_of(&all);
    let resp = s.client.put(s.url(&format!("{location}?digest={digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got = s.client.get(s.url(&format!("/v2/t/a/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), all);
}

#[tokio::test]
async fn chunked_upload_refuses_gaps_and_overlaps() {
    let (_d, s) = server().await;
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let patch = |range: &str, body: &'static [u8]| {
        s.client
            .patch(s.url(&location))
            .header("content-range", range)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    assert_eq!(patch("0-4", b"hello").await.unwrap().status(), StatusCode::ACCEPTED);
    // A gap.
    let resp = patch("10-14", b"later").await.unwrap();
    assert_eq!(header(&resp, "range"), "0-4");
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID").await;
    // An overlap.
    let resp = patch("3-7", b"lo, w").await.unwrap();
    assert_eq!(header(&resp, "range"), "0-4");
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID").await;
    // A range that does not match the body's length changes nothing.
    let resp = patch("5-9", b" wo").await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    // A malformed range.
    let resp = patch("five-nine", b" world").await.unwrap();
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID").await;
    let resp = patch("5-10", b" world").await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range"), "0-10");
    // A final chunk with the PUT.
    let digest = Digest::sha256_of(b"hello world!");
    let resp = s
        .client
        .put(s.url(&format!("{location}?digest={digest}")))
        .header("content-range", "11-11")
        .body(&b"!"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got = s.client.get(s.url(&format!("/v2/t/a/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), &b"hello world!"[..]);
    // The session is gone.
    let resp = s.client.get(s.url(&location)).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn wrong_digest_is_refused_and_nothing_becomes_visible() {
    let (_d, s) = server().await;
    let claimed = Digest::sha256_of(b"something else");
    let resp = s
        .client
        .post(s.url(&format!("/v2/t/a/blobs/uploads/?digest={claimed}")))
        .body(&b"actual bytes"[..])
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = s.client.head(s.url(&format!("/v2/t/a/blobs/{claimed}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // On a session, a wrong digest leaves the session as it was.
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    s.client.patch(s.url(&location)).body(&b"abc"[..]).send().await.unwrap();
    let resp = s.client.put(s.url(&format!("{location}?digest={claimed}"))).body(&b"def"[..]).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = s.client.get(s.url(&location)).send().await.unwrap();
    assert_eq!(header(&resp, "range"), "0-2");
    let good = Digest::sha256_of(b"abcdef");
    let resp = s.client.put(s.url(&format!("{location}?digest={good}"))).body(&b"def"[..]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let resp = s.client.put(s.url(&format!("{location}?digest=sha256:nothex"))).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let resp = s.client.put(s.url(&location)).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn monolithic_uploads_of_every_size_and_framing() {
    let (d, s) = server().await;
    // Small ones are received into memory and stored at once; from 4 MiB + 1 and without a
    // length they go through a session: both must behave the same.
    for len in [0usize, 1000, 4 << 20, (4 << 20) + 1] {
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let wrong = Digest::sha256_of(b"other");
        let resp = s.client.post(s.url(&format!("/v2/t/m/blobs/uploads/?digest={wrong}"))).body(data.clone());
        assert_error(resp.send().await.unwrap(), StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        for d in [&wrong, &digest] {
            let resp = s.client.head(s.url(&format!("/v2/t/m/blobs/{d}"))).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{len} bytes");
        }

        let pushed = s.push_blob("t/m", &data).await;
        assert_eq!(pushed, digest);
        let resp = s.client.get(s.url(&format!("/v2/t/m/blobs/{digest}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.bytes().await.unwrap(), data, "{len} bytes");

        // Chunked transfer encoding: no length is known before the bytes arrive.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let resp = s.client.post(s.url(&format!("/v2/t/streamed/blobs/uploads/?digest={digest}"))).body(body);
        assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED, "{len} bytes");
        let resp = s.client.head(s.url(&format!("/v2/t/streamed/blobs/{digest}"))).send().await.unwrap();
        assert_eq!(header(&resp, "content-length"), len.to_string());
    }
    // Neither a session nor a half-written file is left behind.
    if std::env::var("BERTH_TEST_STORAGE").as_deref() != Ok("s3") {
        for sub in ["uploads", "tmp"] {
            assert_eq!(std::fs::read_dir(d.path().join(sub)).unwrap().count(), 0, "{sub}");
        }
    }
}

#[tokio::test]
async fn cancel_upload() {
    let (_d, s) = server().await;
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let resp = s.client.delete(s.url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for req in
        [s.client.get(s.url(&location)), s.client.patch(s.url(&location)).body("x"), s.client.delete(s.url(&location))]
    {
        assert_error(req.send().await.unwrap(), StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    }
    // A session of one repository is unknown in another.
    let resp = s.client.post(s.url("/v2/t/a/blobs/uploads/")).send().await.unwrap();
    let id = header(&resp, "docker-upload-uuid").to_string();
    s.push_blob("t/b", b"b").await;
    let resp = s.client.get(s.url(&format!("/v2/t/b/blobs/uploads/{id}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = s.client.get(s.url("/v2/t/a/blobs/uploads/..%2F..%2Fetc")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let (_d, s) = server().await;
    let digest = s.push_blob("t/src", b"shared layer").await;
    let resp =
        s.client.post(s.url(&format!("/v2/t/dst/blobs/uploads/?mount={digest}&from=t/src"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "location"), format!("/v2/t/dst/blobs/{digest}"));
    let got = s.client.get(s.url(&format!("/v2/t/dst/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), &b"shared layer"[..]);

    // From a repository that lacks it: an upload session instead.
    let resp =
        s.client.post(s.url(&format!("/v2/t/dst2/blobs/uploads/?mount={digest}&from=t/nowhere"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(header(&resp, "location").starts_with("/v2/t/dst2/blobs/uploads/"));
    let unknown = Digest::sha256_of(b"never pushed");
    let resp =
        s.client.post(s.url(&format!("/v2/t/dst2/blobs/uploads/?mount={unknown}&from=t/src"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    // Without `from`: mounted automatically from a repository that has it.
    let resp = s.client.post(s.url(&format!("/v2/t/dst3/blobs/uploads/?mount={digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s.client.post(s.url("/v2/t/dst3/blobs/uploads/?mount=sha256:bad")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp =
        s.client.post(s.url(&format!("/v2/t/dst3/blobs/uploads/?mount={digest}&from=Bad"))).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_negotiation() {
    let (_d, s) = server().await;
    let (digest, body) = s.push_image("t/lib/app", "v1", &[b"layer one", b"layer two"]).await;
    for reference in ["v1".to_string(), digest.to_string()] {
        let url = s.url(&format!("/v2/t/lib/app/manifests/{reference}"));
        let resp = s.client.get(&url).header("accept", OCI_MANIFEST).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&resp, "docker-content-digest"), digest.as_str());
        assert_eq!(header(&resp, "etag"), format!("\"{digest}\""));
        assert_eq!(header(&resp, "content-length"), body.len().to_string());
        assert_eq!(resp.bytes().await.unwrap(), body);
        let resp = s.client.head(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "content-length"), body.len().to_string());
        assert_eq!(header(&resp, "docker-content-digest"), digest.as_str());
    }
    let url = s.url("/v2/t/lib/app/manifests/v1");
    // Several Accept values, with parameters and a wildcard.
    let resp = s
        .client
        .get(&url)
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json, */*;q=0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Only Docker schema 1 acceptable: a clear refusal.
    let resp = s
        .client
        .get(&url)
        .header("accept", "application/vnd.docker.distribution.manifest.v1+prettyjws")
        .send()
        .await
        .unwrap();
    let body = assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("schema 1"), "{body}");

    let resp = s.client.get(s.url("/v2/t/lib/app/manifests/nope")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let resp = s.client.get(s.url("/v2/t/lib/none/manifests/v1")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    // A reference that is neither a digest nor a valid tag names no manifest (the conformance
    // suite's `.INVALID_MANIFEST_NAME`): 404, on GET and HEAD.
    let resp = s.client.get(s.url("/v2/t/lib/app/manifests/.INVALID_MANIFEST_NAME")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let resp = s.client.head(s.url("/v2/t/lib/app/manifests/.INVALID_MANIFEST_NAME")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Moving a tag.
    let (digest2, _) = s.push_image("t/lib/app", "v1", &[b"layer three"]).await;
    let resp = s.client.head(&url).send().await.unwrap();
    assert_eq!(header(&resp, "docker-content-digest"), digest2.as_str());
}

#[tokio::test]
async fn manifest_validation() {
    let (_d, s) = server().await;
    let put = |reference: &str, ct: &str, body: Vec<u8>| {
        s.client.put(s.url(&format!("/v2/t/v/manifests/{reference}"))).header("content-type", ct).body(body).send()
    };
    let resp = put("t", OCI_MANIFEST, b"{not json".to_vec()).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    let schema1 = br#"{"schemaVersion":1,"name":"v","tag":"t","fsLayers":[],"history":[]}"#.to_vec();
    let resp = put("t", "application/vnd.docker.distribution.manifest.v1+prettyjws", schema1).await.unwrap();
    let body = assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("schema 1"));

    // Referencing blobs the repository does not have.
    let missing = Digest::sha256_of(b"absent");
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": missing.to_string(), "size": 6},
        "layers": [],
    });
    let resp = put("t", OCI_MANIFEST, serde_json::to_vec(&m).unwrap()).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let resp = s.client.get(s.url("/v2/t/v/manifests/t")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // No mediaType in the body: the Content-Type decides (as umoci's manifests need).
    let mut body: serde_json::Value = serde_json::from_slice(&s.image_manifest("t/v", &[b"l"]).await).unwrap();
    body.as_object_mut().unwrap().remove("mediaType");
    let bytes = serde_json::to_vec(&body).unwrap();
    let resp = put("umoci", OCI_MANIFEST, bytes.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s.client.get(s.url("/v2/t/v/manifests/umoci")).send().await.unwrap();
    assert_eq!(header(&resp, "content-type"), OCI_MANIFEST);
    let resp = put("nomt", "application/json", bytes.clone()).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;

    // PUT by digest: the digest must match; `tag` parameters tag it too.
    let digest = Digest::sha256_of(&bytes);
    let resp = put(Digest::sha256_of(b"other").as_str(), OCI_MANIFEST, bytes.clone()).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = s
        .client
        .put(s.url(&format!("/v2/t/v/manifests/{digest}?tag=a1&tag=a2")))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "location"), format!("/v2/t/v/manifests/{digest}"));
    let tags: serde_json::Value = s.client.get(s.url("/v2/t/v/tags/list")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["a1", "a2", "umoci"]));
    let resp = s
        .client
        .put(s.url(&format!("/v2/t/v/manifests/{digest}?tag=-bad")))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;

    // Too large.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let resp = put("huge", OCI_MANIFEST, huge).await.unwrap();
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    let resp = put("-bad", OCI_MANIFEST, bytes).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
}

#[tokio::test]
async fn index_needs_its_children() {
    let (_d, s) = server().await;
    let (amd, amd_body) = s.push_image("t/multi", "amd64", &[b"amd layer"]).await;
    let missing = Digest::sha256_of(b"arm manifest");
    let index = |children: Vec<(Digest, usize)>| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": children.iter().map(|(d, n)| serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": n, "platform": {"os": "linux", "architecture": "amd64"}})).collect::<Vec<_>>(),
        }))
        .unwrap()
    };
    let put = |body: Vec<u8>| {
        s.client.put(s.url("/v2/t/multi/manifests/latest")).header("content-type", OCI_INDEX).body(body).send()
    };
    let resp = put(index(vec![(amd.clone(), amd_body.len()), (missing, 10)])).await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let body = index(vec![(amd, amd_body.len())]);
    let resp = put(body.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s.client.get(s.url("/v2/t/multi/manifests/latest")).header("accept", OCI_INDEX).send().await.unwrap();
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
    assert_eq!(resp.bytes().await.unwrap(), body);
    // A client that cannot take an index is told so.
    let resp = s.client.get(s.url("/v2/t/multi/manifests/latest")).header("accept", OCI_MANIFEST).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn referrers_and_subject() {
    let (_d, s) = server().await;
    let (subject, subject_body) = s.push_image("t/r", "v1", &[b"app"]).await;
    let empty = s.push_blob("t/r", b"{}").await;
    let referrer = |artifact_type: &str, note: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_body.len()},
            "annotations": {"note": note},
        }))
        .unwrap()
    };
    let mut digests = Vec::new();
    for (t, note) in [("application/vnd.example.sig", "a"), ("application/vnd.example.sbom", "b")] {
        let body = referrer(t, note);
        let d = Digest::sha256_of(&body);
        let resp = s
            .client
            .put(s.url(&format!("/v2/t/r/manifests/{d}")))
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(header(&resp, "oci-subject"), subject.as_str());
        digests.push(d);
    }
    let resp = s.client.get(s.url(&format!("/v2/t/r/referrers/{subject}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
    assert_eq!(header(&resp, "oci-filters-applied"), "");
    let index: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(index["manifests"][0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(index["manifests"][0]["annotations"]["note"], "a");
    assert_eq!(index["manifests"][0]["digest"], digests[0].as_str());

    let resp = s
        .client
        .get(s.url(&format!("/v2/t/r/referrers/{subject}?artifactType=application/vnd.example.sbom")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "oci-filters-applied"), "artifactType");
    let index: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], digests[1].as_str());

    let unknown = Digest::sha256_of(b"nothing refers to this");
    for repo in ["r", "unknown/repo"] {
        let resp = s.client.get(s.url(&format!("/v2/t/{repo}/referrers/{unknown}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let index: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(index["manifests"], serde_json::json!([]));
    }
    let resp = s.client.get(s.url("/v2/t/r/referrers/sha256:xyz")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn tags_and_catalog_paginate_in_lexical_order() {
    let (_d, s) = server().await;
    for repo in ["t/c/three", "t/a/one", "t/b/two"] {
        s.push_image(repo, "x", &[b"l"]).await;
    }
    for tag in ["v3", "v1", "latest", "v2"] {
        s.push_image("t/a/one", tag, &[b"l"]).await;
    }
    // An upload alone does not make a repository appear in the catalog.
    s.push_blob("t/d/blob-only", b"x").await;
    let cat: serde_json::Value = s.client.get(s.url("/v2/_catalog")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["t/a/one", "t/b/two", "t/c/three"]));

    let resp = s.client.get(s.url("/v2/_catalog?n=2")).send().await.unwrap();
    assert_eq!(header(&resp, "link"), "</v2/_catalog?n=2&last=t%2Fb%2Ftwo>; rel=\"next\"");
    let page: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(page["repositories"], serde_json::json!(["t/a/one", "t/b/two"]));
    let resp = s.client.get(s.url("/v2/_catalog?n=2&last=t%2Fb%2Ftwo")).send().await.unwrap();
    assert_eq!(header(&resp, "link"), "");
    let page: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(page["repositories"], serde_json::json!(["t/c/three"]));

    let resp = s.client.get(s.url("/v2/t/a/one/tags/list?n=2")).send().await.unwrap();
    assert_eq!(header(&resp, "link"), "</v2/t/a/one/tags/list?n=2&last=v1>; rel=\"next\"");
    let page: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(page, serde_json::json!({"name": "t/a/one", "tags": ["latest", "v1"]}));
    let page: serde_json::Value =
        s.client.get(s.url("/v2/t/a/one/tags/list?n=2&last=v1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["v2", "v3"]));
    let page: serde_json::Value =
        s.client.get(s.url("/v2/t/a/one/tags/list?n=0")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!([]));
    let resp = s.client.get(s.url("/v2/t/a/one/tags/list?n=-1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s.client.get(s.url("/v2/t/nope/tags/list")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn deletes() {
    let (_d, s) = server().await;
    let (digest, _) = s.push_image("t/del", "v1", &[b"layer"]).await;
    let resp = s
        .client
        .put(s.url("/v2/t/del/manifests/v2"))
        .header("content-type", OCI_MANIFEST)
        .body(s.client.get(s.url("/v2/t/del/manifests/v1")).send().await.unwrap().bytes().await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Deleting a tag leaves the manifest and the other tag.
    let resp = s.client.delete(s.url("/v2/t/del/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(s.client.head(s.url("/v2/t/del/manifests/v1")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.client.head(s.url("/v2/t/del/manifests/v2")).send().await.unwrap().status(), StatusCode::OK);
    let resp = s.client.delete(s.url("/v2/t/del/manifests/v1")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;

    // Deleting the manifest removes its remaining tags.
    let resp = s.client.delete(s.url(&format!("/v2/t/del/manifests/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(s.client.head(s.url("/v2/t/del/manifests/v2")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.client.head(s.url(&format!("/v2/t/del/manifests/{digest}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let tags: serde_json::Value =
        s.client.get(s.url("/v2/t/del/tags/list")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));

    // Blobs.
    let blob = Digest::sha256_of(b"layer");
    let resp = s.client.delete(s.url(&format!("/v2/t/del/blobs/{blob}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        s.client.head(s.url(&format!("/v2/t/del/blobs/{blob}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let resp = s.client.delete(s.url(&format!("/v2/t/del/blobs/{blob}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn invalid_names_and_methods() {
    let (_d, s) = server().await;
    for path in
        ["/v2/t/UPPER/tags/list", "/v2/t/a//b/tags/list", "/v2/t/a-/manifests/latest", "/v2/t/-a/blobs/uploads/"]
    {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
    let resp = s.client.post(s.url("/v2/t/UPPER/blobs/uploads/")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    let resp = s.client.post(s.url("/v2/t/a/tags/list")).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    let resp = s.client.patch(s.url("/v2/t/a/manifests/latest")).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
}

#[tokio::test]
async fn upload_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let resp = s.client.post(s.url("/v2/t/restart/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    // 1 MiB + 7 bytes: not a multiple of the hash block size, so saved state includes a
    // partial block.
    let first: Vec<u8> = (0..(1 << 20) + 7).map(|i: u32| (i % 253) as u8).collect();
    let resp = s
        .client
        .patch(s.url(&location))
        .header("content-range", format!("0-{}", first.len() - 1))
        .body(first.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    s.stop().await;

    let s = TestServer::start(dir.path()).await;
    let resp = s.client.get(s.url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "range"), format!("0-{}", first.len() - 1));
    let second = b"the rest of the blob".to_vec();
    let resp = s
        .client
        .patch(s.url(&location))
        .header("content-range", format!("{}-{}", first.len(), first.len() + second.len() - 1))
        .body(second.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let all = [first, second].concat();
    let digest = Digest::sha256_of(&all);
    let resp = s.client.put(s.url(&format!("{location}?digest={digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got = s.client.get(s.url(&format!("/v2/t/restart/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), all);
}
