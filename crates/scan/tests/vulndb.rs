//! The vulnerability database in the registry's database, on SQLite or (with
//! `BERTH_TEST_DATABASE=postgres`) PostgreSQL: imports replace feeds whole, leave other feeds
//! alone, change nothing when a record is broken, and serve the matching that follows.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_db::Db;
use berth_scan::inventory::{Installed, Inventory};
use berth_scan::matching::find_vulnerabilities;
use berth_scan::pkgdb::Package;
use berth_scan::vulndb::{import, index_for, updated_at};

async fn open_db(dir: &Path) -> Db {
    if std::env::var("BERTH_TEST_DATABASE").as_deref() != Ok("postgres") {
        return Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    }
    let admin =
        std::env::var("BERTH_TEST_POSTGRES_URL").expect("BERTH_TEST_DATABASE=postgres needs BERTH_TEST_POSTGRES_URL");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let url = berth_db::create_postgres_database(&admin, &format!("berth_test_{}_{nanos}", std::process::id()))
        .await
        .unwrap();
    Db::connect(&url, 4).await.unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vulndb").join(name)
}

fn crate_inventory(name: &str, version: &str) -> Inventory {
    Inventory {
        os: None,
        packages: vec![Installed {
            ecosystem: "crates.io".into(),
            package: Package {
                name: name.into(),
                version: version.into(),
                source_name: None,
                source_version: None,
                architecture: None,
                licenses: Vec::new(),
            },
            layer: 0,
            path: "app/Cargo.lock".into(),
        }],
    }
}

async fn ids(db: &Db, inventory: &Inventory) -> Vec<String> {
    let index = index_for(db, inventory).await.unwrap();
    let mut ids: Vec<String> = find_vulnerabilities(inventory, &index).into_iter().map(|f| f.advisory).collect();
    ids.sort();
    ids
}

