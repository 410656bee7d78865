//! Queries of labels and of which artifacts carry them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery, conflict, now_millis};

/// Where a label applies: everywhere (managed by administrators) or in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelScope {
    Global,
    Project(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: LabelScope,
    pub created_at: i64,
    pub updated_at: i64,
}

const LABEL_COLUMNS: &str = "l.id, l.name, l.description, l.color, l.project_id, l.created_at, l.updated_at";

/// What `q` and `sort` may name when listing labels.
const LABEL_FIELDS: &[Field] = &[
    Field { key: "name", source: Source::Column("l.name"), kind: Kind::Text, sortable: true },
    Field { key: "id", source: Source::Column("l.id"), kind: Kind::Int, sortable: true },
    Field { key: "creation_time", source: Source::Column("l.created_at"), kind: Kind::Time, sortable: true },
    Field { key: "update_time", source: Source::Column("l.updated_at"), kind: Kind::Time, sortable: true },
];

fn label_row(r: &AnyRow) -> Result<LabelRow, sqlx::Error> {
    let project_id: Option<i64> = r.try_get(4)?;
    Ok(LabelRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        color: r.try_get(3)?,
        scope: project_id.map_or(LabelScope::Global, LabelScope::Project),
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn scope_columns(scope: LabelScope) -> (&'static str, Option<i64>) {
    match scope {
        LabelScope::Global => ("g", None),
        LabelScope::Project(p) => ("p", Some(p)),
    }
}

impl Db {
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_label(
        &self,
        name: &str,
        description: &str,
        color: &str,
        scope: LabelScope,
    ) -> Result<i64, DbError> {
        let (scope, project_id) = scope_columns(scope);
        let mut w = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO labels (name, description, color, scope, project_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(color)
        .bind(scope)
        .bind(project_id)
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| conflict(e, &format!("label {name}")))?;
        w.commit().await?;
        Ok(id)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn label(&self, id: i64) -> Result<Option<LabelRow>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LABEL_COLUMNS} FROM labels l WHERE l.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(label_row).transpose()?)
    }

    /// Labels of one scope whose name contains `name`, filtered and ordered by `query` (by
    /// name unless asked otherwise): one page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_labels(
        &self,
        scope: LabelScope,
        name: &str,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<LabelRow>, i64), DbError> {
        let (scope, project_id) = scope_columns(scope);
        let listing = Listing {
            columns: LABEL_COLUMNS,
            from: "FROM labels l WHERE l.scope = $1 AND COALESCE(l.project_id, 0) = $2 AND l.name LIKE $3 ESCAPE '\\'",
            fixed: vec![
                Arg::Text(scope.to_string()),
                Arg::Int(project_id.unwrap_or(0)),
                Arg::Text(crate::like_contains(name)),
            ],
            fields: LABEL_FIELDS,
            default_order: "l.name",
            tie_break: "l.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(label_row).collect::<Result<_, _>>()?, total))
    }

    /// Changes a label's name, description and color. Returns whether it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_label(&self, id: i64, name: &str, description: &str, color: &str) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE labels SET name = $1, description = $2, color = $3, updated_at = $4 WHERE id = $5")
                .bind(name)
                .bind(description)
                .bind(color)
                .bind(now_millis())
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(|e| conflict(e, &format!("label {name}")))?;
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a label, and with it its place on every artifact.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_label(&self, id: i64) -> Result<bool, DbError> {
        Ok(self.write_one(sqlx::query("DELETE FROM labels WHERE id = $1").bind(id)).await? == 1)
    }

    /// Puts a label on an artifact; a conflict if it is already there.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn add_artifact_label(&self, manifest_id: i64, label_id: i64) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        sqlx::query("INSERT INTO artifact_labels (manifest_id, label_id, created_at) VALUES ($1, $2, $3)")
            .bind(manifest_id)
            .bind(label_id)
            .bind(now_millis())
            .execute(&mut *w.tx)
            .await
            .map_err(|e| conflict(e, &format!("label {label_id} on this artifact")))?;
        w.commit().await?;
        Ok(())
    }

    /// Takes a label off an artifact. Returns whether it was there.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn remove_artifact_label(&self, manifest_id: i64, label_id: i64) -> Result<bool, DbError> {
        let q = sqlx::query("DELETE FROM artifact_labels WHERE manifest_id = $1 AND label_id = $2")
            .bind(manifest_id)
            .bind(label_id);
        Ok(self.write_one(q).await? == 1)
    }

    /// The labels on each of the given manifests: (manifest id, label), by label name.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn labels_of(&self, manifest_ids: &[i64]) -> Result<Vec<(i64, LabelRow)>, DbError> {
        let sql = format!(
            "SELECT {LABEL_COLUMNS}, al.manifest_id FROM artifact_labels al JOIN labels l ON l.id = al.label_id \
             WHERE al.manifest_id IN ({{ids}}) ORDER BY l.name, l.id"
        );
        let rows = self.fetch_by_ids(&sql, manifest_ids).await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(7)?, label_row(r)?))).collect::<Result<_, sqlx::Error>>()?)
    }
}
