//! Harbor's `permissions` tag: `GET /permissions`, what a robot account may be given.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use berth_auth::rbac::{Action, ROBOT_PROJECT_PERMISSIONS, ROBOT_SYSTEM_PERMISSIONS, Resource};
use serde::Serialize;

use super::user::{Permission, permission_list};
use super::{ApiResult, Caller, HarborApi, json};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new().route("/api/v2.0/permissions", get(permission_sets))
}

/// Harbor's `Permissions`.
#[derive(Serialize)]
struct Permissions {
    system: Vec<Permission>,
    project: Vec<Permission>,
}

fn flatten(table: &[(Resource, &[Action])]) -> Vec<Permission> {
    permission_list(
        table
            .iter()
            .flat_map(|(r, actions)| actions.iter().map(move |a| (r.as_str().to_string(), a.as_str().to_string()))),
    )
}

/// The permissions a robot account may be given, per scope, for any signed-in caller.
async fn permission_sets(caller: Caller) -> ApiResult {
    caller.signed_in()?;
    json(Permissions { system: flatten(ROBOT_SYSTEM_PERMISSIONS), project: flatten(ROBOT_PROJECT_PERMISSIONS) })
}
