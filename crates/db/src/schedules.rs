//! Standing schedules of the job service, one per job type and vendor (Harbor's `/schedules`;
//! the vendor is 0 for the job service's own, a policy's id for per-policy ones): what fires,
//! when, with what parameters. A firing is claimed with a compare-and-set on `last_fired` in the
//! transaction that queues its job, so a scheduled time fires once however many replicas look,
//! and a job is never lost between the claim and the queue.

use sqlx::Row;

use crate::jobs::status;
use crate::{Db, DbError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub id: i64,
    pub job_type: String,
    /// Harbor's vendor id: the policy it belongs to (a retention policy's), or 0.
    pub vendor_id: i64,
    /// Harbor's `ScheduleObj.type`: `Hourly`, `Daily`, `Weekly`, `Custom`.
    pub cron_type: String,
    pub cron: String,
    /// The parameters each firing's job gets (JSON).
    pub parameters: String,
    pub paused: bool,
    /// The last second fired (or the schedule's last change: earlier times are not owed).
    pub last_fired: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, job_type, cron_type, cron, parameters, paused, last_fired, created_at, updated_at, vendor_id";

fn schedule_row(r: &sqlx::any::AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        id: r.try_get(0)?,
        job_type: r.try_get(1)?,
        cron_type: r.try_get(2)?,
        cron: r.try_get(3)?,
        parameters: r.try_get(4)?,
        paused: r.try_get::<i64, _>(5)? != 0,
        last_fired: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        vendor_id: r.try_get(9)?,
    })
}

/// Creates or replaces (keeping its creation time) the schedule `(job_type, vendor_id)`; times
/// before `now` are not owed a firing. With `only_if_changed`, an unchanged one is left alone.
pub(crate) fn upsert_query<'q>(
    (job_type, vendor_id): (&'q str, i64),
    cron_type: &'q str,
    cron: &'q str,
    parameters: &'q str,
    only_if_changed: bool,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let sql = if only_if_changed { UPSERT_IF_CHANGED } else { UPSERT };
    sqlx::query(sql)
        .bind(job_type)
        .bind(cron_type)
        .bind(cron)
        .bind(parameters)
        .bind(now / 1000)
        .bind(now)
        .bind(vendor_id)
}

const UPSERT: &str = "INSERT INTO job_schedules (job_type, cron_type, cron, parameters, paused, last_fired, \
     created_at, updated_at, vendor_id) VALUES ($1, $2, $3, $4, 0, $5, $6, $6, $7) ON CONFLICT (job_type, vendor_id) \
     DO UPDATE SET cron_type = excluded.cron_type, cron = excluded.cron, parameters = excluded.parameters, \
     last_fired = excluded.last_fired, updated_at = excluded.updated_at";
const UPSERT_IF_CHANGED: &str = "INSERT INTO job_schedules (job_type, cron_type, cron, parameters, paused, \
     last_fired, created_at, updated_at, vendor_id) VALUES ($1, $2, $3, $4, 0, $5, $6, $6, $7) \
     ON CONFLICT (job_type, vendor_id) DO UPDATE SET cron_type = excluded.cron_type, cron = excluded.cron, \
     parameters = excluded.parameters, last_fired = excluded.last_fired, updated_at = excluded.updated_at \
     WHERE job_schedules.cron <> excluded.cron OR job_schedules.parameters <> excluded.parameters";

impl Db {
    pub async fn job_schedule(&self, job_type: &str) -> Result<Option<ScheduleRow>, DbError> {
        self.vendor_schedule(job_type, 0).await
    }

