//! Blobs of a mirror repository: one upstream fetch per blob, fleet-wide,
//! verified before it is visible.
//!
//! A miss, in order:
//!
//! 1. the bytes are stored already (another repository, another process):
//!    link them (`adopt_blob`) and serve them;
//! 2. win the blob's fetch lease: fetch it from the first upstream that has
//!    it, streaming each chunk to the client and into the store's verified
//!    put at once. The client's last chunk is held back until the store
//!    has hashed the whole body to the digest (its
//!    [`BodyVerified`](registry_core::BodyVerified) notice, before the
//!    commit's flush; or the put's success, from a store that cannot tell
//!    early), so a client never receives all of a blob that did not
//!    verify: on a mismatch its response ends with an error instead, and
//!    nothing is stored. A client that goes away does not stop the fetch;
//! 3. another process holds the lease: wait for its blob (back to 1), take
//!    the lease over if it is given up or expires (2), and past
//!    [`FetchOptions::wait`](crate::FetchOptions::wait) stream from
//!    upstream without storing, still verified.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use registry_core::digest::Hasher;
use registry_core::{
    BlobInfo, BlobRead, BodyVerified, ByteRange, ByteStream, Digest, Error, ErrorKind, Result,
};
use registry_storage::FetchLease;
use tokio::sync::mpsc;

use crate::config::Target;
use crate::store::{Shared, unavailable};
use crate::upstream::{UpstreamBlob, UpstreamError};

pub(crate) fn manifest_unknown(t: &Target, reference: &str) -> Error {
    Error::new(
        ErrorKind::ManifestUnknown,
        format!(
            "manifest {reference} unknown to {} and its upstreams",
            t.local
        ),
    )
}

fn blob_unknown(t: &Target, digest: &Digest) -> Error {
    Error::new(
        ErrorKind::BlobUnknown,
        format!("blob {digest} unknown to {} and its upstreams", t.local),
    )
}

impl Shared {
    /// `HEAD` of a blob the store lacks: stored elsewhere, or the
    /// upstream's size (nothing is fetched).
    pub(crate) async fn stat_blob(
        &self,
        t: &Target,
        digest: &Digest,
        miss: Error,
    ) -> Result<BlobInfo> {
        if !self.mirrors.fetches(t) {
            return Err(miss);
        }
        if let Some(info) = self.origin.adopt_blob(&t.local, digest).await? {
            self.counters.adopted(1);
            return Ok(info);
        }
        let mut outage = None;
        for up in self.upstreams(t) {
            match up.head_blob(&t.upstream, digest).await {
                Ok(size) => {
                    return Ok(BlobInfo {
                        digest: digest.clone(),
                        size,
                    });
                }
                Err(UpstreamError::NotFound) => {}
                Err(e) => {
                    self.counters.upstream_errors(1);
                    outage = Some(e);
                }
            }
        }
        Err(match outage {
            Some(e) => unavailable(t, &e),
            None => blob_unknown(t, digest),
        })
    }

    /// The first upstream's answer for a blob.
    async fn upstream_blob(&self, t: &Target, digest: &Digest) -> Result<UpstreamBlob> {
        let mut outage = None;
        for up in self.upstreams(t) {
            match up.get_blob(&t.upstream, digest).await {
                Ok(blob) => return Ok(blob),
                Err(UpstreamError::NotFound) => {}
                Err(e) => {
                    self.counters.upstream_errors(1);
                    outage = Some(e);
                }
            }
        }
        Err(match outage {
            Some(e) => unavailable(t, &e),
            None => blob_unknown(t, digest),
        })
    }
}

