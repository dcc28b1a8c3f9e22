//! The storage metrics: [`MeteredStore`], a store decorator that times
//! every operation the server asks of the shared store
//! (`registry_storage_action_seconds{driver,action}`, distribution's
//! name), counts them by result, and counts the upload sessions and the
//! content bytes received. Atomics in tables, as for the request metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use registry_core::store::Decorator;
use registry_core::{
    BlobInfo, BlobRead, BodyVerified, ByteRange, ByteStream, Digest, ErrorKind, Listing,
    ManifestPut, Page, Reference, Referrers, RegistryStore, RepositoryName, Result, StoredManifest,
    Tag, UploadId, UploadStatus,
};

use super::histogram::Histogram;

/// The `action` label: the store operation.
const ACTIONS: [&str; 17] = [
    "stat_blob",
    "read_blob",
    "put_blob",
    "delete_blob",
    "mount_blob",
    "put_manifest",
    "get_manifest",
    "delete_manifest",
    "list_tags",
    "list_referrers",
    "list_repositories",
    "start_upload",
    "upload_status",
    "write_chunk",
    "complete_upload",
    "cancel_upload",
    "blob_location",
];

/// The `result` label of `registry_storage_operations_total`.
const RESULTS: [&str; 5] = ["ok", "not_found", "conflict", "refused", "error"];

/// The `result` label of `result` (storage spans carry it too).
pub fn result_name<T>(result: &Result<T>) -> &'static str {
    RESULTS[result_of(result)]
}

fn result_of<T>(result: &Result<T>) -> usize {
    let Err(e) = result else { return 0 };
    match e.kind() {
        ErrorKind::BlobUnknown
        | ErrorKind::BlobUploadUnknown
        | ErrorKind::ManifestUnknown
        | ErrorKind::NameUnknown => 1,
        ErrorKind::Conflict => 2,
        ErrorKind::Storage | ErrorKind::Internal | ErrorKind::Incomplete => 4,
        // The request was wrong (a bad digest, range, manifest...).
        _ => 3,
    }
}

/// The storage metrics' tables, shared by the decorator and the scrape.
#[derive(Debug)]
pub struct StoreMetrics {
    driver: &'static str,
    /// `[action]`.
    seconds: Box<[Histogram]>,
    /// `[action][result]`.
    results: Box<[AtomicU64]>,
    /// Sessions started here, less those completed, cancelled or purged here.
    uploads_open: AtomicI64,
    received: AtomicU64,
}

