//! The one door for content: every change to what a repository holds passes through
//! [`Content`], whichever API asked for it: a manifest PUT or DELETE on `/v2`, a tag added or
//! removed, an artifact deleted or copied, a repository deleted on `/api/v2.0` (and, as they
//! come, retention, garbage collection, replication and the proxy cache).
//!
//! Two extension points hang off it. A [`ContentPolicy`] (immutability, quotas, content
//! trust...) is asked once about each [`ContentChange`] before anything is written, and may
//! refuse it; a [`ContentSubscriber`] (webhooks, scan on push, replication triggers...) is told
//! once of each change after its commit, as a [`ContentEvent`]. Authorization is not decided
//! here: the caller's access was checked by the API's authorizer (`/v2`) or by the service that
//! calls in (`Projects`), through the same project access.

use std::sync::{Arc, RwLock};

use berth_db::{Db, DeletedArtifact, NewManifest, PutManifestError};
use berth_oci::manifest::{self, ChildKind};
use berth_oci::{Digest, ErrorCode, Reference, RepositoryName, Tag};
use berth_store::BlobStore;
use bytes::Bytes;

use crate::cache::{Caches, Change};
use crate::{Refusal, RegistryError};

/// A change to a repository's content, as policies see it before it is made and
/// subscribers after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentChange {
    /// A manifest stored in `repository`, with `tags` pointed at it (moved there if they
    /// named another manifest).
    Push {
        repository: String,
        digest: String,
        media_type: String,
        tags: Vec<String>,
        /// The subject, when the manifest is an accessory (a signature, an SBOM...).
        accessory_of: Option<String>,
    },
    /// A new tag on an artifact.
    AddTag { repository: String, digest: String, tag: String },
    /// A tag removed; the artifact stays.
    DeleteTag { repository: String, digest: String, tag: String },
    /// An artifact deleted, with its accessories and the children only it held; `tags` are
    /// the artifact's own.
    DeleteArtifact { repository: String, digest: String, tags: Vec<String> },
    /// An artifact (with what it references and its accessories) copied into `repository`,
    /// and `tag` pointed at it there.
    Copy { from: String, repository: String, digest: String, tag: Option<String> },
    /// A repository deleted with everything in it.
    DeleteRepository { repository: String },
}

impl ContentChange {
    /// The repository whose content changes.
    pub fn repository(&self) -> &str {
        match self {
            ContentChange::Push { repository, .. }
            | ContentChange::AddTag { repository, .. }
            | ContentChange::DeleteTag { repository, .. }
            | ContentChange::DeleteArtifact { repository, .. }
            | ContentChange::Copy { repository, .. }
            | ContentChange::DeleteRepository { repository } => repository,
        }
    }

    /// The tags the change points somewhere or removes.
    pub fn tags(&self) -> Vec<&str> {
        match self {
            ContentChange::Push { tags, .. } | ContentChange::DeleteArtifact { tags, .. } => {
                tags.iter().map(String::as_str).collect()
            }
            ContentChange::AddTag { tag, .. } | ContentChange::DeleteTag { tag, .. } => vec![tag.as_str()],
            ContentChange::Copy { tag, .. } => tag.iter().map(String::as_str).collect(),
            ContentChange::DeleteRepository { .. } => Vec::new(),
        }
    }
}

/// A change that was made, after its commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentEvent {
    pub change: ContentChange,
    /// Every manifest digest the change deleted (an artifact's first, then its accessories
    /// and children), for deletions.
    pub deleted: Vec<String>,
    /// Milliseconds since the epoch.
    pub at: i64,
}

/// Why a policy refused a change: how (the status an API answers with) and a message for the
/// person reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRefusal {
    pub refusal: Refusal,
    pub message: String,
}

/// A rule every content change must pass (immutability, quota, content trust...). It is asked
/// before anything is written; a refusal leaves everything as it was.
#[async_trait::async_trait]
pub trait ContentPolicy: Send + Sync + 'static {
    async fn check(&self, change: &ContentChange) -> Result<(), PolicyRefusal>;
}

/// Told of every change after its commit. Must not block: a subscriber with slow work (a
/// webhook, a scan) queues it and returns.
pub trait ContentSubscriber: Send + Sync + 'static {
    fn published(&self, event: &ContentEvent);
}

