//! Queries of the distribution model: repositories, blobs, manifests, tags and uploads.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::gc::BlobPin;
use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery, now_millis};

/// An upload session as recorded: the durable offset, and the hash state and the storage
/// driver's state at that offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub id: String,
    pub repository_id: i64,
    pub algorithm: String,
    pub offset: i64,
    pub hash_state: Vec<u8>,
    pub store_state: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub id: i64,
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub subject_digest: Option<String>,
    /// JSON object of string annotations, as stored.
    pub annotations: Option<String>,
}

/// A manifest to record, with what it references.
pub struct NewManifest<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: i64,
    pub artifact_type: Option<&'a str>,
    pub subject_digest: Option<&'a str>,
    pub annotations: Option<String>,
    /// Blobs (config, layers) that must be present in the repository, with the sizes their
    /// descriptors give.
    pub blobs: Vec<(&'a str, i64)>,
    /// Manifests that must be present in the repository, with their descriptors' sizes.
    pub manifests: Vec<(&'a str, i64)>,
    /// The subject this manifest is an accessory of, and Harbor's type of the accessory.
    pub accessory: Option<(String, &'static str)>,
    /// Harbor's `extra_attrs`, as JSON, where the content has them.
    pub extra_attrs: Option<String>,
    /// An index's manifest descriptors, as a JSON array.
    pub child_descriptors: Option<String>,
    /// The digest of the layer that is the artifact's icon.
    pub icon: Option<String>,
    /// A scan to queue with the push (the project scans on push), unless the artifact has a
    /// report from that scanner already.
    pub scan: Option<crate::scans::ScanRequest<'a>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    #[error("manifest references {0}, which is not in the repository")]
    MissingChild(String),
    /// A descriptor's size is not the size of the content it names.
    #[error("the descriptor of {digest} gives {declared} bytes, but it has {actual}")]
    SizeMismatch { digest: String, declared: i64, actual: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        PutManifestError::Db(e.into())
    }
}

/// The `accessory_type` of an OCI 1.1 referrers tag schema index (`sha256-<hex>`): kept with
/// its subject, listed nowhere, and never holding its entries back from deletion.
pub const REFERRERS_TAG_INDEX: &str = "referrers.index";

/// What [`Db::delete_artifact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletedArtifact {
    NotFound,
    /// Not deleted: the index of this digest references it.
    Referenced(String),
    /// The digests deleted, the artifact's first.
    Deleted(Vec<String>),
}

/// A repository as Harbor's API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRow {
    pub id: i64,
    pub project_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What `q` and `sort` may name when listing repositories.
const REPOSITORY_FIELDS: &[Field] = &[
    Field { key: "name", source: Source::Column("r.name"), kind: Kind::Text, sortable: true },
    Field { key: "id", source: Source::Column("r.id"), kind: Kind::Int, sortable: true },
    Field { key: "project_id", source: Source::Column("r.project_id"), kind: Kind::Int, sortable: true },
    Field { key: "pull_count", source: Source::Column("r.pull_count"), kind: Kind::Int, sortable: true },
    Field { key: "creation_time", source: Source::Column("r.created_at"), kind: Kind::Time, sortable: true },
    Field { key: "update_time", source: Source::Column("r.updated_at"), kind: Kind::Time, sortable: true },
];

fn repository_row(r: &AnyRow) -> Result<RepositoryRow, sqlx::Error> {
    Ok(RepositoryRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        name: r.try_get(2)?,
        description: r.try_get(3)?,
        artifact_count: r.try_get(4)?,
        pull_count: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

const REPOSITORY_COLUMNS: &str = concat!(
    "r.id, r.project_id, r.name, r.description, (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id AND ",
    top_level!(),
    "), r.pull_count, r.created_at, r.updated_at"
);

/// Which manifests an artifact listing includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactScope {
    /// Harbor's default: neither accessories nor the untagged children of an index.
    TopLevel,
    /// Every manifest (Harbor's `q=base=*`).
    All,
}

/// A manifest as Harbor's artifact API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub id: i64,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    pub size: i64,
    pub created_at: i64,
    pub pull_time: Option<i64>,
    pub repository_id: i64,
    pub repository_name: String,
    pub project_id: Option<i64>,
    /// The subject, when this manifest is an accessory.
    pub accessory_of: Option<String>,
    pub accessory_type: Option<String>,
    /// Harbor's `extra_attrs` (JSON), read from the content when it was pushed.
    pub extra_attrs: Option<String>,
    /// An index's manifest descriptors (a JSON array).
    pub child_descriptors: Option<String>,
    /// The digest of the layer that is its icon, if it has one of its own.
    pub icon: Option<String>,
}

const ARTIFACT_COLUMNS: &str = "m.id, m.digest, m.media_type, m.artifact_type, m.annotations, \
    CAST(m.size + COALESCE((SELECT SUM(b.size) FROM manifest_children c JOIN blobs b ON b.digest = c.digest \
                       WHERE c.manifest_id = m.id AND c.kind = 'blob'), 0) AS BIGINT), m.created_at, m.pull_time, m.repository_id, \
    (SELECT ar.name FROM repositories ar WHERE ar.id = m.repository_id), \
    (SELECT ar.project_id FROM repositories ar WHERE ar.id = m.repository_id), m.accessory_of, m.accessory_type, \
    m.extra_attrs, m.child_descriptors, m.icon";

/// What `q` and `sort` may name when listing artifacts.
const ARTIFACT_FIELDS: &[Field] = &[
    Field { key: "id", source: Source::Column("m.id"), kind: Kind::Int, sortable: true },
    Field { key: "digest", source: Source::Column("m.digest"), kind: Kind::Text, sortable: true },
    Field { key: "media_type", source: Source::Column("m.media_type"), kind: Kind::Text, sortable: true },
    Field { key: "artifact_type", source: Source::Column("m.artifact_type"), kind: Kind::Text, sortable: true },
    Field { key: "push_time", source: Source::Column("m.created_at"), kind: Kind::Time, sortable: true },
    Field { key: "pull_time", source: Source::Column("m.pull_time"), kind: Kind::Time, sortable: true },
    Field {
        key: "tags",
        source: Source::Related { from_where: "SELECT 1 FROM tags t WHERE t.manifest_id = m.id", column: "t.name" },
        kind: Kind::Text,
        sortable: false,
    },
    Field {
        key: "labels",
        source: Source::Related {
            from_where: "SELECT 1 FROM artifact_labels al WHERE al.manifest_id = m.id",
            column: "al.label_id",
        },
        kind: Kind::Int,
        sortable: false,
    },
];

fn artifact_row(r: &AnyRow) -> Result<ArtifactRow, sqlx::Error> {
    Ok(ArtifactRow {
        id: r.try_get(0)?,
        digest: r.try_get(1)?,
        media_type: r.try_get(2)?,
        artifact_type: r.try_get(3)?,
        annotations: r.try_get(4)?,
        size: r.try_get(5)?,
        created_at: r.try_get(6)?,
        pull_time: r.try_get(7)?,
        repository_id: r.try_get(8)?,
        repository_name: r.try_get(9)?,
        project_id: r.try_get(10)?,
        accessory_of: r.try_get(11)?,
        accessory_type: r.try_get(12)?,
        extra_attrs: r.try_get(13)?,
        child_descriptors: r.try_get(14)?,
        icon: r.try_get(15)?,
    })
}

/// A tag as Harbor's API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub id: i64,
    pub manifest_id: i64,
    pub name: String,
    pub updated_at: i64,
}

