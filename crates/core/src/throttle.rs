//! Failed-login throttling: growing delays per (account, client) and per client.
//!
//! A hard lock of the account as a whole was a weapon: ten wrong passwords from anywhere
//! locked `admin` out for everyone, renewable forever, and behind a proxy (one address for
//! every client) ten failures for made-up names locked every user. So nothing here is counted
//! per account alone. Failures are counted per (account, client) and per client; past a number
//! of free failures within the window, each further failure makes that key wait, twice as
//! long each time up to a ceiling. While a key waits, its logins are refused without looking
//! at the password (the API answers 429 with `Retry-After`); the same client is answered the
//! same way whether the account exists or not. The owner logging in from elsewhere is never
//! held up by someone else's guesses, and one client guessing many accounts is slowed as a
//! whole.
//!
//! Counts are kept in the process and, when Redis is configured, in Redis too, so that
//! replicas count together; a wait from either holds. Without Redis (or while it is down) each
//! replica counts alone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::shared::SharedState;

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures for one account from one client that cost nothing.
    pub free_failures: u32,
    /// Failures from one client, for any accounts, that cost nothing.
    pub client_free_failures: u32,
    /// How long failures are remembered after the last one.
    pub window: Duration,
    /// The wait after the first failure past the free ones; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for ThrottlePolicy {
    /// Five free guesses per account and client, thirty per client; then 1 s, 2 s, 4 s, ...
    /// up to five minutes; forgotten after fifteen quiet minutes.
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            client_free_failures: 30,
            window: Duration::from_secs(900),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl ThrottlePolicy {
    /// The wait after the `n`th failure of a key allowed `free` of them.
    pub fn delay_after(&self, n: u32, free: u32) -> Duration {
        if n <= free {
            return Duration::ZERO;
        }
        let doublings = (n - free - 1).min(30);
        self.first_delay.saturating_mul(1u32 << doublings).min(self.max_delay)
    }
}

/// The keys a login attempt is counted under.
#[derive(Clone, Debug)]
pub struct LoginKeys {
    /// The account from this client.
    pub pair: String,
    /// This client, whatever the account.
    pub client: String,
}

impl LoginKeys {
    /// `client` is the client's address as the HTTP layer established it, if known.
    pub fn new(account: &str, client: Option<std::net::IpAddr>) -> LoginKeys {
        let client = client.map_or_else(|| "unknown".to_string(), |a| a.to_string());
        LoginKeys { pair: format!("pair:{account}|{client}"), client: format!("client:{client}") }
    }
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    wait_until: Option<Instant>,
}

/// Bounded: when full, entries whose window and wait have passed are dropped first.
const MAX_ENTRIES: usize = 100_000;

