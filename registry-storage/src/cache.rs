//! An optional per-host blob cache on local disk, in front of a shared
//! store.
//!
//! Blob bytes are immutable under their digest, so a local copy never goes
//! stale. The cache is read-through: a full read that misses streams from
//! the shared store to the client and, at the same time, into a temporary
//! file that is hashed as it fills and renamed into the cache only if it
//! hashes to the digest. Two requests missing the same blob at once are
//! safe: one fills, the other streams from the shared store. The cache is
//! bounded in bytes and evicts the least recently used blobs.
//!
//! A cache hit does not touch the shared store. For that, the fact that a
//! repository links a blob is remembered for [`BlobCacheConfig::link_ttl`]
//! after the shared store confirmed it: a blob unlinked by another process
//! may still be served from this host's cache for at most that long.
//! Manifests, tags and uploads are never cached (see `docs/CONSISTENCY.md`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use registry_core::manifest::Descriptor;
use registry_core::{
    BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, Digest, Error, ErrorKind, Hasher,
    Listing, ManifestPut, ManifestStore, Page, Reference, RegistryStore, RepositoryName, Result,
    StoredManifest, Tag, UploadId, UploadStatus, UploadStore,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

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
}

impl BlobCacheConfig {
    /// A cache in `dir` of at most `max_bytes`, trusting links for 30 s.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        BlobCacheConfig {
            dir: dir.into(),
            max_bytes,
            link_ttl: Duration::from_secs(30),
        }
    }
}

/// A store with a local blob cache in front of another store. Everything
/// but blob reads goes straight to the inner store.
#[derive(Clone)]
pub struct CachedStore {
    inner: Arc<dyn RegistryStore>,
    cache: Arc<Cache>,
}

struct Cache {
    cfg: BlobCacheConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Cached blobs: size and last use.
    entries: HashMap<Digest, Entry>,
    total: u64,
    tick: u64,
    /// Blobs being filled right now.
    filling: std::collections::HashSet<Digest>,
    /// Links confirmed by the shared store, and when.
    links: HashMap<(RepositoryName, Digest), Instant>,
}

struct Entry {
    size: u64,
    used: u64,
}

/// Read size of cache hits.
const READ_BUF: usize = 1024 * 1024;

