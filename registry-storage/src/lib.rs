//! The `registry-core` store traits on [Apache OpenDAL](https://opendal.apache.org):
//! one implementation, [`OpendalStore`], over any `opendal::Operator`, so every
//! OpenDAL service can hold a registry.
//!
//! The on-store layout is CNCF distribution's (see [`layout`]): a directory
//! or bucket written by distribution is served as is, and both can run on
//! one store.
//!
//! # Features
//! - `fs` (default): local filesystem, [`OpendalStore::fs`].
//! - `memory`: process memory, [`OpendalStore::memory`].
//! - `s3`: S3 and S3-compatible servers, [`OpendalStore::s3`].
//!
//! Any other OpenDAL service works through [`OpendalStore::from_operator`].
//! Inside, the store's logic is written once against a private backend
//! seam: one implementation on any OpenDAL operator, one on a local
//! directory with direct file I/O (the filesystem store's hot paths).
//!
//! # Guarantees
//! - Blob bytes stream in and out; memory use does not grow with blob size
//!   (except on the memory backend, which holds everything by definition).
//! - A blob becomes visible under its digest only after its content was
//!   verified, and atomically (rename on the filesystem, a single completed
//!   object put on object stores).
//! - Upload state lives in the store, not in process memory: any process on
//!   the same store can continue any upload. Each accepted chunk is claimed
//!   with a create-if-absent write, so two writers racing for one offset
//!   cannot both win.
//!
//! This crate is not an HTTP server and knows nothing of HTTP.
#![deny(missing_docs)]
// One use, mapping committed blob files (`localfs::read::map_piece`).
#![deny(unsafe_code)]

pub mod availability;
mod backend;
mod blobs;
pub mod cache;
mod deletes;
mod error;
mod fetch_lease;
mod folders;
pub mod fsck;
pub mod gc;
pub mod layout;
mod links;
mod localfs;
mod maintenance;
mod manifest_cache;
mod manifests;
pub mod outbox;
mod pulls;
mod redirect;
mod referrers;
mod removal;
pub mod stats;
mod tags;
mod uploads;
mod url;
mod verify;

use std::sync::Arc;

use opendal::Operator;
use registry_core::manifest::ManifestLimits;
use registry_core::{Error, ErrorKind, Result};

pub use availability::{GuardedStore, HealthConfig, StoreHealth};
pub use cache::{BlobCacheConfig, CacheStats, CachedStore};
pub use fetch_lease::FetchLease;
pub use fsck::{Finding, FsckReport};
pub use gc::{GcOptions, GcReport};
pub use redirect::{MAX_REDIRECT_EXPIRY, RedirectOptions};
pub use stats::{StorageStats, storage_stats};
pub use url::{S3Options, StorageUrl};

/// A registry store on an OpenDAL operator. Cheap to clone.
#[derive(Clone)]
pub struct OpendalStore {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// The operator every backend reads, lists and deletes through. Its
    /// whole-object writes are atomic (on the filesystem it writes a
    /// temporary file and renames it).
    op: Operator,
    /// How blob and chunk bytes, claims, links and commits are written
    /// (see `backend`).
    backend: backend::Backend,
    limits: ManifestLimits,
    /// Manifest contents by digest (immutable, so always valid).
    manifests: Arc<manifest_cache::ManifestCache>,
    /// Pulls by digest are recorded (retention rules that keep what is in
    /// use need them).
    pulls: Option<Arc<pulls::PullTimes>>,
    /// Repositories whose manifests are stored before what they reference
    /// (a mirror's: it fetches blobs and child manifests when they are
    /// asked for).
    mirrored: Arc<[registry_core::RepositoryPattern]>,
    /// Where the store is, when it is on S3 (what redirects sign for).
    #[cfg(feature = "s3")]
    s3: Option<Arc<S3Options>>,
    /// Blob reads answered with presigned URLs (off by default).
    redirects: Option<Arc<redirect::Redirects>>,
}

/// Options of a store that only some backends use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Filesystem only: flush file data and directories before an upload,
    /// blob or manifest is acknowledged (default `true`). Turning it off
    /// trades durability across power loss for speed (benchmarks).
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { fsync: true }
    }
}

impl StoreOptions {
    /// Set [`StoreOptions::fsync`].
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }
}

impl std::fmt::Debug for OpendalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpendalStore")
            .field("backend", &self.inner.op.info().scheme())
            .field("root", &self.inner.op.info().root())
            .finish()
    }
}

