//! Harbor's member API, and its effect on the registry: a role given through the API is what
//! `/v2` enforces.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["errors"][0]["code"].as_str().unwrap_or("").to_string())
}

async fn create_user(s: &TestServer, name: &str) -> (i64, reqwest::Client) {
    let resp = s
        .client
        .post(s.url("/api/v2.0/users"))
        .json(&json!({"username": name, "password": "Passw0rdX"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap();
    (id, client_as(name, "Passw0rdX"))
}

#[tokio::test]
async fn members_are_managed_by_project_admins_and_enforced_on_v2() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (_, owner) = create_user(&s, "owner").await;
    let (dev_id, dev) = create_user(&s, "dev").await;
    let (_, guest) = create_user(&s, "guest").await;
    assert_eq!(
        owner.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "team"})).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let members = s.url("/api/v2.0/projects/team/members");

    // Before membership, the registry refuses the developer.
    assert_eq!(dev.post(s.url("/v2/team/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    let resp =
        owner.post(&members).json(&json!({"role_id": 2, "member_user": {"user_id": dev_id}})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let dev_member: i64 = header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap();
    let resp =
        owner.post(&members).json(&json!({"role_id": 3, "member_user": {"username": "guest"}})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Refusals change nothing.
    for (body, want) in [
        (json!({"role_id": 2, "member_user": {"user_id": dev_id}}), StatusCode::CONFLICT),
        (json!({"role_id": 9, "member_user": {"username": "owner"}}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 2, "member_user": {"username": "nobody"}}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 2}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 2, "member_group": {"group_name": "g"}}), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(code(owner.post(&members).json(&body).send().await.unwrap()).await.0, want, "{body}");
    }
    // Only the project admin manages members; a developer may list them.
    let resp =
        dev.post(&members).json(&json!({"role_id": 1, "member_user": {"username": "dev"}})).send().await.unwrap();
    assert_eq!(code(resp).await, (StatusCode::FORBIDDEN, "FORBIDDEN".into()));
    let resp = dev.get(format!("{members}?page_size=2")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "3");
    let list: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(list.iter().map(|m| m["entity_name"].as_str().unwrap()).collect::<Vec<_>>(), ["dev", "guest"]);
    assert_eq!(list[0]["role_name"], "developer");
    assert_eq!(list[0]["entity_type"], "u");
    let filtered: Vec<Value> = dev.get(format!("{members}?entityname=own")).send().await.unwrap().json().await.unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["role_id"], 1);

    // The developer now pushes; the guest pulls only.
    s.push_image("team/app", "v1", &[b"layer"]).await;
    assert_eq!(dev.post(s.url("/v2/team/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(guest.get(s.url("/v2/team/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(guest.post(s.url("/v2/team/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // Demote the developer to guest, then remove them.
    let one = format!("{members}/{dev_member}");
    assert_eq!(owner.put(&one).json(&json!({"role_id": 3})).send().await.unwrap().status(), StatusCode::OK);
    let m: Value = owner.get(&one).send().await.unwrap().json().await.unwrap();
    assert_eq!((m["role_id"].as_i64(), m["entity_name"].as_str()), (Some(3), Some("dev")));
    assert_eq!(dev.post(s.url("/v2/team/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(owner.delete(&one).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(code(owner.get(&one).send().await.unwrap()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(dev.get(s.url("/v2/team/app/manifests/v1")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // A limited guest cannot see members at all.
    let (lg_id, limited) = create_user(&s, "limited").await;
    owner.post(&members).json(&json!({"role_id": 5, "member_user": {"user_id": lg_id}})).send().await.unwrap();
    assert_eq!(code(limited.get(&members).send().await.unwrap()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(limited.get(s.url("/v2/team/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);
}
