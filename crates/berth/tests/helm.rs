//! The Helm chart (`deploy/helm/berth`), checked by `deploy/helm/test/check_chart.py` with
//! Helm's own library and Kubernetes' schemas: every values file renders, lints and validates,
//! refused values are refused, and each rendered Berth configuration is one Berth loads with
//! no key it would ignore. Then the production shape runs: three replicas from the rendered
//! Deployment on PostgreSQL, Redis and S3, behind nginx as the ingress with the chart's TLS.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/test/check_chart.py")
}

/// Key paths of `written` that `effective` (what Berth made of it, serialized) lacks: keys
/// Berth's configuration does not have, which it would silently ignore.
fn unknown_keys(written: &serde_json::Value, effective: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    let serde_json::Value::Object(written) = written else { return };
    for (key, value) in written {
        let path = format!("{at}{key}");
        match effective.get(key) {
            None => out.push(path),
            Some(inner) => unknown_keys(value, inner, &format!("{path}."), out),
        }
    }
}

#[test]
fn the_chart_renders_lints_and_validates_harbors_values() {
    if !have("openssl") || !have_python_modules(&["helm_python", "kubernetes_validate", "yaml"]) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let report = run(Command::new("python3").arg(script()).arg("render").arg(out.path()));
    print!("{report}");
    assert!(report.contains("ok: guide-production:"), "{report}");
    assert!(report.matches("ok: refused").count() >= 10, "{report}");
    let mut cases = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let config = berth::config::Config::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{}: Berth refuses the rendered configuration: {e:#}", path.display()));
        let written: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let effective = serde_json::to_value(&config).unwrap();
        let mut unknown = Vec::new();
        unknown_keys(&written, &effective, "", &mut unknown);
        assert!(unknown.is_empty(), "{}: keys Berth does not have: {unknown:?}\n{text}", path.display());
        cases += 1;
    }
    assert!(cases >= 7, "{cases} cases rendered");
    // The check itself catches a key Berth lacks.
    let mut unknown = Vec::new();
    let config = berth::config::Config::from_yaml("storage:\n  s3:\n    bukket: x\n").unwrap();
    unknown_keys(
        &serde_json::json!({"storage": {"s3": {"bukket": "x"}}}),
        &serde_json::to_value(&config).unwrap(),
        "",
        &mut unknown,
    );
    assert_eq!(unknown, ["storage.s3.bukket"]);
}

#[test]
fn the_rendered_chart_runs_three_replicas_behind_a_tls_ingress() {
    let (Some(postgres), Some(s3)) = (postgres_url(), s3_url()) else { return };
    if !have("nginx")
        || !have("skopeo")
        || !have("redis-server")
        || !have("psql")
        || !have_python_modules(&["helm_python", "kubernetes_validate", "yaml"])
    {
        return;
    }
    let report = run(Command::new("python3")
        .arg(script())
        .arg("run")
        .env("BERTH_BIN", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_TEST_POSTGRES_URL", postgres)
        .env("BERTH_TEST_S3_URL", s3));
    print!("{report}");
    assert!(report.contains("ok: 3 replicas ready"), "{report}");
    assert!(report.contains("3 replicas serve it"), "{report}");
}
