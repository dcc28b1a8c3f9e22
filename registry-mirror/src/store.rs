//! [`MirrorStore`]: the store decorator that serves a mirror's repositories
//! from the store and fetches what it lacks from their upstreams.
//!
//! Manifests: a digest is immutable, so a stored one is served as it is; a
//! tag is served from the store while its revalidation interval lasts,
//! then checked with one `HEAD` upstream (which Docker Hub does not count
//! against its pull limit) and fetched again only if it moved. When every
//! upstream fails, the stored copy is served (counted); an upstream 404 is
//! remembered for a while. Fetched manifests are stored through the inner
//! store's ordinary push (so tags move atomically and the collector's
//! handshake holds), before the blobs they reference
//! (`OpendalStore::with_mirrored_repositories`).
//!
//! Blobs: `blobs.rs`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::store::Decorator;
use registry_core::{
    BlobInfo, BlobRead, ByteRange, ByteStream, Digest, Error, ErrorKind, ManifestPut, Reference,
    RegistryStore, RepositoryName, Result, StoredManifest, Tag, UploadStatus,
};
use registry_storage::OpendalStore;

use crate::config::{Mirrors, Target};
use crate::stats::{Counters, MirrorStats};
use crate::upstream::{Upstream, UpstreamError};

/// How a blob fetch is shared by the processes of a fleet (docs/MIRROR.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// How long a fetch lease holds without renewal; the holder renews it
    /// every third of that while its fetch goes on.
    pub lease: Duration,
    /// How long a process that found another's lease waits for the blob
    /// before it streams from upstream without storing.
    pub wait: Duration,
    /// How often a waiting process looks for the blob.
    pub poll: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            lease: Duration::from_secs(30),
            wait: Duration::from_secs(120),
            poll: Duration::from_millis(200),
        }
    }
}

/// A store that serves the configured mirrors' repositories, fetching from
/// their upstreams what `inner` lacks. Cheap to clone.
#[derive(Clone)]
pub struct MirrorStore {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) inner: Arc<dyn RegistryStore>,
    /// The store itself, for fetch leases and for linking blobs another
    /// process stored.
    pub(crate) origin: OpendalStore,
    pub(crate) mirrors: Arc<Mirrors>,
    /// Each mirror's upstream clients, in the mirror's order.
    upstreams: Vec<Vec<Upstream>>,
    /// When each tag was last fetched or found unchanged upstream.
    fresh: Expiring<(RepositoryName, Tag)>,
    /// Upstream 404s, by local name and reference.
    not_found: Expiring<(RepositoryName, String)>,
    pub(crate) counters: Counters,
    pub(crate) fetch: FetchOptions,
}

