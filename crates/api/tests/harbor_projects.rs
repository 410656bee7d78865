//! Harbor's REST API: ping, health, systeminfo, the current user, and projects.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

async fn harbor_error(resp: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn ping_health_systeminfo_and_current_user() {
    let (_d, s) = server().await;
    let resp = s.anon.get(s.url("/api/v2.0/ping")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "Pong");
    let health: Value = s.anon.get(s.url("/api/v2.0/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert!(
        health["components"].as_array().unwrap().iter().any(|c| c["name"] == "database" && c["status"] == "healthy")
    );

    let anon: Value = s.anon.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(anon["auth_mode"], "db_auth");
    assert!(anon.get("external_url").is_none(), "anonymous callers see the short form");
    let full: Value = s.client.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(full["project_creation_restriction"], "everyone");
    assert_eq!(full["external_url"], s.base);

    let me: Value = s.client.get(s.url("/api/v2.0/users/current")).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["username"].as_str(), me["sysadmin_flag"].as_bool()), (Some("admin"), Some(true)));
    assert!(me.get("password").is_none() && !me.to_string().contains("argon2"));
    harbor_error(
        s.anon.get(s.url("/api/v2.0/users/current")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let wrong = client_as("admin", "Wrong12345");
    harbor_error(
        wrong.get(s.url("/api/v2.0/projects")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn project_lifecycle() {
    let (_d, s) = server().await;
    let alice = s.user("alice").await;
    let resp = alice
        .post(s.url("/api/v2.0/projects"))
        .json(&json!({"project_name": "team", "metadata": {"public": "false", "auto_scan": "true"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    // By id, by name, by name with X-Is-Resource-Name.
    for (path, by_name) in [
        (format!("/api/v2.0/projects/{id}"), false),
        ("/api/v2.0/projects/team".into(), false),
        (format!("/api/v2.0/projects/{id}"), true),
    ] {
        let mut req = alice.get(s.url(&path));
        if by_name {
            req = req.header("x-is-resource-name", "true");
        }
        let resp = req.send().await.unwrap();
        if by_name {
            // A project named like the number does not exist.
            harbor_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
            continue;
        }
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["name"], "team");
        assert_eq!(p["project_id"], id);
        assert_eq!(p["owner_name"], "alice");
        assert_eq!(p["current_user_role_id"], 1);
        assert_eq!(p["metadata"], json!({"auto_scan": "true", "public": "false"}));
        assert_eq!(p["repo_count"], 0);
        assert!(p["creation_time"].as_str().unwrap().ends_with('Z'));
    }

    // Existence, for anyone.
    assert_eq!(
        s.anon.head(s.url("/api/v2.0/projects?project_name=team")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        s.anon.head(s.url("/api/v2.0/projects?project_name=nope")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Conflicts and bad input change nothing.
    let dup = alice.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "team"})).send().await.unwrap();
    harbor_error(dup, StatusCode::CONFLICT, "CONFLICT").await;
    for bad in [
        json!({"project_name": "Bad Name"}),
        json!({"project_name": "ok", "metadata": {"public": "maybe"}}),
        json!({"nope": 1}),
    ] {
        let resp = alice.post(s.url("/api/v2.0/projects")).json(&bad).send().await.unwrap();
        harbor_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    assert_eq!(
        s.anon.head(s.url("/api/v2.0/projects?project_name=ok")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let resp = s.anon.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "anon"})).send().await.unwrap();
    harbor_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Private: others cannot read it; the owner can make it public.
    let bob = s.user("bob").await;
    harbor_error(bob.get(s.url("/api/v2.0/projects/team")).send().await.unwrap(), StatusCode::FORBIDDEN, "FORBIDDEN")
        .await;
    harbor_error(
        s.anon.get(s.url("/api/v2.0/projects/team")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let resp =
        bob.put(s.url("/api/v2.0/projects/team")).json(&json!({"metadata": {"public": "true"}})).send().await.unwrap();
    harbor_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = alice
        .put(s.url("/api/v2.0/projects/team"))
        .json(&json!({"metadata": {"public": "true"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let p: Value = bob.get(s.url("/api/v2.0/projects/team")).send().await.unwrap().json().await.unwrap();
    assert_eq!(p["metadata"]["public"], "true");
    assert_eq!(p["current_user_role_id"], 0);
    // Reading a public project does not let a stranger delete it.
    harbor_error(
        bob.delete(s.url("/api/v2.0/projects/team")).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    // Only an empty project can be deleted; _deletable says so beforehand.
    let d: Value = alice.get(s.url("/api/v2.0/projects/team/_deletable")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["deletable"], true);
    s.push_image("team/app", "v1", &[b"layer"]).await;
    let d: Value = alice.get(s.url("/api/v2.0/projects/team/_deletable")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["deletable"], false);
    assert!(d["message"].as_str().unwrap().contains("1 repositories"));
    let sum: Value = alice.get(s.url("/api/v2.0/projects/team/summary")).send().await.unwrap().json().await.unwrap();
    assert_eq!((sum["repo_count"].as_i64(), sum["project_admin_count"].as_i64()), (Some(1), Some(1)));
    assert_eq!(
        bob.get(s.url("/api/v2.0/projects/team/_deletable")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    harbor_error(
        alice.delete(s.url("/api/v2.0/projects/team")).send().await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION",
    )
    .await;
    let resp = alice.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "scratch"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(alice.delete(s.url("/api/v2.0/projects/scratch")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        s.anon.head(s.url("/api/v2.0/projects?project_name=scratch")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn keys_of_a_project_request_are_taken_or_refused_never_ignored() {
    let (_d, s) = server().await;
    for body in [
        json!({"project_name": "p1", "registry_id": 1}),
        json!({"project_name": "p1", "cve_allowlist": {"items": [{"cve_id": "CVE-2024-1"}, {"cve_id": "CVE-2024-1"}]}}),
        json!({"project_name": "p1", "cve_allowlist": {"items": [{"cve_id": " "}]}}),
        json!({"project_name": "p1", "cve_allowlist": {"items": [], "expires": 1}}),
        json!({"project_name": "p1", "count_limit": 10}),
    ] {
        let resp = s.client.post(s.url("/api/v2.0/projects")).json(&body).send().await.unwrap();
        harbor_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let resp = s.client.head(s.url("/api/v2.0/projects?project_name=p1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "a refused request made no project");
    // What Harbor's clients send when they set none of them.
    let body =
        json!({"project_name": "p1", "registry_id": null, "cve_allowlist": {"items": []}, "storage_limit": null});
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // An allowlist given at creation is the project's, from its first moment.
    let body = json!({"project_name": "p2", "cve_allowlist": {"items": [{"cve_id": "GHSA-aaaa-bbbb-cccc"}], "expires_at": 2000000000}});
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let p2: serde_json::Value =
        s.client.get(s.url("/api/v2.0/projects/p2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(p2["cve_allowlist"]["items"], json!([{"cve_id": "GHSA-aaaa-bbbb-cccc"}]), "{p2}");
    assert_eq!(p2["cve_allowlist"]["expires_at"], 2000000000);
    let listed: serde_json::Value =
        s.client.get(s.url("/api/v2.0/projects?name=p2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["cve_allowlist"], p2["cve_allowlist"]);
}

#[tokio::test]
async fn project_creation_can_be_restricted_to_admins() {
    let (_d, s) = server().await;
    s.configure(json!({"project_creation_restriction": "adminonly"})).await;
    let alice = s.user("alice").await;
    let resp = alice.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "mine"})).send().await.unwrap();
    harbor_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "mine"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn listing_pages_and_filters_what_each_caller_sees() {
    let (_d, s) = server().await;
    for i in 0..12 {
        let public = if i % 3 == 0 { "true" } else { "false" };
        let resp = s
            .client
            .post(s.url("/api/v2.0/projects"))
            .header("x-resource-name-in-location", "true")
            .json(&json!({"project_name": format!("p{i:02}"), "metadata": {"public": public}}))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&resp, "location"), format!("/api/v2.0/projects/p{i:02}"));
    }
    // Admin: 12 new + library + t, open, secret = 16.
    let resp = s.client.get(s.url("/api/v2.0/projects?page=2&page_size=5")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "16");
    let link = header(&resp, "link").to_string();
    assert!(link.contains("rel=\"prev\"") && link.contains("page=3&page_size=5>; rel=\"next\""), "{link}");
    let page: Vec<Value> = resp.json().await.unwrap();
    // By name: library, open, p00, p01, p02 | p03 ... p07 | ...
    assert_eq!(
        page.iter().map(|p| p["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["p03", "p04", "p05", "p06", "p07"]
    );

    // Anonymous: public ones only (p00, p03, p06, p09 and library).
    let resp = s.anon.get(s.url("/api/v2.0/projects?page_size=100")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "5");
    let resp = s.client.get(s.url("/api/v2.0/projects?name=p0&public=false")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "6");
    for bad in ["page=0", "page_size=101", "page_size=x", "public=maybe"] {
        let resp = s.client.get(s.url(&format!("/api/v2.0/projects?{bad}"))).send().await.unwrap();
        harbor_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
}

#[tokio::test]
async fn probes_report_each_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let resp = s.anon.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let names: Vec<_> = ready["components"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("database"), json!("storage")]);

    if s.registry.storage_provider() != "filesystem" {
        // Object storage failing is shown by the store's and the binary's tests.
        return;
    }
    // Storage gone: unready, and Harbor's health says which component; liveness does not care.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let resp = s.anon.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    let storage = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap().clone();
    assert_eq!(storage["status"], "unhealthy");
    assert!(storage["error"].is_string());
    let health: Value = s.anon.get(s.url("/api/v2.0/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(s.anon.get(s.url("/livez")).send().await.unwrap().status(), StatusCode::OK);

    // The database closed as well: both reported.
    s.db.close().await;
    let body: Value = s.anon.get(s.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert!(body["components"].as_array().unwrap().iter().all(|c| c["status"] == "unhealthy"), "{body}");
}
