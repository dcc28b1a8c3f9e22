//! [`TracedStore`]: a store decorator that runs every operation the
//! request handlers ask of the store in a span of its own, a child of the
//! request's span: `storage.get_manifest`, `storage.put_blob`, ... with
//! the repository, the digest, reference or upload id, and the result
//! (the storage metrics' `result` label: `ok`, `not_found`, `conflict`,
//! `refused`, `error`). Only in the store stack when trace export is on.

use std::sync::Arc;

use bytes::Bytes;
use registry_core::store::Decorator;
use registry_core::{
    BlobInfo, BlobRead, BodyVerified, ByteRange, ByteStream, Digest, Listing, ManifestPut, Page,
    Reference, Referrers, RegistryStore, RepositoryName, Result, StoredManifest, Tag, UploadId,
    UploadStatus,
};
use tracing::Instrument;
use tracing::field::Empty;

use super::STORAGE_TARGET;
use crate::server::metrics::result_name;

/// A store whose operations each run in a span.
pub struct TracedStore {
    inner: Arc<dyn RegistryStore>,
}

impl TracedStore {
    /// Trace the operations asked of `inner`.
    pub fn new(inner: Arc<dyn RegistryStore>) -> TracedStore {
        TracedStore { inner }
    }
}

/// Run `$call` in a span named `$name` with `$fields`, and record its
/// result; a storage failure (`error`) makes the span's status an error.
macro_rules! traced {
    ($name:literal, { $($fields:tt)* }, $call:expr) => {{
        let span = tracing::info_span!(
            target: STORAGE_TARGET,
            $name,
            otel.status_code = Empty,
            result = Empty,
            error.kind = Empty,
            $($fields)*
        );
        let result = $call.instrument(span.clone()).await;
        record(&span, &result);
        result
    }};
}

fn record<T>(span: &tracing::Span, result: &Result<T>) {
    let name = result_name(result);
    span.record("result", name);
    if let Err(e) = result {
        span.record("error.kind", tracing::field::display(e.kind()));
        if name == "error" {
            span.record("otel.status_code", "error");
        }
    }
}

#[registry_http::async_trait]
impl Decorator for TracedStore {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.inner
    }

    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        traced!(
            "storage.stat_blob",
            { repository = %repo, digest = %digest },
            this.inner.stat_blob(repo, digest)
        )
    }

    /// Until the stream is open, not until it is read.
    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        traced!(
            "storage.read_blob",
            { repository = %repo, digest = %digest, ranged = range.is_some() },
            this.inner.read_blob(repo, digest, range)
        )
    }

    /// Until the body is stored: the span covers receiving it.
    async fn put_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        traced!(
            "storage.put_blob",
            { repository = %repo, digest = %digest },
            this.inner.put_blob(repo, digest, body, expected_len)
        )
    }

    async fn put_blob_with_notice(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        traced!(
            "storage.put_blob",
            { repository = %repo, digest = %digest },
            this.inner
                .put_blob_with_notice(repo, digest, body, expected_len, verified)
        )
    }

    async fn delete_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        traced!(
            "storage.delete_blob",
            { repository = %repo, digest = %digest },
            this.inner.delete_blob(repo, digest)
        )
    }

    async fn mount_blob(
        this: &Self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        traced!(
            "storage.mount_blob",
            { repository = %to, from = %from, digest = %digest },
            this.inner.mount_blob(from, to, digest)
        )
    }

    async fn put_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        traced!(
            "storage.put_manifest",
            { repository = %repo, reference = %reference, bytes = bytes.len() },
            this.inner.put_manifest(repo, reference, content_type, bytes)
        )
    }

    async fn get_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        traced!(
            "storage.get_manifest",
            { repository = %repo, reference = %reference },
            this.inner.get_manifest(repo, reference)
        )
    }

    async fn delete_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        traced!(
            "storage.delete_manifest",
            { repository = %repo, reference = %reference },
            this.inner.delete_manifest(repo, reference)
        )
    }

    async fn list_tags(this: &Self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        traced!(
            "storage.list_tags",
            { repository = %repo },
            this.inner.list_tags(repo, page)
        )
    }

    async fn list_referrers(
        this: &Self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        traced!(
            "storage.list_referrers",
            { repository = %repo, digest = %subject },
            this.inner.list_referrers(repo, subject, artifact_type, page)
        )
    }

    async fn list_repositories(this: &Self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        traced!(
            "storage.list_repositories",
            {},
            this.inner.list_repositories(page)
        )
    }

    async fn start_upload(this: &Self, repo: &RepositoryName) -> Result<UploadStatus> {
        traced!(
            "storage.start_upload",
            { repository = %repo },
            this.inner.start_upload(repo)
        )
    }

    async fn upload_status(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
    ) -> Result<UploadStatus> {
        traced!(
            "storage.upload_status",
            { repository = %repo, upload = %id },
            this.inner.upload_status(repo, id)
        )
    }

    async fn write_chunk(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        traced!(
            "storage.write_chunk",
            { repository = %repo, upload = %id },
            this.inner.write_chunk(repo, id, start, body, expected_len)
        )
    }

    async fn complete_upload(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        traced!(
            "storage.complete_upload",
            { repository = %repo, upload = %id, digest = %digest },
            this.inner.complete_upload(repo, id, digest, last_chunk)
        )
    }

    async fn cancel_upload(this: &Self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        traced!(
            "storage.cancel_upload",
            { repository = %repo, upload = %id },
            this.inner.cancel_upload(repo, id)
        )
    }
}
