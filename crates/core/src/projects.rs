//! Projects: creation (with Harbor's name rule and creation restriction), lookup, listing as
//! each caller may see them, metadata updates and deletion, each decided by the one policy.

use std::collections::BTreeMap;

use berth_auth::rbac::{self, Policy, Role, Subject};
use berth_db::{Db, DbError, ListQuery, Match, ProjectRow};

use crate::access::{AccessLookup, ProjectAccess};
use crate::cache::{Caches, Change};
use crate::content::Content;

pub use crate::artifacts::{ArtifactView, ReferenceView, RepositoryView, TagView};

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
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
    #[error("project {0} still has repositories; delete them first")]
    NotEmpty(String),
    /// Refused by a content policy or a rule of the content model, as `Refusal` says.
    #[error("{1}")]
    Policy(crate::Refusal, String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DbError> for ProjectError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => ProjectError::Conflict(format!("{what} already exists")),
            DbError::InvalidQuery(why) => ProjectError::Invalid(why),
            DbError::QuotaExceeded(message) => ProjectError::Policy(crate::Refusal::Forbidden, message),
            other => ProjectError::Internal(other.to_string()),
        }
    }
}

/// Harbor's project metadata keys, with the values each accepts (`None`: any string).
const METADATA_KEYS: &[(&str, Option<&[&str]>)] = &[
    ("public", Some(&["true", "false"])),
    ("enable_content_trust", Some(&["true", "false"])),
    ("enable_content_trust_cosign", Some(&["true", "false"])),
    ("prevent_vul", Some(&["true", "false"])),
    ("severity", Some(&["none", "low", "medium", "high", "critical"])),
    ("auto_scan", Some(&["true", "false"])),
    ("auto_sbom_generation", Some(&["true", "false"])),
    ("reuse_sys_cve_allowlist", Some(&["true", "false"])),
    ("retention_id", None),
    ("proxy_speed_kb", None),
    ("max_upstream_conn", None),
    ("proxy_cache_filter_pattern", None),
    ("proxy_cache_filter_kind", Some(&["doublestar", "regex"])),
    ("proxy_referrer_api", Some(&["true", "false"])),
    ("proxy_cache_local_on_not_found", Some(&["true", "false"])),
];

/// Checks metadata keys and values against Harbor's list.
pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ProjectError> {
    for (key, value) in metadata {
        let Some((_, allowed)) = METADATA_KEYS.iter().find(|(k, _)| k == key) else {
            return Err(ProjectError::Invalid(format!("unknown project metadata key {key:?}")));
        };
        if let Some(allowed) = allowed
            && !allowed.contains(&value.as_str())
        {
            return Err(ProjectError::Invalid(format!("metadata {key} must be one of {}", allowed.join(", "))));
        }
        if let Some((_, why)) = NOT_YET.iter().find(|(k, _)| k == key).filter(|_| value == "true") {
            return Err(ProjectError::Invalid(format!("metadata {key} cannot be true: {why}")));
        }
        if PROXY_CACHE_ONLY.contains(&key.as_str()) {
            return Err(ProjectError::Invalid(format!(
                "metadata {key} belongs to proxy cache projects, which Berth does not have yet"
            )));
        }
    }
    Ok(())
}

/// Keys only a proxy cache project uses: refused while there are none, rather than stored and
/// ignored.
const PROXY_CACHE_ONLY: &[&str] = &[
    "proxy_speed_kb",
    "max_upstream_conn",
    "proxy_cache_filter_pattern",
    "proxy_cache_filter_kind",
    "proxy_referrer_api",
    "proxy_cache_local_on_not_found",
];

/// Keys whose feature does not exist yet: refused when turned on, rather than stored and ignored.
const NOT_YET: &[(&str, &str)] = &[("auto_sbom_generation", "Berth does not generate SBOMs yet")];

/// Harbor's project name rule: lowercase letters and digits, separated by single `.`, `_` or
/// `-`, at most 255 characters.
pub fn validate_name(name: &str) -> Result<(), ProjectError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(ProjectError::Invalid(format!(
            "project name {name:?} is invalid: use lowercase letters and digits, separated by single '.', '_' or '-'"
        )))
    }
}

