//! What Harbor's job service dashboard shows and steers: a queue per job kind (pending jobs,
//! how long the oldest has waited, paused or not) and the replicas' pools of runners with their
//! heartbeats. The jobs themselves are `jobs.rs`.

use sqlx::Row;

use crate::jobs::status;
use crate::{Db, DbError, now_millis};

/// The queue whose pause pauses every standing schedule (Harbor's `SCHEDULER`).
pub const SCHEDULER_QUEUE: &str = "SCHEDULER";

/// A job kind's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub kind: String,
    pub paused: bool,
    /// Jobs waiting to be claimed.
    pub pending: i64,
    /// When the longest-waiting pending job became due (ms), if any waits.
    pub oldest_due: Option<i64>,
}

/// A replica's pool of job runners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    pub pool_id: String,
    pub pid: i64,
    pub host: String,
    pub concurrency: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// A running job, and the runner that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub id: i64,
    pub kind: String,
    /// The runner's name: `<pool id>-<runner number>`.
    pub runner: String,
    /// When the current claim began (ms).
    pub started_at: i64,
    pub updated_at: i64,
}

impl Db {
    /// Makes the queues of `kinds` known (a replica that runs them says so at start).
    pub async fn ensure_job_queues(&self, kinds: &[&str]) -> Result<(), DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        for kind in kinds {
            sqlx::query(
                "INSERT INTO job_queues (kind, paused, updated_at) VALUES ($1, 0, $2) ON CONFLICT (kind) DO NOTHING",
            )
            .bind(*kind)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Every job queue but the scheduler's, by kind, with its pending jobs.
    pub async fn job_queues(&self) -> Result<Vec<QueueRow>, DbError> {
        let rows = sqlx::query(
            "SELECT q.kind, q.paused, COUNT(j.id), MIN(j.run_after) FROM job_queues q \
             LEFT JOIN jobs j ON j.kind = q.kind AND j.status = $1 WHERE q.kind <> $2 \
             GROUP BY q.kind, q.paused ORDER BY q.kind",
        )
        .bind(status::PENDING)
        .bind(SCHEDULER_QUEUE)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueRow {
                    kind: r.try_get(0)?,
                    paused: r.try_get::<i64, _>(1)? != 0,
                    pending: r.try_get(2)?,
                    oldest_due: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Whether the queue `kind` is paused (an unknown queue is not).
    pub async fn job_queue_paused(&self, kind: &str) -> Result<bool, DbError> {
        let paused: Option<i64> = sqlx::query_scalar("SELECT paused FROM job_queues WHERE kind = $1")
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        Ok(paused.unwrap_or(0) != 0)
    }

    /// Pauses or resumes the queue of `kind` (made known if it was not), or with `None` every
    /// known queue but the scheduler's.
    pub async fn set_job_queue_paused(&self, kind: Option<&str>, paused: bool) -> Result<u64, DbError> {
        let now = now_millis();
        let q = match kind {
            Some(kind) => sqlx::query(
                "INSERT INTO job_queues (kind, paused, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at",
            )
            .bind(kind)
            .bind(i64::from(paused))
            .bind(now),
            None => sqlx::query("UPDATE job_queues SET paused = $1, updated_at = $2 WHERE kind <> $3")
                .bind(i64::from(paused))
                .bind(now)
                .bind(SCHEDULER_QUEUE),
        };
        self.write_one(q).await
    }

    /// Stops every pending job of `kind` (or of every kind); how many.
    pub async fn stop_pending_jobs(&self, kind: Option<&str>) -> Result<u64, DbError> {
        let now = now_millis();
        let q = sqlx::query(
            "UPDATE jobs SET status = $1, finished_at = $2, updated_at = $2 WHERE status = $3 AND ($4 = '' OR kind = $4)",
        )
        .bind(status::STOPPED)
        .bind(now)
        .bind(status::PENDING)
        .bind(kind.unwrap_or(""));
        self.write_one(q).await
    }

    /// Records that pool `pool_id` is alive (made at its first beat).
    pub async fn beat_job_pool(&self, pool: &PoolRow) -> Result<(), DbError> {
        let q = sqlx::query(
            "INSERT INTO job_pools (pool_id, pid, host, concurrency, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pool_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&pool.pool_id)
        .bind(pool.pid)
        .bind(&pool.host)
        .bind(pool.concurrency)
        .bind(pool.started_at)
        .bind(pool.heartbeat_at);
        self.write_one(q).await?;
        Ok(())
    }

    /// The pools whose heartbeat is at `alive_since` (ms) or later, oldest first.
    pub async fn job_pools(&self, alive_since: i64) -> Result<Vec<PoolRow>, DbError> {
        let rows = sqlx::query(
            "SELECT pool_id, pid, host, concurrency, started_at, heartbeat_at FROM job_pools \
             WHERE heartbeat_at >= $1 ORDER BY started_at, pool_id",
        )
        .bind(alive_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PoolRow {
                    pool_id: r.try_get(0)?,
                    pid: r.try_get(1)?,
                    host: r.try_get(2)?,
                    concurrency: r.try_get(3)?,
                    started_at: r.try_get(4)?,
                    heartbeat_at: r.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Forgets pool `pool_id`: its replica stopped.
    pub async fn remove_job_pool(&self, pool_id: &str) -> Result<(), DbError> {
        self.write_one(sqlx::query("DELETE FROM job_pools WHERE pool_id = $1").bind(pool_id)).await?;
        Ok(())
    }

    /// Forgets every pool silent since before `silent_before` (ms); how many went.
    pub async fn remove_silent_job_pools(&self, silent_before: i64) -> Result<u64, DbError> {
        self.write_one(sqlx::query("DELETE FROM job_pools WHERE heartbeat_at < $1").bind(silent_before)).await
    }

    /// The jobs running now, with their runners, oldest first.
    pub async fn running_jobs(&self) -> Result<Vec<RunningJob>, DbError> {
        let rows = sqlx::query(
            "SELECT id, kind, lease_owner, COALESCE(started_at, updated_at), updated_at FROM jobs WHERE status = $1 ORDER BY id",
        )
        .bind(status::RUNNING)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunningJob {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    runner: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                    started_at: r.try_get(3)?,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }
}
