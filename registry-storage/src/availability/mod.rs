//! Whether the store answers, and what requests do while it does not.
//!
//! [`StoreHealth`] is one small state machine with hysteresis, fed by a
//! cheap probe on an interval ([`spawn_probe`]) and by the outcome of every
//! request that reaches the store through a [`GuardedStore`]: after
//! [`HealthConfig::failures`] consecutive failures the store is *failing*,
//! and only after [`HealthConfig::successes`] consecutive successful probes
//! is it healthy again. While it is failing, a [`GuardedStore`] refuses
//! requests at once with [`ErrorKind::Unavailable`] (HTTP 503) instead of
//! letting each one spend the retry layer's backoff, and the requests
//! already waiting on the store give up. Two exceptions keep serving what
//! this host holds: manifests by digest from the in-process manifest cache,
//! and blobs from a [`CachedStore`](crate::CachedStore) in front.

mod guard;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use registry_core::{Error, ErrorKind};
use tokio::sync::watch;

pub use guard::GuardedStore;

use crate::OpendalStore;

/// Thresholds and timings of [`StoreHealth`] and the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// How often the probe asks the store.
    pub probe_interval: Duration,
    /// Consecutive failures (probes or requests) that make the store
    /// failing; at least 1.
    pub failures: u32,
    /// Consecutive successful probes that make a failing store healthy
    /// again; at least 1.
    pub successes: u32,
    /// The longest a storage operation, its retries included, may take
    /// before the request gives up with [`ErrorKind::Unavailable`]. Not
    /// applied to operations that stream a request body into the store
    /// (their length is the client's), which give up when the store is
    /// found failing instead. Also bounds one probe.
    pub op_timeout: Duration,
}

impl Default for HealthConfig {
    /// A probe every 5 s; 3 failures to fail, 2 successes to recover;
    /// 10 s per operation.
    fn default() -> Self {
        HealthConfig {
            probe_interval: Duration::from_secs(5),
            failures: 3,
            successes: 2,
            op_timeout: Duration::from_secs(10),
        }
    }
}

/// The store's health as the probe and the requests found it. Shared
/// (`Arc`) between the probe task, the [`GuardedStore`] and whatever
/// reports readiness.
#[derive(Debug)]
pub struct StoreHealth {
    config: HealthConfig,
    /// Read on every request: kept outside the lock.
    failing: AtomicBool,
    /// Whether failures are being counted (so a success must reset them).
    counting: AtomicBool,
    /// Tells the requests waiting on the store that it was found failing.
    changed: watch::Sender<bool>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    successes: u32,
    last_error: Option<String>,
    /// A probe succeeded at least once since start-up.
    started: bool,
}

impl StoreHealth {
    /// A healthy store (until told otherwise) with these thresholds.
    pub fn new(config: HealthConfig) -> Self {
        StoreHealth {
            config,
            failing: AtomicBool::new(false),
            counting: AtomicBool::new(false),
            changed: watch::Sender::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// The thresholds and timings.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the store is known to be failing.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// `Ok` while the store is healthy; else why it is not (the last
    /// failure seen), for a readiness report.
    pub fn status(&self) -> Result<(), String> {
        if !self.is_failing() {
            return Ok(());
        }
        Err(self
            .lock()
            .last_error
            .clone()
            .unwrap_or_else(|| "storage failing".to_owned()))
    }

    /// Whether a probe has succeeded since start-up.
    pub fn started(&self) -> bool {
        self.lock().started
    }

    /// A request or the probe found the store answering.
    pub fn record_success(&self, probe: bool) {
        if !probe {
            // The request path: takes the lock only to reset a pending
            // count. Requests never bring a failing store back (they are
            // refused meanwhile, except those served from a cache).
            if self.counting.load(Ordering::Acquire) {
                let mut st = self.lock();
                st.failures = 0;
                self.counting.store(false, Ordering::Release);
            }
            return;
        }
        let mut st = self.lock();
        st.started = true;
        st.failures = 0;
        self.counting.store(false, Ordering::Release);
        if self.is_failing() {
            st.successes += 1;
            if st.successes >= self.config.successes.max(1) {
                st.successes = 0;
                self.set_failing(false);
                tracing::info!("storage answers again: ready");
            }
        }
    }

    /// A request or the probe found the store failing.
    pub fn record_failure(&self, error: &Error) {
        let mut st = self.lock();
        st.successes = 0;
        st.failures = st.failures.saturating_add(1);
        self.counting.store(true, Ordering::Release);
        st.last_error = Some(one_line(error));
        if !self.is_failing() && st.failures >= self.config.failures.max(1) {
            tracing::warn!(
                error = %error,
                failures = st.failures,
                "storage failing: not ready; requests that need it answer 503 until it recovers"
            );
            self.set_failing(true);
        }
    }

    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Release);
        self.changed.send_replace(failing);
    }

