//! `deploy/monitoring/`: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), every dashboard expression is valid PromQL, and every metric the
//! rules and the dashboard name is one a running Berth exports (on its main port for an
//! administrator, and on `metrics.port` for anyone).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use sha2::Digest as _;

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).current_dir(monitoring_dir()).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metric names in an expression: ours and Harbor's, not Prometheus' own (`up`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word && ["harbor_", "registry_", "berth_", "process_"].iter().any(|p| expr[i..].starts_with(p)) {
            let end = expr[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(expr.len(), |n| i + n);
            names.insert(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test]
async fn rules_and_dashboard_are_valid_and_name_only_exported_metrics() {
    if !have("promtool") {
        return;
    }
    promtool(&["check", "rules", "berth-alerts.yml"]);
    promtool(&["test", "rules", "berth-alerts.test.yml"]);

    let rules: serde_json::Value = {
        let text = std::fs::read_to_string(monitoring_dir().join("berth-alerts.yml")).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    };
    let mut exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring_dir().join("berth-dashboard.json")).unwrap()).unwrap();
    let panel_exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()))
        .collect();
    assert!(panel_exprs.len() >= 20);
    // Grafana's $__rate_interval is not PromQL: as 5m, every expression must parse, which
    // promtool checks of recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut recording = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in panel_exprs.iter().enumerate() {
        let e = e.replace("$__rate_interval", "5m").replace('\'', "''");
        recording.push_str(&format!("      - record: dashboard:panel_{i}\n        expr: '{e}'\n"));
    }
    let recording_file = dir.path().join("dashboard-rules.yml");
    std::fs::write(&recording_file, recording).unwrap();
    promtool(&["check", "rules", recording_file.to_str().unwrap()]);
    exprs.extend(panel_exprs);

    // A Berth that has served /v2 (a blob upload: storage), the API and a failed login.
    let data = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let berth = Berth::start_with(
        data.path(),
        &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BERTH_METRICS__PORT", &metrics_port.to_string())],
    );
    let client = admin_client();
    // The main port asks for an administrator; the metrics port, nobody.
    let anonymous = http_builder().build().unwrap();
    assert_eq!(anonymous.get(berth.url("/metrics")).send().await.unwrap().status(), 401);
    let resp = anonymous.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("# TYPE harbor_up gauge"));
    let blob = b"monitored".to_vec();
    let digest = format!("sha256:{}", hex(&sha2::Sha256::digest(&blob)));
    let resp = client
        .post(berth.url(&format!("/v2/library/watched/blobs/uploads/?digest={digest}")))
        .body(blob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(client.get(berth.url("/api/v2.0/projects")).send().await.unwrap().status(), 200);
    let wrong = http_builder().build().unwrap();
    let resp = wrong.get(berth.url("/api/v2.0/users/current")).basic_auth("admin", Some("nope")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let scrape = client.get(berth.url("/metrics")).send().await.unwrap().text().await.unwrap();
    // Families declared, with the samples their type implies (a family with no label set yet
    // has no samples, but is exported).
    let mut exported = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap();
        exported.insert(name.to_string());
        let suffixes: &[&str] = match kind {
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["_sum", "_count"],
            _ => &[],
        };
        exported.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    assert!(exported.contains("berth_login_failures_total"), "{scrape}");
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(exported.contains(&name), "{name} (in {expr}) is not exported");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
