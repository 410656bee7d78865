//! Scan reports (Harbor's): one per (artifact digest, scanner registration, report type), the
//! job that fills it, and the layers already analysed (by digest). The reports are the
//! scanner's JSON, which this layer stores and does not read.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::{JobRequest, insert_job};
use crate::{Db, DbError, json_list, json_strings, now_millis};

/// Harbor's scan statuses.
pub mod scan_status {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCESS: &str = "Success";
    pub const ERROR: &str = "Error";
    pub const STOPPED: &str = "Stopped";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    pub uuid: String,
    pub digest: String,
    pub registration: String,
    pub mime_type: String,
    pub status: String,
    pub job_id: Option<i64>,
    /// The highest severity found (Harbor's word), empty until it ends.
    pub severity: String,
    /// The summary's JSON, empty until it ends.
    pub summary: String,
    /// The report's JSON, empty until it ends (and in listings, which do not read it).
    pub report: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
}

const COLUMNS: &str =
    "uuid, digest, registration, mime_type, status, job_id, severity, summary, report, start_time, end_time";
/// The same, without the report: what a listing's overview needs.
const SUMMARY_COLUMNS: &str =
    "uuid, digest, registration, mime_type, status, job_id, severity, summary, '' AS report, start_time, end_time";

fn scan_row(r: &AnyRow) -> Result<ScanRow, sqlx::Error> {
    Ok(ScanRow {
        uuid: r.try_get(0)?,
        digest: r.try_get(1)?,
        registration: r.try_get(2)?,
        mime_type: r.try_get(3)?,
        status: r.try_get(4)?,
        job_id: r.try_get(5)?,
        severity: r.try_get(6)?,
        summary: r.try_get(7)?,
        report: r.try_get(8)?,
        start_time: r.try_get(9)?,
        end_time: r.try_get(10)?,
    })
}

/// What a scan that succeeded found: the highest severity (Harbor's word), the summary's, the
/// report's and the findings' JSON, and each vulnerability for the security hub.
pub struct ScanResult<'a> {
    pub severity: &'a str,
    pub summary: &'a str,
    pub report: &'a str,
    pub findings: &'a str,
    pub vulnerabilities: &'a [VulnerabilityRow],
}

/// One vulnerability of one package a scan found (`scan_vulnerabilities`).
#[derive(Debug, Clone, PartialEq)]
pub struct VulnerabilityRow {
    pub cve_id: String,
    pub package: String,
    pub version: String,
    /// Empty when no fix is known.
    pub fixed_version: String,
    /// Harbor's word (`Critical`).
    pub severity: String,
    /// Orders severities: Critical 5, High 4, Medium 3, Low 2, Unknown 1, None 0.
    pub severity_rank: i64,
    pub cvss_v3: Option<f64>,
    pub description: String,
    /// A JSON array of URLs.
    pub links: String,
}

/// Rows inserted per statement (ten parameters each).
const VULNERABILITY_BATCH: usize = 50;

/// A scan to start: its report and its job.
pub struct ScanRequest<'a> {
    pub uuid: &'a str,
    pub digest: &'a str,
    pub registration: &'a str,
    pub mime_type: &'a str,
    pub job: JobRequest,
}

/// Inserts a scan's job (with `trigger`, Harbor's execution trigger) and its report, Pending,
/// replacing an earlier report of the same artifact, scanner and type. Returns the job's id.
async fn insert_scan(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    scan: &ScanRequest<'_>,
    trigger: &str,
) -> Result<i64, DbError> {
    let job = insert_job(tx, &scan.job, trigger).await?;
    sqlx::query("DELETE FROM scan_reports WHERE digest = $1 AND registration = $2 AND mime_type = $3")
        .bind(scan.digest)
        .bind(scan.registration)
        .bind(scan.mime_type)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO scan_reports (uuid, digest, registration, mime_type, status, job_id, start_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(scan.uuid)
    .bind(scan.digest)
    .bind(scan.registration)
    .bind(scan.mime_type)
    .bind(scan_status::PENDING)
    .bind(job)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(job)
}

/// Whether the artifact of `scan` has a scan by the same scanner that has not ended.
async fn unfinished(tx: &mut sqlx::Transaction<'static, sqlx::Any>, scan: &ScanRequest<'_>) -> Result<bool, DbError> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM scan_reports WHERE digest = $1 AND registration = $2 AND mime_type = $3 \
         AND status IN ($4, $5)",
    )
    .bind(scan.digest)
    .bind(scan.registration)
    .bind(scan.mime_type)
    .bind(scan_status::PENDING)
    .bind(scan_status::RUNNING)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(status.is_some())
}

