//! Harbor's `configure` tag: the system configuration (`/configurations`, `/internalconfig`).
//! The settings, their rules and how they reach every replica are `berth_core::settings`'.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use berth_auth::rbac::{Action, Resource};
use berth_core::settings::{AUTH_MODE, SettingsError};
use serde::Serialize;
use serde_json::Value;

use super::{ApiResult, Caller, HarborApi, HarborError, json, json_body, ok};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/configurations", get(get_configurations).put(update_configurations))
        .route("/api/v2.0/internalconfig", get(get_internal_config))
}

/// Harbor's `StringConfigItem`, `BoolConfigItem` and `IntegerConfigItem`: a value, and whether
/// the API may change it (not when the configuration file pins it).
#[derive(Serialize)]
struct ConfigItem {
    value: Value,
    editable: bool,
}

/// Harbor's `ConfigurationsResponse` (and `InternalConfigurationsResponse`, the same map): the
/// keys Berth acts on, and `auth_mode`, which it shows but does not let change.
fn configurations(api: &HarborApi) -> BTreeMap<&'static str, ConfigItem> {
    let settings = api.registry.settings();
    let mut items: BTreeMap<&'static str, ConfigItem> = settings
        .get()
        .api_values()
        .into_iter()
        .map(|(name, value)| (name, ConfigItem { value, editable: !settings.pinned(name) }))
        .collect();
    items.insert("auth_mode", ConfigItem { value: Value::from(AUTH_MODE), editable: false });
    items
}

async fn get_configurations(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    caller.system(Resource::Configuration, Action::Read)?;
    json(configurations(&api))
}

/// Harbor keeps this for its own components; Berth has none apart, and answers administrators
/// with the same map.
async fn get_internal_config(State(api): State<Arc<HarborApi>>, caller: Caller) -> ApiResult {
    caller.sysadmin("read the internal configuration")?;
    json(configurations(&api))
}

/// Harbor's `Configurations`: any subset of the keys. All are checked before any is stored;
/// one refused refuses the request, and nothing changes.
async fn update_configurations(
    State(api): State<Arc<HarborApi>>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    caller.system(Resource::Configuration, Action::Update)?;
    let changes: serde_json::Map<String, Value> = json_body(&body)?;
    match api.registry.settings().update(api.registry.caches(), &changes).await {
        Ok(()) => ok(),
        Err(SettingsError::Invalid(message)) => Err(HarborError::bad_request(message)),
        Err(SettingsError::Db(e)) => {
            Err(HarborError::new(http::StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))
        }
    }
}
