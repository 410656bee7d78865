//! "Prevent vulnerable images from running" (Harbor's `prevent_vul` and `severity`), held
//! where a manifest is read for a pull: an image of such a project is served only when the
//! built-in scanner's latest report of it succeeded and found nothing at or above the
//! project's severity. Harbor's answers and messages, 412 `PROJECTPOLICYVIOLATION`.
//!
//! Findings the project's CVE allowlist names (while it is in force) are not counted.
//!
//! Left to pass, as Harbor does: indexes (each image they list is held when it is pulled) and
//! accessories (signatures and SBOMs of an image, which tools read to decide about it).

use berth_db::Db;
use berth_db::ManifestRow;
use berth_db::scans::scan_status;
use berth_oci::ErrorCode;
use berth_scan::advisory::Severity;
use berth_scan::job::BUILTIN_REGISTRATION;
use berth_scan::report::{FindingKey, Summary, VULNERABILITY_REPORT, VulnerabilityReport, finding_keys_of_report};

use crate::allowlists::ActiveAllowlist;

use crate::RegistryError;

/// The severities a project's `severity` counts: it and everything above. (`none`: every
/// finding, whatever its severity.)
fn counted(threshold: &str, severity: Severity) -> bool {
    let floor = match threshold {
        "none" => Severity::None,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => Severity::Low,
    };
    severity >= floor
}

fn severity_of(word: &str) -> Severity {
    Severity::from_word(word).unwrap_or(Severity::Unknown)
}

/// Refuses the pull of `manifest` when `threshold` (a project's `severity` under
/// `prevent_vul`) forbids it.
pub(crate) async fn check_pull(
    db: &Db,
    threshold: &str,
    allowlist: Option<&ActiveAllowlist>,
    manifest: &ManifestRow,
) -> Result<(), RegistryError> {
    if berth_oci::media_type::is_index(&manifest.media_type) || manifest.subject_digest.is_some() {
        return Ok(());
    }
    let refuse = |detail: String| Err(RegistryError::client(ErrorCode::ProjectPolicyViolation, detail));
    let policy = format!(
        "configured policy in 'Prevent images with vulnerability severity of \"{}\" or higher from running.'",
        threshold.to_ascii_lowercase()
    );
    // The summary is all a pull needs: the report's findings are not read.
    let report = db
        .scan_overviews(&[manifest.digest.as_str()])
        .await?
        .into_iter()
        .find(|r| r.registration == BUILTIN_REGISTRATION && r.mime_type == VULNERABILITY_REPORT);
    let Some(report) = report.filter(|r| r.status == scan_status::SUCCESS) else {
        return refuse(format!(
            "current image without vulnerability scanning cannot be pulled due to {policy} To continue with pull, \
             please contact your project administrator for help."
        ));
    };
    let now = berth_db::now_millis() / 1000;
    let found = match allowlist.filter(|l| l.in_force(now)) {
        // The allowlist needs each finding's ids: the keys kept beside the report.
        Some(allowlist) => finding_keys(db, &report.uuid)
            .await?
            .iter()
            .filter(|f| counted(threshold, severity_of(&f.severity)))
            .filter(|f| !f.ids.iter().any(|id| allowlist.exempts(id, now)))
            .count() as u64,
        None => {
            let summary: Summary = serde_json::from_str(&report.summary).unwrap_or_default();
            summary.summary.iter().filter(|(word, _)| counted(threshold, severity_of(word))).map(|(_, n)| n).sum()
        }
    };
    if found > 0 {
        return refuse(format!(
            "current image with '{found} vulnerabilities' cannot be pulled due to {policy} To continue with pull, \
             please contact your project administrator to exempt matched vulnerabilities through configuring the \
             CVE allowlist."
        ));
    }
    Ok(())
}

/// The keys of report `uuid`'s findings: kept beside it, or (for a report written before they
/// were) read from the report.
async fn finding_keys(db: &Db, uuid: &str) -> Result<Vec<FindingKey>, RegistryError> {
    let kept = db.scan_findings(uuid).await?;
    if !kept.is_empty() {
        return serde_json::from_str(&kept).map_err(|e| RegistryError::Internal(format!("findings of {uuid}: {e}")));
    }
    let Some(row) = db.scan_report(uuid).await? else { return Ok(Vec::new()) };
    let report: VulnerabilityReport =
        serde_json::from_str(&row.report).map_err(|e| RegistryError::Internal(format!("report {uuid}: {e}")))?;
    Ok(finding_keys_of_report(&report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_their_severity_and_above() {
        assert!(counted("high", Severity::Critical));
        assert!(counted("high", Severity::High));
        assert!(!counted("high", Severity::Medium));
        assert!(!counted("low", Severity::Unknown));
        assert!(counted("none", Severity::Unknown));
        assert!(counted("none", Severity::None));
    }
}
