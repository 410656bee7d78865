//! The job service's table: durable jobs, claimed by one replica at a time under a lease.
//! What runs them (workers, heartbeats, backoff) is `berth-jobs`; this is the SQL.
//!
//! Claiming is one `UPDATE … WHERE id = (SELECT … LIMIT 1)`: on PostgreSQL the inner select
//! takes `FOR UPDATE SKIP LOCKED`, so replicas claiming at once take different jobs without
//! waiting on each other; on SQLite the writer's turn makes the statement the only writer.

use std::sync::{Arc, RwLock};

use crate::{AuditEvent, Db, DbError, Dialect, now_millis, placeholders};
use sqlx::Row;

/// Harbor's statuses of a job's execution.
pub mod status {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCESS: &str = "Success";
    pub const ERROR: &str = "Error";
    pub const STOPPED: &str = "Stopped";
}

/// A job, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    /// JSON.
    pub parameters: String,
    pub status: String,
    /// Claims so far, the current one included.
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub stop_requested: bool,
    pub log: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// What the job recorded of its progress (JSON; empty before it records any).
    pub progress: String,
    /// Harbor's execution trigger: `MANUAL` or `SCHEDULE`.
    pub trigger: String,
}

pub(crate) const JOB_COLUMNS: &str = "id, kind, parameters, status, attempts, max_attempts, run_after, lease_owner, \
    lease_until, stop_requested, log, created_at, updated_at, finished_at, progress, trigger_kind";

pub(crate) fn job_row(r: &sqlx::any::AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        parameters: r.try_get(2)?,
        status: r.try_get(3)?,
        attempts: r.try_get::<i64, _>(4)?,
        max_attempts: r.try_get::<i64, _>(5)?,
        run_after: r.try_get(6)?,
        lease_owner: r.try_get(7)?,
        lease_until: r.try_get(8)?,
        stop_requested: r.try_get::<i64, _>(9)? != 0,
        log: r.try_get(10)?,
        created_at: r.try_get(11)?,
        updated_at: r.try_get(12)?,
        finished_at: r.try_get(13)?,
        progress: r.try_get(14)?,
        trigger: r.try_get(15)?,
    })
}

/// How a claimed job ended, as its holder reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Success,
    /// Failed; claimable again at `run_after` (ms) while attempts remain, else `Error`.
    Retry {
        run_after: i64,
    },
    Error,
    Stopped,
}

/// What the holder of a lease learns when it renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Held {
        stop_requested: bool,
    },
    /// Another replica took the job over, or it ended: the holder must stop without writing.
    Lost,
}

/// A job that a change asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub kind: String,
    /// JSON.
    pub parameters: String,
    pub max_attempts: i64,
}

/// Decides which jobs a change causes, from the event the change records (every audited
/// write records one, whether or not the audit log keeps it). The jobs are inserted in the
/// change's own transaction: a committed change always has its jobs, and one rolled back
/// leaves none (Harbor's execution trigger `EVENT`).
pub trait JobTrigger: Send + Sync {
    fn jobs_for(&self, event: &AuditEvent) -> Vec<JobRequest>;
}

/// Harbor's trigger of an execution a change caused.
pub const TRIGGER_EVENT: &str = "EVENT";

pub(crate) type SharedTriggers = Arc<RwLock<Vec<Arc<dyn JobTrigger>>>>;

/// Inserts a pending job in `tx`; returns its id.
pub(crate) async fn insert_job(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    request: &JobRequest,
    trigger: &str,
) -> Result<i64, DbError> {
    let now = now_millis();
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (kind, parameters, status, attempts, max_attempts, run_after, created_at, updated_at, \
         trigger_kind) VALUES ($1, $2, $3, 0, $4, $5, $5, $5, $6) RETURNING id",
    )
    .bind(&request.kind)
    .bind(&request.parameters)
    .bind(status::PENDING)
    .bind(request.max_attempts.max(1))
    .bind(now)
    .bind(trigger)
    .fetch_one(&mut **tx)
    .await?)
}

