//! Whole OSV feeds read from their upstream archives, and matched against the known answers in
//! the fixtures' SOURCES.md (derived there with each ecosystem's reference comparator).

use std::path::Path;

use berth_scan::advisory::{Advisory, Severity};
use berth_scan::feed;

fn load(archive: &str) -> (Vec<Advisory>, feed::WalkReport) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vulndb").join(archive);
    let mut all = Vec::new();
    let report = feed::walk(&path, |a| all.push(a)).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", &report.errors[..report.errors.len().min(10)]);
    (all, report)
}

fn matching(all: &[Advisory], ecosystem: &str, name: &str, version: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        all.iter().filter(|a| a.affecting(ecosystem, name, version).unwrap().is_some()).map(|a| a.id.clone()).collect();
    ids.sort();
    ids
}

#[test]
fn rustsec() {
    let (all, report) = load("rustsec-advisory-db-osv-7fa931cb.tar.gz");
    assert_eq!(report.advisories, 1206);
    assert_eq!(all.iter().filter(|a| a.withdrawn).count(), 13);
    assert_eq!(matching(&all, "crates.io", "smallvec", "1.6.0"), ["RUSTSEC-2021-0003"]);
    assert_eq!(matching(&all, "crates.io", "time", "0.1.43"), ["RUSTSEC-2020-0071"]);
    // RUSTSEC-2022-0022 is informational (`unsound`): not a vulnerability.
    assert_eq!(matching(&all, "crates.io", "hyper", "0.14.9"), ["RUSTSEC-2021-0078", "RUSTSEC-2021-0079"]);
    assert_eq!(matching(&all, "crates.io", "tokio", "1.18.0"), ["RUSTSEC-2023-0001"]);
    // Fixed: nothing.
    assert!(matching(&all, "crates.io", "hyper", "0.14.10").iter().all(|id| id != "RUSTSEC-2021-0078"));

    let hyper = all.iter().find(|a| a.id == "RUSTSEC-2021-0078").unwrap();
    assert_eq!(hyper.aliases, ["CVE-2021-32715", "GHSA-f3pg-qwvg-p99c"]);
    // CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N is 5.3, Medium.
    assert_eq!(hyper.cvss[0].score, 5.3);
    assert_eq!(hyper.severity, Severity::Medium);
    let affected = hyper.affecting("crates.io", "hyper", "0.14.9").unwrap().unwrap();
    assert_eq!(affected.fix_for("0.14.9").as_deref(), Some("0.14.10"));
}

#[test]
fn go() {
    let (all, report) = load("golang-vulndb-osv-a752ea54.tar.gz");
    assert_eq!(report.advisories, 4291);
    assert_eq!(all.iter().filter(|a| a.withdrawn).count(), 17);
    let net = matching(&all, "Go", "golang.org/x/net", "v0.0.0-20200226121028-0de0cce0169b");
    assert_eq!(
        net,
        [
            "GO-2021-0238",
            "GO-2022-0236",
            "GO-2022-0288",
            "GO-2022-0969",
            "GO-2022-1144",
            "GO-2023-1571",
            "GO-2023-1988",
            "GO-2023-2102",
            "GO-2024-2687",
            "GO-2024-3333",
            "GO-2025-3503",
            "GO-2025-3595",
            "GO-2026-4440",
            "GO-2026-4441",
            "GO-2026-4918",
            "GO-2026-5025",
            "GO-2026-5026",
            "GO-2026-5027",
            "GO-2026-5028",
            "GO-2026-5029",
            "GO-2026-5030",
            "GO-2026-5942",
        ]
    );
    assert_eq!(matching(&all, "Go", "github.com/gin-gonic/gin", "v1.6.0"), ["GO-2021-0052", "GO-2023-1737"]);
    assert_eq!(
        matching(&all, "Go", "golang.org/x/text", "v0.3.2"),
        ["GO-2020-0015", "GO-2021-0113", "GO-2022-1059", "GO-2026-5970"]
    );
}

#[test]
fn pypi() {
    let (all, report) = load("pypa-advisory-database-57da901a.tar.gz");
    assert_eq!(report.advisories, 7080);
    assert_eq!(all.iter().filter(|a| a.withdrawn).count(), 269);
    // The withdrawn PYSEC-2025-74 is left out.
    assert_eq!(
        matching(&all, "PyPI", "jinja2", "2.10"),
        ["PYSEC-2019-217", "PYSEC-2021-66", "PYSEC-2026-1471", "PYSEC-2026-1473", "PYSEC-2026-1474", "PYSEC-2026-1475"]
    );
    // PEP 503: the name as pip spells it on disk matches too.
    assert_eq!(matching(&all, "PyPI", "Jinja2", "2.10"), matching(&all, "PyPI", "jinja2", "2.10"));
    assert_eq!(
        matching(&all, "PyPI", "requests", "2.19.1"),
        ["PYSEC-2018-28", "PYSEC-2023-74", "PYSEC-2026-1872", "PYSEC-2026-1873", "PYSEC-2026-2275"]
    );
    assert_eq!(
        matching(&all, "PyPI", "urllib3", "1.24.1"),
        [
            "PYSEC-2019-132",
            "PYSEC-2019-133",
            "PYSEC-2020-148",
            "PYSEC-2023-192",
            "PYSEC-2023-207",
            "PYSEC-2023-212",
            "PYSEC-2026-141",
            "PYSEC-2026-1994",
            "PYSEC-2026-1995",
            "PYSEC-2026-1996",
            "PYSEC-2026-1998",
            "PYSEC-2026-1999",
        ]
    );
    // Through the ranges alone: the version lists spell it `3.2`.
    assert_eq!(matching(&all, "PyPI", "django", "3.2.0").len(), 26);
}