impl MirrorStore {
    /// Serve `mirrors` in front of `inner`; `origin` is the store at the
    /// bottom of `inner` (give it `with_mirrored_repositories(mirrors.patterns())`).
    pub fn new(
        inner: Arc<dyn RegistryStore>,
        origin: OpendalStore,
        mirrors: Arc<Mirrors>,
        fetch: FetchOptions,
    ) -> std::result::Result<MirrorStore, String> {
        let upstreams = mirrors
            .iter()
            .map(|m| {
                m.upstreams
                    .iter()
                    .map(|u| {
                        Upstream::new(u.clone())
                            .map_err(|e| format!("mirror {}: upstream {}: {e}", m.prefix, u.url))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(MirrorStore {
            shared: Arc::new(Shared {
                inner,
                origin,
                mirrors,
                upstreams,
                fresh: Expiring::default(),
                not_found: Expiring::default(),
                counters: Counters::default(),
                fetch,
            }),
        })
    }

    /// What the mirror has done so far.
    pub fn stats(&self) -> MirrorStats {
        self.shared.counters.snapshot()
    }

    /// The mirror repository `repo` is (its own, or the default mirror's
    /// for a name the store does not have), or `None`.
    fn target_of(&self, repo: &RepositoryName, local_miss: bool) -> Option<Target> {
        let s = &self.shared;
        s.mirrors
            .target(repo)
            .or_else(|| local_miss.then(|| s.mirrors.default_target(repo)).flatten())
    }

    /// Refuse a client's write under a mirror that does not take them.
    fn writable(&self, repo: &RepositoryName) -> Result<()> {
        match self.shared.mirrors.target(repo) {
            Some(t) if !self.shared.mirrors.get(t.mirror).allow_push => Err(Error::new(
                ErrorKind::Denied,
                format!(
                    "{repo} is in the mirror {}: it holds its upstream's content, and pushes and deletes are off there",
                    self.shared.mirrors.get(t.mirror).prefix
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for MirrorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorStore")
            .field("mirrors", &self.shared.mirrors)
            .finish_non_exhaustive()
    }
}

/// Whether `e` says the store lacks what was asked for.
pub(crate) fn is_unknown(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ManifestUnknown | ErrorKind::BlobUnknown | ErrorKind::NameUnknown
    )
}

/// The error a client gets when no upstream could answer.
pub(crate) fn unavailable(target: &Target, e: &UpstreamError) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the upstream of {} could not be reached and nothing is stored for it: {e}",
            target.local
        ),
    )
}

impl Shared {
    pub(crate) fn upstreams(&self, target: &Target) -> &[Upstream] {
        &self.upstreams[target.mirror]
    }

    /// A manifest of a mirror repository.
    async fn manifest(&self, t: &Target, reference: &Reference) -> Result<StoredManifest> {
        let local = self.inner.get_manifest(&t.local, reference).await;
        let fetches = self.mirrors.fetches(t);
        match (reference, local) {
            (_, Err(e)) if !is_unknown(&e) || !fetches => Err(e),
            (Reference::Digest(_), Ok(m)) => Ok(m),
            (Reference::Tag(tag), Ok(m)) => {
                if !fetches || self.is_fresh(t, tag) {
                    return self.pulled(t, m).await;
                }
                self.revalidate(t, tag, m).await
            }
            (_, Err(e)) => {
                let key = (t.local.clone(), reference.to_string());
                if self.not_found.holds(&key, self.config(t).not_found_ttl) {
                    self.counters.not_found_cached(1);
                    return Err(e);
                }
                self.fetch_manifest(t, reference).await
            }
        }
    }

    fn config(&self, t: &Target) -> &crate::config::MirrorConfig {
        self.mirrors.get(t.mirror)
    }

    fn is_fresh(&self, t: &Target, tag: &Tag) -> bool {
        self.fresh.holds(
            &(t.local.clone(), tag.clone()),
            self.config(t).revalidate_after,
        )
    }

    /// Served from the store: read it again by digest, which records the
    /// pull for retention rules (`keep_pulled_within`) the way a client's
    /// pull by digest does, so a tag in use does not expire.
    async fn pulled(&self, t: &Target, m: StoredManifest) -> Result<StoredManifest> {
        let by_digest = Reference::Digest(m.digest.clone());
        match self.inner.get_manifest(&t.local, &by_digest).await {
            Ok(again) => Ok(again),
            Err(_) => Ok(m),
        }
    }

    /// A stored tag whose interval has passed: one `HEAD` upstream.
    async fn revalidate(
        &self,
        t: &Target,
        tag: &Tag,
        stored: StoredManifest,
    ) -> Result<StoredManifest> {
        self.counters.revalidations(1);
        let mut outage = None;
        for up in self.upstreams(t) {
            match up.head_manifest(&t.upstream, tag.as_str()).await {
                Ok(head) if head.digest.as_ref() == Some(&stored.digest) => {
                    self.fresh.mark((t.local.clone(), tag.clone()));
                    return self.pulled(t, stored).await;
                }
                // Moved upstream (or no digest in the answer): fetch it.
                Ok(_) => break,
                Err(UpstreamError::NotFound) => {
                    // Gone upstream: so it is here too, for clients; the
                    // stored tag stays until retention removes it.
                    self.not_found.mark((t.local.clone(), tag.to_string()));
                    return Err(crate::blobs::manifest_unknown(t, tag.as_str()));
                }
                Err(e) => {
                    self.counters.upstream_errors(1);
                    outage = Some(e);
                }
            }
        }
        if outage.is_none() {
            match self.fetch_manifest(t, &Reference::Tag(tag.clone())).await {
                Ok(m) => return Ok(m),
                Err(e) if e.kind() != ErrorKind::Unavailable => return Err(e),
                Err(_) => {}
            }
        }
        // Every upstream failed: serve what is stored, and ask again soon
        // rather than on every request.
        tracing::warn!(repository = %t.local, %tag, "every upstream failed; serving the stored tag");
        self.counters.stale_served(1);
        self.fresh.mark_for(
            (t.local.clone(), tag.clone()),
            RETRY_AFTER_OUTAGE,
            self.config(t).revalidate_after,
        );
        self.pulled(t, stored).await
    }

    /// Fetch a manifest from the first upstream that has it, verify it and
    /// store it (a tag is pointed at it).
    async fn fetch_manifest(&self, t: &Target, reference: &Reference) -> Result<StoredManifest> {
        let max = self.inner.manifest_limits().max_size;
        let mut outage: Option<UpstreamError> = None;
        for up in self.upstreams(t) {
            let got = match up
                .get_manifest(&t.upstream, &reference.to_string(), max)
                .await
            {
                Ok(got) => got,
                Err(UpstreamError::NotFound) => continue,
                Err(e) => {
                    self.counters.upstream_errors(1);
                    outage = Some(e);
                    continue;
                }
            };
            let want = match reference {
                Reference::Digest(d) => Some(d),
                Reference::Tag(_) => got.digest.as_ref(),
            };
            if let Some(want) = want
                && Digest::compute(want.algorithm(), &got.bytes) != *want
            {
                self.counters.rejected(1);
                tracing::warn!(upstream = up.url(), repository = %t.local, %reference, "upstream manifest does not match its digest; refused");
                outage = Some(UpstreamError::Invalid(format!(
                    "{} sent a manifest for {reference} that does not match {want}",
                    up.url()
                )));
                continue;
            }
            let put = match self
                .inner
                .put_manifest(
                    &t.local,
                    reference,
                    got.media_type.as_deref(),
                    got.bytes.clone(),
                )
                .await
            {
                Ok(put) => put,
                Err(e) if e.kind() == ErrorKind::ManifestInvalid => {
                    self.counters.rejected(1);
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.counters.manifest_fetches(1);
            if let Reference::Tag(tag) = reference {
                self.fresh.mark((t.local.clone(), tag.clone()));
            }
            return self
                .inner
                .get_manifest(&t.local, &Reference::Digest(put.digest))
                .await;
        }
        match outage {
            Some(e) => Err(unavailable(t, &e)),
            None => {
                self.not_found
                    .mark((t.local.clone(), reference.to_string()));
                Err(crate::blobs::manifest_unknown(t, &reference.to_string()))
            }
        }
    }
}

/// After every upstream failed, how long a stored tag is served before
/// the next try.
const RETRY_AFTER_OUTAGE: Duration = Duration::from_secs(10);

/// How many entries an [`Expiring`] keeps before it forgets the oldest.
const REMEMBERED: usize = 100_000;

/// Keys with the time they were marked, each holding for an interval: a
/// bounded memory of "fresh" and "not found".
pub(crate) struct Expiring<K> {
    at: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for Expiring<K> {
    fn default() -> Self {
        Expiring {
            at: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Expiring<K> {
    /// Whether `key` was marked less than `ttl` ago.
    pub(crate) fn holds(&self, key: &K, ttl: Duration) -> bool {
        let at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.get(key).is_some_and(|t| t.elapsed() < ttl)
    }

    /// Mark `key` now.
    pub(crate) fn mark(&self, key: K) {
        self.mark_at(key, Instant::now());
    }

    /// Mark `key` so that, for a `ttl` of `full`, it holds only `for_` more.
    fn mark_for(&self, key: K, for_: Duration, full: Duration) {
        let now = Instant::now();
        let at = now.checked_sub(full.saturating_sub(for_)).unwrap_or(now);
        self.mark_at(key, at);
    }

    fn mark_at(&self, key: K, when: Instant) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        if at.len() >= REMEMBERED {
            // Entries older than an hour hold for no interval anyone sets
            // in practice; if that is not enough, forget everything (the
            // cost is a few early revalidations).
            at.retain(|_, t| t.elapsed() < Duration::from_secs(3600));
            if at.len() >= REMEMBERED {
                at.clear();
            }
        }
        at.insert(key, when);
    }
}

#[async_trait]
impl Decorator for MirrorStore {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.shared.inner
    }

    async fn get_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        if let Some(t) = this.shared.mirrors.target(repo) {
            return this.shared.manifest(&t, reference).await;
        }
        match this.shared.inner.get_manifest(repo, reference).await {
            Err(e) if is_unknown(&e) => match this.target_of(repo, true) {
                Some(t) => this.shared.manifest(&t, reference).await,
                None => Err(e),
            },
            r => r,
        }
    }

    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        match this.shared.inner.stat_blob(repo, digest).await {
            Err(e) if is_unknown(&e) => match this.target_of(repo, true) {
                Some(t) => this.shared.stat_blob(&t, digest, e).await,
                None => Err(e),
            },
            r => r,
        }
    }

    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        match this.shared.inner.read_blob(repo, digest, range).await {
            Err(e) if is_unknown(&e) => match this.target_of(repo, true) {
                Some(t) => crate::blobs::read_blob(&this.shared, &t, digest, range, e).await,
                None => Err(e),
            },
            r => r,
        }
    }

    /// A stored blob may be redirected; one the mirror has yet to fetch is
    /// served here (`None`), through [`read_blob`](Decorator::read_blob).
    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        match this.shared.inner.blob_location(repo, digest).await {
            Err(e) if is_unknown(&e) && this.target_of(repo, true).is_some() => Ok(None),
            r => r,
        }
    }

    async fn put_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo> {
        this.writable(repo)?;
        this.shared
            .inner
            .put_blob(repo, digest, body, expected_len)
            .await
    }

    async fn delete_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        this.writable(repo)?;
        this.shared.inner.delete_blob(repo, digest).await
    }

    async fn mount_blob(
        this: &Self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo> {
        this.writable(to)?;
        this.shared.inner.mount_blob(from, to, digest).await
    }

    async fn put_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        this.writable(repo)?;
        this.shared
            .inner
            .put_manifest(repo, reference, content_type, bytes)
            .await
    }

    async fn delete_manifest(
        this: &Self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        this.writable(repo)?;
        this.shared.inner.delete_manifest(repo, reference).await
    }

    async fn start_upload(this: &Self, repo: &RepositoryName) -> Result<UploadStatus> {
        this.writable(repo)?;
        this.shared.inner.start_upload(repo).await
    }
}