pub struct LoginThrottle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<String, Entry>>,
    shared: Option<SharedState>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> LoginThrottle {
        LoginThrottle { policy, entries: Mutex::new(HashMap::new()), shared: None }
    }

    /// Counts in Redis as well, shared by the replicas.
    pub fn with_shared(policy: ThrottlePolicy, shared: SharedState) -> LoginThrottle {
        LoginThrottle { policy, entries: Mutex::new(HashMap::new()), shared: Some(shared) }
    }

    /// How long the attempt must still wait (here or, with Redis, on any replica), if at all.
    pub async fn wait(&self, keys: &LoginKeys) -> Option<Duration> {
        let local = self.local_wait(keys, Instant::now());
        let Some(shared) = &self.shared else { return local };
        let mut pipe = redis::pipe();
        for k in [&keys.pair, &keys.client] {
            pipe.pttl(shared.key(&["login", "wait", k]));
        }
        let remote = match shared.query::<Vec<i64>>(&pipe).await {
            Ok(ttls) => ttls.into_iter().filter(|t| *t > 0).max().map(|ms| Duration::from_millis(ms as u64)),
            Err(e) => {
                tracing::warn!(error = %e, "login throttle: Redis unavailable, counting in this process only");
                None
            }
        };
        local.max(remote)
    }

    /// Counts a failure against both keys, here and (with Redis) for all replicas.
    pub async fn record_failure(&self, keys: &LoginKeys) {
        self.local_failure(keys, Instant::now());
        let Some(shared) = &self.shared else { return };
        let p = self.policy;
        let mut pipe = redis::pipe();
        for k in [&keys.pair, &keys.client] {
            let key = shared.key(&["login", "failures", k]);
            pipe.incr(&key, 1).expire(&key, p.window.as_secs().max(1) as i64).ignore();
        }
        let counts = match shared.query::<Vec<u32>>(&pipe).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "login throttle: Redis unavailable, counting in this process only");
                return;
            }
        };
        let mut waits = redis::pipe();
        for ((k, free), n) in [(&keys.pair, p.free_failures), (&keys.client, p.client_free_failures)].iter().zip(counts)
        {
            let delay = p.delay_after(n, *free);
            if !delay.is_zero() {
                waits.pset_ex(shared.key(&["login", "wait", k]), 1, delay.as_millis().max(1) as u64).ignore();
            }
        }
        if let Err(e) = shared.query::<()>(&waits).await {
            tracing::warn!(error = %e, "login throttle: could not record a wait in Redis");
        }
    }

    /// A success clears the (account, client) count, here and in Redis; the client's own count
    /// stays (one right password does not excuse many wrong ones for other accounts).
    pub async fn record_success(&self, keys: &LoginKeys) {
        self.local_success(keys);
        if let Some(shared) = &self.shared {
            let mut pipe = redis::pipe();
            pipe.del(shared.key(&["login", "failures", &keys.pair]))
                .ignore()
                .del(shared.key(&["login", "wait", &keys.pair]))
                .ignore();
            if let Err(e) = shared.query::<()>(&pipe).await {
                tracing::warn!(error = %e, "login throttle: could not clear a count in Redis");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the attempt must still wait in this process, if at all.
    pub fn local_wait(&self, keys: &LoginKeys, now: Instant) -> Option<Duration> {
        let entries = self.lock();
        [&keys.pair, &keys.client]
            .into_iter()
            .filter_map(|k| entries.get(k.as_str()).and_then(|e| e.wait_until))
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Counts a failure against both keys in this process.
    pub fn local_failure(&self, keys: &LoginKeys, now: Instant) {
        let p = self.policy;
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries
                .retain(|_, e| now.duration_since(e.last_failure) < p.window || e.wait_until.is_some_and(|u| u > now));
        }
        for (key, free) in [(&keys.pair, p.free_failures), (&keys.client, p.client_free_failures)] {
            let e = entries.entry(key.clone()).or_insert(Entry { failures: 0, last_failure: now, wait_until: None });
            if now.duration_since(e.last_failure) >= p.window {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            let delay = p.delay_after(e.failures, free);
            if !delay.is_zero() {
                e.wait_until = Some(now + delay);
            }
        }
    }

    /// A success clears the (account, client) count in this process.
    pub fn local_success(&self, keys: &LoginKeys) {
        self.lock().remove(&keys.pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            free_failures: 3,
            client_free_failures: 5,
            window: Duration::from_secs(60),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        }
    }

    fn keys(account: &str, client: &str) -> LoginKeys {
        LoginKeys::new(account, Some(client.parse().unwrap()))
    }

    #[test]
    fn delays_grow_by_doubling_up_to_the_ceiling() {
        let p = policy();
        let delays: Vec<u64> = (1..=9).map(|n| p.delay_after(n, 3).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(p.delay_after(u32::MAX, 3), Duration::from_secs(8));
    }

    #[test]
    fn guesses_slow_the_guessing_client_not_the_account() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        let attacker = keys("admin", "192.0.2.7");
        for _ in 0..3 {
            t.local_failure(&attacker, now);
        }
        assert_eq!(t.local_wait(&attacker, now), None, "three free failures");
        t.local_failure(&attacker, now);
        assert_eq!(t.local_wait(&attacker, now), Some(Duration::from_secs(1)));
        t.local_failure(&attacker, now);
        assert_eq!(t.local_wait(&attacker, now), Some(Duration::from_secs(2)));
        // The owner, from another client, is not held up.
        assert_eq!(t.local_wait(&keys("admin", "198.51.100.1"), now), None);
        // The attacker's client is slowed for other accounts too, once past its own allowance.
        assert_eq!(t.local_wait(&keys("bob", "192.0.2.7"), now), None, "five free failures per client");
        t.local_failure(&keys("carol", "192.0.2.7"), now);
        assert_eq!(t.local_wait(&keys("bob", "192.0.2.7"), now), Some(Duration::from_secs(1)));
        // Waits pass.
        assert_eq!(t.local_wait(&attacker, now + Duration::from_secs(3)), None);
    }

    #[test]
    fn a_success_clears_the_pair_and_quiet_windows_forget() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        let k = keys("alice", "192.0.2.9");
        for _ in 0..4 {
            t.local_failure(&k, now);
        }
        assert!(t.local_wait(&k, now).is_some());
        t.local_success(&k);
        t.local_failure(&keys("alice", "192.0.2.10"), now);
        assert_eq!(t.local_wait(&keys("alice", "192.0.2.10"), now), None);
        let later = now + Duration::from_secs(61);
        let fresh = keys("dave", "192.0.2.11");
        for _ in 0..3 {
            t.local_failure(&fresh, now);
        }
        t.local_failure(&fresh, later);
        assert_eq!(t.local_wait(&fresh, later), None, "failures before a quiet window are forgotten");
    }
}
