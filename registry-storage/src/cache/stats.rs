//! The blob cache's counters: plain atomics that an embedder reads as a
//! [`CacheStats`] snapshot (the `registry` binary exports them to
//! Prometheus). No metrics library here.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`CachedStore`](super::CachedStore) has counted since it was
/// opened, and its size now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Blob reads asked of the cache.
    pub requests: u64,
    /// Reads served from this host's cache.
    pub hits: u64,
    /// Reads that went to the shared store.
    pub misses: u64,
    /// Bytes served from the cache.
    pub hit_bytes: u64,
    /// Blobs admitted into the cache after a verified fill.
    pub fills: u64,
    /// Bytes admitted by those fills.
    pub fill_bytes: u64,
    /// Fills that did not verify against their digest (not admitted).
    pub fill_failures: u64,
    /// Misses that followed a fill in progress on this host instead of
    /// reading the shared store again (counted in `misses` too).
    pub follows: u64,
    /// Blobs evicted to make room (least recently used first).
    pub evictions: u64,
    /// Bytes those evictions freed.
    pub evicted_bytes: u64,
    /// Bytes cached now.
    pub cached_bytes: u64,
    /// The cache's size bound.
    pub max_bytes: u64,
}

/// The live counters behind [`CacheStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) hit_bytes: AtomicU64,
    pub(super) fills: AtomicU64,
    pub(super) fill_bytes: AtomicU64,
    pub(super) fill_failures: AtomicU64,
    pub(super) follows: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) evicted_bytes: AtomicU64,
}

/// Add `n` to a counter.
pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// The snapshot, with the sizes given by the caller.
    pub(super) fn snapshot(&self, cached_bytes: u64, max_bytes: u64) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            requests: get(&self.requests),
            hits: get(&self.hits),
            misses: get(&self.misses),
            hit_bytes: get(&self.hit_bytes),
            fills: get(&self.fills),
            fill_bytes: get(&self.fill_bytes),
            fill_failures: get(&self.fill_failures),
            follows: get(&self.follows),
            evictions: get(&self.evictions),
            evicted_bytes: get(&self.evicted_bytes),
            cached_bytes,
            max_bytes,
        }
    }
}
