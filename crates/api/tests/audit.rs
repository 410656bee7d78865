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

    s.db.configure_audit(berth_core::audit::AuditSettings {
        disabled: vec!["create_project".into(), "pull_artifact".into()],
        ..Default::default()
    });
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": "quiet"}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(count().await, before, "create_project is disabled");
    // Pulls still count in the statistics, and leave no record.
    s.push_image("quiet/app", "v1", &[b"q"]).await;
    let after_push = count().await;
    let resp = s
        .client
        .get(s.url("/v2/quiet/app/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.registry.pulls().flush().await.unwrap();
    assert_eq!(count().await, after_push, "pull_artifact is disabled");
    let repo: Value =
        s.client.get(s.url("/api/v2.0/projects/quiet/repositories/app")).send().await.unwrap().json().await.unwrap();
    assert_eq!(repo["pull_count"], 1);
}

/// A syslog receiver on loopback: reads RFC 6587 octet-counted frames into `lines` until
/// stopped (its listener and connections dropped, as a killed server's are).
struct Receiver {
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(addr: &str, lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> (Receiver, String) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let local = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let mut readers = tokio::task::JoinSet::new();
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let lines = lines.clone();
                readers.spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // Frames: "LEN SP MSG".
                        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
                            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
                            if buf.len() < sp + 1 + len {
                                break;
                            }
                            let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                            lines.lock().unwrap().push(msg);
                            buf.drain(..sp + 1 + len);
                        }
                    }
                });
            }
        });
        (Receiver { task }, local)
    }

    async fn stop(self) {
        // Aborting the accept loop drops the listener and, with the JoinSet, every connection.
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn wait_for(lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if lines.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    lines.lock().unwrap().clone()
}

#[tokio::test]
async fn records_reach_syslog_across_a_restart_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (receiver, addr) = Receiver::start("127.0.0.1:0", lines.clone()).await;
    let sink = berth_core::audit::SyslogAuditSink::start(&format!("tcp://{addr}"), 100, None).unwrap();
    let forward: std::sync::Arc<dyn berth_core::audit::AuditSink> = sink.clone();
    s.db.configure_audit(berth_core::audit::AuditSettings { forward: Some(forward), ..Default::default() });

    let create =
        |name: &str| s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": name})).send();
    assert_eq!(create("fwd-one").await.unwrap().status(), StatusCode::CREATED);
    let got = wait_for(&lines, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let line = &got[0];
    assert!(line.starts_with("<134>1 "), "local0.info, RFC 5424: {line}");
    assert!(line.contains(" berth-audit ") && line.contains(" audit [audit@32473 id=\""), "{line}");
    assert!(line.contains("operator=\"admin\"") && line.contains("resourceType=\"project\""), "{line}");
    assert!(line.contains("resource=\"fwd-one\" operation=\"create\"") && line.contains("result=\"success\""));
    assert!(line.contains("clientIP=\"127.0.0.1\""), "{line}");

    // The server goes away: records wait in the buffer, and requests do not.
    receiver.stop().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for name in ["fwd-two", "fwd-three", "fwd-four"] {
        assert_eq!(create(name).await.unwrap().status(), StatusCode::CREATED);
    }
    let wrong = client_as("admin", "wrong-password");
    assert_eq!(wrong.get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(lines.lock().unwrap().len(), 1);
    assert_eq!(sink.pending(), 4);

    // It comes back on the same address: everything that waited arrives, in order.
    let (receiver, _) = Receiver::start(&addr, lines.clone()).await;
    let got = wait_for(&lines, 5).await;
    assert_eq!(got.len(), 5, "{got:#?}");
    for (line, resource) in got[1..4].iter().zip(["fwd-two", "fwd-three", "fwd-four"]) {
        assert!(line.contains(&format!("resource=\"{resource}\"")), "{line}");
    }
    assert!(
        got[4].starts_with("<132>1 ")
            && got[4].contains("operation=\"login\"")
            && got[4].contains("result=\"failure\"")
    );
    assert_eq!(sink.pending(), 0);
    // The database keeps them too (skip_audit_log_database is off).
    let (_, all, _) = records(&s.client, s.url("/api/v2.0/auditlog-exts?q=resource%3D~fwd-")).await;
    assert_eq!(all.len(), 4);
    receiver.stop().await;
}

#[tokio::test]
async fn a_full_forwarding_buffer_drops_and_counts_rather_than_waits() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // Nothing listens here (a port just freed).
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let sink = berth_core::audit::SyslogAuditSink::start(&addr.to_string(), 2, None).unwrap();
    let forward: std::sync::Arc<dyn berth_core::audit::AuditSink> = sink.clone();
    s.db.configure_audit(berth_core::audit::AuditSettings {
        forward: Some(forward),
        skip_database: true,
        ..Default::default()
    });
    let before = berth_metrics::metrics().audit_forward_dropped.get();
    for name in ["drop-a", "drop-b", "drop-c", "drop-d", "drop-e"] {
        let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": name}));
        assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    }
    assert_eq!(sink.pending(), 2);
    assert_eq!(berth_metrics::metrics().audit_forward_dropped.get() - before, 3);
    // skip_audit_log_database: none of them in the database.
    let (_, kept, _) = records(&s.client, s.url("/api/v2.0/auditlog-exts?q=resource%3D~drop-")).await;
    assert!(kept.is_empty(), "{kept:?}");
}

#[tokio::test]
async fn purges_by_hand_and_on_a_schedule_with_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for name in ["purge-a", "purge-b"] {
        let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": name}));
        assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    }
    s.push_image("purge-a/app", "v1", &[b"l"]).await;
    let count = |q: &'static str| {
        let url = s.url(&format!("/api/v2.0/auditlog-exts?q={q}"));
        let client = s.client.clone();
        async move { records(&client, url).await.2.parse::<i64>().unwrap() }
    };
    // The test server's own projects were created (and recorded) too.
    let created = count("operation%3Dcreate,resource_type%3Dproject").await;
    assert_eq!(count("resource%3D~purge-,resource_type%3Dproject").await, 2);
    let purge =
        |body: serde_json::Value| s.client.post(s.url("/api/v2.0/system/purgeaudit/schedule")).json(&body).send();

    // Only administrators; bad parameters change nothing.
    let user = s.user("nosy").await;
    let manual = serde_json::json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "create_project", "dry_run": true}});
    let resp = user.post(s.url("/api/v2.0/system/purgeaudit/schedule")).json(&manual).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let bad = serde_json::json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "steal_project"}});
    assert_eq!(purge(bad).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let bad = serde_json::json!({"schedule": {"type": "Custom", "cron": "every minute"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "create_project"}});
    assert_eq!(purge(bad).await.unwrap().status(), StatusCode::BAD_REQUEST);

    // A dry run counts and removes nothing.
    let resp = purge(manual).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();
    let run = s.wait_ended(&location).await;
    assert_eq!((run["job_kind"].as_str(), run["job_status"].as_str()), (Some("MANUAL"), Some("Success")));
    let log = s.client.get(s.url(&format!("{location}/log"))).send().await.unwrap().text().await.unwrap();
    assert!(log.contains(&format!("dry run: {created} audit records")), "{log}");
    assert_eq!(count("operation%3Dcreate,resource_type%3Dproject").await, created);

    // For real: project creations go, the artifact's stays; the chain still verifies.
    let real = serde_json::json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "create_project", "dry_run": false}});
    let resp = purge(real).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    s.wait_ended(header(&resp, "location")).await;
    assert_eq!(count("operation%3Dcreate,resource_type%3Dproject").await, 0);
    assert_eq!(count("operation%3Dcreate,resource_type%3Dartifact").await, 1);
    assert!(s.db.verify_audit_chain().await.unwrap().problems.is_empty());
    // Retention keeps what is younger.
    let keep = serde_json::json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 1, "include_operations": "create", "dry_run": false}});
    let resp = purge(keep).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    s.wait_ended(header(&resp, "location")).await;
    assert_eq!(count("operation%3Dcreate,resource_type%3Dartifact").await, 1);

    // A schedule fires once per scheduled second, however many replicas tick.
    let every_second = serde_json::json!({"schedule": {"type": "Custom", "cron": "* * * * * *"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "create_artifact", "dry_run": false}});
    assert_eq!(purge(every_second).await.unwrap().status(), StatusCode::CREATED);
    let schedule: Value =
        s.client.get(s.url("/api/v2.0/system/purgeaudit/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(schedule["schedule"]["type"], "Custom");
    assert!(schedule["schedule"]["next_scheduled_time"].is_string(), "{schedule}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let replicas =
        [berth_jobs::scheduler::Scheduler::new(s.db.clone()), berth_jobs::scheduler::Scheduler::new(s.db.clone())];
    let now = berth_core::time::now_millis() / 1000;
    let (a, b) = tokio::join!(replicas[0].tick(now), replicas[1].tick(now));
    let fired: Vec<i64> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(fired.len(), 1, "one replica queues it: {fired:?}");
    let run = s.wait_ended(&format!("/api/v2.0/system/purgeaudit/{}", fired[0])).await;
    assert_eq!((run["job_kind"].as_str(), run["job_status"].as_str()), (Some("SCHEDULE"), Some("Success")));
    assert_eq!(count("operation%3Dcreate,resource_type%3Dartifact").await, 0);
    assert!(replicas[0].tick(now).await.unwrap().is_empty(), "the same second does not fire twice");

    let history: Vec<Value> =
        s.client.get(s.url("/api/v2.0/system/purgeaudit")).send().await.unwrap().json().await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0]["job_kind"], "SCHEDULE");
    let none = serde_json::json!({"schedule": {"type": "None"}});
    let resp = s.client.put(s.url("/api/v2.0/system/purgeaudit/schedule")).json(&none).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(replicas[0].tick(now + 5).await.unwrap().is_empty(), "no schedule, no run");
    let resp = s.client.get(s.url("/api/v2.0/system/purgeaudit/999")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
