//! Harbor's garbage collection API: a manual run queued and run by the job service, reported
//! with what it freed, its log, the history, the schedule, stopping, and the refusals.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn wait_done(s: &TestServer, id: &str) -> Value {
    s.wait_ended(&format!("/api/v2.0/system/gc/{id}")).await
}

#[tokio::test]
async fn a_manual_collection_runs_and_reports_what_it_freed() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (kept, _) = s.push_image("t/app", "v1", &[b"kept layer"]).await;
    let (gone, _) = s.push_image("t/app", "v2", &[b"layer only v2 had"]).await;
    let resp = s.client.delete(s.url(&format!("/v2/t/app/manifests/{gone}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "time_window": 0, "workers": 2}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    assert!(location.starts_with("/api/v2.0/system/gc/"), "{location}");
    let done = wait_done(&s, &id).await;
    assert_eq!(done["job_status"], "Success", "{done}");
    assert_eq!(done["job_name"], "GARBAGE_COLLECTION");
    assert_eq!(done["job_kind"], "MANUAL");
    let params: Value = serde_json::from_str(done["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["workers"], 2);
    assert_eq!(params["purged_blobs"], 1, "{params}");
    assert_eq!(params["purged_manifests"], 1, "{params}");
    assert!(params["freed_space"].as_u64().unwrap() > b"layer only v2 had".len() as u64, "{params}");

    let blob = s.client.get(s.url(&format!("/v2/t/app/manifests/{kept}"))).send().await.unwrap();
    assert_eq!(blob.status(), StatusCode::OK, "what is referenced stays");
    let log = s.client.get(s.url(&format!("/api/v2.0/system/gc/{id}/log"))).send().await.unwrap();
    assert_eq!(log.status(), StatusCode::OK);
    assert!(log.text().await.unwrap().contains("deleted 1 blobs and 1 manifests"));

    let history = s.client.get(s.url("/api/v2.0/system/gc")).send().await.unwrap();
    assert_eq!(header(&history, "x-total-count"), "1");
    let history: Vec<Value> = history.json().await.unwrap();
    assert_eq!(history[0]["id"].to_string(), id);

    // Stopping an ended execution leaves it as it ended; an unknown one is 404.
    let stop = s.client.put(s.url(&format!("/api/v2.0/system/gc/{id}"))).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::OK);
    assert_eq!(wait_done(&s, &id).await["job_status"], "Success");
    for path in ["/api/v2.0/system/gc/999999", "/api/v2.0/system/gc/999999/log"] {
        assert_eq!(s.client.get(s.url(path)).send().await.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(s.client.put(s.url("/api/v2.0/system/gc/999999")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.client.get(s.url("/api/v2.0/system/gc/x")).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn the_schedule_is_set_shown_and_removed_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let none: Value = s.client.get(s.url("/api/v2.0/system/gc/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(none, json!({}));
    let body = json!({"schedule": {"type": "Custom", "cron": "0 30 2 * * *"}, "parameters": {"dry_run": true}});
    let resp = s.client.put(s.url("/api/v2.0/system/gc/schedule")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let shown: Value = s.client.get(s.url("/api/v2.0/system/gc/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["schedule"]["type"], "Custom");
    assert_eq!(shown["schedule"]["cron"], "0 30 2 * * *");
    assert!(shown["schedule"]["next_scheduled_time"].as_str().unwrap().contains("T02:30:00"), "{shown}");
    let params: Value = serde_json::from_str(shown["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["dry_run"], true);
    assert!(params.get("time_window").is_none(), "a firing takes the configured window: {params}");
    let daily = json!({"schedule": {"type": "Daily"}, "parameters": {}});
    assert_eq!(
        s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&daily).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let shown: Value = s.client.get(s.url("/api/v2.0/system/gc/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["schedule"]["cron"], "0 0 0 * * *");

    for (bad, says) in [
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"workers": 11}}),
            "Workers must be greater than 0 and less than or equal to 10",
        ),
        (json!({"schedule": {"type": "Manual"}, "parameters": {"sweep_harder": true}}), "unknown GC parameter"),
        (json!({"schedule": {"type": "Custom", "cron": "every day"}, "parameters": {}}), "cron"),
        (json!({"schedule": {"type": "Sometimes"}, "parameters": {}}), "Sometimes"),
    ] {
        let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(says), "{bad}: {text}");
    }
    // Refused input changed nothing.
    let shown: Value = s.client.get(s.url("/api/v2.0/system/gc/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["schedule"]["type"], "Daily");
    let history: Vec<Value> = s.client.get(s.url("/api/v2.0/system/gc")).send().await.unwrap().json().await.unwrap();
    assert!(history.is_empty());

    let none = json!({"schedule": {"type": "None"}});
    assert_eq!(
        s.client.put(s.url("/api/v2.0/system/gc/schedule")).json(&none).send().await.unwrap().status(),
        StatusCode::OK
    );
    let gone: Value = s.client.get(s.url("/api/v2.0/system/gc/schedule")).send().await.unwrap().json().await.unwrap();
    assert_eq!(gone, json!({}));

    // Administrators only.
    let user = s.user("gcuser").await;
    for path in ["/api/v2.0/system/gc", "/api/v2.0/system/gc/schedule"] {
        assert_eq!(user.get(s.url(path)).send().await.unwrap().status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(s.anon.get(s.url(path)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let manual = json!({"schedule": {"type": "Manual"}, "parameters": {}});
    assert_eq!(
        user.post(s.url("/api/v2.0/system/gc/schedule")).json(&manual).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    s.stop().await;
}
