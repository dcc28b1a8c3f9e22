//! The backend on a local directory: the seam's upload-aware operations
//! (append leases, chunk files, the commit by rename) on [`LocalFs`]'s
//! direct file I/O.

use bytes::Bytes;
use futures::Stream;
use registry_core::{ByteStream, Result};

use super::{ChunkFile, Commit, Lease, TMP_DIR};
use crate::localfs::LocalFs;
use crate::uploads::{PartRecord, append_lease};

impl LocalFs {
    /// Take the lease to append a chunk starting at `start` to the file of
    /// `prev`, if the chunk continues it and no one else holds the lease.
    pub(super) async fn lease_append(
        &self,
        prev: Option<&PartRecord>,
        start: u64,
    ) -> Result<Option<ChunkFile>> {
        let Some(prev) = prev.filter(|p| p.end == start) else {
            return Ok(None);
        };
        let at = prev.file_range().end;
        let marker = append_lease(&prev.chunk, at);
        Ok(self.create_marker(&marker).await?.then(|| ChunkFile {
            path: prev.chunk.clone(),
            lease: Some(Lease { at, marker }),
        }))
    }

    pub(super) async fn write_chunk(
        &self,
        file: &ChunkFile,
        flush: bool,
        body: impl Stream<Item = Result<Bytes>> + Send + Unpin,
    ) -> Result<()> {
        let at = file.lease.as_ref().map(|l| l.at);
        let written = self.stream_to_file(&file.path, at, flush, body).await;
        if written.is_err()
            && let Some(lease) = &file.lease
        {
            // The file was already cut back.
            let _ = self.remove(&lease.marker).await;
        }
        written
    }

    pub(super) async fn discard_chunk(&self, file: &ChunkFile) {
        match &file.lease {
            // Cut the file back, then give the lease up (not before: the
            // next holder would append after our bytes).
            Some(lease) => {
                if self.discard(&file.path, Some(lease.at)).await.is_ok() {
                    let _ = self.remove(&lease.marker).await;
                }
            }
            None => {
                let _ = self.remove(&file.path).await;
            }
        }
    }

    pub(super) async fn commit(&self, c: Commit<'_>, all: ByteStream) -> Result<()> {
        let Commit { target, .. } = c;
        if let Some(file) = self.whole_file(c.parts, c.size, c.sealed).await? {
            return self.rename(file, target).await;
        }
        // Parts in several files: one pass into a temporary file, then a
        // rename.
        let tmp = format!("{TMP_DIR}assemble-{}", crate::nonce()?);
        self.stream_to_file(&tmp, None, true, all).await?;
        let renamed = self.rename(&tmp, target).await;
        if renamed.is_err() {
            let _ = self.remove(&tmp).await;
        }
        renamed
    }

    /// The one file that holds exactly the upload's bytes, if there is one
    /// and no other writer can still append to it, so that committing is
    /// a rename. It is flushed before it is returned (chunks may have been
    /// written without a flush).
    async fn whole_file<'p>(
        &self,
        parts: &'p [PartRecord],
        size: u64,
        sealed: bool,
    ) -> Result<Option<&'p str>> {
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        let file = first.chunk.as_str();
        let mut at = 0;
        for p in parts {
            if p.chunk != file || p.at != at {
                return Ok(None);
            }
            at = p.file_range().end;
        }
        // The file's end is the end of a recorded part, where anyone who
        // read that record may take the lease to append: take it first.
        if !sealed && !self.create_marker(&append_lease(file, at)).await? {
            return Ok(None);
        }
        // Longer only if a writer died mid-append, holding its lease.
        Ok(self.sync_if_len(file, size).await?.then_some(file))
    }
}
