//! Project quotas (Harbor's one resource, `storage`), and the check that keeps a project's
//! usage under its limit, exactly, however many replicas write at once.
//!
//! Usage is `project_stats.bytes`, which triggers keep as links and manifests come and go (a
//! blob counted once per project). A write that adds content to a repository opens a
//! [`QuotaGuard`] after its digest locks: on PostgreSQL it locks the project's `project_stats`
//! row, so writers to one project take turns from there to their commit (SQLite's writer turn
//! does this already), reads the usage and the limit, and after its inserts checks that the
//! usage did not grow past the limit; if it did, the write fails and its transaction rolls
//! back with nothing recorded. A write that adds no bytes (content the project holds already)
//! passes even when an administrator set the limit below the usage, as in Harbor.
//!
//! Beyond Harbor, a quota may also limit each repository of the project to a number of tags
//! and of artifacts (as Harbor's listings count them); the same guard counts them before and
//! after, and refuses a write that raises a count past its limit.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, Dialect, ListQuery, WriteTx, now_millis};

/// Harbor's largest limit: 1024 TiB.
pub const MAX_STORAGE: i64 = 1 << 50;

/// A project's quota with its usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    pub owner_name: String,
    /// Bytes; -1: unlimited.
    pub hard_storage: i64,
    pub used_storage: i64,
    /// Tags each repository may hold; -1: unlimited.
    pub hard_tags_per_repository: i64,
    /// Artifacts each repository may hold; -1: unlimited.
    pub hard_artifacts_per_repository: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "q.id, q.project_id, p.name, COALESCE(u.username, ''), q.hard_storage, \
    COALESCE(s.bytes, 0), q.created_at, q.updated_at, q.hard_tags_per_repository, q.hard_artifacts_per_repository";
const FROM: &str = "FROM project_quotas q JOIN projects p ON p.id = q.project_id \
    LEFT JOIN users u ON u.id = p.owner_id LEFT JOIN project_stats s ON s.project_id = q.project_id";

/// What `sort` may name (Harbor sorts quotas by `hard.storage` and `used.storage`).
const FIELDS: &[Field] = &[
    Field { key: "id", source: Source::Column("q.id"), kind: Kind::Int, sortable: true },
    Field { key: "creation_time", source: Source::Column("q.created_at"), kind: Kind::Time, sortable: true },
    Field { key: "update_time", source: Source::Column("q.updated_at"), kind: Kind::Time, sortable: true },
    Field { key: "hard.storage", source: Source::Column("q.hard_storage"), kind: Kind::Int, sortable: true },
    Field { key: "used.storage", source: Source::Column("COALESCE(s.bytes, 0)"), kind: Kind::Int, sortable: true },
];

fn quota_row(r: &AnyRow) -> Result<QuotaRow, sqlx::Error> {
    Ok(QuotaRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        project_name: r.try_get(2)?,
        owner_name: r.try_get(3)?,
        hard_storage: r.try_get(4)?,
        used_storage: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
        hard_tags_per_repository: r.try_get(8)?,
        hard_artifacts_per_repository: r.try_get(9)?,
    })
}

/// New limits of a quota; `None` keeps the current one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub storage: Option<i64>,
    pub tags_per_repository: Option<i64>,
    pub artifacts_per_repository: Option<i64>,
}

/// Tags of the repository's own artifacts (a signature's cosign tag is its subject's accessory,
/// not a tag anyone pushed).
const TAGS_IN_REPOSITORY: &str = "SELECT COUNT(*) FROM tags t JOIN manifests m ON m.id = t.manifest_id \
    WHERE t.repository_id = $1 AND m.accessory_of IS NULL";
const ARTIFACTS_IN_REPOSITORY: &str =
    concat!("SELECT COUNT(*) FROM manifests m WHERE m.repository_id = $1 AND ", top_level!());

/// Bytes as Harbor's messages give them (`1.5 MiB`).
fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A count the guard keeps under a limit: (limit, count before the write).
#[derive(Clone, Copy)]
struct Counted {
    limit: i64,
    before: i64,
}

/// A write's hold on its project's quota, from before its inserts to its commit.
pub(crate) struct QuotaGuard {
    project_id: i64,
    repository_id: i64,
    repository: String,
    before: i64,
    hard: i64,
    tags: Option<Counted>,
    artifacts: Option<Counted>,
}

