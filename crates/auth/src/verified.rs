//! A short memory of passwords already verified, so that a client sending the same Basic
//! credentials with every request (docker, podman, skopeo do) pays for Argon2 once, not per
//! request.
//!
//! An entry is keyed by an HMAC of the user name and password under a key made at start and
//! never stored: the password itself is never kept. It remembers the stored hash the password
//! was verified against, and counts only while the user's stored hash is still that one, so a
//! password change (on any replica: the stored hash comes from the database) ends it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;

pub struct VerifiedCredentials {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
}

struct Entry {
    stored_hash: String,
    until: Instant,
}

impl VerifiedCredentials {
    /// Entries live `ttl`; at most `capacity` are kept.
    pub fn new(ttl: Duration, capacity: usize) -> Result<VerifiedCredentials, crate::secret::RandomError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| crate::secret::RandomError::new(e.to_string()))?;
        Ok(VerifiedCredentials {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The key an entry is kept under (an HMAC: it tells nothing of the password).
    pub fn tag(&self, username: &str, password: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length-prefixed, so that no two (name, password) pairs give the same input.
        ctx.update(&(username.len() as u64).to_be_bytes());
        ctx.update(username.as_bytes());
        ctx.update(password.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    /// Whether `password` was verified for `username` against `stored_hash`, recently.
    pub fn verified(&self, username: &str, password: &str, stored_hash: &str) -> bool {
        let tag = self.tag(username, password);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(&tag).is_some_and(|e| e.until > Instant::now() && e.stored_hash == stored_hash)
    }

    /// Notes that `password` verified for `username` against `stored_hash`.
    pub fn remember(&self, username: &str, password: &str, stored_hash: &str) {
        let tag = self.tag(username, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.capacity {
                // Full of live entries: start over rather than grow (each costs one Argon2 again).
                entries.clear();
            }
        }
        entries.insert(tag, Entry { stored_hash: stored_hash.to_string(), until: now + self.ttl });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_verified_password_while_the_stored_hash_is_unchanged() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 2).unwrap();
        assert!(!cache.verified("alice", "pw", "$argon2id$one"));
        cache.remember("alice", "pw", "$argon2id$one");
        assert!(cache.verified("alice", "pw", "$argon2id$one"));
        assert!(!cache.verified("alice", "other", "$argon2id$one"), "another password");
        assert!(!cache.verified("alicep", "w", "$argon2id$one"), "the same bytes split otherwise");
        assert!(!cache.verified("alice", "pw", "$argon2id$two"), "the password was changed");
        // Full: live entries make room by starting over.
        cache.remember("bob", "pw", "h");
        cache.remember("carol", "pw", "h");
        assert!(cache.verified("carol", "pw", "h"));
        assert!(!cache.verified("alice", "pw", "$argon2id$one"));
        let short = VerifiedCredentials::new(Duration::from_millis(1), 10).unwrap();
        short.remember("alice", "pw", "h");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.verified("alice", "pw", "h"), "expired");
    }
}