/// The jobs `triggers` ask for on `events`.
pub(crate) fn triggered<'e>(
    triggers: &SharedTriggers,
    events: impl Iterator<Item = &'e AuditEvent>,
) -> Vec<JobRequest> {
    let Ok(triggers) = triggers.read() else { return Vec::new() };
    if triggers.is_empty() {
        return Vec::new();
    }
    events.flat_map(|e| triggers.iter().flat_map(move |t| t.jobs_for(e))).collect()
}

impl Db {
    /// Adds a trigger: from now on, every audited change of this handle (and its clones) is
    /// committed with the jobs the trigger asks for.
    pub fn add_job_trigger(&self, trigger: Arc<dyn JobTrigger>) {
        if let Ok(mut triggers) = self.job_triggers.write() {
            triggers.push(trigger);
        }
    }

    /// Queues a job; returns its id.
    pub async fn enqueue_job(&self, kind: &str, parameters: &str, max_attempts: i64) -> Result<i64, DbError> {
        self.enqueue_triggered_job(kind, parameters, max_attempts, "MANUAL").await
    }

    /// Queues a job that `trigger` (`MANUAL`, `SCHEDULE`) started; returns its id.
    pub async fn enqueue_triggered_job(
        &self,
        kind: &str,
        parameters: &str,
        max_attempts: i64,
        trigger: &str,
    ) -> Result<i64, DbError> {
        let request = JobRequest { kind: kind.to_string(), parameters: parameters.to_string(), max_attempts };
        let mut w = self.begin_write().await?;
        let id = insert_job(&mut w.tx, &request, trigger).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Claims the oldest job of one of `kinds` that is due, or whose holder's lease ran out
    /// (`now`, ms), for `owner` until `now + lease_ms`; `None` when there is none. A paused
    /// queue's jobs wait (a running one taken over included).
    pub async fn claim_job(
        &self,
        owner: &str,
        kinds: &[&str],
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRow>, DbError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE jobs SET status = $1, lease_owner = $2, lease_until = $3, attempts = attempts + 1, \
             updated_at = $4, started_at = $4 WHERE id = (SELECT id FROM jobs WHERE kind IN ({kinds}) AND \
             ((status = $5 AND run_after <= $4) OR (status = $1 AND lease_until < $4)) AND \
             kind NOT IN (SELECT kind FROM job_queues WHERE paused <> 0) \
             ORDER BY id LIMIT 1{lock}) RETURNING {JOB_COLUMNS}",
            kinds = placeholders(6, kinds.len()),
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status::RUNNING)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(status::PENDING);
        for kind in kinds {
            q = q.bind(*kind);
        }
        let mut w = self.begin_write().await?;
        let row = q.fetch_optional(&mut *w.tx).await?;
        w.commit().await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    /// Renews `owner`'s lease of job `id` until `until` (ms).
    pub async fn renew_job_lease(&self, id: i64, owner: &str, until: i64) -> Result<Renewal, DbError> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND status = $5 \
             RETURNING stop_requested",
        )
        .bind(until)
        .bind(now_millis())
        .bind(id)
        .bind(owner)
        .bind(status::RUNNING)
        .fetch_optional(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(match row {
            Some(r) => Renewal::Held { stop_requested: r.try_get::<i64, _>(0)? != 0 },
            None => Renewal::Lost,
        })
    }

    /// Appends to the log of job `id`, if `owner` still holds it.
    pub async fn append_job_log(&self, id: i64, owner: &str, text: &str) -> Result<bool, DbError> {
        let q = sqlx::query(
            "UPDATE jobs SET log = log || $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND status = $5",
        )
        .bind(text)
        .bind(now_millis())
        .bind(id)
        .bind(owner)
        .bind(status::RUNNING);
        Ok(self.write_one(q).await? == 1)
    }

    /// Records the progress of job `id` (JSON), if `owner` still holds it: what a takeover
    /// resumes from.
    pub async fn save_job_progress(&self, id: i64, owner: &str, progress: &str) -> Result<bool, DbError> {
        let q = sqlx::query(
            "UPDATE jobs SET progress = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND status = $5",
        )
        .bind(progress)
        .bind(now_millis())
        .bind(id)
        .bind(owner)
        .bind(status::RUNNING);
        Ok(self.write_one(q).await? == 1)
    }