/// A project as the API shows it.
#[derive(Clone, Debug)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub metadata: BTreeMap<String, String>,
    pub repo_count: i64,
    /// The caller's role in the project, if a member.
    pub role: Option<Role>,
    /// The project's own CVE allowlist (in force unless it reuses the system's).
    pub cve_allowlist: crate::allowlists::CveAllowlist,
}

impl ProjectView {
    pub fn public(&self) -> bool {
        self.metadata.get("public").is_some_and(|v| v == "true")
    }
}

/// How a project is named in a request: Harbor's `{project_name_or_id}`.
pub enum ProjectRef<'a> {
    Name(&'a str),
    Id(i64),
}

#[derive(Clone)]
pub struct Projects {
    pub(crate) db: Db,
    /// Told of every write here that a cached answer may depend on.
    pub(crate) caches: Caches,
    /// What a caller may do in a project, from those caches.
    pub(crate) access: AccessLookup,
    /// Where every change to a repository's content goes.
    pub(crate) content: Content,
    /// Who may create projects, and their default quota.
    pub(crate) settings: crate::settings::SystemSettings,
}

pub(crate) fn user_id(subject: &Subject) -> Option<i64> {
    match subject {
        Subject::User { id, .. } => Some(*id),
        _ => None,
    }
}

impl Projects {
    /// The projects of `registry`'s database, sharing its caches and its content door.
    pub fn new(registry: &crate::Registry) -> Projects {
        let db = registry.db().clone();
        let caches = registry.caches().clone();
        Projects {
            access: AccessLookup::new(db.clone(), Some(caches.clone())),
            content: registry.content().clone(),
            settings: registry.settings().clone(),
            db,
            caches,
        }
    }

    async fn view(&self, row: ProjectRow, subject: &Subject) -> Result<ProjectView, ProjectError> {
        let name = row.name.clone();
        self.views(vec![row], subject).await?.pop().ok_or(ProjectError::NotFound(name))
    }

