//! [`LinkMemo`]: the repository links the shared store confirmed lately,
//! which let a cache hit skip asking it.

use std::time::{Duration, Instant};

use registry_core::{Digest, RepositoryName};

use super::recency::Recency;

/// Confirmed (repository, blob) links and when each was confirmed, bounded
/// by age and by count: a link older than the trust window is dropped, and
/// past `capacity` the longest confirmed goes first. Confirmations come in
/// time order, so the expired entries are always the oldest ones.
pub(super) struct LinkMemo {
    ttl: Duration,
    capacity: usize,
    links: Recency<(RepositoryName, Digest), Instant>,
}

impl LinkMemo {
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        LinkMemo {
            ttl,
            capacity,
            links: Recency::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether the shared store confirmed that `repo` links `digest` within
    /// the trust window. A confirmation found expired is forgotten.
    pub(super) fn trusted(&mut self, repo: &RepositoryName, digest: &Digest) -> bool {
        let key = (repo.clone(), digest.clone());
        match self.links.get(&key) {
            Some(at) if at.elapsed() < self.ttl => true,
            Some(_) => {
                self.links.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remember that the shared store just confirmed the link, then drop
    /// what the bounds no longer allow: expired links, then the oldest.
    pub(super) fn confirm(&mut self, repo: &RepositoryName, digest: &Digest) {
        self.links
            .insert((repo.clone(), digest.clone()), Instant::now());
        while self
            .links
            .oldest()
            .is_some_and(|at| at.elapsed() >= self.ttl)
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
        let mut m = LinkMemo::new(Duration::from_secs(60), 2);
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
        let mut m = LinkMemo::new(Duration::from_millis(20), 10);
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
}
