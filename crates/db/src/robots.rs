//! Queries of robot accounts and their permissions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditEvent;
use crate::{Db, DbError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotPermissionRow {
    pub kind: String,
    pub namespace: String,
    pub resource: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub level: String,
    pub project_id: Option<i64>,
    pub secret_hash: String,
    pub disabled: bool,
    pub duration: i64,
    /// Seconds since the epoch; -1: never.
    pub expires_at: i64,
    pub creator_type: String,
    pub creator_ref: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub permissions: Vec<RobotPermissionRow>,
}

pub struct NewRobot<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub level: &'a str,
    pub project_id: Option<i64>,
    pub secret_hash: &'a str,
    pub disabled: bool,
    pub duration: i64,
    pub expires_at: i64,
    pub creator_type: &'a str,
    pub creator_ref: &'a str,
    pub permissions: &'a [RobotPermissionRow],
}

const ROBOT_COLUMNS: &str = "id, name, description, level, project_id, secret_hash, disabled, duration, expires_at, \
    creator_type, creator_ref, created_at, updated_at";

fn robot_row(r: &AnyRow) -> Result<RobotRow, sqlx::Error> {
    Ok(RobotRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        level: r.try_get(3)?,
        project_id: r.try_get(4)?,
        secret_hash: r.try_get(5)?,
        disabled: r.try_get::<i64, _>(6)? != 0,
        duration: r.try_get(7)?,
        expires_at: r.try_get(8)?,
        creator_type: r.try_get(9)?,
        creator_ref: r.try_get(10)?,
        created_at: r.try_get(11)?,
        updated_at: r.try_get(12)?,
        permissions: Vec::new(),
    })
}

async fn insert_permissions(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    robot_id: i64,
    permissions: &[RobotPermissionRow],
) -> Result<(), sqlx::Error> {
    for p in permissions {
        sqlx::query(
            "INSERT INTO robot_permissions (robot_id, kind, namespace, resource, action) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(robot_id)
        .bind(&p.kind)
        .bind(&p.namespace)
        .bind(&p.resource)
        .bind(&p.action)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Db {
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_robot(&self, r: &NewRobot<'_>) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        let now = now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO robots (name, description, level, project_id, secret_hash, disabled, duration, expires_at, \
             creator_type, creator_ref, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             RETURNING id",
        )
        .bind(r.name)
        .bind(r.description)
        .bind(r.level)
        .bind(r.project_id)
        .bind(r.secret_hash)
        .bind(i64::from(r.disabled))
        .bind(r.duration)
        .bind(r.expires_at)
        .bind(r.creator_type)
        .bind(r.creator_ref)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(format!("a robot named {}", r.name)),
            _ => DbError::Sqlx(e),
        })?;
        insert_permissions(&mut w.tx, id, r.permissions).await?;
        let mut event = AuditEvent::new("create", "robot", r.name);
        if let Some(project) = r.project_id {
            event = event.in_project(project);
        }
        w.audit(event);
        w.commit().await?;
        Ok(id)
    }

    async fn with_permissions(&self, mut robot: RobotRow) -> Result<RobotRow, DbError> {
        let rows = sqlx::query(
            "SELECT kind, namespace, resource, action FROM robot_permissions WHERE robot_id = $1 \
             ORDER BY namespace, resource, action",
        )
        .bind(robot.id)
        .fetch_all(&self.pool)
        .await?;
        robot.permissions = rows
            .iter()
            .map(|r| {
                Ok(RobotPermissionRow {
                    kind: r.try_get(0)?,
                    namespace: r.try_get(1)?,
                    resource: r.try_get(2)?,
                    action: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(robot)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn robot_by_name(&self, name: &str) -> Result<Option<RobotRow>, DbError> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&self.pool).await?;
        match row.as_ref().map(robot_row).transpose()? {
            Some(r) => Ok(Some(self.with_permissions(r).await?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn robot_by_id(&self, id: i64) -> Result<Option<RobotRow>, DbError> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        match row.as_ref().map(robot_row).transpose()? {
            Some(r) => Ok(Some(self.with_permissions(r).await?)),
            None => Ok(None),
        }
    }

    /// Robots of one level (`system`, or `project` with a project id), by id, one page, total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_robots(
        &self,
        level: &str,
        project_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RobotRow>, i64), DbError> {
        let filter = "FROM robots WHERE level = $1 AND ($2 < 0 OR project_id = $2)";
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ROBOT_COLUMNS} {filter} ORDER BY id LIMIT $3 OFFSET $4")))
                .bind(level)
                .bind(project_id.unwrap_or(-1))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {filter}")))
            .bind(level)
            .bind(project_id.unwrap_or(-1))
            .fetch_one(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.with_permissions(robot_row(r)?).await?);
        }
        Ok((out, total))
    }

    /// Replaces a robot's description, state, expiry and permissions. Returns whether it exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_robot(
        &self,
        id: i64,
        description: &str,
        disabled: bool,
        duration: i64,
        expires_at: i64,
        permissions: &[RobotPermissionRow],
    ) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE robots SET description = $1, disabled = $2, duration = $3, expires_at = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(description)
        .bind(i64::from(disabled))
        .bind(duration)
        .bind(expires_at)
        .bind(now_millis())
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query("DELETE FROM robot_permissions WHERE robot_id = $1").bind(id).execute(&mut *w.tx).await?;
            insert_permissions(&mut w.tx, id, permissions).await?;
        }
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_robot_secret(&self, id: i64, secret_hash: &str) -> Result<bool, DbError> {
        let done = self
            .write_one(
                sqlx::query("UPDATE robots SET secret_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(secret_hash)
                    .bind(now_millis())
                    .bind(id),
            )
            .await?;
        Ok(done == 1)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_robot(&self, id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query("SELECT name, project_id FROM robots WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM robots WHERE id = $1").bind(id).execute(&mut *w.tx).await?;
        if let Some(row) = &row {
            let mut event = AuditEvent::new("delete", "robot", row.try_get::<String, _>(0)?);
            if let Some(project) = row.try_get::<Option<i64>, _>(1)? {
                event = event.in_project(project);
            }
            w.audit(event);
        }
        w.commit().await?;
        Ok(row.is_some())
    }
}