/// The columns [`manifest_row`] reads, as a literal so that queries stay `&'static str`.
macro_rules! manifest_columns {
    () => {
        "m.id, m.digest, m.media_type, m.size, m.artifact_type, m.subject_digest, m.annotations"
    };
}

fn manifest_row(r: &AnyRow) -> Result<ManifestRow, sqlx::Error> {
    Ok(ManifestRow {
        id: r.try_get(0)?,
        digest: r.try_get(1)?,
        media_type: r.try_get(2)?,
        size: r.try_get(3)?,
        artifact_type: r.try_get(4)?,
        subject_digest: r.try_get(5)?,
        annotations: r.try_get(6)?,
    })
}

impl Db {
    // ---- repositories

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn repository_id(&self, name: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The repository's id, creating it in `project_id` on first use.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn ensure_repository(&self, name: &str, project_id: i64) -> Result<i64, DbError> {
        if let Some(id) = self.repository_id(name).await? {
            return Ok(id);
        }
        let mut w = self.begin_write().await?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO repositories (name, project_id, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(project_id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let id =
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1").bind(name).fetch_one(&mut *w.tx).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Names of repositories holding at least one manifest, in lexical order, after `last`;
    /// with `visible_to: Some(user id)` only those in public projects or projects the user is a
    /// member of (`Some(0)`: public projects only, for anonymous callers).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn catalog(
        &self,
        limit: i64,
        last: Option<&str>,
        visible_to: Option<i64>,
    ) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM repositories r WHERE r.name > $1 \
             AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) \
             AND ($3 < 0 OR r.project_id IN ( \
                 SELECT project_id FROM project_metadata WHERE name = 'public' AND value = 'true' \
                 UNION SELECT project_id FROM project_members WHERE entity_type = 'u' AND entity_id = $3)) \
             ORDER BY r.name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .bind(visible_to.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Repositories, optionally of one project and only those visible to `visible_to` (as in
    /// [`Db::catalog`]), filtered and ordered by `query` (by name unless asked otherwise): one
    /// page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_repositories(
        &self,
        project_id: Option<i64>,
        visible_to: Option<i64>,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RepositoryRow>, i64), DbError> {
        let listing = Listing {
            columns: REPOSITORY_COLUMNS,
            from: "FROM repositories r WHERE ($1 < 0 OR r.project_id = $1) \
                 AND ($2 < 0 OR r.project_id IN ( \
                     SELECT project_id FROM project_metadata WHERE name = 'public' AND value = 'true' \
                     UNION SELECT project_id FROM project_members WHERE entity_type = 'u' AND entity_id = $2))",
            fixed: vec![Arg::Int(project_id.unwrap_or(-1)), Arg::Int(visible_to.unwrap_or(-1))],
            fields: REPOSITORY_FIELDS,
            default_order: "r.name",
            tie_break: "r.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(repository_row).collect::<Result<_, _>>()?, total))
    }

    /// Repositories in public and in private projects, among those visible to `visible_to`
    /// (as in [`Db::catalog`]).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn repository_counts(&self, visible_to: Option<i64>) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN pub.project_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN pub.project_id IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM repositories r \
             LEFT JOIN (SELECT project_id FROM project_metadata WHERE name = 'public' AND value = 'true') pub \
               ON pub.project_id = r.project_id \
             WHERE ($1 < 0 OR pub.project_id IS NOT NULL OR r.project_id IN \
               (SELECT project_id FROM project_members WHERE entity_type = 'u' AND entity_id = $1))",
        )
        .bind(visible_to.unwrap_or(-1))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Bytes of all stored blobs.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn storage_consumption(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs").fetch_one(&self.pool).await?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn repository(&self, name: &str) -> Result<Option<RepositoryRow>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPOSITORY_COLUMNS} FROM repositories r WHERE r.name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(repository_row).transpose()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_repository_description(&self, id: i64, description: &str) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query("UPDATE repositories SET description = $1, updated_at = $2 WHERE id = $3")
                    .bind(description)
                    .bind(now_millis())
                    .bind(id),
            )
            .await?;
        Ok(done == 1)
    }

    /// Deletes a repository with its manifests, tags, blob links and upload sessions (the
    /// bytes go when garbage collection finds them unreferenced).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_repository(&self, id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let (name, project_id) = repository_in(&mut w.tx, id).await?;
        let done =
            sqlx::query("DELETE FROM repositories WHERE id = $1").bind(id).execute(&mut *w.tx).await?.rows_affected()
                == 1;
        if done {
            w.audit(AuditEvent::new("delete", "repository", name).in_project(project_id));
        }
        w.commit().await?;
        Ok(done)
    }

