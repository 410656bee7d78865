//! Harbor's security hub: the vulnerabilities of every artifact summed (`/security/summary`)
//! and listed (`/security/vul`), for system administrators (the caller checks), read from the
//! table each successful scan writes (`db::security_hub`).

pub use berth_db::security_hub::{ArtifactVulnerability, DangerousArtifact, DangerousCve};

use crate::projects::ProjectError;

/// How many dangerous CVEs and artifacts the summary names, as Harbor's.
const DANGEROUS: i64 = 5;

/// The summary (Harbor's `SecuritySummary`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecuritySummary {
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub none: i64,
    pub unknown: i64,
    pub total: i64,
    pub fixable: i64,
    pub scanned: i64,
    pub artifacts: i64,
    pub dangerous_cves: Option<Vec<DangerousCve>>,
    pub dangerous_artifacts: Option<Vec<DangerousArtifact>>,
}

/// One row of the list with, when asked for, the artifact's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedVulnerability {
    pub vulnerability: ArtifactVulnerability,
    pub tags: Option<Vec<String>>,
}

#[derive(Clone)]
pub struct SecurityHub {
    db: berth_db::Db,
}

impl SecurityHub {
    pub fn new(db: berth_db::Db) -> SecurityHub {
        SecurityHub { db }
    }

    pub async fn summary(&self, with_cves: bool, with_artifacts: bool) -> Result<SecuritySummary, ProjectError> {
        let counts = self.db.security_counts().await?;
        let mut summary =
            SecuritySummary { scanned: counts.scanned, artifacts: counts.artifacts, ..Default::default() };
        for (severity, n, fixable) in counts.by_severity {
            summary.total += n;
            summary.fixable += fixable;
            match severity.as_str() {
                "Critical" => summary.critical += n,
                "High" => summary.high += n,
                "Medium" => summary.medium += n,
                "Low" => summary.low += n,
                "None" => summary.none += n,
                _ => summary.unknown += n,
            }
        }
        if with_cves {
            summary.dangerous_cves = Some(self.db.dangerous_cves(DANGEROUS).await?);
        }
        if with_artifacts {
            summary.dangerous_artifacts = Some(self.db.dangerous_artifacts(DANGEROUS).await?);
        }
        Ok(summary)
    }

    /// A page (`page` from 1) of the vulnerabilities `query` selects, and how many it selects.
    pub async fn vulnerabilities(
        &self,
        query: &berth_db::ListQuery,
        page: i64,
        size: i64,
        with_tags: bool,
    ) -> Result<(Vec<ListedVulnerability>, i64), ProjectError> {
        let (rows, total) = self.db.list_artifact_vulnerabilities(query, size, (page - 1) * size).await?;
        let tags = if with_tags {
            let mut ids: Vec<i64> = rows.iter().map(|r| r.manifest_id).collect();
            ids.sort_unstable();
            ids.dedup();
            Some(self.db.tags_of(&ids).await?)
        } else {
            None
        };
        let listed = rows
            .into_iter()
            .map(|vulnerability| {
                let tags = tags.as_ref().map(|all| {
                    all.iter().filter(|t| t.manifest_id == vulnerability.manifest_id).map(|t| t.name.clone()).collect()
                });
                ListedVulnerability { vulnerability, tags }
            })
            .collect();
        Ok((listed, total))
    }
}
