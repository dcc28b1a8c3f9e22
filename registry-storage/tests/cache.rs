//! The per-host blob cache: read-through, verified fills, LRU bound, safe
//! concurrent fills, and hits that never touch the shared store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use registry_core::store::Decorator;
use registry_core::*;
use registry_storage::{BlobCacheConfig, CachedStore, OpendalStore};

/// A store that counts every call that reaches it.
struct Counting {
    inner: OpendalStore,
    calls: AtomicUsize,
}

#[async_trait]
impl Decorator for Counting {
    /// Each call is forwarded, and each forward asks for the inner store
    /// once: the count is kept here.
    fn inner(&self) -> &dyn RegistryStore {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &self.inner
    }
}

/// A shared store in which every repository links `blob`: a stat of it
/// answers for any repository name, from memory (so that a test can ask
/// 100,000 times), and counts as a call to the shared store.
struct LinkedEverywhere {
    shared: Arc<Counting>,
    blob: BlobInfo,
}

#[async_trait]
impl Decorator for LinkedEverywhere {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.shared
    }

    async fn stat_blob(this: &Self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo> {
        if *digest != this.blob.digest {
            return this.shared.stat_blob(repo, digest).await;
        }
        this.shared.calls.fetch_add(1, Ordering::SeqCst);
        Ok(this.blob.clone())
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}

fn stream(data: &[u8]) -> ByteStream {
    let pieces: Vec<Result<Bytes>> = data
        .chunks(10_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

struct Setup {
    shared: Arc<Counting>,
    cached: CachedStore,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn setup(max_bytes: u64) -> Setup {
    setup_with(max_bytes, |_| {}, |shared| shared)
}

/// A cache of `max_bytes`, its config adjusted by `configure`, in front of
/// what `front` makes of the counting store.
fn setup_with(
    max_bytes: u64,
    configure: impl FnOnce(&mut BlobCacheConfig),
    front: impl FnOnce(Arc<Counting>) -> Arc<dyn RegistryStore>,
) -> Setup {
    let store_dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Counting {
        inner: OpendalStore::fs(store_dir.path()).unwrap(),
        calls: AtomicUsize::new(0),
    });
    let mut cfg = BlobCacheConfig::new(cache_dir.path(), max_bytes);
    configure(&mut cfg);
    let cached = CachedStore::new(front(shared.clone()), cfg).unwrap();
    Setup {
        shared,
        cached,
        _dirs: (store_dir, cache_dir),
    }
}

fn repo() -> RepositoryName {
    RepositoryName::parse("cache/app").unwrap()
}

#[tokio::test]
async fn a_hit_does_not_touch_the_shared_store() {
    let s = setup(10 << 20);
    let data = content(300_000, 1);
    let d = Digest::sha256_of(&data);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(&data), None)
        .await
        .unwrap();

    // Miss: read through and fill, with one store call (the read, which
    // checks the link itself).
    let before = s.shared.calls.load(Ordering::SeqCst);
    let read = s.cached.read_blob(&repo(), &d, None).await.unwrap();
    assert_eq!(collect(read.body).await, data);
    assert_eq!(s.shared.calls.load(Ordering::SeqCst), before + 1);
    assert!(s.cached.contains(&d));
    assert_eq!(s.cached.cached_bytes(), data.len() as u64);

    let before = s.shared.calls.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(
            collect(s.cached.read_blob(&repo(), &d, None).await.unwrap().body).await,
            data
        );
    }
    let ranged = s
        .cached
        .read_blob(&repo(), &d, Some(ByteRange::Bounded { start: 10, end: 19 }))
        .await
        .unwrap();
    assert!(ranged.partial);
    assert_eq!(collect(ranged.body).await, &data[10..20]);
    assert_eq!(
        s.shared.calls.load(Ordering::SeqCst),
        before,
        "cache hits made no store request"
    );
    // An existence check is always the shared store's answer (a swept or
    // unlinked blob must never look present to a push).
    assert_eq!(
        s.cached.stat_blob(&repo(), &d).await.unwrap().size,
        data.len() as u64
    );
    assert_eq!(s.shared.calls.load(Ordering::SeqCst), before + 1);
}

/// A reader that stops after the blob's size (as hyper does once it has
/// sent Content-Length bytes) and never polls for the end still fills.
#[tokio::test]
async fn a_read_of_exactly_the_size_fills_without_polling_the_end() {
    let s = setup(10 << 20);
    let data = content(300_000, 7);
    let d = push(&s, &data).await;
    let mut body = s.cached.read_blob(&repo(), &d, None).await.unwrap().body;
    let mut got = Vec::new();
    while got.len() < data.len() {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    drop(body);
    assert_eq!(got, data);
    assert!(s.cached.contains(&d));
    assert_eq!(s.cached.cached_bytes(), data.len() as u64);
}

#[tokio::test]
async fn a_corrupt_shared_blob_is_served_but_never_cached() {
    let s = setup(10 << 20);
    let data = content(50_000, 2);
    let d = Digest::sha256_of(&data);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(&data), None)
        .await
        .unwrap();
    // Someone corrupts the shared copy behind the registry's back.
    let path = registry_storage::layout::Key::BlobData(&d).path();
    s.shared
        .inner
        .operator()
        .write(&path, vec![0u8; 50_000])
        .await
        .unwrap();
    let _ = collect(s.cached.read_blob(&repo(), &d, None).await.unwrap().body).await;
    assert!(
        !s.cached.contains(&d),
        "a fill that fails verification is dropped"
    );
    assert_eq!(s.cached.cached_bytes(), 0);
    let stats = s.cached.stats();
    assert_eq!((stats.fills, stats.fill_failures), (0, 1));
}

#[tokio::test]
async fn the_cache_stays_within_its_bound_and_evicts_lru() {
    let s = setup(250_000);
    let blobs: Vec<(Digest, Vec<u8>)> = (0..3u8)
        .map(|i| {
            let data = content(100_000, 10 + i);
            (Digest::sha256_of(&data), data)
        })
        .collect();
    for (d, data) in &blobs {
        s.shared
            .inner
            .put_blob(&repo(), d, stream(data), None)
            .await
            .unwrap();
    }
    let read = |i: usize| {
        let (cached, (d, data)) = (s.cached.clone(), blobs[i].clone());
        async move {
            assert_eq!(
                collect(cached.read_blob(&repo(), &d, None).await.unwrap().body).await,
                data
            )
        }
    };
    read(0).await;
    read(1).await;
    read(0).await; // 0 is now more recent than 1
    read(2).await; // evicts 1
    assert!(s.cached.cached_bytes() <= 250_000);
    assert!(s.cached.contains(&blobs[0].0));
    assert!(!s.cached.contains(&blobs[1].0));
    assert!(s.cached.contains(&blobs[2].0));
    // What an embedder's metrics read: four reads, the third a hit.
    let stats = s.cached.stats();
    assert_eq!((stats.requests, stats.hits, stats.misses), (4, 1, 3));
    assert_eq!((stats.fills, stats.fill_bytes), (3, 300_000));
    assert_eq!((stats.evictions, stats.evicted_bytes), (1, 100_000));
    assert_eq!(stats.hit_bytes, 100_000);
    assert_eq!(stats.fill_failures, 0);
    assert_eq!((stats.cached_bytes, stats.max_bytes), (200_000, 250_000));
    // A blob larger than the whole cache is served, never cached.
    let big = content(300_000, 99);
    let bd = Digest::sha256_of(&big);
    s.shared
        .inner
        .put_blob(&repo(), &bd, stream(&big), None)
        .await
        .unwrap();
    assert_eq!(
        collect(s.cached.read_blob(&repo(), &bd, None).await.unwrap().body).await,
        big
    );
    assert!(!s.cached.contains(&bd));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_of_one_blob_are_safe() {
    let s = setup(10 << 20);
    let data = content(2_000_000, 3);
    let d = Digest::sha256_of(&data);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(&data), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cached, d) = (s.cached.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            collect(cached.read_blob(&repo(), &d, None).await.unwrap().body).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), data);
    }
    assert!(s.cached.contains(&d));
    assert_eq!(s.cached.cached_bytes(), data.len() as u64);
}

