//! Failed logins counted in Redis lock an account on every replica; with Redis unreachable,
//! logins go on and each replica counts alone.

use berth_core::identity::Identities;
use berth_core::shared::SharedState;
use berth_core::throttle::ThrottlePolicy;
use berth_db::{Db, NewUser};

fn redis_url() -> Option<String> {
    match std::env::var("BERTH_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("BERTH_E2E_REQUIRED").is_none(),
                "BERTH_TEST_REDIS_URL is not set and BERTH_E2E_REQUIRED is set"
            );
            eprintln!("SKIPPED: BERTH_TEST_REDIS_URL is not set (scripts/start-test-services gives one)");
            None
        }
    }
}

fn policy() -> ThrottlePolicy {
    let minute = std::time::Duration::from_secs(60);
    ThrottlePolicy { max_failures: 3, window: minute, lockout: minute }
}

async fn db_with_user(dir: &std::path::Path) -> Db {
    let db = Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    let hash = berth_auth::password::hash("Passw0rdX").unwrap();
    let user =
        NewUser { username: "alice", email: None, realname: "", comment: "", password_hash: &hash, sysadmin: false };
    db.create_user(&user).await.unwrap();
    db
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("berth-test:{}:{nanos}:", std::process::id())
}

#[tokio::test]
async fn a_lock_made_on_one_replica_holds_on_another() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = db_with_user(dir.path()).await;
    let prefix = unique_prefix();
    let replica =
        || Identities::with_shared(db.clone(), policy(), SharedState::connect_with_prefix(&url, &prefix).unwrap());
    let (a, b) = (replica(), replica());

    assert!(b.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_some());
    // Two failures on each replica: neither alone reaches three, together they do.
    for r in [&a, &b] {
        for _ in 0..2 {
            assert!(r.authenticate_user("alice", "wrong", None).await.unwrap().is_none());
        }
    }
    assert!(
        a.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_none(),
        "locked by failures counted across replicas"
    );
    let fresh = replica();
    assert!(
        fresh.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_none(),
        "locked on a replica that saw none of the failures"
    );
}

#[tokio::test]
async fn without_redis_logins_go_on_and_each_replica_counts_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with_user(dir.path()).await;
    // Nothing listens on port 1.
    let gone = SharedState::connect_with_prefix("redis://127.0.0.1:1/0", &unique_prefix()).unwrap();
    let a = Identities::with_shared(db.clone(), policy(), gone);
    assert!(a.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_some());
    for _ in 0..3 {
        assert!(a.authenticate_user("alice", "wrong", None).await.unwrap().is_none());
    }
    assert!(a.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_none(), "locked in this process");
}