impl OpendalStore {
    /// A store on any OpenDAL operator. The backend must support
    /// create-if-absent writes (`write_with_if_not_exists`) for uploads to be
    /// safe with several writers. A filesystem operator works, but some of
    /// its writes are serialised within this process (docs/CONSISTENCY.md):
    /// for several processes on one directory use [`OpendalStore::fs`].
    pub fn from_operator(op: Operator) -> Self {
        Self::build(op, None)
    }

    /// A store on `op` through the OpenDAL backend, streaming writes in
    /// parts of `write_chunk_size` where given.
    fn build(op: Operator, write_chunk_size: Option<usize>) -> Self {
        let objects = backend::Objects::new(op.clone(), write_chunk_size);
        Self::with_backend(op, backend::Backend::Objects(objects))
    }

    fn with_backend(op: Operator, backend: backend::Backend) -> Self {
        OpendalStore {
            inner: Arc::new(Inner {
                op,
                backend,
                limits: ManifestLimits::default(),
                manifests: Arc::new(manifest_cache::ManifestCache::new(
                    manifest_cache::DEFAULT_CAPACITY,
                )),
                pulls: None,
                mirrored: Arc::new([]),
                #[cfg(feature = "s3")]
                s3: None,
                redirects: None,
            }),
        }
    }

    /// Set the manifest limits (size) used when validating pushes.
    pub fn with_manifest_limits(self, limits: ManifestLimits) -> Self {
        self.edited(|inner| inner.limits = limits)
    }

    /// Record pulls by digest, at most once per `every` per manifest and
    /// process, for retention rules that keep what was pulled recently
    /// ([`gc::RetentionRule::keep_pulled_within`]). Off by default: pulls
    /// then write nothing.
    pub fn with_pull_times(self, every: std::time::Duration) -> Self {
        self.edited(|inner| inner.pulls = Some(Arc::new(pulls::PullTimes::new(every))))
    }

    /// Store manifests pushed to repositories matching `patterns` without
    /// checking that the blobs and manifests they reference are there: a
    /// pull-through mirror stores an upstream's manifest first and fetches
    /// what it references when a client asks for it. Everything else about
    /// the push (parsing, limits, digests, links) is unchanged.
    pub fn with_mirrored_repositories(
        self,
        patterns: impl IntoIterator<Item = registry_core::RepositoryPattern>,
    ) -> Self {
        let patterns: Arc<[_]> = patterns.into_iter().collect();
        self.edited(|inner| inner.mirrored = patterns)
    }

    /// Whether `repo`'s manifests are stored before what they reference.
    pub(crate) fn is_mirrored(&self, repo: &registry_core::RepositoryName) -> bool {
        self.inner.mirrored.iter().any(|p| p.matches(repo.as_str()))
    }

    pub(crate) fn pull_times(&self) -> Option<&pulls::PullTimes> {
        self.inner.pulls.as_deref()
    }

    /// `self` with its settings changed (copied first if shared).
    fn edited(mut self, edit: impl FnOnce(&mut Inner)) -> Self {
        if Arc::get_mut(&mut self.inner).is_none() {
            self.inner = Arc::new(Inner::clone(&self.inner));
        }
        edit(Arc::get_mut(&mut self.inner).expect("just made unique"));
        self
    }

    /// A store in a local directory, created if missing. Temporary files
    /// live in `<root>/_registry/tmp`, on the same filesystem, so that every
    /// write lands by rename.
    #[cfg(feature = "fs")]
    pub fn fs(root: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::fs_with(root, &StoreOptions::default())
    }

