//! Harbor's system configuration (`/configurations`, `/internalconfig`): Harbor's keys, types
//! and checks; a refused change changes nothing; every key accepted acts (token and robot
//! lifetimes, robot names, default quotas, quota enforcement, the audit log, self-registration)
//! and `read_only` stops pushes, deletes and GC while pulls go on.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn configurations(s: &TestServer) -> Value {
    let resp = s.client.get(s.url("/api/v2.0/configurations")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn refused(s: &TestServer, changes: Value, needle: &str) {
    let resp = s.client.put(s.url("/api/v2.0/configurations")).json(&changes).send().await.unwrap();
    let body = assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{changes}: {message}");
}

#[tokio::test]
async fn harbors_keys_are_shown_with_their_defaults_to_administrators_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let c = configurations(&s).await;
    for (key, value) in [
        ("auth_mode", json!("db_auth")),
        ("project_creation_restriction", json!("everyone")),
        ("self_registration", json!(false)),
        ("token_expiration", json!(30)),
        ("robot_token_duration", json!(30)),
        ("robot_name_prefix", json!("robot$")),
        ("storage_per_project", json!(-1)),
        ("quota_per_project_enable", json!(true)),
        ("read_only", json!(false)),
        ("audit_log_forward_endpoint", json!("")),
        ("skip_audit_log_database", json!(false)),
        ("disabled_audit_log_event_types", json!("")),
        ("pull_audit_log_disable", json!(false)),
    ] {
        assert_eq!(c[key]["value"], value, "{key}: {c}");
        assert_eq!(c[key]["editable"], json!(key != "auth_mode"), "{key}");
    }
    let internal: Value = s.client.get(s.url("/api/v2.0/internalconfig")).send().await.unwrap().json().await.unwrap();
    assert_eq!(internal["token_expiration"]["value"], 30);

    let alice = s.user("alice").await;
    for path in ["/api/v2.0/configurations", "/api/v2.0/internalconfig"] {
        assert_eq!(s.anon.get(s.url(path)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(alice.get(s.url(path)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    let resp = alice.put(s.url("/api/v2.0/configurations")).json(&json!({"read_only": true})).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(configurations(&s).await["read_only"]["value"], false);
}

#[tokio::test]
async fn a_refused_change_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    refused(&s, json!({"read_only": "yes"}), "read_only must be a boolean").await;
    refused(&s, json!({"token_expiration": 0}), "token_expiration").await;
    refused(&s, json!({"token_expiration": "45"}), "must be an integer").await;
    refused(&s, json!({"project_creation_restriction": "nobody"}), "everyone or adminonly").await;
    refused(&s, json!({"storage_per_project": 0}), "out of range").await;
    refused(&s, json!({"robot_name_prefix": "bot@"}), "'$'").await;
    refused(&s, json!({"disabled_audit_log_event_types": "create_project,eat_lunch"}), "eat_lunch").await;
    refused(&s, json!({"audit_log_forward_endpoint": "no port"}), "audit_log_forward_endpoint").await;
    refused(&s, json!({"skip_audit_log_database": true}), "needs audit_log_forward_endpoint").await;
    refused(&s, json!({"ldap_url": "ldap://x"}), "not supported by Berth yet").await;
    refused(&s, json!({"auth_mode": "ldap_auth"}), "auth_mode can only be db_auth").await;
    refused(&s, json!({"secret_key": "x"}), "unknown configuration key").await;
    // Null is a key not given.
    s.configure(json!({"read_only": null, "ldap_url": null})).await;
    // One bad key refuses the others with it.
    refused(&s, json!({"self_registration": true, "token_expiration": -3}), "token_expiration").await;
    let resp = s.client.put(s.url("/api/v2.0/configurations")).body("[1]").send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let c = configurations(&s).await;
    assert_eq!((&c["self_registration"]["value"], &c["token_expiration"]["value"]), (&json!(false), &json!(30)));
    let records = audit_records(&s, "update_configuration").await;
    assert!(records.is_empty(), "{records:?}");
}

async fn audit_records(s: &TestServer, event: &str) -> Vec<Value> {
    let (operation, resource_type) = event.split_once('_').unwrap();
    let url = s.url(&format!(
        "/api/v2.0/auditlog-exts?page_size=100&q=operation%3D{operation},resource_type%3D{resource_type}"
    ));
    s.client.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn changes_are_kept_audited_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.configure(json!({"self_registration": true, "banner_message": "{\"message\":\"maintenance at 18:00\"}"})).await;
    let records = audit_records(&s, "update_configuration").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["username"], "admin");
    let description = records[0]["operation_description"].as_str().unwrap();
    assert!(description.contains("self_registration") && description.contains("banner_message"), "{description}");
    let info: Value = s.anon.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&info["self_registration"], &info["banner_message"]),
        (&json!(true), &json!("{\"message\":\"maintenance at 18:00\"}"))
    );
    s.stop().await;
    let s = TestServer::start(dir.path()).await;
    assert_eq!(configurations(&s).await["self_registration"]["value"], true);
}

#[tokio::test]
async fn token_and_robot_settings_act_on_what_is_issued_next() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let token = |s: &TestServer| {
        s.client.get(s.url("/service/token?service=harbor-registry&scope=repository:t/app:pull")).send()
    };
    let t: Value = token(&s).await.unwrap().json().await.unwrap();
    assert_eq!(t["expires_in"], 1800);
    let old_robot = robot(&s, "old", None).await;
    s.configure(json!({"token_expiration": 5, "robot_token_duration": 7, "robot_name_prefix": "ci$"})).await;
    let t: Value = token(&s).await.unwrap().json().await.unwrap();
    assert_eq!(t["expires_in"], 300);

    let new_robot = robot(&s, "new", None).await;
    assert_eq!(new_robot["name"], "ci$t+new");
    let shown: Value = s
        .client
        .get(s.url(&format!("/api/v2.0/robots/{}", new_robot["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["duration"], 7);
    // Both robots sign in: the old one under the prefix it was made with.
    for r in [&old_robot, &new_robot] {
        let client = client_as(r["name"].as_str().unwrap(), r["secret"].as_str().unwrap());
        let resp = client.get(s.url("/service/token?service=harbor-registry&scope=repository:t/app:pull")).send();
        let t: Value = resp.await.unwrap().json().await.unwrap();
        assert!(t["token"].as_str().is_some_and(|t| !t.is_empty()), "{r}: {t}");
    }
    assert_eq!(old_robot["name"], "robot$t+old");
    // Renaming is refused whatever the prefix; an update under the old name keeps it.
    let id = old_robot["id"].as_i64().unwrap();
    let body = json!({"name": "robot$t+old", "level": "project", "duration": 3, "disable": false, "description": "",
        "permissions": [{"kind": "project", "namespace": "t", "access": [{"resource": "repository", "action": "pull"}]}]});
    let resp = s.client.put(s.url(&format!("/api/v2.0/robots/{id}"))).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
}

async fn robot(s: &TestServer, name: &str, duration: Option<i64>) -> Value {
    let mut body = json!({"name": name, "level": "project", "description": "",
        "permissions": [{"kind": "project", "namespace": "t", "access": [{"resource": "repository", "action": "pull"}]}]});
    if let Some(d) = duration {
        body["duration"] = json!(d);
    }
    let resp = s.client.post(s.url("/api/v2.0/robots")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn default_quotas_and_quota_enforcement_follow_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.configure(json!({"storage_per_project": 1024})).await;
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "small"})).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = header(&resp, "location").rsplit('/').next().unwrap().to_string();
    let quotas: Value = s
        .client
        .get(s.url(&format!("/api/v2.0/quotas?reference=project&reference_id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quotas[0]["hard"]["storage"], 1024);

    let big = vec![7u8; 4096];
    let push = |bytes: Vec<u8>| {
        let digest = berth_oci::Digest::sha256_of(&bytes);
        s.client.post(s.url(&format!("/v2/small/app/blobs/uploads/?digest={digest}"))).body(bytes).send()
    };
    assert_error(push(big.clone()).await.unwrap(), StatusCode::FORBIDDEN, "DENIED").await;
    s.configure(json!({"quota_per_project_enable": false})).await;
    assert_eq!(push(big).await.unwrap().status(), StatusCode::CREATED);
    s.configure(json!({"quota_per_project_enable": true})).await;
    assert_error(push(vec![8u8; 4096]).await.unwrap(), StatusCode::FORBIDDEN, "DENIED").await;
}

#[tokio::test]
async fn the_audit_settings_apply_from_the_next_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let create = |name: &str| s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": name})).send();
    s.configure(json!({"disabled_audit_log_event_types": "create_project"})).await;
    assert_eq!(create("quiet").await.unwrap().status(), StatusCode::CREATED);
    s.configure(json!({"disabled_audit_log_event_types": ""})).await;
    assert_eq!(create("loud").await.unwrap().status(), StatusCode::CREATED);
    let records = audit_records(&s, "create_project").await;
    let resources: Vec<&str> = records.iter().filter_map(|r| r["resource"].as_str()).collect();
    assert!(resources.contains(&"loud") && !resources.contains(&"quiet"), "{resources:?}");
    // Turning the audit log's settings off is itself recorded.
    assert_eq!(audit_records(&s, "update_configuration").await.len(), 2);
}

#[tokio::test]
async fn read_only_stops_changes_and_gc_while_pulls_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (digest, _) = s.push_image("t/app", "v1", &[b"layer"]).await;
    s.configure(json!({"read_only": true})).await;
    let denied = |resp: reqwest::Response| async move {
        let body = assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
        assert_eq!(body["errors"][0]["message"], "The system is in read only mode. Any modification is prohibited.");
    };
    denied(s.client.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap()).await;
    denied(s.client.delete(s.url(&format!("/v2/t/app/manifests/{digest}"))).send().await.unwrap()).await;
    denied(s.client.delete(s.url("/api/v2.0/projects/t/repositories/app")).send().await.unwrap()).await;
    denied(s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "new"})).send().await.unwrap())
        .await;
    let gc = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": true}});
    denied(s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&gc).send().await.unwrap()).await;
    // Pulls and reads go on.
    let resp = s.client.get(s.url("/v2/t/app/manifests/v1")).header("accept", OCI_MANIFEST).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.client.get(s.url("/api/v2.0/projects/t")).send().await.unwrap().status(), StatusCode::OK);
    let info: Value = s.client.get(s.url("/api/v2.0/systeminfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["read_only"], true);
    // A collection that reaches the job service anyway (a schedule firing) is refused there.
    let job = s.db.enqueue_job("GARBAGE_COLLECTION", "{}", 1).await.unwrap();
    let mut ended = None;
    for _ in 0..200 {
        let row = s.db.job(job).await.unwrap().unwrap();
        if row.status == "Error" || row.status == "Success" {
            ended = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ended = ended.expect("the collection did not end");
    assert_eq!(ended.status, "Error");
    assert!(ended.log.contains("read only mode"), "{}", ended.log);
    // The way out stays open.
    s.configure(json!({"read_only": false})).await;
    let resp = s.client.delete(s.url(&format!("/v2/t/app/manifests/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
