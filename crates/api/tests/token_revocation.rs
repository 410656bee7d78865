//! Finding 6 of the hardening issue: a bearer token kept working for its whole lifetime after
//! the grant it rested on was revoked. Each case: a token that pulls, a change through
//! Harbor's API, and the same token refused at once (the client then asks for a new one,
//! which says what the caller may do now).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

/// A pull token for `repo` from the token service, as `client` authenticates.
async fn token(s: &TestServer, client: &reqwest::Client, repo: &str) -> String {
    let url = s.url(&format!("/service/token?service=harbor-registry&scope=repository:{repo}:pull"));
    let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn pull(s: &TestServer, token: &str, repo: &str) -> StatusCode {
    let c = http_builder().build().unwrap();
    c.get(s.url(&format!("/v2/{repo}/manifests/v1"))).bearer_auth(token).send().await.unwrap().status()
}

async fn ok(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_removed_member_and_a_changed_password_end_their_tokens() {
    let (_d, s) = server().await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let dev = s.member("t", "dev", 3).await;
    let t = token(&s, &dev, "t/app").await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK);
    let members = ok(s.client.get(s.url("/api/v2.0/projects/t/members")).send().await.unwrap()).await;
    let mid = members.as_array().unwrap().iter().find(|m| m["entity_name"] == "dev").unwrap()["id"].as_i64().unwrap();
    ok(s.client.delete(s.url(&format!("/api/v2.0/projects/t/members/{mid}"))).send().await.unwrap()).await;
    // Still signed in, no longer a member: denied, not asked to sign in again.
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::FORBIDDEN, "a removed member's token");

    let ops = s.member("t", "ops", 3).await;
    let t = token(&s, &ops, "t/app").await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK);
    let id = s.db.user_by_name("ops").await.unwrap().unwrap().id;
    let body = json!({"new_password": "Another123"});
    ok(s.client.put(s.url(&format!("/api/v2.0/users/{id}/password"))).json(&body).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "a token of the old password");
}

#[tokio::test]
async fn a_deleted_user_recreated_under_the_same_name_does_not_inherit_tokens() {
    let (_d, s) = server().await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let admin_token = token(&s, &s.client, "t/app").await;
    let body = json!({"username": "eve", "email": "eve@example.com", "realname": "Eve", "password": "Passw0rdX1"});
    ok(s.client.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap()).await;
    let id = s.db.user_by_name("eve").await.unwrap().unwrap().id;
    ok(s.client
        .put(s.url(&format!("/api/v2.0/users/{id}/sysadmin")))
        .json(&json!({"sysadmin_flag": true}))
        .send()
        .await
        .unwrap())
    .await;
    let eve = client_as("eve", "Passw0rdX1");
    let t = token(&s, &eve, "t/app").await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK);
    ok(s.client.delete(s.url(&format!("/api/v2.0/users/{id}"))).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "a deleted user's token");
    ok(s.client.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "the token of a name re-created");
    assert_eq!(pull(&s, &admin_token, "t/app").await, StatusCode::OK, "others' tokens go on");
}

#[tokio::test]
async fn a_project_made_private_or_recreated_ends_its_tokens() {
    let (_d, s) = server().await;
    s.push_image("open/app", "v1", &[b"layer"]).await;
    let body = json!({"metadata": {"public": "true"}});
    ok(s.client.put(s.url("/api/v2.0/projects/open")).json(&body).send().await.unwrap()).await;
    let anonymous = http_builder().build().unwrap();
    let t = token(&s, &anonymous, "open/app").await;
    assert_eq!(pull(&s, &t, "open/app").await, StatusCode::OK);
    let body = json!({"metadata": {"public": "false"}});
    ok(s.client.put(s.url("/api/v2.0/projects/open")).json(&body).send().await.unwrap()).await;
    assert_eq!(
        pull(&s, &t, "open/app").await,
        StatusCode::UNAUTHORIZED,
        "an anonymous token of a project made private"
    );

    // Deleted and re-created under the same name, the project is another one.
    let t = token(&s, &s.client, "open/app").await;
    assert_eq!(pull(&s, &t, "open/app").await, StatusCode::OK);
    ok(s.client.delete(s.url("/api/v2.0/projects/open/repositories/app")).send().await.unwrap()).await;
    ok(s.client.delete(s.url("/api/v2.0/projects/open")).send().await.unwrap()).await;
    let body = json!({"project_name": "open"});
    assert_eq!(
        s.client.post(s.url("/api/v2.0/projects")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    s.push_image("open/app", "v1", &[b"layer"]).await;
    assert_eq!(pull(&s, &t, "open/app").await, StatusCode::UNAUTHORIZED, "a token of the project deleted");
    let fresh = token(&s, &s.client, "open/app").await;
    assert_eq!(pull(&s, &fresh, "open/app").await, StatusCode::OK);
}

#[tokio::test]
async fn a_robot_disabled_rekeyed_or_deleted_ends_its_tokens() {
    let (_d, s) = server().await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let body = json!({
        "name": "ci", "level": "project", "duration": -1, "description": "ci",
        "permissions": [{"kind": "project", "namespace": "t", "access": [{"resource": "repository", "action": "pull"}]}],
    });
    let created = ok(s.client.post(s.url("/api/v2.0/robots")).json(&body).send().await.unwrap()).await;
    let (id, name) = (created["id"].as_i64().unwrap(), created["name"].as_str().unwrap().to_string());
    let robot = client_as(&name, created["secret"].as_str().unwrap());
    let t = token(&s, &robot, "t/app").await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK);
    let mut disabled = body.clone();
    disabled["disable"] = json!(true);
    ok(s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&disabled).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "a disabled robot's token");
    ok(s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&body).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK, "enabled again by its administrator");

    let rekeyed = json!({"secret": "Fresh12345Secret"});
    ok(s.client.patch(s.url(&format!("/api/v2.0/robots/{id}"))).json(&rekeyed).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "a token of the old secret");

    let robot = client_as(&name, "Fresh12345Secret");
    let t = token(&s, &robot, "t/app").await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::OK);
    ok(s.client.delete(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap()).await;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED, "a deleted robot's token");
}

/// A token whose claim of what it was issued against is not its subject's (here: made with
/// our key by other software, naming no id) is refused.
#[tokio::test]
async fn a_token_that_does_not_say_what_it_rests_on_is_refused() {
    let (dir, s) = server().await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let issuer =
        berth_auth::token::TokenIssuer::from_pem(&token_key(dir.path()), std::time::Duration::from_secs(60)).unwrap();
    let access = vec![berth_auth::token::AccessEntry {
        kind: "repository".into(),
        name: "t/app".into(),
        actions: vec!["pull".into()],
    }];
    let t = issuer.issue("admin", access, Default::default()).unwrap().token;
    assert_eq!(pull(&s, &t, "t/app").await, StatusCode::UNAUTHORIZED);
}
