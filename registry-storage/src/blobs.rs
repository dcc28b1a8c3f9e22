//! Content-addressed blobs: stat, ranged streaming reads, verified puts,
//! unlinking and cross-repository mounts.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use registry_core::{
    BlobInfo, BlobRead, BlobStore, BodyVerified, ByteRange, ByteStream, Digest, Error, ErrorKind,
    RepositoryName, Result, UploadStore,
};

use crate::OpendalStore;
use crate::backend::{Commit, read_stream};
use crate::layout::Key;
use crate::uploads::PartRecord;

impl OpendalStore {
    /// A whole blob in one request (an upload started and completed with
    /// `body`), `notice` told as soon as the body hashes to `digest`.
    async fn put(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        notice: Option<BodyVerified>,
    ) -> Result<BlobInfo> {
        let status = self.start_upload(repo).await?;
        let result = self
            .complete(repo, &status.id, digest, Some((body, expected_len)), notice)
            .await;
        if result.is_err() {
            let _ = self.delete_dir(Key::UploadDir(repo, &status.id)).await;
        }
        result
    }

    /// Stream an object, whole or a range of it.
    pub(crate) async fn read_object_stream(
        &self,
        path: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream> {
        read_stream(self.operator(), path, range).await
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
        let mut existing = self.size_of(Key::BlobData(digest)).await?;
        // Bytes a collection is deleting (docs/GC.md): wait until it is
        // done, then store them again if they went.
        if existing.is_some() && self.doomed_now(digest).await? {
            self.await_collection(digest).await?;
            existing = self.size_of(Key::BlobData(digest)).await?;
        }
        if let Some(existing) = existing {
            if existing == size {
                return Ok(());
            }
            tracing::warn!(%digest, existing, size, "replacing blob of wrong size");
        }
        if parts.is_empty() {
            return self.write_object_atomic(&target, bytes::Bytes::new()).await;
        }
        let commit = Commit {
            parts,
            size,
            sealed,
            target: &target,
        };
        self.backend()
            .commit(commit, self.parts_stream(parts))
            .await
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
        let size = self
            .backend()
            .linked_size(
                &Key::LayerLink(repo, digest).path(),
                &Key::BlobData(digest).path(),
            )
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
        } else {
            self.backend()
                .read_range(&Key::BlobData(digest).path(), range.clone())
                .await?
        };
        Ok(BlobRead {
            info,
            range,
            partial,
            body,
        })
    }

    /// With redirects on: the link and the bytes checked as for
    /// [`read_blob`](BlobStore::read_blob), then a presigned URL.
    async fn blob_location(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let Some(redirects) = self.redirects() else {
            return Ok(None);
        };
        self.stat_blob(repo, digest).await?;
        redirects.presign(digest).await.map(Some)
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        self.put(repo, digest, body, expected_len, None).await
    }

    /// Told when the body's last byte is hashed, before the data is flushed
    /// and committed.
    async fn put_blob_with_notice(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        self.put(repo, digest, body, expected_len, Some(verified))
            .await
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
        // A collection is deleting it: as if absent, so the client uploads
        // it (docs/GC.md).
        if self.doomed_now(digest).await? {
            return Err(blob_unknown(digest));
        }
        self.write_link(Key::LayerLink(to, digest), digest).await?;
        Ok(info)
    }
}
