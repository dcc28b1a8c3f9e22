//! Leases: the records of a collection under way (`runs/<run>`) and its doom
//! markers (`doomed/<digest>/<run>`) each hold the time until which they
//! count. A collection renews its run while it marks and deletes only while
//! its lease holds; others take an expired record for a dead collector's
//! leftover. This is the one place where hosts' clocks matter: they must
//! agree to well within [`LEASE`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use registry_core::{Digest, Error, ErrorKind, Result};

use crate::OpendalStore;
use crate::layout::Key;

/// How long a run record or doom marker counts after it was written.
pub(crate) const LEASE: Duration = Duration::from_secs(120);

/// How often a run renews its record.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// A collector stops deleting this long before its lease ends.
pub(crate) const MARGIN: Duration = Duration::from_secs(30);

/// A collection under way, announced in the store, its record renewed by a
/// task of its own while the run lasts.
pub(crate) struct Run {
    pub(crate) id: String,
    /// When the record was last written, by this process's monotonic clock.
    renewed: Arc<Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Run {
    /// Write `runs/<run>` (step C1 of docs/GC.md) and start renewing it.
    pub(crate) async fn announce(store: &OpendalStore) -> Result<Run> {
        let id = format!(
            "{}-{}",
            humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .replace(':', ""),
            crate::nonce()?
        );
        let path = Key::GcRun(&id).path();
        write_expiry(store, &path).await?;
        let renewed = Arc::new(Mutex::new(Instant::now()));
        let renewer = tokio::spawn({
            let (store, renewed) = (store.clone(), renewed.clone());
            async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let at = Instant::now();
                    match write_expiry(&store, &path).await {
                        Ok(()) => *renewed.lock().unwrap_or_else(|p| p.into_inner()) = at,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not renew the collection's lease")
                        }
                    }
                }
            }
        });
        Ok(Run {
            id,
            renewed,
            renewer,
        })
    }

    /// Until when this run may delete: its lease, less a margin, from the
    /// last renewal that reached the store.
    pub(crate) fn deadline(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) + LEASE - MARGIN
    }

    /// Fail if the lease no longer holds (others may have taken the run for
    /// dead and gone ahead).
    pub(crate) fn check(&self) -> Result<()> {
        if Instant::now() < self.deadline() {
            Ok(())
        } else {
            Err(lapsed())
        }
    }

    /// Stop renewing and remove the run record (step C9). Failures are
    /// logged: the record then expires on its own.
    pub(crate) async fn end(self, store: &OpendalStore) {
        self.renewer.abort();
        let _ = self.renewer.await;
        if let Err(e) = store.delete_key(Key::GcRun(&self.id)).await {
            tracing::warn!(run = %self.id, error = %e, "could not remove the collection's run record");
        }
    }
}

/// The error of a collection whose lease ran out.
pub(crate) fn lapsed() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "the collection's lease ran out; nothing more was deleted (run it again)",
    )
}

/// Write an object holding the time `LEASE` from now.
pub(crate) async fn write_expiry(store: &OpendalStore, path: &str) -> Result<()> {
    let until = humantime::format_rfc3339_millis(SystemTime::now() + LEASE).to_string();
    store.write_object_atomic(path, Bytes::from(until)).await
}

/// Whether an expiry record read from the store still counts. An unreadable
/// one (written by no version of this registry) counts: the safe side.
pub(crate) fn counts(content: &[u8]) -> bool {
    match std::str::from_utf8(content)
        .ok()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok())
    {
        Some(until) => until > SystemTime::now(),
        None => true,
    }
}

impl OpendalStore {
    /// The ids of the collections under way whose lease holds.
    pub(crate) async fn gc_runs(&self) -> Result<Vec<String>> {
        let mut runs = Vec::new();
        for name in self.list_names(Key::GcRunsDir).await? {
            if name.ends_with('/') {
                continue;
            }
            let record = self
                .read_object(Key::GcRun(&name), "reading a collection's run record")
                .await?;
            if record.is_some_and(|r| counts(&r)) {
                runs.push(name);
            }
        }
        Ok(runs)
    }

    /// Whether a collection whose lease holds is about to delete `digest`.
    pub(crate) async fn is_doomed(&self, digest: &Digest) -> Result<bool> {
        for name in self.list_names(Key::GcDoomedDir(digest)).await? {
            let marker = self
                .read_object(Key::GcDoomed(digest, &name), "reading a doom marker")
                .await?;
            if marker.is_some_and(|m| counts(&m)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The store's own time now: the modification time of a probe it just
    /// wrote. `None` where the backend keeps no times (memory).
    pub(crate) async fn store_now(&self) -> Result<Option<SystemTime>> {
        let nonce = crate::nonce()?;
        let path = Key::GcClock(&nonce).path();
        self.write_object_atomic(&path, Bytes::from_static(b"clock"))
            .await?;
        let at = self
            .operator()
            .stat(&path)
            .await
            .ok()
            .and_then(|m| m.last_modified())
            .map(SystemTime::from);
        let _ = self.operator().delete(&path).await;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_records_count_until_their_time() {
        let later = humantime::format_rfc3339_millis(SystemTime::now() + LEASE).to_string();
        let earlier = humantime::format_rfc3339_millis(SystemTime::now() - Duration::from_secs(1))
            .to_string();
        assert!(counts(later.as_bytes()));
        assert!(!counts(earlier.as_bytes()));
        assert!(counts(b"not a time"), "an unreadable record is honoured");
    }
}