    /// Views of a page of projects in five queries, whatever the page's size.
    async fn views(&self, rows: Vec<ProjectRow>, subject: &Subject) -> Result<Vec<ProjectView>, ProjectError> {
        use std::collections::HashMap;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut metadata: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for (id, key, value) in self.db.projects_metadata(&ids).await? {
            metadata.entry(id).or_default().insert(key, value);
        }
        let mut owners: HashMap<i64, String> = self.db.project_owner_names(&ids).await?.into_iter().collect();
        let counts: HashMap<i64, i64> = self.db.project_repository_counts(&ids).await?.into_iter().collect();
        let mut allowlists = self.project_cve_allowlists(&ids).await?;
        let roles: HashMap<i64, i64> = match user_id(subject) {
            Some(uid) => self.db.user_roles(uid).await?.into_iter().collect(),
            None => HashMap::new(),
        };
        Ok(rows
            .into_iter()
            .map(|row| ProjectView {
                id: row.id,
                owner_name: owners.remove(&row.id).unwrap_or_default(),
                metadata: metadata.remove(&row.id).unwrap_or_default(),
                repo_count: counts.get(&row.id).copied().unwrap_or(0),
                role: roles.get(&row.id).copied().and_then(Role::from_id),
                cve_allowlist: allowlists
                    .remove(&row.id)
                    .unwrap_or_else(|| crate::allowlists::CveAllowlist { project_id: row.id, ..Default::default() }),
                name: row.name,
                owner_id: row.owner_id,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
    }

    /// Creates a project owned by the caller, who becomes its project admin.
    /// Creates a project owned by the caller. `storage_limit` (bytes, -1 for none) is Harbor's:
    /// only system administrators may set it; without it the quota is unlimited.
    pub async fn create(
        &self,
        subject: &Subject,
        name: &str,
        mut metadata: BTreeMap<String, String>,
        storage_limit: Option<i64>,
        cve_allowlist: Option<&crate::allowlists::AllowlistInput>,
    ) -> Result<i64, ProjectError> {
        let Some(owner) = user_id(subject) else {
            return Err(match subject {
                Subject::Anonymous => ProjectError::Unauthorized,
                _ => ProjectError::Forbidden("only users can create projects".into()),
            });
        };
        let settings = self.settings.get();
        if settings.admin_only_project_creation() && !subject.is_sysadmin() {
            return Err(ProjectError::Forbidden("only system administrators may create projects".into()));
        }
        validate_name(name)?;
        validate_metadata(&metadata)?;
        if let Some(limit) = storage_limit {
            if !Policy::allows_system(subject, rbac::Resource::Quota, rbac::Action::Update) {
                return Err(ProjectError::Forbidden("only system administrators may set storage_limit".into()));
            }
            crate::quotas::validate_storage(limit)?;
        }
        metadata.entry("public".into()).or_insert_with(|| "false".into());
        let entries: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Harbor's default quota (`storage_per_project`) for a project made without a limit.
        let limit = storage_limit.unwrap_or(settings.storage_per_project);
        let items = cve_allowlist.map(|l| l.items_json());
        let allowlist = cve_allowlist.zip(items.as_deref()).map(|(l, items)| (l.expires_at(), items));
        let created = self.db.create_project_with_quota(name, owner, &entries, limit, allowlist).await;
        self.caches.changed(Change::Project(name.to_string())).await;
        Ok(created?)
    }

    /// Whether a project of that name exists (Harbor's `HEAD /projects`).
    pub async fn exists(&self, name: &str) -> Result<bool, ProjectError> {
        Ok(self.db.project_by_name(name).await?.is_some())
    }

    async fn row(&self, project: &ProjectRef<'_>) -> Result<ProjectRow, ProjectError> {
        let (row, label) = match project {
            ProjectRef::Name(n) => (self.db.project_by_name(n).await?, n.to_string()),
            ProjectRef::Id(id) => (self.db.project_by_id(*id).await?, id.to_string()),
        };
        row.ok_or(ProjectError::NotFound(format!("project {label}")))
    }

    /// A project in which the caller may do `action` on `resource` (decided from the cached
    /// project access, as on `/v2`).
    pub async fn authorized(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        resource: rbac::Resource,
        action: rbac::Action,
    ) -> Result<ProjectAccess, ProjectError> {
        let found = match project {
            ProjectRef::Name(n) => self.access.project(subject, n).await?,
            ProjectRef::Id(id) => self.access.project_by_id(subject, *id).await?,
        };
        let access = found.ok_or_else(|| {
            ProjectError::NotFound(match project {
                ProjectRef::Name(n) => format!("project {n}"),
                ProjectRef::Id(id) => format!("project {id}"),
            })
        })?;
        if !access.visible_to(subject) {
            // Do not reveal more than existence (which HEAD tells anyone) to outsiders.
            return Err(if subject.is_anonymous() {
                ProjectError::Unauthorized
            } else {
                ProjectError::Forbidden(format!("no access to project {}", access.name))
            });
        }
        if !access.allows(subject, resource, action) {
            // As Harbor: signing in might help an anonymous caller (401); nothing helps a
            // signed-in one (403).
            if subject.is_anonymous() {
                return Err(ProjectError::Unauthorized);
            }
            return Err(ProjectError::Forbidden(format!(
                "{resource}:{action} on project {} is not allowed",
                access.name
            )));
        }
        Ok(access)
    }

    /// As [`Projects::authorized`], with the whole project as the API shows it.
    async fn authorized_view(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        resource: rbac::Resource,
        action: rbac::Action,
    ) -> Result<ProjectView, ProjectError> {
        let access = self.authorized(subject, project, resource, action).await?;
        self.view(self.row(&ProjectRef::Id(access.id)).await?, subject).await
    }

    pub async fn get(&self, subject: &Subject, project: &ProjectRef<'_>) -> Result<ProjectView, ProjectError> {
        self.authorized_view(subject, project, rbac::Resource::Project, rbac::Action::Read).await
    }

    /// Projects the caller can see, filtered, one page, with the total.
    pub async fn list(
        &self,
        subject: &Subject,
        name: &str,
        public: Option<bool>,
        query: &ListQuery,
        page: i64,
        page_size: i64,
    ) -> Result<(Vec<ProjectView>, i64), ProjectError> {
        let visible_to = if subject.is_sysadmin() { None } else { Some(user_id(subject).unwrap_or(0)) };
        let (rows, total) =
            self.db.list_projects(visible_to, name, public, query, page_size, (page - 1) * page_size).await?;
        Ok((self.views(rows, subject).await?, total))
    }

    /// Sets metadata keys (Harbor's `PUT /projects/{p}`), with project update permission.
    pub async fn update_metadata(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Update).await?;
        validate_metadata(metadata)?;
        let entries: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let set = self.db.set_project_metadata(view.id, &entries).await;
        self.caches.changed(Change::Project(view.name)).await;
        Ok(set?)
    }

    /// Deletes an empty project, with project delete permission.
    pub async fn delete(&self, subject: &Subject, project: &ProjectRef<'_>) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Delete).await?;
        let deleted = self.db.delete_empty_project(view.id).await;
        self.caches.changed(Change::Project(view.name.clone())).await;
        if deleted? { Ok(()) } else { Err(ProjectError::NotEmpty(view.name)) }
    }
}

impl Projects {
    /// The project's metadata, or one key of it (needs metadata:read).
    pub async fn metadata(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        key: Option<&str>,
    ) -> Result<BTreeMap<String, String>, ProjectError> {
        let view = self.authorized_view(subject, project, rbac::Resource::Metadata, rbac::Action::Read).await?;
        match key {
            None => Ok(view.metadata),
            Some(k) => match view.metadata.get(k) {
                Some(v) => Ok(BTreeMap::from([(k.to_string(), v.clone())])),
                None => Err(ProjectError::NotFound(format!("metadata {k} of project {}", view.name))),
            },
        }
    }

    /// Adds keys that are not set yet (needs metadata:create); a key already set is a conflict.
    pub async fn add_metadata(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), ProjectError> {
        let view = self.authorized_view(subject, project, rbac::Resource::Metadata, rbac::Action::Create).await?;
        validate_metadata(entries)?;
        if let Some(k) = entries.keys().find(|k| view.metadata.contains_key(*k)) {
            return Err(ProjectError::Conflict(format!("metadata {k} is already set on {}", view.name)));
        }
        let pairs: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let set = self.db.set_project_metadata(view.id, &pairs).await;
        self.caches.changed(Change::Project(view.name)).await;
        Ok(set?)
    }

    /// Changes one key that is set (needs metadata:update); `entries` must name only that key.
    pub async fn update_metadata_key(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        key: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), ProjectError> {
        let view = self.authorized_view(subject, project, rbac::Resource::Metadata, rbac::Action::Update).await?;
        let Some(value) = entries.get(key).filter(|_| entries.len() == 1) else {
            return Err(ProjectError::Invalid(format!("the body must set exactly the key {key}")));
        };
        if !view.metadata.contains_key(key) {
            return Err(ProjectError::NotFound(format!("metadata {key} of project {}", view.name)));
        }
        validate_metadata(entries)?;
        let set = self.db.set_project_metadata(view.id, &[(key, value.as_str())]).await;
        self.caches.changed(Change::Project(view.name)).await;
        Ok(set?)
    }

    /// Removes one key (needs metadata:delete).
    pub async fn delete_metadata_key(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        key: &str,
    ) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Metadata, rbac::Action::Delete).await?;
        let deleted = self.db.delete_project_metadata(view.id, key).await;
        self.caches.changed(Change::Project(view.name.clone())).await;
        if deleted? { Ok(()) } else { Err(ProjectError::NotFound(format!("metadata {key} of project {}", view.name))) }
    }

