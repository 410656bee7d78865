//! Scanning artifacts as Harbor's API asks: a scan queued on the job service (with its
//! report, in one transaction), the reports read back, and the overviews listings show.
//! The scanning itself is `berth-scan`'s job.

use berth_auth::rbac::{self, Subject};
use berth_db::jobs::JobRequest;
pub use berth_db::scans::ScanRow;
use berth_db::scans::{ScanRequest, scan_status};
use berth_scan::job::{BUILTIN_REGISTRATION, JOB_KIND, ScanParameters};
pub use berth_scan::report::ScannerRef;
use berth_scan::report::VULNERABILITY_REPORT;

use crate::projects::{ProjectError, ProjectRef, Projects};

/// The job of a scan by the built-in scanner, filling report `report`.
pub(crate) fn builtin_scan_job(
    report: &str,
    repository: &str,
    digest: &str,
    media_type: &str,
) -> Result<JobRequest, serde_json::Error> {
    let parameters = ScanParameters {
        report: report.to_string(),
        repository: repository.to_string(),
        digest: digest.to_string(),
        media_type: media_type.to_string(),
    };
    Ok(JobRequest { kind: JOB_KIND.to_string(), parameters: serde_json::to_string(&parameters)?, max_attempts: 1 })
}

/// A scan of `digest` by the built-in scanner: its vulnerability report `report`, and `job`.
pub(crate) fn builtin_scan<'a>(report: &'a str, digest: &'a str, job: JobRequest) -> ScanRequest<'a> {
    ScanRequest { uuid: report, digest, registration: BUILTIN_REGISTRATION, mime_type: VULNERABILITY_REPORT, job }
}

/// Whether the built-in scanner reads an artifact of this manifest and config media type: an
/// image (Harbor's Trivy adapter takes the same). Indexes are scanned by their images; charts,
/// signatures and other artifacts hold no filesystem.
pub(crate) fn scannable(manifest_media_type: &str, config_media_type: &str) -> bool {
    !berth_oci::media_type::is_index(manifest_media_type) && crate::content::IMAGE_CONFIGS.contains(&config_media_type)
}

/// A scan queued: its report's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedScan {
    pub report: String,
    pub job: i64,
}

impl Projects {
    /// Queues a vulnerability scan of an artifact by the built-in scanner (scan:create). A
    /// scan of the same artifact that has not ended is a conflict.
    pub async fn scan_artifact(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<QueuedScan, ProjectError> {
        let (repo, artifact) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Scan, rbac::Action::Create)
            .await?;
        if !artifact.references.is_empty() || berth_oci::media_type::is_index(&artifact.media_type) {
            return Err(ProjectError::Invalid("an index is not scanned itself: scan the images it lists".to_string()));
        }
        let report = uuid::Uuid::new_v4().to_string();
        let job = builtin_scan_job(&report, &repo.name, &artifact.digest, &artifact.media_type)
            .map_err(|e| ProjectError::Invalid(e.to_string()))?;
        let queued = self.db.request_scan(&builtin_scan(&report, &artifact.digest, job)).await;
        match queued {
            Ok(job) => Ok(QueuedScan { report, job }),
            // Asked again while it runs: that scan answers (Harbor documents no conflict here).
            Err(berth_db::DbError::Conflict(_)) => self
                .unfinished_scan(&artifact.digest)
                .await?
                .ok_or_else(|| ProjectError::Conflict("a scan that ended just now; ask again".into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn unfinished_scan(&self, digest: &str) -> Result<Option<QueuedScan>, ProjectError> {
        Ok(self.db.scan_overviews(&[digest]).await?.into_iter().find_map(|r| {
            let unfinished = r.status == scan_status::PENDING || r.status == scan_status::RUNNING;
            match (unfinished, r.job_id) {
                (true, Some(job)) => Some(QueuedScan { report: r.uuid, job }),
                _ => None,
            }
        }))
    }

    /// Stops the scan of an artifact that has not ended (scan:stop): one still queued stops at
    /// once, a running one between two layers. `Invalid` when none is going on.
    pub async fn stop_scan(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<(), ProjectError> {
        let (_, artifact) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Scan, rbac::Action::Stop)
            .await?;
        let Some(scan) = self.unfinished_scan(&artifact.digest).await? else {
            return Err(ProjectError::Invalid(format!("no scan of {repository}@{} is going on", artifact.digest)));
        };
        self.db.request_job_stop(scan.job).await?;
        // A job stopped before it ran leaves its report to us.
        if self.db.job(scan.job).await?.is_some_and(|j| j.status == berth_db::jobs::status::STOPPED) {
            self.db.scan_ended(&scan.report, scan_status::STOPPED, None).await?;
        }
        Ok(())
    }

    /// The reports of an artifact whose additions the caller may read: (report type, report
    /// JSON) of each scan that succeeded.
    pub async fn vulnerability_reports(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<Vec<(String, String)>, ProjectError> {
        let artifact = self.artifact_for_addition(subject, project, repository, reference).await?;
        Ok(self
            .db
            .scan_reports_of(&artifact.digest)
            .await?
            .into_iter()
            .filter(|r| !r.report.is_empty())
            .map(|r| (r.mime_type, r.report))
            .collect())
    }

    /// The log of scan `report` of an artifact (scan:read): what its job wrote.
    pub async fn scan_log(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        report: &str,
    ) -> Result<String, ProjectError> {
        let (_, artifact) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Scan, rbac::Action::Read)
            .await?;
        let not_found = || ProjectError::NotFound(format!("scan report {report} of {repository}@{}", artifact.digest));
        let row = self.db.scan_report(report).await?.filter(|r| r.digest == artifact.digest).ok_or_else(not_found)?;
        let Some(job) = row.job_id else { return Ok(String::new()) };
        Ok(self.db.job(job).await?.map(|j| j.log).unwrap_or_default())
    }

    /// The scans (without their reports) of the artifacts `digests`: what listings show as
    /// each one's scan overview. The caller has read the artifacts already.
    pub async fn scan_overviews(&self, digests: &[&str]) -> Result<Vec<ScanRow>, ProjectError> {
        Ok(self.db.scan_overviews(digests).await?)
    }
}
