//! Harbor's listing query language (`q`, `sort`) on projects, repositories, artifacts and users.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

async fn list(s: &TestServer, path: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let resp = s.client.get(s.url(&with_query(path, params))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path} {params:?}: {}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

fn field(items: &[Value], key: &str) -> Vec<String> {
    items.iter().map(|i| i[key].as_str().map_or_else(|| i[key].to_string(), str::to_string)).collect()
}

#[tokio::test]
async fn projects_filter_and_sort() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for (name, public) in [("alpha", "true"), ("beta", "false"), ("alphabet", "false")] {
        let resp = s
            .client
            .post(s.url("/api/v2.0/projects"))
            .json(&json!({"project_name": name, "metadata": {"public": public}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        // Creation times have millisecond resolution: the newest-first check below needs them apart.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let p = "/api/v2.0/projects";
    assert_eq!(field(&list(&s, p, &[("q", "name=~alph")]).await, "name"), ["alpha", "alphabet"]);
    assert_eq!(field(&list(&s, p, &[("q", "name=alpha")]).await, "name"), ["alpha"]);
    assert_eq!(field(&list(&s, p, &[("q", "name=~alph"), ("sort", "-name")]).await, "name"), ["alphabet", "alpha"]);
    assert_eq!(field(&list(&s, p, &[("q", "name={beta alpha}")]).await, "name"), ["alpha", "beta"]);
    assert_eq!(field(&list(&s, p, &[("q", "public=true,name=~a")]).await, "name"), ["alpha", "library"]);
    assert_eq!(list(&s, p, &[("q", "owner=admin")]).await.len(), 7, "library, t, open, secret and the three above");
    assert!(list(&s, p, &[("q", "owner=nobody")]).await.is_empty());
    assert_eq!(list(&s, p, &[("q", "creation_time=[2000-01-01 00:00:00~2999-01-01 00:00:00]")]).await.len(), 7);
    assert!(list(&s, p, &[("q", "creation_time=[~2000-01-01 00:00:00]")]).await.is_empty());
    let newest_first = field(&list(&s, p, &[("sort", "-creation_time")]).await, "name");
    assert_eq!(newest_first[0], "alphabet");

    // A bad key, value or sort field is refused with 400 and Harbor's error body.
    for params in [
        [("q", "no_such_key=1"), ("sort", "")],
        [("q", "project_id=one"), ("sort", "")],
        [("q", "creation_time=[yesterday~]"), ("sort", "")],
        [("q", "name"), ("sort", "")],
        [("q", ""), ("sort", "owner")],
        [("q", ""), ("sort", "name;DROP TABLE projects")],
    ] {
        let resp = s.client.get(s.url(&with_query(p, &params))).send().await.unwrap();
        let body = assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(!body.to_string().contains("SELECT"), "{body}");
    }
    // Paging links keep the query.
    let resp = s.client.get(s.url(&with_query(p, &[("q", "name=~a"), ("page_size", "1")]))).send().await.unwrap();
    assert!(header(&resp, "link").contains("q=name%3D%7Ea"), "{}", header(&resp, "link"));
    assert_eq!(header(&resp, "x-total-count"), "4");
    s.stop().await;
}

#[tokio::test]
async fn repositories_artifacts_and_users_filter_and_sort() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (old, _) = s.push_image("t/app", "v1", &[b"layer one"]).await;
    let (tagged_twice, _) = s.push_image("t/app", "v2", &[b"layer two"]).await;
    let resp = s
        .client
        .post(s.url("/api/v2.0/projects/t/repositories/app/artifacts/v2/tags"))
        .json(&json!({"name": "latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (untagged, _) = s.push_image("t/app", "tmp", &[b"layer three"]).await;
    let resp = s.client.delete(s.url("/api/v2.0/projects/t/repositories/app/artifacts/tmp/tags/tmp")).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::OK);
    s.push_image("t/tool", "v1", &[b"layer four"]).await;

    let repos = "/api/v2.0/projects/t/repositories";
    assert_eq!(field(&list(&s, repos, &[]).await, "name"), ["t/app", "t/tool"]);
    assert_eq!(field(&list(&s, repos, &[("sort", "-name")]).await, "name"), ["t/tool", "t/app"]);
    assert_eq!(field(&list(&s, repos, &[("q", "name=~too")]).await, "name"), ["t/tool"]);
    assert_eq!(field(&list(&s, "/api/v2.0/repositories", &[("q", "name=~app")]).await, "name"), ["t/app"]);

    let arts = "/api/v2.0/projects/t/repositories/app/artifacts";
    let digests = |items: Vec<Value>| field(&items, "digest");
    assert_eq!(
        digests(list(&s, arts, &[]).await),
        [untagged.to_string(), tagged_twice.to_string(), old.to_string()],
        "newest first"
    );
    assert_eq!(
        digests(list(&s, arts, &[("sort", "push_time")]).await),
        [old.to_string(), tagged_twice.to_string(), untagged.to_string()]
    );
    assert_eq!(digests(list(&s, arts, &[("q", "tags=nil")]).await), [untagged.to_string()]);
    assert_eq!(digests(list(&s, arts, &[("q", "tags=*")]).await).len(), 2);
    assert_eq!(digests(list(&s, arts, &[("q", "tags=latest")]).await), [tagged_twice.to_string()]);
    assert_eq!(digests(list(&s, arts, &[("q", "tags=(v2 latest)")]).await), [tagged_twice.to_string()]);
    assert!(list(&s, arts, &[("q", "tags=(v1 latest)")]).await.is_empty());
    assert_eq!(digests(list(&s, arts, &[("q", "tags={v1 latest}")]).await).len(), 2);
    assert_eq!(digests(list(&s, arts, &[("q", "tags=~v")]).await).len(), 2);
    assert_eq!(digests(list(&s, arts, &[("q", &format!("digest={old}"))]).await), [old.to_string()]);
    let resp = s.client.get(s.url(&with_query(arts, &[("sort", "tags")]))).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;

    for name in ["zed", "amy"] {
        let resp = s
            .client
            .post(s.url("/api/v2.0/users"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "realname": name, "password": "Passw0rdX"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let users = "/api/v2.0/users";
    assert_eq!(field(&list(&s, users, &[("sort", "-username")]).await, "username"), ["zed", "amy", "admin"]);
    assert_eq!(field(&list(&s, users, &[("q", "username=~m")]).await, "username"), ["admin", "amy"]);
    assert_eq!(field(&list(&s, users, &[("q", "email=zed@example.com")]).await, "username"), ["zed"]);
    let resp = s.client.get(s.url(&with_query(users, &[("q", "password_hash=~a")]))).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    s.stop().await;
}

#[tokio::test]
async fn artifacts_of_a_project_across_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (a1, _) = s.push_image("t/a", "v1", &[b"a one"]).await;
    let (b1, b1_body) = s.push_image("t/b", "v1", &[b"b one"]).await;
    let (a2, _) = s.push_image("t/a", "v2", &[b"a two"]).await;
    s.push_image("open/elsewhere", "v1", &[b"elsewhere"]).await;
    // An index in t/b: the newest artifact there, of another media type.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": b1.to_string(), "size": b1_body.len()}]});
    let resp =
        s.client.put(s.url("/v2/t/b/manifests/multi")).header("content-type", OCI_INDEX).body(index.to_string()).send();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let idx = header(&resp, "docker-content-digest").to_string();

    let p = "/api/v2.0/projects/t/artifacts";
    let all = list(&s, p, &[]).await;
    assert_eq!(field(&all, "digest"), [idx.clone(), a2.to_string(), b1.to_string(), a1.to_string()], "newest first");
    assert_eq!(field(&all, "repository_name"), ["t/b", "t/a", "t/b", "t/a"]);
    assert_eq!(all[0]["references"][0]["child_digest"], b1.as_str());

    let images = [("q", "media_type=application/vnd.oci.image.manifest.v1+json"), ("latest_in_repository", "true")];
    assert_eq!(field(&list(&s, p, &images).await, "digest"), [a2.to_string(), b1.to_string()]);
    // Without a type in the query, Harbor ignores latest_in_repository.
    assert_eq!(list(&s, p, &[("latest_in_repository", "true")]).await.len(), 4);
    assert_eq!(
        field(&list(&s, p, &[("q", "tags=v1"), ("sort", "push_time")]).await, "digest"),
        [a1.to_string(), b1.to_string()]
    );
    let resp = s.client.get(s.url(&with_query(p, &[("page_size", "1"), ("page", "2")]))).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "4");

    let outsider = s.user("outsider").await;
    let resp = outsider.get(s.url(p)).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = s.client.get(s.url(&with_query(p, &[("latest_in_repository", "maybe")]))).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    s.stop().await;
}
