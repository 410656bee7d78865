//! Scan reports' queries against a real database (SQLite, or PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`): a scan queued with a push, a scan of everything's
//! artifacts and tasks, stopping them, and CVE allowlists.

use berth_db::jobs::JobRequest;
use berth_db::scans::{ScanRequest, ScanResult, VulnerabilityRow, scan_status};
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

fn vulnerability(
    cve: &str,
    package: &str,
    severity: &str,
    rank: i64,
    cvss: Option<f64>,
    fixed: &str,
) -> VulnerabilityRow {
    VulnerabilityRow {
        cve_id: cve.into(),
        package: package.into(),
        version: "1.0".into(),
        fixed_version: fixed.into(),
        severity: severity.into(),
        severity_rank: rank,
        cvss_v3: cvss,
        description: format!("{cve} in {package}"),
        links: format!("[\"https://example.com/{cve}\"]"),
    }
}

/// The security hub's queries: vulnerabilities written with a report's end (and replaced by
/// the next), counted per artifact (an image in two repositories counts twice), the most
/// dangerous CVEs and artifacts, a filtered page; a failed rescan leaves none.
#[tokio::test]
async fn the_security_hub_sums_and_lists_every_artifacts_vulnerabilities() {
    let t = common::open().await;
    let (a, b) = setup(&t.db).await;
    let (d1, d2) = (digest(7), digest(8));
    for (repo, d) in [(a, &d1), (b, &d1), (a, &d2)] {
        put(&t.db, repo, &image(d, IMAGE_CONFIG)).await;
    }
    let tagged = t.db.manifest_by_digest(a, &d1).await.unwrap().unwrap();
    t.db.put_tag(a, "v1", tagged.id).await.unwrap();
    t.db.request_scan(&scan("s1", &d1)).await.unwrap();
    t.db.request_scan(&scan("s2", &d2)).await.unwrap();
    let first = [
        vulnerability("CVE-1", "openssl", "Critical", 5, Some(9.8), "1.1"),
        vulnerability("CVE-2", "zlib", "High", 4, Some(7.5), ""),
        vulnerability("CVE-3", "curl", "Medium", 3, None, "1.2"),
    ];
    fn ended(vulnerabilities: &[VulnerabilityRow]) -> ScanResult<'_> {
        ScanResult { severity: "Critical", summary: "{}", report: "{}", findings: "[]", vulnerabilities }
    }
    t.db.scan_ended("s1", scan_status::SUCCESS, Some(&ended(&first))).await.unwrap();
    t.db.scan_ended("s2", scan_status::SUCCESS, Some(&ended(&first[1..]))).await.unwrap();

    let counts = t.db.security_counts().await.unwrap();
    assert_eq!((counts.artifacts, counts.scanned), (3, 3));
    let mut by_severity = counts.by_severity.clone();
    by_severity.sort();
    assert_eq!(by_severity, [("Critical".to_string(), 2, 2), ("High".to_string(), 3, 0), ("Medium".to_string(), 3, 3)]);
    let cves = t.db.dangerous_cves(5).await.unwrap();
    let shown: Vec<(&str, Option<f64>)> = cves.iter().map(|c| (c.cve_id.as_str(), c.cvss_v3)).collect();
    assert_eq!(shown, [("CVE-1", Some(9.8)), ("CVE-2", Some(7.5))]);
    let artifacts = t.db.dangerous_artifacts(5).await.unwrap();
    let shown: Vec<(&str, &str, i64, i64, i64)> =
        artifacts.iter().map(|a| (a.repository.as_str(), a.digest.as_str(), a.critical, a.high, a.medium)).collect();
    assert_eq!(shown, [("p/a", d1.as_str(), 1, 1, 1), ("p/b", d1.as_str(), 1, 1, 1), ("p/a", d2.as_str(), 0, 1, 1)]);

    let query = |q: &str| berth_db::ListQuery {
        terms: vec![(q.split('=').next().unwrap().into(), berth_db::Match::Exact(q.split('=').nth(1).unwrap().into()))],
        sort: vec![],
    };
    let (page, total) = t.db.list_artifact_vulnerabilities(&query("repository_name=p/a"), 2, 0).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|v| v.cve_id.as_str()).collect::<Vec<_>>(), ["CVE-1", "CVE-2"]);
    assert_eq!(page[0].links, ["https://example.com/CVE-1"]);
    let (_, total) = t.db.list_artifact_vulnerabilities(&query("tag=v1"), 10, 0).await.unwrap();
    assert_eq!(total, 3);
    let score = berth_db::ListQuery {
        terms: vec![("cvss_score_v3".into(), berth_db::Match::Range(Some("7.6".into()), None))],
        sort: vec![],
    };
    let (page, _) = t.db.list_artifact_vulnerabilities(&score, 10, 0).await.unwrap();
    assert_eq!(page.iter().map(|v| v.repository.as_str()).collect::<Vec<_>>(), ["p/a", "p/b"]);
    assert!(t.db.list_artifact_vulnerabilities(&query("status=fixed"), 10, 0).await.is_err());

    // A rescan that fails leaves its artifact nothing listed.
    t.db.request_scan(&scan("s3", &d2)).await.unwrap();
    t.db.scan_ended("s3", scan_status::ERROR, None).await.unwrap();
    assert_eq!(t.db.security_counts().await.unwrap().scanned, 2);
    let (_, total) = t.db.list_artifact_vulnerabilities(&berth_db::ListQuery::default(), 10, 0).await.unwrap();
    assert_eq!(total, 6);
}
