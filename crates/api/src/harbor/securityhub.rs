//! Harbor's `securityhub` tag: every artifact's vulnerabilities summed (`/security/summary`)
//! and listed (`/security/vul`), for system administrators.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use berth_core::security_hub::{DangerousArtifact, DangerousCve, ListedVulnerability, SecurityHub, SecuritySummary};
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, HarborError, Query, json, list_query, paged, paging, switch};

/// Harbor's `tune_count`: past this many matches the total is reported as -1.
const TUNED_COUNT_LIMIT: i64 = 1000;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/security/summary", get(summary))
        .route("/api/v2.0/security/vul", get(list_vulnerabilities))
}

fn hub(api: &HarborApi, caller: &Caller) -> Result<SecurityHub, HarborError> {
    caller.sysadmin("read the security hub")?;
    Ok(SecurityHub::new(api.registry.db().clone()))
}

/// Harbor's `SecuritySummary`.
#[derive(Serialize)]
struct SecuritySummaryBody {
    critical_cnt: i64,
    high_cnt: i64,
    medium_cnt: i64,
    low_cnt: i64,
    none_cnt: i64,
    unknown_cnt: i64,
    total_vuls: i64,
    scanned_cnt: i64,
    total_artifact: i64,
    fixable_cnt: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dangerous_cves: Option<Vec<DangerousCveBody>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dangerous_artifacts: Option<Vec<DangerousArtifactBody>>,
}

/// Harbor's `DangerousCVE`.
#[derive(Serialize)]
struct DangerousCveBody {
    cve_id: String,
    severity: String,
    cvss_score_v3: Option<f64>,
    desc: String,
    package: String,
    version: String,
}

/// Harbor's `DangerousArtifact`.
#[derive(Serialize)]
struct DangerousArtifactBody {
    project_id: i64,
    repository_name: String,
    digest: String,
    critical_cnt: i64,
    high_cnt: i64,
    medium_cnt: i64,
}

/// Harbor's `VulnerabilityItem`.
#[derive(Serialize)]
struct VulnerabilityItem {
    project_id: i64,
    repository_name: String,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    cve_id: String,
    severity: String,
    cvss_v3_score: Option<f64>,
    package: String,
    version: String,
    fixed_version: String,
    desc: String,
    links: Vec<String>,
}

impl From<SecuritySummary> for SecuritySummaryBody {
    fn from(s: SecuritySummary) -> SecuritySummaryBody {
        SecuritySummaryBody {
            critical_cnt: s.critical,
            high_cnt: s.high,
            medium_cnt: s.medium,
            low_cnt: s.low,
            none_cnt: s.none,
            unknown_cnt: s.unknown,
            total_vuls: s.total,
            scanned_cnt: s.scanned,
            total_artifact: s.artifacts,
            fixable_cnt: s.fixable,
            dangerous_cves: s.dangerous_cves.map(|all| all.into_iter().map(DangerousCveBody::from).collect()),
            dangerous_artifacts: s
                .dangerous_artifacts
                .map(|all| all.into_iter().map(DangerousArtifactBody::from).collect()),
        }
    }
}

impl From<DangerousCve> for DangerousCveBody {
    fn from(c: DangerousCve) -> DangerousCveBody {
        DangerousCveBody {
            cve_id: c.cve_id,
            severity: c.severity,
            cvss_score_v3: c.cvss_v3,
            desc: c.description,
            package: c.package,
            version: c.version,
        }
    }
}

impl From<DangerousArtifact> for DangerousArtifactBody {
    fn from(a: DangerousArtifact) -> DangerousArtifactBody {
        DangerousArtifactBody {
            project_id: a.project_id,
            repository_name: a.repository,
            digest: a.digest,
            critical_cnt: a.critical,
            high_cnt: a.high,
            medium_cnt: a.medium,
        }
    }
}

impl From<ListedVulnerability> for VulnerabilityItem {
    fn from(l: ListedVulnerability) -> VulnerabilityItem {
        let v = l.vulnerability;
        VulnerabilityItem {
            project_id: v.project_id,
            repository_name: v.repository,
            digest: v.digest,
            tags: l.tags,
            cve_id: v.cve_id,
            severity: v.severity,
            cvss_v3_score: v.cvss_v3,
            package: v.package,
            version: v.version,
            fixed_version: v.fixed_version,
            desc: v.description,
            links: v.links,
        }
    }
}

async fn summary(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let hub = hub(&api, &caller)?;
    let (cves, artifacts) = (switch(&q, "with_dangerous_cve", false)?, switch(&q, "with_dangerous_artifact", false)?);
    json(SecuritySummaryBody::from(hub.summary(cves, artifacts).await?))
}

async fn list_vulnerabilities(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let hub = hub(&api, &caller)?;
    let (page, size) = paging(&q)?;
    let filter = list_query(&q)?;
    let (tune, with_tags) = (switch(&q, "tune_count", false)?, switch(&q, "with_tag", false)?);
    let (rows, total) = hub.vulnerabilities(&filter, page, size, with_tags).await?;
    let body: Vec<VulnerabilityItem> = rows.into_iter().map(VulnerabilityItem::from).collect();
    let mut resp = paged(json(body)?, "/api/v2.0/security/vul", &q, page, size, total);
    if tune && total > TUNED_COUNT_LIMIT {
        resp.headers_mut().insert("x-total-count", axum::http::HeaderValue::from(-1i64));
    }
    Ok(resp)
}
