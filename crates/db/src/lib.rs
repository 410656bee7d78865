//! Metadata: the schema, its migrations, and the queries of each aggregate.
//!
//! One code path for SQLite (embedded) and PostgreSQL (external): queries are written in the
//! SQL both understand and run through sqlx's `Any` driver; only DDL differs per dialect, in
//! `migrations/<dialect>/`. The database is the truth for what exists; storage holds bytes.

/// The condition on `m` that makes a manifest an artifact of its own in Harbor's listings: not
/// an accessory, and tagged or not the child of an index in its repository. (A macro, defined
/// before the modules that use it, so that `concat!` can splice it into their SQL.)
macro_rules! top_level {
    () => {
        "m.accessory_of IS NULL AND (EXISTS (SELECT 1 FROM tags tt WHERE tt.manifest_id = m.id) \
         OR NOT EXISTS (SELECT 1 FROM manifest_children pc JOIN manifests pm ON pm.id = pc.manifest_id \
         WHERE pc.kind = 'manifest' AND pc.digest = m.digest AND pm.repository_id = m.repository_id))"
    };
}

pub mod allowlists;
pub mod audit;
mod copy;
pub mod gc;
mod identity;
pub mod immutable;
pub mod job_queues;
pub mod jobs;
mod labels;
mod listing;
mod maintenance;
mod migrate;
pub mod quotas;
mod registry;
pub mod retention;
mod robots;
pub mod scans;
pub mod schedules;
pub mod security_hub;
mod stats;
pub mod vulndb;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub use audit::{AuditEvent, AuditRecord, AuditSettings, AuditSink, ChainReport, Operator};
pub use copy::{NOT_COPIED, TableCount};
pub use identity::{MemberRow, NewUser, ProjectRow, UserRow};
pub use labels::{LabelRow, LabelScope};
pub use listing::{ListQuery, Match};
pub use registry::{
    ArtifactRow, ArtifactScope, DeletedArtifact, ManifestRow, NewManifest, PutManifestError, REFERRERS_TAG_INDEX,
    RepositoryRow, TagRow, UploadRow,
};
pub use robots::{NewRobot, RobotPermissionRow, RobotRow};
pub use stats::{PoolState, ProjectStats};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("the database schema is at version {found}, newer than this build knows ({known}); run a newer berth")]
    SchemaTooNew { found: i64, known: i64 },
    /// A uniqueness rule refused the write; the text names what already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A listing's `q` or `sort` names an unknown field or holds a value of the wrong kind.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("unsupported database URL {0:?}")]
    UnsupportedUrl(String),
    /// Refused for now, to be tried again (a garbage collection is deleting the digest).
    #[error("{0}")]
    Busy(String),
    /// The write would take its project past its storage quota; nothing was recorded.
    #[error("{0}")]
    QuotaExceeded(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite allows one writer at a time; taking turns here avoids lock-upgrade failures of
    /// concurrent transactions that begin by reading.
    write_turn: Option<Arc<tokio::sync::Mutex<()>>>,
    audit_settings: audit::SharedSettings,
    job_triggers: jobs::SharedTriggers,
    /// Harbor's `quota_per_project_enable`: whether writes are held to their project's quota
    /// (usage is counted either way).
    quotas_enforced: Arc<std::sync::atomic::AtomicBool>,
}

impl Db {
    /// Opens the embedded database file (created if missing) in WAL mode.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Db, DbError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Db::connect(&url, 8).await
    }

    /// Connects to `sqlite://...` or `postgres://...` and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let db = Db::connect_unmigrated(url, max_connections).await?;
        migrate::run(&db).await?;
        Ok(db)
    }

    async fn connect_unmigrated(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(url)?
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // FULL: a commit is on disk before the client is told it succeeded.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let write_turn = (dialect == Dialect::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Db {
            pool,
            dialect,
            write_turn,
            audit_settings: Default::default(),
            job_triggers: Default::default(),
            quotas_enforced: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one writing statement in its own transaction (taking SQLite's writer turn);
    /// returns the rows it affected.
    async fn write_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<u64, DbError> {
        let mut w = self.begin_write().await?;
        let done = query.execute(&mut *w.tx).await?;
        w.commit().await?;
        Ok(done.rows_affected())
    }

    /// Begins a transaction that will write.
    async fn begin_write(&self) -> Result<WriteTx<'_>, DbError> {
        let turn = match &self.write_turn {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx {
            tx,
            _turn: turn,
            quotas_enforced: self.quotas_enforced(),
            audit: Vec::new(),
            settings: self.audit_settings.clone(),
            triggers: self.job_triggers.clone(),
        })
    }
}

/// A writing transaction: SQLite's writer turn, and the audit records (and the jobs they
/// trigger) it will commit with.
struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
    audit: Vec<audit::AuditRecord>,
    settings: audit::SharedSettings,
    triggers: jobs::SharedTriggers,
    /// Whether quota guards check limits, as it stood when the transaction began.
    quotas_enforced: bool,
}

/// A uniqueness violation as [`DbError::Conflict`] naming `what`; other errors as they are.
pub(crate) fn conflict(e: sqlx::Error, what: &str) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what.to_string()),
        _ => DbError::Sqlx(e),
    }
}

impl Db {
    /// The rows of `sql`, in which `{ids}` stands for an `IN` list of `ids` (bound, never
    /// spliced into the text); no rows for no ids.
    pub(crate) async fn fetch_by_ids(&self, sql: &str, ids: &[i64]) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sql.replace("{ids}", &placeholders(1, ids.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }
}

/// `$first, $first+1, ...`: `n` placeholders for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A LIKE pattern (with `ESCAPE '\'`) matching strings that contain `s` literally.
pub(crate) fn like_contains(s: &str) -> String {
    format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> Result<String, DbError> {
    let bad = || DbError::UnsupportedUrl(url.to_string());
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").ok_or_else(bad)? + 3;
    let host_end = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Creates an empty PostgreSQL database named `name` on the server of `admin_url` and returns
/// the URL that reaches it: for tests, which each want a database of their own, and for a
/// first installation on a server where the database does not exist yet.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, DbError> {
    use sqlx::Connection;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbError::UnsupportedUrl(format!("database name {name:?}")));
    }
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    // The name was checked above: identifiers cannot be bound.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
    conn.close().await?;
    with_database(admin_url, name)
}

/// Drops a database made by [`create_postgres_database`], closing its other sessions.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), DbError> {
    use sqlx::Connection;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbError::UnsupportedUrl(format!("database name {name:?}")));
    }
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Parameter `$param`, a JSON array of strings, as a table of one column, `column1`: a batch
/// of digests bound as one parameter. SQLite finds a numbered parameter by walking the
/// statement's list of parameter names, so a statement with a parameter per digest costs the
/// square of the batch to bind (most of a collection's time, measured, before this).
pub(crate) fn json_list(dialect: Dialect, param: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("(SELECT value AS column1 FROM json_each(${param}))"),
        Dialect::Postgres => format!("(SELECT value AS column1 FROM json_array_elements_text(${param}::json))"),
    }
}

/// A JSON array of `items`, to bind as the parameter [`json_list`] reads.
pub(crate) fn json_strings(items: &[&str]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x").unwrap(), "postgres://h/x");
    }
}
