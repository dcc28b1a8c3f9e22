//! A bounded in-process cache of manifest contents by digest.
//!
//! Only immutable things are cached: the bytes stored under a digest and the
//! media type read from them. Which manifest a tag names, and whether a
//! repository still has a revision, are read from the store on every
//! request, so the cache can never make a process serve a stale tag (see
//! `docs/CONSISTENCY.md`). The repositories seen to have each manifest are
//! remembered beside it (a few per manifest), so that a manifest read by
//! digest can be answered from here while the store is down
//! ([`GuardedStore`](crate::availability::GuardedStore)), and only in a
//! repository that had it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use registry_core::{Digest, RepositoryName};

/// Bytes of manifests kept at most.
pub(crate) const DEFAULT_CAPACITY: usize = 32 * 1024 * 1024;

/// Repositories remembered per manifest, at most.
const REPOS_PER_MANIFEST: usize = 8;

/// Manifest bytes and media type by digest, first in first out.
pub(crate) struct ManifestCache {
    capacity: usize,
    state: Mutex<State>,
}

struct Entry {
    media_type: std::sync::Arc<str>,
    bytes: Bytes,
    /// Repositories the store said have this manifest, oldest first.
    repos: Vec<RepositoryName>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl ManifestCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ManifestCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The media type and bytes stored under `digest`, if cached.
    pub(crate) fn get(&self, digest: &Digest) -> Option<(std::sync::Arc<str>, Bytes)> {
        let st = self.lock();
        let e = st.entries.get(digest)?;
        Some((e.media_type.clone(), e.bytes.clone()))
    }

    /// Like [`get`](Self::get), and remember that the store just said
    /// `repo` has the manifest.
    pub(crate) fn get_in(
        &self,
        digest: &Digest,
        repo: &RepositoryName,
    ) -> Option<(std::sync::Arc<str>, Bytes)> {
        let mut st = self.lock();
        let e = st.entries.get_mut(digest)?;
        note_repo(&mut e.repos, repo);
        Some((e.media_type.clone(), e.bytes.clone()))
    }

    /// The manifest if it is cached and `repo` was seen to have it.
    pub(crate) fn get_confirmed(
        &self,
        digest: &Digest,
        repo: &RepositoryName,
    ) -> Option<(std::sync::Arc<str>, Bytes)> {
        let st = self.lock();
        let e = st.entries.get(digest)?;
        e.repos
            .contains(repo)
            .then(|| (e.media_type.clone(), e.bytes.clone()))
    }

    /// Forget that `repo` has the manifest (deleted through this host).
    pub(crate) fn forget_repo(&self, digest: &Digest, repo: &RepositoryName) {
        if let Some(e) = self.lock().entries.get_mut(digest) {
            e.repos.retain(|r| r != repo);
        }
    }

    /// Remember a manifest, which the store just said `repo` has. Ones
    /// larger than a quarter of the capacity are not kept.
    pub(crate) fn insert(
        &self,
        digest: Digest,
        repo: &RepositoryName,
        media_type: &str,
        bytes: Bytes,
    ) {
        if bytes.len() > self.capacity / 4 {
            return;
        }
        let mut st = self.lock();
        if let Some(e) = st.entries.get_mut(&digest) {
            note_repo(&mut e.repos, repo);
            return;
        }
        st.bytes += bytes.len();
        st.order.push_back(digest.clone());
        st.entries.insert(
            digest,
            Entry {
                media_type: media_type.into(),
                bytes,
                repos: vec![repo.clone()],
            },
        );
        while st.bytes > self.capacity {
            let Some(old) = st.order.pop_front() else {
                break;
            };
            if let Some(e) = st.entries.remove(&old) {
                st.bytes -= e.bytes.len();
            }
        }
    }
}

/// Add `repo` to `repos` unless there, dropping the oldest past the bound.
fn note_repo(repos: &mut Vec<RepositoryName>, repo: &RepositoryName) {
    if repos.contains(repo) {
        return;
    }
    if repos.len() >= REPOS_PER_MANIFEST {
        repos.remove(0);
    }
    repos.push(repo.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_first_in_first_out() {
        let c = ManifestCache::new(400);
        let d = |i: u8| Digest::sha256_of(&[i]);
        let repo = RepositoryName::parse("a/b").unwrap();
        for i in 0..5u8 {
            c.insert(d(i), &repo, "t", Bytes::from(vec![i; 100]));
        }
        assert!(c.get(&d(0)).is_none(), "oldest evicted");
        for i in 1..5u8 {
            assert_eq!(c.get(&d(i)).unwrap().1.len(), 100);
        }
        c.insert(d(9), &repo, "t", Bytes::from(vec![0; 101]));
        assert!(c.get(&d(9)).is_none(), "over a quarter of the capacity");
    }

    #[test]
    fn answers_by_repository_only_where_it_was_seen() {
        let c = ManifestCache::new(4000);
        let d = Digest::sha256_of(b"m");
        let (a, b) = (
            RepositoryName::parse("a").unwrap(),
            RepositoryName::parse("b").unwrap(),
        );
        c.insert(d.clone(), &a, "t", Bytes::from_static(b"m"));
        assert!(c.get_confirmed(&d, &a).is_some());
        assert!(c.get_confirmed(&d, &b).is_none(), "never seen in b");
        assert!(c.get_in(&d, &b).is_some());
        assert!(c.get_confirmed(&d, &b).is_some());
        c.forget_repo(&d, &a);
        assert!(c.get_confirmed(&d, &a).is_none());
        for i in 0..REPOS_PER_MANIFEST {
            c.get_in(&d, &RepositoryName::parse(&format!("r{i}")).unwrap());
        }
        assert!(
            c.get_confirmed(&d, &b).is_none(),
            "bounded: the oldest went"
        );
    }
}
