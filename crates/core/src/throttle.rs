//! Failed-login throttling, per account and per source address.
//!
//! After `max_failures` failures within `window`, the key is locked for `lockout`. A locked key
//! is refused without checking the password, and the refusal looks exactly like a wrong
//! password, so a locked account cannot be told from a wrong guess. Counts are kept in the
//! process and, when Redis is configured, in Redis too, so that replicas count together; a
//! lock from either holds. Without Redis (or while it is down) each replica counts alone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::shared::SharedState;

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

impl Default for ThrottlePolicy {
    /// Ten failures in five minutes lock the account or address for five minutes.
    fn default() -> Self {
        ThrottlePolicy { max_failures: 10, window: Duration::from_secs(300), lockout: Duration::from_secs(300) }
    }
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Bounded: when full, entries whose window and lock have passed are dropped first.
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

    /// Whether any of `keys` is locked, here or (with Redis) by any replica.
    pub async fn locked(&self, keys: &[String]) -> bool {
        if self.is_locked(keys, Instant::now()) {
            return true;
        }
        let Some(shared) = &self.shared else { return false };
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.exists(shared.key(&["login", "lock", k]));
        }
        match shared.query::<Vec<bool>>(&pipe).await {
            Ok(locks) => locks.into_iter().any(|l| l),
            Err(e) => {
                tracing::warn!(error = %e, "login throttle: Redis unavailable, counting in this process only");
                false
            }
        }
    }

    /// Counts a failure against each key, here and (with Redis) for all replicas.
    pub async fn record_failure(&self, keys: &[String]) {
        self.failure(keys, Instant::now());
        let Some(shared) = &self.shared else { return };
        let p = self.policy;
        let mut pipe = redis::pipe();
        for k in keys {
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
        let mut lock = redis::pipe();
        for (k, n) in keys.iter().zip(counts) {
            if n >= p.max_failures {
                lock.set_ex(shared.key(&["login", "lock", k]), 1, p.lockout.as_secs().max(1))
                    .ignore()
                    .del(shared.key(&["login", "failures", k]))
                    .ignore();
            }
        }
        if let Err(e) = shared.query::<()>(&lock).await {
            tracing::warn!(error = %e, "login throttle: could not record a lock in Redis");
        }
    }

    /// A success clears the account's count, here and in Redis.
    pub async fn record_success(&self, account_key: &str) {
        self.success(account_key);
        if let Some(shared) = &self.shared {
            let mut pipe = redis::pipe();
            pipe.del(shared.key(&["login", "failures", account_key])).ignore();
            if let Err(e) = shared.query::<()>(&pipe).await {
                tracing::warn!(error = %e, "login throttle: could not clear a count in Redis");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any of `keys` is locked now.
    pub fn is_locked(&self, keys: &[String], now: Instant) -> bool {
        let entries = self.lock();
        keys.iter().any(|k| entries.get(k).and_then(|e| e.locked_until).is_some_and(|until| until > now))
    }

    /// Counts a failure against each key.
    pub fn failure(&self, keys: &[String], now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let p = self.policy;
            entries.retain(|_, e| {
                now.duration_since(e.window_start) < p.window || e.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in keys {
            let e = entries.entry(key.clone()).or_insert(Entry { failures: 0, window_start: now, locked_until: None });
            if now.duration_since(e.window_start) >= self.policy.window {
                *e = Entry { failures: 0, window_start: now, locked_until: e.locked_until.filter(|u| *u > now) };
            }
            e.failures += 1;
            if e.failures >= self.policy.max_failures {
                e.locked_until = Some(now + self.policy.lockout);
                e.failures = 0;
                e.window_start = now;
            }
        }
    }

    /// A success clears the account's count (not the address's: one right password does not
    /// excuse many wrong ones for other accounts).
    pub fn success(&self, account_key: &str) {
        let mut entries = self.lock();
        if entries.get(account_key).is_some_and(|e| e.locked_until.is_none()) {
            entries.remove(account_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy { max_failures: 3, window: Duration::from_secs(60), lockout: Duration::from_secs(120) }
    }

    #[test]
    fn locks_after_the_limit_and_unlocks_after_the_lockout() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        let keys = vec!["user:alice".to_string(), "addr:10.0.0.1".to_string()];
        t.failure(&keys, now);
        t.failure(&keys, now);
        assert!(!t.is_locked(&keys, now));
        t.failure(&keys, now);
        assert!(t.is_locked(&keys, now));
        assert!(t.is_locked(&["addr:10.0.0.1".to_string()], now), "the address is locked too");
        assert!(!t.is_locked(&["user:bob".to_string()], now));
        // A success does not lift a lock.
        t.success("user:alice");
        assert!(t.is_locked(&keys[..1], now + Duration::from_secs(119)));
        assert!(!t.is_locked(&keys, now + Duration::from_secs(121)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = LoginThrottle::new(policy());
        let now = Instant::now();
        let keys = vec!["user:alice".to_string()];
        t.failure(&keys, now);
        t.failure(&keys, now);
        t.failure(&keys, now + Duration::from_secs(61));
        assert!(!t.is_locked(&keys, now + Duration::from_secs(61)));
        // A success clears the account's count.
        t.failure(&keys, now + Duration::from_secs(62));
        t.success("user:alice");
        t.failure(&keys, now + Duration::from_secs(63));
        assert!(!t.is_locked(&keys, now + Duration::from_secs(63)));
    }
}
