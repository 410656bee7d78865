//! Harbor's retention policy model (`RetentionPolicy`, `RetentionRule`, `RetentionSelector`),
//! its checks, and its rules compiled for [`crate::evaluate`].

use std::collections::BTreeMap;

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Harbor's limit on a policy's rules.
pub const MOST_RULES: usize = 15;

/// Harbor's `RetentionPolicy`, as sent and shown. Beyond Harbor, `per_tag`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub algorithm: Option<String>,
    #[serde(default)]
    pub rules: Option<Vec<RuleDoc>>,
    #[serde(default)]
    pub trigger: Option<TriggerDoc>,
    #[serde(default)]
    pub scope: Option<ScopeDoc>,
    /// Decide per tag rather than per artifact (see `evaluate`).
    #[serde(default)]
    pub per_tag: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub params: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tag_selectors: Option<Vec<SelectorDoc>>,
    #[serde(default)]
    pub scope_selectors: Option<BTreeMap<String, Vec<SelectorDoc>>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorDoc {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub decoration: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    /// JSON text: `{"untagged": true}` also selects untagged artifacts.
    #[serde(default)]
    pub extras: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDoc {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub settings: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub references: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDoc {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default, rename = "ref")]
    pub reference: Option<i64>,
}

/// Harbor's rule templates: what a rule keeps of what its selectors select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The `n` most recently pushed.
    LatestPushedK,
    /// The `n` most recently pulled.
    LatestPulledN,
    /// The `n` most recently pushed or pulled.
    LatestActiveK,
    /// Pushed within the last `n` days (Harbor's older name of the next).
    LastXDays,
    NDaysSinceLastPush,
    /// Pulled within the last `n` days.
    NDaysSinceLastPull,
    Always,
}

/// Each template: its name, Harbor's text, and its parameter's unit (`None`: it takes none).
pub const TEMPLATES: &[(&str, Template, &str, Option<&str>)] = &[
    ("latestPushedK", Template::LatestPushedK, "the most recently pushed # artifacts", Some("COUNT")),
    ("latestPulledN", Template::LatestPulledN, "the most recently pulled # artifacts", Some("COUNT")),
    ("latestActiveK", Template::LatestActiveK, "the most recently pushed or pulled # artifacts", Some("COUNT")),
    ("lastXDays", Template::LastXDays, "the artifacts pushed within the last # days", Some("DAYS")),
    ("nDaysSinceLastPush", Template::NDaysSinceLastPush, "the artifacts pushed within the last # days", Some("DAYS")),
    ("nDaysSinceLastPull", Template::NDaysSinceLastPull, "the artifacts pulled within the last # days", Some("DAYS")),
    ("always", Template::Always, "always", None),
];

/// A doublestar selector, compiled.
pub struct Selector {
    /// `matches` / `repoMatches`; else `excludes` / `repoExcludes`.
    pub matches: bool,
    pub glob: GlobMatcher,
}

/// A rule, checked and compiled.
pub struct Rule {
    pub disabled: bool,
    pub template: Template,
    /// The template's count or days (0 for `always`).
    pub parameter: i64,
    pub tag_selectors: Vec<Selector>,
    /// Untagged artifacts are selected too.
    pub untagged: bool,
    pub repository_selectors: Vec<Selector>,
}

impl Rule {
    /// Whether the rule applies to `repository` (named without its project, as Harbor matches).
    pub fn selects_repository(&self, repository: &str) -> bool {
        self.repository_selectors.iter().all(|s| s.glob.is_match(repository) == s.matches)
    }
}

/// A doublestar pattern, compiled as immutability's are.
fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() || pattern.chars().count() > 256 {
        return Err("a pattern is 1 to 256 characters".into());
    }
    berth_core::immutable::glob(pattern)
}

fn selector(doc: &SelectorDoc, decorations: [&str; 2], what: &str) -> Result<Selector, String> {
    if doc.kind.as_deref() != Some("doublestar") {
        return Err(format!("{what} selector kind must be doublestar, not {:?}", doc.kind.as_deref().unwrap_or("")));
    }
    let decoration = doc.decoration.as_deref().unwrap_or("");
    if !decorations.contains(&decoration) {
        return Err(format!(
            "{what} selector decoration must be {} or {}, not {decoration:?}",
            decorations[0], decorations[1]
        ));
    }
    Ok(Selector { matches: decoration == decorations[0], glob: glob(doc.pattern.as_deref().unwrap_or(""))? })
}

