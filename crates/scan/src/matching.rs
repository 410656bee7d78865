//! Matching an inventory against the vulnerability database: what each installed package is
//! affected by, with the fix, the severity and the layer.

use std::collections::HashMap;

use crate::advisory::{Advisory, Cvss, Severity, normalize_name};
use crate::inventory::Inventory;

/// Where the advisories of a package come from: an index in memory, or the registry's store.
pub trait AdvisorySource {
    /// The advisories filed under `name` in `ecosystem`'s family (the part before `:`), of any
    /// release: [`Advisory::affecting`] then picks the release.
    fn advisories(&self, ecosystem: &str, name: &str) -> Vec<Advisory>;
}

/// Advisories indexed in memory by (ecosystem family, normalized name).
#[derive(Default)]
pub struct AdvisoryIndex {
    by_package: HashMap<(String, String), Vec<Advisory>>,
}

fn key(ecosystem: &str, name: &str) -> (String, String) {
    let family = ecosystem.split(':').next().unwrap_or(ecosystem).to_string();
    let name = normalize_name(ecosystem, name);
    (family, name)
}

impl AdvisoryIndex {
    pub fn add(&mut self, advisory: Advisory) {
        let mut keys: Vec<(String, String)> = advisory.affected.iter().map(|a| key(&a.ecosystem, &a.name)).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            self.by_package.entry(k).or_default().push(advisory.clone());
        }
    }
}

impl AdvisorySource for AdvisoryIndex {
    fn advisories(&self, ecosystem: &str, name: &str) -> Vec<Advisory> {
        self.by_package.get(&key(ecosystem, name)).cloned().unwrap_or_default()
    }
}

/// One vulnerability of one installed package.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The advisory's id, or its CVE alias where it has one (what Harbor shows).
    pub id: String,
    pub advisory: String,
    pub package: String,
    pub version: String,
    pub fix_version: Option<String>,
    pub severity: Severity,
    pub layer: usize,
    pub ecosystem: String,
    /// The advisory's summary, else its details.
    pub description: String,
    pub links: Vec<String>,
    pub cvss: Option<Cvss>,
    pub cwe_ids: Vec<String>,
}

/// Every finding of `inventory`, most severe first, then by id and package. A version a
/// scheme cannot read matches nothing (and is no error: images hold odd versions).
pub fn find_vulnerabilities(inventory: &Inventory, source: &dyn AdvisorySource) -> Vec<Finding> {
    let mut findings = Vec::new();
    for installed in &inventory.packages {
        if installed.ecosystem.is_empty() {
            continue;
        }
        for (name, version) in installed.package.advisory_keys() {
            for advisory in source.advisories(&installed.ecosystem, name) {
                let Ok(Some(affected)) = advisory.affecting(&installed.ecosystem, name, version) else { continue };
                let cve = std::iter::once(&advisory.id)
                    .chain(advisory.aliases.iter())
                    .find(|id| id.starts_with("CVE-"))
                    .unwrap_or(&advisory.id);
                findings.push(Finding {
                    id: cve.clone(),
                    advisory: advisory.id.clone(),
                    package: installed.package.name.clone(),
                    version: installed.package.version.clone(),
                    fix_version: affected.fix_for(version),
                    severity: advisory.severity,
                    layer: installed.layer,
                    ecosystem: installed.ecosystem.clone(),
                    description: if advisory.summary.is_empty() {
                        advisory.details.clone()
                    } else {
                        advisory.summary.clone()
                    },
                    links: advisory.references.clone(),
                    cvss: advisory.cvss.first().cloned(),
                    cwe_ids: advisory.cwe_ids.clone(),
                });
            }
        }
    }
    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)).then_with(|| a.package.cmp(&b.package))
    });
    findings.dedup_by(|a, b| a.id == b.id && a.package == b.package && a.version == b.version);
    findings
}
