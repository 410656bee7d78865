//! Harbor's audit-log API: `/auditlog-exts` (and its event types), a project's, and the older
//! `/audit-logs` and `/projects/{p}/logs` with their narrower records.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::audit::AuditRecord;
use http::request::Parts;

use super::{ApiResult, HarborApi, list_query, paged, paging, project_ref, query};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/auditlog-exts", get(list_audit_log_exts))
        .route("/api/v2.0/auditlog-exts/events", get(list_event_types))
        .route("/api/v2.0/projects/{project}/auditlog-exts", get(list_project_audit_log_exts))
        .route("/api/v2.0/audit-logs", get(list_audit_logs))
        .route("/api/v2.0/projects/{project}/logs", get(list_project_logs))
}

/// Harbor's `AuditLogExt`.
fn ext_json(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "username": r.username,
        "resource": r.event.resource,
        "resource_type": r.event.resource_type,
        "operation": r.event.operation,
        "operation_description": r.event.description,
        "operation_result": r.event.succeeded,
        "op_time": rfc3339_millis(r.op_time),
    })
}

/// Harbor's older `AuditLog`: the same record without its description and result.
fn legacy_json(r: &AuditRecord) -> serde_json::Value {
    let mut v = ext_json(r);
    if let Some(fields) = v.as_object_mut() {
        fields.remove("operation_description");
        fields.remove("operation_result");
    }
    v
}

/// A page of records: all the caller may see (`project`: `None`), or one project's.
async fn list(
    api: &HarborApi,
    parts: &Parts,
    project: Option<&str>,
    path: &str,
    json: fn(&AuditRecord) -> serde_json::Value,
) -> ApiResult {
    let subject = api.subject(parts).await?;
    let q = query(parts);
    let (page, size) = paging(&q)?;
    let filter = list_query(&q)?;
    let (records, total) = match project {
        None => api.projects.audit_logs(&subject, &filter, page, size).await?,
        Some(p) => api.projects.project_audit_logs(&subject, &project_ref(parts, p), &filter, page, size).await?,
    };
    let body: Vec<_> = records.iter().map(json).collect();
    Ok(paged(axum::Json(body).into_response(), path, &q, page, size, total))
}

async fn list_audit_log_exts(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    list(&api, &parts, None, "/api/v2.0/auditlog-exts", ext_json).await
}

async fn list_audit_logs(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    list(&api, &parts, None, "/api/v2.0/audit-logs", legacy_json).await
}

async fn list_project_audit_log_exts(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    parts: Parts,
) -> ApiResult {
    let path = format!("/api/v2.0/projects/{project}/auditlog-exts");
    list(&api, &parts, Some(&project), &path, ext_json).await
}

async fn list_project_logs(State(api): State<Arc<HarborApi>>, Path(project): Path<String>, parts: Parts) -> ApiResult {
    let path = format!("/api/v2.0/projects/{project}/logs");
    list(&api, &parts, Some(&project), &path, legacy_json).await
}

/// The event types, in Harbor's order, for any signed-in caller.
async fn list_event_types(State(api): State<Arc<HarborApi>>, parts: Parts) -> ApiResult {
    let subject = api.subject(&parts).await?;
    if subject.is_anonymous() {
        return Err(super::HarborError::unauthorized());
    }
    let body: Vec<_> = berth_core::audit::EVENT_TYPES.iter().map(|t| serde_json::json!({ "event_type": t })).collect();
    Ok(axum::Json(body).into_response())
}
