//! The seam between the store's logic and the two ways it reaches bytes.
//!
//! ```text
//!   OpendalStore: uploads, blobs, manifests, deletes (written once, against Backend)
//!        │  put a verified stream · append under a lease · create-if-absent
//!        │  atomic small write · commit · ranged read · resolve
//!        │  compare-and-delete · remove a tree · remove a link
//!        ▼
//!   Backend ─┬─ Objects (objects.rs, objects_removal.rs): any OpenDAL operator
//!            │    (memory, S3, a filesystem operator a caller built)
//!            └─ Local (local.rs over localfs/): a directory, with direct file
//!                 I/O: pipelined hash-and-write, appends under O_EXCL leases,
//!                 pread and mmap reads, flushes under our control
//! ```
//!
//! The backend is chosen at construction ([`crate::OpendalStore::fs`] is
//! `Local`, every other constructor `Objects`); nothing above this module
//! asks which one it has. What both share goes through the store's OpenDAL
//! operator and stays outside the seam: reads of small objects, stat,
//! listings, plain deletes. Chunk bytes reach either backend through one
//! adapter, [`crate::verify::Verified`], that hashes and counts them as the
//! backend pulls them, and ends the stream in an error on a wrong length.
//!
//! An enum with two arms rather than a trait object: the hot paths (chunk
//! writes, blob reads) dispatch with a `match`, not a boxed future.

mod local;
mod objects;
mod objects_removal;

use std::ops::Range;

use bytes::Bytes;
use futures::Stream;
use registry_core::{ByteStream, Digest, Reference, RepositoryName, Result};

use crate::layout::Key;
use crate::localfs::LocalFs;
use crate::removal::Tree;
use crate::uploads::PartRecord;

pub(crate) use objects::{Objects, read_stream};

/// Where temporary files live, relative to the store's root.
pub(crate) const TMP_DIR: &str = "_registry/tmp/";

/// How a store reaches its bytes (see the module documentation).
#[derive(Clone)]
pub(crate) enum Backend {
    /// Any OpenDAL operator.
    Objects(Objects),
    /// A local directory, written directly.
    Local(LocalFs),
}

/// Where a chunk's bytes go: a file of its own, or the end of the previous
/// chunk's file under an append lease.
pub(crate) struct ChunkFile {
    /// The file's path.
    pub path: String,
    lease: Option<Lease>,
}

/// The right to write a file past an offset: the empty file `marker`,
/// created with `O_EXCL` (see `uploads`).
struct Lease {
    at: u64,
    marker: String,
}

/// What a commit makes visible: `parts` (`size` bytes, verified) as the
/// object at `target`. `sealed` says no record names the last part's file,
/// so no one can append to it.
pub(crate) struct Commit<'a> {
    pub parts: &'a [PartRecord],
    pub size: u64,
    pub sealed: bool,
    pub target: &'a str,
}

impl ChunkFile {
    /// Offset of the chunk's first byte in its file.
    pub(crate) fn at(&self) -> u64 {
        self.lease.as_ref().map_or(0, |l| l.at)
    }
}

/// A guard of an in-process lock, for backends that need one (see
/// [`Backend::tag_lock`] and [`Backend::record_lock`]).
pub(crate) type Serial = Option<tokio::sync::MutexGuard<'static, ()>>;

impl Backend {
    /// Whether acknowledged writes are flushed first.
    pub(crate) fn is_durable(&self) -> bool {
        match self {
            Backend::Objects(_) => true,
            Backend::Local(fs) => fs.fsync(),
        }
    }

    /// This boot's id, when upload chunks are written without a flush and
    /// flushed by the commit (see `localfs`).
    pub(crate) fn deferred_flush(&self) -> Option<&str> {
        match self {
            Backend::Objects(_) => None,
            Backend::Local(fs) => fs.deferred_flush(),
        }
    }

    /// This boot's id, where unflushed chunks may exist.
    pub(crate) fn boot(&self) -> Option<&str> {
        match self {
            Backend::Objects(_) => None,
            Backend::Local(fs) => fs.boot(),
        }
    }

    /// Replace or create a small object atomically.
    pub(crate) async fn write_atomic(&self, path: &str, bytes: Bytes) -> Result<()> {
        match self {
            Backend::Objects(o) => o.write_atomic(path, bytes).await,
            Backend::Local(fs) => fs.write_atomic(path, bytes).await,
        }
    }

    /// Create a small object unless it exists: `Ok(true)` for exactly one
    /// of several racing creators, and no reader sees it partly written.
    pub(crate) async fn create_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<bool> {
        match self {
            Backend::Objects(o) => o.create_exclusive(path, bytes).await,
            Backend::Local(fs) => fs.create_exclusive(path, bytes).await,
        }
    }

    /// Held while reading an upload record, so that a record being created
    /// on a backend that writes files in place is never read half written.
    pub(crate) async fn record_lock(&self) -> Serial {
        match self {
            Backend::Objects(o) => o.record_lock().await,
            Backend::Local(_) => None,
        }
    }

