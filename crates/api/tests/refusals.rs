//! Input the hardening review found accepted, or half-accepted: each is refused with the
//! right status and code, and changes nothing.

mod common;

use common::*;
use reqwest::StatusCode;

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

async fn new_project(s: &TestServer, name: &str) {
    let r = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": name})).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::CREATED);
}

/// Finding 9: a refused manifest PUT created the repository and wrote the manifest's bytes;
/// the repository then blocked the project's deletion.
#[tokio::test]
async fn a_refused_manifest_stores_nothing() {
    let (dir, s) = server().await;
    new_project(&s, "fresh").await;
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": missing, "size": 2},
        "layers": [],
    }))
    .unwrap();
    let url = s.url("/v2/fresh/app/manifests/v1");
    let resp = s.client.put(&url).header("content-type", OCI_MANIFEST).body(manifest.clone()).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let resp = s.client.put(&url).header("content-type", "application/json").body(manifest.clone()).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::BAD_REQUEST);
    let digest = berth_oci::Digest::sha256_of(&manifest);
    assert!(s.db.repository_id("fresh/app").await.unwrap().is_none(), "the repository was created");
    assert_eq!(open_store(dir.path()).stat(&digest).await.unwrap(), None, "the manifest's bytes were written");
    let resp = s.client.delete(s.url("/api/v2.0/projects/fresh")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text().await);
}

