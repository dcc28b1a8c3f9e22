//! Direct local-file I/O for the filesystem backend's hot paths.
//!
//! OpenDAL serves every backend through one interface; on a local disk the
//! registry wants two things that interface does not give: control over
//! `fsync` (durable by default, off for benchmarks), and a write path that
//! hashes on one core while another writes. So on the filesystem, blob and
//! chunk bytes, claims (create-if-absent) and link files go through here;
//! everything else (reads, listings, deletes, renames) still goes through
//! OpenDAL. Paths come from [`crate::layout::Key`], so they never escape
//! the root.
//!
//! Durability, with `fsync` on:
//! - blob bytes are flushed before they are renamed under their digest;
//! - upload chunks (`PATCH`) are not flushed one by one where the boot of
//!   the machine is known (Linux): the commit flushes the upload's file
//!   once, before the rename. Each chunk's record names the boot it was
//!   written in, and a commit in a later boot (after a power loss, say)
//!   reads the bytes again and checks the digest, so a chunk lost with the
//!   page cache fails the upload instead of becoming a wrong blob. Where the
//!   boot is unknown, chunks are flushed before their records are made;
//! - a blob, link or manifest made visible by a rename is followed by a
//!   flush of the directory that gained the entry, and of the parent of each
//!   directory the write had to create, so that a 201 survives a crash;
//! - upload claims (`parts/`, `startedat`) are not flushed: losing one in a
//!   crash only sends the client back to an earlier offset (or makes it
//!   start the upload again); it can never expose wrong bytes (above).
//!
//! Each flush costs a disk round trip (milliseconds on most disks), so only
//! directories whose entries changed are flushed.
//!
//! `read.rs` holds the blob reads (`pread`, memory mappings) and the link
//! resolution, `dirs.rs` the creation and flushing of directories,
//! `removal.rs` the deletes that tolerate concurrent writers.

mod dirs;
mod listing;
mod read;
mod removal;
mod root;

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use registry_core::{Error, ErrorKind, Result};

pub(crate) use dirs::with_dirs;
use dirs::{open_new, sync_changed_dirs};
pub(crate) use listing::{each_child_folder, smallest_child_folders};

/// Pieces queued between the hashing task and the writing thread, and the
/// most bytes that queue may hold (whichever bound is reached first), so
/// memory stays bounded whatever the size of the pieces.
const QUEUE: usize = 32;
const QUEUE_BYTES: u32 = 8 * 1024 * 1024;

/// A filesystem root written directly.
#[derive(Debug, Clone)]
pub(crate) struct LocalFs {
    /// The root, held open for the lookups of the request path.
    root: std::sync::Arc<root::Root>,
    tmp: PathBuf,
    fsync: bool,
    /// This boot of the machine (Linux's `boot_id`), if known: upload
    /// chunks are then written without a flush and flushed at the commit
    /// (see [`LocalFs::deferred_flush`]).
    boot: Option<std::sync::Arc<str>>,
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::new(ErrorKind::Storage, what).with_source(e)
}

impl LocalFs {
    pub(crate) fn new(root: PathBuf, tmp: PathBuf, fsync: bool) -> Self {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .map(Into::into);
        LocalFs {
            root: std::sync::Arc::new(root::Root::open(root)),
            tmp,
            fsync,
            boot,
        }
    }

    pub(crate) fn fsync(&self) -> bool {
        self.fsync
    }

    /// The current boot's id, when upload chunks may be written without a
    /// flush: fsync is on and the boot is known. A chunk written so is
    /// flushed by the commit (one `fdatasync` of the upload's file instead
    /// of one per chunk); if the machine restarted in between, the commit
    /// cannot trust what the chunk's record says about its bytes and reads
    /// them again to check the digest.
    pub(crate) fn deferred_flush(&self) -> Option<&str> {
        self.boot.as_deref().filter(|_| self.fsync)
    }

    /// This boot's id, if known.
    pub(crate) fn boot(&self) -> Option<&str> {
        self.boot.as_deref()
    }

    pub(crate) fn abs(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// The directory for temporary files (on the same filesystem).
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// If the file `rel` is exactly `len` bytes long, flush its data to disk
    /// (whoever wrote it; if fsync is on) and say so: one blocking call for
    /// the check and the flush.
    pub(crate) async fn sync_if_len(&self, rel: &str, len: u64) -> Result<bool> {
        let (path, fsync) = (self.abs(rel), self.fsync);
        blocking(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            if f.metadata()?.len() != len {
                return Ok(false);
            }
            if fsync {
                f.sync_data()?;
            }
            Ok(true)
        })
        .await
    }

