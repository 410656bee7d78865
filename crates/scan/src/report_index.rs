//! The index of earlier reports: `SCAN_REPORT_INDEX`, a one-off job that migration 0030
//! queues, gives each successful report that ended before `scan_vulnerabilities` existed its
//! rows, read back from the report itself, so that the security hub counts every scanned
//! artifact after an upgrade without a rescan. Resumable: it records the last report indexed.

use async_trait::async_trait;
use berth_db::Db;
use berth_db::scans::VulnerabilityRow;
use berth_jobs::{JobContext, JobError, Worker};

use crate::advisory::Severity;
use crate::report::VulnerabilityReport;

/// The job kind (migration 0030 names it too).
pub const JOB_KIND: &str = "SCAN_REPORT_INDEX";
/// Reports read per step.
const BATCH: i64 = 100;

pub struct ReportIndexer {
    db: Db,
}

impl ReportIndexer {
    pub fn new(db: Db) -> ReportIndexer {
        ReportIndexer { db }
    }
}

/// A stored report's findings as the security hub's rows.
pub fn rows_of(report: &VulnerabilityReport) -> Vec<VulnerabilityRow> {
    report
        .vulnerabilities
        .iter()
        .map(|v| {
            let severity = Severity::from_word(&v.severity).unwrap_or(Severity::Unknown);
            VulnerabilityRow {
                cve_id: v.id.clone(),
                package: v.package.clone(),
                version: v.version.clone(),
                fixed_version: v.fix_version.clone(),
                severity: severity.as_str().to_string(),
                severity_rank: severity as i64,
                cvss_v3: v.preferred_cvss.as_ref().and_then(|c| c.score_v3),
                description: v.description.clone(),
                links: serde_json::Value::from(v.links.clone()).to_string(),
            }
        })
        .collect()
}

#[async_trait]
impl Worker for ReportIndexer {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let mut after = job.progress.get("after").and_then(|v| v.as_i64()).unwrap_or(0);
        let (mut indexed, mut unreadable) = (0usize, 0usize);
        loop {
            if job.stop_requested() {
                return Err(JobError::Stopped);
            }
            let reports = self.db.reports_to_index(after, BATCH).await?;
            let Some(&(last, _)) = reports.last() else { break };
            for (id, json) in &reports {
                match serde_json::from_str::<VulnerabilityReport>(json) {
                    Ok(report) => {
                        self.db.index_report(*id, &rows_of(&report)).await?;
                        indexed += 1;
                    }
                    // Left as it is: the next scan of its artifact writes its rows.
                    Err(e) => {
                        unreadable += 1;
                        job.log(&format!("report {id}: not readable ({e}); its next scan indexes it")).await?;
                    }
                }
            }
            after = last;
            job.save_progress(&serde_json::json!({ "after": after })).await?;
        }
        job.log(&format!("indexed {indexed} reports ({unreadable} not readable)")).await?;
        Ok(())
    }
}
