//! [`PeerStore`]: whole-blob reads asked of the digest's owners first.

use std::sync::Arc;

use async_trait::async_trait;
use registry_core::store::Decorator;
use registry_core::{
    BlobInfo, BlobRead, BodyVerified, ByteRange, ByteStream, Digest, RegistryStore, RepositoryName,
    Result,
};

use crate::fetch::{self, Origin};
use crate::members::Peers;
use crate::protocol;
use crate::scope::is_peer_request;
use crate::stats::add;

/// A store decorator (under a per-host blob cache) that reads whole blobs
/// from their owners among the peers, verified, with the inner store as
/// the fallback. Everything else, ranged reads included, goes to the inner
/// store.
///
/// A read goes to the inner store when this process is an owner of the
/// digest, no other member is live, the read serves a peer
/// ([`serving_peer`](crate::serving_peer)), or a peer recently served the
/// digest wrong. Otherwise the link is checked on the inner store first
/// (`stat_blob`: metadata, which keeps garbage collection and deletes
/// authoritative), then each owner is asked in turn, getting
/// [`PeerConfig::first_byte_timeout`](crate::PeerConfig) to answer.
#[derive(Clone)]
pub struct PeerStore {
    inner: Arc<dyn RegistryStore>,
    peers: Arc<Peers>,
}

impl PeerStore {
    /// Peers in front of `inner`.
    pub fn new(inner: Arc<dyn RegistryStore>, peers: Arc<Peers>) -> Self {
        PeerStore { inner, peers }
    }

    /// The membership (counters, instance id, secret check).
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// Ask the owners of `digest`, in turn; `None` if none answered well.
    async fn ask_owners(
        &self,
        owners: Vec<String>,
        repo: &RepositoryName,
        digest: &Digest,
        info: &BlobInfo,
    ) -> Option<BlobRead> {
        let config = self.peers.config();
        for url in owners {
            add(&self.peers.counters.requests, 1);
            let request = self
                .peers
                .client
                .get(format!("{url}{}", protocol::blob_path(repo, digest)))
                .header(protocol::SECRET_HEADER, config.secret.expose());
            let response =
                match tokio::time::timeout(config.first_byte_timeout, request.send()).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %url, %digest, error = %e, "peer request failed");
                        self.peers.failed(&url);
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %url, %digest, "peer did not answer in time");
                        self.peers.failed(&url);
                        continue;
                    }
                };
            let status = response.status();
            if status != reqwest::StatusCode::OK {
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN
                {
                    tracing::warn!(peer = %url, %status, "peer refused the secret");
                } else {
                    tracing::debug!(peer = %url, %digest, %status, "peer did not serve the blob");
                }
                continue;
            }
            if response.content_length().is_some_and(|n| n != info.size) {
                tracing::warn!(peer = %url, %digest, "peer announced the wrong size");
                add(&self.peers.counters.verification_failures, 1);
                self.peers.suspect(digest);
                continue;
            }
            let origin = Origin {
                peers: self.peers.clone(),
                inner: self.inner.clone(),
                repo: repo.clone(),
                digest: digest.clone(),
                size: info.size,
                url,
            };
            return Some(BlobRead {
                info: info.clone(),
                range: 0..info.size,
                partial: false,
                body: fetch::verified(origin, response),
            });
        }
        None
    }
}

#[async_trait]
impl Decorator for PeerStore {
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

    async fn read_blob(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        if range.is_some() || is_peer_request() || this.peers.suspected(digest) {
            return this.inner.read_blob(repo, digest, range).await;
        }
        let owners = this.peers.owners(digest);
        if owners.is_empty() {
            return this.inner.read_blob(repo, digest, None).await;
        }
        // The store says whether the repository links the blob, and its size.
        let info = this.inner.stat_blob(repo, digest).await?;
        if info.size > 0
            && let Some(read) = this.ask_owners(owners, repo, digest, &info).await
        {
            return Ok(read);
        }
        if info.size > 0 {
            add(&this.peers.counters.fallbacks, 1);
        }
        this.inner.read_blob(repo, digest, None).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use futures::StreamExt;
    use registry_core::BlobStore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::{Membership, PeerConfig, Secret};

    /// How a fake peer answers every blob request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Headers for the whole blob, then only its first half, then close.
        Half,
        /// The whole blob with one byte flipped.
        Corrupt,
        /// Accept the connection, never answer.
        Silent,
    }

