//! Harbor's `auditlog` tag: `/auditlog-exts` (and its event types), a project's, and the older
//! `/audit-logs` and `/projects/{p}/logs` with their narrower records.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use berth_core::audit::AuditRecord;
use serde::Serialize;

use super::{ApiResult, Caller, HarborApi, Query, json, list_query, paged, paging};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/auditlog-exts", get(list_audit_log_exts))
        .route("/api/v2.0/auditlog-exts/events", get(list_event_types))
        .route("/api/v2.0/projects/{project}/auditlog-exts", get(list_project_audit_log_exts))
        .route("/api/v2.0/audit-logs", get(list_audit_logs))
        .route("/api/v2.0/projects/{project}/logs", get(list_project_logs))
}

/// Harbor's older `AuditLog`.
#[derive(Serialize)]
struct AuditLog {
    id: i64,
    username: String,
    resource: String,
    resource_type: &'static str,
    operation: &'static str,
    op_time: String,
}

/// Harbor's `AuditLogExt`: the record with its description and result.
#[derive(Serialize)]
struct AuditLogExt {
    #[serde(flatten)]
    log: AuditLog,
    operation_description: String,
    operation_result: bool,
}

/// Harbor's `AuditLogEventType`.
#[derive(Serialize)]
struct AuditLogEventType {
    event_type: &'static str,
}

impl From<&AuditRecord> for AuditLog {
    fn from(r: &AuditRecord) -> AuditLog {
        AuditLog {
            id: r.id,
            username: r.username.clone(),
            resource: r.event.resource.clone(),
            resource_type: r.event.resource_type,
            operation: r.event.operation,
            op_time: rfc3339_millis(r.op_time),
        }
    }
}

impl From<&AuditRecord> for AuditLogExt {
    fn from(r: &AuditRecord) -> AuditLogExt {
        AuditLogExt {
            log: AuditLog::from(r),
            operation_description: r.event.description.clone(),
            operation_result: r.event.succeeded,
        }
    }
}

/// A page of records: all the caller may see (`project`: `None`), or one project's.
async fn list<T: Serialize + for<'a> From<&'a AuditRecord>>(
    api: &HarborApi,
    caller: &Caller,
    q: &[(String, String)],
    project: Option<&str>,
    path: &str,
) -> ApiResult {
    let (page, size) = paging(q)?;
    let filter = list_query(q)?;
    let (records, total) = match project {
        None => api.projects.audit_logs(&caller.subject, &filter, page, size).await?,
        Some(p) => api.projects.project_audit_logs(&caller.subject, &caller.project(p), &filter, page, size).await?,
    };
    let body: Vec<T> = records.iter().map(T::from).collect();
    Ok(paged(json(body)?, path, q, page, size, total))
}

async fn list_audit_log_exts(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    list::<AuditLogExt>(&api, &caller, &q, None, "/api/v2.0/auditlog-exts").await
}

async fn list_audit_logs(State(api): State<Arc<HarborApi>>, caller: Caller, Query(q): Query) -> ApiResult {
    list::<AuditLog>(&api, &caller, &q, None, "/api/v2.0/audit-logs").await
}

async fn list_project_audit_log_exts(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let path = format!("/api/v2.0/projects/{project}/auditlog-exts");
    list::<AuditLogExt>(&api, &caller, &q, Some(&project), &path).await
}

async fn list_project_logs(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query,
) -> ApiResult {
    let path = format!("/api/v2.0/projects/{project}/logs");
    list::<AuditLog>(&api, &caller, &q, Some(&project), &path).await
}

/// The event types, in Harbor's order, for any signed-in caller.
async fn list_event_types(caller: Caller) -> ApiResult {
    caller.signed_in()?;
    json(berth_core::audit::EVENT_TYPES.iter().map(|&event_type| AuditLogEventType { event_type }).collect::<Vec<_>>())
}
