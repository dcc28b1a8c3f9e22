//! Content-addressed blobs: stat, ranged streaming reads, verified puts,
//! unlinking and cross-repository mounts.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use registry_core::{
    BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, Digest, Error, ErrorKind, RepositoryName,
    Result, UploadStore,
};

use crate::OpendalStore;
use crate::error::storage;
use crate::layout::Key;
use crate::uploads::{PartRecord, append_lease};

/// Read buffer size for blob streams: large reads keep syscalls and
/// per-chunk overhead low on big layers.
const READ_CHUNK: usize = 4 * 1024 * 1024;

/// The largest object a backend copies in one request (S3's limit).
const MAX_SERVER_COPY: u64 = 5 * 1024 * 1024 * 1024;

impl OpendalStore {
    /// Stream an object, whole or a range of it.
    pub(crate) async fn read_object_stream(
        &self,
        path: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream> {
        let reader = self
            .op()
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

    /// Make verified upload content visible under its digest, atomically.
    /// Idempotent: if the blob exists, the upload's bytes are simply dropped
    /// with the upload. `sealed` says the last part has no record, so no
    /// other writer can append to its file (see `uploads`).
    pub(crate) async fn commit_blob(
        &self,
        digest: &Digest,
        size: u64,
        parts: &[PartRecord],
        sealed: bool,
    ) -> Result<()> {
        let target = Key::BlobData(digest).path();
        if let Some(existing) = self.size_of(Key::BlobData(digest)).await? {
            if existing == size {
                return Ok(());
            }
            tracing::warn!(%digest, existing, size, "replacing blob of wrong size");
        }
        if parts.is_empty() {
            return self.write_object_atomic(&target, bytes::Bytes::new()).await;
        }
        if let Some(local) = &self.inner.local {
            if let Some(file) = self.whole_file(parts, size, sealed).await? {
                return local.rename(file, &target).await;
            }
            // Parts in several files: one pass into a temporary file, then
            // a rename.
            let tmp = format!("_registry/tmp/assemble-{}", crate::nonce()?);
            let all = self.parts_stream(parts);
            local
                .stream_to_file(&tmp, None, true, all, |_| Ok(()))
                .await?;
            let renamed = local.rename(&tmp, &target).await;
            if renamed.is_err() {
                let _ = local.remove(&tmp).await;
            }
            return renamed;
        }
        match parts {
            [one] if self.inner.can_rename => {
                self.op()
                    .rename(&one.chunk, &target)
                    .await
                    .map_err(storage("committing blob"))?;
            }
            // A server-side copy: no bytes through this process. S3's
            // single-request copy stops at 5 GiB.
            [one] if self.inner.can_copy && size <= MAX_SERVER_COPY => {
                self.op()
                    .copy(&one.chunk, &target)
                    .await
                    .map_err(storage("committing blob"))?;
            }
            _ => {
                // Through the atomic operator: a temporary file renamed into
                // place, or one object put that completes at close.
                let op = self.op().clone();
                let mut w = self.writer(&op, &target).await?;
                let result: Result<()> = async {
                    let mut all = self.parts_stream(parts);
                    while let Some(b) = all.next().await {
                        w.write(b?).await.map_err(storage("assembling blob"))?;
                    }
                    w.close().await.map_err(storage("assembling blob"))?;
                    Ok(())
                }
                .await;
                if result.is_err() {
                    let _ = w.abort().await;
                }
                result?;
            }
        }
        Ok(())
    }

    /// On the filesystem: the one file that holds exactly the upload's
    /// bytes, if there is one and no other writer can still append to it,
    /// so that committing is a rename. It is flushed before it is returned
    /// (chunks may have been written without a flush).
    async fn whole_file<'p>(
        &self,
        parts: &'p [PartRecord],
        size: u64,
        sealed: bool,
    ) -> Result<Option<&'p str>> {
        let Some(local) = &self.inner.local else {
            return Ok(None);
        };
        let file = parts[0].chunk.as_str();
        let mut at = 0;
        for p in parts {
            if p.chunk != file || p.at != at {
                return Ok(None);
            }
            at = p.file_range().end;
        }
        // The file's end is the end of a recorded part, where anyone who
        // read that record may take the lease to append: take it first.
        if !sealed && !local.create_marker(&append_lease(file, at)).await? {
            return Ok(None);
        }
        // Longer only if a writer died mid-append, holding its lease.
        Ok(local.sync_if_len(file, size).await?.then_some(file))
    }

    /// The bytes of `parts`, in order, as one stream; each part is opened
    /// only when the one before it is done.
    pub(crate) fn parts_stream(&self, parts: &[PartRecord]) -> ByteStream {
        let store = self.clone();
        let ranges: Vec<_> = parts
            .iter()
            .map(|p| (p.chunk.clone(), p.file_range()))
            .collect();
        futures::stream::iter(ranges)
            .then(move |(path, range)| {
                let store = store.clone();
                async move { store.read_object_stream(&path, Some(range)).await }
            })
            .try_flatten()
            .boxed()
    }
}

fn blob_unknown(digest: &Digest) -> Error {
    Error::new(
        ErrorKind::BlobUnknown,
        format!("blob {digest} unknown to repository"),
    )
}

#[async_trait]
impl BlobStore for OpendalStore {
    async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        if self
            .read_link(Key::LayerLink(repo, digest))
            .await?
            .is_none()
        {
            return Err(blob_unknown(digest));
        }
        let size = self
            .size_of(Key::BlobData(digest))
            .await?
            .ok_or_else(|| blob_unknown(digest))?;
        Ok(BlobInfo {
            digest: digest.clone(),
            size,
        })
    }

    async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        let info = self.stat_blob(repo, digest).await?;
        let (range, partial) = match range {
            Some(r) => (r.resolve(info.size)?, true),
            None => (0..info.size, false),
        };
        let body = if range.is_empty() {
            futures::stream::empty().boxed()
        } else if let Some(local) = &self.inner.local {
            local
                .read_blob(&Key::BlobData(digest).path(), range.clone())
                .await?
        } else {
            self.read_object_stream(&Key::BlobData(digest).path(), Some(range.clone()))
                .await?
        };
        Ok(BlobRead {
            info,
            range,
            partial,
            body,
        })
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        let status = self.start_upload(repo).await?;
        let result = self
            .complete_upload(repo, &status.id, digest, Some((body, expected_len)))
            .await;
        if result.is_err() {
            let _ = self.delete_dir(Key::UploadDir(repo, &status.id)).await;
        }
        result
    }

    async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        if self
            .read_link(Key::LayerLink(repo, digest))
            .await?
            .is_none()
        {
            return Err(blob_unknown(digest));
        }
        // Distribution removes the link's folder; so do we, unless a
        // concurrent mount or push put a new link in it.
        self.remove_link(Key::LayerLink(repo, digest), 1).await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        let info = self.stat_blob(from, digest).await?;
        self.write_link(Key::LayerLink(to, digest), digest).await?;
        Ok(info)
    }
}