#[tokio::test]
async fn unknown_and_unlinked_blobs_are_refused() {
    let s = setup(10 << 20);
    let data = content(1000, 4);
    let d = Digest::sha256_of(&data);
    let e = s.cached.read_blob(&repo(), &d, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BlobUnknown);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(&data), None)
        .await
        .unwrap();
    let _ = collect(s.cached.read_blob(&repo(), &d, None).await.unwrap().body).await;
    // Cached, but another repository does not link it.
    let other = RepositoryName::parse("cache/other").unwrap();
    assert_eq!(
        s.cached
            .read_blob(&other, &d, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::BlobUnknown
    );
    // Unlinked through this store: refused at once.
    s.cached.delete_blob(&repo(), &d).await.unwrap();
    assert_eq!(
        s.cached
            .read_blob(&repo(), &d, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::BlobUnknown
    );
}

/// Store `data` in `cache/app` behind the cache's back.
async fn push(s: &Setup, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(data), None)
        .await
        .unwrap();
    d
}

/// Put the counting store behind a [`LinkedEverywhere`] of `data`.
fn linked_everywhere(data: &[u8]) -> impl FnOnce(Arc<Counting>) -> Arc<dyn RegistryStore> {
    let blob = BlobInfo {
        digest: Digest::sha256_of(data),
        size: data.len() as u64,
    };
    |shared| Arc::new(LinkedEverywhere { shared, blob })
}

