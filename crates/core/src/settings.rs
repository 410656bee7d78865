//! The system configuration: Harbor's run-time settings (`/configurations`), kept in the
//! database's `settings` table and seen by every replica.
//!
//! A setting's value is, in order: the configuration file's, when the file pins the key; the
//! one last set through the API (a row in `settings`); the file's starting value; Harbor's
//! default. Readers take the whole snapshot ([`SystemSettings::get`]) without waiting: it is
//! reloaded after every change made here, whenever another replica's change is heard of (the
//! caches' invalidation, [`crate::cache::Change::Settings`]), and at least every
//! [`crate::cache::Caches::max_age`] (one second where nothing tells of other replicas'
//! writes), so a change shows everywhere within a second.
//!
//! Settings that lower layers act on are pushed down on every load: the audit settings
//! (`Db::configure_audit`) and quota enforcement (`Db::enforce_quotas`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use berth_db::{AuditSettings, AuditSink, Db, DbError};
use serde_json::Value;

use crate::cache::{Caches, Change};

/// How a setting's value is typed in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Str,
}

/// One setting: its Harbor name, type, Harbor's default (as stored) and its rule.
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    default: &'static str,
    check: fn(&str) -> Result<(), String>,
}

fn any(_: &str) -> Result<(), String> {
    Ok(())
}

fn creation_restriction(v: &str) -> Result<(), String> {
    match v {
        "everyone" | "adminonly" => Ok(()),
        _ => Err(format!("must be everyone or adminonly, not {v:?}")),
    }
}

fn minutes(v: &str) -> Result<(), String> {
    in_range(v, 1, 525_600, "minutes")
}

fn days(v: &str) -> Result<(), String> {
    in_range(v, 1, 36_500, "days")
}

fn in_range(v: &str, low: i64, high: i64, unit: &str) -> Result<(), String> {
    match v.parse::<i64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!("must be {low} to {high} {unit}, not {v}")),
    }
}

fn storage(v: &str) -> Result<(), String> {
    let n: i64 = v.parse().map_err(|_| format!("{v} is not a number of bytes"))?;
    crate::quotas::validate_storage(n).map_err(|e| e.to_string())
}

/// Berth tells robots from users by the `$` no user name may hold, so a prefix must have one.
fn robot_prefix(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 30 || !v.contains('$') {
        return Err(format!(
            "{v:?} must be 1 to 30 characters and hold a '$' (a character no user name has, so that a robot's \
             name is never a user's)"
        ));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+' || c == '/') {
        return Err(format!("{v:?} may not hold whitespace, '+' or '/'"));
    }
    Ok(())
}

fn syslog_endpoint(v: &str) -> Result<(), String> {
    if v.is_empty() { Ok(()) } else { crate::syslog::Endpoint::parse(v).map(|_| ()) }
}

fn event_types(v: &str) -> Result<(), String> {
    match split_list(v).find(|t| !berth_db::audit::EVENT_TYPES.contains(t)) {
        Some(unknown) => Err(format!("unknown event type {unknown:?} (see GET /auditlog-exts/events)")),
        None => Ok(()),
    }
}

