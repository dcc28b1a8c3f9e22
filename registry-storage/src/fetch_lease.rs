//! Fetch leases: which process of a fleet fetches a missing blob from a
//! mirror's upstream, so that hosts missing the same blob at once fetch it
//! once (docs/MIRROR.md).
//!
//! A lease is the object `_registry/mirror/fetch/<alg>/<hex>`, written
//! create-if-absent, holding its expiry and its holder's nonce. Whoever
//! creates it fetches; the others wait for the blob to appear. The holder
//! renews it while its fetch goes on. A holder that dies leaves a lease
//! that expires: the next process to ask removes it and creates its own. Two
//! processes that both find the same lease expired may both win (one
//! removes the other's fresh lease), so a blob is fetched at most twice
//! around an expiry; the blob itself is content-addressed and verified, so
//! two fetches store the same bytes. Expiries are in the hosts' clocks,
//! which a fleet keeps in step (NTP); a skew shortens or lengthens a lease,
//! never makes two fetches store different bytes.

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
        let path = Key::MirrorFetch(digest).path();
        let nonce = crate::nonce()?;
        for _ in 0..2 {
            if self
                .create_object_exclusive(&path, content(&nonce, ttl).to_vec())
                .await?
            {
                return Ok(Some(FetchLease {
                    digest: digest.clone(),
                    nonce,
                }));
            }
            match self.read_lease(&path).await? {
                // Gone since: try again.
                None => continue,
                Some(held) => match parse(&held) {
                    Some((until, _)) if until > SystemTime::now() => return Ok(None),
                    // Expired (or unreadable): remove it and try once more.
                    _ => self.delete_key(Key::MirrorFetch(digest)).await?,
                },
            }
        }
        Ok(None)
    }

    /// Whether a lease on `digest` that has not expired is held (by any
    /// process).
    pub async fn fetch_lease_held(&self, digest: &Digest) -> Result<bool> {
        let path = Key::MirrorFetch(digest).path();
        Ok(self
            .read_lease(&path)
            .await?
            .and_then(|c| parse(&c).map(|(until, _)| until > SystemTime::now()))
            .unwrap_or(false))
    }

    /// Push the expiry of a lease this process holds `ttl` from now. If
    /// another process took it over meanwhile (it had expired), that one
    /// keeps it.
    pub async fn renew_fetch_lease(&self, lease: &FetchLease, ttl: Duration) -> Result<()> {
        let path = Key::MirrorFetch(&lease.digest).path();
        if self.holds(&path, lease).await? {
            self.write_object_atomic(&path, content(&lease.nonce, ttl))
                .await?;
        }
        Ok(())
    }

    /// Give a lease up (the fetch ended, stored or not).
    pub async fn release_fetch_lease(&self, lease: FetchLease) -> Result<()> {
        let path = Key::MirrorFetch(&lease.digest).path();
        if self.holds(&path, &lease).await? {
            self.delete_key(Key::MirrorFetch(&lease.digest)).await?;
        }
        Ok(())
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

    async fn holds(&self, path: &str, lease: &FetchLease) -> Result<bool> {
        Ok(self
            .read_lease(path)
            .await?
            .is_some_and(|c| parse(&c).is_some_and(|(_, holder)| holder == lease.nonce)))
    }

    async fn read_lease(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.operator().read(path).await {
            Ok(buf) => Ok(Some(buf.to_vec())),
            Err(e) if is_not_found(&e) => Ok(None),
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
