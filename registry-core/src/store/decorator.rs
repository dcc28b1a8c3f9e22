//! [`Decorator`]: a store in front of another store that changes only some
//! of its operations.

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    BlobInfo, BlobRead, BlobStore, BodyVerified, ByteStream, Listing, ManifestPut, ManifestStore,
    Page, Referrers, RegistryStore, StoredManifest, UploadStatus, UploadStore,
};
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::ManifestLimits;
use crate::name::{Reference, RepositoryName, Tag};
use crate::range::ByteRange;
use crate::upload::UploadId;

/// A store in front of another store (a cache, a counter, a tracer) that
/// implements only the operations it changes.
///
/// Implement [`inner`](Decorator::inner) and the operations you change;
/// every other operation goes to the inner store as it is. Every decorator
/// is a [`BlobStore`], a [`ManifestStore`] and an [`UploadStore`], hence a
/// [`RegistryStore`].
///
/// The operations are associated functions (`fn read_blob(this: &Self, …)`),
/// not methods, for the reason `Arc::downgrade` is one: a method call on a
/// decorator (`store.read_blob(…)`) then always means the store trait's and
/// is never ambiguous, whatever traits are in scope.
///
/// Each operation left to its default asks [`inner`](Decorator::inner)
/// exactly once, so a decorator that counts or traces the calls reaching the
/// inner store can do it there.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use registry_core::store::Decorator;
/// use registry_core::{RegistryStore, RepositoryName, Result};
///
/// /// Counts the repositories opened for upload; changes nothing else.
/// struct CountUploads {
///     inner: Arc<dyn RegistryStore>,
///     started: AtomicU64,
/// }
///
/// #[async_trait::async_trait]
/// impl Decorator for CountUploads {
///     fn inner(&self) -> &dyn RegistryStore {
///         &*self.inner
///     }
///
///     async fn start_upload(
///         this: &Self,
///         repo: &RepositoryName,
///     ) -> Result<registry_core::UploadStatus> {
///         this.started.fetch_add(1, Ordering::Relaxed);
///         this.inner.start_upload(repo).await
///     }
/// }
///
/// fn serve(store: CountUploads) -> Arc<dyn RegistryStore> {
///     Arc::new(store)
/// }
/// ```
#[async_trait]
pub trait Decorator: Send + Sync {
    /// The store behind this one.
    fn inner(&self) -> &dyn RegistryStore;

