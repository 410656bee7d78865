//! Harbor's `quota` tag: `/quotas` (projects' storage quotas and usage).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use berth_core::quotas::{QuotaLimits, QuotaRow};
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, json, json_body, list_query, ok, paged, paging, path_id,
    query_get,
};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/quotas", get(list_quotas))
        .route("/api/v2.0/quotas/{id}", get(get_quota).put(update_quota))
}

/// Harbor's `ResourceList`: `storage` (count quotas went in Harbor 2.0), and, beyond Harbor,
/// the per-repository limits when set.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    storage: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags_per_repository: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifacts_per_repository: Option<i64>,
}

/// Harbor's `QuotaRefObject` for a project.
#[derive(Serialize)]
struct QuotaRef {
    id: i64,
    name: String,
    owner_name: String,
}

/// Harbor's `Quota`.
#[derive(Serialize)]
struct Quota {
    id: i64,
    #[serde(rename = "ref")]
    reference: QuotaRef,
    hard: ResourceList,
    used: ResourceList,
    creation_time: String,
    update_time: String,
}

impl From<&QuotaRow> for Quota {
    fn from(q: &QuotaRow) -> Quota {
        Quota {
            id: q.id,
            reference: QuotaRef { id: q.project_id, name: q.project_name.clone(), owner_name: q.owner_name.clone() },
            hard: ResourceList {
                storage: Some(q.hard_storage),
                tags_per_repository: Some(q.hard_tags_per_repository).filter(|n| *n >= 0),
                artifacts_per_repository: Some(q.hard_artifacts_per_repository).filter(|n| *n >= 0),
            },
            used: ResourceList { storage: Some(q.used_storage), ..ResourceList::default() },
            creation_time: rfc3339_millis(q.created_at),
            update_time: rfc3339_millis(q.updated_at),
        }
    }
}

/// `reference` (only `project`), `reference_id`, `sort` (`hard.storage`, `used.storage`, with
/// `-` for descending), paging.
async fn list_quotas(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    let (page, size) = paging(&q)?;
    if let Some(reference) = query_get(&q, "reference").filter(|r| !r.is_empty())
        && reference != "project"
    {
        return Err(HarborError::bad_request(format!("reference {reference:?}: quotas are of projects only")));
    }
    let reference_id = match query_get(&q, "reference_id").filter(|r| !r.is_empty()) {
        None => None,
        Some(id) => Some(
            id.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| HarborError::bad_request("reference_id must be a positive integer"))?,
        ),
    };
    let (quotas, total) = api.projects.quotas(&caller.subject, reference_id, &list_query(&q)?, page, size).await?;
    let body: Vec<Quota> = quotas.iter().map(Quota::from).collect();
    Ok(paged(json(body)?, "/api/v2.0/quotas", &q, page, size, total))
}

async fn get_quota(State(api): State<Arc<HarborApi>>, Path(id): Path<String>, caller: Caller) -> ApiResult {
    json(Quota::from(&api.projects.quota(&caller.subject, path_id(&id, "id")?).await?))
}

/// Harbor's `QuotaUpdateReq`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaUpdateReq {
    hard: ResourceList,
}

async fn update_quota(
    State(api): State<Arc<HarborApi>>,
    Path(id): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: QuotaUpdateReq = json_body(&body)?;
    let limits = QuotaLimits {
        storage: req.hard.storage,
        tags_per_repository: req.hard.tags_per_repository,
        artifacts_per_repository: req.hard.artifacts_per_repository,
    };
    api.projects.set_quota(&caller.subject, path_id(&id, "id")?, &limits).await?;
    ok()
}