#[derive(Default)]
struct Hooks {
    policies: RwLock<Vec<Arc<dyn ContentPolicy>>>,
    subscribers: RwLock<Vec<Arc<dyn ContentSubscriber>>>,
}

/// The content door; clones share their policies and subscribers.
#[derive(Clone)]
pub struct Content {
    db: Db,
    store: Arc<dyn BlobStore>,
    caches: Caches,
    hooks: Arc<Hooks>,
}

impl Content {
    /// A blob's bytes, whole (for small ones, whose size the caller has bounded: configs, icons).
    pub(crate) async fn read_blob(&self, digest: &Digest) -> Result<bytes::Bytes, RegistryError> {
        let bytes =
            crate::registry::fold_blob(self.store.as_ref(), digest, Vec::new(), |b, c| b.extend_from_slice(c)).await?;
        Ok(bytes::Bytes::from(bytes))
    }
}

/// Harbor's accessory type of a manifest that names a subject (harbor.md 2.4), by its
/// artifact type (the config's media type when the manifest has none).
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

/// The subject and Harbor's type of a manifest tagged under cosign's tag scheme
/// (`sha256-<hex>.sig`, `.att`, `.sbom`), which cosign 2 writes by default and cosign 3 for
/// `attach sbom`: a signature is `signature.cosign`; attestations and SBOMs are accessories
/// of no more specific Harbor type.
///
/// A bare `sha256-<hex>` is the OCI 1.1 referrers tag schema's index, which clients that do
/// not trust the referrers API push beside their referrers (notation does by default,
/// `--force-referrers-tag`): bookkeeping that Berth's referrers API makes redundant, so it is
/// kept with its subject (and deleted with it) but listed nowhere.
pub fn cosign_tag_subject(tag: &str) -> Option<(String, &'static str)> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = match rest.split_once('.') {
        Some((hex, "sig")) => (hex, "signature.cosign"),
        Some((hex, "att" | "sbom")) => (hex, "subject.accessory"),
        Some(_) => return None,
        None => (rest, berth_db::REFERRERS_TAG_INDEX),
    };
    let digest = Digest::parse(&format!("sha256:{hex}")).ok()?;
    Some((digest.as_str().to_string(), kind))
}

/// The artifact type of a CNAB bundle, which `cnab-to-oci` names in the index's
/// `org.opencontainers.artifactType` annotation.
const CNAB_MANIFEST: &str = "application/vnd.cnab.manifest.v1";

/// For a CNAB bundle's index, the descriptor of its manifest holding the bundle's config.
fn cnab_config_manifest(parsed: &manifest::ParsedManifest) -> Option<&manifest::Descriptor> {
    let annotations = parsed.annotations.as_ref()?;
    let cnab = annotations.get("org.opencontainers.artifactType").map(String::as_str) == Some(CNAB_MANIFEST)
        || annotations.contains_key("io.cnab.runtime_version");
    if !cnab {
        return None;
    }
    parsed.manifests.iter().find(|d| {
        d.annotations.as_ref().and_then(|a| a.get("io.cnab.manifest.type")).map(String::as_str) == Some("config")
    })
}

fn refused(r: PolicyRefusal) -> RegistryError {
    RegistryError::Refused { refusal: r.refusal, message: r.message }
}

impl Content {
    pub(crate) fn new(db: Db, store: Arc<dyn BlobStore>, caches: Caches) -> Content {
        Content { db, store, caches, hooks: Arc::default() }
    }

    /// The same door with other caches (the registry's, once Redis is known).
    pub(crate) fn with_caches(&self, caches: Caches) -> Content {
        Content { caches, ..self.clone() }
    }

    /// Adds a policy that every later change must pass.
    pub fn add_policy(&self, policy: Arc<dyn ContentPolicy>) {
        if let Ok(mut policies) = self.hooks.policies.write() {
            policies.push(policy);
        }
    }

    /// Adds a subscriber told of every later change.
    pub fn subscribe(&self, subscriber: Arc<dyn ContentSubscriber>) {
        if let Ok(mut subscribers) = self.hooks.subscribers.write() {
            subscribers.push(subscriber);
        }
    }

    /// Asks every policy; the first refusal refuses the change.
    async fn check(&self, change: &ContentChange) -> Result<(), RegistryError> {
        let policies: Vec<Arc<dyn ContentPolicy>> = match self.hooks.policies.read() {
            Ok(p) => p.clone(),
            Err(_) => return Err(RegistryError::Internal("content policies poisoned".into())),
        };
        for policy in policies {
            policy.check(change).await.map_err(refused)?;
        }
        Ok(())
    }

