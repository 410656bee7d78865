//! Package databases and os-release files from real systems and from other scanners' tests.

use std::io::Read;
use std::path::Path;

use berth_scan::os::parse_os_release;
use berth_scan::pkgdb::{Package, parse_apk_installed, parse_dpkg_status};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pkgdb").join(name);
    let bytes = std::fs::read(&path).unwrap();
    if name.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        text
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

fn find<'a>(packages: &'a [Package], name: &str) -> &'a Package {
    packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn a_debian_machine() {
    let packages = parse_dpkg_status(&fixture("debian12-dpkg-status.gz")).unwrap();
    assert_eq!(packages.len(), 770);
    let ssl = find(&packages, "libssl3");
    assert_eq!((ssl.advisory_name(), ssl.advisory_version()), ("openssl", "3.0.19-1~deb12u2"));
    let libc = find(&packages, "libc6");
    assert_eq!((libc.advisory_name(), libc.version.as_str()), ("glibc", "2.36-9+deb12u14"));
    // Its own source: no source name recorded.
    assert_eq!(find(&packages, "openssl").source_name, None);
    let os = parse_os_release(&fixture("debian12-os-release")).unwrap();
    assert_eq!(os.ecosystem().as_deref(), Some("Debian:12"));
}

#[test]
fn dpkg_binnmu_removed_packages_and_status_d() {
    let packages = parse_dpkg_status(&fixture("scalibr-dpkg-status")).unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["accountsservice", "acl", "adduser", "admin-session", "attr", "libacl1", "util-linux-extra"]);
    // A binNMU: the source's version is not the binary's.
    let extra = find(&packages, "util-linux-extra");
    assert_eq!((extra.advisory_name(), extra.advisory_version()), ("util-linux", "2.38.1-5"));
    assert_eq!(extra.version, "2.38.1-5+b1");
    // status.d (distroless): no Status field; `bar` is removed, `foo` counts.
    let distroless = parse_dpkg_status(&fixture("scalibr-dpkg-status.d-foo")).unwrap();
    assert_eq!(distroless.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["foo"]);
}

#[test]
fn apk_installed() {
    let packages = parse_apk_installed(&fixture("scalibr-apk-installed")).unwrap();
    assert_eq!(packages.len(), 15);
    let crypto = find(&packages, "libcrypto3");
    assert_eq!((crypto.advisory_name(), crypto.version.as_str()), ("openssl", "3.1.0-r4"));
    assert_eq!(find(&packages, "ssl_client").advisory_name(), "busybox");
    assert_eq!(find(&packages, "musl").licenses, ["MIT"]);
    // Trivy's has a 16th package without a version, passed over.
    let trivy = parse_apk_installed(&fixture("trivy-apk-installed")).unwrap();
    assert_eq!(trivy.len(), 15);
    assert!(trivy.iter().all(|p| p.name != "invalidPackageWithoutAVersion"));
    let os = parse_os_release(&fixture("alpine-os-release")).unwrap();
    assert_eq!(os.ecosystem().as_deref(), Some("Alpine:v3.15"));
    let rhel = parse_os_release(&fixture("rhel-os-release")).unwrap();
    assert_eq!((rhel.id.as_str(), rhel.ecosystem().as_deref()), ("rhel", Some("Red Hat:9")));
}

#[test]
fn corrupt_databases_are_errors() {
    assert!(parse_dpkg_status("Package: a\nVersion: 1\nthis line is broken\n").is_err());
    assert_eq!(parse_dpkg_status("Package: a\nStatus: install ok installed\n").unwrap(), []);
    assert_eq!(parse_apk_installed("P:a\nA:x86_64\n\n").unwrap(), []);
    assert!(parse_apk_installed("P:a\nno colon here\n").is_err());
    assert_eq!(parse_dpkg_status("").unwrap(), []);
}