    /// Where a chunk starting at `start` goes: appended to `prev`'s file if
    /// this writer wins the lease to do so (filesystem only), else a file of
    /// its own at `fresh()`.
    pub(crate) async fn place_chunk(
        &self,
        prev: Option<&PartRecord>,
        start: u64,
        fresh: impl FnOnce() -> Result<String>,
    ) -> Result<ChunkFile> {
        if let Backend::Local(fs) = self
            && let Some(file) = fs.lease_append(prev, start).await?
        {
            return Ok(file);
        }
        Ok(ChunkFile {
            path: fresh()?,
            lease: None,
        })
    }

    /// Write a chunk's (verified) bytes into `file`, flushed when `flush`
    /// (and the backend flushes at all). On failure nothing of it remains:
    /// a file of its own is removed, an appended one cut back and its
    /// lease given up.
    pub(crate) async fn write_chunk(
        &self,
        file: &ChunkFile,
        flush: bool,
        body: impl Stream<Item = Result<Bytes>> + Send + Unpin,
    ) -> Result<()> {
        match self {
            Backend::Objects(o) => o.put_new(&file.path, body).await,
            Backend::Local(fs) => fs.write_chunk(file, flush, body).await,
        }
    }

    /// Undo a chunk written by [`Backend::write_chunk`] (an empty one, or
    /// one whose claim lost): its bytes go, and the lease with them.
    pub(crate) async fn discard_chunk(&self, file: &ChunkFile) {
        match self {
            Backend::Objects(o) => o.discard(&file.path).await,
            Backend::Local(fs) => fs.discard_chunk(file).await,
        }
    }

    /// Make a verified upload the object at its target, atomically. `all`
    /// streams its bytes, for a backend that must copy them.
    pub(crate) async fn commit(&self, c: Commit<'_>, all: ByteStream) -> Result<()> {
        match self {
            Backend::Objects(o) => o.commit(c, all).await,
            Backend::Local(fs) => fs.commit(c, all).await,
        }
    }

    /// Stream `range` of the blob file at `path`.
    pub(crate) async fn read_range(&self, path: &str, range: Range<u64>) -> Result<ByteStream> {
        match self {
            Backend::Objects(o) => read_stream(o.operator(), path, Some(range)).await,
            Backend::Local(fs) => fs.read_blob(path, range).await,
        }
    }

    /// The size of the object at `data` if the link at `link` exists (a
    /// repository's link to a blob and the blob's data): `None` if either
    /// is missing, an error if the link does not hold a digest.
    pub(crate) async fn linked_size(&self, link: &str, data: &str) -> Result<Option<u64>> {
        match self {
            Backend::Objects(o) => o.linked_size(link, data).await,
            Backend::Local(fs) => fs.linked_size(link, data),
        }
    }

    /// Resolve a manifest reference in `repo`: the digest in the tag's link
    /// (or the digest named), if `repo` has that revision.
    pub(crate) async fn resolve(
        &self,
        repo: &RepositoryName,
        r: &Reference,
    ) -> Result<Option<Digest>> {
        let tag_link = r.as_tag().map(|t| Key::TagCurrentLink(repo, t).path());
        let fixed = r.as_digest().cloned();
        let revision = |d: &Digest| Key::RevisionLink(repo, d).path();
        match self {
            Backend::Objects(o) => o.resolve(tag_link, fixed, revision).await,
            Backend::Local(fs) => fs.read_link_and_check(tag_link, fixed, revision),
        }
    }

    /// Remove the link at `path` if, and only while, it holds `expected`.
    pub(crate) async fn delete_link_if(&self, path: &str, expected: &Digest) -> Result<bool> {
        match self {
            Backend::Objects(o) => o.delete_link_if(path, expected).await,
            Backend::Local(fs) => fs.remove_if_content(path, expected.clone()).await,
        }
    }

    /// Held while writing a tag's link on a backend whose
    /// [`Backend::delete_link_if`] is an in-process lock.
    pub(crate) async fn tag_lock(&self) -> Serial {
        match self {
            Backend::Objects(o) => o.tag_lock().await,
            Backend::Local(_) => None,
        }
    }

    /// Remove everything under the folder `dir` unless `keep` (relative to
    /// it) is, or appears, in it.
    pub(crate) async fn remove_tree(&self, dir: &str, keep: Option<&str>) -> Result<Tree> {
        match self {
            Backend::Objects(o) => o.remove_tree(dir, keep).await,
            Backend::Local(fs) => fs.remove_tree(dir, keep).await,
        }
    }

    /// Remove the link at `path` and up to `levels` folders above it that
    /// it leaves empty.
    pub(crate) async fn remove_link(&self, path: &str, levels: usize) -> Result<()> {
        match self {
            Backend::Objects(o) => o.remove_link(path, levels).await,
            Backend::Local(fs) => fs.remove_pruning(path, levels).await,
        }
    }
}
