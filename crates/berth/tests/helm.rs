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
        // Berth refuses a key it does not have, so a value the chart maps to nothing fails here.
        berth::config::Config::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{}: Berth refuses the rendered configuration: {e:#}\n{text}", path.display()));
        cases += 1;
    }
    assert!(cases >= 7, "{cases} cases rendered");
    // The check itself catches a key Berth lacks.
    let refused = berth::config::Config::from_yaml("storage:\n  s3:\n    bukket: x\n").unwrap_err();
    assert!(format!("{refused:#}").contains("storage.s3.bukket"), "{refused:#}");
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
