//! Harbor's tag retention (`/retentions`): policies checked as Harbor checks them, one per
//! project; a dry run that lists exactly what the run then removes; immutable tags kept;
//! accessories removed with their artifact; the per-tag mode; one execution at a time per
//! project; scheduled runs; stopping.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn project_id(s: &TestServer, name: &str) -> i64 {
    let p: Value =
        s.client.get(s.url(&format!("/api/v2.0/projects/{name}"))).send().await.unwrap().json().await.unwrap();
    p["project_id"].as_i64().unwrap()
}

fn rule(template: &str, n: Option<i64>, tags: &str, untagged: bool) -> Value {
    let params = match n {
        Some(n) => json!({template: n}),
        None => json!({}),
    };
    json!({
        "priority": 0, "disabled": false, "action": "retain", "template": template, "params": params,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags,
                           "extras": format!("{{\"untagged\":{untagged}}}")}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    })
}

fn policy(project: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({
        "algorithm": "or", "rules": rules, "scope": {"level": "project", "ref": project},
        "trigger": {"kind": "Schedule", "settings": {"cron": cron}, "references": {}},
    })
}

async fn create(s: &TestServer, body: &Value) -> i64 {
    let resp = s.client.post(s.url("/api/v2.0/retentions")).json(body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap()
}

/// Runs the policy (or a dry run) and waits for the execution to end; its id.
async fn run(s: &TestServer, id: i64, dry_run: bool) -> i64 {
    let url = s.url(&format!("/api/v2.0/retentions/{id}/executions"));
    let resp = s.client.post(url).json(&json!({"dry_run": dry_run})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let eid: i64 = header(&resp, "location").rsplit('/').next().unwrap().parse().unwrap();
    wait_execution(s, id, eid).await;
    eid
}

async fn wait_execution(s: &TestServer, id: i64, eid: i64) -> Value {
    s.wait_ended_retention(id, eid).await;
    let url = s.url(&format!("/api/v2.0/retentions/{id}/executions"));
    let list: Value = s.client.get(url).send().await.unwrap().json().await.unwrap();
    list.as_array().unwrap().iter().find(|e| e["id"] == eid).cloned().unwrap()
}

/// The tasks of an execution and each one's table.
async fn tasks(s: &TestServer, id: i64, eid: i64) -> Vec<(Value, String)> {
    let base = format!("/api/v2.0/retentions/{id}/executions/{eid}/tasks");
    let list: Value = s.client.get(s.url(&base)).send().await.unwrap().json().await.unwrap();
    let mut out = Vec::new();
    for t in list.as_array().unwrap() {
        let log = s.client.get(s.url(&format!("{base}/{}", t["id"]))).send().await.unwrap().text().await.unwrap();
        out.push((t.clone(), log));
    }
    out
}

/// The (digest, tags) rows a table marks `DEL`.
fn marked_for_removal(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| l.ends_with("| DEL |"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

async fn tags_of(s: &TestServer, repo: &str) -> Vec<String> {
    let body: Value = s.client.get(s.url(&format!("/v2/{repo}/tags/list"))).send().await.unwrap().json().await.unwrap();
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

async fn exists(s: &TestServer, repo: &str, digest: &str) -> bool {
    let resp = s.client.head(s.url(&format!("/v2/{repo}/manifests/{digest}"))).send().await.unwrap();
    resp.status() == StatusCode::OK
}

#[tokio::test]
async fn policies_are_checked_and_one_per_project() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let meta: Value = s.client.get(s.url("/api/v2.0/retentions/metadatas")).send().await.unwrap().json().await.unwrap();
    let templates: Vec<&str> =
        meta["templates"].as_array().unwrap().iter().map(|t| t["rule_template"].as_str().unwrap()).collect();
    for t in [
        "latestPushedK",
        "latestPulledN",
        "latestActiveK",
        "lastXDays",
        "nDaysSinceLastPush",
        "nDaysSinceLastPull",
        "always",
    ] {
        assert!(templates.contains(&t), "{t}: {templates:?}");
    }
    assert_eq!(meta["tag_selectors"][0]["decorations"], json!(["matches", "excludes"]));

    let t = project_id(&s, "t").await;
    let bad = [
        (policy(t, (0..16).map(|_| rule("always", None, "**", false)).collect(), ""), "at most 15"),
        (policy(t, vec![rule("latestPushedK", None, "**", false)], ""), "needs params.latestPushedK"),
        (policy(t, vec![rule("newest", Some(1), "**", false)], ""), "is not one of"),
        (policy(t, vec![rule("always", None, "[", false)], ""), "invalid pattern"),
        (policy(t, vec![rule("always", None, "**", false)], "every day"), "cron"),
        (json!({"rules": [], "scope": {"level": "system", "ref": t}}), "scope level"),
        (json!({"rules": [], "scope": {"level": "project", "ref": t}, "colour": "red"}), "unknown field"),
    ];
    for (body, needle) in bad {
        let resp = s.client.post(s.url("/api/v2.0/retentions")).json(&body).send().await.unwrap();
        let err = assert_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let body = policy(t, vec![rule("latestPushedK", Some(3), "**", true)], "0 0 0 * * *");
    let id = create(&s, &body).await;
    let shown: Value =
        s.client.get(s.url(&format!("/api/v2.0/retentions/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((shown["id"].as_i64(), &shown["scope"]["ref"]), (Some(id), &json!(t)));
    assert_eq!(shown["rules"][0]["params"], json!({"latestPushedK": 3}));
    assert_eq!(shown["trigger"]["settings"]["cron"], "0 0 0 * * *");
    let project: Value = s.client.get(s.url("/api/v2.0/projects/t")).send().await.unwrap().json().await.unwrap();
    assert_eq!(project["metadata"]["retention_id"], id.to_string());
    let schedules: Value = s.client.get(s.url("/api/v2.0/schedules")).send().await.unwrap().json().await.unwrap();
    assert!(
        schedules.as_array().unwrap().iter().any(|x| x["vendor_type"] == "RETENTION" && x["vendor_id"] == id),
        "{schedules}"
    );
    // A second policy for the project is a conflict; outsiders see nothing.
    let resp = s.client.post(s.url("/api/v2.0/retentions")).json(&body).send().await.unwrap();
    assert_error(resp, StatusCode::CONFLICT, "CONFLICT").await;
    let alice = s.user("alice").await;
    let resp = alice.get(s.url(&format!("/api/v2.0/retentions/{id}"))).send().await.unwrap();
    assert!(resp.status() == StatusCode::FORBIDDEN || resp.status() == StatusCode::NOT_FOUND, "{}", resp.status());
    let guest = s.member("t", "guest", 3).await;
    let resp = guest.put(s.url(&format!("/api/v2.0/retentions/{id}"))).json(&body).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // Updated without a schedule, then deleted with its link.
    let resp = s.client.put(s.url(&format!("/api/v2.0/retentions/{id}"))).json(&policy(t, vec![], "")).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::OK);
    let schedules: Value = s.client.get(s.url("/api/v2.0/schedules")).send().await.unwrap().json().await.unwrap();
    assert!(!schedules.as_array().unwrap().iter().any(|x| x["vendor_type"] == "RETENTION"), "{schedules}");
    assert_eq!(
        s.client.delete(s.url(&format!("/api/v2.0/retentions/{id}"))).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        s.client.get(s.url(&format!("/api/v2.0/retentions/{id}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let project: Value = s.client.get(s.url("/api/v2.0/projects/t")).send().await.unwrap().json().await.unwrap();
    assert!(project["metadata"].get("retention_id").is_none(), "{project}");
}

#[tokio::test]
async fn a_run_removes_exactly_what_its_dry_run_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut digests = Vec::new();
    for (i, tag) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        digests.push(s.push_image("t/app", tag, &[format!("layer {i}").as_bytes()]).await.0.to_string());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // An untagged artifact, and a signature of v2 (an accessory: it goes with its subject).
    let untagged = s.image_manifest("t/app", &[b"untagged"]).await;
    let untagged_digest = berth_oci::Digest::sha256_of(&untagged).to_string();
    let resp = s
        .client
        .put(s.url(&format!("/v2/t/app/manifests/{untagged_digest}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(untagged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let signature_tag = format!("{}.sig", digests[1].replace(':', "-"));
    let (signature, _) = s.push_image("t/app", &signature_tag, &[b"signature"]).await;
    s.push_image("t/other", "only", &[b"other"]).await;
    // v1 is immutable.
    let resp = s
        .client
        .post(s.url("/api/v2.0/projects/t/immutabletagrules"))
        .json(&json!({
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Keep the two newest tagged artifacts of t/app; t/other is not selected.
    let mut r = rule("latestPushedK", Some(2), "**", false);
    r["scope_selectors"]["repository"][0]["pattern"] = json!("app");
    let id = create(&s, &policy(project_id(&s, "t").await, vec![r], "")).await;

    let dry = run(&s, id, true).await;
    let dry_tasks = tasks(&s, id, dry).await;
    assert_eq!(dry_tasks.len(), 1, "one task, for t/app only");
    let (task, log) = &dry_tasks[0];
    assert_eq!(
        (task["repository"].as_str(), task["total"].as_i64(), task["retained"].as_i64()),
        (Some("t/app"), Some(5), Some(3))
    );
    let mut listed = marked_for_removal(log);
    listed.sort();
    let mut expected = vec![(digests[1].clone(), "v2".to_string()), (untagged_digest.clone(), String::new())];
    expected.sort();
    assert_eq!(listed, expected, "{log}");
    assert!(log.contains("| IMMUTABLE |"), "{log}");
    // Nothing moved.
    assert_eq!(tags_of(&s, "t/app").await.len(), 5);
    assert!(exists(&s, "t/app", &untagged_digest).await);

    let real = run(&s, id, false).await;
    assert_eq!(wait_execution(&s, id, real).await["dry_run"], false);
    let (_, real_log) = &tasks(&s, id, real).await[0];
    let mut removed = marked_for_removal(real_log);
    removed.sort();
    assert_eq!(removed, listed);
    for (digest, _) in &listed {
        assert!(!exists(&s, "t/app", digest).await, "{digest} was listed and must be gone");
    }
    assert!(!exists(&s, "t/app", &signature.to_string()).await, "the signature goes with v2");
    assert_eq!(tags_of(&s, "t/app").await, ["v1", "v3", "v4"]);
    assert_eq!(tags_of(&s, "t/other").await, ["only"]);
    // GC frees what the run removed: v2's own layer.
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "time_window": 0}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&body).send().await.unwrap();
    let location = header(&resp, "location").to_string();
    assert_eq!(s.wait_ended(&location).await["job_status"], "Success");
    let layer = berth_oci::Digest::sha256_of(b"layer 1");
    let resp = s.client.get(s.url(&format!("/v2/t/app/blobs/{layer}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let executions: Value = s
        .client
        .get(s.url(&format!("/api/v2.0/retentions/{id}/executions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flags: Vec<(bool, &str)> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["dry_run"].as_bool().unwrap(), e["trigger"].as_str().unwrap()))
        .collect();
    assert_eq!(flags, [(false, "MANUAL"), (true, "MANUAL")]);
}

#[tokio::test]
async fn per_tag_mode_removes_tags_that_no_rule_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (both, _) = s.push_image("t/app", "release-1", &[b"one"]).await;
    let resp = s
        .client
        .put(s.url("/v2/t/app/manifests/dev-1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(s.image_manifest("t/app", &[b"one"]).await)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (dev_only, _) = s.push_image("t/app", "dev-2", &[b"two"]).await;
    let mut body = policy(project_id(&s, "t").await, vec![rule("always", None, "release-*", false)], "");
    body["per_tag"] = json!(true);
    let id = create(&s, &body).await;
    let shown: Value =
        s.client.get(s.url(&format!("/api/v2.0/retentions/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["per_tag"], true);
    run(&s, id, false).await;
    assert_eq!(tags_of(&s, "t/app").await, ["release-1"], "dev-1 went though its artifact stays");
    assert!(exists(&s, "t/app", &both.to_string()).await);
    assert!(!exists(&s, "t/app", &dev_only.to_string()).await, "an artifact left with no tag goes");
}

#[tokio::test]
async fn one_execution_at_a_time_stopping_and_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"one"]).await;
    let id = create(&s, &policy(project_id(&s, "t").await, vec![rule("always", None, "**", true)], "")).await;
    // With the queue paused, an execution waits; a second is refused until it ends.
    let queue = s.url("/api/v2.0/jobservice/queues/RETENTION");
    assert_eq!(s.client.put(&queue).json(&json!({"action": "pause"})).send().await.unwrap().status(), StatusCode::OK);
    let url = s.url(&format!("/api/v2.0/retentions/{id}/executions"));
    let first = s.client.post(&url).json(&json!({"dry_run": false})).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let eid: i64 = header(&first, "location").rsplit('/').next().unwrap().parse().unwrap();
    let second = s.client.post(&url).json(&json!({})).send().await.unwrap();
    assert_error(second, StatusCode::CONFLICT, "CONFLICT").await;
    let patch = |action: &str| {
        s.client
            .patch(s.url(&format!("/api/v2.0/retentions/{id}/executions/{eid}")))
            .json(&json!({"action": action}))
            .send()
    };
    assert_error(patch("pause").await.unwrap(), StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    assert_eq!(patch("stop").await.unwrap().status(), StatusCode::OK);
    assert_eq!(wait_execution(&s, id, eid).await["status"], "Stopped");
    assert_eq!(s.client.put(&queue).json(&json!({"action": "resume"})).send().await.unwrap().status(), StatusCode::OK);
    // The claim: a second job of the policy cannot run while one holds it.
    let holder = s.db.enqueue_job("DEMO", "{}", 1).await.unwrap();
    s.db.claim_job("test-runner", &["DEMO"], berth_db::now_millis(), 60_000).await.unwrap();
    assert!(s.db.claim_retention(id, holder).await.unwrap());
    assert!(!s.db.claim_retention(id, holder + 1000).await.unwrap());
    s.db.release_retention(id, holder).await.unwrap();
    assert!(s.db.claim_retention(id, holder + 1000).await.unwrap());
    s.db.release_retention(id, holder + 1000).await.unwrap();

    // On a schedule (every second): an execution triggered by it runs.
    let body = policy(project_id(&s, "t").await, vec![rule("always", None, "**", true)], "* * * * * *");
    let resp = s.client.put(s.url(&format!("/api/v2.0/retentions/{id}"))).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The scheduler (which the binary runs every second) fires it.
    let fired = berth_jobs::scheduler::Scheduler::new(s.db.clone()).tick(berth_db::now_millis() / 1000 + 2).await;
    assert_eq!(fired.unwrap().len(), 1);
    let list: Value = s.client.get(&url).send().await.unwrap().json().await.unwrap();
    let scheduled = list.as_array().unwrap().iter().find(|e| e["trigger"] == "SCHEDULE").cloned();
    let scheduled = scheduled.expect("the firing queued no execution");
    let ended = wait_execution(&s, id, scheduled["id"].as_i64().unwrap()).await;
    assert_eq!(ended["status"], "Success", "{ended}");

    // A project deleted takes its policy and the policy's schedule.
    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "brief"})).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::CREATED);
    let brief = create(&s, &policy(project_id(&s, "brief").await, vec![], "0 0 0 * * *")).await;
    assert_eq!(s.client.delete(s.url("/api/v2.0/projects/brief")).send().await.unwrap().status(), StatusCode::OK);
    let schedules: Value = s.client.get(s.url("/api/v2.0/schedules")).send().await.unwrap().json().await.unwrap();
    assert!(!schedules.as_array().unwrap().iter().any(|x| x["vendor_id"] == brief), "{schedules}");
}
