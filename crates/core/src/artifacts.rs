//! Repositories and artifacts as Harbor's API shows them, and their changes, which go through
//! the content door (`content::Content`) after the caller's access is decided here.
//!
//! Harbor's artifact model: an artifact is a manifest that stands on its own. Accessories
//! (signatures, SBOMs, anything naming a subject) are listed under their subject, and the
//! untagged children of an index under the index, unless a listing asks for everything
//! (`q=base=*`).

use berth_auth::rbac::{self, Subject};
use berth_db::{ArtifactScope, ListQuery, Match};

use crate::RegistryError;
use crate::cache::Change;
use crate::projects::{ProjectError, ProjectRef, Projects, user_id};

impl From<RegistryError> for ProjectError {
    fn from(e: RegistryError) -> Self {
        use berth_oci::ErrorCode;
        match e {
            RegistryError::Refused { refusal, message } => ProjectError::Policy(refusal, message),
            RegistryError::Client { code: ErrorCode::ManifestUnknown | ErrorCode::NameUnknown, detail } => {
                ProjectError::NotFound(detail)
            }
            RegistryError::Client { detail, .. } => ProjectError::Invalid(detail),
            other @ (RegistryError::UploadOutOfOrder { .. } | RegistryError::Internal(_)) => {
                ProjectError::Internal(other.to_string())
            }
        }
    }
}

/// A repository as Harbor's API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryView {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    /// Its artifacts as Harbor counts them: neither accessories nor untagged index children.
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

/// A tag as Harbor's API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagView {
    pub id: i64,
    pub name: String,
    /// When it was last pointed at this artifact.
    pub pushed_at: i64,
}

/// A child manifest of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceView {
    pub child_digest: String,
    /// Its id in the index's repository (0 if it is not there, which a stored index prevents).
    pub child_id: i64,
    /// From the index's descriptor of it.
    pub platform: Option<serde_json::Value>,
    pub annotations: Option<serde_json::Value>,
    pub urls: Option<Vec<String>>,
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
    pub tags: Vec<TagView>,
    /// Child manifests, for an index.
    pub references: Vec<ReferenceView>,
    /// The subject and Harbor's accessory type, for an accessory.
    pub accessory: Option<(String, String)>,
    /// Harbor's `extra_attrs`, read from the content at push.
    pub extra_attrs: Option<serde_json::Value>,
    /// The digest of its own icon (a layer), if it has one.
    pub icon: Option<String>,
}

