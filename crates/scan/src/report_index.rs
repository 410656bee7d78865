//! The index of earlier reports: `SCAN_REPORT_INDEX`, a one-off job that migration 0030
//! queues, gives each successful report that ended before `scan_vulnerabilities` existed its
//! rows, read back from the report itself, so that the security hub counts every scanned
//! artifact after an upgrade without a rescan. Resumable: it records the last report indexed.

use async_trait::async_trait;
use berth_db::Db;
use berth_jobs::{JobContext, JobError, Worker};

use crate::report::{VulnerabilityReport, vulnerability_rows};

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
                        self.db.index_report(*id, &vulnerability_rows(&report)).await?;
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
