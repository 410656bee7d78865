//! Harbor's `Retention` tag: tag retention policies (`/retentions`), their executions, tasks
//! and task logs, and the metadata the portal builds its form from. What a policy means and
//! how it runs is `berth_retention`'s.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use berth_retention::policy::{PolicyDoc, TEMPLATES};
use berth_retention::{Execution, RetentionTaskRow};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, Query, created, json, json_body, ok, paged, paging, path_id};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/retentions/metadatas", get(metadata))
        .route("/api/v2.0/retentions", axum::routing::post(create))
        .route("/api/v2.0/retentions/{id}", get(get_policy).put(update).delete(delete))
        .route("/api/v2.0/retentions/{id}/executions", get(executions).post(execute))
        .route("/api/v2.0/retentions/{id}/executions/{eid}", patch(act))
        .route("/api/v2.0/retentions/{id}/executions/{eid}/tasks", get(tasks))
        .route("/api/v2.0/retentions/{id}/executions/{eid}/tasks/{tid}", get(task_log))
}

/// Harbor's `RetentionMetadata`.
#[derive(Serialize)]
struct Metadata {
    templates: Vec<RuleMetadata>,
    scope_selectors: Vec<SelectorMetadata>,
    tag_selectors: Vec<SelectorMetadata>,
}

#[derive(Serialize)]
struct RuleMetadata {
    rule_template: &'static str,
    display_text: &'static str,
    action: &'static str,
    params: Vec<ParamMetadata>,
}

#[derive(Serialize)]
struct ParamMetadata {
    #[serde(rename = "type")]
    kind: &'static str,
    unit: &'static str,
    required: bool,
}

#[derive(Serialize)]
struct SelectorMetadata {
    display_text: &'static str,
    kind: &'static str,
    decorations: [&'static str; 2],
}

/// Harbor's `RetentionExecution`.
#[derive(Serialize)]
struct ExecutionJson {
    id: i64,
    policy_id: i64,
    start_time: String,
    end_time: String,
    status: String,
    trigger: String,
    dry_run: bool,
}

impl From<&Execution> for ExecutionJson {
    fn from(e: &Execution) -> ExecutionJson {
        ExecutionJson {
            id: e.id,
            policy_id: e.policy_id,
            start_time: rfc3339_millis(e.start_time),
            end_time: e.end_time.map(rfc3339_millis).unwrap_or_default(),
            status: e.status.clone(),
            trigger: e.trigger.clone(),
            dry_run: e.dry_run,
        }
    }
}

/// Harbor's `RetentionExecutionTask`.
#[derive(Serialize)]
struct TaskJson {
    id: i64,
    execution_id: i64,
    repository: String,
    job_id: String,
    status: String,
    status_code: i64,
    status_revision: i64,
    start_time: String,
    end_time: String,
    total: i64,
    retained: i64,
}

impl From<&RetentionTaskRow> for TaskJson {
    fn from(t: &RetentionTaskRow) -> TaskJson {
        TaskJson {
            id: t.id,
            execution_id: t.execution_id,
            repository: t.repository.clone(),
            job_id: t.execution_id.to_string(),
            status: t.status.clone(),
            status_code: i64::from(t.end_time.is_some()),
            status_revision: t.end_time.unwrap_or(t.start_time),
            start_time: rfc3339_millis(t.start_time),
            end_time: t.end_time.map(rfc3339_millis).unwrap_or_default(),
            total: t.total,
            retained: t.retained,
        }
    }
}

async fn metadata(caller: Caller) -> ApiResult {
    caller.signed_in()?;
    let templates = TEMPLATES
        .iter()
        .map(|(name, _, text, unit)| RuleMetadata {
            rule_template: name,
            display_text: text,
            action: "retain",
            params: unit.map(|unit| ParamMetadata { kind: "int", unit, required: true }).into_iter().collect(),
        })
        .collect();
    json(Metadata {
        templates,
        scope_selectors: vec![SelectorMetadata {
            display_text: "Repositories",
            kind: "doublestar",
            decorations: ["repoMatches", "repoExcludes"],
        }],
        tag_selectors: vec![SelectorMetadata {
            display_text: "Tags",
            kind: "doublestar",
            decorations: ["matches", "excludes"],
        }],
    })
}

async fn create(State(api): State<Arc<HarborApi>>, caller: Caller, body: axum::body::Bytes) -> ApiResult {
    let doc: PolicyDoc = json_body(&body)?;
    let id = api.retention.create(&caller.subject, &doc).await?;
    Ok(created(&format!("/api/v2.0/retentions/{id}")))
}

async fn get_policy(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    json(api.retention.get(&caller.subject, path_id(&id, "id")?).await?)
}

async fn update(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let doc: PolicyDoc = json_body(&body)?;
    api.retention.update(&caller.subject, path_id(&id, "id")?, &doc).await?;
    ok()
}

async fn delete(State(api): State<Arc<HarborApi>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    api.retention.delete(&caller.subject, path_id(&id, "id")?).await?;
    ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteReq {
    #[serde(default)]
    dry_run: bool,
}

async fn execute(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: ExecuteReq = if body.is_empty() { ExecuteReq { dry_run: false } } else { json_body(&body)? };
    let id = path_id(&id, "id")?;
    let eid = api.retention.execute(&caller.subject, id, req.dry_run).await?;
    Ok(created(&format!("/api/v2.0/retentions/{id}/executions/{eid}")))
}

async fn executions(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let (page, size) = paging(&q)?;
    let (list, total) = api.retention.executions(&caller.subject, path_id(&id, "id")?, page, size).await?;
    let body: Vec<ExecutionJson> = list.iter().map(ExecutionJson::from).collect();
    Ok(paged(json(body)?, &format!("/api/v2.0/retentions/{id}/executions"), &q, page, size, total))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActReq {
    action: String,
}

async fn act(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((id, eid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: ActReq = json_body(&body)?;
    api.retention.act(&caller.subject, path_id(&id, "id")?, path_id(&eid, "eid")?, &req.action).await?;
    ok()
}

async fn tasks(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((id, eid)): Path<(String, String)>,
    Query(q): Query,
) -> ApiResult {
    let (page, size) = paging(&q)?;
    let key = (path_id(&id, "id")?, path_id(&eid, "eid")?);
    let (list, total) = api.retention.tasks(&caller.subject, key, page, size).await?;
    let body: Vec<TaskJson> = list.iter().map(TaskJson::from).collect();
    Ok(paged(json(body)?, &format!("/api/v2.0/retentions/{id}/executions/{eid}/tasks"), &q, page, size, total))
}

async fn task_log(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path((id, eid, tid)): Path<(String, String, String)>,
) -> ApiResult {
    let key = (path_id(&id, "id")?, path_id(&eid, "eid")?, path_id(&tid, "tid")?);
    let log = api.retention.task_log(&caller.subject, key).await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}
