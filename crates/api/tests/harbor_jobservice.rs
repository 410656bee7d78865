//! Harbor's job service dashboard and schedules (`/jobservice`, `/schedules`), answered from
//! the real state: the test server's pool and its runners, queues that pause, resume and stop,
//! jobs stopped and their logs, the standing schedules and the scheduler's pause; who may.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get(s: &TestServer, path: &str) -> Value {
    let resp = s.client.get(s.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn put(s: &TestServer, path: &str, body: Value) -> StatusCode {
    s.client.put(s.url(path)).json(&body).send().await.unwrap().status()
}

async fn queue(s: &TestServer, kind: &str) -> Value {
    let queues = get(s, "/api/v2.0/jobservice/queues").await;
    queues.as_array().unwrap().iter().find(|q| q["job_type"] == kind).cloned().unwrap_or_else(|| panic!("{queues}"))
}

/// Queues a dry-run collection; its id.
async fn queue_collection(s: &TestServer) -> String {
    let manual = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&manual).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    header(&resp, "location").rsplit('/').next().unwrap().to_string()
}

async fn status_of(s: &TestServer, id: &str) -> String {
    get(s, &format!("/api/v2.0/system/gc/{id}")).await["job_status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pools_and_workers_are_the_running_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let pools = get(&s, "/api/v2.0/jobservice/pools").await;
    let pools = pools.as_array().unwrap();
    assert_eq!(pools.len(), 1, "{pools:?}");
    let pool = &pools[0];
    assert_eq!(pool["pid"], i64::from(std::process::id()));
    assert_eq!(pool["concurrency"], 2);
    assert!(pool["host"].as_str().is_some_and(|h| !h.is_empty()), "{pool}");
    assert!(pool["start_at"].as_str().unwrap() <= pool["heartbeat_at"].as_str().unwrap());
    let id = pool["worker_pool_id"].as_str().unwrap();
    let workers = get(&s, &format!("/api/v2.0/jobservice/pools/{id}/workers")).await;
    let ids: Vec<&str> = workers.as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("{id}-0"), format!("{id}-1")]);
    assert!(workers.as_array().unwrap().iter().all(|w| w["job_id"] == "" && w["pool_id"] == id), "idle: {workers}");
    assert_eq!(get(&s, "/api/v2.0/jobservice/pools/all/workers").await, workers);
    let resp = s.client.get(s.url("/api/v2.0/jobservice/pools/nope/workers")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The heartbeat goes on (every third of the lease).
    tokio::time::sleep(JOB_LEASE / 3 + std::time::Duration::from_millis(300)).await;
    let later = get(&s, "/api/v2.0/jobservice/pools").await;
    assert!(later[0]["heartbeat_at"].as_str().unwrap() > pool["heartbeat_at"].as_str().unwrap(), "{later}");
    s.stop().await;
}

