//! The backend on any OpenDAL operator: memory, S3, or a filesystem
//! operator a caller built.
//!
//! Object stores write whole objects atomically (a PUT) and decide
//! create-if-absent (`If-None-Match: *`) themselves. A filesystem operator
//! (one that renames) writes files in place instead, so here its small
//! writes go to a temporary file renamed into place, its blob assemblies
//! likewise, and writes retry when a concurrent delete pruned the folder
//! they were going into; its create-if-absent (`O_EXCL`, then the content)
//! is serialised in process with the reading of upload records, so that no
//! record is read half written (docs/CONSISTENCY.md says what that leaves
//! to several processes).

use std::ops::Range;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use opendal::Operator;
use registry_core::{ByteStream, Digest, Error, ErrorKind, Result};

use super::{Commit, Serial, TMP_DIR};
use crate::error::{is_condition_failed, is_not_found, storage};
use crate::links::{exists_at, read_link_at, size_at};

/// Read buffer size for blob streams: large reads keep syscalls and
/// per-chunk overhead low on big layers.
const READ_CHUNK: usize = 4 * 1024 * 1024;

/// The largest object a backend copies in one request (S3's limit).
const MAX_SERVER_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// How often a write into a folder that a concurrent delete pruned is
/// tried again.
const PRUNED_RETRIES: usize = 8;

/// Serialises the creation of objects with the reading of upload records
/// on operators that write files in place. One for the process: several
/// stores may share one directory.
static RECORD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An OpenDAL operator as a backend.
#[derive(Clone)]
pub(crate) struct Objects {
    op: Operator,
    /// Whether the operator renames: a filesystem, writing in place; a
    /// single-chunk upload then becomes its blob with no copy.
    can_rename: bool,
    /// Whether it copies server-side (object stores).
    can_copy: bool,
    /// The part size of streamed writes, if the backend wants one.
    write_chunk_size: Option<usize>,
}

/// Stream an object, whole or a range of it.
pub(crate) async fn read_stream(
    op: &Operator,
    path: &str,
    range: Option<Range<u64>>,
) -> Result<ByteStream> {
    let reader = op
        .reader_with(path)
        .chunk(READ_CHUNK)
        .await
        .map_err(storage("opening blob"))?;
    let stream = match range {
        Some(r) => reader.into_bytes_stream(r).await,
        None => reader.into_bytes_stream(..).await,
    }
    .map_err(storage("reading blob"))?;
    Ok(stream
        .map_err(|e| Error::new(ErrorKind::Storage, "reading blob").with_source(e))
        .boxed())
}

impl Objects {
    /// A backend on `op`; streamed writes in parts of `write_chunk_size`.
    pub(crate) fn new(op: Operator, write_chunk_size: Option<usize>) -> Self {
        let cap = op.info().capability();
        Objects {
            can_rename: cap.rename,
            can_copy: cap.copy,
            op,
            write_chunk_size,
        }
    }

    pub(crate) fn operator(&self) -> &Operator {
        &self.op
    }

    /// Whether the operator renames (see [`Objects::can_rename`]).
    pub(super) fn in_place(&self) -> bool {
        self.can_rename
    }

    pub(super) async fn record_lock(&self) -> Serial {
        if self.in_place() {
            Some(RECORD_LOCK.lock().await)
        } else {
            None
        }
    }

    async fn writer(&self, path: &str) -> Result<opendal::Writer> {
        let mut fut = self.op.writer_with(path);
        if let Some(size) = self.write_chunk_size {
            fut = fut.chunk(size);
        }
        fut.await.map_err(storage("opening writer"))
    }

    /// Stream `body` into the object at `path`; on failure the writer is
    /// aborted (nothing becomes visible on an object store).
    async fn write_stream(
        &self,
        path: &str,
        mut body: impl Stream<Item = Result<Bytes>> + Send + Unpin,
    ) -> Result<()> {
        let mut w = self.writer(path).await?;
        let result: Result<()> = async {
            while let Some(bytes) = body.next().await {
                w.write(bytes?).await.map_err(storage("writing object"))?;
            }
            w.close().await.map_err(storage("closing object"))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = w.abort().await;
        }
        result
    }

