//! Harbor's `artifact` tag: artifacts of a repository or project, one artifact, its tags and
//! accessories, copy and delete; with Harbor's JSON shapes as typed structs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::projects::{ArtifactView, ReferenceView, TagView};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json_body, labels, list_query, ok, paged, paging,
    query_get, repository_name, switch,
};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects/{project}/artifacts", get(list_project_artifacts))
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts",
            get(list_artifacts).post(copy_artifact),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}",
            get(get_artifact).delete(delete_artifact),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/accessories",
            get(list_accessories),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/tags",
            get(list_artifact_tags).post(add_artifact_tag),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}",
            axum::routing::delete(delete_artifact_tag),
        )
}

/// Go's zero time, which Harbor shows for something never pulled.
const NEVER: &str = "0001-01-01T00:00:00.000Z";

/// Harbor's `Artifact`.
#[derive(Serialize)]
pub(super) struct Artifact {
    id: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    media_type: String,
    manifest_media_type: String,
    artifact_type: Option<String>,
    project_id: i64,
    repository_id: i64,
    repository_name: String,
    digest: String,
    size: i64,
    icon: String,
    push_time: String,
    pull_time: String,
    extra_attrs: serde_json::Value,
    annotations: serde_json::Value,
    references: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<Tag>>,
    addition_links: BTreeMap<&'static str, AdditionLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<labels::Label>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessories: Option<Vec<Accessory>>,
    /// Harbor's `ScanOverview`: by report type, the summary of the artifact's latest scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_overview: Option<BTreeMap<String, ReportSummary>>,
}

/// Harbor's `NativeReportSummary`.
#[derive(Serialize)]
struct ReportSummary {
    report_id: String,
    scan_status: String,
    severity: String,
    /// Seconds.
    duration: i64,
    summary: Option<serde_json::Value>,
    start_time: String,
    end_time: String,
    complete_percent: i64,
    scanner: serde_json::Value,
}

impl ReportSummary {
    fn of(row: &berth_core::scans::ScanRow) -> ReportSummary {
        let ended = row.end_time.unwrap_or(row.start_time);
        let done = row.end_time.is_some();
        ReportSummary {
            report_id: row.uuid.clone(),
            scan_status: row.status.clone(),
            severity: if row.severity.is_empty() { "Unknown".to_string() } else { row.severity.clone() },
            duration: (ended - row.start_time).max(0) / 1000,
            summary: serde_json::from_str(&row.summary).ok(),
            start_time: rfc3339_millis(row.start_time),
            end_time: if done { rfc3339_millis(ended) } else { String::new() },
            complete_percent: if done { 100 } else { 0 },
            scanner: serde_json::to_value(berth_core::scans::ScannerRef::builtin()).unwrap_or_default(),
        }
    }
}

/// Harbor's `Reference`: a child of an index.
#[derive(Serialize)]
struct Reference {
    parent_id: i64,
    child_id: i64,
    child_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<Vec<String>>,
}

/// Harbor's `Tag`.
#[derive(Serialize)]
struct Tag {
    id: i64,
    repository_id: i64,
    artifact_id: i64,
    name: String,
    push_time: String,
    pull_time: String,
    immutable: bool,
}

/// Harbor's `AdditionLink`.
#[derive(Serialize)]
struct AdditionLink {
    href: String,
    absolute: bool,
}

/// Harbor's `Accessory`.
#[derive(Serialize)]
struct Accessory {
    id: i64,
    artifact_id: i64,
    subject_artifact_id: i64,
    subject_artifact_digest: String,
    subject_artifact_repo: String,
    size: i64,
    digest: String,
    #[serde(rename = "type")]
    kind: String,
    icon: String,
    creation_time: String,
}

/// Harbor's artifact type.
fn artifact_kind(a: &ArtifactView) -> &'static str {
    berth_core::artifacts::harbor_type(a.artifact_type.as_deref(), &a.media_type)
}

