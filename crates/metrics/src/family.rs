//! A metric with labels: one value per combination of label values, made on first use.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

use crate::exposition::Encoder;
use crate::value::Value;

type Entries<V> = HashMap<u64, Vec<(Box<[String]>, Arc<V>)>>;

/// Values keyed by the hash of their label values (compared in full on a hit), so that a lookup
/// on the request path borrows the caller's strings and allocates nothing.
pub struct Family<V> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    make: fn() -> V,
    entries: RwLock<Entries<V>>,
}

impl<V: Value> Family<V> {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str], make: fn() -> V) -> Family<V> {
        Family { name, help, labels, make, entries: RwLock::new(HashMap::new()) }
    }

    /// The value for `values` (one per label, in order).
    pub fn get(&self, values: &[&str]) -> Arc<V> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}: wrong number of label values", self.name);
        let mut h = DefaultHasher::new();
        values.hash(&mut h);
        let key = h.finish();
        let same = |stored: &[String]| stored.iter().map(String::as_str).eq(values.iter().copied());
        if let Ok(entries) = self.entries.read()
            && let Some(found) = entries.get(&key).and_then(|l| l.iter().find(|(s, _)| same(s)))
        {
            return found.1.clone();
        }
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            // A panic while holding the lock cannot leave the map half-changed (an insert
            // is one push), so the poisoned map is still whole.
            Err(poisoned) => poisoned.into_inner(),
        };
        let list = entries.entry(key).or_default();
        if let Some(found) = list.iter().find(|(s, _)| same(s)) {
            return found.1.clone();
        }
        let value = Arc::new((self.make)());
        list.push((values.iter().map(|v| (*v).to_string()).collect(), value.clone()));
        value
    }

    pub fn encode(&self, enc: &mut Encoder) {
        enc.header(self.name, self.help, V::KIND);
        let mut all: Vec<(Box<[String]>, Arc<V>)> = match self.entries.read() {
            Ok(e) => e.values().flatten().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
        };
        all.sort_by(|a, b| a.0.cmp(&b.0));
        for (values, v) in &all {
            v.encode(enc, self.name, self.labels, values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, Format};

    #[test]
    fn one_value_per_label_combination() {
        let f: Family<Counter> = Family::new("hits", "Hits.", &["kind", "code"], Counter::default);
        f.get(&["a", "200"]).inc();
        f.get(&["a", "200"]).inc();
        f.get(&["b", "404"]).add(5);
        let mut e = Encoder::new(Format::Text);
        f.encode(&mut e);
        assert_eq!(
            e.finish(),
            "# HELP hits_total Hits.\n# TYPE hits_total counter\n\
             hits_total{kind=\"a\",code=\"200\"} 2\nhits_total{kind=\"b\",code=\"404\"} 5\n"
        );
    }
}