    fn publish(&self, change: ContentChange, deleted: Vec<String>) {
        let event = ContentEvent { change, deleted, at: berth_db::now_millis() };
        let subscribers = match self.hooks.subscribers.read() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        for s in subscribers {
            s.published(&event);
        }
    }

    /// The id of the project a repository name falls in, which must exist.
    pub(crate) async fn project_of(&self, name: &RepositoryName) -> Result<i64, RegistryError> {
        let Some((project, _)) = name.as_str().split_once('/') else {
            return Err(RegistryError::client(
                ErrorCode::NameInvalid,
                format!("{name} has no project: repository names have the form <project>/<repository>"),
            ));
        };
        match self.db.project_by_name(project).await? {
            Some(p) => Ok(p.id),
            None => Err(RegistryError::client(ErrorCode::NameUnknown, format!("project {project} not found"))),
        }
    }

    /// The facts of the project a repository name falls in, from the caches when they hold them.
    pub(crate) async fn project_facts(
        &self,
        name: &RepositoryName,
    ) -> Result<Option<crate::cache::ProjectFacts>, RegistryError> {
        let project = name.as_str().split('/').next().unwrap_or_default();
        let access = crate::access::AccessLookup::new(self.db.clone(), Some(self.caches.clone()));
        Ok(access.facts(project).await?)
    }

    /// The repository's id, creating it on first push. Its project (the first path component)
    /// must exist: repositories are created inside projects, never with them.
    pub(crate) async fn ensure_repository(&self, name: &RepositoryName) -> Result<i64, RegistryError> {
        let project = self.project_of(name).await?;
        Ok(self.db.ensure_repository(name.as_str(), project).await?)
    }

    async fn repository_id(&self, name: &RepositoryName) -> Result<i64, RegistryError> {
        self.db
            .repository_id(name.as_str())
            .await?
            .ok_or_else(|| RegistryError::client(ErrorCode::NameUnknown, format!("repository {name} is not known")))
    }

