//! Robot accounts: system robots (`robot$<name>`) and project robots
//! (`robot$<project>+<name>`; `robot$` is the `robot_name_prefix` setting when the robot was
//! made), with Harbor's permission model, expiry, disabling and secret refresh. A secret is shown once, when made, and stored only as a hash.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_auth::rbac::{self, Permission, Policy, ProjectContext, Role, Subject};
use berth_auth::{password, secret};
use berth_db::{Db, DbError, NewRobot, RobotPermissionRow, RobotRow};

/// What every robot's name holds and no user's may (`robot_name_prefix` must hold it too).
pub const ROBOT_MARK: char = '$';

/// Whether `name` names a robot rather than a user.
pub fn is_robot_name(name: &str) -> bool {
    name.contains(ROBOT_MARK)
}

#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DbError> for RobotError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => RobotError::Conflict(format!("{what} already exists")),
            other => RobotError::Internal(other.to_string()),
        }
    }
}

/// One `RobotPermission` of the API: a kind, a namespace, and accesses in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionReq {
    pub kind: String,
    pub namespace: String,
    pub access: Vec<(String, String)>,
}

/// The name a robot was created with: its full name without the prefix (up to its last `$`:
/// neither robot nor project names hold one) and the project.
fn short_name(full: &str) -> &str {
    let rest = full.rsplit_once(ROBOT_MARK).map_or(full, |(_, rest)| rest);
    rest.rsplit_once('+').map_or(rest, |(_, short)| short)
}

#[derive(Clone)]
pub struct RobotReq {
    pub name: String,
    pub description: String,
    pub level: String,
    pub disable: bool,
    /// Days; -1 never expires; 0 or absent: the default.
    pub duration: Option<i64>,
    pub secret: Option<String>,
    pub permissions: Vec<PermissionReq>,
}

/// A robot as the API shows it (never its secret).
#[derive(Clone, Debug)]
pub struct RobotView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub level: String,
    pub disable: bool,
    pub duration: i64,
    pub expires_at: i64,
    pub editable: bool,
    pub creator_type: String,
    pub creator_ref: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub permissions: Vec<PermissionReq>,
}

/// What creating a robot returns, the only time its secret is shown.
pub struct RobotCreated {
    pub id: i64,
    pub name: String,
    pub secret: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn grouped(rows: &[RobotPermissionRow]) -> Vec<PermissionReq> {
    let mut out: Vec<PermissionReq> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|p| p.kind == r.kind && p.namespace == r.namespace) {
            Some(p) => p.access.push((r.resource.clone(), r.action.clone())),
            None => out.push(PermissionReq {
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                access: vec![(r.resource.clone(), r.action.clone())],
            }),
        }
    }
    out
}

