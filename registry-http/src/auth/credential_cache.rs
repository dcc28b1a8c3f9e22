//! A small memory of recently checked credentials, so that a client that
//! sends the same Basic credentials on every request does not pay bcrypt
//! every time.
//!
//! Entries are opaque 32-byte keys (a salted SHA-256 of the user, the
//! presented password and the htpasswd entry; see
//! [`Htpasswd`](super::Htpasswd)), never a password. Each lives for a fixed
//! time; the map holds at most a fixed number of them, dropping expired
//! entries and then the oldest when full.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The key of one remembered credential.
pub(crate) type CredentialKey = [u8; 32];

/// Recently checked credentials: a bounded map from key to the time it was
/// remembered.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    entries: HashMap<CredentialKey, Instant>,
    ttl: Duration,
    max: usize,
}

impl CredentialCache {
    /// An empty cache whose entries live `ttl`, at most `max` of them (at
    /// least one).
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        CredentialCache {
            entries: HashMap::new(),
            ttl,
            max: max.max(1),
        }
    }

    /// Whether `key` was remembered less than the TTL before `now`. An
    /// expired entry is dropped.
    pub(crate) fn contains(&mut self, key: &CredentialKey, now: Instant) -> bool {
        match self.entries.get(key) {
            Some(at) if now.saturating_duration_since(*at) < self.ttl => true,
            Some(_) => {
                self.entries.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remember `key` as of `now`. When the cache is full, expired entries
    /// are dropped first, then the oldest one.
    pub(crate) fn insert(&mut self, key: CredentialKey, now: Instant) {
        if self.entries.len() >= self.max && !self.entries.contains_key(&key) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if self.entries.len() >= self.max
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, now);
    }

    /// How many entries are held, expired ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CredentialKey {
        [n; 32]
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut c = CredentialCache::new(Duration::from_secs(10), 4);
        let t0 = Instant::now();
        assert!(!c.contains(&key(1), t0));
        c.insert(key(1), t0);
        assert!(c.contains(&key(1), t0 + Duration::from_secs(9)));
        assert!(!c.contains(&key(1), t0 + Duration::from_secs(10)));
        assert_eq!(c.len(), 0, "an expired entry is dropped when looked up");
        assert!(!c.contains(&key(2), t0));
    }

    #[test]
    fn the_size_is_bounded_dropping_expired_then_oldest() {
        let mut c = CredentialCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        c.insert(key(1), t0);
        c.insert(key(2), t0 + s(5));
        c.insert(key(3), t0 + s(6));
        // Full: key 1 has expired by t0 + 11 and makes room.
        c.insert(key(4), t0 + s(11));
        assert_eq!(c.len(), 3);
        assert!(!c.contains(&key(1), t0 + s(11)));
        assert!(c.contains(&key(2), t0 + s(11)));
        // Full, nothing expired: the oldest (key 2) goes.
        c.insert(key(5), t0 + s(12));
        assert_eq!(c.len(), 3);
        for (k, kept) in [(2, false), (3, true), (4, true), (5, true)] {
            assert_eq!(c.contains(&key(k), t0 + s(12)), kept, "key {k}");
        }
        // Remembering a key again refreshes it without evicting another.
        c.insert(key(3), t0 + s(13));
        assert_eq!(c.len(), 3);
        assert!(c.contains(&key(3), t0 + s(22)));
        for _ in 0..100 {
            c.insert(key(9), t0 + s(14));
        }
        assert!(c.len() <= 3);
        assert_eq!(CredentialCache::new(s(1), 0).max, 1);
    }
}