#[test]
fn broken_records_are_errors_and_others_are_skipped() {
    assert!(berth_scan::osv::from_json(br#"{"name": "not osv"}"#).unwrap().is_none());
    assert!(berth_scan::osv::from_json(b"{").is_err());
    let bad_range = br#"{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
        "ranges": [{"type": "WEIRD", "events": [{"introduced": "0"}]}]}]}"#;
    assert!(berth_scan::osv::from_json(bad_range).is_err());
    let bad_event = br#"{"id": "X-2", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"sometime": "1"}]}]}]}"#;
    assert!(berth_scan::osv::from_json(bad_event).is_err());
}

#[test]
fn last_affected_and_unordered_events() {
    let record = br#"{"id": "X-3", "affected": [{"package": {"ecosystem": "crates.io", "name": "a"},
        "ranges": [{"type": "SEMVER", "events": [{"last_affected": "1.2.0"}, {"introduced": "1.0.0"},
                                                 {"fixed": "2.1.0"}, {"introduced": "2.0.0"}]}]}]}"#;
    let a = berth_scan::osv::from_json(record).unwrap().unwrap();
    let hit = |v: &str| a.affecting("crates.io", "a", v).unwrap().is_some();
    assert!(!hit("0.9.0"));
    assert!(hit("1.0.0"));
    assert!(hit("1.2.0"));
    assert!(!hit("1.2.1"));
    assert!(hit("2.0.5"));
    assert!(!hit("2.1.0"));
    assert!(a.affecting("npm", "a", "1.0.0").unwrap().is_none());
}

#[test]
fn alpine_secdb() {
    let (all, _) = load("alpine-secdb-json-pschou-oval-f6c0ccb7.tar.gz");
    let v320 = |name: &str, version: &str| matching(&all, "Alpine:v3.20", name, version);
    assert_eq!(v320("openssl", "3.3.1-r0"), ["CVE-2024-5535", "CVE-2024-6119", "CVE-2024-9143"]);
    assert_eq!(v320("openssl", "3.3.0-r2"), ["CVE-2024-4741", "CVE-2024-5535", "CVE-2024-6119", "CVE-2024-9143"]);
    assert_eq!(v320("busybox", "1.36.1-r28"), ["CVE-2023-42364", "CVE-2023-42365"]);
    assert_eq!(v320("expat", "2.6.2-r0"), ["CVE-2024-45490", "CVE-2024-45491", "CVE-2024-45492", "CVE-2024-50602"]);
    // Another branch's fixes do not apply.
    assert!(matching(&all, "Alpine:v3.19", "openssl", "3.3.1-r0").iter().all(|id| id != "CVE-2024-9143"));
    let fix = all
        .iter()
        .find_map(|a| a.affecting("Alpine:v3.20", "openssl", "3.3.1-r0").unwrap().filter(|_| a.id == "CVE-2024-6119"))
        .unwrap()
        .fix_for("3.3.1-r0");
    assert_eq!(fix.as_deref(), Some("3.3.2-r0"));

    // The official repository's YAML, same format.
    let (yaml, report) = load("alpine-secdb-yaml-06f6e960.tar.gz");
    assert!(report.advisories > 1000, "{report:?}");
    assert!(!matching(&yaml, "Alpine:v3.11", "openssl", "1.1.1d-r0").is_empty());
}

#[test]
fn debian_oval() {
    let (all, report) = load("oval-definitions-bookworm.2023-07-14.xml.gz");
    assert!(report.advisories > 20_000, "{report:?}");
    let bookworm = |name: &str, version: &str| matching(&all, "Debian:12", name, version);
    assert_eq!(
        bookworm("openssl", "3.0.8-1"),
        ["CVE-2023-0464", "CVE-2023-0465", "CVE-2023-0466", "CVE-2023-1255", "CVE-2023-2650"]
    );
    assert!(bookworm("openssl", "3.0.9-1").is_empty());
    assert_eq!(bookworm("libx11", "2:1.8.4-2"), ["CVE-2023-3138"]);
    assert_eq!(bookworm("bind9", "1:9.18.12-1"), ["CVE-2023-2828", "CVE-2023-2911"]);
    // Scoped to its release: nothing for Debian 11.
    assert!(matching(&all, "Debian:11", "openssl", "3.0.8-1").is_empty());
    let fix =
        all.iter().find_map(|a| a.affecting("Debian:12", "libx11", "2:1.8.4-2").unwrap()).unwrap().fix_for("2:1.8.4-2");
    assert_eq!(fix.as_deref(), Some("2:1.8.4-2+deb12u1"));
    assert!(berth_scan::oval::from_reader(&b"<html><body/></html>"[..]).is_err());
}