/// Scan-on-push: inside a push's transaction, a scan of the pushed artifact unless it has a
/// report from that scanner already (pushed before, here or in another repository: reports
/// belong to the digest). A push whose scan was acknowledged always has it queued.
pub(crate) async fn scan_on_push(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    scan: &ScanRequest<'_>,
) -> Result<(), DbError> {
    let reported: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM scan_reports WHERE digest = $1 AND registration = $2 AND mime_type = $3")
            .bind(scan.digest)
            .bind(scan.registration)
            .bind(scan.mime_type)
            .fetch_optional(&mut **tx)
            .await?;
    if reported.is_none() {
        insert_scan(tx, scan, crate::jobs::TRIGGER_EVENT).await?;
    }
    Ok(())
}

impl Db {
    /// Starts a scan: the report (Pending, replacing an earlier report of the same artifact,
    /// scanner and type) and its job, in one transaction. `Conflict` while one is pending or
    /// running. Returns the job's id.
    pub async fn request_scan(&self, scan: &ScanRequest<'_>) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        if unfinished(&mut w.tx, scan).await? {
            return Err(DbError::Conflict(format!("a scan of {} that has not ended", scan.digest)));
        }
        let job = insert_scan(&mut w.tx, scan, "MANUAL").await?;
        w.commit().await?;
        Ok(job)
    }

    /// Marks report `uuid` running; whether it exists.
    pub async fn scan_started(&self, uuid: &str) -> Result<bool, DbError> {
        let n = self
            .write_one(
                sqlx::query("UPDATE scan_reports SET status = $1, start_time = $2 WHERE uuid = $3")
                    .bind(scan_status::RUNNING)
                    .bind(now_millis())
                    .bind(uuid),
            )
            .await?;
        Ok(n > 0)
    }

    /// Ends report `uuid` with `status`, and (on success) what it found: the report and its
    /// vulnerabilities in one transaction, replacing those of the report's earlier run.
    pub async fn scan_ended(&self, uuid: &str, status: &str, result: Option<&ScanResult<'_>>) -> Result<bool, DbError> {
        let empty = ScanResult { severity: "", summary: "", report: "", findings: "", vulnerabilities: &[] };
        let r = result.unwrap_or(&empty);
        let mut w = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE scan_reports SET status = $1, severity = $2, summary = $3, report = $4, findings = $5, \
             end_time = $6 WHERE uuid = $7",
        )
        .bind(status)
        .bind(r.severity)
        .bind(r.summary)
        .bind(r.report)
        .bind(r.findings)
        .bind(now_millis())
        .bind(uuid)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        let report: Option<i64> = sqlx::query_scalar("SELECT id FROM scan_reports WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some(report) = report {
            replace_vulnerabilities(&mut w.tx, report, r.vulnerabilities).await?;
        }
        w.commit().await?;
        Ok(n > 0)
    }

    /// Up to `limit` successful reports after id `after` that have no vulnerability rows, as
    /// (id, report JSON), by id: what the index of earlier reports reads.
    pub async fn reports_to_index(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>, DbError> {
        let rows = sqlx::query(
            "SELECT s.id, s.report FROM scan_reports s WHERE s.status = 'Success' AND s.id > $1 \
             AND NOT EXISTS (SELECT 1 FROM scan_vulnerabilities v WHERE v.report_id = s.id) ORDER BY s.id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Replaces the vulnerability rows of report `report` (by id).
    pub async fn index_report(&self, report: i64, vulnerabilities: &[VulnerabilityRow]) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        replace_vulnerabilities(&mut w.tx, report, vulnerabilities).await?;
        w.commit().await
    }

    /// How many reports are in each status (a scrape's gauge).
    pub async fn scan_report_counts(&self) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM scan_reports GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// The findings (ids and severities, as the scanner wrote them) of report `uuid`: empty
    /// for a report written before they were kept.
    pub async fn scan_findings(&self, uuid: &str) -> Result<String, DbError> {
        Ok(sqlx::query_scalar("SELECT findings FROM scan_reports WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or_default())
    }

    /// The reports of `digest`, with their content.
    pub async fn scan_reports_of(&self, digest: &str) -> Result<Vec<ScanRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM scan_reports WHERE digest = $1 ORDER BY mime_type");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(digest).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(scan_row).collect::<Result<_, _>>()?)
    }

    /// The report `uuid`, with its content.
    pub async fn scan_report(&self, uuid: &str) -> Result<Option<ScanRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM scan_reports WHERE uuid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(uuid).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(scan_row).transpose()?)
    }

    /// The reports of `digests` without their content: the overviews of a listing (one query
    /// for a page), and what a pull's policy and a stop need to know of a scan.
    pub async fn scan_overviews(&self, digests: &[&str]) -> Result<Vec<ScanRow>, DbError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM scan_reports WHERE digest IN (SELECT column1 FROM {} AS v)",
            json_list(self.dialect, 1)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(json_strings(digests)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(scan_row).collect::<Result<_, _>>()?)
    }

    /// What a scan kept of layer `digest`, if it was analysed before.
    pub async fn scan_layer(&self, digest: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT files FROM scan_layers WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Keeps what a scan read of layer `digest` (a layer's content never changes).
    pub async fn save_scan_layer(&self, digest: &str, files: &str) -> Result<(), DbError> {
        self.write_one(
            sqlx::query(
                "INSERT INTO scan_layers (digest, files, analysed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (digest) DO UPDATE SET files = excluded.files, analysed_at = excluded.analysed_at",
            )
            .bind(digest)
            .bind(files)
            .bind(now_millis()),
        )
        .await?;
        Ok(())
    }
}

/// An artifact a scan of everything takes: one per digest, with a repository that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannableArtifact {
    pub digest: String,
    pub repository: String,
    pub media_type: String,
}

