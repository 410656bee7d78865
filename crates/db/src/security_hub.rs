//! Harbor's security hub: the vulnerabilities of every artifact, summed and listed, read from
//! `scan_vulnerabilities` (written with each report) joined to the artifacts whose digest a
//! successful report covers. An artifact is a manifest of a repository, as Harbor counts them:
//! an image pushed to two repositories is two artifacts with the same findings.

use sqlx::Row;

use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery};

/// The artifacts with their successful reports' vulnerabilities.
const FROM: &str = "FROM scan_vulnerabilities v \
    JOIN scan_reports s ON s.id = v.report_id AND s.status = 'Success' \
    JOIN manifests m ON m.digest = s.digest \
    JOIN repositories r ON r.id = m.repository_id";

/// Vulnerabilities per severity across every artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityCounts {
    /// (severity, vulnerabilities, of which fixable), Harbor's words.
    pub by_severity: Vec<(String, i64, i64)>,
    pub artifacts: i64,
    /// Artifacts with a successful report.
    pub scanned: i64,
}

/// One of the most dangerous vulnerabilities (Harbor's `DangerousCVE`).
#[derive(Debug, Clone, PartialEq)]
pub struct DangerousCve {
    pub cve_id: String,
    pub severity: String,
    pub cvss_v3: Option<f64>,
    pub description: String,
    pub package: String,
    pub version: String,
}

/// One of the artifacts with the most severe vulnerabilities (Harbor's `DangerousArtifact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DangerousArtifact {
    pub project_id: i64,
    pub repository: String,
    pub digest: String,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
}

/// A vulnerability of an artifact (Harbor's `VulnerabilityItem`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactVulnerability {
    pub manifest_id: i64,
    pub project_id: i64,
    pub repository: String,
    pub digest: String,
    pub cve_id: String,
    pub severity: String,
    pub cvss_v3: Option<f64>,
    pub package: String,
    pub version: String,
    pub fixed_version: String,
    pub description: String,
    pub links: Vec<String>,
}

/// What `q` may name in `/security/vul` (Harbor's list but `status`, which Berth's reports
/// do not have: refused rather than ignored).
const VULNERABILITY_FIELDS: &[Field] = &[
    Field { key: "cve_id", source: Source::Column("v.cve_id"), kind: Kind::Text, sortable: true },
    Field { key: "cvss_score_v3", source: Source::Column("v.cvss_v3"), kind: Kind::Float, sortable: true },
    Field { key: "severity", source: Source::Column("v.severity"), kind: Kind::Text, sortable: false },
    Field { key: "repository_name", source: Source::Column("r.name"), kind: Kind::Text, sortable: true },
    Field { key: "project_id", source: Source::Column("r.project_id"), kind: Kind::Int, sortable: true },
    Field { key: "package", source: Source::Column("v.package"), kind: Kind::Text, sortable: true },
    Field {
        key: "tag",
        source: Source::Related { from_where: "SELECT 1 FROM tags t WHERE t.manifest_id = m.id", column: "t.name" },
        kind: Kind::Text,
        sortable: false,
    },
    Field { key: "digest", source: Source::Column("m.digest"), kind: Kind::Text, sortable: true },
];

impl Db {
    /// The summary's counts.
    pub async fn security_counts(&self) -> Result<SecurityCounts, DbError> {
        let sql = format!(
            "SELECT v.severity, COUNT(*), SUM(CASE WHEN v.fixed_version <> '' THEN 1 ELSE 0 END) {FROM} \
             GROUP BY v.severity ORDER BY v.severity"
        );
        let mut by_severity = Vec::new();
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await? {
            by_severity.push((row.try_get(0)?, row.try_get(1)?, row.try_get::<Option<i64>, _>(2)?.unwrap_or(0)));
        }
        let artifacts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests").fetch_one(&self.pool).await?;
        let scanned: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM manifests m WHERE EXISTS \
             (SELECT 1 FROM scan_reports s WHERE s.digest = m.digest AND s.status = 'Success')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SecurityCounts { by_severity, artifacts, scanned })
    }

    /// The `n` most dangerous vulnerabilities found: the most severe, then the highest CVSS
    /// score, each (CVE, package, version) once.
    pub async fn dangerous_cves(&self, n: i64) -> Result<Vec<DangerousCve>, DbError> {
        let sql = format!(
            "SELECT v.cve_id, MAX(v.severity_rank), MAX(v.severity), MAX(v.cvss_v3), MAX(v.description), \
             v.package, v.version {FROM} WHERE v.severity_rank >= 4 GROUP BY v.cve_id, v.package, v.version \
             ORDER BY MAX(v.severity_rank) DESC, MAX(v.cvss_v3) DESC NULLS LAST, v.cve_id, v.package LIMIT $1"
        );
        let mut out = Vec::new();
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n).fetch_all(&self.pool).await? {
            out.push(DangerousCve {
                cve_id: row.try_get(0)?,
                severity: row.try_get(2)?,
                cvss_v3: row.try_get(3)?,
                description: row.try_get(4)?,
                package: row.try_get(5)?,
                version: row.try_get(6)?,
            });
        }
        Ok(out)
    }

    /// The `n` artifacts with the most critical vulnerabilities, then high, then medium.
    pub async fn dangerous_artifacts(&self, n: i64) -> Result<Vec<DangerousArtifact>, DbError> {
        let count = |rank: i64| format!("SUM(CASE WHEN v.severity_rank = {rank} THEN 1 ELSE 0 END)");
        let (critical, high, medium) = (count(5), count(4), count(3));
        let sql = format!(
            "SELECT r.project_id, r.name, m.digest, {critical}, {high}, {medium} {FROM} \
             WHERE v.severity_rank >= 3 GROUP BY m.id, r.project_id, r.name, m.digest \
             ORDER BY {critical} DESC, {high} DESC, {medium} DESC, m.id LIMIT $1"
        );
        let mut out = Vec::new();
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n).fetch_all(&self.pool).await? {
            out.push(DangerousArtifact {
                project_id: row.try_get(0)?,
                repository: row.try_get(1)?,
                digest: row.try_get(2)?,
                critical: row.try_get(3)?,
                high: row.try_get(4)?,
                medium: row.try_get(5)?,
            });
        }
        Ok(out)
    }

    /// A page of every artifact's vulnerabilities filtered by `query` (most severe first),
    /// and how many match.
    pub async fn list_artifact_vulnerabilities(
        &self,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ArtifactVulnerability>, i64), DbError> {
        let from = format!("{FROM} WHERE 1 = 1");
        let listing = Listing {
            columns: "m.id, r.project_id, r.name, m.digest, v.cve_id, v.severity, v.cvss_v3, v.package, v.version, \
                      v.fixed_version, v.description, v.links",
            from: &from,
            fixed: Vec::<Arg>::new(),
            fields: VULNERABILITY_FIELDS,
            default_order: "v.severity_rank DESC, v.cvss_v3 DESC NULLS LAST",
            tie_break: "m.id, v.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let links: String = row.try_get(11)?;
            out.push(ArtifactVulnerability {
                manifest_id: row.try_get(0)?,
                project_id: row.try_get(1)?,
                repository: row.try_get(2)?,
                digest: row.try_get(3)?,
                cve_id: row.try_get(4)?,
                severity: row.try_get(5)?,
                cvss_v3: row.try_get(6)?,
                package: row.try_get(7)?,
                version: row.try_get(8)?,
                fixed_version: row.try_get(9)?,
                description: row.try_get(10)?,
                links: serde_json::from_str(&links).unwrap_or_default(),
            });
        }
        Ok((out, total))
    }
}