/// A running job shows on its runner; a stop from the dashboard reaches it, and its log is the
/// execution's.
#[tokio::test]
async fn a_running_job_shows_on_its_worker_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // A PURGE_AUDIT_LOG job holds no runner long enough to look at; a job of a kind the pool
    // does not run is claimed by hand here, as a runner of the pool would, and stays running.
    let pool = get(&s, "/api/v2.0/jobservice/pools").await[0]["worker_pool_id"].as_str().unwrap().to_string();
    let id = s.db.enqueue_job("SLOW_TEST", "{}", 1).await.unwrap();
    let runner = format!("{pool}-1");
    let claimed = s.db.claim_job(&runner, &["SLOW_TEST"], berth_db::now_millis(), 60_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    assert!(s.db.append_job_log(id, &runner, "halfway\n").await.unwrap());
    let workers = get(&s, &format!("/api/v2.0/jobservice/pools/{pool}/workers")).await;
    let busy = workers.as_array().unwrap().iter().find(|w| w["id"] == runner.as_str()).unwrap();
    assert_eq!(
        (busy["job_name"].as_str(), busy["job_id"].as_str()),
        (Some("SLOW_TEST"), Some(id.to_string().as_str()))
    );
    assert!(busy["start_at"].is_string() && busy["checkin_at"].is_string(), "{busy}");

    let log = s.client.get(s.url(&format!("/api/v2.0/jobservice/jobs/{id}/log"))).send().await.unwrap();
    assert_eq!(log.status(), StatusCode::OK);
    assert_eq!(log.text().await.unwrap(), "halfway\n");
    assert_eq!(put(&s, &format!("/api/v2.0/jobservice/jobs/{id}"), json!({})).await, StatusCode::OK);
    let renewal = s.db.renew_job_lease(id, &runner, berth_db::now_millis() + 60_000).await.unwrap();
    assert_eq!(renewal, berth_db::jobs::Renewal::Held { stop_requested: true }, "the runner is told to stop");
    for missing in ["999999", "not-a-job"] {
        assert_eq!(put(&s, &format!("/api/v2.0/jobservice/jobs/{missing}"), json!({})).await, StatusCode::NOT_FOUND);
        let resp = s.client.get(s.url(&format!("/api/v2.0/jobservice/jobs/{missing}/log"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    s.stop().await;
}

#[tokio::test]
async fn queues_pause_resume_and_stop_their_pending_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let gc = queue(&s, "GARBAGE_COLLECTION").await;
    assert_eq!((gc["count"].as_i64(), gc["latency"].as_i64(), gc["paused"].as_bool()), (Some(0), Some(0), Some(false)));
    for kind in ["PURGE_AUDIT_LOG", "HOUSEKEEPING"] {
        queue(&s, kind).await;
    }

    // Paused: a queued collection waits, counted, its wait growing.
    let pause = json!({"action": "pause"});
    assert_eq!(put(&s, "/api/v2.0/jobservice/queues/GARBAGE_COLLECTION", pause.clone()).await, StatusCode::OK);
    let id = queue_collection(&s).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(status_of(&s, &id).await, "Pending");
    let gc = queue(&s, "GARBAGE_COLLECTION").await;
    assert_eq!((gc["count"].as_i64(), gc["paused"].as_bool()), (Some(1), Some(true)));
    assert!(gc["latency"].as_i64().unwrap() >= 1, "{gc}");
    assert_eq!(queue(&s, "PURGE_AUDIT_LOG").await["paused"], false, "other queues run");

    // Resumed: it runs.
    assert_eq!(
        put(&s, "/api/v2.0/jobservice/queues/GARBAGE_COLLECTION", json!({"action": "resume"})).await,
        StatusCode::OK
    );
    assert_eq!(s.wait_ended(&format!("/api/v2.0/system/gc/{id}")).await["job_status"], "Success");
    assert_eq!(queue(&s, "GARBAGE_COLLECTION").await["count"], 0);

    // `all` pauses every queue; stop ends what waits.
    assert_eq!(put(&s, "/api/v2.0/jobservice/queues/all", pause).await, StatusCode::OK);
    let queues = get(&s, "/api/v2.0/jobservice/queues").await;
    assert!(queues.as_array().unwrap().iter().all(|q| q["paused"] == true), "{queues}");
    let id = queue_collection(&s).await;
    assert_eq!(
        put(&s, "/api/v2.0/jobservice/queues/GARBAGE_COLLECTION", json!({"action": "stop"})).await,
        StatusCode::OK
    );
    assert_eq!(status_of(&s, &id).await, "Stopped");
    assert_eq!(queue(&s, "GARBAGE_COLLECTION").await["count"], 0);
    assert_eq!(put(&s, "/api/v2.0/jobservice/queues/all", json!({"action": "resume"})).await, StatusCode::OK);
    let queues = get(&s, "/api/v2.0/jobservice/queues").await;
    assert!(queues.as_array().unwrap().iter().all(|q| q["paused"] == false), "{queues}");

    // Refusals change nothing.
    for (path, body, status) in [
        ("GARBAGE_COLLECTION", json!({"action": "explode"}), StatusCode::UNPROCESSABLE_ENTITY),
        ("GARBAGE_COLLECTION", json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        ("NO_SUCH_JOB", json!({"action": "pause"}), StatusCode::NOT_FOUND),
        ("SCHEDULER", json!({"action": "stop"}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(put(&s, &format!("/api/v2.0/jobservice/queues/{path}"), body).await, status, "{path}");
    }
    let resp = s.client.put(s.url("/api/v2.0/jobservice/queues/all")).body("{").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(get(&s, "/api/v2.0/jobservice/queues").await.as_array().unwrap().iter().all(|q| q["paused"] == false));
    s.stop().await;
}

#[tokio::test]
async fn schedules_are_listed_and_the_scheduler_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    assert_eq!(get(&s, "/api/v2.0/schedules").await, json!([]));
    let weekly = json!({"schedule": {"type": "Weekly", "cron": "0 0 0 * * 0"}, "parameters": {"dry_run": true}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&weekly).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let daily = json!({"schedule": {"type": "Daily", "cron": "0 0 0 * * *"},
        "parameters": {"audit_retention_hour": 24, "include_event_types": "pull_artifact"}});
    let resp = s.client.post(s.url("/api/v2.0/system/purgeaudit/schedule")).json(&daily).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s.client.get(s.url("/api/v2.0/schedules?page_size=1")).send().await.unwrap();
    assert_eq!(header(&resp, "x-total-count"), "2");
    let listed = get(&s, "/api/v2.0/schedules").await;
    let listed: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["vendor_type"].as_str().unwrap(), t["cron"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("GARBAGE_COLLECTION", "0 0 0 * * 0"), ("PURGE_AUDIT_LOG", "0 0 0 * * *")]);

    // The scheduler's queue pauses every schedule: nothing fires while paused.
    assert_eq!(get(&s, "/api/v2.0/schedules/all/paused").await, json!({"paused": false}));
    assert_eq!(put(&s, "/api/v2.0/jobservice/queues/SCHEDULER", json!({"action": "pause"})).await, StatusCode::OK);
    assert_eq!(get(&s, "/api/v2.0/schedules/all/paused").await, json!({"paused": true}));
    let scheduler = berth_jobs::scheduler::Scheduler::new(s.db.clone());
    // The next Sunday midnight: both schedules' time.
    let now = berth_core::time::now_millis() / 1000;
    let sunday = berth_jobs::schedule::Cron::parse("0 0 0 * * 0").unwrap().next_after(now).unwrap();
    assert!(scheduler.tick(sunday).await.unwrap().is_empty(), "paused");
    assert_eq!(put(&s, "/api/v2.0/jobservice/queues/SCHEDULER", json!({"action": "resume"})).await, StatusCode::OK);
    assert_eq!(get(&s, "/api/v2.0/schedules/all/paused").await, json!({"paused": false}));
    assert_eq!(scheduler.tick(sunday + 1).await.unwrap().len(), 2, "both fire once resumed");
    let resp = s.client.get(s.url("/api/v2.0/schedules/GARBAGE_COLLECTION/paused")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

/// System administrators, and robots given `jobservice-monitor` (`list` to look, `stop` to
/// act); nobody else.
#[tokio::test]
async fn only_administrators_and_robots_given_it_see_the_job_service() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let paths = ["/api/v2.0/jobservice/pools", "/api/v2.0/jobservice/queues", "/api/v2.0/schedules"];
    for path in paths {
        assert_eq!(s.anon.get(s.url(path)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let user = s.user("watcher").await;
    for path in paths {
        assert_eq!(user.get(s.url(path)).send().await.unwrap().status(), StatusCode::FORBIDDEN, "{path}");
    }
    let pause = json!({"action": "pause"});
    let resp = user.put(s.url("/api/v2.0/jobservice/queues/all")).json(&pause).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let body = json!({"name": "dash", "level": "system", "duration": -1, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "jobservice-monitor", "action": "list"}]}]});
    let resp = s.client.post(s.url("/api/v2.0/robots")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let robot: Value = resp.json().await.unwrap();
    let robot = client_as(robot["name"].as_str().unwrap(), robot["secret"].as_str().unwrap());
    for path in paths {
        assert_eq!(robot.get(s.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    let resp = robot.put(s.url("/api/v2.0/jobservice/queues/all")).json(&pause).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "listing is not stopping");
    assert!(get(&s, "/api/v2.0/jobservice/queues").await.as_array().unwrap().iter().all(|q| q["paused"] == false));
    s.stop().await;
}