fn banner(v: &str) -> Result<(), String> {
    if v.len() > 8192 { Err("at most 8192 bytes".into()) } else { Ok(()) }
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// The settings Berth keeps and acts on.
pub const KEYS: &[Key] = &[
    Key { name: "project_creation_restriction", kind: Kind::Str, default: "everyone", check: creation_restriction },
    Key { name: "self_registration", kind: Kind::Bool, default: "false", check: any },
    Key { name: "token_expiration", kind: Kind::Int, default: "30", check: minutes },
    Key { name: "robot_token_duration", kind: Kind::Int, default: "30", check: days },
    Key { name: "robot_name_prefix", kind: Kind::Str, default: "robot$", check: robot_prefix },
    Key { name: "audit_log_forward_endpoint", kind: Kind::Str, default: "", check: syslog_endpoint },
    Key { name: "skip_audit_log_database", kind: Kind::Bool, default: "false", check: any },
    Key { name: "disabled_audit_log_event_types", kind: Kind::Str, default: "", check: event_types },
    Key { name: "pull_audit_log_disable", kind: Kind::Bool, default: "false", check: any },
    Key { name: "storage_per_project", kind: Kind::Int, default: "-1", check: storage },
    Key { name: "quota_per_project_enable", kind: Kind::Bool, default: "true", check: any },
    Key { name: "read_only", kind: Kind::Bool, default: "false", check: any },
    Key { name: "banner_message", kind: Kind::Str, default: "", check: banner },
];

/// Harbor's keys Berth does not act on yet: refused rather than stored and ignored.
const NOT_YET: &[&str] = &[
    "primary_auth_mode",
    "notification_enable",
    "session_timeout",
    "scanner_skip_update_pulltime",
    "scan_all_policy",
    "pull_time_update_disable",
    "pull_count_update_disable",
];
const NOT_YET_PREFIXES: &[&str] = &["ldap_", "oidc_", "uaa_", "http_authproxy_"];

/// Harbor's answer to a change while `read_only` is on (`src/server/middleware/readonly`).
pub const READ_ONLY_MESSAGE: &str = "The system is in read only mode. Any modification is prohibited.";

/// The authentication mode, shown but fixed: users are Berth's own.
pub const AUTH_MODE: &str = "db_auth";

fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Why a configuration change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// `value` for `key` in its stored form, if it is of the key's type: strictly (`lenient`
/// false, the API) or also from text (the configuration file and its environment variables).
fn stored_form(key: &Key, value: &Value, lenient: bool) -> Result<String, String> {
    let stored = match (key.kind, value) {
        (Kind::Bool, Value::Bool(b)) => b.to_string(),
        (Kind::Int, Value::Number(n)) if n.is_i64() => n.to_string(),
        (Kind::Str, Value::String(s)) => s.clone(),
        (Kind::Bool, Value::String(s)) if lenient && (s == "true" || s == "false") => s.clone(),
        (Kind::Int, Value::String(s)) if lenient && s.parse::<i64>().is_ok() => s.clone(),
        (kind, other) => {
            let wanted = match kind {
                Kind::Bool => "a boolean",
                Kind::Int => "an integer",
                Kind::Str => "a string",
            };
            return Err(format!("{} must be {wanted}, not {other}", key.name));
        }
    };
    (key.check)(&stored).map_err(|e| format!("{}: {e}", key.name))?;
    Ok(stored)
}

fn api_form(kind: Kind, stored: &str) -> Value {
    match kind {
        Kind::Bool => Value::Bool(stored == "true"),
        Kind::Int => stored.parse::<i64>().map_or(Value::Null, Value::from),
        Kind::Str => Value::String(stored.to_string()),
    }
}

/// Checks that hold between keys, on the values a change would leave.
fn check_together(values: &BTreeMap<&'static str, String>) -> Result<(), String> {
    let get = |name: &str| values.get(name).map(String::as_str).unwrap_or_default();
    if get("skip_audit_log_database") == "true" && get("audit_log_forward_endpoint").is_empty() {
        return Err("skip_audit_log_database needs audit_log_forward_endpoint: the records would go nowhere".into());
    }
    Ok(())
}

/// What the configuration file says: starting values, and the keys it pins.
#[derive(Clone, Default)]
pub struct StartingSettings {
    values: BTreeMap<&'static str, String>,
    pinned: BTreeSet<&'static str>,
}

impl StartingSettings {
    /// `name` starts at `value` (a JSON value, or its text as an environment variable gives it).
    pub fn set(&mut self, name: &str, value: &Value) -> Result<(), String> {
        let key = key(name).ok_or_else(|| format!("unknown setting {name:?}"))?;
        self.values.insert(key.name, stored_form(key, value, true)?);
        Ok(())
    }

    /// `name` keeps the file's value (or Harbor's default): the API refuses to change it.
    pub fn pin(&mut self, name: &str) -> Result<(), String> {
        let key = key(name).ok_or_else(|| format!("unknown setting {name:?} in settings.pinned"))?;
        self.pinned.insert(key.name);
        Ok(())
    }

    /// Checks the starting values together, as a change through the API is.
    pub fn check(&self) -> Result<(), String> {
        check_together(&resolve(self, &[]))
    }
}

/// Every key's value from the file's, the stored ones and the defaults.
fn resolve(start: &StartingSettings, stored: &[(String, String)]) -> BTreeMap<&'static str, String> {
    KEYS.iter()
        .map(|k| {
            let from_db = stored.iter().find(|(name, _)| name == k.name).map(|(_, v)| v.clone());
            let value = match (start.pinned.contains(k.name), from_db) {
                (false, Some(v)) if (k.check)(&v).is_ok() => v,
                _ => start.values.get(k.name).cloned().unwrap_or_else(|| k.default.to_string()),
            };
            (k.name, value)
        })
        .collect()
}

