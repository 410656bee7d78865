//! Queries of Harbor's access model: users, projects, their metadata and members, settings.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditEvent};
use crate::listing::{Arg, Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery, conflict, like_contains, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub realname: String,
    pub comment: String,
    pub password_hash: String,
    pub sysadmin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub realname: &'a str,
    pub comment: &'a str,
    pub password_hash: &'a str,
    pub sysadmin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A project member as listed: the membership and the member's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: i64,
    pub project_id: i64,
    pub entity_type: String,
    pub entity_id: i64,
    pub entity_name: String,
    pub role: i64,
}

fn member_row(r: &AnyRow) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        entity_type: r.try_get(2)?,
        entity_id: r.try_get(3)?,
        entity_name: r.try_get(4)?,
        role: r.try_get(5)?,
    })
}

const USER_COLUMNS: &str = "id, username, email, realname, comment, password_hash, sysadmin, created_at, updated_at";

/// What `q` and `sort` may name when listing users.
const USER_FIELDS: &[Field] = &[
    Field { key: "username", source: Source::Column("username"), kind: Kind::Text, sortable: true },
    Field { key: "email", source: Source::Column("email"), kind: Kind::Text, sortable: true },
    Field { key: "realname", source: Source::Column("realname"), kind: Kind::Text, sortable: true },
    Field { key: "user_id", source: Source::Column("id"), kind: Kind::Int, sortable: true },
    Field { key: "sysadmin_flag", source: Source::Column("sysadmin"), kind: Kind::Bool, sortable: false },
    Field { key: "creation_time", source: Source::Column("created_at"), kind: Kind::Time, sortable: true },
    Field { key: "update_time", source: Source::Column("updated_at"), kind: Kind::Time, sortable: true },
];

fn user_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        email: r.try_get(2)?,
        realname: r.try_get(3)?,
        comment: r.try_get(4)?,
        password_hash: r.try_get(5)?,
        sysadmin: r.try_get::<i64, _>(6)? != 0,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}

/// What `q` and `sort` may name when listing projects.
const PROJECT_FIELDS: &[Field] = &[
    Field { key: "name", source: Source::Column("p.name"), kind: Kind::Text, sortable: true },
    Field { key: "project_id", source: Source::Column("p.id"), kind: Kind::Int, sortable: true },
    Field {
        key: "public",
        source: Source::Column(
            "(CASE WHEN EXISTS (SELECT 1 FROM project_metadata pm2 WHERE pm2.project_id = p.id AND pm2.name = 'public' AND pm2.value = 'true') THEN 1 ELSE 0 END)",
        ),
        kind: Kind::Bool,
        sortable: false,
    },
    Field {
        key: "owner",
        source: Source::Related {
            from_where: "SELECT 1 FROM users ou WHERE ou.id = p.owner_id",
            column: "ou.username",
        },
        kind: Kind::Text,
        sortable: false,
    },
    Field { key: "creation_time", source: Source::Column("p.created_at"), kind: Kind::Time, sortable: true },
    Field { key: "update_time", source: Source::Column("p.updated_at"), kind: Kind::Time, sortable: true },
];

fn project_row(r: &AnyRow) -> Result<ProjectRow, sqlx::Error> {
    Ok(ProjectRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        owner_id: r.try_get(2)?,
        created_at: r.try_get(3)?,
        updated_at: r.try_get(4)?,
    })
}

/// Maps a uniqueness violation to [`DbError::Conflict`], naming what already exists.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn insert_user(tx: &mut Tx, u: &NewUser<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(u.username)
    .bind(u.email)
    .bind(u.realname)
    .bind(u.comment)
    .bind(u.password_hash)
    .bind(i64::from(u.sysadmin))
    .bind(now_millis())
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| conflict(e, "a user with this username or email"))
}

