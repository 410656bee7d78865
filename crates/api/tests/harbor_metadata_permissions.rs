//! Project metadata keys one by one, and the permission listings.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn metadata_keys_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let base = s.url("/api/v2.0/projects/t/metadatas");
    let all: Value = s.client.get(format!("{base}/")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all, json!({"public": "false"}));
    assert_eq!(s.client.post(&base).json(&json!({"auto_scan": "true"})).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        s.client.post(&base).json(&json!({"auto_scan": "false"})).send().await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.client.post(&base).json(&json!({"severity": "bogus"})).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // A feature that does not exist yet is refused, not stored and ignored.
    let sbom = s.client.post(&base).json(&json!({"auto_sbom_generation": "true"})).send().await.unwrap();
    assert_eq!(sbom.status(), StatusCode::BAD_REQUEST);
    assert!(sbom.text().await.unwrap().contains("does not generate SBOMs"));
    assert_eq!(
        s.client.post(&base).json(&json!({"auto_sbom_generation": "false"})).send().await.unwrap().status(),
        StatusCode::OK
    );
    let proxy = s.client.post(&base).json(&json!({"proxy_speed_kb": "100"})).send().await.unwrap();
    assert_eq!(proxy.status(), StatusCode::BAD_REQUEST);
    assert!(proxy.text().await.unwrap().contains("proxy cache projects"));
    let one: Value = s.client.get(format!("{base}/auto_scan")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one, json!({"auto_scan": "true"}));
    let put = s.client.put(format!("{base}/auto_scan")).json(&json!({"auto_scan": "false"})).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let wrong_key = s.client.put(format!("{base}/auto_scan")).json(&json!({"public": "true"})).send().await.unwrap();
    assert_eq!(wrong_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        s.client.put(format!("{base}/severity")).json(&json!({"severity": "low"})).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.client.delete(format!("{base}/auto_scan")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.client.get(format!("{base}/auto_scan")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.anon.get(&base).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn permissions_follow_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let t = s.db.project_by_name("t").await.unwrap().unwrap().id;
    let guest = s.member("t", "g", 3).await;
    let list = |c: reqwest::Client, q: String| {
        let url = s.url(&format!("/api/v2.0/users/current/permissions?{q}"));
        async move {
            let v: Vec<Value> = c.get(url).send().await.unwrap().json().await.unwrap();
            v.iter()
                .map(|p| format!("{}:{}", p["resource"].as_str().unwrap(), p["action"].as_str().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    let guest_perms = list(guest.clone(), format!("scope=/project/{t}&relative=true")).await;
    assert!(guest_perms.contains(&"repository:pull".to_string()));
    assert!(!guest_perms.contains(&"repository:push".to_string()));
    assert!(!guest_perms.contains(&"member:create".to_string()));
    let admin_perms = list(s.client.clone(), format!("scope=/project/{t}")).await;
    assert!(admin_perms.contains(&format!("/project/{t}/member:create")));
    assert!(list(guest.clone(), "scope=/".into()).await.is_empty());
    assert!(list(s.client.clone(), "scope=/".into()).await.contains(&"user:create".to_string()));
    let resp = guest.get(s.url("/api/v2.0/users/current/permissions?scope=/weird")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let sets: Value = guest.get(s.url("/api/v2.0/permissions")).send().await.unwrap().json().await.unwrap();
    assert!(sets["project"].as_array().unwrap().contains(&json!({"resource": "repository", "action": "push"})));
    assert!(sets["system"].as_array().unwrap().contains(&json!({"resource": "project", "action": "create"})));
    assert_eq!(s.anon.get(s.url("/api/v2.0/permissions")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
