//! Counting what each client holds at once (connections, uploads), with a cap per client.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many of something each key holds now, at most `cap` each (0: no cap).
pub struct PerKey<K: Hash + Eq + Clone> {
    cap: usize,
    held: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    pub fn new(cap: usize) -> Arc<PerKey<K>> {
        Arc::new(PerKey { cap, held: Mutex::new(HashMap::new()) })
    }

    /// One more for `key`, or `None` when it holds its cap already.
    pub fn enter(self: &Arc<Self>, key: K) -> Option<Held<K>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(key.clone()).or_insert(0);
        if self.cap > 0 && *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Held { limit: self.clone(), key: Some(key) })
    }

    fn leave(&self, key: &K) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                held.remove(key);
            }
        }
    }
}

/// One unit held by a key, given back when dropped.
pub struct Held<K: Hash + Eq + Clone> {
    limit: Arc<PerKey<K>>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Drop for Held<K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.limit.leave(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_gets_it_back() {
        let limit = PerKey::new(2);
        let a1 = limit.enter("a").unwrap();
        let _a2 = limit.enter("a").unwrap();
        assert!(limit.enter("a").is_none());
        let _b = limit.enter("b").unwrap();
        drop(a1);
        assert!(limit.enter("a").is_some());
        let unlimited = PerKey::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.enter(1).unwrap()).collect();
        drop(held);
        assert!(unlimited.held.lock().unwrap().is_empty());
    }
}