/// Checks a rule and compiles it.
pub fn compile_rule(doc: &RuleDoc) -> Result<Rule, String> {
    let action = doc.action.as_deref().unwrap_or("retain");
    if action != "retain" {
        return Err(format!("a rule's action must be retain, not {action:?}"));
    }
    let name = doc.template.as_deref().unwrap_or("");
    let Some((_, template, _, unit)) = TEMPLATES.iter().find(|(n, ..)| *n == name) else {
        let known: Vec<&str> = TEMPLATES.iter().map(|(n, ..)| *n).collect();
        return Err(format!("template {name:?} is not one of {}", known.join(", ")));
    };
    let params = doc.params.clone().unwrap_or_default();
    if let Some(other) = params.keys().find(|k| *k != name) {
        return Err(format!("template {name} takes no parameter {other:?}"));
    }
    let parameter = match unit {
        Some(_) => {
            let value = params.get(name).and_then(Value::as_i64);
            match value {
                Some(n) if (0..=100_000).contains(&n) => n,
                _ => return Err(format!("template {name} needs params.{name}, a whole number from 0 to 100000")),
            }
        }
        None => 0,
    };
    let tag_docs = doc.tag_selectors.clone().unwrap_or_default();
    if tag_docs.is_empty() {
        return Err("a rule needs a tag selector".into());
    }
    let mut untagged = false;
    let mut tag_selectors = Vec::new();
    for s in &tag_docs {
        tag_selectors.push(selector(s, ["matches", "excludes"], "tag")?);
        let extras = s.extras.as_deref().unwrap_or("").trim();
        if !extras.is_empty() {
            let parsed: BTreeMap<String, Value> =
                serde_json::from_str(extras).map_err(|e| format!("tag selector extras {extras:?}: {e}"))?;
            for (key, value) in parsed {
                match (key.as_str(), value) {
                    ("untagged", Value::Bool(b)) => untagged |= b,
                    (key, _) => {
                        return Err(format!("tag selector extras: {key:?} is not a known key (untagged: bool)"));
                    }
                }
            }
        }
    }
    let scopes = doc.scope_selectors.clone().unwrap_or_default();
    if let Some(other) = scopes.keys().find(|k| *k != "repository") {
        return Err(format!("scope selectors are by repository only, not {other:?}"));
    }
    let repository_docs = scopes.get("repository").cloned().unwrap_or_default();
    if repository_docs.is_empty() {
        return Err("a rule needs a repository selector".into());
    }
    let repository_selectors = repository_docs
        .iter()
        .map(|s| selector(s, ["repoMatches", "repoExcludes"], "repository"))
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        disabled: doc.disabled.unwrap_or(false),
        template: *template,
        parameter,
        tag_selectors,
        untagged,
        repository_selectors,
    })
}

/// A policy's checked parts, as they are stored.
pub struct Checked {
    pub project_id: i64,
    /// The rules as Harbor shows them (ids and priorities filled in).
    pub rules: Vec<RuleDoc>,
    pub cron: String,
    pub per_tag: bool,
}

/// Checks a policy document: Harbor's algorithm, scope, trigger and at most 15 good rules.
pub fn check(doc: &PolicyDoc, valid_cron: impl Fn(&str) -> Result<(), String>) -> Result<Checked, String> {
    let algorithm = doc.algorithm.as_deref().unwrap_or("or");
    if algorithm != "or" {
        return Err(format!("algorithm must be or, not {algorithm:?}"));
    }
    let scope =
        doc.scope.as_ref().ok_or("a policy needs its scope: {\"level\": \"project\", \"ref\": <project id>}")?;
    if scope.level.as_deref() != Some("project") {
        return Err("a policy's scope level must be project".into());
    }
    let project_id = scope.reference.filter(|r| *r > 0).ok_or("a policy's scope needs the project's id as ref")?;
    let mut rules = doc.rules.clone().unwrap_or_default();
    if rules.len() > MOST_RULES {
        return Err(format!("a policy has at most {MOST_RULES} rules, not {}", rules.len()));
    }
    for (i, r) in rules.iter_mut().enumerate() {
        compile_rule(r).map_err(|e| format!("rule {}: {e}", i + 1))?;
        r.id = Some(i as i64 + 1);
        r.priority = Some(r.priority.unwrap_or(0));
        r.disabled = Some(r.disabled.unwrap_or(false));
        r.action = Some("retain".into());
    }
    let cron = match &doc.trigger {
        None => String::new(),
        Some(t) => {
            let kind = t.kind.as_deref().unwrap_or("Schedule");
            if kind != "Schedule" {
                return Err(format!("trigger kind must be Schedule, not {kind:?}"));
            }
            let settings = t.settings.clone().unwrap_or_default();
            if let Some(other) = settings.keys().find(|k| *k != "cron") {
                return Err(format!("trigger settings take cron only, not {other:?}"));
            }
            let cron = match settings.get("cron") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(c)) => c.trim().to_string(),
                Some(other) => return Err(format!("trigger cron must be a string, not {other}")),
            };
            if !cron.is_empty() {
                valid_cron(&cron).map_err(|e| format!("trigger cron {cron:?}: {e}"))?;
            }
            cron
        }
    };
    Ok(Checked { project_id, rules, cron, per_tag: doc.per_tag.unwrap_or(false) })
}

