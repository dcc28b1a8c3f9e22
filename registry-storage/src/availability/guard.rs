//! [`GuardedStore`]: the store's operations, refused at once while it is
//! failing, bounded in time, and counted in its health.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::manifest::ManifestLimits;
use registry_core::{
    BlobInfo, BlobRead, BlobStore, BodyVerified, ByteRange, ByteStream, Digest, Listing,
    ManifestPut, ManifestStore, Page, Reference, Referrers, RepositoryName, Result, StoredManifest,
    Tag, UploadId, UploadStatus, UploadStore,
};

use super::{StoreHealth, is_store_failure, unavailable};
use crate::OpendalStore;

/// An [`OpendalStore`] whose operations go through its [`StoreHealth`]:
/// refused with [`ErrorKind::Unavailable`](registry_core::ErrorKind) while
/// the store is failing, given up when it is found failing or after
/// [`HealthConfig::op_timeout`](super::HealthConfig::op_timeout), and each
/// outcome recorded. A manifest by digest that the in-process cache holds
/// for the repository is served from it while the store fails.
#[derive(Clone, Debug)]
pub struct GuardedStore {
    store: OpendalStore,
    health: Arc<StoreHealth>,
}

/// Whether an operation may be cut off by the operation timeout: not when
/// it streams a request body, whose pace is the client's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Timed,
    Streaming,
}

impl GuardedStore {
    /// `store`, guarded by `health`.
    pub fn new(store: OpendalStore, health: Arc<StoreHealth>) -> Self {
        GuardedStore { store, health }
    }

    /// The store's health.
    pub fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Run one operation of the store under the guard.
    async fn guard<T>(&self, bound: Bound, op: impl Future<Output = Result<T>>) -> Result<T> {
        if self.health.is_failing() {
            return Err(unavailable("the store is failing (see /readyz)"));
        }
        let timeout = self.health.config().op_timeout;
        let bounded = async {
            match bound {
                Bound::Streaming => op.await,
                Bound::Timed => match tokio::time::timeout(timeout, op).await {
                    Ok(result) => result,
                    Err(_) => Err(unavailable(&format!("no answer within {timeout:?}"))),
                },
            }
        };
        let outcome = tokio::select! {
            biased;
            result = bounded => result,
            () = self.health.found_failing() => {
                // Not counted: the store was already found failing.
                return Err(unavailable("the store was found failing meanwhile"));
            }
        };
        match &outcome {
            Err(e) if is_store_failure(e.kind()) => self.health.record_failure(e),
            _ => self.health.record_success(false),
        }
        outcome
    }

    /// The manifest `digest` from the in-process cache, if `repo` was seen
    /// to have it: what a manifest read by digest falls back to while the
    /// store fails.
    fn cached(&self, repo: &RepositoryName, reference: &Reference) -> Option<StoredManifest> {
        match reference {
            Reference::Digest(digest) => self.store.cached_manifest(repo, digest),
            Reference::Tag(_) => None,
        }
    }
}

#[async_trait]
impl BlobStore for GuardedStore {
    async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        self.guard(Bound::Timed, self.store.stat_blob(repo, digest))
            .await
    }

    async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        // Bounds the time to the first byte; the body streams on.
        self.guard(Bound::Timed, self.store.read_blob(repo, digest, range))
            .await
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        self.guard(
            Bound::Streaming,
            self.store.put_blob(repo, digest, body, expected_len),
        )
        .await
    }

    async fn put_blob_with_notice(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        self.guard(
            Bound::Streaming,
            self.store
                .put_blob_with_notice(repo, digest, body, expected_len, verified),
        )
        .await
    }

    async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        self.guard(Bound::Timed, self.store.delete_blob(repo, digest))
            .await
    }

    /// Without redirects nothing is asked of the store: answered at once,
    /// and neither a success nor a failure for its health.
    async fn blob_location(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        if self.store.redirects().is_none() {
            return Ok(None);
        }
        self.guard(Bound::Timed, self.store.blob_location(repo, digest))
            .await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        self.guard(Bound::Timed, self.store.mount_blob(from, to, digest))
            .await
    }
}

#[async_trait]
impl ManifestStore for GuardedStore {
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        self.guard(
            Bound::Timed,
            self.store
                .put_manifest(repo, reference, content_type, bytes),
        )
        .await
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        match self
            .guard(Bound::Timed, self.store.get_manifest(repo, reference))
            .await
        {
            Err(e) if is_store_failure(e.kind()) => self.cached(repo, reference).ok_or(e),
            other => other,
        }
    }

    async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> Result<()> {
        self.guard(Bound::Timed, self.store.delete_manifest(repo, reference))
            .await
    }

    fn manifest_limits(&self) -> ManifestLimits {
        self.store.manifest_limits()
    }

    async fn list_tags(&self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        self.guard(Bound::Timed, self.store.list_tags(repo, page))
            .await
    }

    async fn list_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        self.guard(
            Bound::Timed,
            self.store
                .list_referrers(repo, subject, artifact_type, page),
        )
        .await
    }

    async fn list_repositories(&self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        self.guard(Bound::Timed, self.store.list_repositories(page))
            .await
    }
}

#[async_trait]
impl UploadStore for GuardedStore {
    async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus> {
        self.guard(Bound::Timed, self.store.start_upload(repo))
            .await
    }

    async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus> {
        self.guard(Bound::Timed, self.store.upload_status(repo, id))
            .await
    }

    async fn write_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        self.guard(
            Bound::Streaming,
            self.store.write_chunk(repo, id, start, body, expected_len),
        )
        .await
    }

    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        // Without a body, the commit alone: a copy on S3, which may take a
        // while for a large blob, so not cut off either.
        self.guard(
            Bound::Streaming,
            self.store.complete_upload(repo, id, digest, last_chunk),
        )
        .await
    }

    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.guard(Bound::Timed, self.store.cancel_upload(repo, id))
            .await
    }
}