/// The additions Harbor links for an artifact of this type (each served by `additions.rs`).
fn addition_links(a: &ArtifactView, kind: &str) -> BTreeMap<&'static str, AdditionLink> {
    let names: &[&'static str] = match kind {
        "IMAGE" if !berth_oci::media_type::is_index(&a.media_type) => &["build_history", "vulnerabilities"],
        "IMAGE" => &["vulnerabilities"],
        "CHART" => &["values.yaml", "readme.md", "dependencies"],
        "SBOM" => &["sbom"],
        _ => &[],
    };
    let (project, repository) = a.repository_name.split_once('/').unwrap_or(("", &a.repository_name));
    // Harbor's `{repository_name}` has its slashes encoded twice.
    let repository = repository.replace('/', "%252F");
    names
        .iter()
        .map(|n| {
            let href =
                format!("/api/v2.0/projects/{project}/repositories/{repository}/artifacts/{}/additions/{n}", a.digest);
            (*n, AdditionLink { href, absolute: false })
        })
        .collect()
}

/// The digest of the artifact's icon (`GET /icons/{digest}` serves it): its own, else the one
/// built in for its type.
fn icon_of(a: &ArtifactView, kind: &str) -> String {
    a.icon.clone().unwrap_or_else(|| berth_core::icons::builtin_digest(kind).to_string())
}

fn tag(a: &ArtifactView, t: &TagView) -> Tag {
    Tag {
        id: t.id,
        repository_id: a.repository_id,
        artifact_id: a.id,
        name: t.name.clone(),
        push_time: rfc3339_millis(t.pushed_at),
        pull_time: NEVER.to_string(),
        immutable: false,
    }
}

fn reference(a: &ArtifactView, r: &ReferenceView) -> Reference {
    Reference {
        parent_id: a.id,
        child_id: r.child_id,
        child_digest: r.child_digest.clone(),
        platform: r.platform.clone(),
        annotations: r.annotations.clone(),
        urls: r.urls.clone(),
    }
}

fn accessory(subject: &ArtifactView, a: &ArtifactView) -> Accessory {
    Accessory {
        id: a.id,
        artifact_id: a.id,
        subject_artifact_id: subject.id,
        subject_artifact_digest: subject.digest.clone(),
        subject_artifact_repo: subject.repository_name.clone(),
        size: a.size,
        digest: a.digest.clone(),
        kind: a.accessory.as_ref().map(|(_, t)| t.clone()).unwrap_or_else(|| "subject.accessory".into()),
        icon: icon_of(a, artifact_kind(a)),
        creation_time: rfc3339_millis(a.push_time),
    }
}

fn artifact(a: &ArtifactView) -> Artifact {
    let kind = artifact_kind(a);
    Artifact {
        id: a.id,
        kind,
        media_type: a.artifact_type.clone().unwrap_or_else(|| a.media_type.clone()),
        manifest_media_type: a.media_type.clone(),
        artifact_type: a.artifact_type.clone(),
        project_id: a.project_id,
        repository_id: a.repository_id,
        repository_name: a.repository_name.clone(),
        digest: a.digest.clone(),
        size: a.size,
        icon: icon_of(a, kind),
        push_time: rfc3339_millis(a.push_time),
        pull_time: a.pull_time.map_or_else(|| NEVER.to_string(), rfc3339_millis),
        extra_attrs: a.extra_attrs.clone().unwrap_or_else(|| serde_json::json!({})),
        annotations: a.annotations.clone().unwrap_or_else(|| serde_json::json!({})),
        references: a.references.iter().map(|r| reference(a, r)).collect(),
        tags: Some(a.tags.iter().map(|t| tag(a, t)).collect()),
        addition_links: addition_links(a, kind),
        labels: None,
        accessories: None,
        scan_overview: None,
    }
}

/// Harbor's `with_*` switches of artifact reads. `with_signature` and `with_sbom_overview` are
/// accepted (as Harbor, they must be booleans); what they add comes with content trust and
/// SBOMs.
struct ArtifactDetail {
    tags: bool,
    labels: bool,
    accessories: bool,
    immutable_status: bool,
    scan_overview: bool,
}

