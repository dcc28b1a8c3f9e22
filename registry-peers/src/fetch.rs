//! A blob streamed from a peer, verified on the way: counted against the
//! size the store reported and hashed, the last chunk held back until the
//! digest matched. If the peer's stream fails or stalls mid-way, the rest
//! is read from the store with a ranged read from the offset reached (the
//! hash goes on), so the client still gets the whole blob. Bytes that do
//! not verify end the stream with an error: the client sees a body cut
//! short, a cache filling from it refuses it, and the digest is read from
//! the store only for a while ([`SUSPECT_FOR`](crate::members::SUSPECT_FOR)).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use registry_core::digest::Hasher;
use registry_core::{
    ByteRange, ByteStream, Digest, Error, ErrorKind, RegistryStore, RepositoryName, Result,
};

use crate::members::Peers;
use crate::stats::add;

/// Longest a peer's stream may send nothing before the rest is read from
/// the store.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

enum Source {
    Peer(BoxStream<'static, reqwest::Result<Bytes>>),
    Store(ByteStream),
}

/// What is needed to read on from the store.
pub(crate) struct Origin {
    pub(crate) peers: Arc<Peers>,
    pub(crate) inner: Arc<dyn RegistryStore>,
    pub(crate) repo: RepositoryName,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// The peer's base URL.
    pub(crate) url: String,
}

struct Fill {
    origin: Origin,
    source: Source,
    hasher: Option<Hasher>,
    offset: u64,
    held: Option<Bytes>,
    done: bool,
}

/// The verified stream of `response`'s body (a peer's answer for
/// `origin.digest`, of `origin.size` bytes).
pub(crate) fn verified(origin: Origin, response: reqwest::Response) -> ByteStream {
    let fill = Fill {
        hasher: Some(Hasher::new(origin.digest.algorithm())),
        origin,
        source: Source::Peer(response.bytes_stream().boxed()),
        offset: 0,
        held: None,
        done: false,
    };
    futures::stream::unfold(fill, |mut fill| async move {
        let item = fill.next_item().await?;
        Some((item, fill))
    })
    .boxed()
}

impl Fill {
    async fn next_item(&mut self) -> Option<Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            let (next, from_peer) = match &mut self.source {
                Source::Peer(stream) => {
                    match tokio::time::timeout(PEER_IDLE_TIMEOUT, stream.next()).await {
                        Ok(Some(Ok(chunk))) => (Some(Ok(chunk)), true),
                        Ok(Some(Err(e))) => {
                            if let Err(e) = self.read_on(&e.to_string()).await {
                                return self.fail(e);
                            }
                            continue;
                        }
                        Ok(None) => (None, true),
                        Err(_) => {
                            if let Err(e) = self.read_on("the stream stalled").await {
                                return self.fail(e);
                            }
                            continue;
                        }
                    }
                }
                Source::Store(stream) => (stream.next().await, false),
            };
            match next {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    let len = chunk.len() as u64;
                    if self.offset + len > self.origin.size {
                        return self.reject("more bytes than the blob's size");
                    }
                    if from_peer {
                        add(&self.origin.peers.counters.bytes, len);
                    }
                    if let Some(h) = &mut self.hasher {
                        h.update(&chunk);
                    }
                    self.offset += len;
                    if let Some(previous) = self.held.replace(chunk) {
                        return Some(Ok(previous));
                    }
                }
                Some(Err(e)) => return self.fail(e),
                None if self.offset < self.origin.size => {
                    if !from_peer {
                        return self.fail(Error::new(
                            ErrorKind::Incomplete,
                            "the store's stream ended before the blob's size",
                        ));
                    }
                    if let Err(e) = self.read_on("the stream ended short").await {
                        return self.fail(e);
                    }
                }
                None => {
                    let computed = self.hasher.take().map(Hasher::finish);
                    if computed.as_ref() != Some(&self.origin.digest) {
                        return self.reject("the bytes do not hash to the digest");
                    }
                    self.done = true;
                    return self.held.take().map(Ok);
                }
            }
        }
    }

    /// The peer failed mid-way: read the rest from the store.
    async fn read_on(&mut self, why: &str) -> Result<()> {
        let o = &self.origin;
        tracing::info!(peer = %o.url, digest = %o.digest, offset = self.offset, why,
            "peer stream failed; reading the rest from the store");
        add(&o.peers.counters.fallbacks, 1);
        o.peers.failed(&o.url);
        self.source = if self.offset >= o.size {
            Source::Store(futures::stream::empty().boxed())
        } else {
            let read = o
                .inner
                .read_blob(&o.repo, &o.digest, Some(ByteRange::From(self.offset)))
                .await?;
            if read.range.start != self.offset || read.info.size != o.size {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "the store's ranged read does not match the blob",
                ));
            }
            Source::Store(read.body)
        };
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Option<Result<Bytes>> {
        self.done = true;
        self.held = None;
        Some(Err(e))
    }

    /// The bytes did not verify: end the stream with an error, count it,
    /// and read this digest from the store for a while.
    fn reject(&mut self, why: &str) -> Option<Result<Bytes>> {
        let o = &self.origin;
        tracing::warn!(peer = %o.url, digest = %o.digest, why, "peer served a blob that does not verify");
        add(&o.peers.counters.verification_failures, 1);
        o.peers.suspect(&o.digest);
        let e = Error::new(
            ErrorKind::DigestInvalid,
            format!("a peer's copy of {} does not verify: {why}", o.digest),
        );
        self.fail(e)
    }
}
