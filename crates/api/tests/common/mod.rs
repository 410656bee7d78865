//! A registry served in process on a loopback port, over a temporary data directory.
#![allow(dead_code)] // each test file uses a different part of the helpers

use std::path::Path;
use std::sync::Arc;

use berth_api::ApiOptions;
use berth_api::access::Authorizer;
use berth_api::auth::HarborAuth;
use berth_api::harbor::HarborApi;
use berth_auth::token::{TokenIssuer, generate_key_pem};
use berth_core::Registry;
use berth_core::identity::Identities;
use berth_core::projects::Projects;
use berth_db::Db;
use berth_oci::Digest;
use berth_store::{BlobStore, CloudStore, FsStore, S3Options};
use reqwest::{Response, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The administrator's password in every test server.
pub const ADMIN_PASSWORD: &str = "Harbor12345";
/// Projects every test server has besides `library`: `t` (private, for most tests), `open` and
/// `secret` (for policy tests).
pub const PROJECTS: [&str; 3] = ["t", "open", "secret"];
/// The job service's lease in tests: a pool beats every third of it.
pub const JOB_LEASE: std::time::Duration = std::time::Duration::from_secs(3);

pub struct TestServer {
    pub base: String,
    /// Sends the administrator's Basic credentials with every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anon: reqwest::Client,
    pub db: Db,
    /// For what tests must drive by hand, such as flushing pull statistics.
    pub registry: Arc<Registry>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The job service's pool of runners.
    jobs: Option<berth_jobs::JobPool>,
}

impl TestServer {
    /// A server with Harbor's authentication and authorization.
    pub async fn start(dir: &Path) -> TestServer {
        TestServer::start_with_options(dir, None, &ApiOptions::default()).await
    }

    /// A server whose `/v2` decisions come from `authorizer`.
    pub async fn start_with(dir: &Path, authorizer: Arc<dyn Authorizer>) -> TestServer {
        TestServer::start_with_options(dir, Some(authorizer), &ApiOptions::default()).await
    }

    pub async fn start_with_options(
        dir: &Path,
        authorizer: Option<Arc<dyn Authorizer>>,
        options: &ApiOptions,
    ) -> TestServer {
        let db = open_db(dir).await;
        let identities = Identities::new(db.clone());
        identities.bootstrap(Some(ADMIN_PASSWORD)).await.unwrap();
        let admin = db.user_by_name("admin").await.unwrap().unwrap().id;
        for project in PROJECTS {
            if db.project_by_name(project).await.unwrap().is_none() {
                db.create_project(project, admin, &[("public", "false")]).await.unwrap();
            }
        }
        // The key persists in the data directory, as the binary's does, so tokens outlive a
        // restart of the test server.
        let tokens = Arc::new(TokenIssuer::from_pem(&token_key(dir), std::time::Duration::from_secs(1800)).unwrap());
        let registry = Arc::new(Registry::new(db.clone(), open_store(dir)));
        registry.settings().reload().await.unwrap();
        let caches = registry.caches().clone();
        let identities = identities.with_caches(caches.clone());
        let auth = Arc::new(HarborAuth::new(identities.clone(), tokens, registry.settings().clone(), None));
        let harbor = Arc::new(HarborApi {
            auth: auth.clone(),
            registry: registry.clone(),
            identities,
            projects: Projects::new(&registry),
            users: berth_core::users::Users::new(&registry),
            robots: berth_core::robots::Robots::new(&registry),
            retention: berth_retention::Retention::new(&registry),
            ca_certificate: None,
            external_url: None,
            gc_time_window_hours: 2,
            job_lease: JOB_LEASE,
        });
        // The job service, as the binary runs it: collections and purges queued through the
        // API run.
        let mut jobs = berth_jobs::JobService::new(
            db.clone(),
            berth_jobs::JobSettings {
                poll: std::time::Duration::from_millis(50),
                lease: JOB_LEASE,
                ..Default::default()
            },
        );
        jobs.refuse_changes_while(registry.settings().read_only_gate());
        jobs.register(Arc::new(berth_gc::GarbageCollector::new(registry.clone(), 2)));
        jobs.register(Arc::new(berth_core::purge::PurgeAuditWorker::new(db.clone())));
        jobs.register(Arc::new(berth_retention::RetentionWorker::new(registry.clone())));
        jobs.register(Arc::new(berth_core::maintenance::Housekeeping::new(registry.clone(), Default::default())));
        let jobs = Some(Arc::new(jobs).start(2).await.unwrap());
        let authorizer: Arc<dyn Authorizer> = authorizer.unwrap_or_else(|| auth.clone());
        let app = berth_api::router(registry.clone(), authorizer, Some(auth), Some(harbor), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_api::serve(listener, app, berth_api::ServerLimits::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let client = client_as("admin", ADMIN_PASSWORD);
        let anon = http_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestServer { base, client, anon, db, registry, stop: Some(stop), task: Some(task), jobs }
    }

    /// Waits until the job execution at `path` (an API path answering Harbor's `ExecHistory`)
    /// has ended; its body.
    pub async fn wait_ended(&self, path: &str) -> serde_json::Value {
        for _ in 0..400 {
            let v: serde_json::Value = self.client.get(self.url(path)).send().await.unwrap().json().await.unwrap();
            if ["Success", "Error", "Stopped"].contains(&v["job_status"].as_str().unwrap_or_default()) {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the execution at {path} did not end");
    }

    /// Waits until execution `eid` of retention policy `policy` has ended; its status.
    pub async fn wait_ended_retention(&self, policy: i64, eid: i64) -> String {
        let url = self.url(&format!("/api/v2.0/retentions/{policy}/executions"));
        for _ in 0..400 {
            let list: serde_json::Value = self.client.get(&url).send().await.unwrap().json().await.unwrap();
            let status = list.as_array().and_then(|l| l.iter().find(|e| e["id"] == eid)).map(|e| e["status"].clone());
            if let Some(status) = status.as_ref().and_then(|s| s.as_str())
                && ["Success", "Error", "Stopped"].contains(&status)
            {
                return status.to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("retention execution {eid} did not end");
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(jobs) = self.jobs.take() {
            jobs.stop().await;
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.db.close().await;
    }

    /// Creates a local user with password `Passw0rdX` and returns a client signed in as them.
    pub async fn user(&self, name: &str) -> reqwest::Client {
        let hash = berth_auth::password::hash("Passw0rdX").unwrap();
        let user = berth_db::NewUser {
            username: name,
            email: None,
            realname: "",
            comment: "",
            password_hash: &hash,
            sysadmin: false,
        };
        self.db.create_user(&user).await.unwrap();
        client_as(name, "Passw0rdX")
    }

    /// Creates a user with password `Passw0rdX`, makes them a member of `project` with `role`
    /// (Harbor's role id), and returns a client signed in as them. Set up in the database, so
    /// that it works whatever state the API is in (a locked administrator, say).
    pub async fn member(&self, project: &str, name: &str, role: i64) -> reqwest::Client {
        let client = self.user(name).await;
        let user = self.db.user_by_name(name).await.unwrap().unwrap().id;
        let project = self.db.project_by_name(project).await.unwrap().unwrap().id;
        self.db.add_member(project, "u", user, role).await.unwrap();
        client
    }

    /// Changes the system configuration as the administrator (`PUT /configurations`).
    pub async fn configure(&self, changes: serde_json::Value) {
        let resp = self.client.put(self.url("/api/v2.0/configurations")).json(&changes).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{changes}: {}", resp.text().await.unwrap_or_default());
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
        assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
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
        assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
        (Digest::sha256_of(&body), body)
    }

    /// Pushes the config and layers, and returns a manifest naming them (not yet pushed).
    pub async fn image_manifest(&self, repo: &str, layers: &[&[u8]]) -> Vec<u8> {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
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

/// The test server's database: SQLite in `dir`, or, when `BERTH_TEST_DATABASE` is `postgres`,
/// a database of its own on the server at `BERTH_TEST_POSTGRES_URL`, remembered in `dir` so
/// that a restarted server finds the same one.
pub async fn open_db(dir: &Path) -> Db {
    if std::env::var("BERTH_TEST_DATABASE").as_deref() != Ok("postgres") {
        return Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    }
    let remembered = dir.join("postgres-url");
    let url = match std::fs::read_to_string(&remembered) {
        Ok(url) => url,
        Err(_) => {
            let admin = std::env::var("BERTH_TEST_POSTGRES_URL")
                .expect("BERTH_TEST_DATABASE=postgres needs BERTH_TEST_POSTGRES_URL");
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let name = format!("berth_test_{}_{nanos}", std::process::id());
            let url = berth_db::create_postgres_database(&admin, &name).await.unwrap();
            std::fs::write(&remembered, &url).unwrap();
            url
        }
    };
    Db::connect(&url, 8).await.unwrap()
}

/// Blob storage: the directory, or with `BERTH_TEST_STORAGE=s3` a fresh key prefix (remembered
/// in the directory, so a restarted server finds its blobs) in the bucket `berth-test` of the
/// S3-compatible server at `BERTH_TEST_S3_URL`.
pub fn open_store(dir: &Path) -> Arc<dyn BlobStore> {
    if std::env::var("BERTH_TEST_STORAGE").as_deref() != Ok("s3") {
        return Arc::new(FsStore::open(dir).unwrap());
    }
    let remembered = dir.join("s3-root");
    let root = std::fs::read_to_string(&remembered).unwrap_or_else(|_| {
        let root = format!("api-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(&remembered, &root).unwrap();
        root
    });
    let endpoint = std::env::var("BERTH_TEST_S3_URL").expect("BERTH_TEST_STORAGE=s3 needs BERTH_TEST_S3_URL");
    Arc::new(
        CloudStore::s3(&S3Options {
            bucket: "berth-test".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint),
            path_style: true,
            access_key: Some("berth-test".into()),
            secret_key: Some("berth-test-secret".into()),
            session_token: None,
            proxy: Default::default(),
            ca_pem: None,
            root,
        })
        .unwrap(),
    )
}

/// An HTTP client builder (with TLS support, which needs the process's crypto provider first).
pub fn http_builder() -> reqwest::ClientBuilder {
    berth_store::install_tls_provider();
    reqwest::Client::builder()
}

/// A client that sends Basic credentials with every request.
pub fn client_as(user: &str, password: &str) -> reqwest::Client {
    use base64::Engine as _;
    let mut headers = reqwest::header::HeaderMap::new();
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    headers.insert("authorization", format!("Basic {creds}").parse().unwrap());
    http_builder().redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap()
}

/// The token signing key of the test server in `dir` (made on first use).
pub fn token_key(dir: &Path) -> String {
    let path = dir.join("token-key.pem");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        let pem = generate_key_pem().unwrap();
        std::fs::write(&path, &pem).unwrap();
        pem
    })
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Asserts an OCI error response and returns its body.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(resp.status(), status, "unexpected status for expected {code}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    body
}

pub fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}