const RECORD: &str = r#"{"id": "RUSTSEC-2099-0001", "summary": "a test advisory",
  "affected": [{"package": {"ecosystem": "crates.io", "name": "hyper"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.14.0"}, {"fixed": "0.14.99"}]}]}]}"#;

#[tokio::test]
async fn imports_replace_their_feeds_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    assert_eq!(updated_at(&db).await.unwrap(), None);
    let hyper = crate_inventory("hyper", "0.14.9");

    let rustsec = import(&db, &fixture("rustsec-advisory-db-osv-7fa931cb.tar.gz")).await.unwrap();
    assert_eq!(rustsec.feeds.len(), 1);
    assert_eq!((rustsec.feeds[0].name.as_str(), rustsec.feeds[0].advisories), ("crates.io:RUSTSEC", 1206));
    assert_eq!(ids(&db, &hyper).await, ["RUSTSEC-2021-0078", "RUSTSEC-2021-0079"]);
    assert!(updated_at(&db).await.unwrap().is_some());

    // Another feed beside it, from a zip as osv.dev publishes them.
    let zip_path = dir.path().join("all.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("GO-2099-0001.json", options).unwrap();
    zip.write_all(
        br#"{"id": "GO-2099-0001", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#,
    )
    .unwrap();
    zip.finish().unwrap();
    let go = import(&db, &zip_path).await.unwrap();
    assert_eq!((go.feeds[0].name.as_str(), go.feeds[0].advisories), ("Go:GO", 1));
    assert_eq!(ids(&db, &hyper).await, ["RUSTSEC-2021-0078", "RUSTSEC-2021-0079"]);

    // A newer export of the same feed replaces it whole: what it dropped is gone.
    let newer = dir.path().join("newer");
    std::fs::create_dir_all(newer.join("crates")).unwrap();
    std::fs::write(newer.join("crates/RUSTSEC-2099-0001.json"), RECORD).unwrap();
    std::fs::write(newer.join("README.md"), "not an advisory").unwrap();
    let replaced = import(&db, &newer).await.unwrap();
    assert_eq!((replaced.feeds[0].advisories, replaced.walk.skipped), (1, 1));
    assert_eq!(ids(&db, &hyper).await, ["RUSTSEC-2099-0001"]);
    let feeds: Vec<(String, i64)> =
        db.vuln_feeds().await.unwrap().into_iter().map(|f| (f.name, f.advisories)).collect();
    assert_eq!(feeds, [("Go:GO".to_string(), 1), ("crates.io:RUSTSEC".to_string(), 1)]);

    // A broken record: refused, and nothing changes.
    std::fs::write(newer.join("crates/RUSTSEC-2099-0002.json"), r#"{"id": "RUSTSEC-2099-0002", "affected": [{"package": {"ecosystem": "crates.io", "name": "x"}, "ranges": [{"type": "NOPE"}]}]}"#).unwrap();
    std::fs::write(newer.join("crates/RUSTSEC-2099-0001.json"), RECORD.replace("0.14.99", "0.14.5")).unwrap();
    let err = import(&db, &newer).await.unwrap_err().to_string();
    assert!(err.contains("RUSTSEC-2099-0002") && err.contains("nothing was imported"), "{err}");
    assert_eq!(ids(&db, &hyper).await, ["RUSTSEC-2099-0001"]);

    // Nothing that is an advisory, or not a feed at all: refused.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "hello").unwrap();
    assert!(import(&db, &empty).await.unwrap_err().to_string().contains("no advisories"));
    assert!(import(&db, &dir.path().join("missing.rar")).await.is_err());
}

#[tokio::test]
async fn debian_oval_imports_per_release() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let imported = import(&db, &fixture("oval-definitions-bookworm.2023-07-14.xml.gz")).await.unwrap();
    assert_eq!(imported.feeds.len(), 1);
    assert_eq!(imported.feeds[0].name, "Debian:12:CVE");
    assert!(imported.feeds[0].advisories > 20_000, "{:?}", imported.feeds);
    let mut inventory = crate_inventory("libssl3", "3.0.8-1");
    inventory.packages[0].ecosystem = "Debian:12".into();
    inventory.packages[0].package.source_name = Some("openssl".into());
    let index = index_for(&db, &inventory).await.unwrap();
    let mut ids: Vec<String> = find_vulnerabilities(&inventory, &index).into_iter().map(|f| f.id).collect();
    ids.sort();
    assert_eq!(ids, ["CVE-2023-0464", "CVE-2023-0465", "CVE-2023-0466", "CVE-2023-1255", "CVE-2023-2650"]);
}

/// An installed dpkg package of `ecosystem`, built from source package `source`.
fn dpkg_inventory(ecosystem: &str, packages: &[(&str, &str, &str)]) -> Inventory {
    let mut inventory = Inventory::default();
    for (name, version, source) in packages {
        let mut one = crate_inventory(name, version);
        one.packages[0].ecosystem = ecosystem.into();
        one.packages[0].package.source_name = (name != source).then(|| source.to_string());
        inventory.packages.extend(one.packages);
    }
    inventory
}

/// Canonical's USN OVAL: a notice per definition, binary package names (through the files'
/// variable lists), scoped to the release the file checks for; matched on the binary
/// package, whose source differs. The known answers of the fixtures' SOURCES.md.
#[tokio::test]
async fn ubuntu_usn_oval_matches_binary_packages() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let noble = import(&db, &fixture("com.ubuntu.noble.usn.oval.2024-12-24.xml.gz")).await.unwrap();
    assert_eq!(noble.feeds.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Ubuntu:24.04:USN"]);
    let jammy = import(&db, &fixture("com.ubuntu.jammy.usn.oval.2023-10-09.xml.gz")).await.unwrap();
    assert_eq!(jammy.feeds[0].name, "Ubuntu:22.04:USN");

    let inventory = dpkg_inventory(
        "Ubuntu:24.04",
        &[
            ("libssl3t64", "3.0.13-0ubuntu3", "openssl"),
            ("openssl", "3.0.13-0ubuntu3", "openssl"),
            ("curl", "8.5.0-2ubuntu10", "curl"),
            ("libc6", "2.39-0ubuntu8", "glibc"),
        ],
    );
    let index = index_for(&db, &inventory).await.unwrap();
    let findings = find_vulnerabilities(&inventory, &index);
    let of = |package: &str| {
        let mut ids: Vec<String> =
            findings.iter().filter(|f| f.package == package).map(|f| f.advisory.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(of("libssl3t64"), ["USN-6663-3", "USN-6937-1", "USN-6986-1"]);
    assert_eq!(of("openssl"), ["USN-6663-3", "USN-6937-1", "USN-6986-1"]);
    assert_eq!(of("curl"), ["USN-6718-3", "USN-6944-1", "USN-7012-1", "USN-7104-1", "USN-7162-1"]);
    assert_eq!(of("libc6"), ["USN-6737-2", "USN-6804-1"]);
    // A finding shows the notice's CVE, its fix, and Canonical's priority where it has one.
    let curl = findings.iter().find(|f| f.advisory == "USN-7104-1").unwrap();
    assert_eq!((curl.id.as_str(), curl.severity), ("CVE-2024-9681", berth_scan::advisory::Severity::Low));
    assert!(curl.fix_version.is_some(), "{curl:?}");

    // The same package names in 22.04 are 22.04's notices only.
    let jammy = dpkg_inventory("Ubuntu:22.04", &[("libssl3", "3.0.2-0ubuntu1.7", "openssl")]);
    let index = index_for(&db, &jammy).await.unwrap();
    let mut ids: Vec<String> = find_vulnerabilities(&jammy, &index).into_iter().map(|f| f.advisory).collect();
    ids.sort();
    assert_eq!(ids, ["USN-5844-1", "USN-6039-1", "USN-6119-1"]);
}

/// The Debian security tracker's DSA and DLA lists: a feed per release and list, matched on
/// the source package; the known answers of the fixtures' SOURCES.md.
#[tokio::test]
async fn debian_dsa_and_dla_lists_import_per_release() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let imported = import(&db, &fixture("debian-security-tracker-dsa-dla-32127b7f.tar.gz")).await.unwrap();
    let feeds: Vec<&str> = imported.feeds.iter().map(|f| f.name.as_str()).collect();
    for feed in ["Debian:11:DSA", "Debian:10:DSA", "Debian:10:DLA", "Debian:9:DLA"] {
        assert!(feeds.contains(&feed), "{feeds:?}");
    }
    let ids = |inventory: Inventory| {
        let db = db.clone();
        async move {
            let index = index_for(&db, &inventory).await.unwrap();
            let mut ids: Vec<String> =
                find_vulnerabilities(&inventory, &index).into_iter().map(|f| f.advisory).collect();
            ids.sort();
            ids
        }
    };
    let bullseye = |packages: &[(&str, &str, &str)]| dpkg_inventory("Debian:11", packages);
    assert_eq!(ids(bullseye(&[("libssl1.1", "1.1.1n-0+deb11u3", "openssl")])).await, ["DSA-5343-1"]);
    assert_eq!(ids(bullseye(&[("zlib1g", "1:1.2.11.dfsg-2+deb11u1", "zlib")])).await, ["DSA-5218-1"]);
    assert_eq!(ids(bullseye(&[("curl", "7.74.0-1.3+deb11u5", "curl")])).await, ["DSA-5365-1"]);
    let buster = dpkg_inventory("Debian:10", &[("libssl1.1", "1.1.1n-0+deb10u3", "openssl")]);
    assert_eq!(ids(buster).await, ["DLA-3325-1"]);
}

/// A server on loopback answering `GET <path>` with the body `routes` gives it (404 for any
/// other path), one request per connection; its URL.
async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let routes = std::sync::Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                let path = line.split(' ').nth(1).unwrap_or("");
                let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => ("200 OK", body.clone()),
                    None => ("404 Not Found", Vec::new()),
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    url
}

/// The scheduled download: an archive and a single record file (imported from a directory
/// holding it), each fetched and imported with its URL and digest as the source; the same
/// bytes again import nothing; a missing feed is an error that names it and changes nothing.
#[tokio::test]
async fn downloaded_feeds_are_imported_once_per_content() {
    use berth_scan::download::FeedDownloader;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let rustsec = std::fs::read(fixture("rustsec-advisory-db-osv-7fa931cb.tar.gz")).unwrap();
    let go_record = br#"{"id": "GO-2099-0001", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#;
    let url = serve(vec![("/rustsec.tar.gz", rustsec), ("/go/GO-2099-0001.json", go_record.to_vec())]).await;
    let (archive, record, missing) =
        (format!("{url}/rustsec.tar.gz"), format!("{url}/go/GO-2099-0001.json"), format!("{url}/gone.zip"));
    let scratch = dir.path().join("downloads");
    berth_store::install_tls_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let feeds = FeedDownloader::new(db.clone(), client, vec![archive.clone(), record.clone()], scratch.clone());
    assert!(feeds.any_never_imported().await.unwrap());

    let done = feeds.update(&archive).await.unwrap();
    assert!(done.contains("1206 advisories imported into crates.io:RUSTSEC (1206)"), "{done}");
    assert!(feeds.any_never_imported().await.unwrap(), "the record file is not imported yet");
    let done = feeds.update(&record).await.unwrap();
    assert!(done.contains("1 advisories imported into Go:GO (1)"), "{done}");
    assert!(!feeds.any_never_imported().await.unwrap());
    let sources: Vec<String> = db.vuln_feeds().await.unwrap().into_iter().map(|f| f.source).collect();
    assert!(sources.iter().any(|s| s.starts_with(&format!("{archive} sha256:"))), "{sources:?}");
    let imported_at = updated_at(&db).await.unwrap();

    // The same bytes: nothing imported, the feed's import time unchanged.
    let again = feeds.update(&archive).await.unwrap();
    assert!(again.contains("unchanged"), "{again}");
    assert_eq!(updated_at(&db).await.unwrap(), imported_at);

    let err = feeds.update(&missing).await.unwrap_err().to_string();
    assert!(err.contains("gone.zip") && err.contains("404"), "{err}");
    assert_eq!(db.vuln_feeds().await.unwrap().len(), 2);
    // Downloads do not pile up in the scratch directory.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

/// Reports that ended before the security hub's table existed (no rows) are indexed by the
/// one-off `SCAN_REPORT_INDEX` job from the reports themselves, resuming past what it did;
/// a report it cannot read is left for the next scan.
#[tokio::test]
async fn earlier_reports_are_indexed_for_the_security_hub() {
    use berth_db::scans::{ScanRequest, ScanResult, scan_status};
    use berth_scan::report::{ArtifactRef, PreferredCvss, ScannerRef, VulnerabilityItem, VulnerabilityReport};
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let owner = db
        .create_user(&berth_db::NewUser {
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
    let repo = db.ensure_repository("p/a", project).await.unwrap();
    let item = |id: &str, severity: &str, score: Option<f64>| VulnerabilityItem {
        id: id.into(),
        package: "openssl".into(),
        version: "3.0.8-1".into(),
        fix_version: "3.0.9-1".into(),
        severity: severity.into(),
        description: "d".into(),
        links: vec![format!("https://example.com/{id}")],
        layer: None,
        preferred_cvss: score.map(|s| PreferredCvss { score_v3: Some(s), vector_v3: Some("CVSS:3.1/AV:N".into()) }),
        cwe_ids: vec![],
        vendor_attributes: serde_json::json!({}),
    };
    for (n, report) in [
        (1u8, Some(vec![item("CVE-1", "Critical", Some(9.8)), item("CVE-2", "Medium", None)])),
        (2, Some(vec![item("CVE-3", "High", Some(7.0))])),
        (3, None),
    ] {
        let digest = format!("sha256:{}", format!("{n:02x}").repeat(32));
        let manifest = berth_db::NewManifest {
            digest: &digest,
            media_type: "application/vnd.oci.image.manifest.v1+json",
            size: 10,
            artifact_type: None,
            subject_digest: None,
            annotations: None,
            blobs: vec![],
            manifests: vec![],
            accessory: None,
            extra_attrs: None,
            child_descriptors: None,
            icon: None,
            scan: None,
        };
        db.put_manifest(repo, &manifest, &[], &db.pin_blob(&digest).await.unwrap()).await.unwrap();
        let uuid = format!("r{n}");
        let job = berth_db::jobs::JobRequest { kind: "IMAGE_SCAN".into(), parameters: "{}".into(), max_attempts: 1 };
        db.request_scan(&ScanRequest { uuid: &uuid, digest: &digest, registration: "r", mime_type: "m", job })
            .await
            .unwrap();
        let json = match report {
            Some(vulnerabilities) => serde_json::to_string(&VulnerabilityReport {
                generated_at: "2026-01-01T00:00:00Z".into(),
                artifact: ArtifactRef { repository: "p/a".into(), digest: digest.clone(), mime_type: "m".into() },
                scanner: ScannerRef::builtin(),
                severity: "Critical".into(),
                vulnerabilities,
            })
            .unwrap(),
            None => "not a report".into(),
        };
        // As a report ended before migration 0029: its JSON, no rows.
        let ended =
            ScanResult { severity: "Critical", summary: "{}", report: &json, findings: "[]", vulnerabilities: &[] };
        db.scan_ended(&uuid, scan_status::SUCCESS, Some(&ended)).await.unwrap();
    }
    assert_eq!(db.security_counts().await.unwrap().by_severity, []);

    let mut jobs = berth_jobs::JobService::new(db.clone(), Default::default());
    jobs.register(std::sync::Arc::new(berth_scan::report_index::ReportIndexer::new(db.clone())));
    jobs.enqueue(berth_scan::report_index::JOB_KIND, &serde_json::json!({}), 1).await.unwrap();
    let id = jobs.run_one().await.unwrap().unwrap();
    let mut counts = db.security_counts().await.unwrap().by_severity;
    counts.sort();
    assert_eq!(counts, [("Critical".to_string(), 1, 1), ("High".to_string(), 1, 1), ("Medium".to_string(), 1, 1)]);
    let cves = db.dangerous_cves(5).await.unwrap();
    assert_eq!(
        cves.iter().map(|c| (c.cve_id.as_str(), c.cvss_v3)).collect::<Vec<_>>(),
        [("CVE-1", Some(9.8)), ("CVE-3", Some(7.0))]
    );
    let log = db.job(id).await.unwrap().unwrap().log;
    assert!(log.contains("indexed 2 reports (1 not readable)"), "{log}");
    // Run again, it finds nothing new to do but the unreadable one.
    jobs.enqueue(berth_scan::report_index::JOB_KIND, &serde_json::json!({}), 1).await.unwrap();
    jobs.run_one().await.unwrap().unwrap();
    assert_eq!(db.security_counts().await.unwrap().by_severity.len(), 3);
}