/// Read a blob through the cache and check its bytes.
async fn read_through(s: &Setup, repo: &RepositoryName, d: &Digest, data: &[u8]) {
    let read = s.cached.read_blob(repo, d, None).await.unwrap();
    assert_eq!(collect(read.body).await, data);
}

#[tokio::test]
async fn the_link_memo_stays_bounded() {
    let data = content(1_000, 5);
    let s = setup_with(
        10 << 20,
        |cfg| cfg.max_links = 1_000,
        linked_everywhere(&data),
    );
    let d = push(&s, &data).await;
    read_through(&s, &repo(), &d, &data).await;
    assert!(s.cached.contains(&d));

    // 100,000 distinct (repository, blob) pairs, each a hit confirmed by the
    // shared store once.
    let repos: Vec<RepositoryName> = (0..100_000)
        .map(|i| RepositoryName::parse(&format!("cache/r{i}")).unwrap())
        .collect();
    let before = s.shared.calls.load(Ordering::SeqCst);
    for r in &repos {
        s.cached.stat_blob(r, &d).await.unwrap();
        assert!(s.cached.memo_len() <= 1_000);
    }
    assert_eq!(s.shared.calls.load(Ordering::SeqCst), before + repos.len());
    assert_eq!(s.cached.memo_len(), 1_000);

    // The latest confirmations are still trusted; the oldest were forgotten
    // and are asked about again.
    let before = s.shared.calls.load(Ordering::SeqCst);
    read_through(&s, &repos[99_999], &d, &data).await;
    read_through(&s, &repos[99_000], &d, &data).await;
    assert_eq!(s.shared.calls.load(Ordering::SeqCst), before, "hits");
    read_through(&s, &repos[0], &d, &data).await;
    assert_eq!(s.shared.calls.load(Ordering::SeqCst), before + 1);
    assert_eq!(s.cached.memo_len(), 1_000);
}

#[tokio::test]
async fn expired_links_leave_the_memo() {
    let data = content(1_000, 6);
    let s = setup_with(
        10 << 20,
        |cfg| {
            cfg.link_ttl = std::time::Duration::from_millis(200);
            // Kept no longer than trusted (by default an hour, for hits
            // while the shared store is unavailable).
            cfg.outage_link_ttl = cfg.link_ttl;
        },
        linked_everywhere(&data),
    );
    let d = push(&s, &data).await;
    read_through(&s, &repo(), &d, &data).await; // fills the cache
    let other = |i: usize| RepositoryName::parse(&format!("cache/r{i}")).unwrap();
    for i in 0..10 {
        read_through(&s, &other(i), &d, &data).await;
    }
    assert_eq!(s.cached.memo_len(), 11);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The next confirmation finds all the others out of the window.
    read_through(&s, &other(10), &d, &data).await;
    assert_eq!(s.cached.memo_len(), 1);
}