fn view(r: RobotRow) -> RobotView {
    RobotView {
        id: r.id,
        permissions: grouped(&r.permissions),
        name: r.name,
        description: r.description,
        level: r.level,
        disable: r.disabled,
        duration: r.duration,
        expires_at: r.expires_at,
        editable: true,
        creator_type: r.creator_type,
        creator_ref: r.creator_ref,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The permissions a robot row grants, for the access decision.
pub fn subject_permissions(rows: &[RobotPermissionRow]) -> Vec<Permission> {
    rows.iter()
        .filter_map(|p| {
            Some(Permission {
                // System permissions live in the namespace "/".
                namespace: if p.kind == "system" { "/".into() } else { p.namespace.clone() },
                resource: p.resource.parse().ok()?,
                action: p.action.parse().ok()?,
            })
        })
        .collect()
}

/// Whether a robot may be used now.
/// A robot row as the access decision sees it.
pub fn subject(r: &RobotRow) -> Subject {
    Subject::Robot { id: r.id, name: r.name.clone(), permissions: subject_permissions(&r.permissions) }
}

pub fn usable(r: &RobotRow) -> bool {
    !r.disabled && (r.expires_at < 0 || r.expires_at > now_secs())
}

/// `duration` days from `from_secs`; none or 0: `default_days` (`robot_token_duration`).
fn expiry(duration: Option<i64>, default_days: i64, from_secs: i64) -> Result<(i64, i64), RobotError> {
    match duration.unwrap_or(0) {
        -1 => Ok((-1, -1)),
        0 => Ok((default_days, from_secs + default_days * 86_400)),
        d if d > 0 => Ok((d, from_secs.saturating_add(d.saturating_mul(86_400)))),
        d => Err(RobotError::Invalid(format!("duration must be -1 or a positive number of days, not {d}"))),
    }
}

#[derive(Clone)]
pub struct Robots {
    db: Db,
    /// Told of every change, so that tokens and answers resting on a robot end with it.
    caches: crate::cache::Caches,
    /// Robots' name prefix and default duration.
    settings: crate::settings::SystemSettings,
}

impl Robots {
    /// The robots of `registry`'s database, sharing its caches and settings.
    pub fn new(registry: &crate::Registry) -> Robots {
        Robots { db: registry.db().clone(), caches: registry.caches().clone(), settings: registry.settings().clone() }
    }

    async fn changed(&self) {
        self.caches.changed(crate::cache::Change::All).await;
    }

    /// May `subject` perform `action` on robots of this level / project?
    async fn check(&self, subject: &Subject, project_id: Option<i64>, action: rbac::Action) -> Result<(), RobotError> {
        if subject.is_anonymous() {
            return Err(RobotError::Unauthorized);
        }
        let allowed = match project_id {
            None => Policy::allows_system(subject, rbac::Resource::Robot, action),
            Some(pid) => {
                let project =
                    self.db.project_by_id(pid).await?.ok_or_else(|| RobotError::NotFound(format!("project {pid}")))?;
                let public = self.db.project_metadata(pid).await?.iter().any(|(k, v)| k == "public" && v == "true");
                let role = match subject {
                    Subject::User { id, .. } => self.db.member_role(pid, *id).await?.and_then(Role::from_id),
                    _ => None,
                };
                Policy::allows(
                    subject,
                    &ProjectContext { name: &project.name, public, role },
                    rbac::Resource::Robot,
                    action,
                )
            }
        };
        if allowed { Ok(()) } else { Err(RobotError::Forbidden(format!("robot:{action} is not allowed"))) }
    }

    /// Checks the permissions asked for, and resolves the project of a project robot.
    async fn validate(&self, req: &RobotReq) -> Result<(Option<i64>, String, Vec<RobotPermissionRow>), RobotError> {
        crate::projects::validate_name(&req.name).map_err(|_| {
            RobotError::Invalid(format!(
                "robot name {:?} is invalid: use lowercase letters and digits, separated by single '.', '_' or '-'",
                req.name
            ))
        })?;
        if req.permissions.is_empty() {
            return Err(RobotError::Invalid("a robot needs at least one permission".into()));
        }
        let mut rows = Vec::new();
        for p in &req.permissions {
            if p.kind != "system" && p.kind != "project" {
                return Err(RobotError::Invalid(format!(
                    "permission kind must be system or project, not {:?}",
                    p.kind
                )));
            }
            if p.access.is_empty() {
                return Err(RobotError::Invalid(format!("permission on {} has no access", p.namespace)));
            }
            for (resource, action) in &p.access {
                resource.parse::<rbac::Resource>().map_err(|e| RobotError::Invalid(format!("resource: {e}")))?;
                action.parse::<rbac::Action>().map_err(|e| RobotError::Invalid(format!("action: {e}")))?;
                rows.push(RobotPermissionRow {
                    kind: p.kind.clone(),
                    namespace: p.namespace.clone(),
                    resource: resource.clone(),
                    action: action.clone(),
                });
            }
            if p.kind == "project" && p.namespace != "*" && self.db.project_by_name(&p.namespace).await?.is_none() {
                return Err(RobotError::NotFound(format!("project {}", p.namespace)));
            }
        }
        match req.level.as_str() {
            "system" => Ok((None, req.name.clone(), rows)),
            "project" => {
                let [p] = req.permissions.as_slice() else {
                    return Err(RobotError::Invalid(
                        "a project robot has exactly one permission, on its project".into(),
                    ));
                };
                if p.kind != "project" || p.namespace == "*" {
                    return Err(RobotError::Invalid("a project robot's permission names its project".into()));
                }
                let project = self
                    .db
                    .project_by_name(&p.namespace)
                    .await?
                    .ok_or_else(|| RobotError::NotFound(format!("project {}", p.namespace)))?;
                Ok((Some(project.id), format!("{}+{}", project.name, req.name), rows))
            }
            other => Err(RobotError::Invalid(format!("level must be system or project, not {other:?}"))),
        }
    }

    pub async fn create(&self, subject: &Subject, req: &RobotReq) -> Result<RobotCreated, RobotError> {
        let (project_id, unprefixed, rows) = self.validate(req).await?;
        self.check(subject, project_id, rbac::Action::Create).await?;
        let settings = self.settings.get();
        let full_name = format!("{}{unprefixed}", settings.robot_name_prefix);
        let secret = match &req.secret {
            Some(s) => {
                password::check_policy(s).map_err(|e| RobotError::Invalid(format!("secret: {e}")))?;
                s.clone()
            }
            None => secret::random_alphanumeric(32).map_err(|e| RobotError::Internal(e.to_string()))?,
        };
        let secret_hash = secret::hash_machine_secret(&secret).map_err(|e| RobotError::Internal(e.to_string()))?;
        let now = now_secs();
        let (duration, expires_at) = expiry(req.duration, settings.robot_token_duration_days, now)?;
        let (creator_type, creator_ref) = match subject {
            Subject::User { id, .. } => ("local", id.to_string()),
            Subject::Robot { id, .. } => ("robot", id.to_string()),
            Subject::Anonymous => return Err(RobotError::Unauthorized),
        };
        let id = self
            .db
            .create_robot(&NewRobot {
                name: &full_name,
                description: &req.description,
                level: &req.level,
                project_id,
                secret_hash: &secret_hash,
                disabled: req.disable,
                duration,
                expires_at,
                creator_type,
                creator_ref: &creator_ref,
                permissions: &rows,
            })
            .await?;
        Ok(RobotCreated { id, name: full_name, secret, created_at: now * 1000, expires_at })
    }

    async fn row(&self, id: i64) -> Result<RobotRow, RobotError> {
        self.db.robot_by_id(id).await?.ok_or_else(|| RobotError::NotFound(format!("robot {id}")))
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> Result<RobotView, RobotError> {
        let r = self.row(id).await?;
        self.check(subject, r.project_id, rbac::Action::Read).await?;
        Ok(view(r))
    }

    /// Robots of one level (`project_id` for project robots), one page, with the total.
    pub async fn list(
        &self,
        subject: &Subject,
        project_id: Option<i64>,
        page: i64,
        size: i64,
    ) -> Result<(Vec<RobotView>, i64), RobotError> {
        self.check(subject, project_id, rbac::Action::List).await?;
        let level = if project_id.is_some() { "project" } else { "system" };
        let (rows, total) = self.db.list_robots(level, project_id, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(view).collect(), total))
    }

    /// Replaces description, disabled state, duration and permissions; name and level stay.
    pub async fn update(&self, subject: &Subject, id: i64, req: &RobotReq) -> Result<(), RobotError> {
        let current = self.row(id).await?;
        self.check(subject, current.project_id, rbac::Action::Update).await?;
        if req.level != current.level {
            return Err(RobotError::Invalid("a robot's level cannot change".into()));
        }
        // The body `GET` answered names the robot by its full name (`robot$p+ci`); the short
        // name a creation takes is accepted too.
        let short;
        let req = if req.name == current.name {
            short = RobotReq { name: short_name(&current.name).to_string(), ..req.clone() };
            &short
        } else {
            req
        };
        let (project_id, unprefixed, rows) = self.validate(req).await?;
        // The prefix is the one it was made with, whatever `robot_name_prefix` is now.
        let current_unprefixed = current.name.rsplit_once(ROBOT_MARK).map_or(current.name.as_str(), |(_, r)| r);
        if unprefixed != current_unprefixed || project_id != current.project_id {
            return Err(RobotError::Invalid("a robot's name and project cannot change".into()));
        }
        let (duration, expires_at) = match req.duration {
            Some(d) if d != current.duration => {
                expiry(Some(d), self.settings.get().robot_token_duration_days, current.created_at / 1000)?
            }
            _ => (current.duration, current.expires_at),
        };
        let updated = self.db.update_robot(id, &req.description, req.disable, duration, expires_at, &rows).await;
        self.changed().await;
        updated?;
        Ok(())
    }

    /// Sets a new secret (the given one, checked against the policy, or a random one), returned
    /// once.
    pub async fn refresh_secret(&self, subject: &Subject, id: i64, given: Option<&str>) -> Result<String, RobotError> {
        let current = self.row(id).await?;
        self.check(subject, current.project_id, rbac::Action::Update).await?;
        let secret = match given.filter(|s| !s.is_empty()) {
            Some(s) => {
                password::check_policy(s).map_err(|e| RobotError::Invalid(format!("secret: {e}")))?;
                s.to_string()
            }
            None => secret::random_alphanumeric(32).map_err(|e| RobotError::Internal(e.to_string()))?,
        };
        let hash = secret::hash_machine_secret(&secret).map_err(|e| RobotError::Internal(e.to_string()))?;
        let set = self.db.set_robot_secret(id, &hash).await;
        self.changed().await;
        set?;
        Ok(secret)
    }

    pub async fn delete(&self, subject: &Subject, id: i64) -> Result<(), RobotError> {
        let current = self.row(id).await?;
        self.check(subject, current.project_id, rbac::Action::Delete).await?;
        let deleted = self.db.delete_robot(id).await;
        self.changed().await;
        deleted?;
        Ok(())
    }

    /// The project id of a project name (for `q=Level=project,ProjectID=…` and friends).
    pub async fn project_id(&self, name: &str) -> Result<Option<i64>, RobotError> {
        Ok(self.db.project_by_name(name).await?.map(|p| p.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rules() {
        assert_eq!(expiry(Some(-1), 30, 100).unwrap(), (-1, -1));
        assert_eq!(expiry(None, 30, 0).unwrap(), (30, 30 * 86_400));
        assert_eq!(expiry(None, 7, 0).unwrap(), (7, 7 * 86_400));
        assert_eq!(expiry(Some(2), 30, 10).unwrap(), (2, 10 + 2 * 86_400));
        assert!(expiry(Some(-5), 30, 0).is_err());
    }

    #[test]
    fn permissions_for_the_policy() {
        let rows = vec![
            RobotPermissionRow {
                kind: "project".into(),
                namespace: "p".into(),
                resource: "repository".into(),
                action: "pull".into(),
            },
            RobotPermissionRow {
                kind: "system".into(),
                namespace: "/".into(),
                resource: "user".into(),
                action: "list".into(),
            },
            RobotPermissionRow {
                kind: "project".into(),
                namespace: "p".into(),
                resource: "nonsense".into(),
                action: "pull".into(),
            },
        ];
        let perms = subject_permissions(&rows);
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[1].namespace, "/");
        let grouped = grouped(&rows);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].access.len(), 2);
    }
}
