//! [`PeerStats`]: the counters the embedding server exports.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the peer counters of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Blob requests sent to peers.
    pub requests: u64,
    /// Verified bytes received from peers.
    pub bytes: u64,
    /// Whole-blob reads that went to the store after asking peers (no owner
    /// answered in time, or a peer's stream failed and the rest was read
    /// from the store).
    pub fallbacks: u64,
    /// Peer streams whose bytes did not hash to the digest or had the wrong
    /// size.
    pub verification_failures: u64,
    /// Blob requests this process answered for peers.
    pub served: u64,
    /// Members live now (this process included, once it recognised itself).
    pub live_members: u64,
}

/// The counters, as atomics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    pub(crate) verification_failures: AtomicU64,
    pub(crate) served: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, live_members: u64) -> PeerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerStats {
            requests: get(&self.requests),
            bytes: get(&self.bytes),
            fallbacks: get(&self.fallbacks),
            verification_failures: get(&self.verification_failures),
            served: get(&self.served),
            live_members,
        }
    }
}