    /// Stream `body` into a new object at `path` (a name only this writer
    /// uses); on failure whatever was written is removed.
    pub(super) async fn put_new(
        &self,
        path: &str,
        body: impl Stream<Item = Result<Bytes>> + Send + Unpin,
    ) -> Result<()> {
        let result = self.write_stream(path, body).await;
        if result.is_err() {
            self.discard(path).await;
        }
        result
    }

    /// Remove an object this writer made; failures are left to the purge.
    pub(super) async fn discard(&self, path: &str) {
        let _ = self.op.delete(path).await;
    }

    /// Run `op` again while it fails because a concurrent delete pruned
    /// the folder it writes into (only a filesystem operator has folders).
    async fn retry_pruned<T, F>(&self, mut op: impl FnMut() -> F) -> opendal::Result<T>
    where
        F: IntoFuture<Output = opendal::Result<T>>,
    {
        let mut tries = 0;
        loop {
            match op().await {
                Err(e) if is_not_found(&e) && self.in_place() && tries < PRUNED_RETRIES => {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Rename the temporary object `tmp` to `to`, removing `tmp` if that
    /// fails.
    async fn rename_into_place(&self, tmp: &str, to: &str) -> Result<()> {
        let renamed = self.retry_pruned(|| self.op.rename(tmp, to)).await;
        if renamed.is_err() {
            self.discard(tmp).await;
        }
        renamed.map_err(storage("renaming into place"))
    }

    pub(super) async fn write_atomic(&self, path: &str, bytes: Bytes) -> Result<()> {
        if !self.in_place() {
            self.op
                .write(path, bytes)
                .await
                .map_err(storage("writing object"))?;
            return Ok(());
        }
        let tmp = format!("{TMP_DIR}{}", crate::nonce()?);
        self.op
            .write(&tmp, bytes)
            .await
            .map_err(storage("writing object"))?;
        self.rename_into_place(&tmp, path).await
    }

    pub(super) async fn create_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<bool> {
        let _serial = self.record_lock().await;
        let created = self
            .retry_pruned(|| self.op.write_with(path, bytes.clone()).if_not_exists(true))
            .await;
        match created {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => {
                crate::stats::conditional_lost();
                Ok(false)
            }
            Err(e) => Err(storage("creating object")(e)),
        }
    }

    pub(super) async fn commit(&self, c: Commit<'_>, all: ByteStream) -> Result<()> {
        let Commit {
            parts,
            size,
            target,
            ..
        } = c;
        match parts {
            [one] if self.can_rename => self
                .op
                .rename(&one.chunk, target)
                .await
                .map_err(storage("committing blob")),
            // A server-side copy: no bytes through this process. S3's
            // single-request copy stops at 5 GiB.
            [one] if self.can_copy && size <= MAX_SERVER_COPY => self
                .op
                .copy(&one.chunk, target)
                .await
                .map(drop)
                .map_err(storage("committing blob")),
            // One object put that completes at close, or, where files are
            // written in place, a temporary file renamed into place.
            _ if self.in_place() => {
                let tmp = format!("{TMP_DIR}assemble-{}", crate::nonce()?);
                self.put_new(&tmp, all).await?;
                self.rename_into_place(&tmp, target).await
            }
            _ => self.write_stream(target, all).await,
        }
    }

    pub(super) async fn linked_size(&self, link: &str, data: &str) -> Result<Option<u64>> {
        if read_link_at(&self.op, link).await?.is_none() {
            return Ok(None);
        }
        size_at(&self.op, data).await
    }

    pub(super) async fn resolve(
        &self,
        tag_link: Option<String>,
        fixed: Option<Digest>,
        revision: impl FnOnce(&Digest) -> String,
    ) -> Result<Option<Digest>> {
        let digest = match (fixed, tag_link) {
            (Some(d), _) => d,
            (None, Some(link)) => match read_link_at(&self.op, &link).await? {
                Some(d) => d,
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        Ok(exists_at(&self.op, &revision(&digest))
            .await?
            .then_some(digest))
    }
}
