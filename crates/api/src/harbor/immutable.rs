//! Harbor's `immutable` tag: a project's immutable tag rules
//! (`/projects/{project_name_or_id}/immutabletagrules`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use berth_core::immutable::ImmutableRuleRow;
use serde::{Deserialize, Serialize};

use super::{
    ApiResult, Caller, HarborApi, HarborError, Query, created, json, json_body, list_query, ok, paged, paging, path_id,
};

pub(super) fn routes() -> Router<Arc<HarborApi>> {
    Router::new()
        .route("/api/v2.0/projects/{project}/immutabletagrules", get(list_rules).post(create_rule))
        .route("/api/v2.0/projects/{project}/immutabletagrules/{rule_id}", put(update_rule).delete(delete_rule))
}

const ACTION: &str = "immutable";
const TEMPLATE: &str = "immutable_template";
const KIND: &str = "doublestar";

/// Harbor's `ImmutableSelector`.
#[derive(Serialize, Deserialize, Clone)]
struct ImmutableSelector {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    decoration: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    extras: Option<String>,
}

/// Harbor's `ImmutableRule`, as answered.
#[derive(Serialize)]
struct ImmutableRule {
    id: i64,
    priority: i64,
    disabled: bool,
    action: &'static str,
    template: &'static str,
    params: BTreeMap<String, serde_json::Value>,
    tag_selectors: Vec<ImmutableSelector>,
    scope_selectors: BTreeMap<String, Vec<ImmutableSelector>>,
}

fn selector(decoration: &str, pattern: &str) -> ImmutableSelector {
    ImmutableSelector {
        kind: Some(KIND.into()),
        decoration: Some(decoration.into()),
        pattern: Some(pattern.into()),
        extras: Some(String::new()),
    }
}

impl From<&ImmutableRuleRow> for ImmutableRule {
    fn from(r: &ImmutableRuleRow) -> ImmutableRule {
        ImmutableRule {
            id: r.id,
            priority: r.priority,
            disabled: r.disabled,
            action: ACTION,
            template: TEMPLATE,
            params: BTreeMap::new(),
            tag_selectors: vec![selector(&r.tag_decoration, &r.tag_pattern)],
            scope_selectors: BTreeMap::from([(
                "repository".to_string(),
                vec![selector(&r.repository_decoration, &r.repository_pattern)],
            )]),
        }
    }
}

/// Harbor's `ImmutableRule`, as a request gives it: every key is checked, none is ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    params: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    tag_selectors: Option<Vec<ImmutableSelector>>,
    #[serde(default)]
    scope_selectors: Option<BTreeMap<String, Vec<ImmutableSelector>>>,
}

/// One selector's (decoration, pattern): of kind doublestar, without extras.
fn one_selector(list: &[ImmutableSelector], what: &str) -> Result<(String, String), HarborError> {
    let [s] = list else {
        return Err(HarborError::bad_request(format!("exactly one {what} selector is needed, {} given", list.len())));
    };
    if s.kind.as_deref().is_some_and(|k| k != KIND) {
        return Err(HarborError::bad_request(format!("{what} selector kind must be {KIND}")));
    }
    if s.extras.as_deref().is_some_and(|e| !e.is_empty()) {
        return Err(HarborError::bad_request(format!("{what} selectors of immutable rules take no extras")));
    }
    let field = |v: &Option<String>, name: &str| {
        v.clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| HarborError::bad_request(format!("{what} selector needs a {name}")))
    };
    Ok((field(&s.decoration, "decoration")?, field(&s.pattern, "pattern")?))
}

impl RuleJson {
    /// The rule this body describes, keys it leaves out taken from `current` (an update), or
    /// required (a creation).
    fn into_rule(self, current: Option<&ImmutableRuleRow>) -> Result<ImmutableRuleRow, HarborError> {
        if self.action.as_deref().is_some_and(|a| a != ACTION) {
            return Err(HarborError::bad_request(format!("action must be {ACTION}")));
        }
        if self.template.as_deref().is_some_and(|t| t != TEMPLATE) {
            return Err(HarborError::bad_request(format!("template must be {TEMPLATE}")));
        }
        if self.params.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(HarborError::bad_request("immutable rules take no params"));
        }
        let tag = match (&self.tag_selectors, current) {
            (Some(list), _) => one_selector(list, "tag")?,
            (None, Some(c)) => (c.tag_decoration.clone(), c.tag_pattern.clone()),
            (None, None) => return Err(HarborError::bad_request("tag_selectors is required")),
        };
        let repository = match (&self.scope_selectors, current) {
            (Some(scopes), _) => {
                if let Some(other) = scopes.keys().find(|k| *k != "repository") {
                    return Err(HarborError::bad_request(format!("unknown scope selector {other:?}: only repository")));
                }
                one_selector(scopes.get("repository").map(Vec::as_slice).unwrap_or_default(), "repository")?
            }
            (None, Some(c)) => (c.repository_decoration.clone(), c.repository_pattern.clone()),
            (None, None) => return Err(HarborError::bad_request("scope_selectors.repository is required")),
        };
        Ok(ImmutableRuleRow {
            // The project's and the path's, set by the service.
            id: 0,
            project_id: 0,
            priority: self.priority.or(current.map(|c| c.priority)).unwrap_or(0),
            disabled: self.disabled.or(current.map(|c| c.disabled)).unwrap_or(false),
            repository_decoration: repository.0,
            repository_pattern: repository.1,
            tag_decoration: tag.0,
            tag_pattern: tag.1,
        })
    }
}

async fn list_rules(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let (page, size) = paging(&q)?;
    let (rules, total) =
        api.projects.immutable_rules(&caller.subject, &caller.project(&project), &list_query(&q)?, page, size).await?;
    let body: Vec<ImmutableRule> = rules.iter().map(ImmutableRule::from).collect();
    Ok(paged(json(body)?, &format!("/api/v2.0/projects/{project}/immutabletagrules"), &q, page, size, total))
}

async fn create_rule(
    State(api): State<Arc<HarborApi>>,
    Path(project): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    let req: RuleJson = json_body(&body)?;
    let id =
        api.projects.create_immutable_rule(&caller.subject, &caller.project(&project), req.into_rule(None)?).await?;
    Ok(created(&format!("/api/v2.0/projects/{project}/immutabletagrules/{id}")))
}

/// Keys left out keep their values (Harbor's portal sends the whole rule to switch it off).
async fn update_rule(
    State(api): State<Arc<HarborApi>>,
    Path((project, id)): Path<(String, String)>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult {
    let id = path_id(&id, "immutable_rule_id")?;
    let req: RuleJson = json_body(&body)?;
    if req.id.is_some_and(|given| given != id) {
        return Err(HarborError::bad_request("the body's id differs from the path's"));
    }
    let project = caller.project(&project);
    let current = api.projects.immutable_rule(&caller.subject, &project, id).await?;
    api.projects.update_immutable_rule(&caller.subject, &project, id, req.into_rule(Some(&current))?).await?;
    ok()
}

async fn delete_rule(
    State(api): State<Arc<HarborApi>>,
    Path((project, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult {
    api.projects
        .delete_immutable_rule(&caller.subject, &caller.project(&project), path_id(&id, "immutable_rule_id")?)
        .await?;
    ok()
}
