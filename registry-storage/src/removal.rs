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
//!
//! Each backend implements them (`backend::objects_removal`,
//! `localfs::removal`); this module is the store's side.

use registry_core::{Digest, Result};

use crate::OpendalStore;
use crate::layout::Key;

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
        self.backend().delete_link_if(&key.path(), expected).await
    }

    /// Write a tag's `current/link`: in-process serialised with
    /// [`OpendalStore::delete_link_if`] on backends where that needs it.
    pub(crate) async fn write_tag_link(&self, key: Key<'_>, digest: &Digest) -> Result<()> {
        let _serial = self.backend().tag_lock().await;
        self.write_link(key, digest).await
    }

    /// Remove every object under the folder `dir`, unless the entry `keep`
    /// (a path relative to `dir`) is in it or appears while this runs.
    pub(crate) async fn remove_tree(&self, dir: &str, keep: Option<&str>) -> Result<Tree> {
        self.backend().remove_tree(dir, keep).await
    }

    /// Remove the link at `key` and the folders it leaves empty, up to
    /// `levels` folders above it.
    pub(crate) async fn remove_link(&self, key: Key<'_>, levels: usize) -> Result<()> {
        self.backend().remove_link(&key.path(), levels).await
    }
}
