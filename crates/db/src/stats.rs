//! What the business metrics read: the per-project counters that migration 0012's triggers keep,
//! one row per project (and per artifact type), never a count over artifacts.

use sqlx::Row;

use crate::{Db, DbError};

/// One project's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStats {
    pub name: String,
    pub public: bool,
    pub repositories: i64,
    pub members: i64,
    pub pulls: i64,
    /// Bytes of the distinct blobs and manifests its repositories hold (Harbor's quota usage).
    pub bytes: i64,
    /// The storage quota in bytes; -1: none.
    pub quota: i64,
    /// Artifacts by Harbor's type (IMAGE, CHART, UNKNOWN), types with none left out.
    pub artifacts: Vec<(String, i64)>,
}

/// The connection pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl Db {
    /// Every project's counters, by name.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_stats(&self) -> Result<Vec<ProjectStats>, DbError> {
        let rows = sqlx::query(
            "SELECT p.id, p.name, CASE WHEN pub.value = 'true' THEN 1 ELSE 0 END, s.repositories, s.members, s.pulls, \
             s.bytes, COALESCE(q.hard_storage, -1) \
             FROM projects p JOIN project_stats s ON s.project_id = p.id \
             LEFT JOIN project_quotas q ON q.project_id = p.id \
             LEFT JOIN project_metadata pub ON pub.project_id = p.id AND pub.name = 'public' \
             ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut projects = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.try_get::<i64, _>(0)?);
            projects.push(ProjectStats {
                name: r.try_get(1)?,
                public: r.try_get::<i32, _>(2)? == 1,
                repositories: r.try_get(3)?,
                members: r.try_get(4)?,
                pulls: r.try_get(5)?,
                bytes: r.try_get(6)?,
                quota: r.try_get(7)?,
                artifacts: Vec::new(),
            });
        }
        let typed = sqlx::query(
            "SELECT project_id, artifact_type, artifacts FROM project_artifact_stats WHERE artifacts > 0 \
             ORDER BY project_id, artifact_type",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &typed {
            let id: i64 = r.try_get(0)?;
            if let Ok(i) = ids.binary_search(&id) {
                projects[i].artifacts.push((r.try_get(1)?, r.try_get(2)?));
            }
        }
        Ok(projects)
    }

    pub fn pool_state(&self) -> PoolState {
        PoolState {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}

impl Db {
    /// Upload sessions open, on every replica.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn open_upload_sessions(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM uploads").fetch_one(&self.pool).await?)
    }
}
