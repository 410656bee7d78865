//! In-memory answers for the hot read paths: what a project is (id, visibility) and a user's role
//! in it, who a user is (for tokens), a repository's id, what its tags and digests resolve to, and
//! manifest bytes.
//!
//! Correctness rests on three rules:
//! - Every write that can change a cached answer calls [`Caches::changed`] after it is committed.
//!   That evicts here at once and, with Redis, publishes the change so that every replica evicts
//!   it too (`SUBSCRIBE` in [`Caches::follow`]).
//! - A reader notes the generation before it reads the database and stores its answer only if
//!   no change arrived meanwhile, so an answer read before a change cannot outlive it.
//! - Every entry also ages out: after `ttl_coherent` while changes are known to reach this
//!   process (one process alone on its database, or subscribed to Redis), after `ttl_incoherent`
//!   otherwise (replicas on PostgreSQL without Redis, or while the subscription is down), so a
//!   missed message costs at most that long.
//!
//! Manifest bytes are keyed by digest and never change, so they need no invalidation: only a
//! byte budget bounds them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_auth::rbac::{Role, Subject};
use berth_db::ManifestRow;
use bytes::Bytes;

/// The lookup counters (`registry_storage_cache_total{type}`), resolved once: a lookup is on
/// the path of every manifest GET.
struct LookupCounters {
    request: Arc<berth_metrics::Counter>,
    hit: Arc<berth_metrics::Counter>,
    miss: Arc<berth_metrics::Counter>,
}

fn counted<T>(found: Option<T>) -> Option<T> {
    static COUNTERS: std::sync::LazyLock<LookupCounters> = std::sync::LazyLock::new(|| {
        let family = &berth_metrics::metrics().storage_cache;
        LookupCounters { request: family.get(&["Request"]), hit: family.get(&["Hit"]), miss: family.get(&["Miss"]) }
    });
    COUNTERS.request.inc();
    if found.is_some() {
        COUNTERS.hit.inc()
    } else {
        COUNTERS.miss.inc()
    }
    found
}

/// A project as the access decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectFacts {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub created_at: i64,
    /// "Prevent vulnerable images from running" (`prevent_vul`): the lowest severity that
    /// refuses a pull (`severity`), or `None` when the policy is off.
    pub prevent_vul: Option<String>,
    /// Scan on push (`auto_scan`).
    pub auto_scan: bool,
    /// The CVE allowlist `prevent_vul` exempts, when the policy is on and it lists anything.
    pub cve_allowlist: Option<std::sync::Arc<crate::allowlists::ActiveAllowlist>>,
}

/// What a write changed, as far as the caches care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A project's existence, metadata or members; its repositories too.
    Project(String),
    /// A repository's existence, tags or manifests.
    Repository(String),
    /// The system configuration (`/configurations`).
    Settings,
    /// Anything (a user deleted, whose id may be reused, or made administrator or not; a
    /// password changed; a robot changed, re-keyed or deleted).
    All,
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Change::Project(name) => format!("p {name}"),
            Change::Repository(name) => format!("r {name}"),
            Change::Settings => "s".into(),
            Change::All => "*".into(),
        }
    }

    fn decode(message: &str) -> Option<Change> {
        match message.split_once(' ') {
            Some(("p", name)) => Some(Change::Project(name.into())),
            Some(("r", name)) => Some(Change::Repository(name.into())),
            _ if message == "*" => Some(Change::All),
            _ if message == "s" => Some(Change::Settings),
            _ => None,
        }
    }
}

/// How changes made elsewhere reach this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coherence {
    /// No other process writes the database (the embedded SQLite one).
    Alone,
    /// Other replicas may write and tell through Redis.
    Redis,
    /// Other replicas may write and nothing tells: entries live only `ttl_incoherent`.
    Blind,
}

struct Timed<T> {
    value: T,
    at: Instant,
}

/// A robot account as a token's check needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotFacts {
    pub subject: Subject,
    /// The version of its secret (`identity::credential_version`).
    pub credential: String,
    /// Seconds since the epoch; -1: never.
    pub expires_at: i64,
}

#[derive(Default)]
struct ProjectEntry {
    facts: Option<Timed<ProjectFacts>>,
    roles: HashMap<i64, Timed<Option<Role>>>,
}

#[derive(Default)]
struct RepositoryEntry {
    id: Option<Timed<i64>>,
    /// By tag or digest.
    manifests: HashMap<String, Timed<ManifestRow>>,
}

