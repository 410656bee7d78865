//! The queries of housekeeping (the job service's `HOUSEKEEPING` job): stale upload sessions,
//! expired portal sessions.

use sqlx::Row;

use crate::{Db, DbError, now_millis};

impl Db {
    /// Upload sessions untouched since `before`, oldest first: each id with the storage
    /// driver's state, which says what to delete.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn stale_uploads(&self, before: i64, limit: i64) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let rows =
            sqlx::query("SELECT id, store_state FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2")
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Deletes an upload session's record if it is still untouched since `before`; true when
    /// deleted (its bytes may then go).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_stale_upload(&self, id: &str, before: i64) -> Result<bool, DbError> {
        let q = sqlx::query("DELETE FROM uploads WHERE id = $1 AND updated_at < $2").bind(id).bind(before);
        Ok(self.write_one(q).await? == 1)
    }

    /// Deletes portal sessions that have ended; returns how many.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_expired_sessions(&self) -> Result<u64, DbError> {
        self.write_one(sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now_millis())).await
    }
}
