//! Two replicas on one database, each with its own caches: what one writes, the other stops
//! answering from memory as soon as Redis carries the change (well before any entry would age
//! out), and without a working subscription entries live only briefly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_auth::rbac::Subject;
use berth_core::Registry;
use berth_core::cache::{Caches, Coherence};
use berth_core::identity::Identities;
use berth_core::projects::{ProjectRef, Projects};
use berth_core::shared::SharedState;
use berth_core::users::{NewUserReq, Users};
use berth_db::Db;
use berth_oci::{Reference, RepositoryName};
use bytes::Bytes;

mod common;
use common::{redis_url, unique_prefix};

struct Replica {
    registry: Arc<Registry>,
    identities: Identities,
    projects: Projects,
    users: Users,
}

async fn replica(dir: &std::path::Path, url: &str, prefix: &str) -> Replica {
    let db = Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    let store = Arc::new(berth_store::FsStore::open(dir.join("blobs")).unwrap());
    let shared = SharedState::connect_with_prefix(url, prefix).unwrap();
    let registry = Arc::new(Registry::new(db.clone(), store).with_shared(shared));
    let caches = registry.caches().clone();
    tokio::spawn(caches.clone().follow());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !caches.coherent() {
        assert!(Instant::now() < deadline, "no subscription to Redis within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Replica {
        projects: Projects::new(&registry),
        users: Users::new(&registry),
        registry,
        identities: Identities::new(db.clone()).with_caches(caches.clone()),
    }
}

/// Two replicas on one new database, bootstrapped (administrator and `library`).
async fn two_replicas(dir: &std::path::Path, url: &str) -> (Replica, Replica) {
    let prefix = unique_prefix();
    let a = replica(dir, url, &prefix).await;
    let b = replica(dir, url, &prefix).await;
    a.identities.bootstrap(Some("Harbor12345")).await.unwrap();
    (a, b)
}

/// An image index without children: a manifest that needs no blobs, made distinct by `n`.
fn index(n: u32) -> Bytes {
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{{"n":"{n}"}}}}"#
    ))
}

async fn put(r: &Replica, name: &RepositoryName, tag: &str, n: u32) -> String {
    let reference = Reference::parse(tag).unwrap();
    let (digest, _) = r
        .registry
        .content()
        .put_manifest(name, &reference, Some("application/vnd.oci.image.index.v1+json"), index(n), &[])
        .await
        .unwrap();
    digest.to_string()
}

async fn get(r: &Replica, name: &RepositoryName, tag: &str) -> Option<String> {
    let reference = Reference::parse(tag).unwrap();
    r.registry.manifest_read(name, &reference, true).await.ok().map(|m| m.digest.to_string())
}

/// How long until `check` holds, failing after `limit`.
async fn until<F: std::future::Future<Output = bool>>(limit: Duration, mut check: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "not seen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_tag_moved_on_one_replica_is_followed_by_the_other() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path(), &url).await;
    let name = RepositoryName::parse("library/app").unwrap();

    let first = put(&a, &name, "v1", 1).await;
    assert_eq!(get(&b, &name, "v1").await.as_deref(), Some(first.as_str()));
    // B now answers v1 from memory; A moves it.
    let second = put(&a, &name, "v1", 2).await;
    let took = until(Duration::from_secs(5), || async { get(&b, &name, "v1").await.as_deref() == Some(&second) }).await;
    eprintln!("the tag move reached the other replica in {took:?}");

    // A deleted tag stops resolving there too.
    b.registry.content().delete_manifest(&name, &Reference::parse("v1").unwrap()).await.unwrap();
    until(Duration::from_secs(5), || async { get(&a, &name, "v1").await.is_none() }).await;
}

#[tokio::test]
async fn a_project_made_private_on_one_replica_is_private_on_the_other() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path(), &url).await;
    let public = |r: &Replica| {
        let identities = r.identities.clone();
        async move { identities.project_access(&Subject::Anonymous, "library").await.unwrap().unwrap().public }
    };
    assert!(public(&b).await);
    let admin = a.identities.authenticate_user("admin", "Harbor12345", None).await.unwrap().unwrap();
    let private = [("public".to_string(), "false".to_string())].into_iter().collect();
    a.projects.update_metadata(&admin, &ProjectRef::Name("library"), &private).await.unwrap();
    until(Duration::from_secs(5), || async { !public(&b).await }).await;
}

#[tokio::test]
async fn a_user_made_administrator_on_one_replica_is_one_on_the_other() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path(), &url).await;
    let admin = a.identities.authenticate_user("admin", "Harbor12345", None).await.unwrap().unwrap();
    let req = NewUserReq { username: "bob", email: None, realname: "", comment: "", password: "Passw0rdX" };
    let id = a.users.create(&admin, &req).await.unwrap();
    let is_admin = |r: &Replica| {
        let identities = r.identities.clone();
        async move { identities.user("bob").await.unwrap().unwrap().is_sysadmin() }
    };
    assert!(!is_admin(&b).await);
    a.users.set_sysadmin(&admin, id, true).await.unwrap();
    until(Duration::from_secs(5), || async { is_admin(&b).await }).await;
}

#[tokio::test]
async fn without_a_subscription_entries_live_only_briefly() {
    // Redis on a port nothing listens on: the subscription never forms.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let shared = SharedState::connect_with_prefix(&format!("redis://127.0.0.1:{port}"), &unique_prefix()).unwrap();
    let caches = Caches::with_ttls(Coherence::Redis, Some(shared), Duration::from_secs(60), Duration::from_millis(200));
    tokio::spawn(caches.clone().follow());
    caches.put_repository_id(caches.generation(), "p/r", 1);
    assert_eq!(caches.repository_id("p/r"), Some(1));
    assert!(!caches.coherent());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(caches.repository_id("p/r"), None);
}