impl StoreMetrics {
    /// The tables, for a store whose `driver` label is given (distribution's
    /// names: `filesystem`, `s3aws`, `inmemory`).
    pub fn new(driver: &'static str) -> StoreMetrics {
        StoreMetrics {
            driver,
            seconds: ACTIONS.iter().map(|_| Histogram::seconds()).collect(),
            results: (0..ACTIONS.len() * RESULTS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            uploads_open: AtomicI64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// The purge task removed `n` abandoned sessions.
    pub fn uploads_purged(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.uploads_open.fetch_sub(n, Ordering::Relaxed);
    }

    fn record<T>(&self, action: usize, start: Instant, result: &Result<T>) {
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.seconds[action].observe(nanos);
        self.results[action * RESULTS.len() + result_of(result)].fetch_add(1, Ordering::Relaxed);
    }

    /// `body`, counting its bytes as received.
    fn counting(self: &Arc<Self>, body: ByteStream) -> ByteStream {
        let me = self.clone();
        body.inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                me.received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        })
        .boxed()
    }
}

/// A store in front of the shared store that measures what is asked of it.
pub struct MeteredStore {
    inner: Arc<dyn RegistryStore>,
    metrics: Arc<StoreMetrics>,
}

impl MeteredStore {
    /// Measure `inner` into `metrics`.
    pub fn new(inner: Arc<dyn RegistryStore>, metrics: Arc<StoreMetrics>) -> MeteredStore {
        MeteredStore { inner, metrics }
    }
}

/// Time `$call` as action `$action`.
macro_rules! timed {
    ($this:expr, $action:expr, $call:expr) => {{
        let start = Instant::now();
        let result = $call.await;
        $this.metrics.record($action, start, &result);
        result
    }};
}

#[registry_http::async_trait]
impl Decorator for MeteredStore {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.inner
    }

    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        timed!(this, 0, this.inner.stat_blob(repo, digest))
    }

    /// Timed until the stream is open, not until it is read.
    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        timed!(this, 1, this.inner.read_blob(repo, digest, range))
    }

    /// Presigning a blob's URL (redirects): the link check and the signing.
    /// Not recorded when the store had nothing to say (redirects off), so
    /// that a blob GET is not a storage action twice.
    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let start = Instant::now();
        let result = this.inner.blob_location(repo, digest).await;
        if !matches!(result, Ok(None)) {
            this.metrics.record(16, start, &result);
        }
        result
    }

    async fn put_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        let body = this.metrics.counting(body);
        timed!(
            this,
            2,
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
        let body = this.metrics.counting(body);
        timed!(
            this,
            2,
            this.inner
                .put_blob_with_notice(repo, digest, body, expected_len, verified)
        )
    }

    async fn delete_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        timed!(this, 3, this.inner.delete_blob(repo, digest))
    }

    async fn mount_blob(
        this: &Self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        timed!(this, 4, this.inner.mount_blob(from, to, digest))
    }

    async fn put_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        let len = bytes.len() as u64;
        this.metrics.received.fetch_add(len, Ordering::Relaxed);
        timed!(
            this,
            5,
            this.inner
                .put_manifest(repo, reference, content_type, bytes)
        )
    }

    async fn get_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        timed!(this, 6, this.inner.get_manifest(repo, reference))
    }

    async fn delete_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        timed!(this, 7, this.inner.delete_manifest(repo, reference))
    }

    async fn list_tags(this: &Self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        timed!(this, 8, this.inner.list_tags(repo, page))
    }

    async fn list_referrers(
        this: &Self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        timed!(
            this,
            9,
            this.inner
                .list_referrers(repo, subject, artifact_type, page)
        )
    }

    async fn list_repositories(this: &Self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        timed!(this, 10, this.inner.list_repositories(page))
    }

    async fn start_upload(this: &Self, repo: &RepositoryName) -> Result<UploadStatus> {
        let result = timed!(this, 11, this.inner.start_upload(repo));
        if result.is_ok() {
            this.metrics.uploads_open.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn upload_status(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
    ) -> Result<UploadStatus> {
        timed!(this, 12, this.inner.upload_status(repo, id))
    }

    async fn write_chunk(
        this: &Self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        let body = this.metrics.counting(body);
        timed!(
            this,
            13,
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
        let last_chunk = last_chunk.map(|(body, len)| (this.metrics.counting(body), len));
        let result = timed!(
            this,
            14,
            this.inner.complete_upload(repo, id, digest, last_chunk)
        );
        // A digest mismatch ends the session too.
        if result.is_ok()
            || result
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::DigestInvalid)
        {
            this.metrics.uploads_open.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    async fn cancel_upload(this: &Self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        let result = timed!(this, 15, this.inner.cancel_upload(repo, id));
        if result.is_ok() {
            this.metrics.uploads_open.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }
}

impl Collector for StoreMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "registry_storage_action_seconds",
                "Time of the operations asked of the shared store, by driver and action \
                 (a blob read until its stream is open).",
                None,
                MetricType::Histogram,
            )?;
            for (a, action) in ACTIONS.iter().enumerate() {
                if self.seconds[a].count() > 0 {
                    self.seconds[a]
                        .encode(&mut family, &[("driver", self.driver), ("action", action)])?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "registry_storage_operations",
                "Operations asked of the shared store, by driver, action and result \
                 (ok, not_found, conflict, refused: the request was invalid, error).",
                None,
                MetricType::Counter,
            )?;
            for (a, action) in ACTIONS.iter().enumerate() {
                for (r, result) in RESULTS.iter().enumerate() {
                    let n = self.results[a * RESULTS.len() + r].load(Ordering::Relaxed);
                    if n > 0 {
                        let labels = [
                            ("driver", self.driver),
                            ("action", action),
                            ("result", result),
                        ];
                        family
                            .encode_family(&labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                    }
                }
            }
        }
        let open = self.uploads_open.load(Ordering::Relaxed).max(0);
        encoder
            .encode_descriptor(
                "registry_upload_sessions_open",
                "Upload sessions started on this process and not yet completed, cancelled or \
                 purged here (a session finished on another host stays counted here).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&open)?;
        let received = self.received.load(Ordering::Relaxed);
        encoder
            .encode_descriptor(
                "registry_received_bytes",
                "Content bytes received: blob and chunk uploads and manifests.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&received, None)
    }
}