    /// What the caller may do in a project, as (resource, action) pairs.
    pub async fn permissions(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
    ) -> Result<Vec<(String, String)>, ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Read).await?;
        Ok(rbac::project_permissions(subject, &view.context())
            .into_iter()
            .map(|(r, a)| (r.as_str().to_string(), a.as_str().to_string()))
            .collect())
    }
}

/// Harbor's `/statistics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistics {
    pub public_projects: i64,
    pub private_projects: i64,
    pub public_repositories: i64,
    pub private_repositories: i64,
    /// Only for administrators.
    pub storage_bytes: Option<i64>,
}

impl Projects {
    /// Counts of what the caller can see.
    pub async fn statistics(&self, subject: &Subject) -> Result<Statistics, ProjectError> {
        if subject.is_anonymous() {
            return Err(ProjectError::Unauthorized);
        }
        let visible = if subject.is_sysadmin() { None } else { Some(user_id(subject).unwrap_or(0)) };
        let (_, public_projects) = self.db.list_projects(visible, "", Some(true), &ListQuery::default(), 0, 0).await?;
        let (_, private_projects) =
            self.db.list_projects(visible, "", Some(false), &ListQuery::default(), 0, 0).await?;
        let (public_repositories, private_repositories) = self.db.repository_counts(visible).await?;
        let storage_bytes = if subject.is_sysadmin() { Some(self.db.storage_consumption().await?) } else { None };
        Ok(Statistics { public_projects, private_projects, public_repositories, private_repositories, storage_bytes })
    }

