//! Robot accounts through Harbor's API, and what they can then do on `/v2`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn code(resp: reqwest::Response) -> StatusCode {
    resp.status()
}

fn project_robot(name: &str, project: &str, actions: &[&str]) -> Value {
    let access: Vec<Value> = actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect();
    json!({
        "name": name, "level": "project", "duration": -1, "description": "ci",
        "permissions": [{"kind": "project", "namespace": project, "access": access}],
    })
}

async fn create(s: &TestServer, client: &reqwest::Client, body: &Value) -> (i64, String, String) {
    let resp = client.post(s.url("/api/v2.0/robots")).json(body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
    let created: Value = resp.json().await.unwrap();
    (
        created["id"].as_i64().unwrap(),
        created["name"].as_str().unwrap().into(),
        created["secret"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn a_project_robot_pushes_where_it_may_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    s.push_image("open/app", "v1", &[b"layer"]).await;
    let (id, name, secret) = create(&s, &s.client, &project_robot("ci", "t", &["pull", "push"])).await;
    assert_eq!(name, "robot$t+ci");
    assert!(secret.len() >= 32);

    let shown: Value =
        s.client.get(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["name"], "robot$t+ci");
    assert_eq!(shown["level"], "project");
    assert_eq!(shown["expires_at"], -1);
    assert_eq!(shown["permissions"][0]["access"].as_array().unwrap().len(), 2);
    assert!(shown.get("secret").is_none() && !shown.to_string().contains(&secret), "the secret is shown only once");

    let robot = client_as(&name, &secret);
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(robot.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::ACCEPTED);
    let (digest, _) = s.push_image("t/app", "v2", &[b"other"]).await;
    assert_eq!(
        robot.delete(s.url(&format!("/v2/t/app/manifests/{digest}"))).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(robot.get(s.url("/v2/open/app/manifests/v1")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // Its token names only what it may do.
    let resp = robot
        .get(s.url("/service/token?service=harbor-registry&scope=repository:t/app:pull,push,delete&scope=repository:open/app:pull"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    use base64::Engine as _;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "robot$t+ci");
    assert_eq!(claims["access"][0]["actions"], json!(["pull", "push"]));
    assert_eq!(claims["access"][1]["actions"], json!([]));

    // A wrong secret, then a refreshed one.
    assert_eq!(
        client_as(&name, "wrong").get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = s
        .client
        .patch(s.url(&format!("/api/v2.0/robots/{id}")))
        .json(&json!({"secret": "Fresh12345Secret"}))
        .send()
        .await
        .unwrap();
    let new: Value = resp.json().await.unwrap();
    // As Harbor: a secret the caller chose is not echoed back.
    assert_eq!(new["secret"], "");
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let robot = client_as(&name, "Fresh12345Secret");
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);

    // Disabled, it is refused; enabled again, it works.
    let mut body = project_robot("ci", "t", &["pull", "push"]);
    body["disable"] = json!(true);
    assert_eq!(
        s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&body).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    body["disable"] = json!(false);
    s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&body).send().await.unwrap();
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);

    // Expired, it is refused.
    let perms = vec![berth_db::RobotPermissionRow {
        kind: "project".into(),
        namespace: "t".into(),
        resource: "repository".into(),
        action: "pull".into(),
    }];
    s.db.update_robot(id, "", false, 1, 1, &perms).await.unwrap();
    assert_eq!(robot.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        s.client.delete(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        code(s.client.get(s.url(&format!("/api/v2.0/robots/{id}"))).send().await.unwrap()).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn system_robots_and_who_may_make_robots() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    s.push_image("open/app", "v1", &[b"layer"]).await;
    let everywhere = json!({
        "name": "reader", "level": "system", "duration": 7,
        "permissions": [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}],
    });
    let (sys_id, name, secret) = create(&s, &s.client, &everywhere).await;
    assert_eq!(name, "robot$reader");
    let reader = client_as(&name, &secret);
    for repo in ["t/app", "open/app"] {
        assert_eq!(
            reader.get(s.url(&format!("/v2/{repo}/manifests/v1"))).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(reader.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let shown: Value =
        s.client.get(s.url(&format!("/api/v2.0/robots/{sys_id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["duration"], 7);
    assert!(shown["expires_at"].as_i64().unwrap() > 0);

    // A developer of `t` lists project robots but cannot make them; nobody but an
    // administrator makes system robots.
    let resp = s
        .client
        .post(s.url("/api/v2.0/users"))
        .json(&json!({"username": "dev", "password": "Passw0rdX"}))
        .send()
        .await
        .unwrap();
    let dev_id: i64 = header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap();
    let resp = s
        .client
        .post(s.url("/api/v2.0/projects/t/members"))
        .json(&json!({"role_id": 2, "member_user": {"user_id": dev_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let dev = client_as("dev", "Passw0rdX");
    assert_eq!(
        code(dev.post(s.url("/api/v2.0/robots")).json(&project_robot("x", "t", &["pull"])).send().await.unwrap()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        code(dev.post(s.url("/api/v2.0/robots")).json(&everywhere).send().await.unwrap()).await,
        StatusCode::FORBIDDEN
    );
    create(&s, &s.client, &project_robot("ci", "t", &["pull"])).await;
    let t_id = s.db.project_by_name("t").await.unwrap().unwrap().id;
    let resp =
        dev.get(s.url(&format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{t_id}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "x-total-count"), "1");
    assert_eq!(
        code(dev.get(s.url("/api/v2.0/robots")).send().await.unwrap()).await,
        StatusCode::FORBIDDEN,
        "system robots"
    );
    let resp = s.client.get(s.url("/api/v2.0/robots")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "1");

    // Bad requests change nothing.
    let unknown_resource = json!({"name": "y", "level": "project", "permissions": [{"kind": "project", "namespace": "t", "access": [{"resource": "spaceship", "action": "pull"}]}]});
    let star_project = json!({"name": "y", "level": "project", "permissions": [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]});
    for (body, want) in [
        (project_robot("ci", "t", &["pull"]), StatusCode::CONFLICT),
        (project_robot("Bad Name", "t", &["pull"]), StatusCode::BAD_REQUEST),
        (project_robot("y", "nosuch", &["pull"]), StatusCode::NOT_FOUND),
        (unknown_resource, StatusCode::BAD_REQUEST),
        (star_project, StatusCode::BAD_REQUEST),
        (json!({"name": "y", "level": "galaxy", "permissions": []}), StatusCode::BAD_REQUEST),
        (
            json!({"name": "y", "level": "system", "duration": -7, "permissions": everywhere["permissions"]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            code(s.client.post(s.url("/api/v2.0/robots")).json(&body).send().await.unwrap()).await,
            want,
            "{body}"
        );
    }
    let resp =
        s.client.get(s.url(&format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{t_id}"))).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "1");
    assert_eq!(code(s.anon.get(s.url("/api/v2.0/robots")).send().await.unwrap()).await, StatusCode::UNAUTHORIZED);
}
