//! Start-up checks and housekeeping: is the backend safe for several
//! writers, and purging abandoned uploads.

use std::time::{Duration, SystemTime};

use futures::future::join_all;
use registry_core::{Error, ErrorKind, RepositoryName, Result, UploadId};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::{Key, PREFIX};

/// How many writers race for one probe key in [`OpendalStore::check_conditional_writes`].
const RACERS: usize = 8;

impl OpendalStore {
    /// Check that the backend really refuses a create-if-absent write that
    /// must fail: a second create of one key, and a race of several creates
    /// of a fresh key, of which exactly one may win. Uploads rely on this to
    /// stay consistent when several processes share the store.
    ///
    /// Returns [`ErrorKind::Unsupported`] with an explanation when the
    /// backend accepts writes it should refuse.
    pub async fn check_conditional_writes(&self) -> Result<()> {
        let unsafe_backend = |what: &str| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the storage backend does not honour conditional writes ({what}); several registry processes cannot share it safely"
                ),
            )
        };
        let nonce = crate::nonce()?;
        let key = Key::Probe(&nonce).path();
        let first = self.create_object_exclusive(&key, b"probe".to_vec()).await;
        let second = self.create_object_exclusive(&key, b"probe".to_vec()).await;
        let _ = self.operator().delete(&key).await;
        if !first? {
            return Err(unsafe_backend("a create-if-absent of a fresh key failed"));
        }
        if second? {
            return Err(unsafe_backend(
                "a second create-if-absent of one key succeeded",
            ));
        }

        let nonce = crate::nonce()?;
        let race_key = Key::Probe(&nonce).path();
        let results = join_all(
            (0..RACERS).map(|_| self.create_object_exclusive(&race_key, b"probe".to_vec())),
        )
        .await;
        let _ = self.operator().delete(&race_key).await;
        let mut wins = 0;
        for r in results {
            if r? {
                wins += 1;
            }
        }
        if wins != 1 {
            return Err(unsafe_backend(&format!(
                "{wins} of {RACERS} racing create-if-absent writes succeeded"
            )));
        }
        Ok(())
    }

    /// Delete uploads started more than `max_age` ago. Returns how many were
    /// removed. An upload directory without a readable start time (what a
    /// chunk racing the upload's completion can leave behind) is deleted
    /// once nothing in it was written for `max_age`; if those times cannot
    /// be read either, it is left alone.
    pub async fn purge_uploads(&self, max_age: Duration) -> Result<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut purged = 0;
        for (dir, children) in self.walk_repositories().await? {
            if !children.iter().any(|c| c == "_uploads/") {
                continue;
            }
            let Some(repo) = repository_of_dir(&dir) else {
                continue;
            };
            for name in self.list_names_at(&format!("{dir}_uploads/")).await? {
                let Ok(id) = UploadId::parse(name.trim_end_matches('/')) else {
                    continue;
                };
                let started = match self
                    .operator()
                    .read(&Key::UploadStartedAt(&repo, &id).path())
                    .await
                {
                    Ok(buf) => String::from_utf8(buf.to_vec()).ok(),
                    Err(_) => None,
                };
                let started =
                    match started.and_then(|s| humantime::parse_rfc3339_weak(s.trim()).ok()) {
                        Some(t) => t,
                        None => match self
                            .last_write_under(&Key::UploadDir(&repo, &id).path())
                            .await?
                        {
                            Some(t) => t,
                            None => continue,
                        },
                    };
                if started < cutoff {
                    tracing::info!(repository = %repo, upload = %id, "purging abandoned upload");
                    self.delete_key(Key::UploadStartedAt(&repo, &id)).await?;
                    self.delete_dir(Key::UploadDir(&repo, &id)).await?;
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }

    /// When anything under `dir` was last written: the newest modification
    /// time of its files, or of `dir` itself if it holds none. `None` when
    /// a time is missing or `dir` is gone.
    async fn last_write_under(&self, dir: &str) -> Result<Option<SystemTime>> {
        let entries = match self.operator().list_with(dir).recursive(true).await {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(storage("listing")(e)),
        };
        let mut newest: Option<SystemTime> = None;
        for entry in entries.iter().filter(|e| !e.path().ends_with('/')) {
            let modified = match entry.metadata().last_modified() {
                Some(t) => Some(t),
                None => match self.operator().stat(entry.path()).await {
                    Ok(meta) => meta.last_modified(),
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(storage("reading modification time")(e)),
                },
            };
            let Some(modified) = modified else {
                return Ok(None);
            };
            newest = newest.max(Some(SystemTime::from(modified)));
        }
        if newest.is_none() {
            // No files (a filesystem directory tree left empty): its own time.
            newest = match self.operator().stat(dir).await {
                Ok(meta) => meta.last_modified().map(SystemTime::from),
                Err(_) => None,
            };
        }
        Ok(newest)
    }

    /// Every directory under `repositories/` that is not itself a `_`
    /// directory, with the names of its children (directories end in `/`).
    pub(crate) async fn walk_repositories(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut out = Vec::new();
        let mut pending = vec![format!("{PREFIX}repositories/")];
        while let Some(dir) = pending.pop() {
            let children = self.list_names_at(&dir).await?;
            for name in &children {
                if name.ends_with('/') && !name.starts_with('_') {
                    pending.push(format!("{dir}{name}"));
                }
            }
            out.push((dir, children));
        }
        Ok(out)
    }
}

/// The repository a directory under `repositories/` stands for.
pub(crate) fn repository_of_dir(dir: &str) -> Option<RepositoryName> {
    let name = dir
        .strip_prefix(PREFIX)?
        .strip_prefix("repositories/")?
        .strip_suffix('/')?;
    RepositoryName::parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_dirs_parse_back() {
        let n = RepositoryName::parse("a/b").unwrap();
        assert_eq!(repository_of_dir(&Key::RepositoryDir(&n).path()), Some(n));
        assert_eq!(
            repository_of_dir("docker/registry/v2/repositories/A/"),
            None
        );
        assert_eq!(repository_of_dir("docker/registry/v2/repositories/"), None);
        assert_eq!(repository_of_dir("elsewhere/a/"), None);
    }
}
