//! Harbor's CVE allowlists: the system's and each project's (removed with its project). The
//! items are stored as a JSON array of ids, which this layer does not read.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Db, DbError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistRow {
    pub id: i64,
    /// `None` for the system's.
    pub project_id: Option<i64>,
    /// Seconds since the epoch.
    pub expires_at: Option<i64>,
    /// A JSON array of vulnerability ids.
    pub items: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, project_id, expires_at, items, created_at, updated_at";

fn allowlist_row(r: &AnyRow) -> Result<AllowlistRow, sqlx::Error> {
    Ok(AllowlistRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        expires_at: r.try_get(2)?,
        items: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

/// Sets the allowlist of `project` (`None`: the system's) inside `tx`, replacing the one it had.
pub(crate) async fn write_allowlist(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    project: Option<i64>,
    expires_at: Option<i64>,
    items: &str,
) -> Result<(), DbError> {
    let now = now_millis();
    // Both unique indexes (a project's; the system's single row) turn a second insert into
    // nothing, and the update then sets it, also when two writers race.
    sqlx::query(
        "INSERT INTO cve_allowlists (project_id, expires_at, items, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
    )
    .bind(project)
    .bind(expires_at)
    .bind(items)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let update = sqlx::query(match project {
        Some(_) => "UPDATE cve_allowlists SET expires_at = $1, items = $2, updated_at = $3 WHERE project_id = $4",
        None => "UPDATE cve_allowlists SET expires_at = $1, items = $2, updated_at = $3 WHERE project_id IS NULL",
    })
    .bind(expires_at)
    .bind(items)
    .bind(now);
    let update = match project {
        Some(id) => update.bind(id),
        None => update,
    };
    update.execute(&mut **tx).await?;
    Ok(())
}

impl Db {
    /// The allowlist of `project` (`None`: the system's), if one was ever set.
    pub async fn cve_allowlist(&self, project: Option<i64>) -> Result<Option<AllowlistRow>, DbError> {
        let row = match project {
            Some(id) => {
                let sql = format!("SELECT {COLUMNS} FROM cve_allowlists WHERE project_id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM cve_allowlists WHERE project_id IS NULL");
                sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_optional(&self.pool).await?
            }
        };
        Ok(row.as_ref().map(allowlist_row).transpose()?)
    }

    /// The allowlists of the projects `ids` that have one (a listing's page, in one query).
    pub async fn project_cve_allowlists(&self, ids: &[i64]) -> Result<Vec<AllowlistRow>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM cve_allowlists WHERE project_id IN (SELECT CAST(column1 AS BIGINT) FROM {} AS v)",
            crate::json_list(self.dialect, 1)
        );
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(crate::json_strings(&ids)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(allowlist_row).collect::<Result<_, _>>()?)
    }

    /// Sets the allowlist of `project` (`None`: the system's).
    pub async fn set_cve_allowlist(
        &self,
        project: Option<i64>,
        expires_at: Option<i64>,
        items: &str,
    ) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        write_allowlist(&mut w.tx, project, expires_at, items).await?;
        w.commit().await
    }
}
