//! Scanning in the real binary: `berth vulndb import` beside the running registry (Alpine's
//! real secdb), an image built here pushed, scanned through Harbor's API on the job service,
//! its report and overview read back with the known answers; a broken image's scan fails alone.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use berth_oci::Digest;
use common::{ADMIN_PASSWORD, Berth, admin_client, push_blob};
use reqwest::StatusCode;
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const BUILTIN: &str = "00000000-0000-4000-8000-000000000b17";
const REPORT: &str = "application/vnd.security.vulnerability.report; version=1.1";
const ALPINE_320: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n";

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

async fn push_image(client: &reqwest::Client, berth: &Berth, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Digest {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let c = push_blob(client, berth, repo, config).await;
    let mut descriptors = Vec::new();
    for l in layers {
        let d = push_blob(client, berth, repo, l).await;
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": l.len()}));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let resp = client
        .put(berth.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    Digest::sha256_of(&manifest)
}

async fn get_json(client: &reqwest::Client, berth: &Berth, path: &str) -> Value {
    client.get(berth.url(path)).send().await.unwrap().json().await.unwrap()
}

/// The artifact's scan overview, now.
async fn overview_of(client: &reqwest::Client, berth: &Berth, path: &str) -> Value {
    get_json(client, berth, &format!("{path}?with_scan_overview=true")).await["scan_overview"].clone()
}

/// The artifact's scan overview once its scan has ended.
async fn scanned(client: &reqwest::Client, berth: &Berth, path: &str) -> Value {
    for _ in 0..300 {
        let now = overview_of(client, berth, path).await[REPORT].clone();
        if matches!(now["scan_status"].as_str(), Some("Success" | "Error")) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scan of {path} did not end");
}

/// `berth vulndb import` of Alpine's real secdb into the data directory `data` (the registry
/// may be running); what it printed.
fn import_alpine_secdb(data: &std::path::Path) -> String {
    let feed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scan/tests/fixtures/vulndb/alpine-secdb-json-pschou-oval-f6c0ccb7.tar.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["vulndb", "import", "--data-dir"])
        .arg(data)
        .arg(&feed)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    printed
}

fn apk_db(packages: &[(&str, &str, &str)]) -> Vec<u8> {
    packages.iter().map(|(p, v, o)| format!("P:{p}\nV:{v}\no:{o}\n\n")).collect::<String>().into_bytes()
}

#[tokio::test]
async fn an_image_is_scanned_against_an_imported_database() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let base = layer(&[
        ("etc/os-release", ALPINE_320),
        (
            "lib/apk/db/installed",
            &apk_db(&[
                ("busybox", "1.36.1-r28", "busybox"),
                ("libssl3", "3.3.1-r0", "openssl"),
                ("musl", "1.2.5-r0", "musl"),
            ]),
        ),
    ]);
    let digest = push_image(&client, &berth, "library/alpine", "3.20", std::slice::from_ref(&base)).await;
    let artifact = "/api/v2.0/projects/library/repositories/alpine/artifacts/3.20";

    // Before any scan: no overview, no report.
    assert_eq!(overview_of(&client, &berth, artifact).await, json!({}));
    let reports = format!("{artifact}/additions/vulnerabilities");
    assert_eq!(get_json(&client, &berth, &reports).await, json!({}));

    // The database, imported while the registry runs.
    let before = get_json(&client, &berth, &format!("/api/v2.0/scanners/{BUILTIN}/metadata")).await;
    assert_eq!(before["properties"].get("harbor.scanner-adapter/vulnerability-database-updated-at"), None);
    let printed = import_alpine_secdb(dir.path());
    assert!(printed.contains("Alpine:v3.20:CVE: "), "{printed}");
    // The scanner's metadata tells the database's age, as Trivy's adapter does.
    let metadata = get_json(&client, &berth, &format!("/api/v2.0/scanners/{BUILTIN}/metadata")).await;
    let updated = metadata["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"].as_str();
    assert!(updated.is_some_and(|at| at.ends_with('Z')), "{metadata}");

    // Anonymous callers may not scan; the admin may.
    let scan = format!("{artifact}/scan");
    let anonymous = reqwest::Client::new().post(berth.url(&scan)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bad = client.post(berth.url(&scan)).json(&json!({"scan_type": "sbom"})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let resp = client.post(berth.url(&scan)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let overview = scanned(&client, &berth, artifact).await;
    assert_eq!(overview["scan_status"], "Success", "{overview}");
    // libssl3 (openssl): 3 fixes after 3.3.1-r0 on v3.20; busybox: 2.
    assert_eq!(overview["summary"]["total"], 5, "{overview}");
    assert_eq!(overview["summary"]["fixable"], 5);
    assert_eq!(overview["scanner"]["name"], "Berth");

    let all = get_json(&client, &berth, &reports).await;
    let report = &all[REPORT];
    // Harbor's X-Accept-Vulnerabilities: only the types asked for (spaces aside).
    let only = |types: &'static str| client.get(berth.url(&reports)).header("x-accept-vulnerabilities", types).send();
    let adapter: Value = only("application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(adapter, json!({}));
    let native: Value =
        only("application/vnd.security.vulnerability.report;version=1.1").await.unwrap().json().await.unwrap();
    assert_eq!(&native[REPORT], report);
    assert_eq!(report["artifact"]["digest"], digest.to_string());
    let mut found: Vec<(String, String, String)> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["package"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
                v["fix_version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("busybox".into(), "CVE-2023-42364".into(), "1.36.1-r29".into()),
            ("busybox".into(), "CVE-2023-42365".into(), "1.36.1-r29".into()),
            ("libssl3".into(), "CVE-2024-5535".into(), "3.3.1-r1".into()),
            ("libssl3".into(), "CVE-2024-6119".into(), "3.3.2-r0".into()),
            ("libssl3".into(), "CVE-2024-9143".into(), "3.3.2-r1".into()),
        ]
    );
    let layer_digest = Digest::sha256_of(&base).to_string();
    assert!(report["vulnerabilities"].as_array().unwrap().iter().all(|v| v["layer"]["digest"] == layer_digest));

    // A second image on the same base with busybox upgraded: the base layer is not read again,
    // and only openssl's remain.
    let upgrade = layer(&[(
        "lib/apk/db/installed",
        &apk_db(&[
            ("busybox", "1.36.1-r29", "busybox"),
            ("libssl3", "3.3.1-r0", "openssl"),
            ("musl", "1.2.5-r0", "musl"),
        ]),
    )]);
    push_image(&client, &berth, "library/alpine", "3.20-fixed", &[base.clone(), upgrade]).await;
    let fixed = "/api/v2.0/projects/library/repositories/alpine/artifacts/3.20-fixed";
    assert_eq!(client.post(berth.url(&format!("{fixed}/scan"))).send().await.unwrap().status(), StatusCode::ACCEPTED);
    let overview = scanned(&client, &berth, fixed).await;
    assert_eq!(overview["summary"]["total"], 3, "{overview}");
    let log_path = format!("{fixed}/scan/{}/log", overview["report_id"].as_str().unwrap());
    let log = client.get(berth.url(&log_path)).send().await.unwrap().text().await.unwrap();
    assert!(log.contains("analysed layer") && !log.contains(&layer_digest), "{log}");
    assert!(log.contains("3 vulnerabilities"), "{log}");
    let missing = client.get(berth.url(&format!("{fixed}/scan/no-such-report/log"))).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The security hub across both images: 5 + 3 vulnerabilities, all with a fix; Alpine's
    // secdb gives no severities, so none is dangerous.
    let summary =
        get_json(&client, &berth, "/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true")
            .await;
    assert_eq!(
        (&summary["total_vuls"], &summary["fixable_cnt"], &summary["unknown_cnt"], &summary["scanned_cnt"]),
        (&json!(8), &json!(8), &json!(8), &json!(2)),
        "{summary}"
    );
    assert_eq!((&summary["dangerous_cves"], &summary["dangerous_artifacts"]), (&json!([]), &json!([])));
    let listed = |q: &'static str| {
        let client = client.clone();
        let url = berth.url(&format!("/api/v2.0/security/vul?{q}"));
        async move {
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{q}");
            let total = resp.headers()["x-total-count"].to_str().unwrap().to_string();
            (total, resp.json::<Value>().await.unwrap())
        }
    };
    let (total, openssl) = listed("q=package%3Dlibssl3&with_tag=true&page_size=100").await;
    assert_eq!(total, "6");
    let mut tags: Vec<String> =
        openssl.as_array().unwrap().iter().map(|v| v["tags"][0].as_str().unwrap().into()).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags, ["3.20", "3.20-fixed"]);
    assert_eq!(listed("q=cve_id%3DCVE-2024-6119").await.0, "2");
    let (total, page) = listed("q=tag%3D3.20-fixed&page_size=2").await;
    assert_eq!((total.as_str(), page.as_array().unwrap().len()), ("3", 2));
    assert_eq!(page[0]["repository_name"], "library/alpine");
    assert!(page[0].get("tags").is_none(), "tags only when asked for");
    let anonymous = reqwest::Client::new().get(berth.url("/api/v2.0/security/summary")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A scan still queued (the queue paused) answers a second request, and stops at once.
    let queue = "/api/v2.0/jobservice/queues/IMAGE_SCAN";
    let pause = client.put(berth.url(queue)).json(&json!({"action": "pause"})).send().await.unwrap();
    assert_eq!(pause.status(), StatusCode::OK);
    assert_eq!(client.post(berth.url(&scan)).send().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(client.post(berth.url(&scan)).send().await.unwrap().status(), StatusCode::ACCEPTED);
    let queued = overview_of(&client, &berth, artifact).await;
    assert_eq!(queued[REPORT]["scan_status"], "Pending", "{queued}");
    let stop = format!("{scan}/stop");
    let no_type = client.post(berth.url(&stop)).send().await.unwrap();
    assert_eq!(no_type.status(), StatusCode::BAD_REQUEST);
    let stopped = client.post(berth.url(&stop)).json(&json!({"scan_type": "vulnerability"})).send().await.unwrap();
    assert_eq!(stopped.status(), StatusCode::ACCEPTED);
    let after = overview_of(&client, &berth, artifact).await;
    assert_eq!(after[REPORT]["scan_status"], "Stopped", "{after}");
    let nothing = client.post(berth.url(&stop)).json(&json!({"scan_type": "vulnerability"})).send().await.unwrap();
    assert_eq!(nothing.status(), StatusCode::BAD_REQUEST);
    let resume = client.put(berth.url(queue)).json(&json!({"action": "resume"})).send().await.unwrap();
    assert_eq!(resume.status(), StatusCode::OK);
    // Scanned again: the report is back.
    assert_eq!(client.post(berth.url(&scan)).send().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(scanned(&client, &berth, artifact).await["summary"]["total"], 5);

    // An image whose package database is broken: its scan fails, and says why; the others stand.
    let broken = layer(&[("etc/os-release", ALPINE_320), ("lib/apk/db/installed", b"P:a\nthis is no field\n")]);
    push_image(&client, &berth, "library/broken", "v1", &[broken]).await;
    let broken_path = "/api/v2.0/projects/library/repositories/broken/artifacts/v1";
    assert_eq!(
        client.post(berth.url(&format!("{broken_path}/scan"))).send().await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(scanned(&client, &berth, broken_path).await["scan_status"], "Error");
    let again = get_json(&client, &berth, &reports).await;
    assert_eq!(again[REPORT]["vulnerabilities"].as_array().unwrap().len(), 5);

    // "Prevent vulnerable images from running": Harbor's keys, held at the pull.
    let pull = |path: &str| client.get(berth.url(path)).header("accept", OCI_MANIFEST).send();
    let set = |metadata: Value| {
        client.put(berth.url("/api/v2.0/projects/library")).json(&json!({"metadata": metadata})).send()
    };
    assert_eq!(set(json!({"prevent_vul": "true", "severity": "none"})).await.unwrap().status(), StatusCode::OK);
    // Scanned, with five findings (all of severity Unknown in Alpine's data): "none" counts them all.
    let refused = pull("/v2/library/alpine/manifests/3.20").await.unwrap();
    assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "PROJECTPOLICYVIOLATION", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("'5 vulnerabilities'"), "{body}");
    // Harbor's bypass: a signing client (by its User-Agent) whose caller may push reads the
    // manifest to sign it; one whose caller may only pull is held like any other.
    let made = client
        .post(berth.url("/api/v2.0/users"))
        .json(&json!({"username": "reader", "email": "reader@example.com", "realname": "R", "password": "Reader12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let member = client
        .post(berth.url("/api/v2.0/projects/library/members"))
        .json(&json!({"role_id": 3, "member_user": {"username": "reader"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::CREATED);
    let reader = common::http_builder().build().unwrap();
    let signing = |c: &reqwest::Client, auth: Option<(&str, &str)>| {
        let req = c
            .get(berth.url("/v2/library/alpine/manifests/3.20"))
            .header("accept", OCI_MANIFEST)
            .header("user-agent", "cosign/v2.5.0 (linux; amd64) go-containerregistry/v0.20.3");
        match auth {
            Some((u, p)) => req.basic_auth(u, Some(p)).send(),
            None => req.send(),
        }
    };
    assert_eq!(signing(&client, None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        signing(&reader, Some(("reader", "Reader12345"))).await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    // The system's allowlist (reused by default) exempts what it names: three left.
    let system = json!({"items": [{"cve_id": "CVE-2024-5535"}, {"cve_id": "CVE-2023-42364"}]});
    let put = client.put(berth.url("/api/v2.0/system/CVEAllowlist")).json(&system).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let body: Value = pull("/v2/library/alpine/manifests/3.20").await.unwrap().json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("'3 vulnerabilities'"), "{body}");
    // A project's own allowlist, naming all five, in force once the project stops reusing the system's.
    let all_five = ["CVE-2023-42364", "CVE-2023-42365", "CVE-2024-5535", "CVE-2024-6119", "CVE-2024-9143"];
    let items: Vec<Value> = all_five.iter().map(|id| json!({"cve_id": id})).collect();
    let own = |expires_at: Option<i64>| {
        client
            .put(berth.url("/api/v2.0/projects/library"))
            .json(&json!({"metadata": {"reuse_sys_cve_allowlist": "false"}, "cve_allowlist": {"items": items, "expires_at": expires_at}}))
            .send()
    };
    assert_eq!(own(None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(pull("/v2/library/alpine/manifests/3.20").await.unwrap().status(), StatusCode::OK);
    // Expired, it exempts nothing.
    assert_eq!(own(Some(1)).await.unwrap().status(), StatusCode::OK);
    let body: Value = pull("/v2/library/alpine/manifests/3.20").await.unwrap().json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("'5 vulnerabilities'"), "{body}");
    // A bad allowlist is refused, and changes nothing (neither it nor the metadata beside it).
    let bad = client
        .put(berth.url("/api/v2.0/projects/library"))
        .json(&json!({"metadata": {"reuse_sys_cve_allowlist": "true"}, "cve_allowlist": {"items": [{"cve_id": "CVE-1"}, {"cve_id": "CVE-1"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let library = get_json(&client, &berth, "/api/v2.0/projects/library").await;
    assert_eq!(library["metadata"]["reuse_sys_cve_allowlist"], "false", "{library}");
    assert_eq!(library["cve_allowlist"]["expires_at"], 1, "{library}");
    assert_eq!(library["cve_allowlist"]["items"].as_array().unwrap().len(), 5, "{library}");
    // A scan that failed is no scan.
    let unscanned = pull("/v2/library/broken/manifests/v1").await.unwrap();
    assert_eq!(unscanned.status(), StatusCode::PRECONDITION_FAILED);
    let body: Value = unscanned.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("without vulnerability scanning"), "{body}");
    // HEAD is no pull.
    let head = client
        .head(berth.url("/v2/library/alpine/manifests/3.20"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // "low" does not count Unknown: served.
    assert_eq!(set(json!({"severity": "low"})).await.unwrap().status(), StatusCode::OK);
    assert_eq!(pull("/v2/library/alpine/manifests/3.20").await.unwrap().status(), StatusCode::OK);
    // The scanner's gauges: the database's age per feed, and the reports per status.
    let scrape = client.get(berth.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let imported = scrape
        .lines()
        .find(|l| l.starts_with("berth_vulndb_feed_imported_timestamp_seconds{feed=\"Alpine:v3.20:CVE\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{scrape}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - imported).abs() < 600.0, "imported at {imported}, now {now}");
    assert!(scrape.contains("berth_scan_reports{status=\"Error\"} 1"), "{scrape}");
    // Off: everything is served again.
    assert_eq!(set(json!({"prevent_vul": "false"})).await.unwrap().status(), StatusCode::OK);
    assert_eq!(pull("/v2/library/broken/manifests/v1").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_project_that_scans_on_push_has_every_acknowledged_push_scanned_even_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let created = client
        .post(berth.url("/api/v2.0/projects"))
        .json(&json!({"project_name": "auto", "metadata": {"auto_scan": "true"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // The queue paused: what the push queued waits there.
    let queue = "/api/v2.0/jobservice/queues/IMAGE_SCAN";
    let pause = client.put(berth.url(queue)).json(&json!({"action": "pause"})).send().await.unwrap();
    assert_eq!(pause.status(), StatusCode::OK);

    let image =
        layer(&[("etc/os-release", ALPINE_320), ("lib/apk/db/installed", &apk_db(&[("musl", "1.2.5-r0", "musl")]))]);
    push_image(&client, &berth, "auto/app", "v1", std::slice::from_ref(&image)).await;
    let app = "/api/v2.0/projects/auto/repositories/app/artifacts/v1";
    // Queued with the push itself: pending the moment the push is acknowledged.
    let queued = overview_of(&client, &berth, app).await;
    assert_eq!(queued[REPORT]["scan_status"], "Pending", "{queued}");
    let report = queued[REPORT]["report_id"].clone();

    // A project without auto_scan scans nothing on push.
    let other = layer(&[("etc/os-release", ALPINE_320)]);
    push_image(&client, &berth, "library/app", "v1", &[other]).await;
    assert_eq!(
        overview_of(&client, &berth, "/api/v2.0/projects/library/repositories/app/artifacts/v1").await,
        json!({})
    );
    // Nor is an artifact that is not an image scanned: a Helm chart holds no filesystem.
    let chart_config = br#"{"name":"c","version":"1.0.0","apiVersion":"v2"}"#;
    let c = push_blob(&client, &berth, "auto/chart", chart_config).await;
    let chart = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": c.to_string(), "size": chart_config.len()},
        "layers": [],
    }))
    .unwrap();
    let put = client
        .put(berth.url("/v2/auto/chart/manifests/1.0.0"))
        .header("content-type", OCI_MANIFEST)
        .body(chart)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        overview_of(&client, &berth, "/api/v2.0/projects/auto/repositories/chart/artifacts/1.0.0").await,
        json!({})
    );

    // Killed with the scan queued: the scan survives, and runs once the queue resumes.
    berth.kill();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let resume = client.put(berth.url(queue)).json(&json!({"action": "resume"})).send().await.unwrap();
    assert_eq!(resume.status(), StatusCode::OK);
    let done = scanned(&client, &berth, app).await;
    assert_eq!((done["scan_status"].as_str(), &done["report_id"]), (Some("Success"), &report), "{done}");

    // The same image pushed again under another tag: its report stands, no second scan.
    push_image(&client, &berth, "auto/app", "v2", std::slice::from_ref(&image)).await;
    let again = overview_of(&client, &berth, "/api/v2.0/projects/auto/repositories/app/artifacts/v2").await;
    assert_eq!((again[REPORT]["scan_status"].as_str(), &again[REPORT]["report_id"]), (Some("Success"), &report));
}

/// Harbor's scan-all metrics, once `done` says they are as wanted.
async fn scan_all_stats(client: &reqwest::Client, berth: &Berth, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let stats = get_json(client, berth, path).await;
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never reached the state wanted: {}", get_json(client, berth, path).await);
}

#[tokio::test]
async fn scan_all_scans_every_image_once_now_or_on_schedule_and_stops_with_its_scans() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let created =
        client.post(berth.url("/api/v2.0/projects")).json(&json!({"project_name": "team"})).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let one =
        layer(&[("etc/os-release", ALPINE_320), ("lib/apk/db/installed", &apk_db(&[("musl", "1.2.5-r0", "musl")]))]);
    let two = layer(&[("etc/os-release", ALPINE_320)]);
    push_image(&client, &berth, "library/one", "v1", std::slice::from_ref(&one)).await;
    // The same image in two repositories is one artifact to scan.
    push_image(&client, &berth, "team/one", "v1", std::slice::from_ref(&one)).await;
    push_image(&client, &berth, "team/two", "v1", &[two]).await;
    let artifacts = [
        "/api/v2.0/projects/library/repositories/one/artifacts/v1",
        "/api/v2.0/projects/team/repositories/two/artifacts/v1",
    ];

    // Only administrators.
    let anonymous = reqwest::Client::new().get(berth.url("/api/v2.0/scans/all/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let manual = json!({"schedule": {"type": "Manual"}});
    let run = client.post(berth.url("/api/v2.0/system/scanAll/schedule")).json(&manual).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::CREATED);
    let stats = scan_all_stats(&client, &berth, "/api/v2.0/scans/all/metrics", |s| s["ongoing"] == false).await;
    assert_eq!((stats["total"].as_i64(), stats["completed"].as_i64()), (Some(2), Some(2)), "{stats}");
    assert_eq!(stats["metrics"], json!({"Success": 2}));
    for a in artifacts {
        assert_eq!(overview_of(&client, &berth, a).await[REPORT]["scan_status"], "Success");
    }

    // Stopped with its scans: the queue paused, the run queues two scans, which stop unrun.
    let queue = "/api/v2.0/jobservice/queues/IMAGE_SCAN";
    let pause = client.put(berth.url(queue)).json(&json!({"action": "pause"})).send().await.unwrap();
    assert_eq!(pause.status(), StatusCode::OK);
    let run = client.post(berth.url("/api/v2.0/system/scanAll/schedule")).json(&manual).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::CREATED);
    scan_all_stats(&client, &berth, "/api/v2.0/scans/all/metrics", |s| s["metrics"]["Pending"] == 2).await;
    let stop = client.post(berth.url("/api/v2.0/system/scanAll/stop")).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::ACCEPTED);
    let stats = get_json(&client, &berth, "/api/v2.0/scans/all/metrics").await;
    assert_eq!((stats["metrics"].clone(), stats["ongoing"].as_bool()), (json!({"Stopped": 2}), Some(false)), "{stats}");
    for a in artifacts {
        assert_eq!(overview_of(&client, &berth, a).await[REPORT]["scan_status"], "Stopped");
    }
    let resume = client.put(berth.url(queue)).json(&json!({"action": "resume"})).send().await.unwrap();
    assert_eq!(resume.status(), StatusCode::OK);

    // On a schedule: every second, until it is removed.
    let every_second = json!({"schedule": {"type": "Custom", "cron": "* * * * * *"}});
    let set = client.put(berth.url("/api/v2.0/system/scanAll/schedule")).json(&every_second).send().await.unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let stats = scan_all_stats(&client, &berth, "/api/v2.0/scans/schedule/metrics", |s| {
        s["trigger"] == "Schedule" && s["ongoing"] == false && s["total"] == 2
    })
    .await;
    assert_eq!(stats["metrics"], json!({"Success": 2}), "{stats}");
    let none = json!({"schedule": {"type": "None"}});
    let set = client.put(berth.url("/api/v2.0/system/scanAll/schedule")).json(&none).send().await.unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(get_json(&client, &berth, "/api/v2.0/system/scanAll/schedule").await, json!({}));
}

#[tokio::test]
async fn an_index_is_scanned_through_its_images_and_shows_their_findings_together() {
    let dir = tempfile::tempdir().unwrap();
    let client = admin_client();
    let berth = Berth::start_with(dir.path(), &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    import_alpine_secdb(dir.path());
    // amd64 holds openssl's three findings, arm64 busybox's two.
    let amd64 = layer(&[
        ("etc/os-release", ALPINE_320),
        ("lib/apk/db/installed", &apk_db(&[("libssl3", "3.3.1-r0", "openssl")])),
    ]);
    let arm64 = layer(&[
        ("etc/os-release", ALPINE_320),
        ("lib/apk/db/installed", &apk_db(&[("busybox", "1.36.1-r28", "busybox")])),
    ]);
    let mut descriptors = Vec::new();
    for (tag, image, arch) in [("amd64", &amd64, "amd64"), ("arm64", &arm64, "arm64")] {
        let digest = push_image(&client, &berth, "library/multi", tag, std::slice::from_ref(image)).await;
        let bytes = client
            .get(berth.url(&format!("/v2/library/multi/manifests/{digest}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        descriptors.push(json!({"mediaType": OCI_MANIFEST, "digest": digest.to_string(), "size": bytes.len(),
            "platform": {"architecture": arch, "os": "linux"}}));
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}),
    )
    .unwrap();
    let put = client
        .put(berth.url("/v2/library/multi/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);

    let path = "/api/v2.0/projects/library/repositories/multi/artifacts/v1";
    let scan = client.post(berth.url(&format!("{path}/scan"))).send().await.unwrap();
    assert_eq!(scan.status(), StatusCode::ACCEPTED);
    let overview = scanned(&client, &berth, path).await;
    assert_eq!(overview["scan_status"], "Success", "{overview}");
    assert_eq!(overview["summary"]["total"], 5, "{overview}");
    // Each image has its own report.
    for (tag, total) in [("amd64", 3), ("arm64", 2)] {
        let image = format!("/api/v2.0/projects/library/repositories/multi/artifacts/{tag}");
        assert_eq!(scanned(&client, &berth, &image).await["summary"]["total"], total);
    }
    // Nothing to stop once it ended.
    let stop = client
        .post(berth.url(&format!("{path}/scan/stop")))
        .json(&json!({"scan_type": "vulnerability"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn vulndb_import_makes_the_data_directory_of_an_installation_not_yet_started() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not-yet-started");
    let printed = import_alpine_secdb(&data);
    assert!(printed.contains("Alpine:v3.20:CVE: "), "{printed}");
    assert!(data.join("berth.db").exists());
}