    // ---- artifacts (Harbor's view of manifests)

    /// Records pulls in one transaction: each manifest's latest pull time (never moved
    /// backwards) and each repository's added count.
    /// With them, the pulls' audit records: (who pulled what, the latest time, how many times).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn record_pulls(
        &self,
        manifests: &[(i64, i64)],
        repositories: &[(i64, i64)],
        audits: &[(crate::audit::PullAudit, i64, u64)],
    ) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        let mut projects = std::collections::HashMap::new();
        for (pull, at, count) in audits {
            let project_id = match projects.get(&pull.repository_id) {
                Some(p) => *p,
                None => {
                    let (_, p) = repository_in(&mut w.tx, pull.repository_id).await?;
                    projects.insert(pull.repository_id, p);
                    p
                }
            };
            let mut event = AuditEvent::new("pull", "artifact", pull.resource.clone()).in_project(project_id);
            if *count > 1 {
                event = event.described(format!("pull artifact: {} ({count} times)", pull.resource));
            }
            w.audit_record(crate::AuditRecord {
                id: 0,
                op_time: *at,
                username: pull.username.clone(),
                source: pull.source.clone(),
                event,
                prev_hash: String::new(),
                hash: String::new(),
            });
        }
        for (id, at) in manifests {
            sqlx::query("UPDATE manifests SET pull_time = $1 WHERE id = $2 AND (pull_time IS NULL OR pull_time < $1)")
                .bind(*at)
                .bind(*id)
                .execute(&mut *w.tx)
                .await?;
        }
        for (id, n) in repositories {
            sqlx::query("UPDATE repositories SET pull_count = pull_count + $1 WHERE id = $2")
                .bind(*n)
                .bind(*id)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Artifacts of a repository, filtered and ordered by `query` (newest first unless asked
    /// otherwise): one page and the total. `size` is the manifest's bytes plus those of the
    /// blobs it references, as Harbor counts.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_artifacts(
        &self,
        repository_id: i64,
        scope: ArtifactScope,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ArtifactRow>, i64), DbError> {
        let listing = Listing {
            columns: ARTIFACT_COLUMNS,
            from: match scope {
                ArtifactScope::TopLevel => concat!("FROM manifests m WHERE m.repository_id = $1 AND ", top_level!()),
                ArtifactScope::All => "FROM manifests m WHERE m.repository_id = $1",
            },
            fixed: vec![Arg::Int(repository_id)],
            fields: ARTIFACT_FIELDS,
            default_order: "m.created_at DESC",
            tie_break: "m.id DESC",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(artifact_row).collect::<Result<_, _>>()?, total))
    }

    /// Artifacts of every repository of a project, filtered and ordered by `query` (newest
    /// first unless asked otherwise): one page and the total. With `latest_in_repository`,
    /// only the newest of each repository among those matching `query`.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_project_artifacts(
        &self,
        project_id: i64,
        scope: ArtifactScope,
        latest_in_repository: bool,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ArtifactRow>, i64), DbError> {
        let in_project = match scope {
            ArtifactScope::TopLevel => concat!(
                "FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.project_id = $1 AND ",
                top_level!()
            ),
            ArtifactScope::All => {
                "FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.project_id = $1"
            }
        };
        if !latest_in_repository {
            let listing = Listing {
                columns: ARTIFACT_COLUMNS,
                from: in_project,
                fixed: vec![Arg::Int(project_id)],
                fields: ARTIFACT_FIELDS,
                default_order: "m.created_at DESC",
                tie_break: "m.id DESC",
            };
            let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
            return Ok((rows.iter().map(artifact_row).collect::<Result<_, _>>()?, total));
        }
        // The filter picks candidates; a window over each repository keeps the newest; the
        // outer listing only orders and pages them.
        let filter = ListQuery { terms: query.terms.clone(), sort: Vec::new() };
        let inner =
            crate::listing::compile(ARTIFACT_FIELDS, &filter, 2, "m.id", "m.id").map_err(DbError::InvalidQuery)?;
        let from = format!(
            "FROM manifests m WHERE m.id IN (SELECT latest.id FROM (SELECT m.id, ROW_NUMBER() OVER \
             (PARTITION BY m.repository_id ORDER BY m.created_at DESC, m.id DESC) AS rn {in_project} AND {}) latest \
             WHERE latest.rn = 1)",
            inner.condition
        );
        let mut fixed = vec![Arg::Int(project_id)];
        fixed.extend(inner.args);
        let listing = Listing {
            columns: ARTIFACT_COLUMNS,
            from: &from,
            fixed,
            fields: ARTIFACT_FIELDS,
            default_order: "m.created_at DESC",
            tie_break: "m.id DESC",
        };
        let order_only = ListQuery { terms: Vec::new(), sort: query.sort.clone() };
        let (rows, total) = self.list_page(&listing, &order_only, limit, offset).await?;
        Ok((rows.iter().map(artifact_row).collect::<Result<_, _>>()?, total))
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn artifact(&self, repository_id: i64, digest: &str) -> Result<Option<ArtifactRow>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ARTIFACT_COLUMNS} FROM manifests m WHERE m.repository_id = $1 AND m.digest = $2"
        )))
        .bind(repository_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(artifact_row).transpose()?)
    }

    /// Tags of the given manifests, by name.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn tags_of(&self, manifest_ids: &[i64]) -> Result<Vec<TagRow>, DbError> {
        let sql = "SELECT id, manifest_id, name, updated_at FROM tags WHERE manifest_id IN ({ids}) ORDER BY name";
        let rows = self.fetch_by_ids(sql, manifest_ids).await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(TagRow {
                    id: r.try_get(0)?,
                    manifest_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    updated_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The accessories of `subject` in a repository, oldest first.
    #[tracing::instrument(level = "info", skip_all)]
    /// The projects (a few of them) holding an artifact whose icon is `digest`, for the icon
    /// endpoint to find one the caller may read.
    pub async fn icon_projects(&self, digest: &str) -> Result<Vec<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.project_id FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             WHERE m.icon = $1 AND r.project_id IS NOT NULL ORDER BY r.project_id LIMIT 20",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The accessories Harbor lists under `subject` (not a referrers tag index).
    pub async fn accessories_of(&self, repository_id: i64, subject: &str) -> Result<Vec<ArtifactRow>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ARTIFACT_COLUMNS} FROM manifests m WHERE m.repository_id = $1 AND m.accessory_of = $2 \
             AND m.accessory_type <> $3 ORDER BY m.created_at, m.id"
        )))
        .bind(repository_id)
        .bind(subject)
        .bind(REFERRERS_TAG_INDEX)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(artifact_row).collect::<Result<_, _>>()?)
    }

    /// Child manifests the given indexes reference: (index id, child digest, the child's id in
    /// the index's repository), by digest.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn references_of(&self, manifest_ids: &[i64]) -> Result<Vec<(i64, String, Option<i64>)>, DbError> {
        let sql = "SELECT c.manifest_id, c.digest, m.id FROM manifest_children c \
                   JOIN manifests p ON p.id = c.manifest_id \
                   LEFT JOIN manifests m ON m.repository_id = p.repository_id AND m.digest = c.digest \
                   WHERE c.kind = 'manifest' AND c.manifest_id IN ({ids}) ORDER BY c.digest";
        let rows = self.fetch_by_ids(sql, manifest_ids).await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Points a tag at a manifest, moving it if it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn put_tag(&self, repository_id: i64, name: &str, manifest_id: i64) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        sqlx::query(
            "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
        )
        .bind(repository_id)
        .bind(name)
        .bind(manifest_id)
        .bind(now_millis())
        .execute(&mut *w.tx)
        .await?;
        w.quota_check(quota).await?;
        w.commit().await?;
        Ok(())
    }

    /// Points a new tag at a manifest; an existing tag of that name is a conflict.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_tag(&self, repository_id: i64, name: &str, manifest_id: i64) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        sqlx::query("INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(repository_id)
            .bind(name)
            .bind(manifest_id)
            .bind(now_millis())
            .execute(&mut *w.tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(format!("the tag {name}")),
                _ => DbError::Sqlx(e),
            })?;
        w.quota_check(quota).await?;
        w.commit().await?;
        Ok(())
    }

    /// Copies a manifest, and the child manifests and blob links it needs, from one repository
    /// to another, in one transaction. Returns the new manifest's id, or `None` when the source
    /// does not hold it.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn copy_manifest(&self, from_repo: i64, to_repo: i64, digest: &str) -> Result<Option<i64>, DbError> {
        let mut w = self.begin_write().await?;
        let quota = w.quota_guard(self.dialect, to_repo).await?;
        // Walk the manifest graph breadth first; copying in reverse order puts children first.
        let mut order: Vec<String> = vec![digest.to_string()];
        let mut i = 0;
        while i < order.len() {
            let children: Vec<String> = sqlx::query_scalar(
                "SELECT c.digest FROM manifest_children c JOIN manifests m ON m.id = c.manifest_id \
                 WHERE m.repository_id = $1 AND m.digest = $2 AND c.kind = 'manifest'",
            )
            .bind(from_repo)
            .bind(&order[i])
            .fetch_all(&mut *w.tx)
            .await?;
            // Accessories are hard references: they travel with their subject, as in Harbor.
            let accessories: Vec<String> =
                sqlx::query_scalar("SELECT digest FROM manifests WHERE repository_id = $1 AND accessory_of = $2")
                    .bind(from_repo)
                    .bind(&order[i])
                    .fetch_all(&mut *w.tx)
                    .await?;
            for c in children.into_iter().chain(accessories) {
                if !order.contains(&c) {
                    order.push(c);
                }
            }
            i += 1;
        }
        let now = now_millis();
        let mut top = None;
        for d in order.iter().rev() {
            let Some(src_id): Option<i64> =
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(from_repo)
                    .bind(d)
                    .fetch_optional(&mut *w.tx)
                    .await?
            else {
                return Ok(None);
            };
            sqlx::query(
                "INSERT INTO repository_blobs (repository_id, digest, created_at) \
                 SELECT $1, c.digest, $2 FROM manifest_children c WHERE c.manifest_id = $3 AND c.kind = 'blob' \
                 AND EXISTS (SELECT 1 FROM blobs b WHERE b.digest = c.digest) ON CONFLICT DO NOTHING",
            )
            .bind(to_repo)
            .bind(now)
            .bind(src_id)
            .execute(&mut *w.tx)
            .await?;
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(to_repo)
                    .bind(d)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            let id = match existing {
                Some(id) => id,
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO manifests (repository_id, digest, media_type, size, artifact_type, subject_digest, annotations, created_at, \
                         accessory_of, accessory_type, extra_attrs, child_descriptors, icon) \
                         SELECT $1, digest, media_type, size, artifact_type, subject_digest, annotations, $2, accessory_of, accessory_type, \
                         extra_attrs, child_descriptors, icon \
                         FROM manifests WHERE id = $3 RETURNING id",
                    )
                    .bind(to_repo)
                    .bind(now)
                    .bind(src_id)
                    .fetch_one(&mut *w.tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO manifest_children (manifest_id, digest, kind) \
                         SELECT $1, digest, kind FROM manifest_children WHERE manifest_id = $2",
                    )
                    .bind(id)
                    .bind(src_id)
                    .execute(&mut *w.tx)
                    .await?;
                    id
                }
            };
            top = Some(id);
        }
        w.quota_check(quota).await?;
        w.commit().await?;
        Ok(top)
    }

    // ---- blobs

    /// The size of a blob if the repository may serve it.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn repository_blob_size(&self, repository_id: i64, digest: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repository_id = $1 AND rb.digest = $2",
        )
        .bind(repository_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The size of a blob stored for any repository.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn blob_size(&self, digest: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Names of the repositories that may serve a blob (to find a source for a mount).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn repositories_with_blob(&self, digest: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
             WHERE rb.digest = $1 ORDER BY r.name",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that a blob just written under `pin` exists and that the repository may serve
    /// it; the pin goes in the same transaction.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn link_blob(&self, repository_id: i64, digest: &str, size: i64, pin: &BlobPin) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        w.lock_digests_shared(self.dialect, &[digest]).await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        link_blob_in(&mut w.tx, repository_id, digest, size).await?;
        w.quota_check(quota).await?;
        w.release_pin(Some(pin)).await?;
        w.commit().await?;
        Ok(())
    }

    /// Lets the repository serve a blob already stored (a mount), if it still is: a blob a
    /// collection has condemned meanwhile is not linked. Returns whether it was.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn link_stored_blob(&self, repository_id: i64, digest: &str) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        w.lock_digests_shared(self.dialect, &[digest]).await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        let linked = sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) \
             SELECT $1, b.digest, $3 FROM blobs b WHERE b.digest = $2 \
             AND NOT EXISTS (SELECT 1 FROM blob_tombstones t WHERE t.digest = b.digest) \
             ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = excluded.created_at",
        )
        .bind(repository_id)
        .bind(digest)
        .bind(now_millis())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        let held = linked > 0 || {
            let there: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                    .bind(repository_id)
                    .bind(digest)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            there.is_some()
        };
        w.quota_check(quota).await?;
        w.commit().await?;
        Ok(held)
    }

    /// Removes a blob from a repository. Returns whether it was there.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn unlink_blob(&self, repository_id: i64, digest: &str) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query("DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                    .bind(repository_id)
                    .bind(digest),
            )
            .await?;
        Ok(done > 0)
    }

    // ---- uploads

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_upload(&self, u: &UploadRow) -> Result<(), DbError> {
        self.write_one(
            sqlx::query(
                "INSERT INTO uploads (id, repository_id, algorithm, byte_offset, hash_state, store_state, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&u.id)
            .bind(u.repository_id)
            .bind(&u.algorithm)
            .bind(u.offset)
            .bind(&u.hash_state)
            .bind(&u.store_state)
            .bind(u.created_at),
        )
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, repository_id, algorithm, byte_offset, hash_state, store_state, created_at FROM uploads \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(UploadRow {
                id: r.try_get(0)?,
                repository_id: r.try_get(1)?,
                algorithm: r.try_get(2)?,
                offset: r.try_get(3)?,
                hash_state: r.try_get(4)?,
                store_state: r.try_get(5)?,
                created_at: r.try_get(6)?,
            }),
            None => None,
        })
    }

    /// Records a new durable offset, if the upload is still at `from` (another request may have
    /// moved it meanwhile). Returns whether it was recorded.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn advance_upload(
        &self,
        id: &str,
        from: i64,
        to: i64,
        hash_state: &[u8],
        store_state: &[u8],
    ) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query(
                    "UPDATE uploads SET byte_offset = $1, hash_state = $2, store_state = $3, updated_at = $4 \
             WHERE id = $5 AND byte_offset = $6",
                )
                .bind(to)
                .bind(hash_state)
                .bind(store_state)
                .bind(now_millis())
                .bind(id)
                .bind(from),
            )
            .await?;
        Ok(done == 1)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_upload(&self, id: &str) -> Result<bool, DbError> {
        let done = self.write_one(sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id)).await?;
        Ok(done > 0)
    }

    /// Ends an upload whose bytes were published as `digest`: the session goes, the blob is
    /// linked to the repository, in one transaction.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn complete_upload(
        &self,
        id: &str,
        repository_id: i64,
        digest: &str,
        size: i64,
        pin: &BlobPin,
    ) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        w.lock_digests_shared(self.dialect, &[digest]).await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(&mut *w.tx).await?;
        link_blob_in(&mut w.tx, repository_id, digest, size).await?;
        w.quota_check(quota).await?;
        w.release_pin(Some(pin)).await?;
        w.commit().await?;
        Ok(())
    }

    // ---- manifests and tags

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn manifest_by_digest(&self, repository_id: i64, digest: &str) -> Result<Option<ManifestRow>, DbError> {
        let sql =
            concat!("SELECT ", manifest_columns!(), " FROM manifests m WHERE m.repository_id = $1 AND m.digest = $2");
        let row = sqlx::query(sql).bind(repository_id).bind(digest).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(manifest_row).transpose()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn manifest_by_tag(&self, repository_id: i64, tag: &str) -> Result<Option<ManifestRow>, DbError> {
        let sql = concat!(
            "SELECT ",
            manifest_columns!(),
            " FROM tags t JOIN manifests m ON m.id = t.manifest_id WHERE t.repository_id = $1 AND t.name = $2"
        );
        let row = sqlx::query(sql).bind(repository_id).bind(tag).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(manifest_row).transpose()?)
    }

    /// Records a manifest (idempotently) and points `tags` at it, after checking, in the same
    /// transaction, that everything it references is in the repository.
    #[tracing::instrument(level = "info", skip_all)]
    /// Whether every child `m` names is in the repository with the size its descriptor gives:
    /// the check a manifest must pass before anything of it is stored.
    pub async fn check_manifest_children(
        &self,
        repository_id: i64,
        m: &NewManifest<'_>,
    ) -> Result<(), PutManifestError> {
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        check_children(&mut conn, repository_id, m).await
    }

    pub async fn put_manifest(
        &self,
        repository_id: i64,
        m: &NewManifest<'_>,
        tags: &[&str],
        pin: &BlobPin,
    ) -> Result<(), PutManifestError> {
        let mut w = self.begin_write().await?;
        // Before the check: a collection deciding on a child waits, or has decided (db::gc).
        let children: Vec<&str> = m.blobs.iter().chain(m.manifests.iter()).map(|(d, _)| *d).collect();
        w.lock_digests_shared(self.dialect, &children).await?;
        let quota = w.quota_guard(self.dialect, repository_id).await?;
        // Checked again inside the write: a child deleted since the caller's check is caught.
        check_children(&mut w.tx, repository_id, m).await?;
        w.release_pin(Some(pin)).await?;
        let now = now_millis();
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                .bind(repository_id)
                .bind(m.digest)
                .fetch_optional(&mut *w.tx)
                .await?;
        let manifest_id = match existing {
            Some(id) => {
                // Pushed before by digest, now under cosign's tag scheme: an accessory from now on.
                if let Some((subject, kind)) = &m.accessory {
                    sqlx::query(
                        "UPDATE manifests SET accessory_of = $1, accessory_type = $2 WHERE id = $3 AND accessory_of IS NULL",
                    )
                    .bind(subject.as_str())
                    .bind(*kind)
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                }
                id
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO manifests (repository_id, digest, media_type, size, artifact_type, subject_digest, annotations, created_at, \
                     accessory_of, accessory_type, extra_attrs, child_descriptors, icon) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                )
                .bind(repository_id)
                .bind(m.digest)
                .bind(m.media_type)
                .bind(m.size)
                .bind(m.artifact_type)
                .bind(m.subject_digest)
                .bind(m.annotations.as_deref())
                .bind(now)
                .bind(m.accessory.as_ref().map(|(s, _)| s.as_str()))
                .bind(m.accessory.as_ref().map(|(_, t)| *t))
                .bind(m.extra_attrs.as_deref())
                .bind(m.child_descriptors.as_deref())
                .bind(m.icon.as_deref())
                .fetch_one(&mut *w.tx)
                .await?;
                for (kind, digests) in [("blob", &m.blobs), ("manifest", &m.manifests)] {
                    for (digest, _) in digests.iter() {
                        sqlx::query(
                            "INSERT INTO manifest_children (manifest_id, digest, kind) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(*digest)
                        .bind(kind)
                        .execute(&mut *w.tx)
                        .await?;
                    }
                }
                id
            }
        };
        for tag in tags {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
            )
            .bind(repository_id)
            .bind(*tag)
            .bind(manifest_id)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query("UPDATE repositories SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(repository_id)
            .execute(&mut *w.tx)
            .await?;
        let (name, project_id) = repository_in(&mut w.tx, repository_id).await?;
        let resource = match tags.first() {
            Some(tag) => format!("{name}:{tag}"),
            None => format!("{name}@{}", m.digest),
        };
        w.audit(AuditEvent::new("create", "artifact", resource).in_project(project_id));
        if let Some(scan) = &m.scan {
            crate::scans::scan_on_push(&mut w.tx, scan).await?;
        }
        w.quota_check(quota).await?;
        w.commit().await?;
        Ok(())
    }

    /// Deletes an artifact deeply, in one transaction: the manifest with its tags, its
    /// accessories (recursively), and the child manifests of an index that nothing else in the
    /// repository references and no tag names. A manifest that an index still references is
    /// not deleted (`Referenced`), since the index would then name content that is gone.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_artifact(&self, repository_id: i64, digest: &str) -> Result<DeletedArtifact, DbError> {
        let mut w = self.begin_write().await?;
        let top: Option<i64> = sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
            .bind(repository_id)
            .bind(digest)
            .fetch_optional(&mut *w.tx)
            .await?;
        let Some(top) = top else { return Ok(DeletedArtifact::NotFound) };
        let parent: Option<String> = sqlx::query_scalar(
            "SELECT pm.digest FROM manifest_children pc JOIN manifests pm ON pm.id = pc.manifest_id \
             WHERE pc.kind = 'manifest' AND pc.digest = $1 AND pm.repository_id = $2 \
             AND COALESCE(pm.accessory_type, '') <> $3 ORDER BY pm.digest LIMIT 1",
        )
        .bind(digest)
        .bind(repository_id)
        // A referrers tag index lists referrers; it does not hold them.
        .bind(REFERRERS_TAG_INDEX)
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(parent) = parent {
            return Ok(DeletedArtifact::Referenced(parent));
        }
        // (id, digest) of everything that goes, grown until nothing more joins.
        let mut doomed: Vec<(i64, String)> = vec![(top, digest.to_string())];
        let mut i = 0;
        while i < doomed.len() {
            let (id, d) = doomed[i].clone();
            i += 1;
            let accessories: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, digest FROM manifests WHERE repository_id = $1 AND accessory_of = $2")
                    .bind(repository_id)
                    .bind(&d)
                    .fetch_all(&mut *w.tx)
                    .await?;
            let children: Vec<(i64, String)> = sqlx::query_as(
                "SELECT m.id, m.digest FROM manifest_children c JOIN manifests m \
                 ON m.digest = c.digest AND m.repository_id = $1 \
                 WHERE c.manifest_id = $2 AND c.kind = 'manifest' \
                 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)",
            )
            .bind(repository_id)
            .bind(id)
            .fetch_all(&mut *w.tx)
            .await?;
            for candidate in accessories {
                if !doomed.iter().any(|(x, _)| *x == candidate.0) {
                    doomed.push(candidate);
                }
            }
            for child in children {
                if doomed.iter().any(|(x, _)| *x == child.0) {
                    continue;
                }
                let parents: Vec<i64> = sqlx::query_scalar(
                    "SELECT pm.id FROM manifest_children pc JOIN manifests pm ON pm.id = pc.manifest_id \
                     WHERE pc.kind = 'manifest' AND pc.digest = $1 AND pm.repository_id = $2",
                )
                .bind(&child.1)
                .bind(repository_id)
                .fetch_all(&mut *w.tx)
                .await?;
                if parents.iter().all(|p| doomed.iter().any(|(x, _)| x == p)) {
                    doomed.push(child);
                }
            }
        }
        for (id, _) in &doomed {
            sqlx::query("DELETE FROM manifests WHERE id = $1").bind(*id).execute(&mut *w.tx).await?;
        }
        let (name, project_id) = repository_in(&mut w.tx, repository_id).await?;
        w.audit(AuditEvent::new("delete", "artifact", format!("{name}@{digest}")).in_project(project_id));
        w.commit().await?;
        Ok(DeletedArtifact::Deleted(doomed.into_iter().map(|(_, d)| d).collect()))
    }

    /// Deletes a tag, leaving its manifest. Returns whether it existed.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_tag(&self, repository_id: i64, tag: &str) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2").bind(repository_id).bind(tag),
            )
            .await?;
        Ok(done > 0)
    }

    /// Tags of a repository in lexical order, after `last`.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn tags(&self, repository_id: i64, limit: i64, last: Option<&str>) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3")
            .bind(repository_id)
            .bind(last.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Manifests whose subject is `subject`, optionally only those of one artifact type.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn referrers(
        &self,
        repository_id: i64,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestRow>, DbError> {
        let sql = concat!(
            "SELECT ",
            manifest_columns!(),
            " FROM manifests m WHERE m.repository_id = $1 AND m.subject_digest = $2",
            " AND ($3 = '' OR m.artifact_type = $3) ORDER BY m.created_at, m.digest"
        );
        let rows = sqlx::query(sql)
            .bind(repository_id)
            .bind(subject)
            .bind(artifact_type.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(manifest_row).collect::<Result<_, _>>()?)
    }
}

async fn link_blob_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    repository_id: i64,
    digest: &str,
    size: i64,
) -> Result<(), sqlx::Error> {
    let now = now_millis();
    // A blob pushed again is young again: the time window a collection leaves alone runs from
    // its last push (or its link could be collected before the manifest that follows it).
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(digest)
    .bind(size)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(repository_id)
    .bind(digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A repository's name and project, read in a writing transaction for its audit record.
async fn repository_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    repository_id: i64,
) -> Result<(String, i64), DbError> {
    let row = sqlx::query("SELECT name, project_id FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (repository_id.to_string(), 0),
    })
}

/// Every child of `m` present in the repository, with the size its descriptor gives.
async fn check_children(
    conn: &mut sqlx::AnyConnection,
    repository_id: i64,
    m: &NewManifest<'_>,
) -> Result<(), PutManifestError> {
    let queries = [
        (
            &m.blobs,
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repository_id = $1 AND rb.digest = $2",
        ),
        (&m.manifests, "SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2"),
    ];
    for (children, sql) in queries {
        for (digest, declared) in children.iter() {
            let size: Option<i64> =
                sqlx::query_scalar(sql).bind(repository_id).bind(*digest).fetch_optional(&mut *conn).await?;
            match size {
                None => return Err(PutManifestError::MissingChild(digest.to_string())),
                Some(actual) if actual != *declared => {
                    return Err(PutManifestError::SizeMismatch {
                        digest: digest.to_string(),
                        declared: *declared,
                        actual,
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
