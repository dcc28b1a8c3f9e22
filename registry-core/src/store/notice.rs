//! [`BodyVerified`]: word from a store that a blob's body hashed to its
//! digest, sent before the store has made the blob durable and visible.

use futures::channel::oneshot;

/// The sending half of a one-time notice that a blob's body has been
/// received whole, is as long as declared, and hashes to its digest.
///
/// Given to [`BlobStore::put_blob_with_notice`](super::BlobStore::put_blob_with_notice).
/// A store that can tell sends it once the last byte is hashed, before
/// its commit (an `fsync`, a rename, an object store's copy); one that
/// cannot drops it, and the caller learns from the put's result as with
/// [`put_blob`](super::BlobStore::put_blob). The notice is never sent for
/// a body that did not verify, so whoever waits on [`Verdict`] may
/// release the last bytes of the same content to a client on it (a
/// pull-through mirror does); that the blob is then stored is still only
/// what the put's result says.
#[derive(Debug)]
pub struct BodyVerified(oneshot::Sender<()>);

/// The receiving half of a [`BodyVerified`] notice.
#[derive(Debug)]
pub struct Verdict(oneshot::Receiver<()>);

impl BodyVerified {
    /// A notice and the verdict it resolves.
    pub fn channel() -> (BodyVerified, Verdict) {
        let (tx, rx) = oneshot::channel();
        (BodyVerified(tx), Verdict(rx))
    }

    /// Tell the waiter that the body verified.
    pub fn tell(self) {
        let _ = self.0.send(());
    }
}

impl Verdict {
    /// `true` once the body verified; `false` when the store dropped the
    /// notice without telling (it could not tell early, or the body did not
    /// verify: the put's result says which).
    pub async fn verified(self) -> bool {
        self.0.await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn told_is_verified_and_dropped_is_not() {
        let (notice, verdict) = BodyVerified::channel();
        notice.tell();
        assert!(futures::executor::block_on(verdict.verified()));
        let (notice, verdict) = BodyVerified::channel();
        drop(notice);
        assert!(!futures::executor::block_on(verdict.verified()));
    }
}
