//! Projects: creation (with Harbor's name rule and creation restriction), lookup, listing as
//! each caller may see them, metadata updates and deletion, each decided by the one policy.

use std::collections::BTreeMap;

use berth_auth::rbac::{self, Policy, ProjectContext, Role, Subject};
use berth_db::{Db, DbError, ListQuery, Match, ProjectRow};

use crate::cache::{Caches, Change};

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
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DbError> for ProjectError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => ProjectError::Conflict(format!("{what} already exists")),
            DbError::InvalidQuery(why) => ProjectError::Invalid(why),
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
    }
    Ok(())
}

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
}

impl ProjectView {
    pub fn public(&self) -> bool {
        self.metadata.get("public").is_some_and(|v| v == "true")
    }

    fn context(&self) -> ProjectContext<'_> {
        ProjectContext { name: &self.name, public: self.public(), role: self.role }
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
}

pub(crate) fn user_id(subject: &Subject) -> Option<i64> {
    match subject {
        Subject::User { id, .. } => Some(*id),
        _ => None,
    }
}

impl Projects {
    /// `caches` must be the ones the registry and the access checks read (`Registry::caches`).
    pub fn new(db: Db, caches: Caches) -> Projects {
        Projects { db, caches }
    }

    async fn view(&self, row: ProjectRow, subject: &Subject) -> Result<ProjectView, ProjectError> {
        let name = row.name.clone();
        self.views(vec![row], subject).await?.pop().ok_or(ProjectError::NotFound(name))
    }

    /// Views of a page of projects in four queries, whatever the page's size.
    async fn views(&self, rows: Vec<ProjectRow>, subject: &Subject) -> Result<Vec<ProjectView>, ProjectError> {
        use std::collections::HashMap;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut metadata: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for (id, key, value) in self.db.projects_metadata(&ids).await? {
            metadata.entry(id).or_default().insert(key, value);
        }
        let mut owners: HashMap<i64, String> = self.db.project_owner_names(&ids).await?.into_iter().collect();
        let counts: HashMap<i64, i64> = self.db.project_repository_counts(&ids).await?.into_iter().collect();
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
                name: row.name,
                owner_id: row.owner_id,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
    }

    /// Creates a project owned by the caller, who becomes its project admin.
    pub async fn create(
        &self,
        subject: &Subject,
        name: &str,
        mut metadata: BTreeMap<String, String>,
    ) -> Result<i64, ProjectError> {
        let Some(owner) = user_id(subject) else {
            return Err(match subject {
                Subject::Anonymous => ProjectError::Unauthorized,
                _ => ProjectError::Forbidden("only users can create projects".into()),
            });
        };
        let restriction = self.db.setting("project_creation_restriction").await?;
        if restriction.as_deref() == Some("adminonly") && !subject.is_sysadmin() {
            return Err(ProjectError::Forbidden("only system administrators may create projects".into()));
        }
        validate_name(name)?;
        validate_metadata(&metadata)?;
        metadata.entry("public".into()).or_insert_with(|| "false".into());
        let entries: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let created = self.db.create_project(name, owner, &entries).await;
        self.caches.changed(Change::Project(name.to_string())).await;
        Ok(created?)
    }

    /// A system setting, such as `project_creation_restriction`.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, ProjectError> {
        Ok(self.db.setting(name).await?)
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

    /// A project the caller may read; `action` on `resource` must be allowed too.
    pub(crate) async fn authorized(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        resource: rbac::Resource,
        action: rbac::Action,
    ) -> Result<ProjectView, ProjectError> {
        let view = self.view(self.row(project).await?, subject).await?;
        let ctx = view.context();
        if !Policy::allows(subject, &ctx, rbac::Resource::Project, rbac::Action::Read) {
            // Do not reveal more than existence (which HEAD tells anyone) to outsiders.
            return Err(if subject.is_anonymous() {
                ProjectError::Unauthorized
            } else {
                ProjectError::Forbidden(format!("no access to project {}", view.name))
            });
        }
        if !Policy::allows(subject, &ctx, resource, action) {
            return Err(ProjectError::Forbidden(format!(
                "{resource}:{action} on project {} is not allowed",
                view.name
            )));
        }
        Ok(view)
    }