    /// [`BlobStore::stat_blob`]; by default the inner store's.
    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        this.inner().stat_blob(repo, digest).await
    }

    /// [`BlobStore::read_blob`]; by default the inner store's.
    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        this.inner().read_blob(repo, digest, range).await
    }

    /// [`BlobStore::put_blob`]; by default the inner store's.
    async fn put_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        this.inner()
            .put_blob(repo, digest, body, expected_len)
            .await
    }

    /// [`BlobStore::put_blob_with_notice`]; by default the notice is
    /// dropped and this decorator's own [`put_blob`](Decorator::put_blob)
    /// runs, so a decorator that changes `put_blob` is never bypassed.
    /// Forward the notice to the inner store (with the same changes as in
    /// `put_blob`) to pass an early verdict through.
    async fn put_blob_with_notice(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        drop(verified);
        <Self as Decorator>::put_blob(this, repo, digest, body, expected_len).await
    }

    /// [`BlobStore::delete_blob`]; by default the inner store's.
    async fn delete_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        this.inner().delete_blob(repo, digest).await
    }

    /// [`BlobStore::blob_location`]; by default the inner store's.
    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        this.inner().blob_location(repo, digest).await
    }

    /// [`BlobStore::mount_blob`]; by default the inner store's.
    async fn mount_blob(
        this: &Self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        this.inner().mount_blob(from, to, digest).await
    }

    /// [`ManifestStore::put_manifest`]; by default the inner store's.
    async fn put_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        this.inner()
            .put_manifest(repo, reference, content_type, bytes)
            .await
    }

    /// [`ManifestStore::get_manifest`]; by default the inner store's.
    async fn get_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        this.inner().get_manifest(repo, reference).await
    }

    /// [`ManifestStore::delete_manifest`]; by default the inner store's.
    async fn delete_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        this.inner().delete_manifest(repo, reference).await
    }

    /// [`ManifestStore::manifest_limits`]; by default the inner store's.
    fn manifest_limits(this: &Self) -> ManifestLimits {
        this.inner().manifest_limits()
    }

    /// [`ManifestStore::list_tags`]; by default the inner store's.
    async fn list_tags(this: &Self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        this.inner().list_tags(repo, page).await
    }

    /// [`ManifestStore::list_referrers`]; by default the inner store's.
    async fn list_referrers(
        this: &Self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        this.inner()
            .list_referrers(repo, subject, artifact_type, page)
            .await
    }

    /// [`ManifestStore::list_repositories`]; by default the inner store's.
    async fn list_repositories(this: &Self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        this.inner().list_repositories(page).await
    }

    /// [`UploadStore::start_upload`]; by default the inner store's.
    async fn start_upload(this: &Self, repo: &RepositoryName) -> Result<UploadStatus> {
        this.inner().start_upload(repo).await
    }

    /// [`UploadStore::upload_status`]; by default the inner store's.
    async fn upload_status(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
    ) -> Result<UploadStatus> {
        this.inner().upload_status(repo, id).await
    }

    /// [`UploadStore::write_chunk`]; by default the inner store's.
    async fn write_chunk(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        this.inner()
            .write_chunk(repo, id, start, body, expected_len)
            .await
    }

    /// [`UploadStore::complete_upload`]; by default the inner store's.
    async fn complete_upload(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        this.inner()
            .complete_upload(repo, id, digest, last_chunk)
            .await
    }

    /// [`UploadStore::cancel_upload`]; by default the inner store's.
    async fn cancel_upload(this: &Self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        this.inner().cancel_upload(repo, id).await
    }
}

#[async_trait]
impl<T: Decorator> BlobStore for T {
    async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        <T as Decorator>::stat_blob(self, repo, digest).await
    }

    async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        <T as Decorator>::read_blob(self, repo, digest, range).await
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        <T as Decorator>::put_blob(self, repo, digest, body, expected_len).await
    }

    async fn put_blob_with_notice(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        <T as Decorator>::put_blob_with_notice(self, repo, digest, body, expected_len, verified)
            .await
    }

    async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        <T as Decorator>::delete_blob(self, repo, digest).await
    }

    async fn blob_location(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        <T as Decorator>::blob_location(self, repo, digest).await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        <T as Decorator>::mount_blob(self, from, to, digest).await
    }
}

#[async_trait]
impl<T: Decorator> ManifestStore for T {
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        <T as Decorator>::put_manifest(self, repo, reference, content_type, bytes).await
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        <T as Decorator>::get_manifest(self, repo, reference).await
    }

    async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> Result<()> {
        <T as Decorator>::delete_manifest(self, repo, reference).await
    }

    fn manifest_limits(&self) -> ManifestLimits {
        <T as Decorator>::manifest_limits(self)
    }

    async fn list_tags(&self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        <T as Decorator>::list_tags(self, repo, page).await
    }

    async fn list_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        <T as Decorator>::list_referrers(self, repo, subject, artifact_type, page).await
    }

    async fn list_repositories(&self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        <T as Decorator>::list_repositories(self, page).await
    }
}

#[async_trait]
impl<T: Decorator> UploadStore for T {
    async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus> {
        <T as Decorator>::start_upload(self, repo).await
    }

    async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus> {
        <T as Decorator>::upload_status(self, repo, id).await
    }

    async fn write_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        <T as Decorator>::write_chunk(self, repo, id, start, body, expected_len).await
    }

    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        <T as Decorator>::complete_upload(self, repo, id, digest, last_chunk).await
    }

    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        <T as Decorator>::cancel_upload(self, repo, id).await
    }
}
