//! [`Recency`]: a map that knows which entry was used longest ago.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// A map whose entries are ordered by their last insert or touch, so that
/// the least recently used one is found and removed in O(log n) rather than
/// by a scan. Keys are shared between the lookup and the order, not copied.
pub(super) struct Recency<K, V> {
    /// Each entry with its tick of last use.
    entries: HashMap<Arc<K>, (u64, V)>,
    /// The same keys by tick of last use, oldest first.
    order: BTreeMap<u64, Arc<K>>,
    /// Strictly increasing: no two entries share a tick.
    tick: u64,
}

impl<K: Hash + Eq, V> Recency<K, V> {
    pub(super) fn new() -> Self {
        Recency {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Arc<K>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// Insert or replace `key` as the most recently used entry; the value it
    /// replaced, if any.
    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let tick = self.next_tick();
        let key = Arc::new(key);
        let old = self.entries.insert(key.clone(), (tick, value));
        if let Some((old_tick, _)) = &old {
            self.order.remove(old_tick);
        }
        self.order.insert(tick, key);
        old.map(|(_, v)| v)
    }

    /// Make `key`, if present, the most recently used entry.
    pub(super) fn touch<Q>(&mut self, key: &Q)
    where
        Arc<K>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let tick = self.next_tick();
        if let Some((used, _)) = self.entries.get_mut(key) {
            if let Some(k) = self.order.remove(used) {
                self.order.insert(tick, k);
            }
            *used = tick;
        }
    }

    pub(super) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        Arc<K>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (tick, v) = self.entries.remove(key)?;
        self.order.remove(&tick);
        Some(v)
    }

    /// The least recently used entry's value.
    pub(super) fn oldest(&self) -> Option<&V> {
        let (_, key) = self.order.first_key_value()?;
        self.get(key)
    }

    /// Remove and return the least recently used entry.
    pub(super) fn pop_oldest(&mut self) -> Option<(Arc<K>, V)> {
        let (_, key) = self.order.pop_first()?;
        let (_, v) = self.entries.remove(&key)?;
        Some((key, v))
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_the_least_recently_inserted_or_touched() {
        let mut r = Recency::new();
        for k in ["a", "b", "c"] {
            r.insert(k, k.len());
        }
        r.touch(&"a");
        assert_eq!(r.pop_oldest().map(|(k, _)| *k), Some("b"));
        r.insert("c", 7); // replacing refreshes too
        assert_eq!(r.oldest(), Some(&1)); // "a"
        assert_eq!(r.pop_oldest().map(|(k, _)| *k), Some("a"));
        assert_eq!(r.pop_oldest().map(|(k, v)| (*k, v)), Some(("c", 7)));
        assert_eq!(r.pop_oldest().map(|(k, _)| *k), None);
    }

    #[test]
    fn remove_and_touch_keep_both_sides_in_step() {
        let mut r = Recency::new();
        r.insert(1u32, ());
        r.insert(2, ());
        r.touch(&3); // absent: nothing happens
        assert_eq!(r.remove(&1), Some(()));
        assert_eq!(r.remove(&1), None);
        assert_eq!(r.len(), 1);
        assert_eq!(r.order.len(), 1);
        assert_eq!(r.pop_oldest().map(|(k, _)| *k), Some(2));
        assert_eq!(r.len(), 0);
        assert!(r.order.is_empty());
    }
}