impl Db {
    /// The next `limit` artifacts (after digest `after`, in digest order) whose artifact type is
    /// one of `artifact_types` and that are nobody's accessory: what a scan of everything scans.
    pub async fn scannable_artifacts(
        &self,
        artifact_types: &[&str],
        after: &str,
        limit: i64,
    ) -> Result<Vec<ScannableArtifact>, DbError> {
        let types = json_strings(artifact_types);
        let values = format!("SELECT column1 FROM {} AS v", json_list(self.dialect, 1));
        let sql = format!(
            "SELECT m.digest, MIN(r.name), MIN(m.media_type) FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id \
             WHERE m.accessory_of IS NULL AND m.artifact_type IN ({values}) AND m.digest > $2 \
             GROUP BY m.digest ORDER BY m.digest LIMIT $3"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(types).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(ScannableArtifact { digest: r.try_get(0)?, repository: r.try_get(1)?, media_type: r.try_get(2)? })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Queues `scans` as tasks of job `parent` (with its trigger), in one transaction, leaving
    /// out artifacts whose scan by the same scanner has not ended. Returns how many were queued.
    pub async fn request_child_scans(
        &self,
        parent: i64,
        trigger: &str,
        scans: &[ScanRequest<'_>],
    ) -> Result<usize, DbError> {
        let mut w = self.begin_write().await?;
        let mut queued = 0;
        for scan in scans {
            if unfinished(&mut w.tx, scan).await? {
                continue;
            }
            let job = insert_scan(&mut w.tx, scan, trigger).await?;
            sqlx::query("UPDATE jobs SET parent_id = $1 WHERE id = $2")
                .bind(parent)
                .bind(job)
                .execute(&mut *w.tx)
                .await?;
            queued += 1;
        }
        w.commit().await?;
        Ok(queued)
    }

    /// How many tasks of job `parent` are in each status.
    pub async fn child_job_statuses(&self, parent: i64) -> Result<Vec<(String, i64)>, DbError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) FROM jobs WHERE parent_id = $1 GROUP BY status ORDER BY status")
                .bind(parent)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// Stops the scans job `parent` queued: those still queued at once (their reports too), the
    /// running ones at their next check. Returns how many it stopped or asked to stop.
    pub async fn stop_child_scans(&self, parent: i64) -> Result<u64, DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        sqlx::query(
            "UPDATE scan_reports SET status = $1, end_time = $2 WHERE status = $3 AND job_id IN \
             (SELECT id FROM jobs WHERE parent_id = $4 AND status = $5)",
        )
        .bind(scan_status::STOPPED)
        .bind(now)
        .bind(scan_status::PENDING)
        .bind(parent)
        .bind(crate::jobs::status::PENDING)
        .execute(&mut *w.tx)
        .await?;
        let pending = sqlx::query(
            "UPDATE jobs SET status = $1, finished_at = $2, updated_at = $2 WHERE parent_id = $3 AND status = $4",
        )
        .bind(crate::jobs::status::STOPPED)
        .bind(now)
        .bind(parent)
        .bind(crate::jobs::status::PENDING)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        let running =
            sqlx::query("UPDATE jobs SET stop_requested = 1, updated_at = $1 WHERE parent_id = $2 AND status = $3")
                .bind(now)
                .bind(parent)
                .bind(crate::jobs::status::RUNNING)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        w.commit().await?;
        Ok(pending + running)
    }
}

/// Replaces report `report`'s vulnerability rows with `vulnerabilities`, in `tx`.
async fn replace_vulnerabilities(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    report: i64,
    vulnerabilities: &[VulnerabilityRow],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM scan_vulnerabilities WHERE report_id = $1").bind(report).execute(&mut **tx).await?;
    for batch in vulnerabilities.chunks(VULNERABILITY_BATCH) {
        let values: Vec<String> =
            (0..batch.len()).map(|i| format!("($1, {})", crate::placeholders(2 + i * 9, 9))).collect();
        let sql = format!(
            "INSERT INTO scan_vulnerabilities (report_id, cve_id, package, version, fixed_version, severity, \
             severity_rank, cvss_v3, description, links) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(report);
        for v in batch {
            q = q
                .bind(v.cve_id.as_str())
                .bind(v.package.as_str())
                .bind(v.version.as_str())
                .bind(v.fixed_version.as_str())
                .bind(v.severity.as_str())
                .bind(v.severity_rank)
                .bind(v.cvss_v3)
                .bind(v.description.as_str())
                .bind(v.links.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