    /// Resolves when the store is (or becomes) failing. Subscribes when
    /// first polled, not when made: the guard polls it only once its
    /// operation did not finish at once, and a subscription is two atomic
    /// operations on a counter every request thread shares.
    pub(crate) async fn found_failing(&self) {
        let mut rx = self.changed.subscribe();
        // An error means the sender is gone: never, it lives in `self`.
        let _ = rx.wait_for(|failing| *failing).await;
    }
}

/// The error and its sources on one line, for a health report.
fn one_line(error: &Error) -> String {
    use std::error::Error as _;
    let mut text = error.message().to_owned();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace('\n', " ")
}

/// Whether an outcome of kind `kind` means the store did not answer. Other
/// errors (a missing blob, a lost conditional write) are answers.
pub(crate) fn is_store_failure(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Storage | ErrorKind::Unavailable)
}

/// The error of a request refused or given up because the store fails.
pub(crate) fn unavailable(why: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("storage unavailable: {why}"),
    )
}

impl OpendalStore {
    /// One cheap question to the store: the metadata of an object that is
    /// never written (`_registry/probe-health`). "Not found" is an answer;
    /// anything else but success is a failure. Not retried beyond what the
    /// operator's own layers do; bound it with a timeout.
    pub async fn probe(&self) -> registry_core::Result<()> {
        match self
            .operator()
            .stat(&crate::layout::Key::Probe("health").path())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::error::is_not_found(&e) => Ok(()),
            Err(e) => Err(crate::error::storage("probing the store")(e)),
        }
    }

    /// The manifest `digest` from the in-process cache, if the store was
    /// seen to have it in `repo`; never asks the store.
    pub(crate) fn cached_manifest(
        &self,
        repo: &registry_core::RepositoryName,
        digest: &registry_core::Digest,
    ) -> Option<registry_core::StoredManifest> {
        let (media_type, bytes) = self.manifest_cache().get_confirmed(digest, repo)?;
        Some(registry_core::StoredManifest {
            digest: digest.clone(),
            media_type: media_type.to_string(),
            bytes,
        })
    }
}

/// Probe `store` every [`HealthConfig::probe_interval`] (the first time at
/// once), each probe bounded by [`HealthConfig::op_timeout`] and the
/// interval, and record the outcome in `health`. Needs a Tokio runtime;
/// abort the task to stop it.
pub fn spawn_probe(
    store: OpendalStore,
    health: std::sync::Arc<StoreHealth>,
) -> tokio::task::JoinHandle<()> {
    let every = health
        .config()
        .probe_interval
        .max(Duration::from_millis(100));
    let bound = health
        .config()
        .op_timeout
        .min(every)
        .max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match tokio::time::timeout(bound, store.probe()).await {
                Ok(Ok(())) => health.record_success(true),
                Ok(Err(e)) => health.record_failure(&e),
                Err(_) => health.record_failure(&unavailable(&format!(
                    "the probe got no answer within {bound:?}"
                ))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, successes: u32) -> StoreHealth {
        StoreHealth::new(HealthConfig {
            failures,
            successes,
            ..HealthConfig::default()
        })
    }

    fn down() -> Error {
        Error::new(ErrorKind::Storage, "connection refused")
    }

    #[test]
    fn fails_after_n_consecutive_failures_and_recovers_after_m_probes() {
        let h = health(3, 2);
        h.record_failure(&down());
        h.record_failure(&down());
        h.record_success(false);
        h.record_failure(&down());
        h.record_failure(&down());
        assert!(!h.is_failing(), "a success in between resets the count");
        h.record_failure(&down());
        assert!(h.is_failing());
        assert!(h.status().unwrap_err().contains("connection refused"));
        h.record_success(false);
        assert!(h.is_failing(), "requests do not bring it back");
        h.record_success(true);
        assert!(h.is_failing(), "one probe is not enough");
        h.record_failure(&down());
        h.record_success(true);
        assert!(h.is_failing(), "a failure in between resets the successes");
        h.record_success(true);
        assert!(!h.is_failing());
        assert_eq!(h.status(), Ok(()));
        assert!(h.started());
    }

    #[tokio::test]
    async fn waiters_learn_when_the_store_fails() {
        let h = std::sync::Arc::new(health(1, 1));
        let watched = h.clone();
        let waiting = tokio::spawn(async move { watched.found_failing().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        h.record_failure(&down());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