/// The settings in effect, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub project_creation_restriction: String,
    pub self_registration: bool,
    pub token_expiration_minutes: u64,
    pub robot_token_duration_days: i64,
    pub robot_name_prefix: String,
    pub audit_log_forward_endpoint: String,
    pub skip_audit_log_database: bool,
    pub disabled_audit_log_event_types: Vec<String>,
    pub pull_audit_log_disable: bool,
    pub storage_per_project: i64,
    pub quota_per_project_enable: bool,
    pub read_only: bool,
    pub banner_message: String,
    values: BTreeMap<&'static str, String>,
}

impl Settings {
    fn from_values(values: BTreeMap<&'static str, String>) -> Settings {
        let s = |name: &str| values.get(name).cloned().unwrap_or_default();
        let b = |name: &str| values.get(name).is_some_and(|v| v == "true");
        let i = |name: &str| values.get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or_default();
        Settings {
            project_creation_restriction: s("project_creation_restriction"),
            self_registration: b("self_registration"),
            token_expiration_minutes: i("token_expiration").max(1) as u64,
            robot_token_duration_days: i("robot_token_duration").max(1),
            robot_name_prefix: s("robot_name_prefix"),
            audit_log_forward_endpoint: s("audit_log_forward_endpoint"),
            skip_audit_log_database: b("skip_audit_log_database"),
            disabled_audit_log_event_types: split_list(&s("disabled_audit_log_event_types"))
                .map(String::from)
                .collect(),
            pull_audit_log_disable: b("pull_audit_log_disable"),
            storage_per_project: i("storage_per_project"),
            quota_per_project_enable: b("quota_per_project_enable"),
            read_only: b("read_only"),
            banner_message: s("banner_message"),
            values,
        }
    }

    /// Whether only system administrators may create projects.
    pub fn admin_only_project_creation(&self) -> bool {
        self.project_creation_restriction == "adminonly"
    }

    /// Each key's value as the API shows it.
    pub fn api_values(&self) -> Vec<(&'static str, Value)> {
        KEYS.iter()
            .map(|k| (k.name, api_form(k.kind, self.values.get(k.name).map_or(k.default, String::as_str))))
            .collect()
    }
}

/// How a forward endpoint becomes a sink: the buffer and CA the configuration file gives.
#[derive(Clone, Default)]
pub struct ForwardOptions {
    pub buffer_lines: usize,
    pub ca_pem: Option<Vec<u8>>,
}

/// The audit settings last pushed to the database, to reuse the sink while its endpoint stays.
#[derive(Default)]
struct AppliedAudit {
    key: Option<(String, bool, Vec<String>, bool)>,
    sink: Option<(String, Arc<dyn AuditSink>)>,
}

struct Inner {
    db: Db,
    start: StartingSettings,
    forward: ForwardOptions,
    current: RwLock<Arc<Settings>>,
    applied: Mutex<AppliedAudit>,
}

