//! A registry served in process on a loopback port, over a temporary data directory.
#![allow(dead_code)] // each test file uses a different part of the helpers

use std::path::Path;
use std::sync::Arc;

use berth_api::ApiOptions;
use berth_api::access::{Authorizer, OpenRegistry};
use berth_core::Registry;
use berth_db::Db;
use berth_oci::Digest;
use berth_store::FsStore;
use reqwest::{Response, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    db: Db,
}

impl TestServer {
    pub async fn start(dir: &Path) -> TestServer {
        TestServer::start_with(dir, Arc::new(OpenRegistry)).await
    }

    pub async fn start_with(dir: &Path, authorizer: Arc<dyn Authorizer>) -> TestServer {
        TestServer::start_with_options(dir, authorizer, &ApiOptions::default()).await
    }

    pub async fn start_with_options(
        dir: &Path,
        authorizer: Arc<dyn Authorizer>,
        options: &ApiOptions,
    ) -> TestServer {
        let db = Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
        let store = FsStore::open(dir).unwrap();
        let registry = Arc::new(Registry::new(db.clone(), Arc::new(store)));
        let app = berth_api::router(registry, authorizer, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_api::serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
            db,
        }
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.db.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Pushes a blob monolithically; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::sha256_of(bytes);
        let resp = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
        digest
    }

    /// Pushes an image manifest with one config and the given layers; returns its digest.
    pub async fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<u8>) {
        let body = self.image_manifest(repo, layers).await;
        let resp = self
            .client
            .put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("content-type", OCI_MANIFEST)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
        (Digest::sha256_of(&body), body)
    }

    /// Pushes the config and layers, and returns a manifest naming them (not yet pushed).
    pub async fn image_manifest(&self, repo: &str, layers: &[&[u8]]) -> Vec<u8> {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = self.push_blob(repo, config).await;
        let mut layer_descs = Vec::new();
        for layer in layers {
            let d = self.push_blob(repo, layer).await;
            layer_descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(),
                "size": layer.len(),
            }));
        }
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layer_descs,
        }))
        .unwrap()
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Asserts an OCI error response and returns its body.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(
        resp.status(),
        status,
        "unexpected status for expected {code}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    body
}

pub fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