#[derive(Default)]
struct Entries {
    projects: HashMap<String, ProjectEntry>,
    /// Users by name, with their credential's version.
    users: HashMap<String, Timed<(Subject, String)>>,
    /// Robots by name (`None`: none of that name, or disabled).
    robots: HashMap<String, Timed<Option<RobotFacts>>>,
    repositories: HashMap<String, RepositoryEntry>,
    bytes: HashMap<String, Bytes>,
    bytes_total: usize,
}

/// Most bytes of manifests kept, and the largest manifest kept.
const BYTES_BUDGET: usize = 16 << 20;
const LARGEST_MANIFEST: usize = 256 << 10;
/// Most projects and repositories remembered before the map is emptied and refilled.
const MOST_ENTRIES: usize = 50_000;

struct Inner {
    entries: Mutex<Entries>,
    generation: AtomicU64,
    coherence: Coherence,
    subscribed: AtomicBool,
    ttl_coherent: Duration,
    ttl_incoherent: Duration,
    shared: Option<crate::shared::SharedState>,
    /// Counts the settings changes heard of (and resubscriptions, after which some may have
    /// been missed): the system configuration reloads when it moves.
    settings_changes: tokio::sync::watch::Sender<u64>,
}

/// The caches of one process; clones share them.
#[derive(Clone)]
pub struct Caches {
    inner: Arc<Inner>,
}

impl Caches {
    pub fn new(coherence: Coherence, shared: Option<crate::shared::SharedState>) -> Caches {
        Caches::with_ttls(coherence, shared, Duration::from_secs(60), Duration::from_secs(1))
    }