impl ArtifactDetail {
    fn of(q: &[(String, String)]) -> Result<ArtifactDetail, HarborError> {
        for accepted in ["with_signature", "with_sbom_overview"] {
            switch(q, accepted, false)?;
        }
        Ok(ArtifactDetail {
            tags: switch(q, "with_tag", true)?,
            labels: switch(q, "with_label", false)?,
            accessories: switch(q, "with_accessory", false)?,
            immutable_status: switch(q, "with_immutable_status", false)?,
            scan_overview: switch(q, "with_scan_overview", false)?,
        })
    }
}

/// Artifacts as Harbor shows them, with what `detail` asks for (labels in one query for all).
async fn artifacts(
    api: &HarborApi,
    views: &[ArtifactView],
    detail: &ArtifactDetail,
) -> Result<Vec<Artifact>, HarborError> {
    let labels = if detail.labels {
        let ids: Vec<i64> = views.iter().map(|a| a.id).collect();
        Some(api.projects.labels_of(&ids).await?)
    } else {
        None
    };
    let accessories = if detail.accessories { Some(api.projects.accessories_of(views).await?) } else { None };
    // One query for the page: a summary per artifact, never its findings (goharbor/harbor#18013).
    let overviews = if detail.scan_overview { Some(api.projects.scan_overviews(views).await?) } else { None };
    let immutable = if detail.immutable_status && detail.tags {
        let tagged: Vec<(&str, Vec<&str>)> = views
            .iter()
            .map(|a| (a.repository_name.as_str(), a.tags.iter().map(|t| t.name.as_str()).collect()))
            .collect();
        api.projects.immutable_tags(&tagged).await?
    } else {
        Vec::new()
    };
    Ok(views
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut out = artifact(a);
            if !detail.tags {
                out.tags = None;
            }
            if let (Some(tags), Some(flags)) = (out.tags.as_mut(), immutable.get(i)) {
                for (t, flag) in tags.iter_mut().zip(flags) {
                    t.immutable = *flag;
                }
            }
            if let Some(labels) = &labels {
                out.labels =
                    Some(labels.iter().filter(|(m, _)| *m == a.id).map(|(_, l)| labels::Label::from(l)).collect());
            }
            if let Some(accessories) = &accessories {
                let of_this = accessories.iter().find(|(id, _)| *id == a.id).map(|(_, list)| list.as_slice());
                out.accessories = Some(of_this.unwrap_or_default().iter().map(|x| accessory(a, x)).collect());
            }
            if let Some(overviews) = &overviews {
                out.scan_overview = Some(
                    overviews
                        .iter()
                        .filter(|r| r.digest == a.digest)
                        .map(|r| (r.mime_type.clone(), ReportSummary::of(r)))
                        .collect(),
                );
            }
            out
        })
        .collect())
}

async fn list_artifacts(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo)): Path<(String, String)>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let (page, size) = paging(&q)?;
    let (views, total) = api
        .projects
        .artifacts(subject, &caller.project(&project), &repository_name(&repo), &list_query(&q)?, page, size)
        .await?;
    let body = artifacts(&api, &views, &ArtifactDetail::of(&q)?).await?;
    let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

async fn list_project_artifacts(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let (page, size) = paging(&q)?;
    let list_query = list_query(&q)?;
    // As in Harbor, `latest_in_repository` applies only when the query names a type.
    let latest = switch(&q, "latest_in_repository", false)?
        && list_query.terms.iter().any(|(k, _)| k == "media_type" || k == "artifact_type");
    let (views, total) =
        api.projects.project_artifacts(subject, &caller.project(&project), &list_query, latest, page, size).await?;
    let body = artifacts(&api, &views, &ArtifactDetail::of(&q)?).await?;
    let path = format!("/api/v2.0/projects/{project}/artifacts");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

async fn get_artifact(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let detail = ArtifactDetail::of(&q)?;
    let a = api.projects.artifact(subject, &caller.project(&project), &repository_name(&repo), &reference).await?;
    let mut body = artifacts(&api, std::slice::from_ref(&a), &detail).await?;
    match body.pop() {
        Some(one) => Ok(axum::Json(one).into_response()),
        None => Err(HarborError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "artifact view missing")),
    }
}

async fn delete_artifact(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let subject = &caller.subject;
    api.projects.delete_artifact(subject, &caller.project(&project), &repository_name(&repo), &reference).await?;
    ok()
}

