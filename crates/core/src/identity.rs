//! Identities: the first administrator and the `library` project at first start, and checking
//! a user's password.

use std::net::IpAddr;
use std::sync::Arc;

use berth_auth::hashing::{HashingError, PasswordWorkers};
use berth_auth::rbac::Subject;
use berth_auth::verified::VerifiedCredentials;
use berth_auth::{password, secret};
use berth_db::{AuditEvent, Db, NewUser};

use crate::throttle::{LoginKeys, LoginThrottle, ThrottlePolicy};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Invalid(String),
    /// Too many password checks are waiting: the caller should retry shortly (429).
    #[error("too many logins at once; retry shortly")]
    Busy,
    /// Too many failed logins from this client (for this account, or for any): it must wait
    /// this long before the next try (429 with `Retry-After`).
    #[error("too many failed logins from this client; retry in {} s", .0.as_secs().max(1))]
    Delayed(std::time::Duration),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<HashingError> for IdentityError {
    fn from(e: HashingError) -> Self {
        match e {
            HashingError::Busy => IdentityError::Busy,
            HashingError::Failed(e) => IdentityError::Internal(e),
        }
    }
}

impl From<berth_db::DbError> for IdentityError {
    fn from(e: berth_db::DbError) -> Self {
        IdentityError::Internal(e.to_string())
    }
}

/// What [`Identities::bootstrap`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users existed already: nothing was changed.
    AlreadyDone,
    /// The administrator and `library` were created; `generated` holds the administrator's
    /// password when none was given (to be shown once).
    Created { generated: Option<String> },
}

pub const ADMIN_USERNAME: &str = "admin";
pub const DEFAULT_PROJECT: &str = "library";

#[derive(Clone)]
pub struct Identities {
    db: Db,
    throttle: Arc<LoginThrottle>,
    /// Passwords verified recently (no Argon2 for a client's every request).
    verified: Arc<VerifiedCredentials>,
    /// Projects and roles, when the process keeps them (see `with_caches`).
    caches: Option<crate::cache::Caches>,
    /// One Argon2 at a time per (name, password): a client that opens many connections at once
    /// with the same credentials (docker pushing layers in parallel) pays for one check.
    checks: Arc<crate::turns::Turns<Vec<u8>>>,
    /// Password hashes verified so far (each an Argon2 run), for tests and metrics.
    hash_checks: Arc<std::sync::atomic::AtomicU64>,
    /// Where Argon2 runs: a few threads with memory of their own, behind a bounded queue.
    hashing: PasswordWorkers,
}

/// Checks waiting for a hashing worker beyond those running, by default: at ~25 ms a check on
/// one core, the last waits well under a second per worker.
pub const DEFAULT_HASH_QUEUE: usize = 64;

/// The process's hashing workers, one per core, unless the binary configures others.
pub fn default_password_workers() -> PasswordWorkers {
    static WORKERS: std::sync::OnceLock<PasswordWorkers> = std::sync::OnceLock::new();
    WORKERS
        .get_or_init(|| {
            // Threads failing to start at all is not something to go on without.
            PasswordWorkers::per_core(DEFAULT_HASH_QUEUE).unwrap_or_else(|e| panic!("{e}"))
        })
        .clone()
}

/// How long a verified password is remembered, and for how many credentials at most.
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(600);
const VERIFIED_CAPACITY: usize = 10_000;

fn verified_credentials() -> Arc<VerifiedCredentials> {
    // The system's random source failing at start is not something to go on without.
    let cache = VerifiedCredentials::new(VERIFIED_TTL, VERIFIED_CAPACITY);
    Arc::new(cache.unwrap_or_else(|e| panic!("{e}")))
}

impl Identities {
    pub fn new(db: Db) -> Identities {
        Identities::with_throttle(db, ThrottlePolicy::default())
    }