/// Finding 10: descriptor sizes were not checked against the blobs they name, nor the final
/// PUT's `Content-Range` against its body.
#[tokio::test]
async fn sizes_must_be_what_they_say() {
    let (_d, s) = server().await;
    let config: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = s.push_blob("t/app", config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(),
            "size": 99999},
        "layers": [],
    }))
    .unwrap();
    let resp = s
        .client
        .put(s.url("/v2/t/app/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    let resp = s.client.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The final chunk says 0-9, and carries 5 bytes.
    let resp = s.client.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    let body = b"12345";
    let digest = berth_oci::Digest::sha256_of(body);
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = s
        .client
        .put(format!("{}{location}{sep}digest={digest}", s.base))
        .header("content-range", "0-9")
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let resp = s.client.head(s.url(&format!("/v2/t/app/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the blob was published");
}

/// Finding 11: `page=9223372036854775807` overflowed `(page - 1) * size`.
#[tokio::test]
async fn pages_past_any_listing_are_refused_not_overflowed() {
    let (_d, s) = server().await;
    for path in [
        "/api/v2.0/projects?page=9223372036854775807&page_size=100",
        "/api/v2.0/users?page=9223372036854775807",
        "/api/v2.0/projects/t/repositories?page=92233720368547759&page_size=100",
        "/api/v2.0/auditlog-exts?page=9223372036854775807&page_size=10",
    ] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let resp = s.client.get(s.url("/api/v2.0/projects?page=2&page_size=100")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn create_user(s: &TestServer, name: &str) -> reqwest::Response {
    s.client
        .post(s.url("/api/v2.0/users"))
        .json(&serde_json::json!({"username": name, "email": format!("{}@example.com", name.len()),
            "realname": "R", "password": "Passw0rdX1"}))
        .send()
        .await
        .unwrap()
}

/// Finding 12: control characters in usernames, and `Admin` beside `admin`.
#[tokio::test]
async fn usernames_are_printable_and_unique_without_regard_to_case() {
    let (_d, s) = server().await;
    for bad in ["u\u{0}", "tab\there", "line\nbreak", "del\u{7f}", "bidi\u{202e}x"] {
        let resp = create_user(&s, bad).await;
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    for taken in ["Admin", "ADMIN"] {
        let resp = create_user(&s, taken).await;
        assert_error(resp, StatusCode::CONFLICT, "CONFLICT").await;
    }
    assert_eq!(create_user(&s, "Dora").await.status(), StatusCode::CREATED);
    assert_error(create_user(&s, "dora").await, StatusCode::CONFLICT, "CONFLICT").await;
}

/// Finding 13: `PUT /robots/{id}` refused the body `GET` returned.
#[tokio::test]
async fn a_robot_takes_back_what_it_showed() {
    let (_d, s) = server().await;
    let resp = s
        .client
        .post(s.url("/api/v2.0/robots"))
        .json(&serde_json::json!({
            "name": "ci", "duration": -1, "level": "project", "disable": false,
            "permissions": [{"kind": "project", "namespace": "t",
                "access": [{"resource": "repository", "action": "pull"}]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{:?}", resp.text().await);
    let created: serde_json::Value = resp.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    let shown: serde_json::Value =
        s.client.get(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap().json().await.unwrap();
    let mut changed = shown.clone();
    changed["description"] = serde_json::json!("changed");
    let resp = s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&changed).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text().await);
    let after: serde_json::Value =
        s.client.get(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["description"], "changed");
    assert_eq!(after["name"], shown["name"]);
    // Renaming is still refused.
    let mut renamed = shown.clone();
    renamed["name"] = serde_json::json!("robot$t+other");
    let resp = s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&renamed).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// Finding 14: the old-password check of `PUT /users/{me}/password` was neither throttled nor
/// counted, and a new password left the user's portal sessions open.
#[tokio::test]
async fn the_old_password_is_a_login_and_a_new_one_ends_sessions() {
    let (_d, s) = server().await;
    assert_eq!(create_user(&s, "dora").await.status(), StatusCode::CREATED);
    let dora = client_as("dora", "Passw0rdX1");
    let me: serde_json::Value = dora.get(s.url("/api/v2.0/users/current")).send().await.unwrap().json().await.unwrap();
    let id = me["user_id"].as_i64().unwrap();
    // A portal session.
    let login = http_builder()
        .build()
        .unwrap()
        .post(s.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("principal=dora&password=Passw0rdX1")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let sid = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("sid="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    let with_session =
        || http_builder().build().unwrap().get(s.url("/api/v2.0/users/current")).header("cookie", format!("sid={sid}"));
    assert_eq!(with_session().send().await.unwrap().status(), StatusCode::OK);
    // Guessing the old password is throttled as logins are.
    let url = s.url(&format!("/api/v2.0/users/{id}/password"));
    let mut statuses = Vec::new();
    for n in 0..7 {
        let body = serde_json::json!({"old_password": format!("Guess{n}xX1"), "new_password": "Newpass123"});
        statuses.push(dora.put(&url).json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(&statuses[..6], &[403; 6], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    let logs: serde_json::Value = s
        .client
        .get(s.url("/api/v2.0/auditlog-exts?page_size=100&q=operation%3Dlogin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = logs.as_array().unwrap().iter().filter(|l| l["resource"] == "dora" && l["operation_result"] == false);
    assert!(failed.count() >= 6, "the wrong old passwords were not counted as failed logins");
    // An administrator sets the password (no old one needed): the session ends.
    let body = serde_json::json!({"new_password": "Newpass123"});
    assert_eq!(s.client.put(&url).json(&body).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(with_session().send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// Finding 15 and 4: the realm came from the `Host` header; `/c/login` took cross-site posts;
/// the token service issued tokens of any number of scopes.
#[tokio::test]
async fn realms_logins_and_tokens_trust_nothing_the_client_writes() {
    let (_d, s) = server().await;
    let resp = http_builder().build().unwrap().get(s.url("/v2/")).header("host", "evil.example").send().await.unwrap();
    let challenge = header(&resp, "www-authenticate").to_string();
    assert!(!challenge.contains("evil.example"), "{challenge}");
    assert!(challenge.contains(&format!("realm=\"{}/service/token\"", s.base)), "{challenge}");
    let login = |origin: Option<&'static str>, fetch_site: Option<&'static str>| {
        let mut r = http_builder()
            .build()
            .unwrap()
            .post(s.url("/c/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("principal=admin&password=Harbor12345");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(f) = fetch_site {
            r = r.header("sec-fetch-site", f);
        }
        r.send()
    };
    assert_eq!(login(Some("http://evil.example"), None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(login(None, Some("cross-site")).await.unwrap().status(), StatusCode::FORBIDDEN);
    let own = Box::leak(s.base.clone().into_boxed_str());
    assert_eq!(login(Some(own), Some("same-origin")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(login(None, None).await.unwrap().status(), StatusCode::OK, "a script sends neither");
    // Scopes are bounded at issuance.
    let many: String = (0..65).map(|n| format!("&scope=repository:t/app{n}:pull")).collect();
    let resp = s.client.get(format!("{}/service/token?service=harbor-registry{many}", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