#[tokio::test]
async fn eviction_takes_the_least_recently_used_first() {
    let s = setup(500_000);
    let mut blobs = Vec::new();
    for i in 0..8u8 {
        let data = content(100_000, 20 + i);
        blobs.push((push(&s, &data).await, data));
    }
    for (d, data) in &blobs[..5] {
        read_through(&s, &repo(), d, data).await;
    }
    assert_eq!(s.cached.cached_bytes(), 500_000);
    // Use them in another order; a ranged hit counts as a use too.
    for i in [3, 0, 4, 1] {
        read_through(&s, &repo(), &blobs[i].0, &blobs[i].1).await;
    }
    let ranged = s
        .cached
        .read_blob(
            &repo(),
            &blobs[2].0,
            Some(ByteRange::Bounded { start: 0, end: 9 }),
        )
        .await
        .unwrap();
    assert_eq!(collect(ranged.body).await, &blobs[2].1[..10]);

    // Each new blob pushes out exactly the least recently used one.
    for (n, victim) in [3, 0, 4].into_iter().enumerate() {
        let (d, data) = &blobs[5 + n];
        read_through(&s, &repo(), d, data).await;
        assert!(
            !s.cached.contains(&blobs[victim].0),
            "blob {victim} evicted"
        );
        let kept = (0..6 + n)
            .filter(|&i| s.cached.contains(&blobs[i].0))
            .count();
        assert_eq!(kept, 5, "only blob {victim} evicted");
        assert_eq!(s.cached.cached_bytes(), 500_000);
    }
}

/// A blob unlinked on the shared store by another host (or swept by a
/// collection) is reported absent by the cache's existence check at once,
/// although its bytes are still cached: a push must upload it again.
#[tokio::test]
async fn an_existence_check_is_never_answered_from_the_cache() {
    let s = setup(10 << 20);
    let data = content(20_000, 9);
    let d = push(&s, &data).await;
    read_through(&s, &repo(), &d, &data).await;
    assert!(s.cached.contains(&d));
    s.cached.stat_blob(&repo(), &d).await.unwrap();

    // Another host's delete: straight on the shared store.
    s.shared.inner.delete_blob(&repo(), &d).await.unwrap();
    let err = s.cached.stat_blob(&repo(), &d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BlobUnknown);
}

/// A shared store that redirects every blob it has (as one on S3 with
/// redirects on), after the link check.
struct Redirecting(Arc<Counting>);

#[async_trait]
impl Decorator for Redirecting {
    fn inner(&self) -> &dyn RegistryStore {
        &*self.0
    }

    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        this.0.stat_blob(repo, digest).await?;
        Ok(Some(format!("https://bucket.example/{digest}")))
    }
}

#[tokio::test]
async fn a_redirected_miss_is_filled_behind_and_then_served_here() {
    let s = setup_with(10 << 20, |_| {}, |shared| Arc::new(Redirecting(shared)));
    let data = content(200_000, 7);
    let d = Digest::sha256_of(&data);
    s.shared
        .inner
        .put_blob(&repo(), &d, stream(&data), None)
        .await
        .unwrap();
    let other = RepositoryName::parse("cache/other").unwrap();
    let err = s.cached.blob_location(&other, &d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BlobUnknown);
    assert!(
        !s.cached.contains(&d),
        "nothing filled for a repository without it"
    );

    let first = s.cached.blob_location(&repo(), &d).await.unwrap();
    assert_eq!(
        first.as_deref(),
        Some(&*format!("https://bucket.example/{d}"))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.cached.contains(&d) {
        assert!(std::time::Instant::now() < deadline, "never filled");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.cached.blob_location(&repo(), &d).await.unwrap(), None);
    let read = s.cached.read_blob(&repo(), &d, None).await.unwrap();
    assert_eq!(collect(read.body).await, data);
    let stats = s.cached.stats();
    assert_eq!((stats.requests, stats.misses, stats.hits), (2, 1, 1));
}