    /// Projects and repositories whose name contains `term`, among those the caller can see.
    pub async fn search(
        &self,
        subject: &Subject,
        term: &str,
    ) -> Result<(Vec<ProjectView>, Vec<(RepositoryView, String, bool)>), ProjectError> {
        let (projects, _) = self.list(subject, term, None, &ListQuery::default(), 1, 100).await?;
        let by_name = ListQuery { terms: vec![("name".to_string(), Match::Fuzzy(term.to_string()))], sort: Vec::new() };
        let (repos, _) = self.repositories(subject, None, &by_name, 1, 100).await?;
        let mut out = Vec::with_capacity(repos.len());
        for r in repos {
            let project = self.db.project_by_id(r.project_id).await?;
            let public =
                self.db.project_metadata(r.project_id).await?.iter().any(|(k, v)| k == "public" && v == "true");
            out.push((r, project.map(|p| p.name).unwrap_or_default(), public));
        }
        Ok((projects, out))
    }
}

/// Harbor's project summary: repositories and members per role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSummary {
    pub repo_count: i64,
    /// Member counts indexed by role id 1 to 5.
    pub members_by_role: [i64; 5],
}

impl Projects {
    pub async fn summary(&self, subject: &Subject, project: &ProjectRef<'_>) -> Result<ProjectSummary, ProjectError> {
        let view = self.authorized_view(subject, project, rbac::Resource::Project, rbac::Action::Read).await?;
        let (members, _) = self.db.list_members(view.id, "", i64::MAX, 0).await?;
        let mut members_by_role = [0; 5];
        for m in members {
            if let Some(slot) = usize::try_from(m.role - 1).ok().and_then(|i| members_by_role.get_mut(i)) {
                *slot += 1;
            }
        }
        Ok(ProjectSummary { repo_count: view.repo_count, members_by_role })
    }

    /// Whether the caller could delete the project now, and why not (needs project:delete).
    pub async fn deletable(&self, subject: &Subject, project: &ProjectRef<'_>) -> Result<(bool, String), ProjectError> {
        let view = self.authorized_view(subject, project, rbac::Resource::Project, rbac::Action::Delete).await?;
        if view.repo_count > 0 {
            Ok((false, format!("the project contains {} repositories", view.repo_count)))
        } else {
            Ok((true, String::new()))
        }
    }
}

/// A member as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub id: i64,
    pub project_id: i64,
    pub entity_type: String,
    pub entity_id: i64,
    pub entity_name: String,
    pub role: Role,
}

fn member_view(m: berth_db::MemberRow) -> Result<MemberView, ProjectError> {
    let role =
        Role::from_id(m.role).ok_or_else(|| ProjectError::Internal(format!("member {} has role {}", m.id, m.role)))?;
    Ok(MemberView {
        id: m.id,
        project_id: m.project_id,
        entity_type: m.entity_type,
        entity_id: m.entity_id,
        entity_name: m.entity_name,
        role,
    })
}

fn role_of(role_id: i64) -> Result<Role, ProjectError> {
    Role::from_id(role_id).ok_or_else(|| ProjectError::Invalid(format!("role_id must be 1 to 5, not {role_id}")))
}