    /// A peer on a local port answering `answer` with `blob`'s bytes.
    async fn fake_peer(blob: Vec<u8>, answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let blob = blob.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = match answer {
                        Answer::Silent => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Answer::Half => blob[..blob.len() / 2].to_vec(),
                        Answer::Corrupt => {
                            let mut b = blob.clone();
                            b[10] ^= 1;
                            b
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        blob.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        url
    }

    /// A memory store holding `blob` in `repo`, and a `PeerStore` over it
    /// whose only live member (the owner of everything) is `peer`.
    async fn setup(blob: &[u8], peer: &str) -> (PeerStore, RepositoryName, Digest) {
        let inner: Arc<dyn RegistryStore> = Arc::new(registry_storage::OpendalStore::memory());
        let repo = RepositoryName::parse("team/app").unwrap();
        let digest = Digest::sha256_of(blob);
        let body = futures::stream::iter([Ok(Bytes::copy_from_slice(blob))]).boxed();
        inner
            .put_blob(&repo, &digest, body, Some(blob.len() as u64))
            .await
            .unwrap();
        let mut config = PeerConfig::new(
            Membership::urls(&[peer]).unwrap(),
            Secret::new("s").unwrap(),
        );
        config.owners = 1;
        let peers = Arc::new(Peers::new(config).unwrap());
        peers.answered(peer, Some("theirs".into()));
        assert_eq!(peers.owners(&digest), vec![peer.to_owned()]);
        (PeerStore::new(inner, peers), repo, digest)
    }

    fn blob() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    async fn read_all(store: &PeerStore, repo: &RepositoryName, d: &Digest) -> Result<Vec<u8>> {
        let read = store.read_blob(repo, d, None).await?;
        let mut out = Vec::new();
        let mut body = read.body;
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_stream_cut_mid_way_is_finished_from_the_store() {
        let blob = blob();
        let peer = fake_peer(blob.clone(), Answer::Half).await;
        let (store, repo, d) = setup(&blob, &peer).await;
        assert_eq!(read_all(&store, &repo, &d).await.unwrap(), blob);
        let s = store.peers().stats();
        assert_eq!(s.requests, 1);
        assert_eq!(s.fallbacks, 1);
        assert_eq!(s.verification_failures, 0);
        assert!(s.bytes > 0 && s.bytes <= blob.len() as u64 / 2, "{s:?}");
    }

    #[tokio::test]
    async fn corrupt_bytes_end_the_stream_with_an_error_then_the_store_serves() {
        let blob = blob();
        let peer = fake_peer(blob.clone(), Answer::Corrupt).await;
        let (store, repo, d) = setup(&blob, &peer).await;
        let read = store.read_blob(&repo, &d, None).await.unwrap();
        let items: Vec<Result<Bytes>> = read.body.collect().await;
        let sent: usize = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(Bytes::len)
            .sum();
        assert!(items.last().unwrap().is_err(), "ends with an error");
        assert!(sent < blob.len(), "never the whole body");
        assert_eq!(store.peers().stats().verification_failures, 1);
        // Suspect now: read from the store, the peer not asked.
        assert_eq!(read_all(&store, &repo, &d).await.unwrap(), blob);
        assert_eq!(store.peers().stats().requests, 1);
    }

    #[tokio::test]
    async fn a_silent_owner_costs_the_first_byte_deadline() {
        let blob = blob();
        let peer = fake_peer(blob.clone(), Answer::Silent).await;
        let (store, repo, d) = setup(&blob, &peer).await;
        let t = Instant::now();
        assert_eq!(read_all(&store, &repo, &d).await.unwrap(), blob);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(190), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(store.peers().stats().fallbacks, 1);
    }

    #[tokio::test]
    async fn ranged_reads_and_peer_requests_read_the_store() {
        let blob = blob();
        let peer = fake_peer(blob.clone(), Answer::Corrupt).await;
        let (store, repo, d) = setup(&blob, &peer).await;
        let read = store
            .read_blob(&repo, &d, Some(ByteRange::From(5)))
            .await
            .unwrap();
        assert!(read.partial);
        let got = crate::serving_peer(read_all(&store, &repo, &d)).await;
        assert_eq!(got.unwrap(), blob);
        assert_eq!(store.peers().stats().requests, 0);
    }

    #[tokio::test]
    async fn an_unlinked_blob_is_unknown_without_asking_a_peer() {
        let blob = blob();
        let peer = fake_peer(blob.clone(), Answer::Corrupt).await;
        let (store, _, d) = setup(&blob, &peer).await;
        let other = RepositoryName::parse("other/app").unwrap();
        let e = store.read_blob(&other, &d, None).await.unwrap_err();
        assert_eq!(e.kind(), registry_core::ErrorKind::BlobUnknown);
        assert_eq!(store.peers().stats().requests, 0);
    }
}
