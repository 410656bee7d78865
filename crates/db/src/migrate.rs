//! Schema migrations, embedded in the binary and applied in order, each in its own transaction.
//!
//! Our own runner rather than `sqlx::migrate!`: that macro pulls in the compile-time query
//! machinery, and we need per-dialect scripts under one version sequence.

use crate::{Db, DbError, Dialect, now_millis};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

/// One migration's scripts for both dialects, by file name.
macro_rules! migration {
    ($version:expr, $file:literal) => {
        Migration {
            version: $version,
            sqlite: include_str!(concat!("../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../migrations/postgres/", $file)),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_registry.sql"),
    migration!(2, "0002_identities.sql"),
    migration!(3, "0003_repository_project.sql"),
    migration!(4, "0004_sessions.sql"),
    migration!(5, "0005_repository_details.sql"),
    migration!(6, "0006_pull_time.sql"),
    migration!(7, "0007_labels.sql"),
    migration!(8, "0008_leases.sql"),
    migration!(9, "0009_upload_store_state.sql"),
    migration!(10, "0010_manifests_by_time.sql"),
    migration!(11, "0011_audit_log.sql"),
    migration!(12, "0012_project_stats.sql"),
    migration!(13, "0013_purge_audit_runs.sql"),
    migration!(14, "0014_project_usage.sql"),
    migration!(15, "0015_usernames_without_case.sql"),
    migration!(16, "0016_accessories_and_tag_ids.sql"),
    migration!(17, "0017_artifact_icons.sql"),
    migration!(18, "0018_jobs.sql"),
    migration!(19, "0019_garbage_collection.sql"),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) async fn run(db: &Db) -> Result<(), DbError> {
    let mut w = db.begin_write().await?;
    if db.dialect == Dialect::Postgres {
        // Replicas starting together: one migrates while the others wait here, then find
        // nothing left to do. The lock ends with the transaction.
        sqlx::query("SELECT pg_advisory_xact_lock(7262930613)").execute(&mut *w.tx).await?;
    }
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
            Dialect::Postgres => m.postgres,
        };
        sqlx::raw_sql(script).execute(&mut *w.tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(m.version)
            .bind(now_millis())
            .execute(&mut *w.tx)
            .await?;
        tracing::info!(version = m.version, "applied schema migration");
    }
    w.commit().await?;
    Ok(())
}
