//! The database each test runs against: a fresh SQLite file, or, when `BERTH_TEST_DATABASE`
//! is `postgres`, a fresh database on the server at `BERTH_TEST_POSTGRES_URL`.

use berth_db::Db;

#[allow(dead_code)] // each test file uses a different part
pub struct TestDb {
    pub db: Db,
    /// The URL the database was opened with, for tests that reach it without `Db`.
    pub url: String,
    _dir: tempfile::TempDir,
}

pub async fn open() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = if std::env::var("BERTH_TEST_DATABASE").as_deref() == Ok("postgres") {
        let admin = std::env::var("BERTH_TEST_POSTGRES_URL")
            .expect("BERTH_TEST_DATABASE=postgres needs BERTH_TEST_POSTGRES_URL");
        let name = format!("berth_test_{}", uuid_like());
        berth_db::create_postgres_database(&admin, &name).await.unwrap()
    } else {
        format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display())
    };
    let db = Db::connect(&url, 4).await.unwrap();
    TestDb { db, url, _dir: dir }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{nanos}", std::process::id())
}
