//! Scan reports' queries against a real database (SQLite, or PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`): a scan queued with a push, a scan of everything's
//! artifacts and tasks, stopping them, and CVE allowlists.

use berth_db::jobs::JobRequest;
use berth_db::scans::{ScanRequest, scan_status};
use berth_db::{Db, NewManifest, NewUser};

mod common;

const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image<'a>(digest: &'a str, artifact_type: &'a str) -> NewManifest<'a> {
    NewManifest {
        digest,
        media_type: "application/vnd.oci.image.manifest.v1+json",
        size: 10,
        artifact_type: Some(artifact_type),
        subject_digest: None,
        annotations: None,
        blobs: vec![],
        manifests: vec![],
        accessory: None,
        extra_attrs: None,
        child_descriptors: None,
        icon: None,
        scan: None,
    }
}

fn scan<'a>(uuid: &'a str, digest: &'a str) -> ScanRequest<'a> {
    ScanRequest {
        uuid,
        digest,
        registration: "r",
        mime_type: "m",
        job: JobRequest { kind: "IMAGE_SCAN".into(), parameters: "{}".into(), max_attempts: 1 },
    }
}

async fn setup(db: &Db) -> (i64, i64) {
    let owner = db
        .create_user(&NewUser {
            username: "o",
            email: None,
            realname: "",
            comment: "",
            password_hash: "x",
            sysadmin: false,
        })
        .await
        .unwrap();
    let project = db.create_project("p", owner, &[]).await.unwrap();
    let a = db.ensure_repository("p/a", project).await.unwrap();
    let b = db.ensure_repository("p/b", project).await.unwrap();
    (a, b)
}

async fn put(db: &Db, repo: i64, m: &NewManifest<'_>) {
    db.put_manifest(repo, m, &[], &db.pin_blob(m.digest).await.unwrap()).await.unwrap();
}

#[tokio::test]
async fn a_push_queues_its_scan_once_per_digest() {
    let t = common::open().await;
    let (a, b) = setup(&t.db).await;
    let d = digest(1);
    let mut m = image(&d, IMAGE_CONFIG);
    m.scan = Some(scan("first", &d));
    put(&t.db, a, &m).await;
    // The same digest pushed elsewhere: its report stands, no second job.
    m.scan = Some(scan("second", &d));
    put(&t.db, b, &m).await;
    let reports = t.db.scan_reports_of(&d).await.unwrap();
    assert_eq!(
        reports.iter().map(|r| (r.uuid.as_str(), r.status.as_str())).collect::<Vec<_>>(),
        [("first", "Pending")]
    );
    let job = t.db.job(reports[0].job_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((job.kind.as_str(), job.trigger.as_str()), ("IMAGE_SCAN", "EVENT"));
}

#[tokio::test]
async fn scan_all_pages_its_artifacts_counts_and_stops_its_tasks() {
    let t = common::open().await;
    let (a, b) = setup(&t.db).await;
    let (d1, d2, d3, d4) = (digest(1), digest(2), digest(3), digest(4));
    put(&t.db, a, &image(&d1, IMAGE_CONFIG)).await;
    put(&t.db, b, &image(&d1, IMAGE_CONFIG)).await;
    put(&t.db, b, &image(&d2, "application/vnd.docker.container.image.v1+json")).await;
    put(&t.db, a, &image(&d3, "application/vnd.cncf.helm.config.v1+json")).await;
    let mut signature = image(&d4, IMAGE_CONFIG);
    signature.accessory = Some((d1.clone(), "signature.cosign"));
    put(&t.db, a, &signature).await;

    let types = [IMAGE_CONFIG, "application/vnd.docker.container.image.v1+json"];
    let first = t.db.scannable_artifacts(&types, "", 1).await.unwrap();
    assert_eq!((first[0].digest.as_str(), first[0].repository.as_str()), (d1.as_str(), "p/a"));
    let rest = t.db.scannable_artifacts(&types, &first[0].digest, 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.digest.as_str()).collect::<Vec<_>>(), [d2.as_str()]);

    let parent = t.db.enqueue_job("SCAN_ALL", "{}", 1).await.unwrap();
    let queued = t.db.request_child_scans(parent, "SCHEDULE", &[scan("s1", &d1), scan("s2", &d2)]).await.unwrap();
    assert_eq!(queued, 2);
    // Asked again while they wait: nothing more.
    assert_eq!(t.db.request_child_scans(parent, "SCHEDULE", &[scan("s3", &d1)]).await.unwrap(), 0);
    assert_eq!(t.db.child_job_statuses(parent).await.unwrap(), [("Pending".to_string(), 2)]);
    assert_eq!(t.db.stop_child_scans(parent).await.unwrap(), 2);
    assert_eq!(t.db.child_job_statuses(parent).await.unwrap(), [("Stopped".to_string(), 2)]);
    assert_eq!(t.db.scan_report("s1").await.unwrap().unwrap().status, scan_status::STOPPED);
    assert_eq!(t.db.latest_job("SCAN_ALL", None).await.unwrap().unwrap().id, parent);
    assert!(t.db.latest_job("SCAN_ALL", Some("SCHEDULE")).await.unwrap().is_none());
}

#[tokio::test]
async fn allowlists_are_one_for_the_system_and_one_per_project_gone_with_it() {
    let t = common::open().await;
    let owner =
        t.db.create_user(&NewUser {
            username: "o",
            email: None,
            realname: "",
            comment: "",
            password_hash: "x",
            sysadmin: false,
        })
        .await
        .unwrap();
    let p = t.db.create_project_with_quota("p", owner, &[], -1, Some((Some(5), r#"["CVE-1"]"#))).await.unwrap();
    assert!(t.db.cve_allowlist(None).await.unwrap().is_none());
    t.db.set_cve_allowlist(None, None, r#"["CVE-2"]"#).await.unwrap();
    t.db.set_cve_allowlist(None, Some(9), r#"["CVE-3"]"#).await.unwrap();
    let system = t.db.cve_allowlist(None).await.unwrap().unwrap();
    assert_eq!((system.project_id, system.expires_at, system.items.as_str()), (None, Some(9), r#"["CVE-3"]"#));
    let own = t.db.project_cve_allowlists(&[p]).await.unwrap();
    assert_eq!((own[0].expires_at, own[0].items.as_str()), (Some(5), r#"["CVE-1"]"#));
    t.db.set_cve_allowlist(Some(p), None, "[]").await.unwrap();
    assert_eq!(t.db.cve_allowlist(Some(p)).await.unwrap().unwrap().items, "[]");
    assert!(t.db.delete_empty_project(p).await.unwrap());
    assert!(t.db.project_cve_allowlists(&[p]).await.unwrap().is_empty());
    assert!(t.db.cve_allowlist(None).await.unwrap().is_some(), "the system's stays");
}