    /// [`OpendalStore::fs`] with options (e.g. fsync off for benchmarks).
    #[cfg(feature = "fs")]
    pub fn fs_with(root: impl AsRef<std::path::Path>, options: &StoreOptions) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!("cannot create {}", root.display()),
            )
            .with_source(e)
        })?;
        let root = std::fs::canonicalize(root).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!("cannot resolve {}", root.display()),
            )
            .with_source(e)
        })?;
        let root_str = root
            .to_str()
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "storage path is not UTF-8"))?;
        let tmp = root.join(backend::TMP_DIR.trim_end_matches('/'));
        let op = Operator::new(
            opendal::services::Fs::default()
                .root(root_str)
                .atomic_write_dir(tmp.to_str().unwrap_or(root_str)),
        )
        .map_err(error::storage("configuring filesystem"))?;
        let local = localfs::LocalFs::new(root.clone(), tmp, options.fsync);
        Ok(Self::with_backend(op, backend::Backend::Local(local)))
    }

    /// A store in process memory.
    #[cfg(feature = "memory")]
    pub fn memory() -> Self {
        // Building the memory service cannot fail.
        let op = Operator::new(opendal::services::Memory::default())
            .unwrap_or_else(|e| unreachable!("memory backend: {e}"));
        Self::from_operator(op)
    }

    /// A store in an S3 bucket (or an S3-compatible server). Credentials come
    /// from the environment.
    #[cfg(feature = "s3")]
    pub fn s3(opts: &S3Options) -> Result<Self> {
        // Installs the reqwest HTTP transport once per process.
        opendal::install_default();
        // Transient failures (throttling, 5xx) are retried with backoff.
        let op = Operator::new(s3_builder(opts, opts.endpoint.as_deref()))
            .map_err(error::storage("configuring S3"))?
            .layer(
                opendal::layers::RetryLayer::new()
                    .with_jitter()
                    .with_notify(|_: opendal::layers::RetryEvent<'_>| stats::retried()),
            );
        let s3 = Arc::new(opts.clone());
        Ok(Self::build(op, Some(16 * 1024 * 1024)).edited(|inner| inner.s3 = Some(s3)))
    }

    /// A store from a storage URL (see [`StorageUrl`]). A backend whose
    /// feature is not compiled in is refused with a clear error.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_with(url, &StoreOptions::default())
    }

    /// [`OpendalStore::from_url`] with options.
    pub fn from_url_with(url: &str, options: &StoreOptions) -> Result<Self> {
        let _ = options;
        let parsed = StorageUrl::parse(url)?;
        let disabled = |f: &str| {
            Error::new(
                ErrorKind::Unsupported,
                format!("storage {url:?} needs the `{f}` feature of registry-storage"),
            )
        };
        match parsed {
            #[cfg(feature = "fs")]
            StorageUrl::Fs { path } => Self::fs_with(path, options),
            #[cfg(feature = "memory")]
            StorageUrl::Memory => Ok(Self::memory()),
            #[cfg(feature = "s3")]
            StorageUrl::S3(opts) => Self::s3(&opts),
            #[allow(unreachable_patterns)]
            StorageUrl::Fs { .. } => Err(disabled("fs")),
            #[allow(unreachable_patterns)]
            StorageUrl::Memory => Err(disabled("memory")),
            #[allow(unreachable_patterns)]
            StorageUrl::S3(_) => Err(disabled("s3")),
        }
    }

    /// The operator the store reads, lists and deletes through, for
    /// callers that want to inspect the store directly (tests, tools).
    pub fn operator(&self) -> &Operator {
        &self.inner.op
    }

    pub(crate) fn manifest_cache(&self) -> &manifest_cache::ManifestCache {
        &self.inner.manifests
    }

    pub(crate) fn backend(&self) -> &backend::Backend {
        &self.inner.backend
    }

    /// Whether acknowledged writes are flushed to disk first (always true
    /// off the filesystem, where the backend decides).
    pub fn is_durable(&self) -> bool {
        self.inner.backend.is_durable()
    }

    /// Replace or create a small object atomically.
    pub(crate) async fn write_object_atomic(&self, path: &str, bytes: bytes::Bytes) -> Result<()> {
        self.inner.backend.write_atomic(path, bytes).await
    }

    /// Create a small object unless it exists; `Ok(false)` if it did.
    pub(crate) async fn create_object_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<bool> {
        self.inner.backend.create_exclusive(path, bytes).await
    }
}

/// The S3 service for `opts`, on `endpoint` (AWS's when `None`).
#[cfg(feature = "s3")]
fn s3_builder(opts: &S3Options, endpoint: Option<&str>) -> opendal::services::S3 {
    let b = opendal::services::S3::default()
        .bucket(&opts.bucket)
        .root(&format!("/{}", opts.prefix))
        .region(opts.region.as_deref().unwrap_or("us-east-1"));
    match endpoint {
        Some(ep) => b.endpoint(ep),
        None => b,
    }
}

/// 16 random bytes from the operating system.
pub(crate) fn random_bytes() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(b)
}

/// A short random nonce for unique object names.
pub(crate) fn nonce() -> Result<String> {
    Ok(hex::encode(&random_bytes()?[..8]))
}

#[cfg(test)]
mod tests {
    fn _assert_send_sync() {
        fn f<T: Send + Sync + Clone + 'static>() {}
        f::<super::OpendalStore>();
    }
}
