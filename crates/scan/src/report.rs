//! Reports in Harbor's formats: the vulnerability report (`application/vnd.security.
//! vulnerability.report; version=1.1`, what `additions/vulnerabilities` serves) and its
//! summary (what a listing's `scan_overview` shows).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::advisory::Severity;
use crate::matching::Finding;

/// The report type of Harbor's vulnerability reports.
pub const VULNERABILITY_REPORT: &str = "application/vnd.security.vulnerability.report; version=1.1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScannerRef {
    pub name: String,
    pub vendor: String,
    pub version: String,
}

impl ScannerRef {
    /// The built-in scanner.
    pub fn builtin() -> ScannerRef {
        ScannerRef { name: "Berth".into(), vendor: "Berth".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub repository: String,
    pub digest: String,
    pub mime_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: String,
    pub diff_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferredCvss {
    pub score_v3: Option<f64>,
    pub vector_v3: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityItem {
    pub id: String,
    pub package: String,
    pub version: String,
    pub fix_version: String,
    pub severity: String,
    pub description: String,
    pub links: Vec<String>,
    pub layer: Option<LayerRef>,
    pub preferred_cvss: Option<PreferredCvss>,
    pub cwe_ids: Vec<String>,
    pub vendor_attributes: serde_json::Value,
}

/// Harbor's `Report` of a vulnerability scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityReport {
    pub generated_at: String,
    pub artifact: ArtifactRef,
    pub scanner: ScannerRef,
    pub severity: String,
    pub vulnerabilities: Vec<VulnerabilityItem>,
}

/// Harbor's `VulnerabilitySummary`: how many findings, how many with a fix, how many per
/// severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub total: u64,
    pub fixable: u64,
    pub summary: BTreeMap<String, u64>,
}

/// A finding as an allowlist sees it: the ids it goes by (the one shown, and the advisory's
/// own where that differs) and its severity (Harbor's word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingKey {
    pub ids: Vec<String>,
    pub severity: String,
}

/// The keys of `findings`, one each.
pub fn finding_keys(findings: &[Finding]) -> Vec<FindingKey> {
    findings
        .iter()
        .map(|f| {
            let mut ids = vec![f.id.clone()];
            if f.advisory != f.id {
                ids.push(f.advisory.clone());
            }
            FindingKey { ids, severity: f.severity.as_str().to_string() }
        })
        .collect()
}

/// The keys of a report's findings, read from the report itself (for reports written before
/// the keys were kept beside them).
pub fn finding_keys_of_report(report: &VulnerabilityReport) -> Vec<FindingKey> {
    report
        .vulnerabilities
        .iter()
        .map(|v| {
            let mut ids = vec![v.id.clone()];
            if let Some(advisory) = v.vendor_attributes.get("advisory").and_then(|a| a.as_str())
                && advisory != v.id
            {
                ids.push(advisory.to_string());
            }
            FindingKey { ids, severity: v.severity.clone() }
        })
        .collect()
}

/// The highest severity among `findings` (`None` for none).
/// A report's findings as the security hub's table keeps them (`db::scans::VulnerabilityRow`):
/// what a scan writes as it ends, and what the index of earlier reports reads back. The CVSS
/// score only from a version 3 vector, as Harbor's `cvss_score_v3`.
pub fn vulnerability_rows(report: &VulnerabilityReport) -> Vec<berth_db::scans::VulnerabilityRow> {
    report
        .vulnerabilities
        .iter()
        .map(|v| {
            let severity = Severity::from_word(&v.severity).unwrap_or(Severity::Unknown);
            let cvss =
                v.preferred_cvss.as_ref().filter(|c| c.vector_v3.as_deref().is_some_and(|v| v.starts_with("CVSS:3")));
            berth_db::scans::VulnerabilityRow {
                cve_id: v.id.clone(),
                package: v.package.clone(),
                version: v.version.clone(),
                fixed_version: v.fix_version.clone(),
                severity: severity.as_str().to_string(),
                severity_rank: severity as i64,
                cvss_v3: cvss.and_then(|c| c.score_v3),
                description: v.description.clone(),
                links: serde_json::Value::from(v.links.clone()).to_string(),
            }
        })
        .collect()
}

pub fn highest(findings: &[Finding]) -> Severity {
    findings.iter().map(|f| f.severity).max().unwrap_or(Severity::None)
}

/// The report and its summary for `findings` of `artifact`, whose layers (bottom first) are
/// `layers`.
pub fn build(
    artifact: ArtifactRef,
    layers: &[String],
    findings: &[Finding],
    generated_at: String,
) -> (VulnerabilityReport, Summary) {
    let mut summary = Summary::default();
    let vulnerabilities = findings
        .iter()
        .map(|f| {
            summary.total += 1;
            if f.fix_version.is_some() {
                summary.fixable += 1;
            }
            *summary.summary.entry(f.severity.as_str().to_string()).or_default() += 1;
            VulnerabilityItem {
                id: f.id.clone(),
                package: f.package.clone(),
                version: f.version.clone(),
                fix_version: f.fix_version.clone().unwrap_or_default(),
                severity: f.severity.as_str().to_string(),
                description: f.description.clone(),
                links: f.links.clone(),
                layer: layers.get(f.layer).map(|d| LayerRef { digest: d.clone(), diff_id: String::new() }),
                preferred_cvss: f
                    .cvss
                    .as_ref()
                    .map(|c| PreferredCvss { score_v3: Some(c.score), vector_v3: Some(c.vector.clone()) }),
                cwe_ids: f.cwe_ids.clone(),
                vendor_attributes: serde_json::json!({"advisory": f.advisory, "ecosystem": f.ecosystem}),
            }
        })
        .collect();
    let report = VulnerabilityReport {
        generated_at,
        artifact,
        scanner: ScannerRef::builtin(),
        severity: highest(findings).as_str().to_string(),
        vulnerabilities,
    };
    (report, summary)
}
