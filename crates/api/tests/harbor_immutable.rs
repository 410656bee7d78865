//! Harbor's immutable tag rules: the API (validation, conflicts, permissions, partial
//! updates), and the rule held at the content door: an immutable tag is not moved by a push
//! nor deleted (alone, with its artifact or with its repository), and shows as immutable.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const RULES: &str = "/api/v2.0/projects/t/immutabletagrules";

fn rule(repo: &str, tag: &str) -> Value {
    json!({
        "disabled": false, "action": "immutable", "template": "immutable_template", "params": {}, "priority": 0,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tag}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repo}]},
    })
}

async fn rules(s: &TestServer) -> (i64, Value) {
    let resp = s.client.get(s.url(RULES)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let total = header(&resp, "x-total-count").parse().unwrap();
    (total, resp.json().await.unwrap())
}

async fn get_json(s: &TestServer, path: &str) -> Value {
    let resp = s.client.get(s.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn put_manifest(s: &TestServer, repo: &str, tag: &str, body: &[u8]) -> reqwest::Response {
    s.client
        .put(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", OCI_MANIFEST)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn refused_as_immutable(resp: reqwest::Response, what: &str) {
    let body = assert_error(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("configured as immutable, cannot be {what}")), "{message}");
}

#[tokio::test]
async fn immutable_tags_are_neither_moved_nor_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (first, _) = s.push_image("t/app", "release-1", &[b"first"]).await;
    let second = s.image_manifest("t/app", &[b"second"]).await;

    let resp = s.client.post(s.url(RULES)).json(&rule("app*", "release-*")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let (total, listed) = rules(&s).await;
    assert_eq!(total, 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["action"], "immutable");
    assert_eq!(listed[0]["tag_selectors"][0]["pattern"], "release-*");
    assert_eq!(listed[0]["scope_selectors"]["repository"][0]["decoration"], "repoMatches");

    // A push moving the tag is refused and changes nothing; the same manifest again is no move.
    refused_as_immutable(put_manifest(&s, "t/app", "release-1", &second).await, "updated").await;
    let head = s.client.head(s.url("/v2/t/app/manifests/release-1")).send().await.unwrap();
    assert_eq!(header(&head, "docker-content-digest"), first.to_string());
    let again = s.image_manifest("t/app", &[b"first"]).await;
    assert_eq!(put_manifest(&s, "t/app", "release-1", &again).await.status(), StatusCode::CREATED);
    // Tags the rule does not select move freely; a new selected tag may be created.
    assert_eq!(put_manifest(&s, "t/app", "latest", &second).await.status(), StatusCode::CREATED);
    assert_eq!(put_manifest(&s, "t/app", "release-2", &second).await.status(), StatusCode::CREATED);
    assert_eq!(put_manifest(&s, "t/app", "latest", &again).await.status(), StatusCode::CREATED);
    // Other repositories of the project are not selected.
    s.push_image("t/other", "release-1", &[b"first"]).await;
    s.push_image("t/other", "release-1", &[b"second"]).await;

    // Neither the tag, nor its artifact, nor its repository can be deleted.
    let artifact = format!("/api/v2.0/projects/t/repositories/app/artifacts/{first}");
    let resp = s.client.delete(s.url(&format!("{artifact}/tags/release-1"))).send().await.unwrap();
    refused_as_immutable(resp, "deleted").await;
    refused_as_immutable(s.client.delete(s.url(&artifact)).send().await.unwrap(), "deleted").await;
    let resp = s.client.delete(s.url(&format!("/v2/t/app/manifests/{first}"))).send().await.unwrap();
    refused_as_immutable(resp, "deleted").await;
    let resp = s.client.delete(s.url("/api/v2.0/projects/t/repositories/app")).send().await.unwrap();
    refused_as_immutable(resp, "deleted").await;
    assert_eq!(s.client.get(s.url(&artifact)).send().await.unwrap().status(), StatusCode::OK);

    // Shown when asked for, in listings and in an artifact's tags.
    let listed = get_json(&s, "/api/v2.0/projects/t/repositories/app/artifacts?with_immutable_status=true").await;
    let mut flags: Vec<(String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["tags"].as_array().unwrap().iter())
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["immutable"].as_bool().unwrap()))
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        vec![("latest".to_string(), false), ("release-1".to_string(), true), ("release-2".to_string(), true)]
    );
    let tags = get_json(&s, &format!("{artifact}/tags?with_immutable_status=true")).await;
    assert!(tags.as_array().unwrap().iter().any(|t| t["name"] == "release-1" && t["immutable"] == true), "{tags}");
    let plain = get_json(&s, &format!("{artifact}/tags")).await;
    assert!(plain.as_array().unwrap().iter().all(|t| t["immutable"] == false), "{plain}");

    // Switched off by a partial update (the rest of the rule stays), the tag can go.
    let resp = s.client.put(s.url(&location)).json(&json!({"disabled": true})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, listed) = rules(&s).await;
    assert_eq!(
        (&listed[0]["disabled"], &listed[0]["tag_selectors"][0]["pattern"]),
        (&json!(true), &json!("release-*"))
    );
    let resp = s.client.delete(s.url(&format!("{artifact}/tags/release-1"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    assert_eq!(s.client.delete(s.url(&location)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(rules(&s).await.0, 0);
    let resp = s.client.delete(s.url(&location)).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn bad_rules_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let resp = s.client.post(s.url(RULES)).json(&rule("**", "v*")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();

    let mut two_tags = rule("**", "a");
    two_tags["tag_selectors"] =
        json!([{"decoration": "matches", "pattern": "a"}, {"decoration": "matches", "pattern": "b"}]);
    let mut regex = rule("**", "a");
    regex["tag_selectors"][0]["kind"] = json!("regex");
    let mut wrong_decoration = rule("**", "a");
    wrong_decoration["scope_selectors"]["repository"][0]["decoration"] = json!("matches");
    let mut other_scope = rule("**", "a");
    other_scope["scope_selectors"]["namespace"] = json!([]);
    let mut unknown = rule("**", "a");
    unknown["untagged"] = json!(true);
    let mut retain = rule("**", "a");
    retain["action"] = json!("retain");
    let mut params = rule("**", "a");
    params["params"] = json!({"latestPushedK": 3});
    let mut no_tags = rule("**", "a");
    no_tags.as_object_mut().unwrap().remove("tag_selectors");
    for body in [
        two_tags,
        regex,
        wrong_decoration,
        other_scope,
        unknown,
        retain,
        params,
        no_tags,
        rule("**", "[a-"),
        rule("", "a"),
    ] {
        let resp = s.client.post(s.url(RULES)).json(&body).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let resp = s.client.put(s.url(&location)).json(&rule("**", "[a-")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    // The same selectors twice are a conflict.
    let resp = s.client.post(s.url(RULES)).json(&rule("**", "v*")).send().await.unwrap();
    assert_error(resp, StatusCode::CONFLICT, "CONFLICT").await;
    let (total, listed) = rules(&s).await;
    assert_eq!(total, 1);
    assert_eq!(listed[0]["tag_selectors"][0]["pattern"], "v*");

    // A rule of another project is not found through this one.
    let id = location.rsplit('/').next().unwrap();
    let resp = s.client.delete(s.url(&format!("/api/v2.0/projects/open/immutabletagrules/{id}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // A developer may not manage rules; a maintainer may (harbor.md's role table).
    let developer = s.member("t", "dev", 2).await;
    let resp = developer.post(s.url(RULES)).json(&rule("**", "x")).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let maintainer = s.member("t", "keeper", 4).await;
    let resp = maintainer.post(s.url(RULES)).json(&rule("**", "x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(rules(&s).await.0, 2);
}