/// The compiled rules of a stored policy.
pub fn stored_rules(rules_json: &str) -> Result<Vec<Rule>, String> {
    let docs: Vec<RuleDoc> = serde_json::from_str(rules_json).map_err(|e| format!("stored rules: {e}"))?;
    docs.iter().map(compile_rule).collect()
}

#[cfg(test)]
pub fn compile_rule_for_test(template: &str, n: i64, tag_pattern: &str, matches: bool, untagged: bool) -> Rule {
    let mut params = BTreeMap::new();
    if template != "always" {
        params.insert(template.to_string(), Value::from(n));
    }
    compile_rule(&RuleDoc {
        template: Some(template.into()),
        params: Some(params),
        tag_selectors: Some(vec![SelectorDoc {
            kind: Some("doublestar".into()),
            decoration: Some(if matches { "matches" } else { "excludes" }.into()),
            pattern: Some(tag_pattern.into()),
            extras: Some(format!("{{\"untagged\":{untagged}}}")),
        }]),
        scope_selectors: Some(BTreeMap::from([(
            "repository".to_string(),
            vec![SelectorDoc {
                kind: Some("doublestar".into()),
                decoration: Some("repoMatches".into()),
                pattern: Some("**".into()),
                extras: None,
            }],
        )])),
        ..RuleDoc::default()
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: Value) -> PolicyDoc {
        serde_json::from_value(serde_json::json!({
            "algorithm": "or", "rules": rules, "scope": {"level": "project", "ref": 3},
            "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}, "references": {}},
        }))
        .unwrap()
    }

    fn rule(template: &str, params: Value) -> Value {
        serde_json::json!({
            "template": template, "params": params, "action": "retain",
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        })
    }

    #[test]
    fn a_good_policy_passes_and_bad_ones_say_why() {
        let ok = |_: &str| Ok(());
        let checked =
            check(&doc(serde_json::json!([rule("latestPushedK", serde_json::json!({"latestPushedK": 3}))])), ok)
                .unwrap();
        assert_eq!((checked.project_id, checked.cron.as_str(), checked.rules[0].id), (3, "0 0 0 * * *", Some(1)));
        for (rules, needle) in [
            (serde_json::json!([rule("latestPushedK", serde_json::json!({}))]), "needs params.latestPushedK"),
            (serde_json::json!([rule("latestPushedK", serde_json::json!({"latestPushedK": -1}))]), "needs params"),
            (serde_json::json!([rule("newest", serde_json::json!({}))]), "is not one of"),
            (serde_json::json!([rule("always", serde_json::json!({"n": 1}))]), "takes no parameter"),
            (serde_json::Value::Array((0..16).map(|_| rule("always", serde_json::json!({}))).collect()), "at most 15"),
        ] {
            let err = check(&doc(rules), ok).err().unwrap();
            assert!(err.contains(needle), "{err}");
        }
        let mut bad = rule("always", serde_json::json!({}));
        bad["tag_selectors"][0]["decoration"] = "repoMatches".into();
        assert!(check(&doc(serde_json::json!([bad])), ok).err().unwrap().contains("decoration"));
        let mut bad = rule("always", serde_json::json!({}));
        bad["tag_selectors"][0]["pattern"] = "[".into();
        assert!(check(&doc(serde_json::json!([bad])), ok).err().unwrap().contains("invalid pattern"));
        let err = check(&doc(serde_json::json!([])), |_| Err("bad cron".into())).err().unwrap();
        assert!(err.contains("bad cron"), "{err}");
    }
}
