//! Tag immutability rules, per project (what they match is decided in `berth-core`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery, conflict, now_millis};

/// A rule as stored: each selector a decoration (`matches`, `excludes`; `repoMatches`,
/// `repoExcludes` for repositories) and a doublestar pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableRuleRow {
    pub id: i64,
    pub project_id: i64,
    pub priority: i64,
    pub disabled: bool,
    pub repository_decoration: String,
    pub repository_pattern: String,
    pub tag_decoration: String,
    pub tag_pattern: String,
}

const COLUMNS: &str = "r.id, r.project_id, r.priority, r.disabled, r.repository_decoration, r.repository_pattern, \
    r.tag_decoration, r.tag_pattern";

const FIELDS: &[Field] = &[
    Field { key: "id", source: Source::Column("r.id"), kind: Kind::Int, sortable: true },
    Field { key: "priority", source: Source::Column("r.priority"), kind: Kind::Int, sortable: true },
    Field { key: "creation_time", source: Source::Column("r.created_at"), kind: Kind::Time, sortable: true },
];

fn rule_row(r: &AnyRow) -> Result<ImmutableRuleRow, sqlx::Error> {
    Ok(ImmutableRuleRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        priority: r.try_get(2)?,
        disabled: r.try_get::<i64, _>(3)? != 0,
        repository_decoration: r.try_get(4)?,
        repository_pattern: r.try_get(5)?,
        tag_decoration: r.try_get(6)?,
        tag_pattern: r.try_get(7)?,
    })
}

impl Db {
    /// Adds a rule to project `rule.project_id` (`rule.id` is ignored); a conflict if the
    /// project has the same selectors already.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_immutable_rule(&self, rule: &ImmutableRuleRow) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO immutable_tag_rules (project_id, priority, disabled, repository_decoration, \
             repository_pattern, tag_decoration, tag_pattern, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id",
        )
        .bind(rule.project_id)
        .bind(rule.priority)
        .bind(i64::from(rule.disabled))
        .bind(&rule.repository_decoration)
        .bind(&rule.repository_pattern)
        .bind(&rule.tag_decoration)
        .bind(&rule.tag_pattern)
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| conflict(e, "an immutable tag rule with these selectors"))?;
        w.commit().await?;
        Ok(id)
    }

    /// Changes rule `rule.id` of project `rule.project_id`. Returns whether it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_immutable_rule(&self, rule: &ImmutableRuleRow) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE immutable_tag_rules SET priority = $1, disabled = $2, repository_decoration = $3, \
             repository_pattern = $4, tag_decoration = $5, tag_pattern = $6 WHERE id = $7 AND project_id = $8",
        )
        .bind(rule.priority)
        .bind(i64::from(rule.disabled))
        .bind(&rule.repository_decoration)
        .bind(&rule.repository_pattern)
        .bind(&rule.tag_decoration)
        .bind(&rule.tag_pattern)
        .bind(rule.id)
        .bind(rule.project_id)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| conflict(e, "an immutable tag rule with these selectors"))?;
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes rule `id` of `project_id`. Returns whether it existed.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_immutable_rule(&self, project_id: i64, id: i64) -> Result<bool, DbError> {
        let q =
            sqlx::query("DELETE FROM immutable_tag_rules WHERE id = $1 AND project_id = $2").bind(id).bind(project_id);
        Ok(self.write_one(q).await? == 1)
    }

    /// Rule `id` of `project_id`.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn immutable_rule(&self, project_id: i64, id: i64) -> Result<Option<ImmutableRuleRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM immutable_tag_rules r WHERE r.id = $1 AND r.project_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(project_id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(rule_row).transpose()?)
    }

    /// A project's rules, filtered and ordered by `query` (by priority, then id): a page and
    /// the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_immutable_rules(
        &self,
        project_id: i64,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ImmutableRuleRow>, i64), DbError> {
        let listing = Listing {
            columns: COLUMNS,
            from: "FROM immutable_tag_rules r WHERE r.project_id = $1",
            fixed: vec![Arg::Int(project_id)],
            fields: FIELDS,
            default_order: "r.priority",
            tie_break: "r.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(rule_row).collect::<Result<_, _>>()?, total))
    }

    /// The enabled rules of the project that holds `repository` (its first path component).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn immutable_rules_for(&self, repository: &str) -> Result<Vec<ImmutableRuleRow>, DbError> {
        let project = repository.split('/').next().unwrap_or(repository);
        let sql = format!(
            "SELECT {COLUMNS} FROM immutable_tag_rules r JOIN projects p ON p.id = r.project_id \
             WHERE p.name = $1 AND r.disabled = 0 ORDER BY r.priority, r.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(project).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(rule_row).collect::<Result<_, _>>()?)
    }
}
