//! [`PeerStore`]: whole-blob reads asked of the digest's owners first.

use std::sync::Arc;

use async_trait::async_trait;
use registry_core::store::Decorator;
use registry_core::{BlobInfo, BlobRead, ByteRange, Digest, RegistryStore, RepositoryName, Result};

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