    pub async fn get(&self, subject: &Subject, project: &ProjectRef<'_>) -> Result<ProjectView, ProjectError> {
        self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Read).await
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
        let view = self.authorized(subject, project, rbac::Resource::Metadata, rbac::Action::Read).await?;
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
        let view = self.authorized(subject, project, rbac::Resource::Metadata, rbac::Action::Create).await?;
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
        let view = self.authorized(subject, project, rbac::Resource::Metadata, rbac::Action::Update).await?;
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

/// A repository as Harbor's API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryView {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn repository_view(r: berth_db::RepositoryRow) -> RepositoryView {
    RepositoryView {
        id: r.id,
        project_id: r.project_id.unwrap_or(0),
        name: r.name,
        description: r.description,
        artifact_count: r.artifact_count,
        pull_count: r.pull_count,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl Projects {
    /// Repositories of a project (needs repository:list), or, without a project, every
    /// repository the caller can see; filtered by name, one page, with the total.
    pub async fn repositories(
        &self,
        subject: &Subject,
        project: Option<&ProjectRef<'_>>,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<RepositoryView>, i64), ProjectError> {
        let (project_id, visible_to) = match project {
            Some(p) => {
                let view = self.authorized(subject, p, rbac::Resource::Repository, rbac::Action::List).await?;
                (Some(view.id), None)
            }
            None if subject.is_anonymous() => (None, Some(0)),
            None if subject.is_sysadmin() => (None, None),
            None => (None, Some(user_id(subject).unwrap_or(0))),
        };
        let (rows, total) = self.db.list_repositories(project_id, visible_to, query, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(repository_view).collect(), total))
    }

    async fn repository_in(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        action: rbac::Action,
    ) -> Result<RepositoryView, ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Repository, action).await?;
        let full = format!("{}/{repository}", view.name);
        let row =
            self.db.repository(&full).await?.ok_or_else(|| ProjectError::NotFound(format!("repository {full}")))?;
        Ok(repository_view(row))
    }

    pub async fn repository(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
    ) -> Result<RepositoryView, ProjectError> {
        self.repository_in(subject, project, repository, rbac::Action::Read).await
    }

    pub async fn set_repository_description(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        description: &str,
    ) -> Result<(), ProjectError> {
        let repo = self.repository_in(subject, project, repository, rbac::Action::Update).await?;
        self.db.set_repository_description(repo.id, description).await?;
        Ok(())
    }

    /// Deletes a repository and everything in it (needs repository:delete).
    pub async fn delete_repository(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
    ) -> Result<(), ProjectError> {
        let repo = self.repository_in(subject, project, repository, rbac::Action::Delete).await?;
        let deleted = self.db.delete_repository(repo.id).await;
        self.caches.changed(Change::Repository(repo.name)).await;
        deleted?;
        Ok(())
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

/// An artifact (a manifest) as Harbor's API shows it.
#[derive(Clone, Debug)]
pub struct ArtifactView {
    pub id: i64,
    pub project_id: i64,
    pub repository_id: i64,
    pub repository_name: String,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
    pub size: i64,
    pub push_time: i64,
    pub pull_time: Option<i64>,
    /// (tag, when it was last pointed here).
    pub tags: Vec<(String, i64)>,
    /// Child manifests, for an index.
    pub references: Vec<String>,
}

impl Projects {
    /// Artifacts as Harbor shows them, with their tags and index references fetched for all
    /// rows at once.
    async fn artifact_views(&self, rows: Vec<berth_db::ArtifactRow>) -> Result<Vec<ArtifactView>, ProjectError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let tags = self.db.tags_of(&ids).await?;
        let references = self.db.references_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| ArtifactView {
                id: row.id,
                project_id: row.project_id.unwrap_or_default(),
                repository_id: row.repository_id,
                repository_name: row.repository_name,
                digest: row.digest,
                media_type: row.media_type,
                artifact_type: row.artifact_type,
                annotations: row.annotations.and_then(|a| serde_json::from_str(&a).ok()),
                size: row.size,
                push_time: row.created_at,
                pull_time: row.pull_time,
                tags: tags.iter().filter(|(m, _, _)| *m == row.id).map(|(_, n, t)| (n.clone(), *t)).collect(),
                references: references.iter().filter(|(m, _)| *m == row.id).map(|(_, d)| d.clone()).collect(),
            })
            .collect())
    }

    async fn artifact_view(&self, row: berth_db::ArtifactRow) -> Result<ArtifactView, ProjectError> {
        let mut views = self.artifact_views(vec![row]).await?;
        views.pop().ok_or_else(|| ProjectError::Internal("artifact view missing".into()))
    }

    /// Artifacts of a repository, newest first, with their tags (needs artifact:list).
    pub async fn artifacts(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ArtifactView>, i64), ProjectError> {
        let repo = self.repository_in(subject, project, repository, rbac::Action::Read).await?;
        self.authorized(subject, project, rbac::Resource::Artifact, rbac::Action::List).await?;
        let (rows, total) = self.db.list_artifacts(repo.id, query, size, (page - 1) * size).await?;
        Ok((self.artifact_views(rows).await?, total))
    }

    /// Artifacts of every repository of a project (needs artifact:list); with
    /// `latest_in_repository`, the newest of each repository among those `query` matches.
    pub async fn project_artifacts(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        query: &ListQuery,
        latest_in_repository: bool,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ArtifactView>, i64), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Artifact, rbac::Action::List).await?;
        let (rows, total) =
            self.db.list_project_artifacts(view.id, latest_in_repository, query, size, (page - 1) * size).await?;
        Ok((self.artifact_views(rows).await?, total))
    }

    /// One artifact by digest or tag, after checking `resource:action`.
    pub(crate) async fn artifact_checked(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        resource: rbac::Resource,
        action: rbac::Action,
    ) -> Result<(RepositoryView, ArtifactView), ProjectError> {
        let repo = self.repository_in(subject, project, repository, rbac::Action::Read).await?;
        self.authorized(subject, project, resource, action).await?;
        let digest = if reference.contains(':') {
            reference.to_string()
        } else {
            match self.db.manifest_by_tag(repo.id, reference).await? {
                Some(m) => m.digest,
                None => return Err(ProjectError::NotFound(format!("artifact {}:{reference}", repo.name))),
            }
        };
        let row = self
            .db
            .artifact(repo.id, &digest)
            .await?
            .ok_or_else(|| ProjectError::NotFound(format!("artifact {}@{digest}", repo.name)))?;
        let view = self.artifact_view(row).await?;
        Ok((repo, view))
    }

    /// An artifact whose additions the caller may read (artifact-addition:read).
    pub async fn artifact_for_addition(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<ArtifactView, ProjectError> {
        let (_, artifact) = self
            .artifact_checked(
                subject,
                project,
                repository,
                reference,
                rbac::Resource::ArtifactAddition,
                rbac::Action::Read,
            )
            .await?;
        Ok(artifact)
    }

    pub async fn artifact(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<ArtifactView, ProjectError> {
        Ok(self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Artifact, rbac::Action::Read)
            .await?
            .1)
    }

    /// Deletes an artifact and its tags (needs artifact:delete).
    pub async fn delete_artifact(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<(), ProjectError> {
        let (repo, a) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Artifact, rbac::Action::Delete)
            .await?;
        let deleted = self.db.delete_manifest(repo.id, &a.digest).await;
        self.caches.changed(Change::Repository(repo.name)).await;
        deleted?;
        Ok(())
    }

    /// Adds a tag to an artifact (needs tag:create); a tag of that name already in the
    /// repository is a conflict.
    pub async fn add_tag(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        tag: &str,
    ) -> Result<(), ProjectError> {
        berth_oci::Tag::parse(tag).map_err(|e| ProjectError::Invalid(e.to_string()))?;
        let (repo, a) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Tag, rbac::Action::Create)
            .await?;
        let created = self.db.create_tag(repo.id, tag, a.id).await;
        self.caches.changed(Change::Repository(repo.name)).await;
        Ok(created?)
    }

    /// Removes a tag of an artifact (needs tag:delete); the artifact stays.
    pub async fn delete_tag(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        tag: &str,
    ) -> Result<(), ProjectError> {
        let (repo, a) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Tag, rbac::Action::Delete)
            .await?;
        if !a.tags.iter().any(|(t, _)| t == tag) {
            return Err(ProjectError::NotFound(format!("tag {tag} of {}@{}", repo.name, a.digest)));
        }
        let deleted = self.db.delete_tag(repo.id, tag).await;
        self.caches.changed(Change::Repository(repo.name)).await;
        deleted?;
        Ok(())
    }
}