    /// Validates and stores a manifest under `reference` (and any `extra_tags`). Returns its
    /// digest and its subject, if any.
    pub async fn put_manifest(
        &self,
        name: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
        extra_tags: &[Tag],
    ) -> Result<(Digest, Option<Digest>), RegistryError> {
        let parsed = manifest::parse(&bytes, content_type).map_err(|e| {
            let code = if e == manifest::ManifestError::TooLarge {
                ErrorCode::SizeInvalid
            } else {
                ErrorCode::ManifestInvalid
            };
            RegistryError::client(code, e.to_string())
        })?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), &bytes);
                if &actual != d {
                    return Err(RegistryError::client(
                        ErrorCode::DigestInvalid,
                        format!("manifest has digest {actual}, not {d}"),
                    ));
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&bytes),
        };
        let mut tags: Vec<&str> = extra_tags.iter().map(Tag::as_str).collect();
        if let Reference::Tag(t) = reference {
            tags.push(t.as_str());
        }
        let mut blobs = Vec::new();
        let mut manifests = Vec::new();
        for child in parsed.children.iter().filter(|c| !c.foreign) {
            let size = i64::try_from(child.size).map_err(|_| {
                RegistryError::client(
                    ErrorCode::ManifestInvalid,
                    format!("descriptor of {} is too large", child.digest),
                )
            })?;
            match child.kind {
                ChildKind::Blob => blobs.push((child.digest.as_str(), size)),
                ChildKind::Manifest => manifests.push((child.digest.as_str(), size)),
            }
        }
        let annotations = match &parsed.annotations {
            Some(a) => Some(serde_json::to_string(a).map_err(|e| RegistryError::Internal(e.to_string()))?),
            None => None,
        };
        let accessory = match &parsed.subject {
            Some(subject) => Some((subject.as_str().to_string(), accessory_type(parsed.artifact_type.as_deref()))),
            None => tags.iter().find_map(|t| cosign_tag_subject(t)),
        };
        let change = ContentChange::Push {
            repository: name.as_str().to_string(),
            digest: digest.as_str().to_string(),
            media_type: parsed.media_type.clone(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            accessory_of: accessory.as_ref().map(|(s, _)| s.clone()),
        };
        // The id of the report of a scan on push, made only if the project asks for one.
        let report: String;
        let record = NewManifest {
            digest: digest.as_str(),
            media_type: &parsed.media_type,
            size: bytes.len() as i64,
            artifact_type: parsed.artifact_type.as_deref(),
            subject_digest: parsed.subject.as_ref().map(Digest::as_str),
            annotations,
            blobs,
            manifests,
            accessory,
            extra_attrs: None,
            icon: crate::icons::icon_layer(&parsed.layers).map(|l| l.digest.clone()),
            child_descriptors: if parsed.manifests.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&parsed.manifests).map_err(|e| RegistryError::Internal(e.to_string()))?)
            },
            scan: None,
        };
        let mut record = record;
        let refused = |e: PutManifestError| match e {
            PutManifestError::MissingChild(d) => RegistryError::client(
                ErrorCode::ManifestBlobUnknown,
                format!("manifest references {d}, which is not in {name}"),
            ),
            PutManifestError::SizeMismatch { digest, declared, actual } => RegistryError::client(
                ErrorCode::ManifestInvalid,
                format!("the descriptor of {digest} gives {declared} bytes, but it has {actual}"),
            ),
            PutManifestError::Db(e) => e.into(),
        };
        // A refused manifest stores nothing: neither a new repository (which would then block
        // the project's deletion) nor its bytes. Its children are checked first; a repository
        // that does not exist yet holds none, so a manifest with children cannot be its first.
        let existing = self.db.repository_id(name.as_str()).await?;
        match existing {
            Some(repo) => self.db.check_manifest_children(repo, &record).await.map_err(refused)?,
            None => {
                self.project_of(name).await?;
                if let Some((first, _)) = record.blobs.first().or(record.manifests.first()) {
                    return Err(refused(PutManifestError::MissingChild(first.to_string())));
                }
            }
        }
        self.check(&change).await?;
        // Scan on push: queued in the push's own transaction, so an acknowledged push of a
        // project that scans on push is always scanned (Harbor's event handler can lose it).
        let scans_on_push = record.accessory.is_none()
            && parsed.config.as_ref().is_some_and(|c| berth_scan::job::scannable(&parsed.media_type, &c.media_type))
            && self.project_facts(name).await?.is_some_and(|f| f.auto_scan);
        if scans_on_push {
            report = uuid::Uuid::new_v4().to_string();
            let job = berth_scan::job::builtin_scan_job(&report, name.as_str(), digest.as_str(), &parsed.media_type)
                .map_err(|e| RegistryError::Internal(e.to_string()))?;
            record.scan = Some(berth_scan::job::builtin_scan(&report, digest.as_str(), job));
        }
        if let Some(config) = &parsed.config {
            record.extra_attrs = self.extra_attrs(config).await?;
        } else if let Some(config_manifest) = cnab_config_manifest(&parsed) {
            record.artifact_type = Some(CNAB_MANIFEST);
            record.extra_attrs = self.cnab_extra_attrs(config_manifest).await?;
        }
        let repo = match existing {
            Some(repo) => repo,
            None => self.ensure_repository(name).await?,
        };
        // Bytes first: a manifest row never points at content that is not there. Pinned
        // while written, so that a collection does not take them before the row names them.
        let pin = self.db.pin_blob(digest.as_str()).await?;
        let stored = match self.store.put(&digest, bytes.clone()).await {
            Ok(()) => self.db.put_manifest(repo, &record, &tags, &pin).await.map_err(refused),
            Err(e) => Err(e.into()),
        };
        self.caches.changed(Change::Repository(name.as_str().to_string())).await;
        if let Err(e) = stored {
            if let Err(unpinned) = self.db.unpin_blob(&pin).await {
                tracing::warn!(digest = %digest, error = %unpinned, "a failed write's pin was left");
            }
            return Err(e);
        }
        self.publish(change, Vec::new());
        Ok((digest, parsed.subject))
    }

    /// Harbor's `extra_attrs` of a CNAB bundle: those of the config of its manifest that
    /// `cnab-to-oci` marks `io.cnab.manifest.type: config` (the bundle's `bundle.json`), which
    /// the repository was checked to hold.
    async fn cnab_extra_attrs(&self, config_manifest: &manifest::Descriptor) -> Result<Option<String>, RegistryError> {
        const MOST: i64 = 1 << 20;
        let Ok(digest) = Digest::parse(&config_manifest.digest) else { return Ok(None) };
        if !(0..=MOST).contains(&config_manifest.size) {
            return Ok(None);
        }
        let bytes = self.read_blob(&digest).await?;
        let Ok(inner) = manifest::parse(&bytes, Some(&config_manifest.media_type)) else { return Ok(None) };
        match &inner.config {
            Some(config) => self.extra_attrs(config).await,
            None => Ok(None),
        }
    }

    /// Harbor's `extra_attrs` of an artifact with this config (whose blob the repository was
    /// checked to hold): an image's architecture, os, author, created and runtime config; a
    /// Helm chart's `Chart.yaml` fields (its config is that file as JSON), a CNAB bundle's `bundle.json`
    /// (whole, as Harbor shows it). Other artifacts, and
    /// configs too large or not JSON, have none.
    async fn extra_attrs(&self, config: &manifest::Descriptor) -> Result<Option<String>, RegistryError> {
        const WHOLE_CONFIGS: &[&str] =
            &["application/vnd.cncf.helm.config.v1+json", "application/vnd.cnab.config.v1+json"];
        const MOST: i64 = 1 << 20;
        let image = berth_oci::media_type::IMAGE_CONFIGS.contains(&config.media_type.as_str());
        if !(image || WHOLE_CONFIGS.contains(&config.media_type.as_str())) || !(0..=MOST).contains(&config.size) {
            return Ok(None);
        }
        let Ok(digest) = Digest::parse(&config.digest) else { return Ok(None) };
        let bytes = self.read_blob(&digest).await?;
        let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Ok(None);
        };
        let attrs = if image {
            ["architecture", "os", "author", "created", "config"]
                .into_iter()
                .filter_map(|k| doc.get(k).map(|v| (k.to_string(), v.clone())))
                .collect()
        } else {
            doc
        };
        Ok(Some(serde_json::Value::Object(attrs).to_string()))
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: by digest, the artifact (deeply, as
    /// [`Content::delete_artifact`]); by tag, only the tag.
    pub async fn delete_manifest(&self, name: &RepositoryName, reference: &Reference) -> Result<(), RegistryError> {
        let repo = self.repository_id(name).await?;
        let unknown =
            || RegistryError::client(ErrorCode::ManifestUnknown, format!("manifest {reference} is not in {name}"));
        match reference {
            Reference::Digest(d) => self.delete_artifact(repo, name.as_str(), d.as_str()).await?.ok_or_else(unknown),
            Reference::Tag(t) => {
                let row = self.db.manifest_by_tag(repo, t.as_str()).await?.ok_or_else(unknown)?;
                self.delete_tag(repo, name.as_str(), &row.digest, t.as_str()).await?.ok_or_else(unknown)
            }
        }
    }

    /// Deletes an artifact with its tags, its accessories (recursively) and the children of an
    /// index that nothing else references or tags. `None`: no such artifact.
    pub async fn delete_artifact(
        &self,
        repository_id: i64,
        repository: &str,
        digest: &str,
    ) -> Result<Option<()>, RegistryError> {
        let Some(row) = self.db.manifest_by_digest(repository_id, digest).await? else { return Ok(None) };
        let tags = self.db.tags_of(&[row.id]).await?.into_iter().map(|t| t.name).collect();
        let change =
            ContentChange::DeleteArtifact { repository: repository.to_string(), digest: digest.to_string(), tags };
        self.check(&change).await?;
        let deleted = self.db.delete_artifact(repository_id, digest).await;
        self.caches.changed(Change::Repository(repository.to_string())).await;
        match deleted? {
            DeletedArtifact::NotFound => Ok(None),
            DeletedArtifact::Referenced(parent) => Err(RegistryError::Refused {
                refusal: Refusal::Precondition,
                message: format!("artifact {repository}@{digest} is referenced by {parent}; delete that first"),
            }),
            DeletedArtifact::Deleted(digests) => {
                self.publish(change, digests);
                Ok(Some(()))
            }
        }
    }

    /// Adds a tag to an artifact; a tag of that name already in the repository is a conflict.
    pub async fn add_tag(
        &self,
        repository_id: i64,
        repository: &str,
        manifest_id: i64,
        digest: &str,
        tag: &str,
    ) -> Result<(), RegistryError> {
        Tag::parse(tag).map_err(|e| RegistryError::client(ErrorCode::ManifestInvalid, e.to_string()))?;
        let change =
            ContentChange::AddTag { repository: repository.to_string(), digest: digest.to_string(), tag: tag.into() };
        self.check(&change).await?;
        let created = self.db.create_tag(repository_id, tag, manifest_id).await;
        self.caches.changed(Change::Repository(repository.to_string())).await;
        match created {
            Ok(()) => {}
            Err(berth_db::DbError::Conflict(what)) => {
                return Err(RegistryError::Refused {
                    refusal: Refusal::Conflict,
                    message: format!("{what} already exists in {repository}"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.publish(change, Vec::new());
        Ok(())
    }

    /// Removes a tag; the artifact stays. `None`: the tag does not name `digest`.
    pub async fn delete_tag(
        &self,
        repository_id: i64,
        repository: &str,
        digest: &str,
        tag: &str,
    ) -> Result<Option<()>, RegistryError> {
        match self.db.manifest_by_tag(repository_id, tag).await? {
            Some(row) if row.digest == digest => {}
            _ => return Ok(None),
        }
        let change = ContentChange::DeleteTag {
            repository: repository.to_string(),
            digest: digest.to_string(),
            tag: tag.into(),
        };
        self.check(&change).await?;
        let deleted = self.db.delete_tag(repository_id, tag).await;
        self.caches.changed(Change::Repository(repository.to_string())).await;
        if !deleted? {
            return Ok(None);
        }
        self.publish(change, Vec::new());
        Ok(Some(()))
    }

    /// Copies an artifact, with what it references and its accessories, from repository
    /// `from_id` into `to` (created in `to_project` if need be), pointing `tag` at it there.
    /// `None`: the source does not hold it.
    pub async fn copy(
        &self,
        from_id: i64,
        from: &str,
        to: &RepositoryName,
        digest: &str,
        tag: Option<&str>,
    ) -> Result<Option<()>, RegistryError> {
        let change = ContentChange::Copy {
            from: from.to_string(),
            repository: to.as_str().to_string(),
            digest: digest.to_string(),
            tag: tag.map(str::to_string),
        };
        self.check(&change).await?;
        let to_id = self.ensure_repository(to).await?;
        let copied = self.copy_rows(from_id, to_id, digest, tag).await;
        self.caches.changed(Change::Repository(to.as_str().to_string())).await;
        if copied?.is_none() {
            return Ok(None);
        }
        self.publish(change, Vec::new());
        Ok(Some(()))
    }

    async fn copy_rows(
        &self,
        from_id: i64,
        to_id: i64,
        digest: &str,
        tag: Option<&str>,
    ) -> Result<Option<()>, RegistryError> {
        let Some(copied) = self.db.copy_manifest(from_id, to_id, digest).await? else { return Ok(None) };
        if let Some(tag) = tag {
            self.db.put_tag(to_id, tag, copied).await?;
        }
        Ok(Some(()))
    }

    /// Deletes a repository and everything in it. `None`: there was none.
    pub async fn delete_repository(&self, repository_id: i64, repository: &str) -> Result<Option<()>, RegistryError> {
        let change = ContentChange::DeleteRepository { repository: repository.to_string() };
        self.check(&change).await?;
        let deleted = self.db.delete_repository(repository_id).await;
        self.caches.changed(Change::Repository(repository.to_string())).await;
        if !deleted? {
            return Ok(None);
        }
        self.publish(change, Vec::new());
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags() {
        let hex = "a".repeat(64);
        assert_eq!(
            cosign_tag_subject(&format!("sha256-{hex}.sig")),
            Some((format!("sha256:{hex}"), "signature.cosign"))
        );
        assert_eq!(
            cosign_tag_subject(&format!("sha256-{hex}.sbom")),
            Some((format!("sha256:{hex}"), "subject.accessory"))
        );
        assert_eq!(cosign_tag_subject(&format!("sha256-{hex}.txt")), None);
        assert_eq!(
            cosign_tag_subject(&format!("sha256-{hex}")),
            Some((format!("sha256:{hex}"), berth_db::REFERRERS_TAG_INDEX))
        );
        assert_eq!(cosign_tag_subject("sha256-abc.sig"), None);
        assert_eq!(cosign_tag_subject("v1.sig"), None);
    }
}