/// The system configuration of this process; clones share it.
#[derive(Clone)]
pub struct SystemSettings {
    inner: Arc<Inner>,
}

impl SystemSettings {
    /// Settings from `start` until [`SystemSettings::reload`] reads the database.
    pub fn new(db: Db, start: StartingSettings, forward: ForwardOptions) -> SystemSettings {
        let current = Settings::from_values(resolve(&start, &[]));
        SystemSettings {
            inner: Arc::new(Inner {
                db,
                start,
                forward,
                current: RwLock::new(Arc::new(current)),
                applied: Mutex::new(AppliedAudit::default()),
            }),
        }
    }

    /// The settings in effect now.
    pub fn get(&self) -> Arc<Settings> {
        // Only ever swapped whole: a poisoned lock still holds a whole snapshot.
        self.inner.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// For the job service: refuses jobs that change content while `read_only` is on.
    pub fn read_only_gate(&self) -> berth_jobs::ChangeGate {
        let settings = self.clone();
        Arc::new(move || settings.get().read_only.then(|| READ_ONLY_MESSAGE.to_string()))
    }

    /// Whether the file pins `name`.
    pub fn pinned(&self, name: &str) -> bool {
        self.inner.start.pinned.contains(name)
    }

    /// Reads the stored settings, makes them current and pushes the lower layers' share down.
    pub async fn reload(&self) -> Result<Arc<Settings>, DbError> {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let stored = self.inner.db.settings_named(&names).await?;
        let settings = Arc::new(Settings::from_values(resolve(&self.inner.start, &stored)));
        *self.inner.current.write().unwrap_or_else(|p| p.into_inner()) = settings.clone();
        self.apply(&settings);
        Ok(settings)
    }

    fn apply(&self, s: &Settings) {
        let db = &self.inner.db;
        db.enforce_quotas(s.quota_per_project_enable);
        let mut applied = self.inner.applied.lock().unwrap_or_else(|p| p.into_inner());
        let key = (
            s.audit_log_forward_endpoint.clone(),
            s.skip_audit_log_database,
            s.disabled_audit_log_event_types.clone(),
            s.pull_audit_log_disable,
        );
        if applied.key.as_ref() == Some(&key) {
            return;
        }
        let endpoint = s.audit_log_forward_endpoint.as_str();
        let sink = match &applied.sink {
            Some((at, sink)) if at == endpoint => Some(sink.clone()),
            _ if endpoint.is_empty() => None,
            _ => {
                let options = &self.inner.forward;
                match crate::audit::SyslogAuditSink::start(endpoint, options.buffer_lines, options.ca_pem.clone()) {
                    Ok(sink) => Some(sink as Arc<dyn AuditSink>),
                    Err(e) => {
                        // Checked when set: only a CA file gone bad since can get here.
                        tracing::error!(error = %e, endpoint, "audit records cannot be forwarded");
                        None
                    }
                }
            }
        };
        let mut disabled = s.disabled_audit_log_event_types.clone();
        if s.pull_audit_log_disable {
            disabled.push("pull_artifact".into());
        }
        db.configure_audit(AuditSettings {
            disabled,
            forward: sink.clone(),
            skip_database: s.skip_audit_log_database && sink.is_some(),
        });
        applied.sink = sink.map(|sink| (endpoint.to_string(), sink));
        applied.key = Some(key);
    }

    /// Applies an API change: every key known and of its type, none pinned, the result
    /// consistent; then stored in one transaction (audited as `update_configuration`), made
    /// current here and announced to the other replicas. Nothing changes if any key is refused.
    pub async fn update(&self, caches: &Caches, changes: &serde_json::Map<String, Value>) -> Result<(), SettingsError> {
        let current = self.get();
        let mut values = current.values.clone();
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in changes {
            // Harbor's keys are nullable: null is a key not given (as go-swagger reads it).
            if value.is_null() {
                continue;
            }
            if name == "auth_mode" {
                if value.as_str() == Some(AUTH_MODE) {
                    continue;
                }
                return Err(SettingsError::Invalid(format!(
                    "auth_mode can only be {AUTH_MODE}: Berth authenticates its own users only, for now"
                )));
            }
            let Some(key) = key(name) else {
                let not_yet = NOT_YET.contains(&name.as_str()) || NOT_YET_PREFIXES.iter().any(|p| name.starts_with(p));
                return Err(SettingsError::Invalid(if not_yet {
                    format!("{name} is not supported by Berth yet: refused rather than stored and ignored")
                } else {
                    format!("unknown configuration key {name:?}")
                }));
            };
            if self.pinned(key.name) {
                return Err(SettingsError::Invalid(format!(
                    "{} is pinned by the configuration file (settings.pinned) and cannot be changed through the API",
                    key.name
                )));
            }
            let stored = stored_form(key, value, false).map_err(SettingsError::Invalid)?;
            values.insert(key.name, stored.clone());
            pairs.push((key.name, stored));
        }
        check_together(&values).map_err(SettingsError::Invalid)?;
        if pairs.is_empty() {
            return Ok(());
        }
        self.inner.db.update_settings(&pairs).await?;
        caches.changed(Change::Settings).await;
        self.reload().await?;
        Ok(())
    }

    /// Keeps the settings current for as long as the process lives: reloads when a change is
    /// heard of, and at least every [`Caches::max_age`].
    pub async fn follow(self, caches: Caches) {
        let mut changes = caches.settings_changes();
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(caches.max_age()) => {}
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "system configuration not reloaded; trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_taken_by_type_and_rule() {
        let k = key("token_expiration").unwrap();
        assert_eq!(stored_form(k, &Value::from(45), false).unwrap(), "45");
        assert!(stored_form(k, &Value::from(0), false).is_err());
        assert!(stored_form(k, &Value::from("45"), false).is_err());
        assert_eq!(stored_form(k, &Value::from("45"), true).unwrap(), "45");
        let k = key("read_only").unwrap();
        assert!(stored_form(k, &Value::from(1), false).is_err());
        let k = key("project_creation_restriction").unwrap();
        assert!(stored_form(k, &Value::from("nobody"), false).is_err());
        let k = key("robot_name_prefix").unwrap();
        assert!(stored_form(k, &Value::from("bot@"), false).is_err());
        assert_eq!(stored_form(k, &Value::from("bot$"), false).unwrap(), "bot$");
        let k = key("disabled_audit_log_event_types").unwrap();
        assert!(stored_form(k, &Value::from("create_artifact, pull_artifact"), false).is_ok());
        assert!(stored_form(k, &Value::from("create_artifact,eat_lunch"), false).is_err());
        let k = key("storage_per_project").unwrap();
        assert!(stored_form(k, &Value::from(-1), false).is_ok());
        assert!(stored_form(k, &Value::from(0), false).is_err());
    }

    #[test]
    fn a_pinned_key_keeps_the_files_value_over_the_stored_one() {
        let mut start = StartingSettings::default();
        start.set("self_registration", &Value::from(true)).unwrap();
        start.set("read_only", &Value::from("true")).unwrap();
        start.pin("read_only").unwrap();
        let stored = vec![("read_only".to_string(), "false".to_string()), ("token_expiration".into(), "5".into())];
        let s = Settings::from_values(resolve(&start, &stored));
        assert!(s.read_only, "pinned");
        assert!(s.self_registration, "the file's starting value");
        assert_eq!(s.token_expiration_minutes, 5, "stored wins over the default");
        assert_eq!(s.robot_name_prefix, "robot$", "Harbor's default");
    }

    #[test]
    fn skipping_the_database_needs_an_endpoint() {
        let mut start = StartingSettings::default();
        start.set("skip_audit_log_database", &Value::from(true)).unwrap();
        assert!(start.check().is_err());
        start.set("audit_log_forward_endpoint", &Value::from("127.0.0.1:514")).unwrap();
        assert!(start.check().is_ok());
    }
}
