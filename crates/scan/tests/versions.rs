//! Each ordering against the real comparisons in `tests/fixtures/versions` (osv-scalibr's
//! test data; the `-generated` files were produced by the package managers themselves).

use std::cmp::Ordering;
use std::path::Path;

use berth_scan::version::Scheme;

/// Every assertion of the fixture files `names` that `scheme` gets wrong, with the line.
fn wrong_answers(scheme: Scheme, names: &[&str]) -> (usize, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/versions");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for name in names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("# ") || line.starts_with("//") || line == "#" {
                continue;
            }
            let (a, op, b) = [" < ", " = ", " > "]
                .iter()
                .find_map(|op| line.split_once(op).map(|(a, b)| (a, *op, b)))
                .unwrap_or_else(|| panic!("{name}:{}: no comparison in {line:?}", n + 1));
            let want = match op {
                " < " => Ordering::Less,
                " = " => Ordering::Equal,
                _ => Ordering::Greater,
            };
            checked += 1;
            // Both directions: an ordering must be antisymmetric too.
            let got = (scheme.compare(a, b), scheme.compare(b, a));
            if got != (Ok(want), Ok(want.reverse())) {
                wrong.push(format!("{name}:{}: {line}: got {got:?}", n + 1));
            }
        }
    }
    (checked, wrong)
}

/// Hand-written fixture lines whose answer the package manager that generated the
/// `-generated` files (whose every line we follow) does not give. Each is named here, so that
/// any other wrong answer fails, and so does one of these turning right.
const OTHER_TOOLS_ANSWERS: &[(&str, &str)] = &[
    // apk-tools 3's answers on versions apk-tools 2 (Alpine 3.x's apk, which generated the
    // 14,000 comparisons we follow) reads otherwise; all are malformed (`-r-0`, `.r1`,
    // capitals, `-ruff`), which no Alpine package carries.
    ("alpine-versions.txt", "1-r-0 < 1-r0"),
    ("alpine-versions.txt", "1-r-1 < 1-r0"),
    ("alpine-versions.txt", "0.r1 < 0r2"),
    ("alpine-versions.txt", "0.8.21.r2 < 0.8.21r2"),
    ("alpine-versions.txt", "1.2.0A < 1.2.0d"),
    ("alpine-versions.txt", "1.2.0D < 1.2.0d"),
    ("alpine-versions.txt", "1 > 1-ruff"),
    ("alpine-versions.txt", "1-ruff2 = 1--ruff1"),
    // Maven 3.9's list normalization; the generated comparisons come from the
    // `ComparableVersion` before it, which we follow.
    ("maven-versions.txt", "1-1 = 1-ga-1"),
    // An empty release after `-`: rpm ignores a missing release, as `rpm-version` does.
    ("redhat-versions.txt", "1 < 1-"),
];

fn check(scheme: Scheme, names: &[&str], at_least: usize) {
    let (checked, wrong) = wrong_answers(scheme, names);
    assert!(checked >= at_least, "only {checked} comparisons read");
    let known: Vec<String> = OTHER_TOOLS_ANSWERS
        .iter()
        .filter(|(file, _)| names.contains(file))
        .map(|(file, line)| format!("{file}: {line}"))
        .collect();
    let unexpected: Vec<&String> = wrong.iter().filter(|w| !known.iter().any(|k| strip_line_number(w) == *k)).collect();
    assert!(unexpected.is_empty(), "{} of {checked} wrong:\n{unexpected:#?}", unexpected.len());
    for k in &known {
        assert!(wrong.iter().any(|w| strip_line_number(w) == *k), "now right, take it off the list: {k}");
    }
}

/// `file:12: A < B: got ...` as `file: A < B`.
fn strip_line_number(wrong: &str) -> String {
    let mut parts = wrong.splitn(3, ':');
    let (file, _, rest) = (parts.next().unwrap_or(""), parts.next(), parts.next().unwrap_or(""));
    let line = rest.split(": got").next().unwrap_or("").trim();
    format!("{file}: {line}")
}

#[test]
fn dpkg() {
    check(Scheme::Dpkg, &["debian-versions.txt", "debian-versions-generated.txt"], 14_000);
}

#[test]
fn rpm() {
    check(Scheme::Rpm, &["redhat-versions.txt"], 150);
}

#[test]
fn apk() {
    check(Scheme::Apk, &["alpine-versions.txt", "alpine-versions-generated.txt"], 14_000);
}

#[test]
fn pep440() {
    check(Scheme::Pep440, &["pypi-versions.txt", "pypi-versions-generated.txt"], 12_000);
}

#[test]
fn semver() {
    check(Scheme::SemVer, &["semver-versions.txt"], 80);
}

#[test]
fn maven() {
    check(Scheme::Maven, &["maven-versions.txt", "maven-versions-generated.txt"], 14_000);
}

#[test]
fn rubygems() {
    check(Scheme::RubyGems, &["rubygems-versions.txt", "rubygems-versions-generated.txt"], 4_000);
}

#[test]
fn ecosystems_name_their_scheme() {
    assert_eq!(Scheme::for_ecosystem("Debian:12"), Some(Scheme::Dpkg));
    assert_eq!(Scheme::for_ecosystem("Alpine:v3.20"), Some(Scheme::Apk));
    assert_eq!(Scheme::for_ecosystem("crates.io"), Some(Scheme::SemVer));
    assert_eq!(Scheme::for_ecosystem("Rocky Linux:9"), Some(Scheme::Rpm));
    assert_eq!(Scheme::for_ecosystem("GIT"), None);
}

#[test]
fn nuget() {
    check(Scheme::NuGet, &["nuget-versions.txt"], 35);
}

#[test]
fn packagist() {
    check(Scheme::Packagist, &["packagist-versions.txt", "packagist-versions-generated.txt"], 10_000);
}
