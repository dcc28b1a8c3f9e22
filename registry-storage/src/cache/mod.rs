//! An optional per-host blob cache on local disk, in front of a shared
//! store.
//!
//! Blob bytes are immutable under their digest, so a local copy never goes
//! stale. The cache is read-through: a full read that misses streams from
//! the shared store to the client and, at the same time, into a temporary
//! file that is hashed as it fills and renamed into the cache only if it
//! hashes to the digest. A request missing a blob that another request is
//! filling follows that fill (streams the growing file, its last chunk held
//! until the fill verified) instead of reading the shared store again. The cache is
//! bounded in bytes and evicts the least recently used blobs.
//!
//! A cache hit does not touch the shared store. For that, the fact that a
//! repository links a blob is remembered for [`BlobCacheConfig::link_ttl`]
//! after the shared store confirmed it: a blob unlinked by another process
//! may still be served from this host's cache for at most that long. At
//! most [`BlobCacheConfig::max_links`] such links are remembered.
//! Existence checks (`stat_blob`, a `HEAD`) always ask the shared store.
//! While the shared store is unavailable (its answer is
//! [`ErrorKind::Unavailable`](registry_core::ErrorKind::Unavailable) or a
//! storage failure), a hit is still served if the link was confirmed within
//! [`BlobCacheConfig::outage_link_ttl`], so pulls of what this host holds
//! survive an outage of the shared store.
//! Manifests, tags and uploads are never cached (see `docs/CONSISTENCY.md`).

mod files;
mod fill;
mod follow;
mod memo;
mod recency;
mod stats;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use registry_core::store::Decorator;
use registry_core::{
    BlobInfo, BlobRead, BodyVerified, ByteRange, ByteStream, Digest, RegistryStore, RepositoryName,
    Result,
};

use files::Files;
use memo::LinkMemo;
pub use stats::CacheStats;

/// Settings of a [`CachedStore`].
#[derive(Debug, Clone)]
pub struct BlobCacheConfig {
    /// Directory of the cache (created if missing).
    pub dir: PathBuf,
    /// Upper bound of the cached bytes.
    pub max_bytes: u64,
    /// How long a confirmed repository link is trusted without asking the
    /// shared store again.
    pub link_ttl: Duration,
    /// How long a confirmed link is remembered for hits while the shared
    /// store is unavailable (at least `link_ttl`).
    pub outage_link_ttl: Duration,
    /// Upper bound of the confirmed repository links remembered; past it the
    /// longest confirmed is forgotten (and asked about again on its next
    /// hit).
    pub max_links: usize,
}

impl BlobCacheConfig {
    /// A cache in `dir` of at most `max_bytes`, trusting links for 30 s (1 h
    /// while the shared store is unavailable) and remembering at most
    /// 100,000 of them.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        BlobCacheConfig {
            dir: dir.into(),
            max_bytes,
            link_ttl: Duration::from_secs(30),
            outage_link_ttl: Duration::from_secs(3600),
            max_links: 100_000,
        }
    }
}

/// A store with a local blob cache in front of another store. Everything
/// but blob reads goes straight to the inner store.
#[derive(Clone)]
pub struct CachedStore {
    inner: Arc<dyn RegistryStore>,
    files: Arc<Files>,
    memo: Arc<Mutex<LinkMemo>>,
}

impl CachedStore {
    /// Put a cache in front of `inner`. Blobs already in the directory are
    /// indexed (and trimmed to the size bound); leftovers of interrupted
    /// fills are removed.
    pub fn new(inner: Arc<dyn RegistryStore>, cfg: BlobCacheConfig) -> Result<Self> {
        Ok(CachedStore {
            inner,
            files: Arc::new(Files::open(cfg.dir, cfg.max_bytes)?),
            memo: Arc::new(Mutex::new(LinkMemo::new(
                cfg.link_ttl,
                cfg.outage_link_ttl,
                cfg.max_links,
            ))),
        })
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> u64 {
        self.files.total()
    }

    /// The cache's counters and its size now, for metrics.
    pub fn stats(&self) -> CacheStats {
        self.files
            .counters
            .snapshot(self.files.total(), self.files.max_bytes())
    }

    /// Whether a blob is in the cache.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.files.size(digest).is_some()
    }

    /// How many confirmed repository links are remembered right now: at
    /// most [`BlobCacheConfig::max_links`]. For tests and metrics.
    pub fn memo_len(&self) -> usize {
        self.memo().len()
    }

    /// Fill `digest` from the shared store in a task of its own (a client
    /// was sent elsewhere for it), unless another fill has it or it does not
    /// fit. Failures leave nothing behind, as any fill's.
    fn fill_behind(&self, repo: &RepositoryName, digest: &Digest) {
        if !self.files.start_fill(digest) {
            return;
        }
        let (this, repo, digest) = (self.clone(), repo.clone(), digest.clone());
        tokio::spawn(async move {
            let read = match this.inner.read_blob(&repo, &digest, None).await {
                Ok(read) if read.info.size > 0 && read.info.size <= this.files.max_bytes() => read,
                Ok(_) | Err(_) => return this.files.end_fill(&digest),
            };
            this.memo().confirm(&repo, &digest);
            let size = read.info.size;
            let mut body = fill::tee_into_cache(this.files.clone(), digest, size, read.body);
            while let Some(chunk) = futures::StreamExt::next(&mut body).await {
                if chunk.is_err() {
                    break;
                }
            }
        });
    }