/// `GET` of a blob the store lacks (see the module's docs).
pub(crate) async fn read_blob(
    s: &Arc<Shared>,
    t: &Target,
    digest: &Digest,
    range: Option<ByteRange>,
    miss: Error,
) -> Result<BlobRead> {
    if !s.mirrors.fetches(t) {
        return Err(miss);
    }
    let deadline = Instant::now() + s.fetch.wait;
    let mut waited = false;
    loop {
        if s.origin.adopt_blob(&t.local, digest).await?.is_some() {
            if waited {
                s.counters.lease_waits(1);
            } else {
                s.counters.adopted(1);
            }
            return s.inner.read_blob(&t.local, digest, range).await;
        }
        if let Some(lease) = s.origin.try_fetch_lease(digest, s.fetch.lease).await? {
            return fetch(s, t, digest, range, lease).await;
        }
        if Instant::now() >= deadline {
            s.counters.passthrough(1);
            return passthrough(s, t, digest, range).await;
        }
        waited = true;
        tokio::time::sleep(s.fetch.poll).await;
    }
}

/// This process holds the lease: fetch, store, and stream to the client.
async fn fetch(
    s: &Arc<Shared>,
    t: &Target,
    digest: &Digest,
    range: Option<ByteRange>,
    lease: FetchLease,
) -> Result<BlobRead> {
    let blob = match s.upstream_blob(t, digest).await {
        Ok(blob) => blob,
        Err(e) => {
            release(s, lease).await;
            return Err(e);
        }
    };
    match (blob.size, range) {
        (Some(size), None) => {
            let (tx, rx) = mpsc::channel(8);
            tokio::spawn(tee(
                s.clone(),
                t.clone(),
                digest.clone(),
                blob.body,
                size,
                lease,
                Some(tx),
            ));
            Ok(BlobRead {
                info: BlobInfo {
                    digest: digest.clone(),
                    size,
                },
                range: 0..size,
                partial: false,
                body: receiver(rx),
            })
        }
        // A range, or a size not known in advance: store it whole first,
        // then answer from the store.
        (size, range) => {
            let size = size.unwrap_or(u64::MAX);
            tee(
                s.clone(),
                t.clone(),
                digest.clone(),
                blob.body,
                size,
                lease,
                None,
            )
            .await?;
            s.inner.read_blob(&t.local, digest, range).await
        }
    }
}

async fn release(s: &Shared, lease: FetchLease) {
    if let Err(e) = s.origin.release_fetch_lease(lease).await {
        tracing::warn!(error = %e, "releasing a fetch lease (it expires by itself)");
    }
}

