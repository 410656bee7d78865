//! The audit log over HTTP: what a known sequence of operations records, who may read it, and
//! Harbor's query language and paging on it.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn records(client: &reqwest::Client, url: String) -> (StatusCode, Vec<Value>, String) {
    let resp = client.get(url).send().await.unwrap();
    let status = resp.status();
    let total = header(&resp, "x-total-count").to_string();
    let body = if status == StatusCode::OK { resp.json::<Vec<Value>>().await.unwrap() } else { Vec::new() };
    (status, body, total)
}

fn summary(r: &Value) -> (String, String, String, String, bool) {
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    (s("username"), s("operation"), s("resource_type"), s("resource"), r["operation_result"].as_bool().unwrap())
}

#[tokio::test]
async fn operations_are_recorded_with_operator_resource_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;

    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": "audited"}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    let (digest, _) = s.push_image("audited/app", "v1", &[b"layer"]).await;
    let resp = s
        .client
        .get(s.url("/v2/audited/app/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.registry.pulls().flush().await.unwrap();
    let resp = s.client.delete(s.url(&format!("/v2/audited/app/manifests/{digest}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let wrong = client_as("admin", "not-the-password");
    let resp = wrong.get(s.url("/api/v2.0/users/current")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let member = s.user("auditee").await;

    let (status, all, total) = records(&s.client, s.url("/api/v2.0/auditlog-exts?page_size=100")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total, all.len().to_string());
    let seen: Vec<_> = all.iter().map(summary).collect();
    let admin = |op: &str, kind: &str, resource: &str, ok: bool| {
        ("admin".to_string(), op.to_string(), kind.to_string(), resource.to_string(), ok)
    };
    for expected in [
        admin("create", "project", "audited", true),
        admin("create", "artifact", "audited/app:v1", true),
        admin("pull", "artifact", "audited/app:v1", true),
        admin("delete", "artifact", &format!("audited/app@{digest}"), true),
        admin("login", "user", "admin", false),
        ("system".into(), "create".into(), "user".into(), "auditee".into(), true),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:#?}");
    }
    // Newest first, with Harbor's fields.
    let times: Vec<&str> = all.iter().map(|r| r["op_time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(all[0]["id"].as_i64().is_some() && all[0]["operation_description"].is_string());

    // Harbor's q and paging.
    let (_, pulls, total) = records(&s.client, s.url("/api/v2.0/auditlog-exts?q=operation%3Dpull")).await;
    assert_eq!((pulls.len(), total.as_str()), (1, "1"));
    let (_, fuzzy, _) = records(&s.client, s.url("/api/v2.0/auditlog-exts?q=resource%3D~app%40sha256")).await;
    assert_eq!(fuzzy.len(), 1, "{fuzzy:?}");
    let (_, page, total) = records(&s.client, s.url("/api/v2.0/auditlog-exts?page=2&page_size=2")).await;
    assert_eq!(page.len(), 2);
    assert_eq!(total, all.len().to_string());
    assert_eq!(page[0]["id"], all[2]["id"]);
    let resp = s.client.get(s.url("/api/v2.0/auditlog-exts?q=password%3Dx")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A project's records are those of the project only; the older API has the older shape.
    let (_, project, _) = records(&s.client, s.url("/api/v2.0/projects/audited/auditlog-exts?page_size=100")).await;
    assert_eq!(project.len(), 4, "{project:#?}");
    let (_, legacy, _) = records(&s.client, s.url("/api/v2.0/projects/audited/logs?page_size=100")).await;
    assert_eq!(legacy.len(), 4);
    assert!(legacy[0].get("operation_description").is_none());
    let (_, legacy_all, _) = records(&s.client, s.url("/api/v2.0/audit-logs?page_size=100")).await;
    assert_eq!(legacy_all.len(), all.len());

    // Who may read: anonymous nobody; a user the records of projects they administer.
    let (status, _, _) = records(&s.anon, s.url("/api/v2.0/auditlog-exts")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, mine, _) = records(&member, s.url("/api/v2.0/auditlog-exts")).await;
    assert_eq!((status, mine.len()), (StatusCode::OK, 0));
    let (status, _, _) = records(&member, s.url("/api/v2.0/projects/audited/auditlog-exts")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let user_id = s.db.user_by_name("auditee").await.unwrap().unwrap().id;
    let resp = s
        .client
        .post(s.url("/api/v2.0/projects/audited/members"))
        .json(&serde_json::json!({"role_id": 1, "member_user": {"user_id": user_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, mine, _) = records(&member, s.url("/api/v2.0/auditlog-exts?page_size=100")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine.len(), 5, "the project's four and the membership: {mine:#?}");
    assert!(mine.iter().all(|r| r["resource"].as_str().unwrap().starts_with("audited") || r["resource"] == "auditee"));

    let events: Vec<Value> =
        member.get(s.url("/api/v2.0/auditlog-exts/events")).send().await.unwrap().json().await.unwrap();
    assert_eq!(events.len(), 18);
    assert_eq!(events[0]["event_type"], "create_artifact");

    let report = s.db.verify_audit_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records as usize, all.len() + 1);
}

#[tokio::test]
async fn a_write_that_fails_records_nothing_and_disabled_types_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let count = || async {
        let (_, _, total) = records(&s.client, s.url("/api/v2.0/auditlog-exts")).await;
        total.parse::<i64>().unwrap()
    };
    let before = count().await;
    // The project exists already: refused, and no record of a creation.
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": "t"}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(count().await, before);

    s.db.configure_audit(berth_core::audit::AuditSettings { disabled: vec!["create_project".into()] });
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": "quiet"}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(count().await, before, "create_project is disabled");
}