impl Projects {
    /// Copies an artifact (`from` is `project/repository@digest` or `project/repository:tag`;
    /// a tag is copied too) into a repository of `project`: needs artifact:read at the source and
    /// artifact:create at the destination. Returns the copied digest.
    pub async fn copy_artifact(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        from: &str,
    ) -> Result<String, ProjectError> {
        let invalid =
            || ProjectError::Invalid(format!("from must be <project>/<repository>@<digest> or :<tag>, not {from:?}"));
        let (src_repo, reference, tag) = match from.split_once('@') {
            Some((repo, digest)) => (repo, digest, None),
            None => {
                let (repo, tag) = from.rsplit_once(':').ok_or_else(invalid)?;
                (repo, tag, Some(tag))
            }
        };
        let (src_project, src_repository) = src_repo.split_once('/').ok_or_else(invalid)?;
        let src = ProjectRef::Name(src_project);
        let (src_view, artifact) = self
            .artifact_checked(subject, &src, src_repository, reference, rbac::Resource::Artifact, rbac::Action::Read)
            .await?;
        let dst = self.authorized(subject, project, rbac::Resource::Artifact, rbac::Action::Create).await?;
        let dst_name = format!("{}/{repository}", dst.name);
        berth_oci::RepositoryName::parse(&dst_name).map_err(|e| ProjectError::Invalid(e.to_string()))?;
        let dst_repo = self.db.ensure_repository(&dst_name, dst.id).await?;
        let copied = self.copy_into(dst_repo, src_view.id, &artifact.digest, tag).await;
        self.caches.changed(Change::Repository(dst_name)).await;
        copied?.ok_or_else(|| ProjectError::NotFound(format!("artifact {from}")))?;
        Ok(artifact.digest)
    }

