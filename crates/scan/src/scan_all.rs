//! Scanning everything (Harbor's "scan all"): a `SCAN_ALL` job that queues a scan by the
//! built-in scanner of every image in the registry, each one a task of it (`jobs.parent_id`),
//! so that its progress is counted and it stops with them.

use async_trait::async_trait;
use berth_db::Db;
use berth_db::jobs::JobRequest;
use berth_jobs::{JobContext, JobError, Worker};
use berth_oci::media_type::IMAGE_CONFIGS;

use crate::job::{builtin_scan, builtin_scan_job};

/// Harbor's job name for scan all.
pub const JOB_KIND: &str = "SCAN_ALL";

/// Artifacts read, and scans queued (in one transaction), at a time.
const BATCH: i64 = 500;

/// The worker of scan-all jobs.
pub struct ScanAllWorker {
    db: Db,
}

impl ScanAllWorker {
    pub fn new(db: Db) -> ScanAllWorker {
        ScanAllWorker { db }
    }
}

#[async_trait]
impl Worker for ScanAllWorker {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        // Resumed after a takeover from the last digest queued: what was queued stays queued.
        let mut after = job.progress["after"].as_str().unwrap_or_default().to_string();
        let (mut seen, mut queued) = (0usize, 0usize);
        loop {
            if job.stop_requested() {
                job.log(&format!("stopped after {seen} artifacts; {queued} scans queued")).await?;
                return Err(JobError::Stopped);
            }
            let page = self.db.scannable_artifacts(&IMAGE_CONFIGS, &after, BATCH).await?;
            let Some(last) = page.last() else { break };
            after = last.digest.clone();
            let reports: Vec<String> = page.iter().map(|_| uuid::Uuid::new_v4().to_string()).collect();
            let jobs = page
                .iter()
                .zip(&reports)
                .map(|(a, report)| builtin_scan_job(report, &a.repository, &a.digest, &a.media_type))
                .collect::<Result<Vec<JobRequest>, _>>()
                .map_err(|e| JobError::Fatal(e.to_string()))?;
            let scans: Vec<_> = page
                .iter()
                .zip(&reports)
                .zip(jobs)
                .map(|((a, report), request)| builtin_scan(report, &a.digest, request))
                .collect();
            queued += self.db.request_child_scans(job.id, &job.trigger, &scans).await?;
            seen += page.len();
            job.save_progress(&serde_json::json!({"after": after})).await?;
        }
        job.log(&format!("{seen} artifacts; {queued} scans queued (the others' scans had not ended)")).await?;
        Ok(())
    }
}
