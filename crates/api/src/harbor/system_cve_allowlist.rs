//! Harbor's `SystemCVEAllowlist` tag: the system's CVE allowlist; and Harbor's `CVEAllowlist`
//! shape, which projects embed too.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use berth_core::allowlists::{AllowlistInput, CveAllowlist};
use berth_core::projects::ProjectError;
use serde::{Deserialize, Serialize};

use super::{ApiResult, Caller, HarborApi, json, json_body, ok};
use crate::time::rfc3339_millis;

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/system/CVEAllowlist", get(get_allowlist).put(put_allowlist))
}

/// Harbor's `CVEAllowlist`.
#[derive(Serialize)]
pub(super) struct CveAllowlistBody {
    id: i64,
    project_id: i64,
    expires_at: Option<i64>,
    items: Vec<CveAllowlistItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_time: Option<String>,
}

impl From<&CveAllowlist> for CveAllowlistBody {
    fn from(l: &CveAllowlist) -> CveAllowlistBody {
        let set = l.id != 0;
        CveAllowlistBody {
            id: l.id,
            project_id: l.project_id,
            expires_at: l.expires_at,
            items: l.items.iter().map(|id| CveAllowlistItem { cve_id: id.clone() }).collect(),
            creation_time: set.then(|| rfc3339_millis(l.created_at)),
            update_time: set.then(|| rfc3339_millis(l.updated_at)),
        }
    }
}

/// Harbor's `CVEAllowlistItem`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CveAllowlistItem {
    cve_id: String,
}

/// Harbor's `CVEAllowlist` as a request gives it. `id`, `project_id` and the times are
/// Harbor's read-only fields, which clients send back as they read them: taken, and not used.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CveAllowlistReq {
    #[serde(default, rename = "id")]
    _id: Option<i64>,
    #[serde(default, rename = "project_id")]
    _project_id: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    items: Vec<CveAllowlistItem>,
    #[serde(default, rename = "creation_time")]
    _creation_time: Option<String>,
    #[serde(default, rename = "update_time")]
    _update_time: Option<String>,
}

impl CveAllowlistReq {
    pub(super) fn checked(self) -> Result<AllowlistInput, ProjectError> {
        AllowlistInput::checked(self.expires_at, self.items.into_iter().map(|i| i.cve_id).collect())
    }
}

async fn get_allowlist(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    json(CveAllowlistBody::from(&api.projects.system_cve_allowlist(&caller.subject).await?))
}

async fn put_allowlist(State(api): State<Arc<HarborApi>>, caller: Caller, body: axum::body::Bytes) -> ApiResult {
    let req: CveAllowlistReq = json_body(&body)?;
    api.projects.set_system_cve_allowlist(&caller.subject, &req.checked()?).await?;
    ok()
}
