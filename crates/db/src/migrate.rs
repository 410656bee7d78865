//! Schema migrations, embedded in the binary and applied in order, each in its own transaction.
//!
//! Our own runner rather than `sqlx::migrate!`: that macro pulls in the compile-time query
//! machinery, and we need per-dialect scripts under one version sequence.

use crate::{Db, DbError, Dialect, now_millis};

struct Migration {
    version: i64,
    sqlite: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sqlite: include_str!("../migrations/sqlite/0001_registry.sql") },
    Migration { version: 2, sqlite: include_str!("../migrations/sqlite/0002_identities.sql") },
    Migration { version: 3, sqlite: include_str!("../migrations/sqlite/0003_repository_project.sql") },
    Migration { version: 4, sqlite: include_str!("../migrations/sqlite/0004_sessions.sql") },
    Migration { version: 5, sqlite: include_str!("../migrations/sqlite/0005_repository_details.sql") },
    Migration { version: 6, sqlite: include_str!("../migrations/sqlite/0006_pull_time.sql") },
    Migration { version: 7, sqlite: include_str!("../migrations/sqlite/0007_labels.sql") },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) async fn run(db: &Db) -> Result<(), DbError> {
    let mut w = db.begin_write().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *w.tx)
    .await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(&mut *w.tx).await?;
    let current = current.unwrap_or(0);
    if current > latest_version() {
        return Err(DbError::SchemaTooNew { found: current, known: latest_version() });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let script = match db.dialect {
            Dialect::Sqlite => m.sqlite,
        };
        sqlx::raw_sql(script).execute(&mut *w.tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(m.version)
            .bind(now_millis())
            .execute(&mut *w.tx)
            .await?;
        tracing::info!(version = m.version, "applied schema migration");
    }
    w.tx.commit().await?;
    Ok(())
}
