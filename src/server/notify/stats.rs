//! The numbers of one endpoint's notifications, as plain atomics: written
//! by the delivery tasks, read by whoever exports them (the metrics
//! endpoint registers them as gauges and counters; see docs/OPERATIONS.md).

use std::sync::atomic::{AtomicU64, Ordering};

/// One endpoint's numbers, in this process (read by the metrics endpoint).
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// The endpoint's name (a low-cardinality label).
    pub name: String,
    /// Events in the shared outbox for this endpoint when this process last
    /// looked (the fleet's backlog, not only this process's).
    pub outbox_depth: AtomicU64,
    /// Events in this process's memory queue (non-durable actions).
    pub memory_depth: AtomicU64,
    /// Age in seconds of the oldest undelivered event in the outbox when
    /// this process last looked (0: none).
    pub oldest_undelivered_seconds: AtomicU64,
    /// Deliveries that succeeded (2xx or 3xx), by this process.
    pub delivered: AtomicU64,
    /// Delivery attempts that failed (error, timeout or other status).
    pub failed: AtomicU64,
    /// Events that exhausted their attempts: moved to the dead-letter
    /// prefix by this process, or dropped from its memory queue.
    pub dead_letters: AtomicU64,
    /// Non-durable events dropped because the memory queue was full.
    pub dropped: AtomicU64,
    /// Durable events that could not be written to the outbox (their
    /// requests were answered 500).
    pub outbox_errors: AtomicU64,
}

impl EndpointStats {
    /// Numbers for endpoint `name`, all zero.
    pub fn new(name: &str) -> Self {
        EndpointStats {
            name: name.to_owned(),
            ..EndpointStats::default()
        }
    }

    /// Add one to a counter.
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot, for logs and tests: (depth, oldest age, delivered,
    /// failed, dead letters).
    #[allow(dead_code)]
    pub fn snapshot(&self) -> [u64; 5] {
        [
            self.outbox_depth.load(Ordering::Relaxed) + self.memory_depth.load(Ordering::Relaxed),
            self.oldest_undelivered_seconds.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.dead_letters.load(Ordering::Relaxed),
        ]
    }
}