    pub fn with_throttle(db: Db, policy: ThrottlePolicy) -> Identities {
        Identities {
            db,
            throttle: Arc::new(LoginThrottle::new(policy)),
            verified: verified_credentials(),
            caches: None,
            checks: Default::default(),
            hash_checks: Default::default(),
            hashing: default_password_workers(),
        }
    }

    /// Failed logins counted in Redis too, so that every replica sees them.
    pub fn with_shared(db: Db, policy: ThrottlePolicy, shared: crate::shared::SharedState) -> Identities {
        Identities {
            db,
            throttle: Arc::new(LoginThrottle::with_shared(policy, shared)),
            verified: verified_credentials(),
            caches: None,
            checks: Default::default(),
            hash_checks: Default::default(),
            hashing: default_password_workers(),
        }
    }

    /// Password checks on `workers` rather than the process's default ones.
    pub fn with_password_workers(mut self, workers: PasswordWorkers) -> Identities {
        self.hashing = workers;
        self
    }

    /// How many password hashes this process verified (Argon2 runs, each deliberately slow).
    pub fn hash_checks(&self) -> u64 {
        self.hash_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Project access answered from `caches` (the registry's: the writers tell them).
    pub fn with_caches(mut self, caches: crate::cache::Caches) -> Identities {
        self.caches = Some(caches);
        self
    }

    /// On first start (no user exists): creates `admin` as system administrator, with the
    /// given password or a random one, and the public project `library` owned by it.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> Result<Bootstrap, IdentityError> {
        let (_, users) = self.db.list_users(&berth_db::ListQuery::default(), 1, 0).await?;
        if users > 0 {
            return Ok(Bootstrap::AlreadyDone);
        }
        let (password, generated) = match admin_password {
            Some(p) => {
                password::check_policy(p)
                    .map_err(|e| IdentityError::Invalid(format!("the administrator password given is refused: {e}")))?;
                (p.to_string(), None)
            }
            None => {
                let p = secret::random_password().map_err(|e| IdentityError::Internal(e.to_string()))?;
                (p.clone(), Some(p))
            }
        };
        let hash = self.hashing.hash(&password).await?;
        let admin = NewUser {
            username: ADMIN_USERNAME,
            email: None,
            realname: "system admin",
            comment: "admin user",
            password_hash: &hash,
            sysadmin: true,
        };
        // Replicas starting together on one database: one creates, the others find it done.
        if self.db.create_first_admin(&admin, DEFAULT_PROJECT, &[("public", "true")]).await?.is_none() {
            return Ok(Bootstrap::AlreadyDone);
        }
        Ok(Bootstrap::Created { generated })
    }

    /// The user named `username` if `password` is theirs. A wrong password and an unknown user
    /// answer alike and take the same time (one Argon2 run each), so neither can be told from
    /// the other. A client past its free failures (for this account, or for any) is refused
    /// with [`IdentityError::Delayed`] until its wait is over, without a check, whether or not
    /// the account exists.
    pub async fn authenticate_user(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<Option<Subject>, IdentityError> {
        let keys = LoginKeys::new(username, source);
        self.refuse_if_delayed(username, &keys, source).await?;
        let user = self.db.user_by_name(username).await?;
        // Verified moments ago against the hash the database still holds. (Only a right password
        // is answered fast, which the answer itself tells anyway.)
        let remembered = || {
            user.as_ref()
                .filter(|u| self.verified.verified(username, password, &u.password_hash))
                .map(|u| Subject::User { id: u.id, name: u.username.clone(), sysadmin: u.sysadmin })
        };
        if let Some(subject) = remembered() {
            return Ok(Some(subject));
        }
        let turn = self.checks.turn(self.verified.tag(username, password));
        let _turn = turn.lock().await;
        if let Some(subject) = remembered() {
            // Verified by the request this one waited for.
            return Ok(Some(subject));
        }
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        self.hash_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok = match stored {
            Some(stored) => self.hashing.verify(password, &stored).await?,
            None => {
                // Verifying against a real hash when the user is unknown keeps the timing alike.
                let _ = self.hashing.verify(password, unknown_user_hash()).await?;
                false
            }
        };
        Ok(match (ok, user) {
            (true, Some(u)) => {
                berth_db::Operator::identify(&u.username);
                self.throttle.record_success(&keys).await;
                self.verified.remember(username, password, &u.password_hash);
                Some(Subject::User { id: u.id, name: u.username, sysadmin: u.sysadmin })
            }
            _ => {
                self.throttle.record_failure(&keys).await;
                self.audit_failed_login(username, "login failed").await;
                None
            }
        })
    }

    /// A client still waiting after its failures is refused, and the refusal is recorded.
    async fn refuse_if_delayed(
        &self,
        account: &str,
        keys: &LoginKeys,
        source: Option<IpAddr>,
    ) -> Result<(), IdentityError> {
        let Some(wait) = self.throttle.wait(keys).await else { return Ok(()) };
        berth_metrics::metrics().limit_refusals.get(&["login_delay"]).inc();
        let client = source.map_or_else(|| "an unknown client".to_string(), |a| a.to_string());
        let why =
            format!("login refused unchecked: {client} must wait {} s after failed logins", wait.as_secs().max(1));
        self.audit_failed_login(account, &why).await;
        Err(IdentityError::Delayed(wait))
    }

    /// A failed login changes nothing, so its record goes alone; failing to write it does not
    /// change the answer.
    async fn audit_failed_login(&self, username: &str, description: &str) {
        berth_metrics::metrics().login_failures.inc();
        // The name is the client's text: bounded, as any column we fill from a request.
        let name: String = username.chars().take(255).collect();
        let event = AuditEvent::new("login", "user", name.clone()).failed().described(description);
        if let Err(e) = self.db.audit_only(event, &name).await {
            tracing::warn!(error = %e, "recording a failed login failed");
        }
    }
}

pub use crate::access::ProjectAccess;

/// A user as the API shows it (never with the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub realname: String,
    pub comment: String,
    pub sysadmin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How long a portal session lasts.
pub const SESSION_LIFETIME_MS: i64 = 60 * 60 * 1000;

/// A portal session: the id for the cookie and the CSRF token mutating requests must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub csrf: String,
}

/// Sessions are stored by the SHA-256 of their id: the database never holds a usable id.
fn session_key(id: &str) -> String {
    berth_oci::Digest::sha256_of(id.as_bytes()).hex().to_string()
}

impl Identities {
    /// Signs a user in for the portal: a new session, or `None` for wrong credentials (the
    /// same throttling applies as everywhere).
    pub async fn login_session(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<Option<Session>, IdentityError> {
        let Some(Subject::User { id, .. }) = self.authenticate_user(username, password, source).await? else {
            return Ok(None);
        };
        let random = |n| secret::random_alphanumeric(n).map_err(|e| IdentityError::Internal(e.to_string()));
        let session = Session { id: random(43)?, csrf: random(32)? };
        let expires = berth_db::now_millis() + SESSION_LIFETIME_MS;
        self.db.create_session(&session_key(&session.id), id, &session.csrf, expires).await?;
        Ok(Some(session))
    }

    /// The user behind a live session, with the session's CSRF token.
    pub async fn session_subject(&self, session_id: &str) -> Result<Option<(Subject, String)>, IdentityError> {
        let Some((user_id, csrf)) = self.db.session(&session_key(session_id)).await? else {
            return Ok(None);
        };
        Ok(self
            .db
            .user_by_id(user_id)
            .await?
            .map(|u| (Subject::User { id: u.id, name: u.username, sysadmin: u.sysadmin }, csrf)))
    }

    pub async fn end_session(&self, session_id: &str) -> Result<(), IdentityError> {
        Ok(self.db.delete_session(&session_key(session_id)).await?)
    }

    /// The robot named `name` (`robot$...`) if `secret` is its secret and it is neither disabled
    /// nor expired; throttled like users.
    pub async fn authenticate_robot(
        &self,
        name: &str,
        secret: &str,
        source: Option<IpAddr>,
    ) -> Result<Option<Subject>, IdentityError> {
        let keys = LoginKeys::new(name, source);
        self.refuse_if_delayed(name, &keys, source).await?;
        let robot = self.db.robot_by_name(name).await?;
        let subject = robot
            .filter(|r| berth_auth::secret::verify_machine_secret(secret, &r.secret_hash))
            .and_then(|r| crate::robots::usable(&r).then(|| crate::robots::subject(&r)));
        match &subject {
            Some(_) => self.throttle.record_success(&keys).await,
            None => {
                self.throttle.record_failure(&keys).await;
                self.audit_failed_login(name, "login failed").await;
            }
        }
        Ok(subject)
    }

    /// A user's profile.
    pub async fn user_view(&self, id: i64) -> Result<Option<UserView>, IdentityError> {
        Ok(self.db.user_by_id(id).await?.map(|u| UserView {
            id: u.id,
            username: u.username,
            email: u.email,
            realname: u.realname,
            comment: u.comment,
            sysadmin: u.sysadmin,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }))
    }

    /// The user named `username` as a subject (no password check: for token holders).
    pub async fn user(&self, username: &str) -> Result<Option<Subject>, IdentityError> {
        Ok(self.user_with_credential(username).await?.map(|(subject, _)| subject))
    }

    /// The user named `username` and the version of their password (see
    /// [`credential_version`]): what a token issued to them is checked against.
    pub async fn user_with_credential(&self, username: &str) -> Result<Option<(Subject, String)>, IdentityError> {
        if let Some(found) = self.caches.as_ref().and_then(|c| c.user(username)) {
            return Ok(Some(found));
        }
        let generation = self.caches.as_ref().map(|c| c.generation());
        let found = self.db.user_by_name(username).await?.map(|u| {
            let credential = credential_version(&u.password_hash);
            (Subject::User { id: u.id, name: u.username, sysadmin: u.sysadmin }, credential)
        });
        if let (Some(caches), Some(generation), Some((subject, credential))) = (&self.caches, generation, &found) {
            caches.put_user(generation, username, subject, credential);
        }
        Ok(found)
    }

    /// The robot named `name` if it is usable now (neither disabled nor expired), with the
    /// version of its secret: what a token issued to it is checked against.
    pub async fn usable_robot(&self, name: &str) -> Result<Option<(Subject, String)>, IdentityError> {
        let cached = self.caches.as_ref().and_then(|c| c.robot(name));
        let found = match cached {
            Some(found) => found,
            None => {
                let generation = self.caches.as_ref().map(|c| c.generation());
                let found =
                    self.db.robot_by_name(name).await?.filter(|r| !r.disabled).map(|r| crate::cache::RobotFacts {
                        subject: crate::robots::subject(&r),
                        credential: credential_version(&r.secret_hash),
                        expires_at: r.expires_at,
                    });
                if let (Some(caches), Some(generation)) = (&self.caches, generation) {
                    caches.put_robot(generation, name, found.clone());
                }
                found
            }
        };
        let now = crate::robots::now_secs();
        Ok(found.filter(|r| r.expires_at < 0 || r.expires_at > now).map(|r| (r.subject, r.credential)))
    }

    /// The named project and the subject's role in it, or `None` when there is no such project
    /// (the one lookup behind access decisions: `access::AccessLookup`).
    pub async fn project_access(
        &self,
        subject: &Subject,
        project: &str,
    ) -> Result<Option<ProjectAccess>, IdentityError> {
        Ok(crate::access::AccessLookup::new(self.db.clone(), self.caches.clone()).project(subject, project).await?)
    }
}

/// A short fingerprint of a stored credential (a password's or robot secret's hash): another
/// whenever the credential changes, and nothing about it otherwise. Tokens carry it.
pub fn credential_version(stored_hash: &str) -> String {
    berth_oci::Digest::sha256_of(stored_hash.as_bytes()).hex()[..16].to_string()
}

/// An Argon2id hash of a random string nobody knows, verified against when the user is unknown.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let secret = secret::random_alphanumeric(32).unwrap_or_else(|_| "unknown-user".to_string());
        password::hash(&secret).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn identities() -> (tempfile::TempDir, Identities, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("berth.db")).await.unwrap();
        (dir, Identities::new(db.clone()), db)
    }

