//! What Harbor's own clients (harbor-cli, PyPI's harborapi) send and expect, beyond the
//! swagger: unpaged lookups, `q` encoded twice, the empty group beside a member user, the
//! systeminfo fields they read, and error bodies for paths Berth does not serve.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

#[tokio::test]
async fn page_size_zero_lists_everything_unpaged() {
    let (_d, s) = server().await;
    for i in 0..15 {
        s.user(&format!("user{i:02}")).await;
    }
    // harbor-cli's name-to-id lookups: `page=0&page_size=0`.
    for query in ["page=0&page_size=0", "page_size=0", "page=3&page_size=0"] {
        let resp = s.client.get(s.url(&format!("/api/v2.0/users?{query}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{query}");
        assert_eq!(header(&resp, "x-total-count"), "16", "{query}");
        assert!(resp.headers().get("link").is_none(), "{query}: one page has no neighbours");
        let users: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(users.len(), 16, "{query}");
    }
    // A page size past Harbor's maximum, or negative, is still refused; so is page 0 of a paged list.
    for bad in ["page_size=101", "page_size=-1", "page=0&page_size=10"] {
        let resp = s.client.get(s.url(&format!("/api/v2.0/projects?{bad}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn q_is_decoded_twice_as_harbor_does() {
    let (_d, s) = server().await;
    let body = json!({"name": "ci", "level": "system", "duration": -1, "permissions": [
        {"kind": "project", "namespace": "t", "access": [{"resource": "repository", "action": "pull"}]}]});
    let resp = s.client.post(s.url("/api/v2.0/robots")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // harbor-cli sends `q=Level%253Dsystem`; the first decoding leaves `Level%3Dsystem`.
    for q in ["Level%253Dsystem", "Level%3Dsystem"] {
        let resp = s.client.get(s.url(&format!("/api/v2.0/robots?q={q}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
        let robots: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(robots.len(), 1, "{q}");
    }
    s.push_image("t/app", "v1", &[b"a"]).await;
    // A `+` encoded once is a `+` (media types carry them).
    let media = "media_type%3Dapplication%2Fvnd.oci.image.manifest.v1%2Bjson";
    let resp = s.client.get(s.url(&format!("/api/v2.0/projects/t/artifacts?q={media}"))).send().await.unwrap();
    let artifacts: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(artifacts.len(), 1);
}

#[tokio::test]
async fn an_empty_member_group_beside_a_user_is_ignored() {
    let (_d, s) = server().await;
    s.user("dev").await;
    let body = json!({"role_id": 2, "member_user": {"username": "dev"}, "member_group": {}});
    let resp = s.client.post(s.url("/api/v2.0/projects/t/members")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let members: Vec<Value> =
        s.client.get(s.url("/api/v2.0/projects/t/members?entityname=dev")).send().await.unwrap().json().await.unwrap();
    assert_eq!(members[0]["role_id"], 2);
    // A group that names one is refused: there are no user groups yet.
    let body = json!({"role_id": 2, "member_group": {"group_name": "ops"}});
    let resp = s.client.post(s.url("/api/v2.0/projects/t/members")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = json!({"role_id": 2, "member_group": {}});
    let resp = s.client.post(s.url("/api/v2.0/projects/t/members")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "neither a user nor a group");
}

#[tokio::test]
async fn systeminfo_shows_what_each_caller_may_see() {
    let (_d, s) = server().await;
    let anon: Value = s.anon.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(anon["banner_message"], "");
    assert_eq!(anon["oidc_provider_name"], "");
    for hidden in ["harbor_version", "current_time", "external_url", "registry_url"] {
        assert!(anon.get(hidden).is_none(), "{hidden} is for signed-in callers: {anon}");
    }
    let full: Value = s.client.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert!(full["harbor_version"].as_str().unwrap().starts_with("v2."));
    assert!(full["current_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(full["banner_message"], "");
}

#[tokio::test]
async fn paths_not_served_answer_harbors_error_body() {
    let (_d, s) = server().await;
    for path in ["/api/v2.0/replication/policies", "/api/v2.0/nonsense", "/api/v2.0/projects/t/webhook/policies"] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "NOT_FOUND", "{path}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(path), "{body}");
    }
}

#[tokio::test]
async fn robots_are_decided_by_their_own_permissions_on_the_rest_api() {
    let (_d, s) = server().await;
    s.push_image("t/app", "v1", &[b"a"]).await;
    let robot = |name: &str, access: &[(&str, &str)]| {
        let access: Vec<Value> = access.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect();
        json!({"name": name, "level": "project", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "t", "access": access}]})
    };
    let create = |body: Value| {
        let (client, url) = (s.client.clone(), s.url("/api/v2.0/robots"));
        async move {
            let created: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
            client_as(created["name"].as_str().unwrap(), created["secret"].as_str().unwrap())
        }
    };
    // `t` is private: what harbor-cli's robot lists and reads with.
    let reader = create(robot(
        "reader",
        &[("repository", "list"), ("repository", "read"), ("artifact", "list"), ("artifact", "read")],
    ))
    .await;
    let resp = reader.get(s.url("/api/v2.0/projects/t/repositories")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let repos: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(repos.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["t/app"]);
    let resp = reader.get(s.url("/api/v2.0/projects/t/repositories/app/artifacts")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = reader.get(s.url("/api/v2.0/projects/t/repositories/app/artifacts/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // What it was not given, it may not do.
    let resp = reader.delete(s.url("/api/v2.0/projects/t/repositories/app/artifacts/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A robot that may only pull sees no listing, as in Harbor.
    let puller = create(robot("puller", &[("repository", "pull")])).await;
    let resp = puller.get(s.url("/api/v2.0/projects/t/repositories")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