impl CachedStore {
    /// Put a cache in front of `inner`. Blobs already in the directory are
    /// indexed (and trimmed to the size bound); leftovers of interrupted
    /// fills are removed.
    pub fn new(inner: Arc<dyn RegistryStore>, cfg: BlobCacheConfig) -> Result<Self> {
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Storage, format!("blob cache: {what}")).with_source(e)
        };
        std::fs::create_dir_all(cfg.dir.join("tmp")).map_err(|e| io("creating directory", e))?;
        let _ = std::fs::remove_dir_all(cfg.dir.join("tmp"));
        std::fs::create_dir_all(cfg.dir.join("tmp")).map_err(|e| io("creating directory", e))?;
        let mut state = State::default();
        let mut found = Vec::new();
        for alg in ["sha256", "sha512"] {
            let Ok(rd) = std::fs::read_dir(cfg.dir.join(alg)) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(hex) = name.to_str() else { continue };
                let Ok(digest) = Digest::parse(&format!("{alg}:{hex}")) else {
                    continue;
                };
                let Ok(meta) = entry.metadata() else { continue };
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((mtime, digest, meta.len()));
            }
        }
        found.sort();
        for (_, digest, size) in found {
            state.tick += 1;
            state.total += size;
            state.entries.insert(
                digest,
                Entry {
                    size,
                    used: state.tick,
                },
            );
        }
        let cache = Arc::new(Cache {
            cfg,
            state: Mutex::new(state),
        });
        cache.evict(0);
        Ok(CachedStore { inner, cache })
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.lock().total
    }

    /// Whether a blob is in the cache.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.cache.lock().entries.contains_key(digest)
    }

    /// The cached blob's info if this host holds `digest` and `repo` links
    /// it: the link from the memo when fresh, else from the shared store
    /// (which then refreshes the memo). `None` without asking the store when
    /// the blob is not cached: the read that follows a miss checks the link
    /// itself.
    async fn linked(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<BlobInfo>> {
        if !self.contains(digest) {
            return Ok(None);
        }
        let key = (repo.clone(), digest.clone());
        let fresh = {
            let st = self.cache.lock();
            let cached = st.entries.get(digest).map(|e| e.size);
            match (st.links.get(&key), cached) {
                (Some(at), Some(size)) if at.elapsed() < self.cache.cfg.link_ttl => Some(size),
                _ => None,
            }
        };
        if let Some(size) = fresh {
            return Ok(Some(BlobInfo {
                digest: digest.clone(),
                size,
            }));
        }
        let info = self.inner.stat_blob(repo, digest).await?;
        self.cache.lock().links.insert(key, Instant::now());
        Ok(if self.contains(digest) {
            Some(info)
        } else {
            None
        })
    }
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.cfg
            .dir
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn touch(&self, digest: &Digest) {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some(e) = st.entries.get_mut(digest) {
            e.used = tick;
        }
    }

    /// Drop least recently used blobs until `incoming` more bytes fit.
    fn evict(&self, incoming: u64) {
        let mut victims = Vec::new();
        {
            let mut st = self.lock();
            while st.total + incoming > self.cfg.max_bytes && !st.entries.is_empty() {
                let Some(oldest) = st
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(d, _)| d.clone())
                else {
                    break;
                };
                if let Some(e) = st.entries.remove(&oldest) {
                    st.total -= e.size;
                }
                victims.push(oldest);
            }
        }
        // Readers holding a file open keep reading it after the unlink.
        for d in victims {
            let _ = std::fs::remove_file(self.path(&d));
        }
    }

    /// Move a verified fill into the cache.
    fn admit(&self, digest: &Digest, tmp: &Path, size: u64) {
        if size > self.cfg.max_bytes {
            let _ = std::fs::remove_file(tmp);
            return;
        }
        self.evict(size);
        let dest = self.path(digest);
        let ok = dest
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .is_ok()
            && std::fs::rename(tmp, &dest).is_ok();
        if !ok {
            let _ = std::fs::remove_file(tmp);
            return;
        }
        let mut st = self.lock();
        st.tick += 1;
        let used = st.tick;
        if st
            .entries
            .insert(digest.clone(), Entry { size, used })
            .is_none()
        {
            st.total += size;
        }
    }
}

/// Stream `range` of a cached file.
async fn file_stream(path: PathBuf, range: std::ops::Range<u64>) -> std::io::Result<ByteStream> {
    let mut file = tokio::fs::File::open(&path).await?;
    file.seek(std::io::SeekFrom::Start(range.start)).await?;
    let remaining = range.end - range.start;
    let s = futures::stream::try_unfold((file, remaining), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let want = remaining.min(READ_BUF as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await.map_err(cache_io)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Storage,
                "cached blob shorter than indexed",
            ));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, remaining - n as u64))))
    });
    Ok(s.boxed())
}

fn cache_io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Storage, "blob cache I/O").with_source(e)
}