impl WriteTx<'_> {
    /// Opens the quota check of a write into `repository_id`; `None` when its project has no
    /// limit (nothing to lock or check).
    pub(crate) async fn quota_guard(
        &mut self,
        dialect: Dialect,
        repository_id: i64,
    ) -> Result<Option<QuotaGuard>, DbError> {
        if !self.quotas_enforced {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT q.project_id, q.hard_storage, q.hard_tags_per_repository, q.hard_artifacts_per_repository, r.name \
             FROM repositories r JOIN project_quotas q ON q.project_id = r.project_id WHERE r.id = $1",
        )
        .bind(repository_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (project_id, hard, tags, artifacts): (i64, i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        if hard < 0 && tags < 0 && artifacts < 0 {
            return Ok(None);
        }
        let lock = if dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT bytes FROM project_stats WHERE project_id = $1{lock}");
        let before: Option<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(project_id).fetch_optional(&mut *self.tx).await?;
        let mut guard = QuotaGuard {
            project_id,
            repository_id,
            repository: row.try_get(4)?,
            before: before.unwrap_or(0),
            hard,
            tags: None,
            artifacts: None,
        };
        if tags >= 0 {
            guard.tags = Some(Counted { limit: tags, before: self.count(TAGS_IN_REPOSITORY, repository_id).await? });
        }
        if artifacts >= 0 {
            let before = self.count(ARTIFACTS_IN_REPOSITORY, repository_id).await?;
            guard.artifacts = Some(Counted { limit: artifacts, before });
        }
        Ok(Some(guard))
    }

    async fn count(&mut self, sql: &'static str, repository_id: i64) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(sql).bind(repository_id).fetch_one(&mut *self.tx).await?)
    }

    /// Refuses the write if it took its project's usage past the limit, or a count of its
    /// repository past its own.
    pub(crate) async fn quota_check(&mut self, guard: Option<QuotaGuard>) -> Result<(), DbError> {
        let Some(g) = guard else { return Ok(()) };
        if g.hard >= 0 {
            let after: Option<i64> = sqlx::query_scalar("SELECT bytes FROM project_stats WHERE project_id = $1")
                .bind(g.project_id)
                .fetch_optional(&mut *self.tx)
                .await?;
            let after = after.unwrap_or(0);
            if after > g.before && after > g.hard {
                return Err(exceeded(after - g.before, g.before, g.hard));
            }
        }
        for (counted, sql, what) in
            [(g.tags, TAGS_IN_REPOSITORY, "tag"), (g.artifacts, ARTIFACTS_IN_REPOSITORY, "artifact")]
        {
            let Some(c) = counted else { continue };
            let after = self.count(sql, g.repository_id).await?;
            if after > c.before && after > c.limit {
                return Err(DbError::QuotaExceeded(format!(
                    "Quota exceeded when processing the request of adding {} {what}(s) to repository {}, which when \
                     updated to current count of {} will exceed the configured upper limit of {} {what}s per repository.",
                    after - c.before,
                    g.repository,
                    c.before,
                    c.limit
                )));
            }
        }
        Ok(())
    }
}

/// Harbor's refusal.
fn exceeded(adding: i64, usage: i64, hard: i64) -> DbError {
    DbError::QuotaExceeded(format!(
        "Quota exceeded when processing the request of adding {} of storage resource, which when updated to \
         current usage of {} will exceed the configured upper limit of {}.",
        human_bytes(adding),
        human_bytes(usage),
        human_bytes(hard)
    ))
}

impl Db {
    /// Holds writes to their projects' quotas or not (Harbor's `quota_per_project_enable`),
    /// from the next transaction on. Usage is counted either way, so limits apply again exactly
    /// when switched back on.
    pub fn enforce_quotas(&self, enforced: bool) {
        self.quotas_enforced.store(enforced, std::sync::atomic::Ordering::Release);
    }

    pub fn quotas_enforced(&self) -> bool {
        self.quotas_enforced.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `size` more bytes under `digest` fit the quota of `repository_id`'s project, by
    /// the usage now: asked before bytes are written, so that a push the quota refuses leaves
    /// nothing in storage either. Only a forecast (a concurrent push may take the room): the
    /// writing transaction's [`QuotaGuard`] decides.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn quota_allows(&self, repository_id: i64, digest: &str, size: i64) -> Result<(), DbError> {
        if !self.quotas_enforced() {
            return Ok(());
        }
        let row = sqlx::query(
            "SELECT q.hard_storage, COALESCE(s.bytes, 0), \
               CASE WHEN EXISTS (SELECT 1 FROM project_content c WHERE c.project_id = q.project_id AND c.digest = $2) \
               THEN 1 ELSE 0 END \
             FROM repositories r JOIN project_quotas q ON q.project_id = r.project_id \
             LEFT JOIN project_stats s ON s.project_id = q.project_id WHERE r.id = $1",
        )
        .bind(repository_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(()) };
        let (hard, used, held): (i64, i64, i32) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if hard >= 0 && held == 0 && used + size > hard {
            return Err(exceeded(size, used, hard));
        }
        Ok(())
    }

    /// Quotas, of one project when `project_id` is given, ordered by `query`'s sort (by id
    /// otherwise): a page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_quotas(
        &self,
        project_id: Option<i64>,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<QuotaRow>, i64), DbError> {
        let from = format!("{FROM} WHERE ($1 = 0 OR q.project_id = $1)");
        let listing = Listing {
            columns: COLUMNS,
            from: &from,
            fixed: vec![Arg::Int(project_id.unwrap_or(0))],
            fields: FIELDS,
            default_order: "q.id",
            tie_break: "q.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(quota_row).collect::<Result<_, _>>()?, total))
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn quota(&self, id: i64) -> Result<Option<QuotaRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE q.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(quota_row).transpose()?)
    }

    /// Sets a quota's limits (-1 for none; those not given stay). Returns whether it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_quota(&self, id: i64, limits: &QuotaLimits) -> Result<bool, DbError> {
        let q = sqlx::query(
            "UPDATE project_quotas SET hard_storage = COALESCE($1, hard_storage), \
             hard_tags_per_repository = COALESCE($2, hard_tags_per_repository), \
             hard_artifacts_per_repository = COALESCE($3, hard_artifacts_per_repository), updated_at = $4 WHERE id = $5",
        )
        .bind(limits.storage)
        .bind(limits.tags_per_repository)
        .bind(limits.artifacts_per_repository)
        .bind(now_millis())
        .bind(id);
        Ok(self.write_one(q).await? == 1)
    }
}
