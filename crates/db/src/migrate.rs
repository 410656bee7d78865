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
    migration!(20, "0020_job_service.sql"),
    migration!(21, "0021_immutable_tag_rules.sql"),
    migration!(22, "0022_project_quotas.sql"),
    migration!(23, "0023_repository_limits.sql"),
    migration!(24, "0024_tag_retention.sql"),
    migration!(25, "0025_vulnerability_database.sql"),
    migration!(26, "0026_scan_reports.sql"),
    migration!(27, "0027_cve_allowlists.sql"),
    migration!(28, "0028_job_parents.sql"),
    migration!(29, "0029_scan_vulnerabilities.sql"),
    migration!(30, "0030_index_earlier_reports.sql"),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) async fn run(db: &Db) -> Result<(), DbError> {
    run_to(db, latest_version()).await
}

/// Applies the migrations up to `target`.
async fn run_to(db: &Db, target: i64) -> Result<(), DbError> {
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
    for m in MIGRATIONS.iter().filter(|m| m.version > current && m.version <= target) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at `version`, SQLite or (with `BERTH_TEST_DATABASE=postgres`) PostgreSQL.
    async fn at_version(dir: &std::path::Path, version: i64) -> Db {
        let url = if std::env::var("BERTH_TEST_DATABASE").as_deref() == Ok("postgres") {
            let admin = std::env::var("BERTH_TEST_POSTGRES_URL").expect("BERTH_TEST_POSTGRES_URL");
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            crate::create_postgres_database(&admin, &format!("berth_test_{}_{nanos}", std::process::id()))
                .await
                .unwrap()
        } else {
            format!("sqlite://{}?mode=rwc", dir.join("berth.db").display())
        };
        let db = Db::connect_unmigrated(&url, 2).await.unwrap();
        run_to(&db, version).await.unwrap();
        db
    }

    /// Migration 0020 moves the audit purge's runs and schedule onto the job service.
    #[tokio::test]
    async fn the_audit_purge_moves_onto_the_job_service() {
        let dir = tempfile::tempdir().unwrap();
        let db = at_version(dir.path(), 19).await;
        let params = r#"{"audit_retention_hour":24,"dry_run":false,"include_event_types":"pull_artifact"}"#;
        for (kind, status, log) in [("MANUAL", "Success", "3 purged"), ("SCHEDULE", "Running", "")] {
            sqlx::query(
                "INSERT INTO purge_audit_runs (job_kind, parameters, status, log, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1000, 2000)",
            )
            .bind(kind)
            .bind(params)
            .bind(status)
            .bind(log)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        let schedule = format!(
            r#"{{"kind":"Daily","cron":"0 0 0 * * *","parameters":{params},"created_at":5000,"updated_at":6000}}"#
        );
        for (name, value) in [("purge_audit_schedule", schedule.as_str()), ("purge_audit_last_fired", "86400")] {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                .bind(name)
                .bind(value)
                .execute(&db.pool)
                .await
                .unwrap();
        }
        run(&db).await.unwrap();

        let (runs, total) = db.jobs_of_kind("PURGE_AUDIT_LOG", 10, 0).await.unwrap();
        assert_eq!(total, 2);
        let got: Vec<(&str, &str, &str, &str)> = runs
            .iter()
            .map(|j| (j.trigger.as_str(), j.status.as_str(), j.log.as_str(), j.parameters.as_str()))
            .collect();
        assert_eq!(
            got,
            [("SCHEDULE", "Error", "", params), ("MANUAL", "Success", "3 purged", params)],
            "newest first; one cut off while running ended as an error"
        );
        assert!(runs.iter().all(|j| j.finished_at == Some(2000) && j.created_at == 1000));
        let s = db.job_schedule("PURGE_AUDIT_LOG").await.unwrap().unwrap();
        assert_eq!((s.cron_type.as_str(), s.cron.as_str(), s.last_fired), ("Daily", "0 0 0 * * *", 86400));
        assert_eq!((s.created_at, s.updated_at), (5000, 6000));
        assert_eq!(s.parameters, params);
        assert_eq!(db.setting("purge_audit_schedule").await.unwrap(), None);
        assert_eq!(db.setting("purge_audit_last_fired").await.unwrap(), None);
    }
}