    /// Stream `body` into a file: a new one at `rel` (which must not exist)
    /// when `at` is `None`, else the existing file at `rel` from offset
    /// `at` on (an append, under a lease the caller holds). Pieces are
    /// pulled from `body` (hashed and counted there, see `verify`) on this
    /// task while a blocking thread writes the previous ones. On any
    /// failure a new file is removed and an existing one is cut back to
    /// `at`, so a failed write leaves nothing behind. With `flush` (and
    /// fsync on), the data is on disk when this returns.
    pub(crate) async fn stream_to_file(
        &self,
        rel: &str,
        at: Option<u64>,
        flush: bool,
        mut body: impl Stream<Item = Result<Bytes>> + Send + Unpin,
    ) -> Result<()> {
        let path = self.abs(rel);
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<(Bytes, tokio::sync::OwnedSemaphorePermit)>(QUEUE);
        let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(QUEUE_BYTES as usize));
        let fsync = self.fsync && flush;
        let target = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = match at {
                None => {
                    if let Some(dir) = target.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&target)?
                }
                Some(pos) => {
                    let mut f = std::fs::OpenOptions::new().write(true).open(&target)?;
                    f.seek(std::io::SeekFrom::Start(pos))?;
                    f
                }
            };
            while let Some((b, permit)) = rx.blocking_recv() {
                f.write_all(&b)?;
                drop(permit);
            }
            if fsync {
                f.sync_data()?;
            }
            Ok(())
        });
        let fed: Result<()> = async {
            while let Some(item) = body.next().await {
                let bytes = item?;
                let weight = u32::try_from(bytes.len())
                    .unwrap_or(u32::MAX)
                    .clamp(1, QUEUE_BYTES);
                let Ok(permit) = budget.clone().acquire_many_owned(weight).await else {
                    break;
                };
                if tx.send((bytes, permit)).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(())
        }
        .await;
        drop(tx);
        let written = writer
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, "writer thread failed").with_source(e))?
            .map_err(io_error("writing blob data"));
        let result = fed.and(written);
        if result.is_err() {
            let _ = blocking(move || discard_write(&path, at)).await;
        }
        result
    }

    /// Create the empty file `rel` unless it exists: `Ok(true)` for exactly
    /// one of several racing creators (`O_EXCL`). Used for append leases,
    /// which hold no data and need no flush. Its directory is never
    /// created: if it is gone (the upload completed meanwhile), so is the
    /// lease: [`ErrorKind::BlobUploadUnknown`].
    pub(crate) async fn create_marker(&self, rel: &str) -> Result<bool> {
        let path = self.abs(rel);
        let created = blocking(move || {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => Ok(Some(true)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Some(false)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        created.ok_or_else(|| {
            Error::new(
                ErrorKind::BlobUploadUnknown,
                "upload unknown: completed or cancelled meanwhile",
            )
        })
    }

    /// Remove the file `rel`; absent is fine.
    pub(crate) async fn remove(&self, rel: &str) -> Result<()> {
        let path = self.abs(rel);
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }

    /// Undo a write into `rel`: cut the file back to `at` if it was an
    /// append, else remove it.
    pub(crate) async fn discard(&self, rel: &str, at: Option<u64>) -> Result<()> {
        let path = self.abs(rel);
        blocking(move || discard_write(&path, at)).await
    }

    /// Create `rel` with `bytes` if it does not exist. `Ok(false)` if it did:
    /// exactly one of several racing creators gets `Ok(true)`, and no reader
    /// ever sees the file partly written (the content is written to a
    /// temporary file first, then hard-linked into place, which fails if
    /// the name exists). Not flushed: see the module documentation.
    pub(crate) async fn create_exclusive(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let path = self.abs(rel);
        let tmp = self.tmp.join(crate::nonce()?);
        blocking(move || {
            let created = (|| {
                let mut f = open_new(&tmp)?;
                f.write_all(&bytes)?;
                match with_dirs(&path, || std::fs::hard_link(&tmp, &path)) {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        crate::stats::conditional_lost();
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })();
            let _ = std::fs::remove_file(&tmp);
            created
        })
        .await
    }

    /// Replace (or create) `rel` with `bytes` atomically: a temporary file,
    /// flushed, renamed into place, and the directories flushed.
    pub(crate) async fn write_atomic(&self, rel: &str, bytes: Bytes) -> Result<()> {
        let (path, fsync) = (self.abs(rel), self.fsync);
        let tmp = self.tmp.join(crate::nonce()?);
        blocking(move || {
            let written = (|| -> std::io::Result<Vec<PathBuf>> {
                let mut f = open_new(&tmp)?;
                f.write_all(&bytes)?;
                if fsync {
                    f.sync_data()?;
                }
                with_dirs(&path, || std::fs::rename(&tmp, &path))
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            let created = written?;
            if fsync {
                sync_changed_dirs(&path, &created)?;
            }
            Ok(())
        })
        .await
    }

    /// Rename `from` to `to` (replacing it), creating `to`'s directories,
    /// then flush the directories that changed.
    pub(crate) async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from, to, fsync) = (self.abs(from), self.abs(to), self.fsync);
        blocking(move || {
            let created = with_dirs(&to, || std::fs::rename(&from, &to))?;
            if fsync {
                sync_changed_dirs(&to, &created)?;
            }
            Ok(())
        })
        .await
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "blocking task failed").with_source(e))?
        .map_err(io_error("filesystem"))
}

/// Remove a written file (`at` is `None`), or cut an appended one back to
/// `at`.
fn discard_write(path: &Path, at: Option<u64>) -> std::io::Result<()> {
    match at {
        None => std::fs::remove_file(path),
        Some(at) => std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(at),
    }
}
