//! The runs of the audit-log purge, and the compare-and-set that lets one replica claim a
//! scheduled time.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Db, DbError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRunRow {
    pub id: i64,
    /// `MANUAL` or `SCHEDULE`.
    pub job_kind: String,
    /// The parameters as JSON.
    pub parameters: String,
    /// `Running`, `Success`, `Error`, `Stopped`.
    pub status: String,
    pub log: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn run_row(r: &AnyRow) -> Result<PurgeRunRow, sqlx::Error> {
    Ok(PurgeRunRow {
        id: r.try_get(0)?,
        job_kind: r.try_get(1)?,
        parameters: r.try_get(2)?,
        status: r.try_get(3)?,
        log: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

const RUN_COLUMNS: &str = "id, job_kind, parameters, status, log, created_at, updated_at";

impl Db {
    /// Notes a run as started; returns its id.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn start_purge_run(&self, job_kind: &str, parameters: &str) -> Result<i64, DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        let id = sqlx::query_scalar(
            "INSERT INTO purge_audit_runs (job_kind, parameters, status, created_at, updated_at) \
             VALUES ($1, $2, 'Running', $3, $3) RETURNING id",
        )
        .bind(job_kind)
        .bind(parameters)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(id)
    }

    /// Ends a run that is still running; `false` when it had ended already (stopped, say).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn finish_purge_run(&self, id: i64, status: &str, log: &str) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query(
                    "UPDATE purge_audit_runs SET status = $1, log = $2, updated_at = $3 \
                     WHERE id = $4 AND status = 'Running'",
                )
                .bind(status)
                .bind(log)
                .bind(now_millis())
                .bind(id),
            )
            .await?;
        Ok(done > 0)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn purge_run(&self, id: i64) -> Result<Option<PurgeRunRow>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM purge_audit_runs WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(run_row).transpose()?)
    }

    /// A page of runs, newest first, and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn purge_runs(&self, limit: i64, offset: i64) -> Result<(Vec<PurgeRunRow>, i64), DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM purge_audit_runs ORDER BY id DESC LIMIT $1 OFFSET $2"
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM purge_audit_runs").fetch_one(&self.pool).await?;
        Ok((rows.iter().map(run_row).collect::<Result<_, _>>()?, total))
    }

    /// Sets `name` to `new` if it holds `old` (absent when `None`): of replicas racing, one wins.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn compare_and_set_setting(&self, name: &str, old: Option<&str>, new: &str) -> Result<bool, DbError> {
        let changed = match old {
            Some(old) => {
                self.write_one(
                    sqlx::query("UPDATE settings SET value = $1 WHERE name = $2 AND value = $3")
                        .bind(new)
                        .bind(name)
                        .bind(old),
                )
                .await?
            }
            None => {
                self.write_one(
                    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                        .bind(name)
                        .bind(new),
                )
                .await?
            }
        };
        Ok(changed > 0)
    }
}
