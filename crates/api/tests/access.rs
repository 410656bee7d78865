//! The authorization seam: every endpoint asks the authorizer first, with the access it needs,
//! and a refusal is answered with the spec's codes before anything changes.

mod common;

use std::sync::{Arc, Mutex};

use berth_api::ApiError;
use berth_api::access::{Access, Action, Authorizer, Decision};
use berth_auth::rbac::Subject;
use berth_oci::ErrorCode;
use common::*;
use http::request::Parts;
use reqwest::StatusCode;

/// Grants pull to everyone, push and delete only with `x-test-user: writer`, nothing on
/// `secret/*` to anyone; records every access asked.
#[derive(Default)]
struct TestPolicy {
    asked: Mutex<Vec<Access>>,
}

impl Authorizer for TestPolicy {
    fn authorize<'a>(&'a self, request: &'a Parts, access: &'a Access) -> Decision<'a> {
        let headers = &request.headers;
        self.asked.lock().unwrap().push(access.clone());
        let writer = headers.get("x-test-user").is_some_and(|v| v == "writer");
        let secret = access.repository.as_ref().is_some_and(|r| r.as_str().starts_with("secret/"));
        let result = if secret {
            Err(ApiError::new(ErrorCode::Denied, "no access to secret repositories"))
        } else if access.action == Action::Pull || writer {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Unauthorized, "log in to push"))
        };
        Box::pin(async move { result.map(|()| Subject::Anonymous) })
    }
}

#[tokio::test]
async fn every_endpoint_passes_the_authorizer() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(TestPolicy::default());
    let s = TestServer::start_with(dir.path(), policy.clone()).await;

    let resp = s.client.post(s.url("/v2/open/app/blobs/uploads/")).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let resp = s.client.get(s.url("/v2/secret/x/tags/list")).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;

    // A writer pushes; anyone pulls; only the writer deletes.
    let data = b"layer";
    let digest = berth_oci::Digest::sha256_of(data);
    let resp = s
        .client
        .post(s.url(&format!("/v2/open/app/blobs/uploads/?digest={digest}")))
        .header("x-test-user", "writer")
        .body(&data[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s.client.get(s.url(&format!("/v2/open/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s.client.delete(s.url(&format!("/v2/open/app/blobs/{digest}"))).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let resp = s.client.head(s.url(&format!("/v2/open/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "a refused delete changes nothing");

    let asked = policy.asked.lock().unwrap().clone();
    let actions: Vec<(Option<&str>, Action)> =
        asked.iter().map(|a| (a.repository.as_ref().map(|r| r.as_str()), a.action)).collect();
    assert_eq!(
        actions,
        vec![
            (Some("open/app"), Action::Push),
            (Some("secret/x"), Action::Pull),
            (Some("open/app"), Action::Push),
            (Some("open/app"), Action::Pull),
            (Some("open/app"), Action::Delete),
            (Some("open/app"), Action::Pull),
        ]
    );
}

#[tokio::test]
async fn a_mount_needs_pull_on_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // Seed two repositories through an open server, then reopen with the policy.
    let digest = s.push_blob("secret/src", b"private layer").await;
    s.stop().await;
    let s = TestServer::start_with(dir.path(), Arc::new(TestPolicy::default())).await;
    for query in [format!("mount={digest}&from=secret/src"), format!("mount={digest}")] {
        let resp = s
            .client
            .post(s.url(&format!("/v2/open/app/blobs/uploads/?{query}")))
            .header("x-test-user", "writer")
            .send()
            .await
            .unwrap();
        // Not mounted: an upload session instead, and the blob stays invisible here.
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{query}");
    }
    let resp = s.client.head(s.url(&format!("/v2/open/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn over_the_request_limit_answers_toomanyrequests() {
    let dir = tempfile::tempdir().unwrap();
    let options = berth_api::ApiOptions { max_concurrent_requests: 1, ..Default::default() };
    let s = TestServer::start_with_options(dir.path(), None, &options).await;
    let resp = s.client.post(s.url("/v2/t/busy/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    // Hold the one slot with a PATCH whose body has not finished arriving.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(b"first".to_vec())).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let slow = tokio::spawn(s.client.patch(s.url(&location)).body(body).send());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let resp = s.client.get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(header(&resp, "retry-after"), "1");
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    drop(tx);
    assert_eq!(slow.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
    // The slot is free again.
    assert_eq!(s.client.get(s.url("/v2/")).send().await.unwrap().status(), StatusCode::OK);
}

fn tokio_stream_from<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
