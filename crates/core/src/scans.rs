//! Scanning artifacts as Harbor's API asks: a scan queued on the job service (with its
//! report, in one transaction), the reports read back, and the overviews listings show.
//! The scanning itself is `berth-scan`'s job.

use berth_auth::rbac::{self, Subject};
pub use berth_db::scans::ScanRow;
use berth_db::scans::scan_status;
pub use berth_scan::report::ScannerRef;

use crate::projects::{ProjectError, ProjectRef, Projects};

/// A scan that has not ended: its report and its job.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueuedScan {
    report: String,
    job: i64,
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
    ) -> Result<(), ProjectError> {
        let (repo, artifact) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Scan, rbac::Action::Create)
            .await?;
        if !berth_oci::media_type::is_index(&artifact.media_type) {
            return self.scan_image(&repo.name, &artifact.digest, &artifact.media_type).await;
        }
        // An index is scanned through the images it lists, as in Harbor; its overview is theirs.
        let mut images = Vec::new();
        for child in &artifact.references {
            let Some(row) = self.db.manifest_by_digest(repo.id, &child.child_digest).await? else { continue };
            if berth_scan::job::scannable(&row.media_type, row.artifact_type.as_deref().unwrap_or_default()) {
                images.push(row);
            }
        }
        if images.is_empty() {
            return Err(ProjectError::Invalid(format!("{repository}@{} lists no image to scan", artifact.digest)));
        }
        for image in images {
            self.scan_image(&repo.name, &image.digest, &image.media_type).await?;
        }
        Ok(())
    }

    /// Queues a scan of one image by the built-in scanner; one that has not ended answers.
    async fn scan_image(&self, repository: &str, digest: &str, media_type: &str) -> Result<(), ProjectError> {
        let report = uuid::Uuid::new_v4().to_string();
        let job = berth_scan::job::builtin_scan_job(&report, repository, digest, media_type)
            .map_err(|e| ProjectError::Invalid(e.to_string()))?;
        match self.db.request_scan(&berth_scan::job::builtin_scan(&report, digest, job)).await {
            // Asked again while it runs: that scan answers (Harbor documents no conflict here).
            Ok(_) | Err(berth_db::DbError::Conflict(_)) => Ok(()),
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

    /// Stops the scan of an artifact that has not ended (scan:stop), or of an index's images:
    /// one still queued stops at once, a running one between two layers. `Invalid` when none is
    /// going on.
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
        let digests: Vec<&str> = if berth_oci::media_type::is_index(&artifact.media_type) {
            artifact.references.iter().map(|r| r.child_digest.as_str()).collect()
        } else {
            vec![artifact.digest.as_str()]
        };
        let mut stopped = 0;
        for digest in digests {
            let Some(scan) = self.unfinished_scan(digest).await? else { continue };
            self.db.request_job_stop(scan.job).await?;
            // A job stopped before it ran leaves its report to us.
            if self.db.job(scan.job).await?.is_some_and(|j| j.status == berth_db::jobs::status::STOPPED) {
                self.db.scan_ended(&scan.report, scan_status::STOPPED, None).await?;
            }
            stopped += 1;
        }
        if stopped == 0 {
            return Err(ProjectError::Invalid(format!("no scan of {repository}@{} is going on", artifact.digest)));
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

    /// The scans (without their reports) of `artifacts`: what listings show as each one's scan
    /// overview, in one query for the page. An index's is its images' merged, as in Harbor.
    /// The caller has read the artifacts already.
    pub async fn scan_overviews(
        &self,
        artifacts: &[crate::artifacts::ArtifactView],
    ) -> Result<Vec<ScanRow>, ProjectError> {
        let mut digests: Vec<&str> = Vec::new();
        for a in artifacts {
            digests.push(&a.digest);
            if berth_oci::media_type::is_index(&a.media_type) {
                digests.extend(a.references.iter().map(|r| r.child_digest.as_str()));
            }
        }
        let rows = self.db.scan_overviews(&digests).await?;
        let mut out: Vec<ScanRow> = Vec::new();
        for a in artifacts {
            if !berth_oci::media_type::is_index(&a.media_type) {
                out.extend(rows.iter().filter(|r| r.digest == a.digest).cloned());
                continue;
            }
            let children: Vec<&ScanRow> =
                rows.iter().filter(|r| a.references.iter().any(|c| c.child_digest == r.digest)).collect();
            let mut kinds: Vec<(&str, &str)> =
                children.iter().map(|r| (r.registration.as_str(), r.mime_type.as_str())).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for (registration, mime_type) in kinds {
                let of_kind: Vec<&ScanRow> = children
                    .iter()
                    .copied()
                    .filter(|r| r.registration == registration && r.mime_type == mime_type)
                    .collect();
                out.push(merged(&a.digest, &of_kind));
            }
        }
        Ok(out)
    }
}

/// Harbor's scan all, as its API asks: run now, the standing schedule, the progress of the
/// latest run, stopping it (system administrators; the caller checks). The work is
/// `berth_scan::scan_all`'s job.
#[derive(Clone)]
pub struct ScanAll {
    db: berth_db::Db,
}

/// The progress of a scan-all run (Harbor's `Stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanAllStats {
    /// Scans it queued.
    pub total: i64,
    /// Of which ended (succeeded, failed or stopped).
    pub completed: i64,
    /// Scans per status.
    pub by_status: Vec<(String, i64)>,
    /// Whether the run, or one of its scans, has not ended.
    pub ongoing: bool,
    /// Harbor's trigger: `Manual` or `Schedule`.
    pub trigger: String,
}

impl ScanAll {
    pub fn new(db: berth_db::Db) -> ScanAll {
        ScanAll { db }
    }

    /// The standing schedule, if there is one.
    pub async fn schedule(&self) -> Result<Option<berth_db::schedules::ScheduleRow>, ProjectError> {
        Ok(self.db.job_schedule(SCAN_ALL).await?)
    }

    /// Harbor's `Schedule` body: `Manual` runs now (returning its execution's id; a conflict
    /// while a run has not ended), `None` removes the schedule, `Hourly`, `Daily`, `Weekly` and
    /// `Custom` (with `cron`) set it.
    pub async fn set_schedule(&self, kind: &str, cron: Option<&str>) -> Result<Option<i64>, ProjectError> {
        match kind {
            "None" => {
                self.db.delete_job_schedule(SCAN_ALL).await?;
                Ok(None)
            }
            "Manual" => self.run_now().await.map(Some),
            _ => {
                let cron = berth_jobs::schedule::cron_of(kind, cron)
                    .map_err(|e| ProjectError::Invalid(e.to_string()))?
                    .ok_or_else(|| ProjectError::Invalid(format!("schedule type {kind:?} has no cron")))?;
                self.db.set_job_schedule(SCAN_ALL, kind, &cron, "{}").await?;
                Ok(None)
            }
        }
    }

    async fn run_now(&self) -> Result<i64, ProjectError> {
        if let Some(running) = self.db.job_in_progress(SCAN_ALL).await? {
            return Err(ProjectError::Conflict(format!(
                "a scan of all artifacts is already going on (execution {running})"
            )));
        }
        Ok(self.db.enqueue_job(SCAN_ALL, "{}", 1).await?)
    }

    /// Stops the latest run and the scans it queued that have not ended. `Invalid` when none
    /// is going on.
    pub async fn stop(&self) -> Result<(), ProjectError> {
        let latest = self.db.latest_job(SCAN_ALL, None).await?;
        let Some(run) = latest else { return Err(ProjectError::Invalid("no scan of all artifacts has run".into())) };
        let own = self.db.request_job_stop(run.id).await?.unwrap_or(false);
        let tasks = self.db.stop_child_scans(run.id).await?;
        if !own && tasks == 0 {
            return Err(ProjectError::Invalid("no scan of all artifacts is going on".into()));
        }
        Ok(())
    }

    /// The progress of the latest run (of the latest scheduled one when `scheduled`).
    pub async fn stats(&self, scheduled: bool) -> Result<Option<ScanAllStats>, ProjectError> {
        let trigger = scheduled.then_some("SCHEDULE");
        let Some(run) = self.db.latest_job(SCAN_ALL, trigger).await? else { return Ok(None) };
        let by_status = self.db.child_job_statuses(run.id).await?;
        let total = by_status.iter().map(|(_, n)| n).sum();
        let ended = |s: &str| matches!(s, scan_status::SUCCESS | scan_status::ERROR | scan_status::STOPPED);
        let completed = by_status.iter().filter(|(s, _)| ended(s)).map(|(_, n)| n).sum();
        let ongoing = !ended(&run.status) || completed < total;
        let trigger = if run.trigger == "SCHEDULE" { "Schedule" } else { "Manual" };
        Ok(Some(ScanAllStats { total, completed, by_status, ongoing, trigger: trigger.to_string() }))
    }
}

/// The job name of a scan-all run.
pub const SCAN_ALL: &str = berth_scan::scan_all::JOB_KIND;

/// The overview of an index from its images' scans (of one scanner and report type): running
/// while any runs, failed if any failed, the highest severity, the counts summed.
fn merged(index: &str, children: &[&ScanRow]) -> ScanRow {
    use berth_scan::advisory::Severity;
    use berth_scan::report::Summary;
    let any = |status: &str| children.iter().any(|r| r.status == status);
    let some_ended = children.iter().any(|r| r.end_time.is_some());
    let status = if any(scan_status::RUNNING) || (any(scan_status::PENDING) && some_ended) {
        scan_status::RUNNING
    } else if any(scan_status::PENDING) {
        scan_status::PENDING
    } else if any(scan_status::ERROR) {
        scan_status::ERROR
    } else if any(scan_status::STOPPED) {
        scan_status::STOPPED
    } else {
        scan_status::SUCCESS
    };
    let severity = children
        .iter()
        .filter_map(|r| Severity::from_word(&r.severity))
        .max()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let mut summary = Summary::default();
    let mut summarised = false;
    for child in children {
        let Ok(s) = serde_json::from_str::<Summary>(&child.summary) else { continue };
        summarised = true;
        summary.total += s.total;
        summary.fixable += s.fixable;
        for (word, n) in s.summary {
            *summary.summary.entry(word).or_default() += n;
        }
    }
    let ended = children.iter().all(|r| r.end_time.is_some());
    ScanRow {
        uuid: children.iter().map(|r| r.uuid.as_str()).collect::<Vec<_>>().join(","),
        digest: index.to_string(),
        registration: children.first().map(|r| r.registration.clone()).unwrap_or_default(),
        mime_type: children.first().map(|r| r.mime_type.clone()).unwrap_or_default(),
        status: status.to_string(),
        job_id: None,
        severity,
        summary: if summarised { serde_json::to_string(&summary).unwrap_or_default() } else { String::new() },
        report: String::new(),
        start_time: children.iter().map(|r| r.start_time).min().unwrap_or_default(),
        end_time: if ended { children.iter().filter_map(|r| r.end_time).max() } else { None },
    }
}
