//! Harbor's user API: creation, listing and search, profiles, passwords, administrator flag,
//! deletion, and who may do each.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

async fn code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["errors"][0]["code"].as_str().unwrap_or("").to_string())
}

/// Creates a user through the API as the administrator; returns its id.
async fn create(s: &TestServer, name: &str, password: &str) -> i64 {
    let resp = s
        .client
        .post(s.url("/api/v2.0/users"))
        .json(
            &json!({"username": name, "password": password, "email": format!("{name}@example.com"), "realname": name}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn creating_users_checks_every_field_and_who_asks() {
    let (_d, s) = server().await;
    let alice = create(&s, "alice", "Alice12345").await;
    assert!(alice > 1);
    for (body, want) in [
        (json!({"username": "alice", "password": "Other12345"}), (StatusCode::CONFLICT, "CONFLICT")),
        (json!({"username": "bob", "password": "weak"}), (StatusCode::BAD_REQUEST, "BAD_REQUEST")),
        (json!({"username": "b#b", "password": "Strong12345"}), (StatusCode::BAD_REQUEST, "BAD_REQUEST")),
        (
            json!({"username": "bob", "password": "Strong12345", "email": "not-an-email"}),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        ),
        (
            json!({"username": "bob", "password": "Strong12345", "email": "alice@example.com"}),
            (StatusCode::CONFLICT, "CONFLICT"),
        ),
    ] {
        let got = code(s.client.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap()).await;
        assert_eq!((got.0, got.1.as_str()), want, "{body}");
    }
    // Nothing of the refused requests was created.
    let (status, _) = code(s.client.get(s.url("/api/v2.0/users/search?username=bob")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let found: Vec<Value> =
        s.client.get(s.url("/api/v2.0/users/search?username=bob")).send().await.unwrap().json().await.unwrap();
    assert!(found.is_empty());

    let as_alice = client_as("alice", "Alice12345");
    let body = json!({"username": "carol", "password": "Carol12345"});
    assert_eq!(
        code(as_alice.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        code(s.anon.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
    // With self-registration on, anyone may sign up.
    s.configure(json!({"self_registration": true})).await;
    assert_eq!(s.anon.post(s.url("/api/v2.0/users")).json(&body).send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(
        client_as("carol", "Carol12345").get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn listing_is_for_administrators_and_search_for_everyone() {
    let (_d, s) = server().await;
    for name in ["alice", "alan", "bob"] {
        create(&s, name, "Passw0rdX").await;
    }
    let resp = s.client.get(s.url("/api/v2.0/users?page_size=2")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "4");
    assert!(header(&resp, "link").contains("rel=\"next\""));
    let resp = s.client.get(s.url("/api/v2.0/users?q=username%3D~al")).send().await.unwrap();
    let users: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(users.iter().map(|u| u["username"].as_str().unwrap()).collect::<Vec<_>>(), ["alice", "alan"]);
    assert!(users.iter().all(|u| u.get("password").is_none() && !u.to_string().contains("argon2")));
    let resp = s.client.get(s.url("/api/v2.0/users?q=password%3Dx")).send().await.unwrap();
    assert_eq!(code(resp).await, (StatusCode::BAD_REQUEST, "BAD_REQUEST".into()));

    let bob = client_as("bob", "Passw0rdX");
    assert_eq!(code(bob.get(s.url("/api/v2.0/users")).send().await.unwrap()).await.0, StatusCode::FORBIDDEN);
    let found: Vec<Value> =
        bob.get(s.url("/api/v2.0/users/search?username=ala")).send().await.unwrap().json().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["username"], "alan");
    assert!(found[0].get("email").is_none(), "search shows only id and name");
    assert_eq!(
        code(s.anon.get(s.url("/api/v2.0/users/search?username=a")).send().await.unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn profiles_passwords_and_the_administrator_flag() {
    let (_d, s) = server().await;
    let alice = create(&s, "alice", "Alice12345").await;
    let bob = create(&s, "bob", "Bob1234567").await;
    let as_alice = client_as("alice", "Alice12345");

    let me: Value =
        as_alice.get(s.url(&format!("/api/v2.0/users/{alice}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(
        code(as_alice.get(s.url(&format!("/api/v2.0/users/{bob}"))).send().await.unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(code(s.client.get(s.url("/api/v2.0/users/9999")).send().await.unwrap()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(code(s.client.get(s.url("/api/v2.0/users/abc")).send().await.unwrap()).await.0, StatusCode::BAD_REQUEST);

    let resp = as_alice
        .put(s.url(&format!("/api/v2.0/users/{alice}")))
        .json(&json!({"email": "alice@corp.example", "realname": "Alice A.", "comment": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = as_alice.get(s.url("/api/v2.0/users/current")).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["email"].as_str(), me["realname"].as_str()), (Some("alice@corp.example"), Some("Alice A.")));

    // Passwords: the old one is required of the user; the policy applies.
    let url = s.url(&format!("/api/v2.0/users/{alice}/password"));
    let wrong = as_alice
        .put(&url)
        .json(&json!({"old_password": "Nope12345", "new_password": "Newer12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(wrong).await.0, StatusCode::FORBIDDEN);
    let weak =
        as_alice.put(&url).json(&json!({"old_password": "Alice12345", "new_password": "weak"})).send().await.unwrap();
    assert_eq!(code(weak).await.0, StatusCode::BAD_REQUEST);
    let ok = as_alice
        .put(&url)
        .json(&json!({"old_password": "Alice12345", "new_password": "Newer12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(as_alice.get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let as_alice = client_as("alice", "Newer12345");
    assert_eq!(as_alice.get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(), StatusCode::OK);
    // An administrator resets another user's password without the old one.
    let reset = s
        .client
        .put(s.url(&format!("/api/v2.0/users/{bob}/password")))
        .json(&json!({"new_password": "Reset12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(
        client_as("bob", "Reset12345").get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // The administrator flag.
    let flag = |id: i64, v: bool| {
        s.client.put(s.url(&format!("/api/v2.0/users/{id}/sysadmin"))).json(&json!({"sysadmin_flag": v})).send()
    };
    assert_eq!(flag(alice, true).await.unwrap().status(), StatusCode::OK);
    assert_eq!(as_alice.get(s.url("/api/v2.0/users")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(code(flag(1, false).await.unwrap()).await.0, StatusCode::FORBIDDEN, "not one's own flag");
    let as_bob = client_as("bob", "Reset12345");
    let resp = as_bob
        .put(s.url(&format!("/api/v2.0/users/{bob}/sysadmin")))
        .json(&json!({"sysadmin_flag": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(resp).await.0, StatusCode::FORBIDDEN);

    let resp = as_bob
        .put(s.url(&format!("/api/v2.0/users/{bob}/cli_secret")))
        .json(&json!({"secret": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(resp).await, (StatusCode::PRECONDITION_FAILED, "PRECONDITION".into()));
}

#[tokio::test]
async fn deleting_users() {
    let (_d, s) = server().await;
    let bob = create(&s, "bob", "Bob1234567").await;
    let owner = create(&s, "owner", "Owner12345").await;
    let as_owner = client_as("owner", "Owner12345");
    assert_eq!(
        as_owner
            .post(s.url("/api/v2.0/projects"))
            .json(&json!({"project_name": "mine"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );

    assert_eq!(
        code(as_owner.delete(s.url(&format!("/api/v2.0/users/{bob}"))).send().await.unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(code(s.client.delete(s.url("/api/v2.0/users/1")).send().await.unwrap()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        code(s.client.delete(s.url(&format!("/api/v2.0/users/{owner}"))).send().await.unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.client.delete(s.url(&format!("/api/v2.0/users/{bob}"))).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client_as("bob", "Bob1234567").get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        code(s.client.delete(s.url(&format!("/api/v2.0/users/{bob}"))).send().await.unwrap()).await.0,
        StatusCode::NOT_FOUND
    );
}