    pub fn with_ttls(
        coherence: Coherence,
        shared: Option<crate::shared::SharedState>,
        ttl_coherent: Duration,
        ttl_incoherent: Duration,
    ) -> Caches {
        Caches {
            inner: Arc::new(Inner {
                entries: Mutex::new(Entries::default()),
                generation: AtomicU64::new(0),
                coherence,
                subscribed: AtomicBool::new(false),
                ttl_coherent,
                ttl_incoherent,
                shared,
                settings_changes: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves maps that are merely incomplete: go on.
        self.inner.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ttl(&self) -> Duration {
        if self.coherent() { self.inner.ttl_coherent } else { self.inner.ttl_incoherent }
    }

    fn fresh<'a, T>(&self, timed: Option<&'a Timed<T>>) -> Option<&'a T> {
        counted(timed.filter(|t| t.at.elapsed() < self.ttl()).map(|t| &t.value))
    }

    /// To note before reading the database; pass it back when storing what was read.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The entries, if no change arrived since `generation` was noted.
    fn entries_if_current(&self, generation: u64) -> Option<MutexGuard<'_, Entries>> {
        let entries = self.entries();
        // Changes bump the generation while holding the lock, so this check cannot race one.
        (self.inner.generation.load(Ordering::Acquire) == generation).then_some(entries)
    }

    pub fn project(&self, name: &str) -> Option<ProjectFacts> {
        let entries = self.entries();
        self.fresh(entries.projects.get(name).and_then(|p| p.facts.as_ref())).cloned()
    }

    pub fn put_project(&self, generation: u64, facts: &ProjectFacts) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            if entries.projects.len() >= MOST_ENTRIES {
                entries.projects.clear();
            }
            entries.projects.entry(facts.name.clone()).or_default().facts =
                Some(Timed { value: facts.clone(), at: Instant::now() });
        }
    }

    /// A user's role in a project: `Some(None)` when known to have none.
    pub fn role(&self, project: &str, user: i64) -> Option<Option<Role>> {
        let entries = self.entries();
        self.fresh(entries.projects.get(project).and_then(|p| p.roles.get(&user))).copied()
    }

    pub fn put_role(&self, generation: u64, project: &str, user: i64, role: Option<Role>) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            let entry = entries.projects.entry(project.to_string()).or_default();
            if entry.roles.len() >= MOST_ENTRIES {
                entry.roles.clear();
            }
            entry.roles.insert(user, Timed { value: role, at: Instant::now() });
        }
    }

    /// A user by name, as a token's subject names them.
    pub fn user(&self, name: &str) -> Option<(Subject, String)> {
        let entries = self.entries();
        self.fresh(entries.users.get(name)).cloned()
    }

    pub fn put_user(&self, generation: u64, name: &str, subject: &Subject, credential: &str) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            if entries.users.len() >= MOST_ENTRIES {
                entries.users.clear();
            }
            let value = (subject.clone(), credential.to_string());
            entries.users.insert(name.to_string(), Timed { value, at: Instant::now() });
        }
    }

    /// A robot by name: `Some(None)` when it is known not to exist (or to be disabled).
    pub fn robot(&self, name: &str) -> Option<Option<RobotFacts>> {
        let entries = self.entries();
        self.fresh(entries.robots.get(name)).cloned()
    }

    pub fn put_robot(&self, generation: u64, name: &str, robot: Option<RobotFacts>) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            if entries.robots.len() >= MOST_ENTRIES {
                entries.robots.clear();
            }
            entries.robots.insert(name.to_string(), Timed { value: robot, at: Instant::now() });
        }
    }

    pub fn repository_id(&self, name: &str) -> Option<i64> {
        let entries = self.entries();
        self.fresh(entries.repositories.get(name).and_then(|r| r.id.as_ref())).copied()
    }

    pub fn put_repository_id(&self, generation: u64, name: &str, id: i64) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            if entries.repositories.len() >= MOST_ENTRIES {
                entries.repositories.clear();
            }
            entries.repositories.entry(name.to_string()).or_default().id =
                Some(Timed { value: id, at: Instant::now() });
        }
    }

    /// What a tag or digest resolves to in a repository.
    pub fn manifest(&self, repository: &str, reference: &str) -> Option<ManifestRow> {
        let entries = self.entries();
        self.fresh(entries.repositories.get(repository).and_then(|r| r.manifests.get(reference))).cloned()
    }

    pub fn put_manifest(&self, generation: u64, repository: &str, reference: &str, row: &ManifestRow) {
        if let Some(mut entries) = self.entries_if_current(generation) {
            if entries.repositories.len() >= MOST_ENTRIES {
                entries.repositories.clear();
            }
            let entry = entries.repositories.entry(repository.to_string()).or_default();
            if entry.manifests.len() >= MOST_ENTRIES {
                entry.manifests.clear();
            }
            entry.manifests.insert(reference.to_string(), Timed { value: row.clone(), at: Instant::now() });
        }
    }

    /// A manifest's bytes, by digest (content-addressed: never stale).
    pub fn manifest_bytes(&self, digest: &str) -> Option<Bytes> {
        counted(self.entries().bytes.get(digest).cloned())
    }

    pub fn put_manifest_bytes(&self, digest: &str, bytes: &Bytes) {
        if bytes.len() > LARGEST_MANIFEST {
            return;
        }
        let mut entries = self.entries();
        if entries.bytes.contains_key(digest) {
            return;
        }
        if entries.bytes_total + bytes.len() > BYTES_BUDGET {
            // Dropping all is crude but bounded and rare: the budget holds thousands of manifests.
            entries.bytes.clear();
            entries.bytes_total = 0;
        }
        entries.bytes_total += bytes.len();
        entries.bytes.insert(digest.to_string(), bytes.clone());
    }

    /// Forgets what `change` may have made wrong, here only.
    fn evict(&self, change: &Change) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        match change {
            Change::Project(name) => {
                entries.projects.remove(name);
                let prefix = format!("{name}/");
                entries.repositories.retain(|repo, _| !repo.starts_with(&prefix));
            }
            Change::Repository(name) => {
                entries.repositories.remove(name);
            }
            Change::Settings => {
                self.inner.settings_changes.send_modify(|n| *n += 1);
            }
            Change::All => {
                self.inner.settings_changes.send_modify(|n| *n += 1);
                entries.projects.clear();
                entries.users.clear();
                entries.robots.clear();
                entries.repositories.clear();
            }
        }
    }

    /// A committed write changed what `change` names: forget it here and tell the other
    /// replicas. A lost message is not an error for the writer: the receivers' entries then age
    /// out (see the module's comment).
    pub async fn changed(&self, change: Change) {
        self.evict(&change);
        if let Some(shared) = &self.inner.shared
            && let Err(e) = shared.publish(CHANNEL, &change.encode()).await
        {
            tracing::warn!(error = %e, ?change, "cache invalidation not published; other replicas forget it by age");
        }
    }

    /// Follows the changes the other replicas publish, for as long as the process lives:
    /// subscribes, forgets everything whenever the subscription was (re)made (messages may have
    /// been missed), and entries age out quickly while it is down.
    pub async fn follow(self) {
        let Some(shared) = self.inner.shared.clone() else { return };
        loop {
            match shared.subscribe(CHANNEL).await {
                Ok(mut messages) => {
                    self.evict(&Change::All);
                    self.inner.subscribed.store(true, Ordering::Release);
                    tracing::debug!("following cache invalidations through Redis");
                    while let Some(message) = messages.recv().await {
                        match Change::decode(&message) {
                            Some(change) => self.evict(&change),
                            None => tracing::warn!(message, "unknown cache invalidation message"),
                        }
                    }
                    self.inner.subscribed.store(false, Ordering::Release);
                    tracing::warn!(
                        "cache invalidation subscription lost; entries now live {:?}",
                        self.inner.ttl_incoherent
                    );
                }
                Err(e) => tracing::debug!(error = %e, "cannot subscribe to cache invalidations yet"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Moves whenever the system configuration may have changed, here or on another replica.
    pub fn settings_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.settings_changes.subscribe()
    }

    /// How long an answer may live: after this, what another replica changed shows even if
    /// no message told of it.
    pub fn max_age(&self) -> Duration {
        self.ttl()
    }

    /// Whether changes from other replicas are being received (always true when alone).
    pub fn coherent(&self) -> bool {
        match self.inner.coherence {
            Coherence::Alone => true,
            Coherence::Redis => self.inner.subscribed.load(Ordering::Acquire),
            Coherence::Blind => false,
        }
    }
}

/// The Redis channel (under the key prefix) that carries [`Change`]s.
const CHANNEL: &str = "cache";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(digest: &str) -> ManifestRow {
        ManifestRow {
            id: 1,
            digest: digest.into(),
            media_type: "m".into(),
            size: 2,
            artifact_type: None,
            subject_digest: None,
            annotations: None,
        }
    }

    #[test]
    fn a_read_that_began_before_a_change_is_not_stored() {
        let caches = Caches::new(Coherence::Alone, None);
        let before = caches.generation();
        caches.evict(&Change::Repository("p/r".into()));
        caches.put_manifest(before, "p/r", "v1", &row("sha256:old"));
        assert_eq!(caches.manifest("p/r", "v1"), None);
        let now = caches.generation();
        caches.put_manifest(now, "p/r", "v1", &row("sha256:new"));
        assert_eq!(caches.manifest("p/r", "v1").map(|r| r.digest), Some("sha256:new".into()));
    }

    #[test]
    fn a_project_change_forgets_its_repositories_and_roles_only() {
        let caches = Caches::new(Coherence::Alone, None);
        let g = caches.generation();
        caches.put_repository_id(g, "p/r", 7);
        caches.put_repository_id(g, "pp/r", 8);
        caches.put_role(g, "p", 1, Some(Role::Developer));
        caches.put_project(
            g,
            &ProjectFacts {
                id: 1,
                name: "p".into(),
                public: true,
                created_at: 0,
                prevent_vul: None,
                auto_scan: false,
                cve_allowlist: None,
            },
        );
        caches.evict(&Change::Project("p".into()));
        assert_eq!(caches.repository_id("p/r"), None);
        assert_eq!(caches.role("p", 1), None);
        assert_eq!(caches.project("p"), None);
        assert_eq!(caches.repository_id("pp/r"), Some(8));
    }

    #[test]
    fn entries_age_out_faster_when_changes_cannot_arrive() {
        let caches = Caches::with_ttls(Coherence::Blind, None, Duration::from_secs(60), Duration::from_millis(30));
        caches.put_repository_id(caches.generation(), "p/r", 7);
        assert_eq!(caches.repository_id("p/r"), Some(7));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(caches.repository_id("p/r"), None);
        assert!(!caches.coherent());
    }

    #[test]
    fn changes_survive_their_encoding() {
        for change in [Change::Project("a".into()), Change::Repository("a/b c".into()), Change::All] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("x y"), None);
    }

    #[test]
    fn manifest_bytes_stay_within_the_budget() {
        let caches = Caches::new(Coherence::Alone, None);
        let big = Bytes::from(vec![0u8; LARGEST_MANIFEST]);
        for i in 0..(BYTES_BUDGET / LARGEST_MANIFEST + 5) {
            caches.put_manifest_bytes(&format!("sha256:{i}"), &big);
        }
        assert!(caches.entries().bytes_total <= BYTES_BUDGET);
        caches.put_manifest_bytes("sha256:huge", &Bytes::from(vec![0u8; LARGEST_MANIFEST + 1]));
        assert_eq!(caches.manifest_bytes("sha256:huge"), None);
    }
}