async fn list_artifact_tags(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let a = api.projects.artifact(subject, &caller.project(&project), &repository_name(&repo), &reference).await?;
    let (page, size) = paging(&q)?;
    let filter = list_query(&q)?;
    let tags = filter_tags(&a.tags, &filter)?;
    let total = tags.len() as i64;
    let mut body: Vec<Tag> =
        tags.iter().skip(((page - 1) * size) as usize).take(size as usize).map(|t| tag(&a, t)).collect();
    if switch(&q, "with_immutable_status", false)? {
        let names: Vec<&str> = body.iter().map(|t| t.name.as_str()).collect();
        let flags = api.projects.immutable_tags(&[(&a.repository_name, names)]).await?;
        for (t, flag) in body.iter_mut().zip(flags.into_iter().flatten()) {
            t.immutable = flag;
        }
    }
    let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{reference}/tags");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

/// Harbor's `q` on an artifact's tags: `name` (exact or `~fuzzy`) and `id`; any other key is
/// refused, as Harbor refuses it.
fn filter_tags<'a>(tags: &'a [TagView], query: &berth_core::query::ListQuery) -> Result<Vec<&'a TagView>, HarborError> {
    use berth_core::query::Match;
    let mut out: Vec<&TagView> = tags.iter().collect();
    for (key, m) in &query.terms {
        let keep = |t: &TagView| -> Result<bool, HarborError> {
            let value = match key.as_str() {
                "name" => t.name.clone(),
                "id" => t.id.to_string(),
                other => return Err(HarborError::bad_request(format!("tags cannot be filtered by {other:?}"))),
            };
            Ok(match m {
                Match::Exact(v) => value == *v,
                Match::Fuzzy(v) => value.contains(v.as_str()),
                Match::AnyOf(vs) => vs.contains(&value),
                Match::AllOf(vs) => vs.iter().all(|v| *v == value),
                Match::Range(lo, hi) => {
                    lo.as_ref().is_none_or(|l| value.as_str() >= l.as_str())
                        && hi.as_ref().is_none_or(|h| value.as_str() <= h.as_str())
                }
            })
        };
        let mut kept = Vec::with_capacity(out.len());
        for t in out {
            if keep(t)? {
                kept.push(t);
            }
        }
        out = kept;
    }
    Ok(out)
}

async fn add_artifact_tag(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    struct TagReq {
        name: String,
    }
    let subject = &caller.subject;
    let req: TagReq = json_body(&body)?;
    api.projects.add_tag(subject, &caller.project(&project), &repository_name(&repo), &reference, &req.name).await?;
    Ok(created(&format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{reference}/tags/{}", req.name)))
}

async fn delete_artifact_tag(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference, tag)): Path<(String, String, String, String)>,
    caller: Caller,
) -> ApiResult {
    let subject = &caller.subject;
    api.projects.delete_tag(subject, &caller.project(&project), &repository_name(&repo), &reference, &tag).await?;
    ok()
}

async fn list_accessories(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let (subject_artifact, accessories) =
        api.projects.accessories(subject, &caller.project(&project), &repository_name(&repo), &reference).await?;
    let (page, size) = paging(&q)?;
    let total = accessories.len() as i64;
    let body: Vec<Accessory> = accessories
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|a| accessory(&subject_artifact, a))
        .collect();
    let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{reference}/accessories");
    Ok(paged(axum::Json(body).into_response(), &path, &q, page, size, total))
}

/// `POST …/artifacts?from=<project>/<repository>@<digest>` (or `:<tag>`): copy an artifact.
async fn copy_artifact(
    State(api): State<Arc<HarborApi>>,
    Path((project, repo)): Path<(String, String)>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let subject = &caller.subject;
    let Some(from) = query_get(&q, "from").filter(|f| !f.is_empty()) else {
        return Err(HarborError::bad_request("from is required"));
    };
    let repository = repository_name(&repo);
    let digest = api.projects.copy_artifact(subject, &caller.project(&project), &repository, from).await?;
    Ok(created(&format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{digest}")))
}
