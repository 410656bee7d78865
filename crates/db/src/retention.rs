//! Tag retention (harbor.md 2.8): a project's policy (its rules as Harbor's JSON, checked by
//! `berth-retention`), its schedule (a vendor schedule of the job service, written in the
//! policy's transaction), the claim that lets one execution run per project, and each
//! execution's tasks. An execution is a `RETENTION` job.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::{JobRow, status};
use crate::{Db, DbError, conflict, now_millis};

/// The job kind of an execution (Harbor's).
pub const JOB_KIND: &str = "RETENTION";

/// A policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicyRow {
    pub id: i64,
    pub project_id: i64,
    pub algorithm: String,
    /// Harbor's rules, as JSON.
    pub rules: String,
    /// Harbor's trigger kind (`Schedule`).
    pub trigger_kind: String,
    /// The trigger's cron; empty: run by hand only.
    pub cron: String,
    /// Beyond Harbor: decide per tag rather than per artifact.
    pub per_tag: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const POLICY_COLUMNS: &str = "id, project_id, algorithm, rules, trigger_kind, cron, per_tag, created_at, updated_at";

fn policy_row(r: &AnyRow) -> Result<RetentionPolicyRow, sqlx::Error> {
    Ok(RetentionPolicyRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        algorithm: r.try_get(2)?,
        rules: r.try_get(3)?,
        trigger_kind: r.try_get(4)?,
        cron: r.try_get(5)?,
        per_tag: r.try_get::<i64, _>(6)? != 0,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}

/// One repository's part of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionTaskRow {
    pub id: i64,
    pub execution_id: i64,
    pub repository: String,
    pub status: String,
    /// Candidates considered, and how many of them were retained.
    pub total: i64,
    pub retained: i64,
    /// The table of every candidate and what became of it.
    pub log: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
}

const TASK_COLUMNS: &str = "id, execution_id, repository, status, total, retained, log, start_time, end_time";

fn task_row(r: &AnyRow) -> Result<RetentionTaskRow, sqlx::Error> {
    Ok(RetentionTaskRow {
        id: r.try_get(0)?,
        execution_id: r.try_get(1)?,
        repository: r.try_get(2)?,
        status: r.try_get(3)?,
        total: r.try_get(4)?,
        retained: r.try_get(5)?,
        log: r.try_get(6)?,
        start_time: r.try_get(7)?,
        end_time: r.try_get(8)?,
    })
}

