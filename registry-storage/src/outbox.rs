//! The outbox: events waiting to be delivered to webhook endpoints, kept
//! in the shared store so that any process of a fleet may deliver them and
//! none is lost when the process that wrote one dies.
//!
//! One folder per endpoint (`layout`'s tree): an event is written there
//! create-if-absent under a stable id before the request that caused it is
//! answered; a deliverer first wins attempt `n` of it by creating
//! `claims/<id>/<n>` create-if-absent (exactly one process wins each
//! attempt), then posts it; delivered, the event is removed; after the
//! last attempt it moves to `dead/`. An attempt's lease runs from the
//! claim's modification time in the store's own clock (compared with a
//! probe the store just wrote, as the collector does), so hosts' clocks do
//! not matter: attempt `n + 1` may be claimed once [`Schedule::wait`] of
//! attempt `n` has passed, whether its deliverer failed or died.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use registry_core::{Error, ErrorKind, Result};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;

/// When attempts are made: exponential backoff from `backoff`, doubled per
/// attempt up to `max_backoff`, never sooner than `lease` after the last
/// attempt began (so a deliverer still posting is not raced), and at most
/// `attempts` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Wait after the first attempt.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Shortest wait: how long an attempt may take.
    pub lease: Duration,
    /// Attempts before the event is a dead letter.
    pub attempts: u32,
}

impl Schedule {
    /// How long after attempt `attempt` (from 1) began the next may be made.
    pub fn wait(&self, attempt: u32) -> Duration {
        self.backoff_after(attempt).max(self.lease)
    }

    /// The backoff alone after attempt `attempt`: `backoff` doubled per
    /// attempt, at most `max_backoff`.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// What [`OpendalStore::outbox_claim`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds attempt `n` (from 1): post the event now.
    Won(u32),
    /// Another attempt is under way or its wait has not passed, or another
    /// process won the race for the next one.
    NotNow,
    /// Every attempt was made and the last one's lease is over: bury it ([`OpendalStore::outbox_bury`]).
    Exhausted,
}

/// A new event id, stable for the event's life so that a consumer can drop
/// a duplicate delivery: a UUID version 7 (RFC 9562), the host's time in
/// milliseconds then random bits, so that ids sort by when they were made
/// and the outbox is read oldest first without a `stat` per event.
pub fn new_event_id() -> Result<String> {
    let mut b = crate::random_bytes()?;
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// When an id of [`new_event_id`] was made (by its maker's clock).
pub fn event_id_time(id: &str) -> Option<SystemTime> {
    let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
    let millis = u64::from_str_radix(&hex, 16).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(millis))
}

/// Whether `name` can be an endpoint name or event id in a key: ASCII
/// letters, digits, `-`, `_` and `.` (not only dots), at most 128 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.trim_matches('.').is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check(endpoint: &str, id: &str) -> Result<()> {
    if valid_name(endpoint) && valid_name(id) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Internal,
            format!("invalid outbox name {endpoint:?}/{id:?}"),
        ))
    }
}

impl OpendalStore {
    /// Record event `id` for `endpoint`, create-if-absent: once this
    /// returns, the event is in the store for any process to deliver. Its
    /// content is written once; a second put of the same id keeps the
    /// first.
    pub async fn outbox_put(&self, endpoint: &str, id: &str, event: Vec<u8>) -> Result<()> {
        check(endpoint, id)?;
        self.create_object_exclusive(&Key::EventPending(endpoint, id).path(), event)
            .await
            .map(drop)
    }

