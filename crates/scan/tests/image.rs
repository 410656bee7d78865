//! Images built in the test, layer by layer (gzip, zstd and plain tar), scanned against
//! Alpine's real secdb: the findings are the known answers of the fixtures' SOURCES.md.

use std::io::Write;
use std::path::Path;

use berth_scan::advisory::Severity;
use berth_scan::feed;
use berth_scan::inventory::inventory;
use berth_scan::layers::{LayerError, LayerFiles, read_layer, stack};
use berth_scan::matching::{AdvisoryIndex, Finding, find_vulnerabilities};

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
}

fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            Entry::File(path, bytes) => {
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, path, *bytes).unwrap();
            }
            Entry::Dir(path) => {
                header.set_size(0);
                header.set_mode(0o755);
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, path, std::io::empty()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn apk_db(packages: &[(&str, &str, &str)]) -> Vec<u8> {
    packages
        .iter()
        .map(|(name, version, origin)| format!("P:{name}\nV:{version}\nA:x86_64\no:{origin}\nL:MIT\n\n"))
        .collect::<String>()
        .into_bytes()
}

const ALPINE_320: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n";

fn alpine_secdb() -> AdvisoryIndex {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vulndb/alpine-secdb-json-pschou-oval-f6c0ccb7.tar.gz");
    let mut index = AdvisoryIndex::default();
    feed::walk(&path, |a| index.add(a)).unwrap();
    index
}

fn scan(layers: &[Vec<u8>]) -> Vec<Finding> {
    let read: Vec<LayerFiles> = layers.iter().map(|l| read_layer(&l[..]).unwrap()).collect();
    let inventory = inventory(&stack(&read)).unwrap();
    find_vulnerabilities(&inventory, &alpine_secdb())
}

fn ids(findings: &[Finding], package: &str) -> Vec<String> {
    let mut ids: Vec<String> = findings.iter().filter(|f| f.package == package).map(|f| f.id.clone()).collect();
    ids.sort();
    ids
}

#[test]
fn an_alpine_image_across_three_compressions() {
    let base = [
        ("busybox", "1.36.1-r28", "busybox"),
        ("libcrypto3", "3.3.1-r0", "openssl"),
        ("libssl3", "3.3.1-r0", "openssl"),
        ("libexpat", "2.6.2-r0", "expat"),
    ];
    let layer0 = gzip(&tar(&[
        Entry::Dir("etc/"),
        Entry::File("etc/os-release", ALPINE_320),
        Entry::File("lib/apk/db/installed", &apk_db(&base)),
    ]));
    // The next layer upgrades busybox past both its fixes.
    let mut upgraded = base;
    upgraded[0].1 = "1.36.1-r29";
    let layer1 = zstd(&tar(&[Entry::File("lib/apk/db/installed", &apk_db(&upgraded))]));
    // An uncompressed layer that deletes something else.
    let layer2 = tar(&[Entry::File("tmp/.wh.cache", b"")]);
    let findings = scan(&[layer0.clone(), layer1.clone(), layer2]);

    let openssl = ["CVE-2024-5535", "CVE-2024-6119", "CVE-2024-9143"];
    assert_eq!(ids(&findings, "libcrypto3"), openssl);
    assert_eq!(ids(&findings, "libssl3"), openssl);
    assert_eq!(ids(&findings, "libexpat"), ["CVE-2024-45490", "CVE-2024-45491", "CVE-2024-45492", "CVE-2024-50602"]);
    assert!(ids(&findings, "busybox").is_empty());
    let f = findings.iter().find(|f| f.package == "libcrypto3" && f.id == "CVE-2024-6119").unwrap();
    assert_eq!((f.version.as_str(), f.fix_version.as_deref(), f.layer), ("3.3.1-r0", Some("3.3.2-r0"), 0));
    assert_eq!(f.ecosystem, "Alpine:v3.20");
    assert_eq!(f.severity, Severity::Unknown);

    // Without the upgrade, busybox's two, traced to the first layer.
    let findings = scan(std::slice::from_ref(&layer0));
    assert_eq!(ids(&findings, "busybox"), ["CVE-2023-42364", "CVE-2023-42365"]);

    // A package a later layer changed is traced to that layer.
    let mut newer = base;
    newer[3].1 = "2.6.3-r0";
    let layer1 = tar(&[Entry::File("lib/apk/db/installed", &apk_db(&newer))]);
    let read: Vec<LayerFiles> = [&layer0, &layer1].iter().map(|l| read_layer(&l[..]).unwrap()).collect();
    let inv = inventory(&stack(&read)).unwrap();
    let layer_of = |name: &str| inv.packages.iter().find(|p| p.package.name == name).unwrap().layer;
    assert_eq!((layer_of("libexpat"), layer_of("libssl3")), (1, 0));
}

#[test]
fn whiteouts_remove_what_is_below() {
    let base = gzip(&tar(&[
        Entry::File("etc/os-release", ALPINE_320),
        Entry::File("lib/apk/db/installed", &apk_db(&[("libssl3", "3.3.1-r0", "openssl")])),
    ]));
    let deleted = tar(&[Entry::File("lib/apk/db/.wh.installed", b"")]);
    assert!(scan(&[base.clone(), deleted]).is_empty());
    let opaque = tar(&[Entry::File("lib/apk/.wh..wh..opq", b"")]);
    assert!(scan(&[base.clone(), opaque]).is_empty());
    // An opaque directory hides only what is below it, not what its own layer writes.
    let rewritten = tar(&[
        Entry::File("lib/apk/db/.wh..wh..opq", b""),
        Entry::File("lib/apk/db/installed", &apk_db(&[("libssl3", "3.3.0-r2", "openssl")])),
    ]);
    assert_eq!(ids(&scan(&[base.clone(), rewritten]), "libssl3").len(), 4);
    // Replaced by a directory: gone too.
    let replaced = tar(&[Entry::Dir("lib/apk/db/installed/")]);
    assert!(scan(&[base, replaced]).is_empty());
}

#[test]
fn bad_layers_fail_with_a_clear_error() {
    // A kept file larger than a scan reads: refused before reading it.
    let mut header = tar::Header::new_gnu();
    header.set_path("var/lib/dpkg/status").unwrap();
    header.set_size(1 << 40);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut bomb = header.as_bytes().to_vec();
    bomb.extend_from_slice(&[0u8; 1024]);
    assert!(matches!(read_layer(&bomb[..]), Err(LayerError::FileTooLarge { .. })));
    // A layer that ends inside an entry (its tar lies about the size).
    let whole = tar(&[Entry::File("lib/apk/db/installed", &apk_db(&[("a", "1-r0", "a")]))]);
    let truncated = &whole[..600];
    assert!(read_layer(truncated).is_err());
    // A broken gzip stream.
    let mut broken = gzip(&whole);
    let n = broken.len();
    broken[n / 2] ^= 0xff;
    broken.truncate(n - 8);
    assert!(read_layer(&broken[..]).is_err());
    // A package database that is not one: the inventory fails, saying which.
    let corrupt = read_layer(&tar(&[Entry::File("lib/apk/db/installed", b"P:a\nthis is no field\n")])[..]).unwrap();
    let err = inventory(&stack(&[corrupt])).unwrap_err();
    assert!(err.to_string().contains("apk installed"), "{err}");
}
