//! Debian's security advisories (DSA) and long-term-support advisories (DLA) as the security
//! tracker keeps them, `data/DSA/list` and `data/DLA/list`:
//!
//! ```text
//! [07 Feb 2023] DSA-5343-1 openssl - security update
//!     {CVE-2022-2097 CVE-2022-4304 CVE-2022-4450 CVE-2023-0215 CVE-2023-0286}
//!     [bullseye] - openssl 1.1.1n-0+deb11u4
//! ```
//!
//! (indented with tabs). Each advisory becomes one advisory per release it fixes
//! (`Debian:11`), so that each release's advisories are a feed of their own
//! (`Debian:11:DSA`), with the source packages fixed there "affected before" the fixed
//! version. A release line without a version
//! (`<end-of-life>`, `<not-affected>`) fixes nothing and is passed over.

use std::collections::BTreeMap;

use crate::advisory::{Advisory, Affected, Event, Range, RangeKind, Severity};

/// Whether `name` (a path in a feed) is one of the tracker's advisory lists.
pub fn is_list(name: &str) -> bool {
    name.ends_with("DSA/list") || name.ends_with("DLA/list")
}

/// Debian's release number of a code name, as `os-release`'s `VERSION_ID` writes it.
fn release_of(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "woody" => "3.0",
        "sarge" => "3.1",
        "etch" => "4",
        "lenny" => "5",
        "squeeze" => "6",
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    })
}

/// One advisory as the list has it.
#[derive(Default)]
struct Entry {
    id: String,
    title: String,
    date: String,
    cves: Vec<String>,
    /// (release, source package, fixed version).
    fixes: Vec<(String, String, String)>,
}

impl Entry {
    fn into_advisories(self, out: &mut Vec<Advisory>) {
        let mut by_release: BTreeMap<&str, Vec<&(String, String, String)>> = BTreeMap::new();
        for fix in &self.fixes {
            by_release.entry(fix.0.as_str()).or_default().push(fix);
        }
        for (release, fixes) in by_release {
            out.push(Advisory {
                id: self.id.clone(),
                aliases: self.cves.clone(),
                summary: self.title.clone(),
                details: String::new(),
                severity: Severity::Unknown,
                cvss: Vec::new(),
                cwe_ids: Vec::new(),
                references: vec![format!("https://security-tracker.debian.org/tracker/{}", self.id)],
                published: (!self.date.is_empty()).then(|| self.date.clone()),
                modified: None,
                withdrawn: false,
                informational: false,
                affected: fixes
                    .into_iter()
                    .map(|(_, package, fixed)| Affected {
                        ecosystem: format!("Debian:{release}"),
                        name: package.clone(),
                        ranges: vec![Range {
                            kind: RangeKind::Ecosystem,
                            events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.clone())],
                        }],
                        versions: Vec::new(),
                    })
                    .collect(),
            });
        }
    }
}

/// The advisories of a DSA or DLA list.
pub fn parse(text: &str) -> Result<Vec<Advisory>, String> {
    let mut advisories = Vec::new();
    let mut current: Option<Entry> = None;
    for (n, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if let Some(header) = line.strip_prefix('[') {
            if let Some(done) = current.take() {
                done.into_advisories(&mut advisories);
            }
            // `[07 Feb 2023] DSA-5343-1 openssl - security update`
            let (date, rest) = header.split_once("] ").ok_or_else(|| bad("no date"))?;
            let mut words = rest.splitn(3, ' ');
            let id = words.next().filter(|id| id.starts_with("DSA-") || id.starts_with("DLA-"));
            let id = id.ok_or_else(|| bad("no DSA or DLA id"))?;
            let package = words.next().unwrap_or("");
            let title = words.next().unwrap_or("").trim_start_matches(['-', ' ']);
            current = Some(Entry {
                id: id.to_string(),
                title: format!("{package}: {title}").trim_end_matches([':', ' ']).to_string(),
                date: date.to_string(),
                ..Default::default()
            });
            continue;
        }
        let trimmed = line.trim();
        let Some(entry) = current.as_mut() else {
            if trimmed.is_empty() {
                continue;
            }
            return Err(bad("a line before the first advisory"));
        };
        if let Some(inner) = trimmed.strip_prefix('{') {
            let inner = inner.strip_suffix('}').ok_or_else(|| bad("an unclosed CVE list"))?;
            entry.cves.extend(inner.split_whitespace().map(str::to_string));
        } else if let Some(rest) = trimmed.strip_prefix('[') {
            // `[bullseye] - openssl 1.1.1n-0+deb11u4`, or `<end-of-life>` and friends.
            let (codename, rest) = rest.split_once(']').ok_or_else(|| bad("no release"))?;
            let mut words = rest.trim_start_matches([' ', '-']).split_whitespace();
            let (Some(package), Some(version)) = (words.next(), words.next()) else {
                return Err(bad("no package and version"));
            };
            if version.starts_with('<') {
                continue;
            }
            if let Some(release) = release_of(codename) {
                entry.fixes.push((release.to_string(), package.to_string(), version.to_string()));
            }
        }
        // NOTE lines and anything else say nothing a scan reads.
    }
    if let Some(done) = current.take() {
        done.into_advisories(&mut advisories);
    }
    Ok(advisories)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "[07 Feb 2023] DSA-5343-1 openssl - security update\n\
        \t{CVE-2022-2097 CVE-2022-4304}\n\
        \t[bullseye] - openssl 1.1.1n-0+deb11u4\n\
        \t[buster] - openssl 1.1.1n-0+deb10u4\n\
        [02 Jul 2002] DSA-135 libapache-mod-ssl -- buffer overflow / DoS\n\
        \t[jessie] - virtualbox <end-of-life>\n\
        \tNOTE: nothing to read\n";

    #[test]
    fn one_advisory_per_release_it_fixes() {
        let advisories = parse(LIST).unwrap();
        let shown: Vec<(String, String, String)> = advisories
            .iter()
            .map(|a| (a.id.clone(), a.affected[0].ecosystem.clone(), a.affected[0].name.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("DSA-5343-1".to_string(), "Debian:10".to_string(), "openssl".to_string()),
                ("DSA-5343-1".into(), "Debian:11".into(), "openssl".into()),
            ]
        );
        assert_eq!(advisories[1].aliases, ["CVE-2022-2097", "CVE-2022-4304"]);
        assert_eq!(advisories[1].summary, "openssl: security update");
        assert_eq!(advisories[1].affected[0].ranges[0].events[1], Event::Fixed("1.1.1n-0+deb11u4".into()));
    }

    #[test]
    fn a_broken_list_is_refused() {
        assert!(parse("[07 Feb 2023] openssl - security update\n").is_err());
        assert!(parse("\t{CVE-1}\n").is_err());
        assert!(parse("[07 Feb 2023] DSA-1-1 x - y\n\t{CVE-1\n").is_err());
    }
}
