//! Process-wide counters of the storage layer, for an embedder's metrics.
//!
//! Plain atomics, no metrics library: an embedder that exports metrics
//! reads a [`StorageStats`] snapshot when it is scraped (the `registry`
//! binary turns them into Prometheus counters); one that does not pays an
//! uncontended atomic add on paths that already did a storage round trip.
//! The counts cover every store of the process, since a conditional write
//! and a retry happen below the store that asked for them.

use std::sync::atomic::{AtomicU64, Ordering};

static CONDITIONAL_LOST: AtomicU64 = AtomicU64::new(0);
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// What the storage layer of this process has counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageStats {
    /// Conditional writes that lost to another writer: a create-if-absent
    /// that found the object there (S3 `If-None-Match` answered 412, a hard
    /// link that found the name taken) or a compare-and-delete whose
    /// object had changed (S3 `If-Match` answered 412). Each is expected
    /// under concurrency and handled; a rising rate shows contention.
    pub conditional_conflicts: u64,
    /// Requests to the object store retried after a transient failure
    /// (throttling, 5xx, a dropped connection), by OpenDAL's retry layer.
    pub retries: u64,
}

/// The counts so far.
pub fn storage_stats() -> StorageStats {
    StorageStats {
        conditional_conflicts: CONDITIONAL_LOST.load(Ordering::Relaxed),
        retries: RETRIES.load(Ordering::Relaxed),
    }
}

/// A conditional write lost.
pub(crate) fn conditional_lost() {
    CONDITIONAL_LOST.fetch_add(1, Ordering::Relaxed);
}

/// OpenDAL's retry layer is about to retry a request.
#[cfg(feature = "s3")]
pub(crate) fn retried() {
    RETRIES.fetch_add(1, Ordering::Relaxed);
}