/// Copy an upstream body into the store's verified put and, if there is
/// one, to the client, the last chunk held back until the store has hashed
/// the body to `digest` (or, from a store that cannot tell, until the put
/// succeeds).
/// `size` is the upstream's `Content-Length` (`u64::MAX`: not given, and
/// then not checked).
async fn tee(
    s: Arc<Shared>,
    t: Target,
    digest: Digest,
    mut body: ByteStream,
    size: u64,
    lease: FetchLease,
    mut client: Option<mpsc::Sender<Result<Bytes>>>,
) -> Result<()> {
    let (store_tx, store_rx) = mpsc::channel::<Result<Bytes>>(8);
    let (notice, verdict) = BodyVerified::channel();
    let mut put = {
        let (inner, local, digest) = (s.inner.clone(), t.local.clone(), digest.clone());
        let expected = (size != u64::MAX).then_some(size);
        tokio::spawn(async move {
            inner
                .put_blob_with_notice(&local, &digest, receiver(store_rx), expected, notice)
                .await
        })
    };
    let mut held: Option<Bytes> = None;
    let mut renewed = Instant::now();
    while let Some(item) = body.next().await {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(e) => {
                // The put discards what it has; its error is the client's.
                let _ = store_tx.send(Err(e)).await;
                break;
            }
        };
        s.counters.bytes_fetched(chunk.len() as u64);
        if store_tx.send(Ok(chunk.clone())).await.is_err() {
            // The put ended early (its error says why).
            break;
        }
        if let Some(prev) = held.replace(chunk)
            && let Some(tx) = &client
            && tx.send(Ok(prev)).await.is_err()
        {
            // The client went away; the fetch goes on for the store.
            client = None;
        }
        if renewed.elapsed() > s.fetch.lease / 3 {
            renewed = Instant::now();
            if let Err(e) = s.origin.renew_fetch_lease(&lease, s.fetch.lease).await {
                tracing::warn!(error = %e, %digest, "renewing a fetch lease");
            }
        }
    }
    drop(store_tx);
    // The client's response ends as soon as the bytes are known good: the
    // store's notice comes before its flush and commit, which the client
    // need not wait for.
    let joined = tokio::select! {
        told = verdict.verified() => {
            if told && let (Some(tx), Some(last)) = (client.take(), held.take()) {
                let _ = tx.send(Ok(last)).await;
            }
            None
        }
        joined = &mut put => Some(joined),
    };
    let stored = match joined {
        Some(joined) => joined,
        None => put.await,
    }
    .unwrap_or_else(|e| {
        Err(Error::new(
            ErrorKind::Internal,
            format!("storing a fetched blob: {e}"),
        ))
    });
    release(&s, lease).await;
    match stored {
        Ok(_) => {
            s.counters.blob_fetches(1);
            if let (Some(tx), Some(last)) = (client, held) {
                let _ = tx.send(Ok(last)).await;
            }
            Ok(())
        }
        Err(e) => {
            if matches!(e.kind(), ErrorKind::DigestInvalid | ErrorKind::SizeInvalid) {
                s.counters.rejected(1);
            }
            tracing::warn!(repository = %t.local, %digest, error = %e, "a blob fetched upstream was not stored");
            match client {
                Some(tx) => {
                    let _ = tx.send(Err(Error::new(e.kind(), e.message()))).await;
                    Err(e)
                }
                // Gone, or sent the whole verified blob already: the next
                // pull fetches again.
                None => Err(e),
            }
        }
    }
}

/// Another process's fetch took too long: stream from upstream without
/// storing, verified on the way (the last chunk held back until the digest
/// matched).
async fn passthrough(
    s: &Arc<Shared>,
    t: &Target,
    digest: &Digest,
    range: Option<ByteRange>,
) -> Result<BlobRead> {
    if range.is_some() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("blob {digest} is being fetched by another process; retry the range request"),
        ));
    }
    let blob = s.upstream_blob(t, digest).await?;
    let Some(size) = blob.size else {
        return Err(unavailable(
            t,
            &UpstreamError::Invalid("the upstream sent no Content-Length for a blob".to_owned()),
        ));
    };
    let (tx, rx) = mpsc::channel(8);
    let (s, digest_c) = (s.clone(), digest.clone());
    let mut body = blob.body;
    tokio::spawn(async move {
        let mut hasher = Hasher::new(digest_c.algorithm());
        let (mut held, mut len): (Option<Bytes>, u64) = (None, 0);
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    s.counters.bytes_fetched(chunk.len() as u64);
                    hasher.update(&chunk);
                    len += chunk.len() as u64;
                    if let Some(prev) = held.replace(chunk)
                        && tx.send(Ok(prev)).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
        let got = hasher.finish();
        if got == digest_c && len == size {
            if let Some(last) = held {
                let _ = tx.send(Ok(last)).await;
            }
        } else {
            s.counters.rejected(1);
            let _ = tx
                .send(Err(Error::new(
                    ErrorKind::DigestInvalid,
                    format!("the upstream sent {len} bytes hashing to {got} for {digest_c}"),
                )))
                .await;
        }
    });
    Ok(BlobRead {
        info: BlobInfo {
            digest: digest.clone(),
            size,
        },
        range: 0..size,
        partial: false,
        body: receiver(rx),
    })
}

/// A channel's receiving end as a byte stream.
fn receiver(rx: mpsc::Receiver<Result<Bytes>>) -> ByteStream {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
