//! Harbor's labels: global and project scopes, validation and conflicts, and labels on
//! artifacts (shown with `with_label`, filtered with `q=labels=...`, gone with the label).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(s: &TestServer, c: &reqwest::Client, body: Value) -> reqwest::Response {
    c.post(s.url("/api/v2.0/labels")).json(&body).send().await.unwrap()
}

async fn create_id(s: &TestServer, body: Value) -> i64 {
    let resp = create(s, &s.client, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap()
}

async fn project_id(s: &TestServer, name: &str) -> i64 {
    let p: Value =
        s.client.get(s.url(&format!("/api/v2.0/projects/{name}"))).send().await.unwrap().json().await.unwrap();
    p["project_id"].as_i64().unwrap()
}

#[tokio::test]
async fn global_and_project_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let t = project_id(&s, "t").await;
    let open = project_id(&s, "open").await;

    let g =
        create_id(&s, json!({"name": "prod", "description": "in production", "color": "#61717D", "scope": "g"})).await;
    let label: Value =
        s.client.get(s.url(&format!("/api/v2.0/labels/{g}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&label["name"], &label["scope"], &label["project_id"], &label["color"]),
        (&json!("prod"), &json!("g"), &json!(0), &json!("#61717D"))
    );
    // Names are unique per scope and project; the same name elsewhere is fine.
    assert_error(create(&s, &s.client, json!({"name": "prod", "scope": "g"})).await, StatusCode::CONFLICT, "CONFLICT")
        .await;
    let in_t = create_id(&s, json!({"name": "prod", "scope": "p", "project_id": t})).await;
    create_id(&s, json!({"name": "prod", "scope": "p", "project_id": open})).await;
    assert_error(
        create(&s, &s.client, json!({"name": "prod", "scope": "p", "project_id": t})).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;

    // Bad input changes nothing.
    for body in [
        json!({"name": "", "scope": "g"}),
        json!({"name": " padded", "scope": "g"}),
        json!({"name": "x", "scope": "q"}),
        json!({"name": "x", "scope": "p"}),
        json!({"name": "x", "scope": "g", "project_id": t}),
        json!({"name": "x".repeat(129), "scope": "g"}),
    ] {
        assert_error(create(&s, &s.client, body).await, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    assert_error(
        create(&s, &s.client, json!({"name": "x", "scope": "p", "project_id": 99999})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let globals: Vec<Value> =
        s.client.get(s.url("/api/v2.0/labels?scope=g")).send().await.unwrap().json().await.unwrap();
    assert_eq!(globals.len(), 1);
    let resp = s.client.get(s.url(&format!("/api/v2.0/labels?scope=p&project_id={t}&name=pro"))).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "1");
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(listed[0]["id"], in_t);

    // Anyone signed in sees global labels; only administrators change them.
    let ursula = s.user("ursula").await;
    assert_eq!(ursula.get(s.url(&format!("/api/v2.0/labels/{g}"))).send().await.unwrap().status(), StatusCode::OK);
    assert_error(create(&s, &ursula, json!({"name": "mine", "scope": "g"})).await, StatusCode::FORBIDDEN, "FORBIDDEN")
        .await;
    let resp = ursula.put(s.url(&format!("/api/v2.0/labels/{g}"))).json(&json!({"name": "hers"})).send().await;
    assert_error(resp.unwrap(), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_error(s.anon.get(s.url("/api/v2.0/labels")).send().await.unwrap(), StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        .await;
    // A project label of a private project the user is not in stays hidden.
    let resp = ursula.get(s.url(&format!("/api/v2.0/labels/{in_t}"))).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // Update: fields left out stay; scope cannot move; a taken name conflicts.
    let resp = s.client.put(s.url(&format!("/api/v2.0/labels/{g}"))).json(&json!({"color": "#000000"})).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::OK);
    let label: Value =
        s.client.get(s.url(&format!("/api/v2.0/labels/{g}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&label["name"], &label["color"], &label["description"]),
        (&json!("prod"), &json!("#000000"), &json!("in production"))
    );
    let resp =
        s.client.put(s.url(&format!("/api/v2.0/labels/{g}"))).json(&json!({"scope": "p", "project_id": t})).send();
    assert_error(resp.await.unwrap(), StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let other = create_id(&s, json!({"name": "staging", "scope": "g"})).await;
    let resp = s.client.put(s.url(&format!("/api/v2.0/labels/{other}"))).json(&json!({"name": "prod"})).send();
    assert_error(resp.await.unwrap(), StatusCode::CONFLICT, "CONFLICT").await;

    assert_eq!(
        s.client.delete(s.url(&format!("/api/v2.0/labels/{other}"))).send().await.unwrap().status(),
        StatusCode::OK
    );
    let resp = s.client.get(s.url(&format!("/api/v2.0/labels/{other}"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    s.stop().await;
}

#[tokio::test]
async fn labels_on_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let t = project_id(&s, "t").await;
    let open = project_id(&s, "open").await;
    let (a, _) = s.push_image("t/app", "v1", &[b"layer one"]).await;
    let (b, _) = s.push_image("t/app", "v2", &[b"layer two"]).await;
    let global = create_id(&s, json!({"name": "prod", "scope": "g"})).await;
    let local = create_id(&s, json!({"name": "qa", "scope": "p", "project_id": t})).await;
    let foreign = create_id(&s, json!({"name": "elsewhere", "scope": "p", "project_id": open})).await;
    let labels = |r: &str| s.url(&format!("/api/v2.0/projects/t/repositories/app/artifacts/{r}/labels"));

    for (reference, id) in [("v1", global), ("v1", local), ("v2", global)] {
        let resp = s.client.post(labels(reference)).json(&json!({"id": id})).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{reference} {id}");
    }
    let again = s.client.post(labels("v1")).json(&json!({"id": global})).send().await.unwrap();
    assert_error(again, StatusCode::CONFLICT, "CONFLICT").await;
    let resp = s.client.post(labels("v1")).json(&json!({"id": foreign})).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let resp = s.client.post(labels("v1")).json(&json!({"id": 424242})).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let resp = s.client.post(labels("v1")).json(&json!({"name": "no id"})).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;

    let arts = s.url("/api/v2.0/projects/t/repositories/app/artifacts");
    let list: Vec<Value> = s.client.get(format!("{arts}?with_label=true")).send().await.unwrap().json().await.unwrap();
    let names = |v: &Value| v["labels"].as_array().unwrap().iter().map(|l| l["name"].clone()).collect::<Vec<_>>();
    let by_digest = |d: &str| list.iter().find(|x| x["digest"] == d).unwrap().clone();
    assert_eq!(names(&by_digest(a.as_str())), [json!("prod"), json!("qa")]);
    assert_eq!(names(&by_digest(b.as_str())), [json!("prod")]);
    let plain: Vec<Value> = s.client.get(&arts).send().await.unwrap().json().await.unwrap();
    assert!(plain[0].get("labels").is_none(), "labels only when asked for, as Harbor");
    let one: Value =
        s.client.get(format!("{arts}/v1?with_label=true&with_tag=false")).send().await.unwrap().json().await.unwrap();
    assert_eq!(names(&one).len(), 2);
    assert!(one.get("tags").is_none());

    let filtered: Vec<Value> =
        s.client.get(format!("{arts}?q=labels%3D({global}%20{local})")).send().await.unwrap().json().await.unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["digest"], a.as_str());
    let filtered: Vec<Value> =
        s.client.get(format!("{arts}?q=labels%3D{global}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(filtered.len(), 2);

    // Off again; then deleting a label takes it off every artifact.
    assert_eq!(s.client.delete(format!("{}/{local}", labels("v1"))).send().await.unwrap().status(), StatusCode::OK);
    let resp = s.client.delete(format!("{}/{local}", labels("v1"))).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(
        s.client.delete(s.url(&format!("/api/v2.0/labels/{global}"))).send().await.unwrap().status(),
        StatusCode::OK
    );
    let list: Vec<Value> = s.client.get(format!("{arts}?with_label=true")).send().await.unwrap().json().await.unwrap();
    assert!(list.iter().all(|x| x["labels"].as_array().unwrap().is_empty()), "{list:?}");
    s.stop().await;
}