/// A project with its metadata, its owner as project admin.
async fn insert_project(
    tx: &mut Tx,
    name: &str,
    owner_id: i64,
    metadata: &[(&str, &str)],
    storage_limit: i64,
) -> Result<i64, DbError> {
    let now = now_millis();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO projects (name, owner_id, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
    )
    .bind(name)
    .bind(owner_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| conflict(e, "a project with this name"))?;
    for (key, value) in metadata {
        sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(*key)
            .bind(*value)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO project_members (project_id, entity_type, entity_id, role, created_at, updated_at) \
         VALUES ($1, 'u', $2, 1, $3, $3)",
    )
    .bind(id)
    .bind(owner_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO project_quotas (project_id, hard_storage, created_at, updated_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(id)
    .bind(storage_limit)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

impl Db {
    // ---- users

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_user(&self, u: &NewUser<'_>) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        let id = insert_user(&mut w.tx, u).await?;
        w.audit(AuditEvent::new("create", "user", u.username));
        w.commit().await?;
        Ok(id)
    }

    /// The first start's administrator and default project, together or not at all: `None`
    /// when a user of that name exists already (another replica got there first).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_first_admin(
        &self,
        admin: &NewUser<'_>,
        project: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Option<i64>, DbError> {
        let mut w = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(admin.username)
            .fetch_optional(&mut *w.tx)
            .await?;
        if exists.is_some() {
            return Ok(None);
        }
        let id = match insert_user(&mut w.tx, admin).await {
            Ok(id) => id,
            // Inserted by a concurrent transaction since our read.
            Err(DbError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let project_id = insert_project(&mut w.tx, project, id, metadata, -1).await?;
        w.audit(AuditEvent::new("create", "user", admin.username));
        w.audit(AuditEvent::new("create", "project", project).in_project(project_id));
        w.commit().await?;
        Ok(Some(id))
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(username).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    /// Users whose name contains `search` (all when empty), by id, one page, with the total.
    /// Users filtered and ordered by `query` (by id unless asked otherwise): one page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_users(&self, query: &ListQuery, limit: i64, offset: i64) -> Result<(Vec<UserRow>, i64), DbError> {
        let listing = Listing {
            columns: USER_COLUMNS,
            from: "FROM users WHERE 1 = 1",
            fixed: Vec::new(),
            fields: USER_FIELDS,
            default_order: "id",
            tie_break: "id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(user_row).collect::<Result<_, _>>()?, total))
    }

    /// Updates a user's profile. Returns whether the user exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_user_profile(
        &self,
        id: i64,
        email: Option<&str>,
        realname: &str,
        comment: &str,
    ) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE users SET email = $1, realname = $2, comment = $3, updated_at = $4 WHERE id = $5")
                .bind(email)
                .bind(realname)
                .bind(comment)
                .bind(now_millis())
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(|e| conflict(e, "a user with this email"))?;
        if done.rows_affected() == 1 {
            let name = audit::name_in(&mut w.tx, audit::USER_NAME, id).await?;
            w.audit(AuditEvent::new("update", "user", name).described("update user profile"));
        }
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<bool, DbError> {
        let query = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now_millis())
            .bind(id);
        self.update_user(id, query, "change user password", true).await
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_user_sysadmin(&self, id: i64, sysadmin: bool) -> Result<bool, DbError> {
        let query = sqlx::query("UPDATE users SET sysadmin = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(sysadmin))
            .bind(now_millis())
            .bind(id);
        let description = if sysadmin { "grant system administrator" } else { "revoke system administrator" };
        self.update_user(id, query, description, false).await
    }

    /// Runs one update of user `id`, audited as `description`, ending the user's portal
    /// sessions in the same transaction when `end_sessions` (a new password ends every session
    /// the old one opened). Returns whether the user exists.
    async fn update_user(
        &self,
        id: i64,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        description: &str,
        end_sessions: bool,
    ) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done = query.execute(&mut *w.tx).await?.rows_affected() == 1;
        if done && end_sessions {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *w.tx).await?;
        }
        if done {
            let name = audit::name_in(&mut w.tx, audit::USER_NAME, id).await?;
            w.audit(AuditEvent::new("update", "user", name).described(description));
        }
        w.commit().await?;
        Ok(done)
    }

    /// Deletes a user and their memberships. Returns whether the user existed.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_user(&self, id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let name = audit::name_in(&mut w.tx, audit::USER_NAME, id).await?;
        sqlx::query("DELETE FROM project_members WHERE entity_type = 'u' AND entity_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *w.tx).await?;
        if done.rows_affected() == 1 {
            w.audit(AuditEvent::new("delete", "user", name));
        }
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the user owns any project.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn owns_projects(&self, user_id: i64) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE owner_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    // ---- projects

    /// Creates a project with its metadata, its owner as project admin, in one transaction.
    pub async fn create_project(&self, name: &str, owner_id: i64, metadata: &[(&str, &str)]) -> Result<i64, DbError> {
        self.create_project_with_quota(name, owner_id, metadata, -1, None).await
    }

    /// A project whose storage quota is `storage_limit` bytes (-1: none), with its CVE
    /// allowlist (expiry in seconds, items as a JSON array) if it is given one.
    #[tracing::instrument(name = "create_project", level = "info", skip_all)]
    pub async fn create_project_with_quota(
        &self,
        name: &str,
        owner_id: i64,
        metadata: &[(&str, &str)],
        storage_limit: i64,
        allowlist: Option<(Option<i64>, &str)>,
    ) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        let id = insert_project(&mut w.tx, name, owner_id, metadata, storage_limit).await?;
        if let Some((expires_at, items)) = allowlist {
            crate::allowlists::write_allowlist(&mut w.tx, Some(id), expires_at, items).await?;
        }
        w.audit(AuditEvent::new("create", "project", name).in_project(id));
        w.commit().await?;
        Ok(id)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_by_name(&self, name: &str) -> Result<Option<ProjectRow>, DbError> {
        let row = sqlx::query("SELECT id, name, owner_id, created_at, updated_at FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(project_row).transpose()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_by_id(&self, id: i64) -> Result<Option<ProjectRow>, DbError> {
        let row = sqlx::query("SELECT id, name, owner_id, created_at, updated_at FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(project_row).transpose()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_metadata(&self, project_id: i64) -> Result<Vec<(String, String)>, DbError> {
        let rows = sqlx::query("SELECT name, value FROM project_metadata WHERE project_id = $1 ORDER BY name")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// Sets metadata keys (inserting or replacing).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_project_metadata(&self, project_id: i64, entries: &[(&str, &str)]) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        for (key, value) in entries {
            sqlx::query(
                "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
            )
            .bind(project_id)
            .bind(*key)
            .bind(*value)
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query("UPDATE projects SET updated_at = $1 WHERE id = $2")
            .bind(now_millis())
            .bind(project_id)
            .execute(&mut *w.tx)
            .await?;
        let name = audit::name_in(&mut w.tx, audit::PROJECT_NAME, project_id).await?;
        let keys = entries.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        w.audit(
            AuditEvent::new("update", "project", name)
                .in_project(project_id)
                .described(format!("update project metadata: {keys}")),
        );
        w.commit().await?;
        Ok(())
    }

    /// Removes one metadata key. Returns whether it was set.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_project_metadata(&self, project_id: i64, key: &str) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(key)
            .execute(&mut *w.tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            let name = audit::name_in(&mut w.tx, audit::PROJECT_NAME, project_id).await?;
            w.audit(
                AuditEvent::new("update", "project", name)
                    .in_project(project_id)
                    .described(format!("delete project metadata: {key}")),
            );
        }
        w.commit().await?;
        Ok(done)
    }

    /// Adds a user (`'u'`) or group (`'g'`) member with a role id. Returns the member id.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn add_member(
        &self,
        project_id: i64,
        entity_type: &str,
        entity_id: i64,
        role: i64,
    ) -> Result<i64, DbError> {
        let mut w = self.begin_write().await?;
        let now = now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO project_members (project_id, entity_type, entity_id, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(project_id)
        .bind(entity_type)
        .bind(entity_id)
        .bind(role)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| conflict(e, "this member"))?;
        let name = audit::name_in(&mut w.tx, audit::MEMBER_NAME, id).await?;
        w.audit(
            AuditEvent::new("create", "member", name)
                .in_project(project_id)
                .described(format!("add member with role {role}")),
        );
        w.commit().await?;
        Ok(id)
    }

    /// Projects visible to `visible_to` (`None`: all; `Some(user id)`: public ones and those the
    /// user is a member of; `Some(0)`: public ones), whose name contains `name` and, if given,
    /// whose publicity is `public`, filtered and ordered by `query` (by name unless asked
    /// otherwise): one page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_projects(
        &self,
        visible_to: Option<i64>,
        name: &str,
        public: Option<bool>,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ProjectRow>, i64), DbError> {
        let public = match public {
            None => -1i64,
            Some(p) => i64::from(p),
        };
        // $2 = -1: no visibility filter; $3 = -1: no publicity filter.
        let listing = Listing {
            columns: "p.id, p.name, p.owner_id, p.created_at, p.updated_at",
            from: "FROM projects p WHERE p.name LIKE $1 ESCAPE '\\' \
                AND ($2 < 0 OR EXISTS (SELECT 1 FROM project_metadata m WHERE m.project_id = p.id AND m.name = 'public' AND m.value = 'true') \
                     OR EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = p.id AND pm.entity_type = 'u' AND pm.entity_id = $2)) \
                AND ($3 < 0 OR (CASE WHEN EXISTS (SELECT 1 FROM project_metadata m WHERE m.project_id = p.id AND m.name = 'public' AND m.value = 'true') THEN 1 ELSE 0 END) = $3)",
            fixed: vec![Arg::Text(like_contains(name)), Arg::Int(visible_to.unwrap_or(-1)), Arg::Int(public)],
            fields: PROJECT_FIELDS,
            default_order: "p.name",
            tie_break: "p.id",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(project_row).collect::<Result<_, _>>()?, total))
    }

    /// Number of repositories in a project.
    /// Metadata of the given projects: (project id, key, value), by key.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn projects_metadata(&self, project_ids: &[i64]) -> Result<Vec<(i64, String, String)>, DbError> {
        let sql = "SELECT project_id, name, value FROM project_metadata WHERE project_id IN ({ids}) ORDER BY name";
        let rows = self.fetch_by_ids(sql, project_ids).await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The owners' names of the given projects: (project id, user name).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_owner_names(&self, project_ids: &[i64]) -> Result<Vec<(i64, String)>, DbError> {
        let sql = "SELECT p.id, u.username FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id IN ({ids})";
        let rows = self.fetch_by_ids(sql, project_ids).await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// Repository counts of the given projects: (project id, count), for those that have any.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_repository_counts(&self, project_ids: &[i64]) -> Result<Vec<(i64, i64)>, DbError> {
        let sql = "SELECT project_id, CAST(COUNT(*) AS BIGINT) FROM repositories WHERE project_id IN ({ids}) \
                   GROUP BY project_id";
        let rows = self.fetch_by_ids(sql, project_ids).await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// A user's direct memberships: (project id, role id).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn user_roles(&self, user_id: i64) -> Result<Vec<(i64, i64)>, DbError> {
        let rows =
            sqlx::query("SELECT project_id, role FROM project_members WHERE entity_type = 'u' AND entity_id = $1")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn project_repository_count(&self, project_id: i64) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Deletes a project that has no repositories, in one transaction with the check. Returns
    /// `Ok(false)` when it still has repositories.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_empty_project(&self, project_id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let repos: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&mut *w.tx)
            .await?;
        if repos > 0 {
            return Ok(false);
        }
        let name = audit::name_in(&mut w.tx, audit::PROJECT_NAME, project_id).await?;
        // Its retention policy goes by cascade; the policy's schedule is not a row of it.
        sqlx::query(
            "DELETE FROM job_schedules WHERE job_type = $1 AND vendor_id IN \
             (SELECT id FROM retention_policies WHERE project_id = $2)",
        )
        .bind(crate::retention::JOB_KIND)
        .bind(project_id)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("DELETE FROM projects WHERE id = $1").bind(project_id).execute(&mut *w.tx).await?;
        w.audit(AuditEvent::new("delete", "project", name).in_project(project_id));
        w.commit().await?;
        Ok(true)
    }

    /// User members of a project whose name contains `name`, by name, one page, with the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_members(
        &self,
        project_id: i64,
        name: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<MemberRow>, i64), DbError> {
        let pattern = like_contains(name);
        const FROM: &str = "FROM project_members pm JOIN users u ON u.id = pm.entity_id \
             WHERE pm.entity_type = 'u' AND pm.project_id = $1 AND u.username LIKE $2 ESCAPE '\\'";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pm.id, pm.project_id, pm.entity_type, pm.entity_id, u.username, pm.role {FROM} ORDER BY u.username LIMIT $3 OFFSET $4"
        )))
        .bind(project_id)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {FROM}")))
            .bind(project_id)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(member_row).collect::<Result<_, _>>()?, total))
    }

    /// One member of a project.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn member(&self, project_id: i64, member_id: i64) -> Result<Option<MemberRow>, DbError> {
        let row = sqlx::query(
            "SELECT pm.id, pm.project_id, pm.entity_type, pm.entity_id, u.username, pm.role \
             FROM project_members pm JOIN users u ON u.id = pm.entity_id \
             WHERE pm.entity_type = 'u' AND pm.project_id = $1 AND pm.id = $2",
        )
        .bind(project_id)
        .bind(member_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(member_row).transpose()?)
    }

    /// Changes a member's role. Returns whether the member exists.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_member_role(&self, project_id: i64, member_id: i64, role: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE project_members SET role = $1, updated_at = $2 WHERE project_id = $3 AND id = $4")
                .bind(role)
                .bind(now_millis())
                .bind(project_id)
                .bind(member_id)
                .execute(&mut *w.tx)
                .await?;
        if done.rows_affected() == 1 {
            let name = audit::name_in(&mut w.tx, audit::MEMBER_NAME, member_id).await?;
            w.audit(
                AuditEvent::new("update", "member", name)
                    .in_project(project_id)
                    .described(format!("change member role to {role}")),
            );
        }
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a member. Returns whether the member existed.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_member(&self, project_id: i64, member_id: i64) -> Result<bool, DbError> {
        let mut w = self.begin_write().await?;
        let name = audit::name_in(&mut w.tx, audit::MEMBER_NAME, member_id).await?;
        let done = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(member_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            w.audit(AuditEvent::new("delete", "member", name).in_project(project_id));
        }
        w.commit().await?;
        Ok(done)
    }

    /// The role id of a user in a project, if a member.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn member_role(&self, project_id: i64, user_id: i64) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND entity_type = 'u' AND entity_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    // ---- sessions

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        let now = now_millis();
        // Ended sessions go whenever a new one starts: the table stays small without a job.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(&mut *w.tx).await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let name = audit::name_in(&mut w.tx, audit::USER_NAME, user_id).await?;
        w.audit(AuditEvent::new("login", "user", name));
        w.commit().await?;
        Ok(())
    }

    /// The user id and CSRF token of a live session.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn session(&self, id_hash: &str) -> Result<Option<(i64, String)>, DbError> {
        let row = sqlx::query("SELECT user_id, csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        let user: Option<i64> = sqlx::query_scalar("SELECT user_id FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&mut *w.tx).await?;
        if let Some(user) = user {
            let name = audit::name_in(&mut w.tx, audit::USER_NAME, user).await?;
            w.audit(AuditEvent::new("logout", "user", name));
        }
        w.commit().await?;
        Ok(())
    }

    // ---- settings

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn setting(&self, name: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The setting's value; if it has none, `value` becomes it first. Of replicas racing to set
    /// it, the first wins and all read the same value.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, DbError> {
        self.write_one(
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value),
        )
        .await?;
        self.setting(name).await?.ok_or_else(|| DbError::Conflict(format!("setting {name} vanished")))
    }

    /// Every setting whose name is among `names`, as stored.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn settings_named(&self, names: &[&str]) -> Result<Vec<(String, String)>, DbError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, value FROM settings ORDER BY name").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().filter(|(name, _)| names.contains(&name.as_str())).collect())
    }

    /// Sets several settings at once, recorded as one `update_configuration` event naming
    /// them (not their values, which may be secrets).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn update_settings(&self, values: &[(&str, String)]) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        for (name, value) in values {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(*name)
            .bind(value)
            .execute(&mut *w.tx)
            .await?;
        }
        let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
        w.audit(
            AuditEvent::new("update", "configuration", "configurations")
                .described(format!("update configuration: {}", names.join(", "))),
        );
        w.commit().await
    }

    #[tracing::instrument(level = "info", skip_all)]
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), DbError> {
        self.write_one(sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)).await?;
        Ok(())
    }
}