/// Takes Harbor's `base=*` out of a query: with it, a listing has every manifest.
fn scope_of(query: &ListQuery) -> (ArtifactScope, ListQuery) {
    let mut rest = query.clone();
    let before = rest.terms.len();
    rest.terms.retain(|(k, m)| !(k == "base" && *m == Match::Exact("*".into())));
    let scope = if rest.terms.len() < before { ArtifactScope::All } else { ArtifactScope::TopLevel };
    (scope, rest)
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
                let access = self.authorized(subject, p, rbac::Resource::Repository, rbac::Action::List).await?;
                (Some(access.id), None)
            }
            None if subject.is_anonymous() => (None, Some(0)),
            None if subject.is_sysadmin() => (None, None),
            None => (None, Some(user_id(subject).unwrap_or(0))),
        };
        let (rows, total) = self.db.list_repositories(project_id, visible_to, query, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(repository_view).collect(), total))
    }

    /// A repository of a project in which the caller may do `action` on `resource`.
    async fn repository_for(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        resource: rbac::Resource,
        action: rbac::Action,
    ) -> Result<RepositoryView, ProjectError> {
        let access = self.authorized(subject, project, resource, action).await?;
        let full = format!("{}/{repository}", access.name);
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
        self.repository_for(subject, project, repository, rbac::Resource::Repository, rbac::Action::Read).await
    }

    pub async fn set_repository_description(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        description: &str,
    ) -> Result<(), ProjectError> {
        let repo =
            self.repository_for(subject, project, repository, rbac::Resource::Repository, rbac::Action::Update).await?;
        self.db.set_repository_description(repo.id, description).await?;
        self.caches.changed(Change::Repository(repo.name)).await;
        Ok(())
    }

    /// Deletes a repository and everything in it (needs repository:delete).
    pub async fn delete_repository(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
    ) -> Result<(), ProjectError> {
        let repo =
            self.repository_for(subject, project, repository, rbac::Resource::Repository, rbac::Action::Delete).await?;
        let name = repo.name.clone();
        self.content.delete_repository(repo.id, &repo.name).await?.ok_or(ProjectError::NotFound(name))
    }

    /// Artifacts as Harbor shows them, with their tags and index references fetched for all
    /// rows at once.
    async fn artifact_views(&self, rows: Vec<berth_db::ArtifactRow>) -> Result<Vec<ArtifactView>, ProjectError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let tags = self.db.tags_of(&ids).await?;
        let references = self.db.references_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let descriptors: Vec<berth_oci::manifest::Descriptor> =
                    row.child_descriptors.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
                ArtifactView {
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
                    tags: tags
                        .iter()
                        .filter(|t| t.manifest_id == row.id)
                        .map(|t| TagView { id: t.id, name: t.name.clone(), pushed_at: t.updated_at })
                        .collect(),
                    references: references
                        .iter()
                        .filter(|(m, _, _)| *m == row.id)
                        .map(|(_, d, child)| {
                            let described = descriptors.iter().find(|x| x.digest == *d);
                            ReferenceView {
                                child_digest: d.clone(),
                                child_id: child.unwrap_or(0),
                                platform: described.and_then(|x| x.platform.clone()),
                                annotations: described
                                    .and_then(|x| x.annotations.as_ref())
                                    .and_then(|a| serde_json::to_value(a).ok()),
                                urls: described.and_then(|x| x.urls.clone()),
                            }
                        })
                        .collect(),
                    accessory: row.accessory_of.zip(row.accessory_type),
                    extra_attrs: row.extra_attrs.and_then(|a| serde_json::from_str(&a).ok()),
                    icon: row.icon,
                }
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
        let repo =
            self.repository_for(subject, project, repository, rbac::Resource::Artifact, rbac::Action::List).await?;
        let (scope, query) = scope_of(query);
        let (rows, total) = self.db.list_artifacts(repo.id, scope, &query, size, (page - 1) * size).await?;
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
        let access = self.authorized(subject, project, rbac::Resource::Artifact, rbac::Action::List).await?;
        let (scope, query) = scope_of(query);
        let (rows, total) = self
            .db
            .list_project_artifacts(access.id, scope, latest_in_repository, &query, size, (page - 1) * size)
            .await?;
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
        let repo = self.repository_for(subject, project, repository, resource, action).await?;
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

    /// Deletes an artifact deeply: its tags, its accessories, the children only it held
    /// (needs artifact:delete).
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
        self.content
            .delete_artifact(repo.id, &repo.name, &a.digest)
            .await?
            .ok_or_else(|| ProjectError::NotFound(format!("artifact {}@{}", repo.name, a.digest)))
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
        Ok(self.content.add_tag(repo.id, &repo.name, a.id, &a.digest, tag).await?)
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
        self.content
            .delete_tag(repo.id, &repo.name, &a.digest, tag)
            .await?
            .ok_or_else(|| ProjectError::NotFound(format!("tag {tag} of {}@{}", repo.name, a.digest)))
    }

    /// Copies an artifact (`from` is `project/repository@digest` or `project/repository:tag`;
    /// a tag is copied too) with its accessories into a repository of `project`: needs
    /// artifact:read at the source and artifact:create at the destination. Returns the
    /// copied digest.
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
        let dst_name = berth_oci::RepositoryName::parse(&format!("{}/{repository}", dst.name))
            .map_err(|e| ProjectError::Invalid(e.to_string()))?;
        self.content
            .copy(src_view.id, &src_view.name, &dst_name, &artifact.digest, tag)
            .await?
            .ok_or_else(|| ProjectError::NotFound(format!("artifact {from}")))?;
        Ok(artifact.digest)
    }

    /// The accessories of an artifact, with Harbor's accessory types (needs accessory:list).
    pub async fn accessories(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
    ) -> Result<(ArtifactView, Vec<ArtifactView>), ProjectError> {
        let (repo, a) = self
            .artifact_checked(subject, project, repository, reference, rbac::Resource::Accessory, rbac::Action::List)
            .await?;
        let rows = self.db.accessories_of(repo.id, &a.digest).await?;
        Ok((a, self.artifact_views(rows).await?))
    }

    /// The accessories of each of `artifacts` (of one listing), in one query per artifact.
    pub async fn accessories_of(
        &self,
        artifacts: &[ArtifactView],
    ) -> Result<Vec<(i64, Vec<ArtifactView>)>, ProjectError> {
        let mut out = Vec::with_capacity(artifacts.len());
        for a in artifacts {
            let rows = self.db.accessories_of(a.repository_id, &a.digest).await?;
            out.push((a.id, self.artifact_views(rows).await?));
        }
        Ok(out)
    }
}

/// Harbor's artifact type (`IMAGE`, `CHART`, `CNAB`, `WASM`, `SBOM`, else `UNKNOWN`), from the
/// config's media type, or the manifest's for an index.
pub fn harbor_type(artifact_type: Option<&str>, media_type: &str) -> &'static str {
    match artifact_type {
        Some("application/vnd.cncf.helm.config.v1+json") => "CHART",
        Some("application/vnd.oci.image.config.v1+json" | "application/vnd.docker.container.image.v1+json") => "IMAGE",
        Some("application/vnd.cnab.config.v1+json" | "application/vnd.cnab.manifest.v1") => "CNAB",
        Some("application/vnd.wasm.config.v1+json") => "WASM",
        Some("application/vnd.goharbor.harbor.sbom.v1") => "SBOM",
        None if berth_oci::media_type::is_index(media_type) => "IMAGE",
        _ => "UNKNOWN",
    }
}
