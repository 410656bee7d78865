//! The housekeeping queries, on SQLite or (with `BERTH_TEST_DATABASE=postgres`)
//! PostgreSQL.

mod common;

/// A replica that finds a schema newer than it knows refuses to start, clearly, and touches
/// nothing.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let t = common::open().await;
    t.db.close().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.url).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)").execute(&pool).await.unwrap();
    pool.close().await;
    let refused = berth_db::Db::connect(&t.url, 1).await;
    let Err(e) = refused else { panic!("a newer schema was accepted") };
    assert!(matches!(e, berth_db::DbError::SchemaTooNew { found: 9999, .. }), "{e}");
    assert!(e.to_string().contains("newer berth"), "{e}");
}
