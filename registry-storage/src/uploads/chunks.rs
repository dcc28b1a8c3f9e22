//! Receiving a chunk: a `PATCH`, claimed with its record, or the body of a
//! completing `PUT`, never claimed.

use registry_core::upload::Chunk;
use registry_core::{
    Algorithm, BodyVerified, ByteStream, Digest, Error, ErrorKind, RepositoryName, Result, Upload,
    UploadId,
};

use super::{Chain, PartRecord, Tail, completing, unknown};
use crate::OpendalStore;
use crate::backend::ChunkFile;
use crate::layout::Key;
use crate::verify::Verified;

impl OpendalStore {
    /// Accept a chunk (`PATCH`) after `tail`: store its bytes, then claim
    /// its offset by creating its record. Of several writers racing for one
    /// offset only the one that creates the record wins; the others' bytes
    /// are removed and they are told the range is taken (or, if a
    /// completion sealed the offset, that the upload is gone). An empty
    /// body changes nothing.
    pub(super) async fn accept_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        tail: &mut Tail,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<()> {
        let mut chunk = tail.upload.begin_chunk(start)?;
        let from = chunk.start();
        let file = self
            .backend()
            .place_chunk(tail.last.as_ref(), from, || {
                Ok(Key::UploadChunk(repo, id, from, &crate::nonce()?).path())
            })
            .await?;
        let Some(record) = self
            .receive(&file, &tail.upload, &mut chunk, body, expected_len, None)
            .await?
        else {
            return Ok(());
        };
        match self.claim(repo, id, &record).await {
            Ok(true) => {
                // A claim that lands after a completion or a cancel ended
                // the upload (removing its seal with it) is on an upload
                // that is gone: so is the chunk.
                if !self.exists(Key::UploadStartedAt(repo, id)).await? {
                    self.backend().discard_chunk(&file).await;
                    let _ = self
                        .delete_key(Key::UploadPart(repo, id, record.start))
                        .await;
                    return Err(unknown());
                }
                tail.upload.commit_chunk(chunk)
            }
            Ok(false) => {
                self.backend().discard_chunk(&file).await;
                if self.read_part(repo, id, record.start).await?.is_none() {
                    return Err(completing());
                }
                Err(Error::new(
                    ErrorKind::RangeInvalid,
                    format!(
                        "another writer already stored the chunk at offset {}",
                        record.start
                    ),
                ))
            }
            Err(e) => {
                self.backend().discard_chunk(&file).await;
                Err(e)
            }
        }
    }

    /// Receive the body of a completing `PUT` onto the end of `chain`. It
    /// gets no record (the digest is checked before anything becomes
    /// visible), so no one else can append to its file. `Ok(true)` if it
    /// held bytes and joined the chain. `notice` is told once the body
    /// hashes to its digest (see [`Verified::tell_when_it_hashes_to`]).
    pub(super) async fn receive_last_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        chain: &mut Chain,
        body: ByteStream,
        expected_len: Option<u64>,
        notice: Option<(&Digest, BodyVerified)>,
    ) -> Result<bool> {
        let mut chunk = chain.upload.begin_chunk(None)?;
        let file = self
            .backend()
            .place_chunk(chain.parts.last(), chunk.start(), || {
                Ok(Key::UploadLast(repo, id, &crate::nonce()?).path())
            })
            .await?;
        let Some(record) = self
            .receive(&file, &chain.upload, &mut chunk, body, expected_len, notice)
            .await?
        else {
            return Ok(false);
        };
        chain.upload.commit_chunk(chunk)?;
        chain.parts.push(record);
        Ok(true)
    }

    /// Write `body` into `file` as `chunk` of `upload`, hashed and its
    /// length checked on the way: the chunk's record, or `None` for an
    /// empty body (whose file is discarded). On failure nothing of it
    /// remains.
    async fn receive(
        &self,
        file: &ChunkFile,
        upload: &Upload,
        chunk: &mut Chunk,
        body: ByteStream,
        expected_len: Option<u64>,
        notice: Option<(&Digest, BodyVerified)>,
    ) -> Result<Option<PartRecord>> {
        // Flushed now, or by the commit (see `LocalFs::deferred_flush`).
        let unflushed_boot = self.backend().deferred_flush().map(str::to_owned);
        let mut verified = Verified::new(body, chunk, expected_len);
        if let Some((digest, notice)) = notice {
            verified = verified.tell_when_it_hashes_to(digest, notice);
        }
        self.backend()
            .write_chunk(file, unflushed_boot.is_none(), verified)
            .await?;
        if chunk.is_empty() {
            self.backend().discard_chunk(file).await;
            return Ok(None);
        }
        Ok(Some(PartRecord {
            start: chunk.start(),
            end: chunk.end(),
            chunk: file.path.clone(),
            at: file.at(),
            unflushed_boot,
            alg: upload
                .algorithm()
                .unwrap_or(Algorithm::Sha256)
                .as_str()
                .to_owned(),
            state: hex::encode(chunk.save_hash_state()),
        }))
    }

    /// Create a chunk's record: `Ok(true)` if this writer won its offset.
    async fn claim(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        record: &PartRecord,
    ) -> Result<bool> {
        let json = serde_json::to_vec(record)
            .map_err(|e| Error::new(ErrorKind::Internal, "encoding part record").with_source(e))?;
        self.create_object_exclusive(&Key::UploadPart(repo, id, record.start).path(), json)
            .await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::StreamExt;
    use registry_core::{ErrorKind, UploadStore};

    use super::*;

    /// A `PATCH` that read the upload's state before a cancel (or a
    /// completion) ended it, and claims its offset after: the seal went
    /// with the upload, so only the check after the claim stops it.
    #[tokio::test]
    async fn a_claim_after_the_upload_ended_is_upload_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let op = opendal::Operator::new(opendal::services::Fs::default().root(root)).unwrap();
        let s = OpendalStore::from_operator(op);
        let r = RepositoryName::parse("late/claim").unwrap();
        let id = s.start_upload(&r).await.unwrap().id;
        let mut tail = s.load_tail(&r, &id).await.unwrap();
        s.cancel_upload(&r, &id).await.unwrap();
        let body = futures::stream::iter([Ok(Bytes::from_static(b"late"))]).boxed();
        let e = s
            .accept_chunk(&r, &id, &mut tail, Some(0), body, Some(4))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown, "{e}");
        assert_eq!(tail.upload.offset(), 0);
        assert!(
            !s.exists(Key::UploadPart(&r, &id, 0)).await.unwrap(),
            "the late record is removed"
        );
    }
}
