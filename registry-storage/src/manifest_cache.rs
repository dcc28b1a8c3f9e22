//! A bounded in-process cache of manifest contents by digest.
//!
//! Only immutable things are cached: the bytes stored under a digest and the
//! media type read from them. Which manifest a tag names, and whether a
//! repository still has a revision, are read from the store on every
//! request, so the cache can never make a process serve a stale tag (see
//! `docs/CONSISTENCY.md`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use registry_core::Digest;

/// Bytes of manifests kept at most.
pub(crate) const DEFAULT_CAPACITY: usize = 32 * 1024 * 1024;

/// Manifest bytes and media type by digest, first in first out.
pub(crate) struct ManifestCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, (std::sync::Arc<str>, Bytes)>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl ManifestCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ManifestCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The media type and bytes stored under `digest`, if cached.
    pub(crate) fn get(&self, digest: &Digest) -> Option<(std::sync::Arc<str>, Bytes)> {
        self.lock().entries.get(digest).cloned()
    }

    /// Remember a manifest. Ones larger than a quarter of the capacity are
    /// not kept.
    pub(crate) fn insert(&self, digest: Digest, media_type: &str, bytes: Bytes) {
        if bytes.len() > self.capacity / 4 {
            return;
        }
        let mut st = self.lock();
        if st.entries.contains_key(&digest) {
            return;
        }
        st.bytes += bytes.len();
        st.order.push_back(digest.clone());
        st.entries.insert(digest, (media_type.into(), bytes));
        while st.bytes > self.capacity {
            let Some(old) = st.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = st.entries.remove(&old) {
                st.bytes -= b.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_first_in_first_out() {
        let c = ManifestCache::new(400);
        let d = |i: u8| Digest::sha256_of(&[i]);
        for i in 0..5u8 {
            c.insert(d(i), "t", Bytes::from(vec![i; 100]));
        }
        assert!(c.get(&d(0)).is_none(), "oldest evicted");
        for i in 1..5u8 {
            assert_eq!(c.get(&d(i)).unwrap().1.len(), 100);
        }
        c.insert(d(9), "t", Bytes::from(vec![0; 101]));
        assert!(c.get(&d(9)).is_none(), "over a quarter of the capacity");
    }
}