    /// The copy's database writes: the manifest (with what it references), then the tag.
    async fn copy_into(
        &self,
        dst_repo: i64,
        src_repo: i64,
        digest: &str,
        tag: Option<&str>,
    ) -> Result<Option<()>, DbError> {
        let Some(copied) = self.db.copy_manifest(src_repo, dst_repo, digest).await? else { return Ok(None) };
        if let Some(tag) = tag {
            self.db.put_tag(dst_repo, tag, copied).await?;
        }
        Ok(Some(()))
    }
}

/// Harbor's accessory type of a manifest that names a subject (harbor.md 2.4).
pub fn accessory_type(artifact_type: Option<&str>) -> &'static str {
    match artifact_type {
        Some("application/vnd.cncf.notary.signature") => "signature.notation",
        Some("application/vnd.dev.cosign.artifact.sig.v1+json" | "application/vnd.dev.sigstore.bundle.v0.3+json") => {
            "signature.cosign"
        }
        Some("application/vnd.goharbor.harbor.sbom.v1") => "sbom.harbor",
        _ => "subject.accessory",
    }
}

impl Projects {
    /// The accessories of an artifact: manifests of the repository whose subject it is, with
    /// Harbor's accessory types (needs accessory:list).
    pub async fn accessories(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<(ArtifactView, Vec<(ArtifactView, &'static str)>), ProjectError> {
        let (repo, a) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Accessory, rbac::Action::List)
            .await?;
        let mut rows = Vec::new();
        for m in self.db.referrers(repo.id, &a.digest, None).await? {
            if let Some(row) = self.db.artifact(repo.id, &m.digest).await? {
                rows.push(row);
            }
        }
        let out = self
            .artifact_views(rows)
            .await?
            .into_iter()
            .map(|v| {
                let kind = accessory_type(v.artifact_type.as_deref());
                (v, kind)
            })
            .collect();
        Ok((a, out))
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
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Read).await?;
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
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Delete).await?;
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
