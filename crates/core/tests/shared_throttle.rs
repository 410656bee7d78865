//! Failed logins counted in Redis make the guessing client wait on every replica; with Redis
//! unreachable, logins go on and each replica counts alone.

use berth_core::identity::{Identities, IdentityError};
use berth_core::shared::SharedState;
use berth_core::throttle::ThrottlePolicy;
use berth_db::{Db, NewUser};

mod common;
use common::{redis_url, unique_prefix};

fn policy() -> ThrottlePolicy {
    let minute = std::time::Duration::from_secs(60);
    ThrottlePolicy {
        free_failures: 3,
        client_free_failures: 100,
        window: minute,
        first_delay: minute,
        max_delay: minute,
    }
}

/// The client the tests guess from.
fn guesser() -> Option<std::net::IpAddr> {
    Some("192.0.2.7".parse().unwrap())
}

/// Whether the login was refused for the client's wait (rather than answered).
fn waits(result: Result<Option<berth_auth::rbac::Subject>, IdentityError>) -> bool {
    matches!(result, Err(IdentityError::Delayed(_)))
}

async fn db_with_user(dir: &std::path::Path) -> Db {
    let db = Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    let hash = berth_auth::password::hash("Passw0rdX").unwrap();
    let user =
        NewUser { username: "alice", email: None, realname: "", comment: "", password_hash: &hash, sysadmin: false };
    db.create_user(&user).await.unwrap();
    db
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

    assert!(b.authenticate_user("alice", "Passw0rdX", guesser()).await.unwrap().is_some());
    // Two failures on each replica: neither alone is past three, together they are.
    for r in [&a, &b] {
        for _ in 0..2 {
            assert!(r.authenticate_user("alice", "wrong", guesser()).await.unwrap().is_none());
        }
    }
    assert!(waits(a.authenticate_user("alice", "Passw0rdX", guesser()).await), "failures counted across replicas");
    let fresh = replica();
    assert!(
        waits(fresh.authenticate_user("alice", "Passw0rdX", guesser()).await),
        "a wait on a replica that saw none of the failures"
    );
    assert!(
        fresh.authenticate_user("alice", "Passw0rdX", None).await.unwrap().is_some(),
        "another client is not held up"
    );
}

#[tokio::test]
async fn without_redis_logins_go_on_and_each_replica_counts_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with_user(dir.path()).await;
    // Nothing listens on port 1.
    let gone = SharedState::connect_with_prefix("redis://127.0.0.1:1/0", &unique_prefix()).unwrap();
    let a = Identities::with_shared(db.clone(), policy(), gone);
    assert!(a.authenticate_user("alice", "Passw0rdX", guesser()).await.unwrap().is_some());
    for _ in 0..4 {
        assert!(a.authenticate_user("alice", "wrong", guesser()).await.unwrap().is_none());
    }
    assert!(waits(a.authenticate_user("alice", "Passw0rdX", guesser()).await), "a wait in this process");
}

/// A process killed on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn redis_server(dir: &std::path::Path, args: &[String]) -> Process {
    let child = std::process::Command::new("redis-server")
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    Process(child)
}

async fn wait_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// Through Sentinel: after the master is killed and the Sentinel promotes the replica, the
/// shared counts go on, on the new master.
#[tokio::test]
async fn through_sentinel_the_counts_follow_a_failover() {
    if std::process::Command::new("redis-server").arg("--version").output().is_err() {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "redis-server is required");
        eprintln!("SKIPPED: redis-server is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (m, r, s) = (free_port(), free_port(), free_port());
    let base = |port: u16| {
        vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ]
    };
    let master = redis_server(dir.path(), &base(m));
    wait_port(m).await;
    let mut replica_args = base(r);
    replica_args.extend(["--replicaof".into(), "127.0.0.1".into(), m.to_string()]);
    let _replica = redis_server(dir.path(), &replica_args);
    wait_port(r).await;
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nbind 127.0.0.1\nsentinel monitor berthmaster 127.0.0.1 {m} 1\n\
             sentinel down-after-milliseconds berthmaster 500\nsentinel failover-timeout berthmaster 2000\n"
        ),
    )
    .unwrap();
    let _sentinel = redis_server(dir.path(), &[conf.to_string_lossy().into_owned(), "--sentinel".into()]);
    wait_port(s).await;

    let db_dir = tempfile::tempdir().unwrap();
    let db = db_with_user(db_dir.path()).await;
    let prefix = unique_prefix();
    let shared = || {
        SharedState::connect_sentinel(&[format!("127.0.0.1:{s}")], "berthmaster", Default::default(), None, &prefix)
            .unwrap()
    };
    let mut ok = false;
    for _ in 0..50 {
        if shared().ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the Sentinel names the master");
    let a = Identities::with_shared(db.clone(), policy(), shared());
    assert!(a.authenticate_user("alice", "wrong", guesser()).await.unwrap().is_none());

    drop(master);
    // Until the Sentinel promotes the replica, calls fail fast and logins go on regardless.
    let mut promoted = false;
    for _ in 0..100 {
        if shared().ping().await.is_ok()
            && a.authenticate_user("alice", "Passw0rdX", guesser()).await.unwrap().is_some()
        {
            promoted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(promoted, "the replica was promoted and is reached through the Sentinel");
    let b = Identities::with_shared(db.clone(), policy(), shared());
    for _ in 0..4 {
        assert!(b.authenticate_user("alice", "wrong", guesser()).await.unwrap().is_none());
    }
    let c = Identities::with_shared(db.clone(), policy(), shared());
    assert!(
        waits(c.authenticate_user("alice", "Passw0rdX", guesser()).await),
        "the wait was written to the new master, seen by another replica"
    );
}
