//! Pull times: when a manifest was last pulled by digest, for retention
//! rules that keep what is in use (`keep_pulled_within`, docs/GC.md).
//!
//! A pull by digest writes `_registry/pulls/<name>/<alg>/<hex>` (empty; the
//! store's modification time is the pull time) at most once per interval
//! per manifest and process, in the background, so pulls do not become a
//! write each. Off unless [`OpendalStore::with_pull_times`] turns it on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use registry_core::{Digest, RepositoryName, Result};

use crate::OpendalStore;
use crate::layout::Key;

/// How many manifests a process remembers having recorded; past it, the
/// entries older than the interval are forgotten (and, if that is not
/// enough, all of them: at worst a few records are written again early).
const REMEMBERED: usize = 100_000;

/// The manifests this process recorded a pull of, and when.
#[derive(Debug)]
pub(crate) struct PullTimes {
    every: Duration,
    recorded: Mutex<HashMap<(RepositoryName, Digest), Instant>>,
}

impl PullTimes {
    pub(crate) fn new(every: Duration) -> PullTimes {
        PullTimes {
            every,
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a pull of `digest` from `repo` should be recorded now (and
    /// note that it is).
    fn due(&self, repo: &RepositoryName, digest: &Digest) -> bool {
        let now = Instant::now();
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        let key = (repo.clone(), digest.clone());
        if recorded
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < self.every)
        {
            return false;
        }
        if recorded.len() >= REMEMBERED {
            recorded.retain(|_, at| now.duration_since(*at) < self.every);
            if recorded.len() >= REMEMBERED {
                recorded.clear();
            }
        }
        recorded.insert(key, now);
        true
    }
}

impl OpendalStore {
    /// Record that `digest` was pulled from `repo`, if it is due, without
    /// waiting for the write.
    pub(crate) fn note_pull(&self, repo: &RepositoryName, digest: &Digest) {
        let Some(pulls) = self.pull_times() else {
            return;
        };
        if !pulls.due(repo, digest) {
            return;
        }
        let (store, path) = (self.clone(), Key::Pull(repo, digest).path());
        tokio::spawn(async move {
            if let Err(e) = store.write_object_atomic(&path, Bytes::new()).await {
                tracing::warn!(%path, error = %e, "recording a pull time");
            }
        });
    }

    /// When each manifest of `repo` was last pulled by digest, in the
    /// store's time.
    pub(crate) async fn pull_times_of(
        &self,
        repo: &RepositoryName,
    ) -> Result<HashMap<Digest, SystemTime>> {
        let dir = Key::PullsDir(repo).path();
        Ok(self
            .files_under(&dir)
            .await?
            .into_iter()
            .filter_map(|(path, at, _)| {
                let (alg, hex) = path.strip_prefix(&dir)?.split_once('/')?;
                Some((Digest::parse(&format!("{alg}:{hex}")).ok()?, at?))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_is_recorded_once_per_interval() {
        let pulls = PullTimes::new(Duration::from_secs(3600));
        let repo = RepositoryName::parse("a").unwrap();
        let d = Digest::sha256_of(b"m");
        assert!(pulls.due(&repo, &d));
        assert!(!pulls.due(&repo, &d));
        assert!(pulls.due(&repo, &Digest::sha256_of(b"n")));
        let now = PullTimes::new(Duration::ZERO);
        assert!(now.due(&repo, &d) && now.due(&repo, &d));
    }
}
