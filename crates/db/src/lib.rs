//! Metadata: the schema, its migrations, and the queries of each aggregate.
//!
//! One code path for SQLite (embedded) and PostgreSQL (external): queries are written in the
//! SQL both understand and run through sqlx's `Any` driver; only DDL differs per dialect, in
//! `migrations/<dialect>/`. The database is the truth for what exists; storage holds bytes.

mod identity;
mod labels;
mod listing;
mod migrate;
mod registry;
mod robots;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub use identity::{MemberRow, NewUser, ProjectRow, UserRow};
pub use labels::{LabelRow, LabelScope};
pub use listing::{ListQuery, Match};
pub use registry::{ArtifactRow, ManifestRow, NewManifest, PutManifestError, RepositoryRow, UploadRow};
pub use robots::{NewRobot, RobotPermissionRow, RobotRow};

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite allows one writer at a time; taking turns here avoids lock-upgrade failures of
    /// concurrent transactions that begin by reading.
    write_turn: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Db {
    /// Opens the embedded database file (created if missing) in WAL mode.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Db, DbError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Db::connect(&url, 8).await
    }

    /// Connects to `sqlite://...` and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
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
        let db = Db { pool, dialect, write_turn };
        migrate::run(&db).await?;
        Ok(db)
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
        w.tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Begins a transaction that will write.
    async fn begin_write(&self) -> Result<WriteTx<'_>, DbError> {
        let turn = match &self.write_turn {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _turn: turn })
    }
}

struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// A uniqueness violation as [`DbError::Conflict`] naming `what`; other errors as they are.
pub(crate) fn conflict(e: sqlx::Error, what: &str) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what.to_string()),
        _ => DbError::Sqlx(e),
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
