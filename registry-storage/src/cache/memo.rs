//! [`LinkMemo`]: the repository links the shared store confirmed lately,
//! which let a cache hit skip asking it.

use std::time::{Duration, Instant};

use registry_core::{Digest, RepositoryName};

use super::recency::Recency;

/// Confirmed (repository, blob) links and when each was confirmed, bounded
/// by age and by count: a link older than the trust window is dropped, and
/// past `capacity` the longest confirmed goes first. Confirmations come in
/// time order, so the expired entries are always the oldest ones.
///
/// A link past the trust window is kept until `keep` (at least the trust
/// window) for one use only: a hit while the shared store is unavailable
/// may still be served on it ([`LinkMemo::known`]).
pub(super) struct LinkMemo {
    ttl: Duration,
    keep: Duration,
    capacity: usize,
    links: Recency<(RepositoryName, Digest), Instant>,
}

impl LinkMemo {
    pub(super) fn new(ttl: Duration, keep: Duration, capacity: usize) -> Self {
        LinkMemo {
            ttl,
            keep: keep.max(ttl),
            capacity,
            links: Recency::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether the shared store confirmed that `repo` links `digest` within
    /// the trust window. A confirmation found past the keeping window is
    /// forgotten.
    pub(super) fn trusted(&mut self, repo: &RepositoryName, digest: &Digest) -> bool {
        self.within(repo, digest, self.ttl)
    }

    /// Whether the shared store confirmed the link within the keeping
    /// window: what a hit goes by while the shared store is unavailable.
    pub(super) fn known(&mut self, repo: &RepositoryName, digest: &Digest) -> bool {
        self.within(repo, digest, self.keep)
    }

    fn within(&mut self, repo: &RepositoryName, digest: &Digest, window: Duration) -> bool {
        let key = (repo.clone(), digest.clone());
        match self.links.get(&key) {
            Some(at) if at.elapsed() < window => true,
            Some(at) if at.elapsed() >= self.keep => {
                self.links.remove(&key);
                false
            }
            _ => false,
        }
    }

    /// Remember that the shared store just confirmed the link, then drop
    /// what the bounds no longer allow: links past the keeping window, then
    /// the oldest.
    pub(super) fn confirm(&mut self, repo: &RepositoryName, digest: &Digest) {
        self.links
            .insert((repo.clone(), digest.clone()), Instant::now());
        while self
            .links
            .oldest()
            .is_some_and(|at| at.elapsed() >= self.keep)
            || self.links.len() > self.capacity
        {
            self.links.pop_oldest();
        }
    }

    /// Forget a link (unlinked through this host).
    pub(super) fn forget(&mut self, repo: &RepositoryName, digest: &Digest) {
        self.links.remove(&(repo.clone(), digest.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: usize) -> (RepositoryName, Digest) {
        (
            RepositoryName::parse(&format!("r/{i}")).unwrap(),
            Digest::sha256_of(b"x"),
        )
    }

    #[test]
    fn past_capacity_the_longest_confirmed_goes() {
        let mut m = LinkMemo::new(Duration::from_secs(60), Duration::ZERO, 2);
        let (a, b, c) = (pair(0), pair(1), pair(2));
        m.confirm(&a.0, &a.1);
        m.confirm(&b.0, &b.1);
        m.confirm(&a.0, &a.1); // reconfirmed: now b is the oldest
        m.confirm(&c.0, &c.1);
        assert_eq!(m.len(), 2);
        assert!(m.trusted(&a.0, &a.1));
        assert!(!m.trusted(&b.0, &b.1));
        assert!(m.trusted(&c.0, &c.1));
    }

    #[test]
    fn expired_links_are_dropped_first() {
        let mut m = LinkMemo::new(Duration::from_millis(20), Duration::ZERO, 10);
        for i in 0..5 {
            let (r, d) = pair(i);
            m.confirm(&r, &d);
        }
        std::thread::sleep(Duration::from_millis(30));
        let (r, d) = pair(0);
        assert!(!m.trusted(&r, &d), "expired");
        assert_eq!(m.len(), 4, "and forgotten when found");
        let (r, d) = pair(9);
        m.confirm(&r, &d);
        assert_eq!(m.len(), 1, "the others went with the next confirmation");
    }

    #[test]
    fn past_the_trust_window_a_link_is_known_until_the_keeping_window() {
        let mut m = LinkMemo::new(Duration::from_millis(20), Duration::from_secs(60), 10);
        let (r, d) = pair(0);
        m.confirm(&r, &d);
        std::thread::sleep(Duration::from_millis(30));
        assert!(!m.trusted(&r, &d), "past the trust window");
        assert!(m.known(&r, &d), "still known, for an outage");
        let (r1, d1) = pair(1);
        m.confirm(&r1, &d1);
        assert_eq!(m.len(), 2, "kept by the next confirmation too");
        assert!(!m.known(&pair(2).0, &d), "never confirmed");
    }
}