    /// Ends `owner`'s claim of job `id` with `outcome`; `false` when the claim was no longer
    /// `owner`'s (taken over), which then writes nothing.
    pub async fn finish_job(&self, id: i64, owner: &str, outcome: &JobOutcome) -> Result<bool, DbError> {
        let now = now_millis();
        // The status asked for; a retry with no attempt left (or with a stop asked for) ends
        // the job instead, in the statement below.
        let (asked, run_after) = match outcome {
            JobOutcome::Success => (status::SUCCESS, None),
            JobOutcome::Retry { run_after } => (status::PENDING, Some(*run_after)),
            JobOutcome::Error => (status::ERROR, None),
            JobOutcome::Stopped => (status::STOPPED, None),
        };
        let q = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN $1 = 'Pending' AND (attempts >= max_attempts OR stop_requested <> 0) \
                 THEN (CASE WHEN stop_requested <> 0 THEN 'Stopped' ELSE 'Error' END) ELSE $1 END, \
               run_after = COALESCE($2, run_after), lease_owner = NULL, lease_until = NULL, updated_at = $3, \
               finished_at = CASE WHEN $1 = 'Pending' AND attempts < max_attempts AND stop_requested = 0 \
                 THEN NULL ELSE $3 END \
             WHERE id = $4 AND lease_owner = $5 AND status = 'Running'",
        )
        .bind(asked)
        .bind(run_after)
        .bind(now)
        .bind(id)
        .bind(owner);
        Ok(self.write_one(q).await? == 1)
    }

    /// Asks job `id` to stop: a pending one is stopped at once, a running one is told at its
    /// holder's next renewal. `None` when there is no such job; else whether it was still going.
    pub async fn request_job_stop(&self, id: i64) -> Result<Option<bool>, DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        let pending =
            sqlx::query("UPDATE jobs SET status = $1, finished_at = $2, updated_at = $2 WHERE id = $3 AND status = $4")
                .bind(status::STOPPED)
                .bind(now)
                .bind(id)
                .bind(status::PENDING)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        let running = sqlx::query("UPDATE jobs SET stop_requested = 1, updated_at = $1 WHERE id = $2 AND status = $3")
            .bind(now)
            .bind(id)
            .bind(status::RUNNING)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1").bind(id).fetch_optional(&mut *w.tx).await?;
        w.commit().await?;
        Ok(exists.map(|_| pending + running > 0))
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRow>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    /// Jobs of `kind`, newest first, and how many there are.
    pub async fn jobs_of_kind(&self, kind: &str, limit: i64, offset: i64) -> Result<(Vec<JobRow>, i64), DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
        )))
        .bind(kind)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1").bind(kind).fetch_one(&self.pool).await?;
        Ok((rows.iter().map(job_row).collect::<Result<_, _>>()?, total))
    }

    /// The newest job of `kind`, of trigger `trigger` when one is given.
    pub async fn latest_job(&self, kind: &str, trigger: Option<&str>) -> Result<Option<JobRow>, DbError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND ($2 = '' OR trigger_kind = $2) ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind)
            .bind(trigger.unwrap_or(""))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    /// The kinds of the jobs stored.
    pub async fn job_kinds(&self) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT DISTINCT kind FROM jobs ORDER BY kind").fetch_all(&self.pool).await?)
    }

    /// Deletes the ended jobs of `kind` beyond the newest `keep`, and those ended before
    /// `ended_before` (ms); returns how many went.
    pub async fn prune_jobs(&self, kind: &str, keep: i64, ended_before: i64) -> Result<u64, DbError> {
        let q = sqlx::query(
            "DELETE FROM jobs WHERE kind = $1 AND finished_at IS NOT NULL AND (finished_at < $2 OR id NOT IN \
             (SELECT id FROM jobs WHERE kind = $1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT $3))",
        )
        .bind(kind)
        .bind(ended_before)
        .bind(keep);
        self.write_one(q).await
    }
}
