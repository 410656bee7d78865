//! `berth admin audit verify` on a real installation: a record altered or removed directly in
//! the database is reported, and an intact chain passes.

mod common;

use std::process::Command;

use common::*;

fn verify(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["admin", "audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn audit_verify_reports_altered_and_removed_records() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let client = admin_client();
    for name in ["audit-one", "audit-two", "audit-three"] {
        let resp = client
            .post(berth.url("/api/v2.0/projects"))
            .json(&serde_json::json!({ "project_name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    drop(berth);

    let (ok, out) = verify(dir.path());
    assert!(ok, "{out}");
    assert!(out.contains(", 0 problems"), "{out}");

    let url = format!("sqlite://{}", dir.path().join("berth.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let exec = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query(sql).execute(&db).await.unwrap() }
    };
    exec("UPDATE audit_log SET username = 'mallory' WHERE resource = 'audit-two'").await;
    let (ok, out) = verify(dir.path());
    assert!(!ok, "{out}");
    assert!(out.contains("was altered"), "{out}");

    exec("UPDATE audit_log SET username = 'admin' WHERE resource = 'audit-two'").await;
    assert!(verify(dir.path()).0, "restored, the chain holds again");

    exec("DELETE FROM audit_log WHERE resource = 'audit-two'").await;
    let (ok, out) = verify(dir.path());
    assert!(!ok, "{out}");
    assert!(out.contains("records removed before record"), "{out}");

    exec("DELETE FROM audit_log WHERE resource = 'audit-three'").await;
    let (_, out) = verify(dir.path());
    assert!(out.contains("the newest records were removed"), "{out}");
    db.close().await;
}