/// The parameters of an execution's job, written one way only so that a policy's executions
/// can be found by them.
pub fn execution_parameters(policy_id: i64, dry_run: bool) -> String {
    format!(r#"{{"dry_run":{dry_run},"policy_id":{policy_id}}}"#)
}

/// The project metadata key Harbor links a project to its policy by.
const RETENTION_ID: &str = "retention_id";

impl Db {
    /// Stores a new policy for `p.project_id`, links the project to it (`retention_id`) and sets
    /// its schedule, in one transaction; a conflict if the project has one already.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_retention_policy(&self, p: &RetentionPolicyRow) -> Result<i64, DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO retention_policies (project_id, algorithm, rules, trigger_kind, cron, per_tag, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(p.project_id)
        .bind(&p.algorithm)
        .bind(&p.rules)
        .bind(&p.trigger_kind)
        .bind(&p.cron)
        .bind(i64::from(p.per_tag))
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| conflict(e, "a retention policy of this project"))?;
        sqlx::query(
            "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(p.project_id)
        .bind(RETENTION_ID)
        .bind(id.to_string())
        .execute(&mut *w.tx)
        .await?;
        schedule(&mut w.tx, id, &p.cron).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Replaces a policy's rules, trigger and mode (and its schedule); whether it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_retention_policy(&self, p: &RetentionPolicyRow) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE retention_policies SET algorithm = $1, rules = $2, trigger_kind = $3, cron = $4, per_tag = $5, \
             updated_at = $6 WHERE id = $7",
        )
        .bind(&p.algorithm)
        .bind(&p.rules)
        .bind(&p.trigger_kind)
        .bind(&p.cron)
        .bind(i64::from(p.per_tag))
        .bind(now_millis())
        .bind(p.id)
        .execute(&mut *w.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        schedule(&mut w.tx, p.id, &p.cron).await?;
        w.commit().await?;
        Ok(true)
    }

    /// Deletes a policy with its schedule and the project's link to it; whether it existed.
    /// Its executions stay in the job history.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_retention_policy(&self, id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let project: Option<i64> =
            sqlx::query_scalar("DELETE FROM retention_policies WHERE id = $1 RETURNING project_id")
                .bind(id)
                .fetch_optional(&mut *w.tx)
                .await?;
        let Some(project) = project else { return Ok(false) };
        sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = $2")
            .bind(project)
            .bind(RETENTION_ID)
            .execute(&mut *w.tx)
            .await?;
        schedule(&mut w.tx, id, "").await?;
        w.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn retention_policy(&self, id: i64) -> Result<Option<RetentionPolicyRow>, DbError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM retention_policies WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(policy_row).transpose()?)
    }

    /// Lets `job` run the policy unless another execution of it is running: a compare-and-set
    /// on the policy's row, so that executions started on several replicas at once run one at
    /// a time. A job taken over after its replica died claims again as itself.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn claim_retention(&self, policy_id: i64, job: i64) -> Result<bool, DbError> {
        let q = sqlx::query(
            "UPDATE retention_policies SET running_job = $1 WHERE id = $2 AND (running_job IS NULL \
             OR running_job = $1 OR running_job NOT IN (SELECT id FROM jobs WHERE status = $3))",
        )
        .bind(job)
        .bind(policy_id)
        .bind(status::RUNNING);
        Ok(self.write_one(q).await? > 0)
    }

    /// Ends `job`'s claim on the policy.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn release_retention(&self, policy_id: i64, job: i64) -> Result<(), DbError> {
        let q = sqlx::query("UPDATE retention_policies SET running_job = NULL WHERE id = $1 AND running_job = $2");
        self.write_one(q.bind(policy_id).bind(job)).await?;
        Ok(())
    }

    /// A policy's executions, newest first: a page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn retention_executions(
        &self,
        policy_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<JobRow>, i64), DbError> {
        let (real, dry) = (execution_parameters(policy_id, false), execution_parameters(policy_id, true));
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND parameters IN ($2, $3)")
            .bind(JOB_KIND)
            .bind(&real)
            .bind(&dry)
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "SELECT {} FROM jobs WHERE kind = $1 AND parameters IN ($2, $3) ORDER BY id DESC LIMIT $4 OFFSET $5",
            crate::jobs::JOB_COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(JOB_KIND)
            .bind(&real)
            .bind(&dry)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows.iter().map(crate::jobs::job_row).collect::<Result<_, _>>()?, total))
    }

    /// Whether an execution of the policy is queued or running (its id).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn retention_in_progress(&self, policy_id: i64) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM jobs WHERE kind = $1 AND parameters IN ($2, $3) AND status IN ($4, $5) ORDER BY id LIMIT 1",
        )
        .bind(JOB_KIND)
        .bind(execution_parameters(policy_id, false))
        .bind(execution_parameters(policy_id, true))
        .bind(status::PENDING)
        .bind(status::RUNNING)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records a repository's task of an execution (again, from the start, when the execution
    /// is run again after a takeover).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn start_retention_task(&self, execution_id: i64, repository: &str) -> Result<i64, DbError> {
        let now = now_millis();
        let mut w = self.begin_write().await?;
        sqlx::query("DELETE FROM retention_tasks WHERE execution_id = $1 AND repository = $2")
            .bind(execution_id)
            .bind(repository)
            .execute(&mut *w.tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO retention_tasks (execution_id, repository, status, start_time) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(execution_id)
        .bind(repository)
        .bind(status::RUNNING)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(id)
    }

    /// Ends a task with its counts and its table.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn finish_retention_task(
        &self,
        id: i64,
        task_status: &str,
        (total, retained): (i64, i64),
        log: &str,
    ) -> Result<(), DbError> {
        let q = sqlx::query(
            "UPDATE retention_tasks SET status = $1, total = $2, retained = $3, log = $4, end_time = $5 WHERE id = $6",
        )
        .bind(task_status)
        .bind(total)
        .bind(retained)
        .bind(log)
        .bind(now_millis())
        .bind(id);
        self.write_one(q).await?;
        Ok(())
    }

    /// An execution's tasks, by repository: a page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn retention_tasks(
        &self,
        execution_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RetentionTaskRow>, i64), DbError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM retention_tasks WHERE execution_id = $1")
            .bind(execution_id)
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM retention_tasks WHERE execution_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(execution_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows.iter().map(task_row).collect::<Result<_, _>>()?, total))
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn retention_task(&self, execution_id: i64, id: i64) -> Result<Option<RetentionTaskRow>, DbError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM retention_tasks WHERE execution_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(execution_id).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(task_row).transpose()?)
    }
}

/// Sets (or, with no cron, removes) the policy's schedule within the policy's transaction.
async fn schedule(tx: &mut sqlx::Transaction<'static, sqlx::Any>, policy_id: i64, cron: &str) -> Result<(), DbError> {
    if cron.is_empty() {
        sqlx::query("DELETE FROM job_schedules WHERE job_type = $1 AND vendor_id = $2")
            .bind(JOB_KIND)
            .bind(policy_id)
            .execute(&mut **tx)
            .await?;
    } else {
        crate::schedules::upsert_query(
            (JOB_KIND, policy_id),
            "Custom",
            cron,
            &execution_parameters(policy_id, false),
            false,
            now_millis(),
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