    /// The ids of the events not yet delivered to `endpoint`, oldest first
    /// (ids sort by time, [`new_event_id`]).
    pub async fn outbox_pending(&self, endpoint: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list_names(Key::EventsPendingDir(endpoint))
            .await?
            .into_iter()
            .filter(|n| !n.ends_with('/') && valid_name(n))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The event's bytes; `None` once it is delivered or buried.
    pub async fn outbox_read(&self, endpoint: &str, id: &str) -> Result<Option<Bytes>> {
        check(endpoint, id)?;
        self.read_object(Key::EventPending(endpoint, id), "reading an event")
            .await
    }

    /// Try to win the next delivery attempt of event `id` to `endpoint`.
    /// `now` is the store's time ([`OpendalStore::outbox_now`]); without
    /// one (a backend that keeps no times) the host's clock is used, and
    /// claims hold the host time they were made at.
    pub async fn outbox_claim(
        &self,
        endpoint: &str,
        id: &str,
        schedule: &Schedule,
        now: Option<SystemTime>,
    ) -> Result<Claim> {
        check(endpoint, id)?;
        let last = self
            .list_names(Key::EventClaimsDir(endpoint, id))
            .await?
            .iter()
            .filter_map(|n| n.trim_end_matches('/').parse::<u32>().ok())
            .max();
        if let Some(n) = last {
            let path = Key::EventClaim(endpoint, id, n).path();
            let began = match (now, self.modified(&path).await?) {
                (Some(now), Some(Some(at))) => Some((now, at)),
                (_, None) => None,
                _ => self.claim_host_time(&path).await?,
            };
            if let Some((now, began)) = began
                && now < began + schedule.wait(n)
            {
                return Ok(Claim::NotNow);
            }
            // The last attempt's lease is over too.
            if n >= schedule.attempts {
                return Ok(Claim::Exhausted);
            }
        }
        let next = last.unwrap_or(0) + 1;
        let stamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let won = self
            .create_object_exclusive(
                &Key::EventClaim(endpoint, id, next).path(),
                stamp.into_bytes(),
            )
            .await?;
        Ok(if won { Claim::Won(next) } else { Claim::NotNow })
    }

    /// Event `id` reached `endpoint`: remove it, then its claims. (A process
    /// that dies between the two leaves claims without an event, which no
    /// one reads again; nothing removes them yet.)
    pub async fn outbox_delivered(&self, endpoint: &str, id: &str) -> Result<()> {
        check(endpoint, id)?;
        self.delete_key(Key::EventPending(endpoint, id)).await?;
        self.delete_dir(Key::EventClaimsDir(endpoint, id)).await
    }

    /// Event `id` exhausted its attempts: copy it to `dead/`, then remove
    /// it and its claims. `Ok(true)` for the one caller that wrote the dead
    /// letter.
    pub async fn outbox_bury(&self, endpoint: &str, id: &str) -> Result<bool> {
        let mut buried = false;
        if let Some(bytes) = self.outbox_read(endpoint, id).await? {
            buried = self
                .create_object_exclusive(&Key::EventDead(endpoint, id).path(), bytes.to_vec())
                .await?;
        }
        self.outbox_delivered(endpoint, id).await?;
        Ok(buried)
    }

    /// The dead letters of `endpoint`.
    pub async fn outbox_dead(&self, endpoint: &str) -> Result<Vec<String>> {
        Ok(self
            .list_names(Key::EventsDeadDir(endpoint))
            .await?
            .into_iter()
            .filter(|n| !n.ends_with('/'))
            .collect())
    }

    /// A dead letter's bytes, if it is there.
    pub async fn outbox_read_dead(&self, endpoint: &str, id: &str) -> Result<Option<Bytes>> {
        check(endpoint, id)?;
        self.read_object(Key::EventDead(endpoint, id), "reading a dead letter")
            .await
    }

    /// The store's time now (a probe's modification time), `None` where
    /// the backend keeps no times.
    pub async fn outbox_now(&self) -> Result<Option<SystemTime>> {
        self.store_now().await
    }

    /// An object's modification time: `None` if it is gone, `Some(None)`
    /// if the backend keeps no times.
    async fn modified(&self, path: &str) -> Result<Option<Option<SystemTime>>> {
        match self.operator().stat(path).await {
            Ok(meta) => Ok(Some(meta.last_modified().map(SystemTime::from))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage("reading an event's time")(e)),
        }
    }

    /// The host time a claim holds, with the host's time now.
    async fn claim_host_time(&self, path: &str) -> Result<Option<(SystemTime, SystemTime)>> {
        match self.operator().read(path).await {
            Ok(buf) => Ok(std::str::from_utf8(&buf.to_vec())
                .ok()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok())
                .map(|at| (SystemTime::now(), at))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage("reading a claim")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            lease: Duration::from_secs(2),
            attempts: 3,
        }
    }

    #[test]
    fn waits_double_up_to_the_cap_and_never_undercut_the_lease() {
        let s = schedule();
        let waits: Vec<u64> = (1..=6).map(|n| s.wait(n).as_secs()).collect();
        assert_eq!(waits, [2, 2, 4, 8, 10, 10]);
        assert_eq!(s.wait(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn ids_are_uuids_and_names_are_checked() {
        let id = new_event_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        let at = event_id_time(&id).unwrap();
        let age = SystemTime::now().duration_since(at).unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
        std::thread::sleep(Duration::from_millis(2));
        let later = new_event_id().unwrap();
        assert!(later > id, "ids sort by time");
        assert!(valid_name(&id) && valid_name("ci.hooks_1"));
        for bad in ["", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[cfg(feature = "memory")]
    #[tokio::test]
    async fn one_claimant_per_attempt_then_exhausted_and_buried() {
        let store = OpendalStore::memory();
        let s = Schedule {
            lease: Duration::ZERO,
            backoff: Duration::ZERO,
            ..schedule()
        };
        store.outbox_put("ci", "e1", b"{}".to_vec()).await.unwrap();
        store
            .outbox_put("ci", "e1", b"other".to_vec())
            .await
            .unwrap();
        assert_eq!(store.outbox_read("ci", "e1").await.unwrap().unwrap(), "{}");
        for n in 1..=3 {
            assert_eq!(
                store.outbox_claim("ci", "e1", &s, None).await.unwrap(),
                Claim::Won(n)
            );
        }
        assert_eq!(
            store.outbox_claim("ci", "e1", &s, None).await.unwrap(),
            Claim::Exhausted
        );
        assert!(store.outbox_bury("ci", "e1").await.unwrap());
        assert!(store.outbox_pending("ci").await.unwrap().is_empty());
        assert_eq!(store.outbox_dead("ci").await.unwrap(), ["e1"]);
        // A new claim starts afresh only for a new event.
        assert!(store.outbox_read("ci", "e1").await.unwrap().is_none());
    }

    #[cfg(feature = "memory")]
    #[tokio::test]
    async fn an_attempt_under_way_holds_its_lease() {
        let store = OpendalStore::memory();
        store.outbox_put("ci", "e2", b"{}".to_vec()).await.unwrap();
        let s = schedule();
        assert_eq!(
            store.outbox_claim("ci", "e2", &s, None).await.unwrap(),
            Claim::Won(1)
        );
        assert_eq!(
            store.outbox_claim("ci", "e2", &s, None).await.unwrap(),
            Claim::NotNow
        );
        store.outbox_delivered("ci", "e2").await.unwrap();
        assert!(store.outbox_pending("ci").await.unwrap().is_empty());
        assert!(store.outbox_dead("ci").await.unwrap().is_empty());
    }
}
