//! Fetch leases: which process of a fleet fetches a missing blob from a
//! mirror's upstream, so that hosts missing the same blob at once fetch it
//! once (docs/MIRROR.md).
//!
//! A lease has generations, objects `_registry/mirror/fetch/<alg>/<hex>/<n>`,
//! each written create-if-absent and holding its expiry and its holder's
//! nonce; the holder is the creator of the highest generation, while it has
//! not expired. To take a lease, a process lists the generations: the
//! highest live one means "held"; otherwise it creates the next one, and
//! exactly one process creates it. A process whose listing was stale (it
//! created a generation below another's) finds a higher one when it lists
//! again after creating and backs off, so every expiry hands the lease to
//! one process. The holder renews its generation while its fetch goes on
//! and removes it when done; a taker removes the generations below its own.
//! A holder that dies leaves a generation that expires.
//!
//! So a blob is fetched once per holder: again only after a holder died or
//! stalled past its expiry (then by one process). Expiries are in the
//! hosts' clocks, which a fleet keeps in step (NTP): a skew shortens or
//! lengthens a lease, and the fetch it guards is verified, so the worst is
//! one more fetch, never other bytes stored.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use registry_core::{BlobInfo, Digest, RepositoryName, Result};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;

/// A lease this process holds: renew it while fetching, release it after.
#[derive(Debug)]
pub struct FetchLease {
    digest: Digest,
    generation: u64,
    nonce: String,
}

impl FetchLease {
    /// The blob it is the lease of.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// A lease's content: expiry (RFC 3339) and holder, on two lines.
fn content(nonce: &str, ttl: Duration) -> Bytes {
    let until = humantime::format_rfc3339_millis(SystemTime::now() + ttl);
    Bytes::from(format!("{until}\n{nonce}\n"))
}

/// The expiry and holder of a lease's content; `None` for content no
/// version of this registry wrote (treated as expired: a lease is only an
/// optimisation, and the fetch it guards is verified).
fn parse(content: &[u8]) -> Option<(SystemTime, &str)> {
    let text = std::str::from_utf8(content).ok()?;
    let mut lines = text.lines();
    let until = humantime::parse_rfc3339_weak(lines.next()?.trim()).ok()?;
    Some((until, lines.next()?.trim()))
}

impl OpendalStore {
    /// Try to become the process that fetches `digest` upstream, for `ttl`
    /// (renew with [`renew_fetch_lease`](Self::renew_fetch_lease)).
    /// `Ok(None)`: another process holds a lease that has not expired.
    pub async fn try_fetch_lease(
        &self,
        digest: &Digest,
        ttl: Duration,
    ) -> Result<Option<FetchLease>> {
        let generations = self.lease_generations(digest).await?;
        let last = generations.last().copied();
        if let Some(n) = last
            && self.live_generation(digest, n).await?
        {
            return Ok(None);
        }
        let next = last.map_or(1, |n| n + 1);
        let nonce = crate::nonce()?;
        if !self
            .create_object_exclusive(
                &Key::MirrorFetch(digest, next).path(),
                content(&nonce, ttl).to_vec(),
            )
            .await?
        {
            return Ok(None);
        }
        // Created from a stale listing, below another's generation: not ours.
        let now = self.lease_generations(digest).await?;
        if now.last().is_some_and(|&top| top > next) {
            self.delete_key(Key::MirrorFetch(digest, next)).await?;
            return Ok(None);
        }
        for older in now.into_iter().filter(|&g| g < next) {
            self.delete_key(Key::MirrorFetch(digest, older)).await?;
        }
        Ok(Some(FetchLease {
            digest: digest.clone(),
            generation: next,
            nonce,
        }))
    }

    /// Whether a lease on `digest` that has not expired is held (by any
    /// process).
    pub async fn fetch_lease_held(&self, digest: &Digest) -> Result<bool> {
        match self.lease_generations(digest).await?.last() {
            Some(&n) => self.live_generation(digest, n).await,
            None => Ok(false),
        }
    }

    /// Push the expiry of a lease this process holds `ttl` from now. (If it
    /// expired and another process took the lease over meanwhile, the
    /// renewal changes nothing: the other's generation is higher.)
    pub async fn renew_fetch_lease(&self, lease: &FetchLease, ttl: Duration) -> Result<()> {
        self.write_object_atomic(
            &Key::MirrorFetch(&lease.digest, lease.generation).path(),
            content(&lease.nonce, ttl),
        )
        .await
    }

    /// Give a lease up (the fetch ended, stored or not).
    pub async fn release_fetch_lease(&self, lease: FetchLease) -> Result<()> {
        self.delete_key(Key::MirrorFetch(&lease.digest, lease.generation))
            .await
    }

    /// Link `digest` into `repo` if its bytes are stored (another process
    /// fetched it), as a mount does: `None` when they are not, or when a
    /// collection is deleting them (docs/GC.md), so the caller fetches.
    pub async fn adopt_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<BlobInfo>> {
        let Some(size) = self.size_of(Key::BlobData(digest)).await? else {
            return Ok(None);
        };
        if self.doomed_now(digest).await? {
            return Ok(None);
        }
        self.write_link(Key::LayerLink(repo, digest), digest)
            .await?;
        Ok(Some(BlobInfo {
            digest: digest.clone(),
            size,
        }))
    }

    /// The lease's generations, in increasing order.
    async fn lease_generations(&self, digest: &Digest) -> Result<Vec<u64>> {
        let mut generations: Vec<u64> = self
            .list_names(Key::MirrorFetchDir(digest))
            .await?
            .iter()
            .filter(|n| !n.ends_with('/'))
            .filter_map(|n| n.parse().ok())
            .collect();
        generations.sort_unstable();
        Ok(generations)
    }

    /// Whether generation `n` is there and has not expired (content no
    /// version of this registry wrote counts as expired). Read under the
    /// record lock, so that a generation another task of this process is
    /// creating on a backend that writes files in place (a plain OpenDAL
    /// filesystem) is not read empty, and taken for expired.
    async fn live_generation(&self, digest: &Digest, n: u64) -> Result<bool> {
        let path = Key::MirrorFetch(digest, n).path();
        let read = {
            let _serial = self.backend().record_lock().await;
            self.operator().read(&path).await
        };
        match read {
            Ok(buf) => Ok(parse(&buf.to_vec()).is_some_and(|(until, _)| until > SystemTime::now())),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(storage("reading a fetch lease")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips_and_garbage_is_expired() {
        let c = content("abc", Duration::from_secs(60));
        let (until, holder) = parse(&c).unwrap();
        assert_eq!(holder, "abc");
        assert!(until > SystemTime::now());
        assert!(parse(b"not a lease").is_none());
        assert!(parse(b"").is_none());
    }
}
