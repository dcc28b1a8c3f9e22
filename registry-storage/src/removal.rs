//! Deletes that tolerate concurrent writers.
//!
//! Many processes share one store and no lock: a delete can run while
//! another process writes into the very folder it empties. Three
//! primitives make that safe (docs/CONSISTENCY.md, "Deletes", has the
//! argument per operation):
//!
//! - [`OpendalStore::delete_link_if`]: remove a link only while it holds a
//!   given digest (compare-and-delete). A tag moved to another manifest by
//!   a concurrent push is never removed by a delete of the old manifest.
//!   On S3 this is a `DELETE` with `If-Match` on the ETag read with the
//!   content; on the filesystem the link is renamed away (atomic), checked,
//!   and linked back if it turned out to be newer; elsewhere (memory, or a
//!   backend without conditional deletes) an in-process lock serialises it
//!   with tag writes, which is enough for a single process.
//! - [`OpendalStore::remove_tree`]: remove every object under a folder
//!   unless a named entry (a tag's `current/link`) is, or appears, in it:
//!   then the folder belongs to a newer write and is left alone.
//! - [`OpendalStore::remove_link`]: remove one link and the folders it
//!   leaves empty.
//!
//! On a directory, folders a writer is filling are never removed under it:
//! a folder is removed only when empty (`rmdir`), "not empty" means a
//! writer got there first, and writers re-create a folder pruned between
//! their `mkdir` and their `rename` (`localfs::with_dirs`).

use std::path::{Path, PathBuf};

use registry_core::{Digest, Result};

use crate::OpendalStore;
use crate::error::{is_condition_failed, is_not_found, storage};
use crate::layout::Key;
use crate::localfs::{LocalFs, blocking};

/// Serialises tag writes with compare-and-delete of tags on backends that
/// cannot delete conditionally. One for the process, not one per store:
/// several stores may share one operator (one memory backend, say).
static LINK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many times a conditional delete that lost to a concurrent write is
/// evaluated again.
const CAS_RETRIES: usize = 8;

/// What [`OpendalStore::remove_tree`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tree {
    /// Nothing is left under the folder.
    Gone,
    /// The entry to keep is there: the folder was left as it was found
    /// (objects listed before it appeared may be gone).
    Kept,
    /// Writers kept adding entries; what was listed is gone, newer entries
    /// remain (the purge sweep removes abandoned ones later).
    Busy,
}