    /// The schedule of `job_type` that belongs to vendor `vendor_id`.
    pub async fn vendor_schedule(&self, job_type: &str, vendor_id: i64) -> Result<Option<ScheduleRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM job_schedules WHERE job_type = $1 AND vendor_id = $2");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job_type).bind(vendor_id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(schedule_row).transpose()?)
    }

    pub async fn job_schedules(&self) -> Result<Vec<ScheduleRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM job_schedules ORDER BY job_type, vendor_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
    }

    /// Sets the schedule of `job_type` (created, or replaced keeping its creation time); times
    /// before now are not owed a firing.
    pub async fn set_job_schedule(
        &self,
        job_type: &str,
        cron_type: &str,
        cron: &str,
        parameters: &str,
    ) -> Result<(), DbError> {
        self.set_vendor_schedule(job_type, 0, cron_type, cron, parameters).await
    }

    /// Sets the schedule of `job_type` for vendor `vendor_id` (a policy's own schedule).
    pub async fn set_vendor_schedule(
        &self,
        job_type: &str,
        vendor_id: i64,
        cron_type: &str,
        cron: &str,
        parameters: &str,
    ) -> Result<(), DbError> {
        self.upsert_job_schedule((job_type, vendor_id), cron_type, cron, parameters, false).await?;
        Ok(())
    }

    /// Sets the schedule of `job_type` unless it already has this cron and these parameters:
    /// what each replica does at start for a schedule of its own configuration, which must not
    /// forget when it last fired. Whether it changed.
    pub async fn ensure_job_schedule(
        &self,
        job_type: &str,
        cron_type: &str,
        cron: &str,
        parameters: &str,
    ) -> Result<bool, DbError> {
        Ok(self.upsert_job_schedule((job_type, 0), cron_type, cron, parameters, true).await? > 0)
    }

    async fn upsert_job_schedule(
        &self,
        key: (&str, i64),
        cron_type: &str,
        cron: &str,
        parameters: &str,
        only_if_changed: bool,
    ) -> Result<u64, DbError> {
        self.write_one(upsert_query(key, cron_type, cron, parameters, only_if_changed, now_millis())).await
    }

    /// Removes the schedule of `job_type`; whether there was one.
    pub async fn delete_job_schedule(&self, job_type: &str) -> Result<bool, DbError> {
        self.delete_vendor_schedule(job_type, 0).await
    }

    /// Removes the schedule of `job_type` for vendor `vendor_id`; whether there was one.
    pub async fn delete_vendor_schedule(&self, job_type: &str, vendor_id: i64) -> Result<bool, DbError> {
        let q = sqlx::query("DELETE FROM job_schedules WHERE job_type = $1 AND vendor_id = $2").bind(job_type);
        Ok(self.write_one(q.bind(vendor_id)).await? > 0)
    }

    /// Pauses or resumes every schedule (Harbor pauses the scheduler as a whole: `/schedules/all/paused`)
    /// or the one of `job_type`; how many changed.
    pub async fn pause_job_schedules(&self, job_type: Option<&str>, paused: bool) -> Result<u64, DbError> {
        let now = now_millis();
        let q = sqlx::query(
            "UPDATE job_schedules SET paused = $1, updated_at = $2, \
             last_fired = CASE WHEN $1 = 0 THEN $3 ELSE last_fired END WHERE ($4 = '' OR job_type = $4)",
        )
        .bind(i64::from(paused))
        .bind(now)
        // A resumed schedule owes nothing for the time it was paused.
        .bind(now / 1000)
        .bind(job_type.unwrap_or(""));
        self.write_one(q).await
    }

    /// Fires the schedule of `job_type` for second `now` if its last firing is still
    /// `last_fired` (no other replica fired it meanwhile): the claim and the job's queueing in
    /// one transaction. Returns the job's id.
    pub async fn fire_job_schedule(
        &self,
        (job_type, vendor_id): (&str, i64),
        last_fired: i64,
        now: i64,
        parameters: &str,
        max_attempts: i64,
    ) -> Result<Option<i64>, DbError> {
        let mut w = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE job_schedules SET last_fired = $1 WHERE job_type = $2 AND vendor_id = $4 AND last_fired = $3 \
             AND paused = 0",
        )
        .bind(now)
        .bind(job_type)
        .bind(last_fired)
        .bind(vendor_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        let at = now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (kind, parameters, status, attempts, max_attempts, run_after, created_at, updated_at, \
             trigger_kind) VALUES ($1, $2, $3, 0, $4, $5, $5, $5, 'SCHEDULE') RETURNING id",
        )
        .bind(job_type)
        .bind(parameters)
        .bind(status::PENDING)
        .bind(max_attempts.max(1))
        .bind(at)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(Some(id))
    }

    /// Whether a job of `kind` is queued or running.
    pub async fn job_in_progress(&self, kind: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar("SELECT id FROM jobs WHERE kind = $1 AND status IN ($2, $3) ORDER BY id LIMIT 1")
            .bind(kind)
            .bind(status::PENDING)
            .bind(status::RUNNING)
            .fetch_optional(&self.pool)
            .await?)
    }
}
