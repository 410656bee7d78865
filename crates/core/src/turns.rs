//! One turn at a time per key, within this process: for work that two requests must not do at
//! once (appending to one upload session), or need not do twice (verifying the same password).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

pub(crate) struct Turns<K> {
    turns: Mutex<HashMap<K, Weak<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for Turns<K> {
    fn default() -> Self {
        Turns { turns: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq> Turns<K> {
    /// The lock for `key`, shared with every holder of the same key until all drop it.
    pub(crate) fn turn(&self, key: K) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(turn) = turns.get(&key).and_then(Weak::upgrade) {
            return turn;
        }
        turns.retain(|_, w| w.strong_count() > 0);
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        turns.insert(key, Arc::downgrade(&turn));
        turn
    }
}
