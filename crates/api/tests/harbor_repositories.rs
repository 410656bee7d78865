//! Harbor's repository API over what `/v2` pushed.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn repositories_listed_read_described_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"a"]).await;
    s.push_image("t/app", "v2", &[b"b"]).await;
    s.push_image("t/tools/lint", "v1", &[b"c"]).await;
    s.push_image("library/pub", "v1", &[b"d"]).await;

    let resp = s.client.get(s.url("/api/v2.0/projects/t/repositories")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "2");
    let repos: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(repos[0]["name"], "t/app");
    assert_eq!(repos[0]["artifact_count"], 2);
    assert_eq!(repos[1]["name"], "t/tools/lint");
    let filtered: Vec<Value> = s
        .client
        .get(s.url("/api/v2.0/projects/t/repositories?q=name%3D~lint"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);

    // Everything the caller can see: anonymous sees only the public project.
    let all = s.client.get(s.url("/api/v2.0/repositories")).send().await.unwrap();
    assert_eq!(header(&all, "x-total-count"), "3");
    let anon: Vec<Value> = s.anon.get(s.url("/api/v2.0/repositories")).send().await.unwrap().json().await.unwrap();
    assert_eq!(anon.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["library/pub"]);
    assert_eq!(
        s.anon.get(s.url("/api/v2.0/projects/t/repositories")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // A name with a slash is encoded twice in the path, as Harbor's clients do.
    let lint = s.url("/api/v2.0/projects/t/repositories/tools%252Flint");
    let repo: Value = s.client.get(&lint).send().await.unwrap().json().await.unwrap();
    assert_eq!(repo["name"], "t/tools/lint");
    assert_eq!(
        s.client.put(&lint).json(&json!({"description": "the linter"})).send().await.unwrap().status(),
        StatusCode::OK
    );
    let repo: Value = s.client.get(&lint).send().await.unwrap().json().await.unwrap();
    assert_eq!(repo["description"], "the linter");

    // A guest reads but cannot delete.
    let guest = s.member("t", "g", 3).await;
    assert_eq!(guest.get(&lint).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(guest.delete(&lint).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // Deleting the repository removes its manifests and tags from /v2 too.
    assert_eq!(
        s.client.delete(s.url("/api/v2.0/projects/t/repositories/app")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        s.client.get(s.url("/api/v2.0/projects/t/repositories/app")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.client.head(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let tags = s.client.get(s.url("/v2/t/app/tags/list")).send().await.unwrap();
    assert_eq!(tags.status(), StatusCode::NOT_FOUND);
    // The project can now be emptied and deleted.
    assert_eq!(s.client.delete(&lint).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.client.delete(s.url("/api/v2.0/projects/t")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn search_and_statistics_count_what_the_caller_sees() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/web-app", "v1", &[b"a"]).await;
    s.push_image("library/web-pub", "v1", &[b"bb"]).await;
    s.push_image("open/other", "v1", &[b"c"]).await;
    let user = s.member("t", "u", 3).await;

    let found: Value = user.get(s.url("/api/v2.0/search?q=web")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        found["repository"].as_array().unwrap().iter().map(|r| r["repository_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["library/web-pub", "t/web-app"]);
    assert_eq!(found["repository"][0]["project_public"], true);
    let found: Value = user.get(s.url("/api/v2.0/search?q=open")).send().await.unwrap().json().await.unwrap();
    assert!(found["project"].as_array().unwrap().is_empty(), "a private project the user is not in stays hidden");
    let found: Value = s.client.get(s.url("/api/v2.0/search?q=open")).send().await.unwrap().json().await.unwrap();
    assert_eq!(found["project"][0]["name"], "open");

    let admin: Value = s.client.get(s.url("/api/v2.0/statistics")).send().await.unwrap().json().await.unwrap();
    assert_eq!((admin["total_project_count"].as_i64(), admin["public_project_count"].as_i64()), (Some(4), Some(1)));
    assert_eq!((admin["total_repo_count"].as_i64(), admin["public_repo_count"].as_i64()), (Some(3), Some(1)));
    assert!(admin["total_storage_consumption"].as_i64().unwrap() > 0);
    let mine: Value = user.get(s.url("/api/v2.0/statistics")).send().await.unwrap().json().await.unwrap();
    assert_eq!((mine["private_project_count"].as_i64(), mine["private_repo_count"].as_i64()), (Some(1), Some(1)));
    assert!(mine.get("total_storage_consumption").is_none());
    assert_eq!(s.anon.get(s.url("/api/v2.0/statistics")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
