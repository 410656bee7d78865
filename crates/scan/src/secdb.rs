//! Alpine's secdb (`secdb.alpinelinux.org/<branch>/<repo>.json`): per branch, per origin
//! package, the versions that fixed which CVEs. Read as OSV would write it: one advisory per
//! (CVE, package, branch), affected from the first version until the fix.

use serde::Deserialize;

use crate::advisory::{Advisory, Affected, Event, Range, RangeKind, Severity};

#[derive(Deserialize)]
struct SecDb {
    distroversion: String,
    packages: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: std::collections::BTreeMap<String, Option<Vec<String>>>,
}

/// Whether a JSON document is a secdb file (so a feed walk can tell it from OSV).
pub fn looks_like_secdb(value: &serde_json::Value) -> bool {
    value.get("distroversion").is_some() && value.get("packages").is_some_and(|p| p.is_array())
}

/// The advisories of one secdb file.
pub fn from_json(value: serde_json::Value) -> Result<Vec<Advisory>, serde_json::Error> {
    let db: SecDb = serde_json::from_value(value)?;
    let ecosystem = format!("Alpine:{}", db.distroversion);
    let mut advisories = Vec::new();
    for entry in db.packages {
        for (fixed, ids) in entry.pkg.secfixes {
            // "0": not affected in this branch at all.
            if fixed.trim() == "0" {
                continue;
            }
            // An entry may name the CVE and another id of it: `CVE-2016-7092 XSA-185`.
            for line in ids.unwrap_or_default() {
                let mut names = line.split_whitespace();
                let Some(id) = names.next() else { continue };
                advisories.push(Advisory {
                    id: id.to_string(),
                    aliases: names.map(str::to_string).collect(),
                    summary: String::new(),
                    details: String::new(),
                    severity: Severity::Unknown,
                    cvss: Vec::new(),
                    cwe_ids: Vec::new(),
                    references: vec![format!("https://security.alpinelinux.org/vuln/{id}")],
                    published: None,
                    modified: None,
                    withdrawn: false,
                    informational: false,
                    affected: vec![Affected {
                        ecosystem: ecosystem.clone(),
                        name: entry.pkg.name.clone(),
                        ranges: vec![Range {
                            kind: RangeKind::Ecosystem,
                            events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.clone())],
                        }],
                        versions: Vec::new(),
                    }],
                });
            }
        }
    }
    Ok(advisories)
}
