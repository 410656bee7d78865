//! `/metrics` after a known sequence of pushes, pulls, failures and API calls: the expected
//! counts under Harbor's and Distribution's names and labels, in an exposition that Prometheus'
//! own parsers (the Python client's text and OpenMetrics parsers) read; who may scrape; request
//! ids echoed.

mod common;

use std::collections::BTreeMap;

use berth_api::{ApiOptions, MetricsOptions};
use berth_oci::Digest;
use common::*;
use reqwest::StatusCode;

/// Samples by name and sorted labels, as Prometheus' parser for `format` reads them.
type Labels = Vec<(String, String)>;
type Samples = BTreeMap<(String, Labels), f64>;

fn parse(exposition: &str, openmetrics: bool) -> Samples {
    let parser = if openmetrics { "prometheus_client.openmetrics.parser" } else { "prometheus_client.parser" };
    let script = format!(
        "import sys, json\nfrom {parser} import text_string_to_metric_families\n\
         out = []\n\
         for f in text_string_to_metric_families(sys.stdin.read()):\n\
         \x20   for s in f.samples:\n\
         \x20       out.append([s.name, sorted(s.labels.items()), s.value])\n\
         print(json.dumps(out))\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/install-test-deps installs it with prometheus-client)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the exposition: {}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(String, Labels, serde_json::Value)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter().map(|(name, labels, v)| ((name, labels), v.as_f64().unwrap_or(f64::NAN))).collect()
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut key: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    key.sort();
    samples.get(&(name.to_string(), key)).copied()
}

async fn scrape(s: &TestServer, client: &reqwest::Client, openmetrics: bool) -> Samples {
    let mut req = client.get(s.url("/metrics"));
    if openmetrics {
        req = req.header("accept", "application/openmetrics-text; version=1.0.0");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = header(&resp, "content-type").to_string();
    let text = resp.text().await.unwrap();
    if openmetrics {
        assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        assert!(text.ends_with("# EOF\n"));
    } else {
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    }
    parse(&text, openmetrics)
}

#[tokio::test]
async fn a_known_sequence_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let options = ApiOptions {
        metrics: Some(MetricsOptions { path: "/metrics".into(), require_admin: true }),
        ..Default::default()
    };
    let s = TestServer::start_with_options(dir.path(), None, &options).await;

    // Only a system administrator scrapes the main port.
    let resp = s.anon.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "www-authenticate"), "Basic realm=\"berth\"");
    let user = s.user("watcher").await;
    assert_eq!(user.get(s.url("/metrics")).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    let resp = s.client.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": "met"}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::CREATED);
    let (_, m1) = s.push_image("met/app", "v1", &[b"one"]).await;
    let (_, m2) = s.push_image("met/app", "v2", &[b"two"]).await;
    let (_, m3) = s.push_image("met/other", "v1", &[b"three"]).await;
    // The config (common's), the same in every image, counts once in the project.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.len();
    let usage = (config + 3 + 3 + 5 + m1.len() + m2.len() + m3.len()) as f64;
    for _ in 0..3 {
        let resp = s
            .client
            .get(s.url("/v2/met/app/manifests/v1"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = s.client.get(s.url("/v2/met/app/manifests/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A request id is the client's when it sends one, else a new one; either way echoed.
    let resp = s.anon.get(s.url("/v2/")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "x-request-id"), "trace-me-42");
    let generated = header(&s.anon.get(s.url("/v2/")).send().await.unwrap(), "x-request-id").to_string();
    assert_eq!(generated.len(), 36, "{generated}");
    let wrong = client_as("admin", "not-the-password");
    assert_eq!(wrong.get(s.url("/api/v2.0/users/current")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    s.registry.pulls().flush().await.unwrap();
    let members = s.client.get(s.url("/api/v2.0/projects/met/members")).send().await.unwrap();
    let members = members.json::<Vec<serde_json::Value>>().await.unwrap().len() as f64;

    for openmetrics in [false, true] {
        let m = scrape(&s, &s.client, openmetrics).await;
        let met = [("project_name", "met"), ("public", "false")];
        assert_eq!(value(&m, "harbor_project_repo_total", &met), Some(2.0));
        assert_eq!(
            value(&m, "harbor_project_artifact_total", &[met[0], met[1], ("artifact_type", "IMAGE")]),
            Some(3.0)
        );
        assert_eq!(value(&m, "harbor_artifact_pulled", &[met[0]]), Some(3.0));
        assert_eq!(value(&m, "harbor_project_member_total", &[met[0]]), Some(members));
        assert_eq!(value(&m, "harbor_project_quota_usage_byte", &[met[0]]), Some(usage));
        assert_eq!(value(&m, "harbor_project_quota_byte", &[met[0]]), Some(-1.0));
        let get = |code, handler, method| {
            value(&m, "registry_http_requests_total", &[("code", code), ("handler", handler), ("method", method)])
        };
        assert_eq!(get("200", "manifest", "GET"), Some(3.0));
        assert_eq!(get("404", "manifest", "GET"), Some(1.0));
        assert_eq!(get("201", "manifest", "PUT"), Some(3.0));
        assert_eq!(get("201", "blob_upload", "POST"), Some(6.0), "a config and a layer per image");
        assert_eq!(get("401", "base", "GET"), Some(2.0));
        let created = [("code", "201"), ("method", "POST"), ("operation", "createProject")];
        assert_eq!(value(&m, "harbor_core_http_request_total", &created), Some(1.0));
        let listed = [("method", "GET"), ("operation", "listProjectMembers")];
        assert_eq!(value(&m, "harbor_core_http_request_duration_seconds_count", &listed), Some(1.0));
        assert!(
            value(&m, "harbor_core_http_request_duration_seconds", &[listed[0], listed[1], ("quantile", "0.99")])
                .is_some_and(|v| v > 0.0)
        );
        let durations = [("handler", "manifest"), ("method", "GET"), ("le", "+Inf")];
        assert_eq!(value(&m, "registry_http_request_duration_seconds_bucket", &durations), Some(4.0));
        assert!(value(&m, "registry_http_response_size_bytes_sum", &[("handler", "manifest")]).unwrap() > 0.0);
        let puts = [("action", "PutContent"), ("driver", s.registry.storage_provider())];
        assert!(value(&m, "registry_storage_action_seconds_count", &puts).unwrap() >= 3.0);
        assert!(value(&m, "registry_storage_cache_total", &[("type", "Request")]).unwrap() >= 3.0);
        assert_eq!(value(&m, "harbor_up", &[("component", "database")]), Some(1.0));
        assert_eq!(value(&m, "harbor_up", &[("component", "registry")]), Some(1.0));
        assert_eq!(value(&m, "harbor_health", &[]), Some(1.0));
        assert!(value(&m, "berth_http_received_bytes_total", &[]).unwrap() > 0.0);
        assert!(value(&m, "berth_http_sent_bytes_total", &[]).unwrap() > 0.0);
        assert_eq!(value(&m, "berth_upload_sessions", &[]), Some(0.0));
        assert_eq!(value(&m, "berth_login_failures_total", &[]), Some(1.0));
        assert_eq!(value(&m, "berth_blob_uploads_in_flight", &[]), Some(0.0));
        assert!(value(&m, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
        let info = m.keys().find(|(n, _)| n == "harbor_system_info").unwrap();
        assert!(info.1.contains(&("auth_mode".into(), "db_auth".into())), "{info:?}");
    }

    // Deleting a repository takes its artifacts off the counts (the cascade, counted before).
    let resp = s.client.delete(s.url("/api/v2.0/projects/met/repositories/other")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let m = scrape(&s, &s.client, false).await;
    let met = [("project_name", "met"), ("public", "false")];
    assert_eq!(value(&m, "harbor_project_repo_total", &met), Some(1.0));
    assert_eq!(value(&m, "harbor_project_artifact_total", &[met[0], met[1], ("artifact_type", "IMAGE")]), Some(2.0));
    // ... and the pulls of what remains stay; its layer and manifest leave the usage, the
    // config it shared stays.
    assert_eq!(value(&m, "harbor_artifact_pulled", &[met[0]]), Some(3.0));
    let left = (config + 3 + 3 + m1.len() + m2.len()) as f64;
    assert_eq!(value(&m, "harbor_project_quota_usage_byte", &[met[0]]), Some(left));
    // Deleting an artifact takes its manifest off too (its layer stays linked, as in Harbor
    // until garbage collection).
    let resp =
        s.client.delete(s.url(&format!("/v2/met/app/manifests/{}", Digest::sha256_of(&m2)))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let m = scrape(&s, &s.client, false).await;
    let left = (config + 3 + 3 + m1.len()) as f64;
    assert_eq!(value(&m, "harbor_project_quota_usage_byte", &[met[0]]), Some(left));
    // A limit set shows as the project's quota.
    let quotas: Vec<serde_json::Value> =
        s.client.get(s.url("/api/v2.0/quotas?page_size=100")).send().await.unwrap().json().await.unwrap();
    let id = quotas.iter().find(|q| q["ref"]["name"] == "met").unwrap()["id"].as_i64().unwrap();
    let resp =
        s.client.put(s.url(&format!("/api/v2.0/quotas/{id}"))).json(&serde_json::json!({"hard": {"storage": 1 << 30}}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::OK);
    let m = scrape(&s, &s.client, false).await;
    assert_eq!(value(&m, "harbor_project_quota_byte", &[met[0]]), Some(f64::from(1u32 << 30)));
    s.stop().await;
}

#[tokio::test]
async fn the_metrics_port_is_open_and_the_main_port_can_be() {
    let dir = tempfile::tempdir().unwrap();
    let options = ApiOptions {
        metrics: Some(MetricsOptions { path: "/internal/metrics".into(), require_admin: false }),
        ..Default::default()
    };
    let s = TestServer::start_with_options(dir.path(), None, &options).await;
    let resp = s.anon.get(s.url("/internal/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("harbor_project_total{public=\"false\"}"));

    let app = berth_api::metrics_router(s.registry.clone(), "/metrics");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(berth_api::serve(listener, app, berth_api::ServerLimits::default(), std::future::pending()));
    let resp = s.anon.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let samples = parse(&resp.text().await.unwrap(), false);
    assert!(value(&samples, "harbor_project_total", &[("public", "false")]).unwrap() >= 1.0);
    s.stop().await;
}

/// Harbor's job service metrics: the queues' sizes and waits and the schedules, cluster-wide
/// from the database; the runs this replica ended, by kind and outcome; the jobs running per
/// kind and pool.
#[tokio::test]
async fn the_job_service_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let options = ApiOptions {
        metrics: Some(MetricsOptions { path: "/metrics".into(), require_admin: true }),
        ..Default::default()
    };
    let s = TestServer::start_with_options(dir.path(), None, &options).await;
    let gc = [("type", "GARBAGE_COLLECTION")];
    let m = scrape(&s, &s.client, false).await;
    assert_eq!(value(&m, "harbor_task_queue_size", &gc), Some(0.0));
    assert_eq!(value(&m, "harbor_task_queue_latency", &gc), Some(0.0));
    assert_eq!(value(&m, "harbor_task_scheduled_total", &[]), Some(0.0));

    // A collection waiting in a paused queue.
    let pause = serde_json::json!({"action": "pause"});
    let resp = s.client.put(s.url("/api/v2.0/jobservice/queues/GARBAGE_COLLECTION")).json(&pause).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let manual = serde_json::json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let resp = s.client.post(s.url("/api/v2.0/system/gc/schedule")).json(&manual).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").to_string();
    let weekly = serde_json::json!({"schedule": {"type": "Weekly", "cron": "0 0 0 * * 0"}, "parameters": {}});
    let resp = s.client.put(s.url("/api/v2.0/system/gc/schedule")).json(&weekly).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let m = scrape(&s, &s.client, false).await;
    assert_eq!(value(&m, "harbor_task_queue_size", &gc), Some(1.0));
    assert!(value(&m, "harbor_task_queue_latency", &gc).unwrap() >= 1.0);
    assert_eq!(value(&m, "harbor_task_scheduled_total", &[]), Some(1.0));

    // Resumed, it runs, and the run is counted with its time.
    let resume = serde_json::json!({"action": "resume"});
    let resp =
        s.client.put(s.url("/api/v2.0/jobservice/queues/GARBAGE_COLLECTION")).json(&resume).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.wait_ended(&location).await["job_status"], "Success");
    // A job running on the pool, held by hand (no worker of the pool runs its kind).
    let pools: Vec<serde_json::Value> =
        s.client.get(s.url("/api/v2.0/jobservice/pools")).send().await.unwrap().json().await.unwrap();
    let pool = pools[0]["worker_pool_id"].as_str().unwrap().to_string();
    let held = s.db.enqueue_job("HELD_TEST", "{}", 1).await.unwrap();
    let claimed = s.db.claim_job(&format!("{pool}-0"), &["HELD_TEST"], berth_db::now_millis(), 60_000).await.unwrap();
    assert_eq!(claimed.map(|j| j.id), Some(held));
    for openmetrics in [false, true] {
        let m = scrape(&s, &s.client, openmetrics).await;
        let succeeded = [("type", "GARBAGE_COLLECTION"), ("status", "Success")];
        assert_eq!(value(&m, "harbor_jobservice_task_total", &succeeded), Some(1.0));
        assert_eq!(value(&m, "harbor_jobservice_task_process_time_seconds_count", &succeeded), Some(1.0));
        assert_eq!(value(&m, "harbor_task_queue_size", &gc), Some(0.0));
        assert_eq!(value(&m, "harbor_task_concurrency", &[("type", "HELD_TEST"), ("pool", &pool)]), Some(1.0));
    }
    s.stop().await;
}