impl Projects {
    /// Audit records the subject may see, newest first unless `query` sorts otherwise: all of
    /// them for a system administrator (or a robot with audit-log:list), else those of the
    /// projects the subject administers, as Harbor shows them.
    pub async fn audit_logs(
        &self,
        subject: &Subject,
        query: &berth_db::ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<berth_db::AuditRecord>, i64), ProjectError> {
        let projects = match subject {
            Subject::Anonymous => return Err(ProjectError::Unauthorized),
            s if Policy::allows_system(s, rbac::Resource::AuditLog, rbac::Action::List) => None,
            Subject::User { id, .. } => {
                let roles = self.db.user_roles(*id).await?;
                Some(roles.into_iter().filter(|(_, role)| *role == Role::ProjectAdmin.id()).map(|(p, _)| p).collect())
            }
            Subject::Robot { .. } => Some(Vec::new()),
        };
        Ok(self.db.list_audit_logs(query, projects.as_deref(), size, (page - 1) * size).await?)
    }

    /// A project's audit records (needs log:list in the project).
    pub async fn project_audit_logs(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        query: &berth_db::ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<berth_db::AuditRecord>, i64), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Log, rbac::Action::List).await?;
        Ok(self.db.list_audit_logs(query, Some(&[view.id]), size, (page - 1) * size).await?)
    }
}

/// Who is to become a member: a user by id or by name.
pub enum MemberUser<'a> {
    Id(i64),
    Name(&'a str),
}

impl Projects {
    /// Members whose name contains `name`, one page, with the total (needs member:list).
    pub async fn members(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        name: &str,
        page: i64,
        size: i64,
    ) -> Result<(Vec<MemberView>, i64), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Member, rbac::Action::List).await?;
        let (rows, total) = self.db.list_members(view.id, name, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(member_view).collect::<Result<_, _>>()?, total))
    }

    pub async fn member(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        member_id: i64,
    ) -> Result<MemberView, ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Member, rbac::Action::Read).await?;
        let row = self.db.member(view.id, member_id).await?;
        member_view(row.ok_or_else(|| ProjectError::NotFound(format!("member {member_id} of project {}", view.name)))?)
    }

    /// Adds a user with a role (needs member:create). Returns the member id.
    pub async fn add_member(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        user: MemberUser<'_>,
        role_id: i64,
    ) -> Result<i64, ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Member, rbac::Action::Create).await?;
        let role = role_of(role_id)?;
        let row = match user {
            MemberUser::Id(id) => self.db.user_by_id(id).await?,
            MemberUser::Name(name) => self.db.user_by_name(name).await?,
        };
        let user = row.ok_or_else(|| ProjectError::Invalid("the user to add does not exist".into()))?;
        let added = self.db.add_member(view.id, "u", user.id, role.id()).await;
        self.caches.changed(Change::Project(view.name.clone())).await;
        match added {
            Err(DbError::Conflict(_)) => {
                Err(ProjectError::Conflict(format!("{} is already a member of {}", user.username, view.name)))
            }
            other => Ok(other?),
        }
    }

    pub async fn set_member_role(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        member_id: i64,
        role_id: i64,
    ) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Member, rbac::Action::Update).await?;
        let role = role_of(role_id)?;
        let set = self.db.set_member_role(view.id, member_id, role.id()).await;
        self.caches.changed(Change::Project(view.name.clone())).await;
        if set? { Ok(()) } else { Err(ProjectError::NotFound(format!("member {member_id} of project {}", view.name))) }
    }

    pub async fn remove_member(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        member_id: i64,
    ) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Member, rbac::Action::Delete).await?;
        let deleted = self.db.delete_member(view.id, member_id).await;
        self.caches.changed(Change::Project(view.name.clone())).await;
        if deleted? {
            Ok(())
        } else {
            Err(ProjectError::NotFound(format!("member {member_id} of project {}", view.name)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["library", "a", "my-project", "team.a_b", "0x1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Upper", "a--b", "-a", "a-", "a/b", "a b", &"a".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata() {
        let m = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(validate_metadata(&m("public", "true")).is_ok());
        assert!(validate_metadata(&m("severity", "high")).is_ok());
        assert!(validate_metadata(&m("retention_id", "7")).is_ok());
        assert!(validate_metadata(&m("public", "yes")).is_err());
        assert!(validate_metadata(&m("severity", "extreme")).is_err());
        assert!(validate_metadata(&m("colour", "blue")).is_err());
    }
}
