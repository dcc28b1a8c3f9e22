//! Completing an upload: seal it, receive the completing body, check the
//! digest; and ending uploads (completed, cancelled or failed).

use futures::StreamExt;
use registry_core::upload::Completed;
use registry_core::{
    Algorithm, BodyVerified, ByteStream, Digest, Error, ErrorKind, Hasher, RepositoryName, Result,
    UploadId,
};

use super::{Chain, PartRecord, unknown};
use crate::OpendalStore;
use crate::layout::Key;

/// How often a completion tries to seal an upload that chunks keep
/// extending; past that it completes what it has.
const SEAL_ATTEMPTS: usize = 4;

impl OpendalStore {
    /// Load a whole upload, receive the completing request's body, and
    /// check the digest: the completed upload, its parts, and whether the
    /// last part is sealed (has no record). A mismatch ends the upload.
    /// `notice` is told as soon as a single-request body hashes to `digest`
    /// (with earlier parts the completion alone decides; it is dropped).
    pub(super) async fn verify_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
        notice: Option<BodyVerified>,
    ) -> Result<(Completed, Vec<PartRecord>, bool)> {
        // One load of the whole chain; a last chunk extends it in place.
        let mut sealed_at = None;
        let received = async {
            let mut chain = self.load_chain(repo, id).await?;
            // A single-request push (an empty upload completed with a body)
            // is not sealed: a seal costs a folder and a file per push, and
            // a chunk racing it can only come from a client that sends the
            // same blob's first bytes twice at once; the blob it gets is
            // still exactly the content its digest names.
            let single_request = chain.parts.is_empty() && last_chunk.is_some();
            for _ in 0..SEAL_ATTEMPTS {
                if chain.sealed || single_request {
                    break;
                }
                if self.seal_upload(repo, id, chain.upload.offset()).await? {
                    sealed_at = Some(chain.upload.offset());
                    break;
                }
                // A chunk got there first: it belongs to the upload.
                chain = self.load_chain(repo, id).await?;
            }
            let mut sealed = false;
            if let Some((body, len)) = last_chunk {
                let notice = notice.filter(|_| single_request).map(|n| (digest, n));
                sealed = self
                    .receive_last_chunk(repo, id, &mut chain, body, len, notice)
                    .await?;
            }
            Ok((chain, sealed))
        }
        .await;
        let (
            Chain {
                mut upload, parts, ..
            },
            sealed,
        ) = match received {
            Ok(r) => r,
            Err(e) => {
                // The completing body never arrived whole: unseal, so the
                // client may go on with chunks or complete again.
                if let Some(end) = sealed_at {
                    let _ = self.delete_key(Key::UploadPart(repo, id, end)).await;
                }
                return Err(self.upload_error(repo, id, e).await);
            }
        };
        let verified = if upload.algorithm() == Some(digest.algorithm())
            && !self.written_before_reboot(&parts)
        {
            upload.finish(digest)
        } else {
            // The two cases where stored bytes are read again: the client
            // chose another algorithm than the running hash, or chunks were
            // written unflushed before the machine restarted, so their
            // bytes may not be what their records say.
            let actual = self.rehash(&parts, digest.algorithm()).await?;
            upload.finish_with(actual, digest)
        };
        match verified {
            Ok(completed) => Ok((completed, parts, sealed)),
            Err(e) => {
                // Checked before ending the upload: if it is gone already,
                // a cancel or another completion raced this one, and what
                // was loaded may be a partly removed chain.
                if !self.exists(Key::UploadStartedAt(repo, id)).await? {
                    return Err(unknown());
                }
                if let Err(end) = self.end_upload(repo, id).await {
                    tracing::warn!(upload = %id, error = %end, "upload left for the purge sweep");
                }
                Err(e)
            }
        }
    }

    /// End an upload: remove `startedat` first (from then on every request
    /// finds the upload unknown), then the rest of its folder.
    pub(super) async fn end_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.delete_key(Key::UploadStartedAt(repo, id)).await?;
        self.delete_dir(Key::UploadDir(repo, id)).await
    }

    /// The answer for a request on upload `id` that failed with `e`: if the
    /// upload is gone, a cancel or completion raced it and the spec's answer
    /// is `BLOB_UPLOAD_UNKNOWN`; otherwise `e` stands.
    pub(super) async fn upload_error(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        e: Error,
    ) -> Error {
        if e.kind() == ErrorKind::BlobUploadUnknown {
            return e;
        }
        match self.exists(Key::UploadStartedAt(repo, id)).await {
            Ok(false) => unknown(),
            _ => e,
        }
    }

    /// Whether any part was written without a flush in another boot of the
    /// machine than this one (or this one's is unknown).
    fn written_before_reboot(&self, parts: &[PartRecord]) -> bool {
        let now = self.backend().boot();
        parts
            .iter()
            .any(|p| p.unflushed_boot.is_some() && p.unflushed_boot.as_deref() != now)
    }

    async fn rehash(&self, parts: &[PartRecord], alg: Algorithm) -> Result<Digest> {
        let mut h = Hasher::new(alg);
        let mut bytes = self.parts_stream(parts);
        while let Some(b) = bytes.next().await {
            h.update(&b?);
        }
        Ok(h.finish())
    }
}
