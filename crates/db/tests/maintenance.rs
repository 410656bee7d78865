//! Leases and the housekeeping queries, on SQLite or (with `BERTH_TEST_DATABASE=postgres`)
//! PostgreSQL.

mod common;

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    let t = common::open().await;
    let db = &t.db;
    assert!(db.hold_lease("work", "a", 60_000).await.unwrap());
    assert!(!db.hold_lease("work", "b", 60_000).await.unwrap(), "held by a");
    assert!(db.hold_lease("work", "a", 60_000).await.unwrap(), "a renews");
    assert!(db.hold_lease("other", "b", 60_000).await.unwrap(), "leases are independent");
    db.release_lease("work", "b").await.unwrap();
    assert!(!db.hold_lease("work", "b", 60_000).await.unwrap(), "only the holder releases");
    db.release_lease("work", "a").await.unwrap();
    assert!(db.hold_lease("work", "b", 1).await.unwrap(), "released: free");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(db.hold_lease("work", "a", 60_000).await.unwrap(), "expired: free");
}

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