/// Wrap a blob stream from the shared store so that it also fills the
/// cache: each chunk is written to a temporary file and hashed; at the end
/// the file is admitted if it hashes to `digest`. A failed or abandoned
/// stream leaves nothing in the cache.
fn tee_into_cache(cache: Arc<Cache>, digest: Digest, size: u64, body: ByteStream) -> ByteStream {
    struct Fill {
        cache: Arc<Cache>,
        digest: Digest,
        tmp: PathBuf,
        file: Option<tokio::fs::File>,
        hasher: Option<Hasher>,
        written: u64,
        size: u64,
    }
    impl Drop for Fill {
        fn drop(&mut self) {
            // Unless admitted, the temporary file goes.
            let _ = std::fs::remove_file(&self.tmp);
            self.cache.lock().filling.remove(&self.digest);
        }
    }
    let tmp = cache.cfg.dir.join("tmp").join(format!(
        "{}-{}",
        digest.hex(),
        crate::nonce().unwrap_or_default()
    ));
    let fill = Fill {
        cache,
        hasher: Some(Hasher::new(digest.algorithm())),
        digest,
        tmp,
        file: None,
        written: 0,
        size,
    };
    futures::stream::unfold((body, Some(fill)), |(mut body, mut fill)| async move {
        let item = body.next().await;
        match (item, fill.as_mut()) {
            (Some(Ok(bytes)), Some(f)) => {
                let ok = async {
                    if f.file.is_none() {
                        f.file = Some(tokio::fs::File::create(&f.tmp).await?);
                    }
                    if let Some(file) = f.file.as_mut() {
                        file.write_all(&bytes).await?;
                    }
                    std::io::Result::Ok(())
                }
                .await;
                if ok.is_ok() {
                    if let Some(h) = f.hasher.as_mut() {
                        h.update(&bytes);
                    }
                    f.written += bytes.len() as u64;
                } else {
                    fill = None; // give up filling, keep serving
                }
                Some((Ok(bytes), (body, fill)))
            }
            (Some(Ok(bytes)), None) => Some((Ok(bytes), (body, None))),
            (Some(Err(e)), _) => Some((Err(e), (body, None))),
            (None, Some(f)) => {
                if let Some(mut file) = f.file.take() {
                    let _ = file.flush().await;
                }
                let verified = f.written == f.size
                    && f.hasher.take().map(Hasher::finish).as_ref() == Some(&f.digest);
                if verified && f.written > 0 {
                    f.cache.admit(&f.digest, &f.tmp, f.size);
                } else if !verified {
                    tracing::warn!(digest = %f.digest, "blob from the shared store failed verification; not cached");
                }
                None
            }
            (None, None) => None,
        }
    })
    .boxed()
}

#[async_trait]
impl BlobStore for CachedStore {
    async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        match self.linked(repo, digest).await? {
            Some(info) => Ok(info),
            None => self.inner.stat_blob(repo, digest).await,
        }
    }

    async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        if let Some(info) = self.linked(repo, digest).await? {
            let (r, partial) = match range {
                Some(r) => (r.resolve(info.size)?, true),
                None => (0..info.size, false),
            };
            match file_stream(self.cache.path(digest), r.clone()).await {
                Ok(body) => {
                    self.cache.touch(digest);
                    return Ok(BlobRead {
                        info,
                        range: r,
                        partial,
                        body,
                    });
                }
                Err(_) => {
                    // Evicted between the check and the open: fall through.
                    let mut st = self.cache.lock();
                    if let Some(e) = st.entries.remove(digest) {
                        st.total -= e.size;
                    }
                }
            }
        }
        let read = self.inner.read_blob(repo, digest, range).await?;
        // That read confirmed the link: remember it for the hits to come.
        self.cache
            .lock()
            .links
            .insert((repo.clone(), digest.clone()), Instant::now());
        if read.partial || read.info.size > self.cache.cfg.max_bytes || read.info.size == 0 {
            return Ok(read);
        }
        // Only one request fills a given blob at a time.
        if !self.cache.lock().filling.insert(digest.clone()) {
            return Ok(read);
        }
        let body = tee_into_cache(
            self.cache.clone(),
            digest.clone(),
            read.info.size,
            read.body,
        );
        Ok(BlobRead { body, ..read })
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        self.inner.put_blob(repo, digest, body, expected_len).await
    }

    async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        self.cache
            .lock()
            .links
            .remove(&(repo.clone(), digest.clone()));
        self.inner.delete_blob(repo, digest).await
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        self.inner.mount_blob(from, to, digest).await
    }
}

#[async_trait]
impl ManifestStore for CachedStore {
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        self.inner
            .put_manifest(repo, reference, content_type, bytes)
            .await
    }
    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        self.inner.get_manifest(repo, reference).await
    }
    async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> Result<()> {
        self.inner.delete_manifest(repo, reference).await
    }
    async fn list_tags(&self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        self.inner.list_tags(repo, page).await
    }
    async fn list_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        self.inner
            .list_referrers(repo, subject, artifact_type)
            .await
    }
    async fn list_repositories(&self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        self.inner.list_repositories(page).await
    }
}

#[async_trait]
impl UploadStore for CachedStore {
    async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus> {
        self.inner.start_upload(repo).await
    }
    async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus> {
        self.inner.upload_status(repo, id).await
    }
    async fn write_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        self.inner
            .write_chunk(repo, id, start, body, expected_len)
            .await
    }
    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        self.inner
            .complete_upload(repo, id, digest, last_chunk)
            .await
    }
    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.inner.cancel_upload(repo, id).await
    }
}