    #[tokio::test]
    async fn first_start_creates_admin_and_public_library_once() {
        let (_d, ids, db) = identities().await;
        let Bootstrap::Created { generated: Some(pw) } = ids.bootstrap(None).await.unwrap() else {
            panic!("expected a generated password");
        };
        assert!(password::check_policy(&pw).is_ok());
        assert!(matches!(
            ids.authenticate_user("admin", &pw, None).await.unwrap(),
            Some(Subject::User { sysadmin: true, .. })
        ));
        assert_eq!(ids.authenticate_user("admin", "Wrong12345", None).await.unwrap(), None);
        assert_eq!(ids.authenticate_user("nobody", &pw, None).await.unwrap(), None);
        let library = db.project_by_name("library").await.unwrap().unwrap();
        assert_eq!(db.project_metadata(library.id).await.unwrap(), [("public".to_string(), "true".to_string())]);
        // A second start changes nothing, whatever password it is given.
        assert_eq!(ids.bootstrap(Some("Other12345")).await.unwrap(), Bootstrap::AlreadyDone);
        assert!(ids.authenticate_user("admin", &pw, None).await.unwrap().is_some());
    }

    /// A remembered password counts only while the database holds the hash it was checked
    /// against: a change through any process (here: the database directly) ends it at once, and
    /// a locked account is refused even with a remembered password.
    #[tokio::test]
    async fn a_remembered_password_ends_with_a_password_change() {
        let (_d, ids, db) = identities().await;
        ids.bootstrap(Some("Harbor12345")).await.unwrap();
        let Some(Subject::User { id, .. }) = ids.authenticate_user("admin", "Harbor12345", None).await.unwrap() else {
            panic!("the administrator signs in");
        };
        assert!(ids.authenticate_user("admin", "Harbor12345", None).await.unwrap().is_some(), "remembered");
        assert_eq!(ids.authenticate_user("admin", "Harbor12346", None).await.unwrap(), None, "not another password");
        let other = password::hash("Other12345").unwrap();
        db.set_user_password(id, &other).await.unwrap();
        assert_eq!(ids.authenticate_user("admin", "Harbor12345", None).await.unwrap(), None);
        assert!(ids.authenticate_user("admin", "Other12345", None).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn concurrent_logins_with_the_same_password_verify_it_once() {
        let (_dir, ids, _db) = identities().await;
        ids.bootstrap(Some("Harbor12345")).await.unwrap();
        let logins: Vec<_> = (0..16)
            .map(|_| {
                let ids = ids.clone();
                tokio::spawn(async move { ids.authenticate_user("admin", "Harbor12345", None).await.unwrap() })
            })
            .collect();
        for login in logins {
            assert!(login.await.unwrap().is_some());
        }
        assert_eq!(ids.hash_checks(), 1);
        // A wrong password is its own check, and does not count as verified.
        assert_eq!(ids.authenticate_user("admin", "Harbor12346", None).await.unwrap(), None);
        assert_eq!(ids.hash_checks(), 2);
        // An unknown user costs the same Argon2 as a wrong password: the timing tells nothing.
        assert_eq!(ids.authenticate_user("nobody", "Harbor12346", None).await.unwrap(), None);
        assert_eq!(ids.hash_checks(), 3);
    }

    #[tokio::test]
    async fn project_access_reports_visibility_and_role() {
        let (_d, ids, db) = identities().await;
        ids.bootstrap(Some("Harbor12345")).await.unwrap();
        let admin = ids.authenticate_user("admin", "Harbor12345", None).await.unwrap().unwrap();
        let lib = ids.project_access(&Subject::Anonymous, "library").await.unwrap().unwrap();
        assert!(lib.public && lib.role.is_none());
        let lib = ids.project_access(&admin, "library").await.unwrap().unwrap();
        assert_eq!(lib.role, Some(berth_auth::rbac::Role::ProjectAdmin));
        let Subject::User { id, .. } = admin else { unreachable!() };
        db.create_project("private", id, &[("public", "false")]).await.unwrap();
        assert!(!ids.project_access(&Subject::Anonymous, "private").await.unwrap().unwrap().public);
        assert_eq!(ids.project_access(&Subject::Anonymous, "missing").await.unwrap(), None);
    }

    /// Finding 5 of the hardening issue: ten wrong passwords from anywhere used to lock the
    /// account for everyone. Now the guessing client waits, the owner elsewhere does not.
    #[tokio::test]
    async fn guesses_delay_the_guessing_client_and_never_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("berth.db")).await.unwrap();
        let policy = ThrottlePolicy {
            free_failures: 3,
            client_free_failures: 6,
            window: std::time::Duration::from_secs(60),
            first_delay: std::time::Duration::from_secs(30),
            max_delay: std::time::Duration::from_secs(60),
        };
        let ids = Identities::with_throttle(db, policy);
        ids.bootstrap(Some("Harbor12345")).await.unwrap();
        let attacker: IpAddr = "192.0.2.7".parse().unwrap();
        let owner: IpAddr = "198.51.100.4".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(ids.authenticate_user("admin", "Guess12345", Some(attacker)).await.unwrap(), None);
        }
        // The attacker waits, even with the right password, and is told how long.
        match ids.authenticate_user("admin", "Harbor12345", Some(attacker)).await {
            Err(IdentityError::Delayed(wait)) => assert!(wait.as_secs() >= 29, "{wait:?}"),
            other => panic!("{other:?}"),
        }
        // The owner, from another client, signs in.
        assert!(ids.authenticate_user("admin", "Harbor12345", Some(owner)).await.unwrap().is_some());
        // An unknown account from a waiting pair is answered the same way as a known one.
        for _ in 0..4 {
            let _ = ids.authenticate_user("ghost", "Guess12345", Some("192.0.2.8".parse().unwrap())).await;
        }
        assert!(matches!(
            ids.authenticate_user("ghost", "Guess12345", Some("192.0.2.8".parse().unwrap())).await,
            Err(IdentityError::Delayed(_))
        ));
        // Guessing many accounts from one client slows that client for every account.
        for n in 0..3 {
            let _ = ids.authenticate_user(&format!("made-up-{n}"), "Guess12345", Some(owner)).await;
        }
        assert!(ids.authenticate_user("admin", "Harbor12345", Some(owner)).await.unwrap().is_some(), "free still");
        for n in 3..7 {
            let _ = ids.authenticate_user(&format!("made-up-{n}"), "Guess12345", Some(owner)).await;
        }
        assert!(matches!(
            ids.authenticate_user("admin", "Harbor12345", Some(owner)).await,
            Err(IdentityError::Delayed(_))
        ));
    }

    #[tokio::test]
    async fn a_given_password_must_pass_the_policy() {
        let (_d, ids, db) = identities().await;
        assert!(matches!(ids.bootstrap(Some("weak")).await, Err(IdentityError::Invalid(_))));
        assert!(db.user_by_name("admin").await.unwrap().is_none());
        assert_eq!(ids.bootstrap(Some("Harbor12345")).await.unwrap(), Bootstrap::Created { generated: None });
        assert!(ids.authenticate_user("admin", "Harbor12345", None).await.unwrap().is_some());
    }

    #[test]
    fn the_unknown_user_hash_is_a_real_hash() {
        assert!(unknown_user_hash().starts_with("$argon2id$"));
        assert!(!password::verify("anything", unknown_user_hash()));
    }
}