impl OpendalStore {
    /// Remove the link at `key` if, and only while, it holds `expected`.
    /// `Ok(true)` if this call removed it; `Ok(false)` if it was absent or
    /// held another digest.
    pub(crate) async fn delete_link_if(&self, key: Key<'_>, expected: &Digest) -> Result<bool> {
        let path = key.path();
        if let Some(local) = &self.inner.local {
            return local.remove_if_content(&path, expected.to_string()).await;
        }
        if self.op().info().capability().delete_with_if_match {
            for _ in 0..CAS_RETRIES {
                let etag = match self.op().stat(&path).await {
                    Ok(meta) => meta.etag().map(str::to_owned),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) => return Err(storage("checking link")(e)),
                };
                let Some(etag) = etag else { break };
                let held = match self.op().read_with(&path).if_match(&etag).await {
                    Ok(buf) => buf.to_vec(),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) if is_condition_failed(&e) => continue,
                    Err(e) => return Err(storage("reading link")(e)),
                };
                if !holds(&held, expected) {
                    return Ok(false);
                }
                match self.op().delete_with(&path).if_match(&etag).await {
                    Ok(()) => return Ok(true),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) if is_condition_failed(&e) => continue,
                    Err(e) => return Err(storage("deleting link")(e)),
                }
            }
            // Still losing after several rounds, or no ETag: fall through
            // to the in-process lock rather than fail the delete.
        }
        let _serial = LINK_LOCK.lock().await;
        if self.read_link(key).await?.as_ref() != Some(expected) {
            return Ok(false);
        }
        self.delete_key(key).await?;
        Ok(true)
    }

    /// Write a tag's `current/link`: in-process serialised with
    /// [`OpendalStore::delete_link_if`] on backends where that needs it.
    pub(crate) async fn write_tag_link(&self, key: Key<'_>, digest: &Digest) -> Result<()> {
        let serial =
            self.inner.local.is_none() && !self.op().info().capability().delete_with_if_match;
        let _guard = if serial {
            Some(LINK_LOCK.lock().await)
        } else {
            None
        };
        self.write_link(key, digest).await
    }

    /// Remove every object under the folder `dir`, unless the entry `keep`
    /// (a path relative to `dir`) is in it or appears while this runs.
    pub(crate) async fn remove_tree(&self, dir: &str, keep: Option<&str>) -> Result<Tree> {
        if let Some(local) = &self.inner.local {
            return local.remove_tree(dir, keep).await;
        }
        let keep = keep.map(|k| format!("{dir}{k}"));
        for _ in 0..3 {
            let entries = match self.op().list_with(dir).recursive(true).await {
                Ok(entries) => entries,
                Err(e) if is_not_found(&e) => return Ok(Tree::Gone),
                Err(e) => return Err(storage("listing")(e)),
            };
            let mut paths: Vec<String> = entries
                .into_iter()
                .map(|e| e.path().to_owned())
                .filter(|p| p != dir)
                .collect();
            if paths.is_empty() {
                // A filesystem operator keeps the empty folder itself.
                let _ = self.op().delete(dir).await;
                return Ok(Tree::Gone);
            }
            if keep.as_ref().is_some_and(|k| paths.contains(k)) {
                return Ok(Tree::Kept);
            }
            // Objects first, then folders deepest first (only backends
            // with real folders list them).
            paths.sort_by_key(|p| (p.ends_with('/'), std::cmp::Reverse(p.len())));
            for p in &paths {
                match self.op().delete(p).await {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    // A folder a writer refilled: look again.
                    Err(_) if p.ends_with('/') => {}
                    Err(e) => return Err(storage("deleting")(e)),
                }
            }
        }
        Ok(Tree::Busy)
    }

    /// Remove the link at `key` and the folders it leaves empty, up to
    /// `levels` folders above it.
    pub(crate) async fn remove_link(&self, key: Key<'_>, levels: usize) -> Result<()> {
        let path = key.path();
        match &self.inner.local {
            Some(local) => local.remove_pruning(&path, levels).await,
            None => {
                self.delete_key(key).await?;
                if self.inner.can_rename {
                    // A filesystem operator: prune empty folders; one a
                    // writer refilled stays.
                    let mut dir = path.as_str();
                    for _ in 0..levels {
                        let Some(cut) = dir.trim_end_matches('/').rfind('/') else {
                            break;
                        };
                        dir = &dir[..=cut];
                        if self.op().delete(dir).await.is_err() {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Whether a link's content is `expected`.
fn holds(content: &[u8], expected: &Digest) -> bool {
    std::str::from_utf8(content).is_ok_and(|t| t.trim() == expected.to_string())
}

impl LocalFs {
    /// Remove the file `rel` if it holds `expected`: read it, rename it
    /// away (atomic, so exactly one remover gets it), and check what was
    /// taken. A newer link renamed over it between the read and the rename
    /// is linked back, unless a still newer one took its place.
    pub(crate) async fn remove_if_content(&self, rel: &str, expected: String) -> Result<bool> {
        let path = self.abs(rel);
        let taken = self.tmp_dir().join(format!("taken-{}", crate::nonce()?));
        blocking(move || {
            let holds = |p: &Path| match std::fs::read(p) {
                Ok(c) => Ok(Some(
                    std::str::from_utf8(&c).is_ok_and(|t| t.trim() == expected),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
            if holds(&path)? != Some(true) {
                return Ok(false);
            }
            std::fs::create_dir_all(taken.parent().unwrap_or(Path::new("/")))?;
            match std::fs::rename(&path, &taken) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
            if holds(&taken)? == Some(true) {
                std::fs::remove_file(&taken)?;
                return Ok(true);
            }
            // A newer link: put it back unless a newer one still is there.
            let restored = crate::localfs::with_dirs(&path, || std::fs::hard_link(&taken, &path));
            let _ = std::fs::remove_file(&taken);
            match restored {
                Ok(_) => Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// [`OpendalStore::remove_tree`] on a directory: unlink the files, then
    /// remove the folders deepest first with `rmdir`, which fails on a
    /// folder a writer put something in meanwhile.
    pub(crate) async fn remove_tree(&self, rel: &str, keep: Option<&str>) -> Result<Tree> {
        let dir = self.abs(rel);
        let keep = keep.map(|k| dir.join(k));
        blocking(move || {
            for _ in 0..8 {
                if keep.as_ref().is_some_and(|k| k.exists()) {
                    return Ok(Tree::Kept);
                }
                let (mut files, mut dirs) = (Vec::new(), Vec::new());
                if !walk(&dir, &mut files, &mut dirs)? {
                    return Ok(Tree::Gone);
                }
                if keep.as_ref().is_some_and(|k| files.contains(k)) {
                    return Ok(Tree::Kept);
                }
                for f in &files {
                    ignore_not_found(std::fs::remove_file(f))?;
                }
                let mut refilled = false;
                // `walk` lists a folder after everything in it.
                for d in &dirs {
                    match std::fs::remove_dir(d) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                            refilled = true;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if !refilled {
                    return Ok(Tree::Gone);
                }
            }
            Ok(Tree::Busy)
        })
        .await
    }

    /// Remove the file `rel`, then up to `levels` folders above it while
    /// they are empty.
    pub(crate) async fn remove_pruning(&self, rel: &str, levels: usize) -> Result<()> {
        let path = self.abs(rel);
        blocking(move || {
            ignore_not_found(std::fs::remove_file(&path))?;
            let mut dir = path.parent();
            for _ in 0..levels {
                let Some(d) = dir else { break };
                match std::fs::remove_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Someone else's entry is in it: it stays.
                    Err(_) => break,
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }
}

/// List `dir` depth first: files, and folders after their contents.
/// `Ok(false)` if `dir` does not exist.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                walk(&path, files, dirs)?;
            }
            Ok(_) => files.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    dirs.push(dir.to_path_buf());
    Ok(true)
}

fn ignore_not_found(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
