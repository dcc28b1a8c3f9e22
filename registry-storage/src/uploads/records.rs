//! Reading an upload's records (the last one, or the whole chain) and
//! sealing it for its completion.

use registry_core::{Algorithm, Error, ErrorKind, RepositoryName, Result, Upload, UploadId};

use super::{Chain, PartRecord, Tail, completing, corrupt_part, unknown};
use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::{Key, part_offset};

impl OpendalStore {
    /// An upload's state after its last record, for a new chunk or a status
    /// request. A sealed upload is being completed and takes no chunk any
    /// more: [`registry_core::ErrorKind::BlobUploadUnknown`].
    pub(crate) async fn load_tail(&self, repo: &RepositoryName, id: &UploadId) -> Result<Tail> {
        let last = match self.part_offsets(repo, id).await?.last() {
            None => None,
            Some(&off) => Some(
                self.read_part(repo, id, off)
                    .await?
                    .ok_or_else(completing)?,
            ),
        };
        Ok(Tail {
            upload: resume(id, last.as_ref())?,
            last,
        })
    }

    /// Every record of an upload, checked to form one chain from offset 0,
    /// and whether a seal ends it.
    pub(crate) async fn load_chain(&self, repo: &RepositoryName, id: &UploadId) -> Result<Chain> {
        let offsets = self.part_offsets(repo, id).await?;
        let mut parts = Vec::with_capacity(offsets.len());
        let mut sealed = false;
        for (i, &off) in offsets.iter().enumerate() {
            match self.read_part(repo, id, off).await? {
                Some(part) => parts.push(part),
                // A seal can only be the last record.
                None if i + 1 == offsets.len() => sealed = true,
                None => return Err(corrupt_part(id, off)),
            }
        }
        let mut expect = 0;
        for p in &parts {
            if p.start != expect || p.end < p.start {
                return Err(Error::new(
                    ErrorKind::BlobUploadInvalid,
                    format!("upload {id} has a broken chunk chain at {expect}"),
                ));
            }
            expect = p.end;
        }
        Ok(Chain {
            upload: resume(id, parts.last())?,
            parts,
            sealed,
        })
    }

    /// The offsets of an upload's records, in order, once it is known to
    /// exist.
    async fn part_offsets(&self, repo: &RepositoryName, id: &UploadId) -> Result<Vec<u64>> {
        if !self.exists(Key::UploadStartedAt(repo, id)).await? {
            return Err(unknown());
        }
        let mut offsets: Vec<u64> = self
            .list_names(Key::UploadPartsDir(repo, id))
            .await?
            .iter()
            .filter_map(|n| part_offset(n))
            .collect();
        offsets.sort_unstable();
        Ok(offsets)
    }

    /// The record at `off`; `None` for a seal (an empty record, see
    /// [`OpendalStore::seal_upload`]).
    pub(super) async fn read_part(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        off: u64,
    ) -> Result<Option<PartRecord>> {
        let read = {
            let _serial = self.backend().record_lock().await;
            self.operator()
                .read(&Key::UploadPart(repo, id, off).path())
                .await
        };
        let buf = read.map_err(|e| {
            if is_not_found(&e) {
                unknown()
            } else {
                storage("reading upload part")(e)
            }
        })?;
        if buf.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&buf.to_vec())
            .map(Some)
            .map_err(|_| corrupt_part(id, off))
    }

    /// Seal an upload at offset `end` for its completion: an empty record
    /// at `parts/<end>`, created if absent, so that a `PATCH` racing the
    /// completion loses the claim on that offset and is told the upload is
    /// unknown, instead of being accepted and then left out of the blob.
    /// `Ok(false)` if a chunk claimed `end` first (reload and try again).
    pub(super) async fn seal_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        end: u64,
    ) -> Result<bool> {
        let key = Key::UploadPart(repo, id, end);
        if self
            .create_object_exclusive(&key.path(), Vec::new())
            .await?
        {
            return Ok(true);
        }
        // Sealed by another completion of the same upload: go on, as both
        // commit the same verified content.
        Ok(self.read_part(repo, id, end).await?.is_none())
    }
}

/// The upload as its last record left it (a fresh one without records).
fn resume(id: &UploadId, last: Option<&PartRecord>) -> Result<Upload> {
    let Some(last) = last else {
        return Ok(Upload::start(Algorithm::Sha256));
    };
    let alg: Algorithm = last.alg.parse().map_err(|_| corrupt_part(id, last.start))?;
    let state = hex::decode(&last.state).map_err(|_| corrupt_part(id, last.start))?;
    Upload::resume(alg, last.end, &state)
}