    fn memo(&self) -> MutexGuard<'_, LinkMemo> {
        self.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached blob's info if this host holds `digest` and `repo` links
    /// it: the link from the memo when fresh, else from the shared store
    /// (which then refreshes the memo). `None` without asking the store when
    /// the blob is not cached: the read that follows a miss checks the link
    /// itself.
    async fn linked(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<BlobInfo>> {
        let Some(size) = self.files.size(digest) else {
            return Ok(None);
        };
        if self.memo().trusted(repo, digest) {
            return Ok(Some(BlobInfo {
                digest: digest.clone(),
                size,
            }));
        }
        let info = match self.inner.stat_blob(repo, digest).await {
            Ok(info) => info,
            Err(e) if unavailable(&e) && self.memo().known(repo, digest) => {
                tracing::debug!(%repo, %digest, "shared store unavailable: served from the cache");
                return Ok(Some(BlobInfo {
                    digest: digest.clone(),
                    size,
                }));
            }
            Err(e) => return Err(e),
        };
        self.memo().confirm(repo, digest);
        Ok(self.contains(digest).then_some(info))
    }

    /// Serve a read from the cache if this host holds the blob and `repo`
    /// links it.
    async fn hit(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobRead>> {
        let Some(info) = self.linked(repo, digest).await? else {
            return Ok(None);
        };
        let (r, partial) = match range {
            Some(r) => (r.resolve(info.size)?, true),
            None => (0..info.size, false),
        };
        // `None` if evicted since: read through instead.
        Ok(self
            .files
            .read(digest, r.clone())
            .await
            .map(|body| BlobRead {
                info,
                range: r,
                partial,
                body,
            }))
    }
}

/// Whether the shared store failed to answer (rather than answered no).
fn unavailable(e: &registry_core::Error) -> bool {
    crate::availability::is_store_failure(e.kind())
}

#[async_trait]
impl Decorator for CachedStore {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.inner
    }

    /// Forwarded with its notice (this store does not change puts).
    async fn put_blob_with_notice(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        this.inner
            .put_blob_with_notice(repo, digest, body, expected_len, verified)
            .await
    }

    /// Always asked of the shared store: a `HEAD` is a push's existence
    /// check, and a blob that a collection swept (or another host
    /// unlinked) must never be reported present from this cache, or the
    /// client would skip an upload the registry needs (docs/GC.md).
    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        let info = this.inner.stat_blob(repo, digest).await?;
        this.memo().confirm(repo, digest);
        Ok(info)
    }

    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        let counters = &this.files.counters;
        stats::add(&counters.requests, 1);
        if let Some(read) = this.hit(repo, digest, range).await? {
            stats::add(&counters.hits, 1);
            stats::add(&counters.hit_bytes, read.range.end - read.range.start);
            return Ok(read);
        }
        stats::add(&counters.misses, 1);
        // Only one request fills a given blob at a time, claimed before the
        // store is read so that requests arriving meanwhile follow it.
        let claimed = range.is_none() && this.files.start_fill(digest);
        if range.is_none()
            && !claimed
            && let Some(progress) = this.files.progress(digest)
        {
            // This host is filling it right now: follow that fill rather
            // than read the shared store again. The store still says
            // whether the repository links the blob.
            let info = this.inner.stat_blob(repo, digest).await?;
            this.memo().confirm(repo, digest);
            let known = progress.size();
            if info.size > 0
                && info.size <= this.files.max_bytes()
                && (known == 0 || known == info.size)
            {
                stats::add(&counters.follows, 1);
                let size = info.size;
                return Ok(BlobRead {
                    info,
                    range: 0..size,
                    partial: false,
                    body: follow::follow(progress, size),
                });
            }
        }
        let read = match this.inner.read_blob(repo, digest, range).await {
            Ok(read) => read,
            Err(e) => {
                if claimed {
                    this.files.end_fill(digest);
                }
                return Err(e);
            }
        };
        // That read confirmed the link: remember it for the hits to come.
        this.memo().confirm(repo, digest);
        let size = read.info.size;
        if !claimed {
            return Ok(read);
        }
        if read.partial || size > this.files.max_bytes() || size == 0 {
            this.files.end_fill(digest);
            return Ok(read);
        }
        let body = fill::tee_into_cache(this.files.clone(), digest.clone(), size, read.body);
        Ok(BlobRead { body, ..read })
    }

    /// `None` when this host holds the blob (served from here by
    /// [`read_blob`](Decorator::read_blob), which checks the link); else the
    /// shared store's answer. A miss the shared store redirects is filled
    /// in the background, so the next read on this host is a hit.
    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        if this.contains(digest) {
            return Ok(None);
        }
        let location = this.inner.blob_location(repo, digest).await?;
        if location.is_some() {
            // A read that missed, as far as the counters go.
            stats::add(&this.files.counters.requests, 1);
            stats::add(&this.files.counters.misses, 1);
            this.fill_behind(repo, digest);
        }
        Ok(location)
    }

    async fn delete_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        this.memo().forget(repo, digest);
        this.inner.delete_blob(repo, digest).await
    }
}
