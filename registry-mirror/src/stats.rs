//! What the mirror did, in plain atomics (the binary writes them as
//! metrics at scrape time, as it does the storage crate's counters).

use std::sync::atomic::{AtomicU64, Ordering};

/// The mirror's counters, shared by its store.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    manifest_fetches: AtomicU64,
    revalidations: AtomicU64,
    blob_fetches: AtomicU64,
    bytes_fetched: AtomicU64,
    stale_served: AtomicU64,
    not_found_cached: AtomicU64,
    lease_waits: AtomicU64,
    adopted: AtomicU64,
    passthrough: AtomicU64,
    upstream_errors: AtomicU64,
    rejected: AtomicU64,
}

/// A snapshot of the mirror's counters ([`MirrorStore::stats`](crate::MirrorStore::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStats {
    /// Manifests fetched from an upstream and stored.
    pub manifest_fetches: u64,
    /// Tags checked upstream with a `HEAD` once their interval had passed.
    pub revalidations: u64,
    /// Blobs fetched from an upstream and stored (by this process).
    pub blob_fetches: u64,
    /// Bytes of blobs received from upstreams (stored or passed through).
    pub bytes_fetched: u64,
    /// Tags served from the store because every upstream failed.
    pub stale_served: u64,
    /// Requests answered "unknown" from a remembered upstream 404.
    pub not_found_cached: u64,
    /// Blob misses that waited for another process's fetch.
    pub lease_waits: u64,
    /// Blob misses served from bytes another process or repository had stored.
    pub adopted: u64,
    /// Blobs streamed from upstream without being stored (another
    /// process's fetch took past the deadline).
    pub passthrough: u64,
    /// Upstream requests that failed (refused, unreachable, rate limited).
    pub upstream_errors: u64,
    /// Upstream content refused: a digest that did not match, a manifest
    /// that did not parse.
    pub rejected: u64,
}

macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        impl Counters {
            $(
                pub(crate) fn $field(&self, n: u64) {
                    self.$field.fetch_add(n, Ordering::Relaxed);
                }
            )*

            pub(crate) fn snapshot(&self) -> MirrorStats {
                MirrorStats {
                    $($field: self.$field.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters!(
    manifest_fetches,
    revalidations,
    blob_fetches,
    bytes_fetched,
    stale_served,
    not_found_cached,
    lease_waits,
    adopted,
    passthrough,
    upstream_errors,
    rejected,
);
