//! Uploads whose state lives in the store, so any process can continue any
//! upload.
//!
//! Each accepted chunk is two objects under `_uploads/<id>/`:
//! - its bytes, in `chunks/<start>-<nonce>` (a name no other writer can
//!   pick) or, on the filesystem, appended to the previous chunk's file;
//! - `parts/<start>`: the chunk's record (where it ends, which file and
//!   offset hold its bytes, the running hash state after it), created with
//!   create-if-absent *after* the bytes are stored.
//!
//! The record is the claim: two writers racing for one offset both store
//! their bytes, but only one creates the record; the other removes its bytes
//! and is told the range is invalid (HTTP 416). A process that dies
//! mid-chunk leaves orphan bytes and no record, so the upload stays where it
//! was. Because a record can only be created at the current end of the
//! chain, the sorted records always form one contiguous chain from offset 0,
//! and the last one holds the offset and hash state to continue from:
//! nothing already received is read again.
//!
//! **Appends (filesystem only).** Writing every chunk to its own file would
//! make the commit copy them all into one blob file: every byte written
//! twice. Instead a chunk that continues the previous chunk's file is
//! appended to it, under a lease: the empty file `<file>.append-<offset>`,
//! created with `O_EXCL`. Only the lease holder writes that file past that
//! offset; a writer that loses the lease falls back to a file of its own
//! (and then to the record race above). A failed append cuts the file back
//! and gives the lease up; a writer killed mid-append keeps it forever, so
//! later chunks go to a new file. When every part lies in one file from
//! offset 0, the commit renames that file into place: no byte is copied.
//! Chunk bytes are flushed once, by the commit, rather than per chunk; each
//! record names the boot it was written in, so a commit after a reboot
//! knows to read the bytes again (see `localfs`).
//!
//! **The last chunk** (the body of the final `PUT`) gets no record: the
//! digest is checked before anything becomes visible, so no claim is
//! needed, and with no record naming it no one else can append to it.

use async_trait::async_trait;
use futures::StreamExt;
use registry_core::upload::Chunk;
use registry_core::{
    Algorithm, BlobInfo, ByteStream, Digest, Error, ErrorKind, Hasher, RepositoryName, Result,
    Upload, UploadId, UploadStatus, UploadStore,
};
use serde::{Deserialize, Serialize};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::{Key, part_offset};

/// The record of one accepted chunk (`parts/<start>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartRecord {
    /// Offset of the chunk's first byte.
    pub start: u64,
    /// Offset after its last byte.
    pub end: u64,
    /// Path of the file holding the chunk's bytes.
    pub chunk: String,
    /// Offset of the chunk's first byte in that file (0 unless appended).
    #[serde(default)]
    pub at: u64,
    /// On the filesystem: the boot of the machine in which the bytes were
    /// written and not flushed (the commit flushes them). `None`: flushed
    /// before this record was made, or a backend that decides itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unflushed_boot: Option<String>,
    /// Algorithm of the running hash.
    pub alg: String,
    /// Running hash state after this chunk, hex.
    pub state: String,
}

impl PartRecord {
    /// Where the chunk's bytes lie in its file.
    pub(crate) fn file_range(&self) -> std::ops::Range<u64> {
        self.at..self.at + (self.end - self.start)
    }
}

/// The lease that lets one writer append to `file` from offset `at`.
pub(crate) fn append_lease(file: &str, at: u64) -> String {
    format!("{file}.append-{at:020}")
}

/// An upload as found in the store.
pub(crate) struct Loaded {
    pub upload: Upload,
    /// The chunks' records, in order (without a seal).
    pub parts: Vec<PartRecord>,
    /// Whether a completion sealed it (see [`OpendalStore::seal_upload`]).
    pub sealed: bool,
}

fn unknown() -> Error {
    Error::new(ErrorKind::BlobUploadUnknown, "upload unknown")
}

fn completing() -> Error {
    Error::new(
        ErrorKind::BlobUploadUnknown,
        "upload unknown: it is being completed",
    )
}

impl OpendalStore {
    /// Load an upload: check it exists, then read its part records (all of
    /// them when `all`, else only the last).
    pub(crate) async fn load_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        all: bool,
    ) -> Result<Loaded> {
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
        let wanted: &[u64] = if all {
            &offsets
        } else {
            offsets.last().map(std::slice::from_ref).unwrap_or(&[])
        };
        let mut parts = Vec::with_capacity(wanted.len());
        let mut sealed = false;
        for &off in wanted {
            match self.read_part(repo, id, off).await? {
                Some(part) => parts.push(part),
                // A seal can only be the last record.
                None if off == offsets[offsets.len() - 1] => sealed = true,
                None => return Err(corrupt_part(id, off)),
            }
        }
        if sealed && !all {
            // Being completed: no chunk may join it any more.
            return Err(completing());
        }
        if all {
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
        }
        let upload = match parts.last() {
            None => Upload::start(Algorithm::Sha256),
            Some(last) => {
                let alg = match last.alg.as_str() {
                    "sha256" => Algorithm::Sha256,
                    "sha512" => Algorithm::Sha512,
                    _ => return Err(corrupt_part(id, last.start)),
                };
                let state = hex::decode(&last.state).map_err(|_| corrupt_part(id, last.start))?;
                Upload::resume(alg, last.end, &state)?
            }
        };
        Ok(Loaded {
            upload,
            parts,
            sealed,
        })
    }

    /// The record at `off`; `None` for a seal (an empty record, see
    /// [`OpendalStore::seal_upload`]).
    async fn read_part(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        off: u64,
    ) -> Result<Option<PartRecord>> {
        let buf = self
            .op()
            .read(&Key::UploadPart(repo, id, off).path())
            .await
            .map_err(|e| {
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
    async fn seal_upload(&self, repo: &RepositoryName, id: &UploadId, end: u64) -> Result<bool> {
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

    /// Stream `body` into a new object at `path` (or, on the filesystem,
    /// into the existing file at `path` from offset `at`), feeding `chunk`
    /// as bytes arrive and checking `expected_len`. On any failure the
    /// written bytes are removed and the error returned.
    pub(crate) async fn stream_to_object(
        &self,
        path: &str,
        at: Option<u64>,
        flush: bool,
        mut body: ByteStream,
        chunk: &mut Chunk,
        expected_len: Option<u64>,
    ) -> Result<()> {
        if let Some(local) = &self.inner.local {
            let result = local
                .stream_to_file(path, at, flush, body, |bytes| {
                    if let Some(max) = expected_len
                        && chunk.len() + bytes.len() as u64 > max
                    {
                        return Err(size_mismatch(max));
                    }
                    chunk.update(bytes);
                    Ok(())
                })
                .await;
            return result.and_then(|()| match expected_len {
                Some(want) if chunk.len() != want => Err(size_mismatch(want)),
                _ => Ok(()),
            });
        }
        debug_assert!(at.is_none(), "appends are for the filesystem only");
        let mut w = self.writer(&self.inner.exclusive, path).await?;
        let result: Result<()> = async {
            while let Some(item) = body.next().await {
                let bytes = item?;
                if let Some(max) = expected_len
                    && chunk.len() + bytes.len() as u64 > max
                {
                    return Err(size_mismatch(max));
                }
                chunk.update(&bytes);
                w.write(bytes)
                    .await
                    .map_err(storage("writing upload chunk"))?;
            }
            if let Some(want) = expected_len
                && chunk.len() != want
            {
                return Err(size_mismatch(want));
            }
            w.close().await.map_err(storage("closing upload chunk"))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = w.abort().await;
            let _ = self.inner.exclusive.delete(path).await;
        }
        result
    }

    pub(crate) async fn writer(
        &self,
        op: &opendal::Operator,
        path: &str,
    ) -> Result<opendal::Writer> {
        let mut fut = op.writer_with(path);
        if let Some(size) = self.inner.write_chunk_size {
            fut = fut.chunk(size);
        }
        fut.await.map_err(storage("opening writer"))
    }

    /// Receive one chunk after `prev` (the chain's last part, if any).
    /// With `claim`, create its record: the chunk is accepted only if this
    /// writer wins its offset. Without (the last chunk of a completing
    /// upload), the record is returned but never stored. Returns `None` for
    /// an empty body.
    #[allow(clippy::too_many_arguments)]
    async fn receive_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        upload: &mut Upload,
        prev: Option<&PartRecord>,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
        claim: bool,
    ) -> Result<Option<PartRecord>> {
        let mut chunk = upload.begin_chunk(start)?;
        let (path, at, lease) = match self.try_lease(prev, chunk.start()).await? {
            Some((file, at, lease)) => (file, Some(at), Some(lease)),
            None => {
                let nonce = crate::nonce()?;
                let path = if claim {
                    Key::UploadChunk(repo, id, chunk.start(), &nonce).path()
                } else {
                    Key::UploadLast(repo, id, &nonce).path()
                };
                (path, None, None)
            }
        };
        // Undo this chunk's bytes: cut an appended file back (and give the
        // lease up), or remove a file of its own.
        let undo = || async {
            match (&self.inner.local, at, &lease) {
                (Some(local), Some(at), Some(lease)) => {
                    if local.discard(&path, Some(at)).await.is_ok() {
                        let _ = local.remove(lease).await;
                    }
                }
                _ => {
                    let _ = self.inner.exclusive.delete(&path).await;
                }
            }
        };
        // Flushed now, or by the commit (see `LocalFs::deferred_flush`).
        let unflushed_boot = self
            .inner
            .local
            .as_ref()
            .and_then(|l| l.deferred_flush())
            .map(str::to_owned);
        if let Err(e) = self
            .stream_to_object(
                &path,
                at,
                unflushed_boot.is_none(),
                body,
                &mut chunk,
                expected_len,
            )
            .await
        {
            if let (Some(local), Some(lease)) = (&self.inner.local, &lease) {
                // The file was already cut back.
                let _ = local.remove(lease).await;
            }
            return Err(e);
        }
        if chunk.is_empty() {
            undo().await;
            return Ok(None);
        }
        let record = PartRecord {
            start: chunk.start(),
            end: chunk.end(),
            chunk: path.clone(),
            at: at.unwrap_or(0),
            unflushed_boot,
            alg: upload
                .algorithm()
                .unwrap_or(Algorithm::Sha256)
                .as_str()
                .to_owned(),
            state: hex::encode(chunk.save_hash_state()),
        };
        if !claim {
            upload.commit_chunk(chunk)?;
            return Ok(Some(record));
        }
        let json = serde_json::to_vec(&record)
            .map_err(|e| Error::new(ErrorKind::Internal, "encoding part record").with_source(e))?;
        let claimed = self
            .create_object_exclusive(&Key::UploadPart(repo, id, record.start).path(), json)
            .await;
        match claimed {
            Ok(true) => {
                upload.commit_chunk(chunk)?;
                Ok(Some(record))
            }
            Ok(false) => {
                undo().await;
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
                undo().await;
                Err(e)
            }
        }
    }

    /// On the filesystem, try to take the lease to append a chunk starting
    /// at `start` to the file of `prev`: `(file, offset in it, lease)`.
    async fn try_lease(
        &self,
        prev: Option<&PartRecord>,
        start: u64,
    ) -> Result<Option<(String, u64, String)>> {
        let (Some(local), Some(prev)) = (&self.inner.local, prev) else {
            return Ok(None);
        };
        if prev.end != start {
            return Ok(None);
        }
        let at = prev.file_range().end;
        let lease = append_lease(&prev.chunk, at);
        Ok(local
            .create_marker(&lease)
            .await?
            .then(|| (prev.chunk.clone(), at, lease)))
    }
}

#[async_trait]
impl UploadStore for OpendalStore {
    async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus> {
        let id = UploadId::from_random(crate::random_bytes()?);
        let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
        if !self
            .create_object_exclusive(&Key::UploadStartedAt(repo, &id).path(), now.into_bytes())
            .await?
        {
            return Err(Error::new(ErrorKind::Internal, "upload id collision"));
        }
        Ok(UploadStatus { id, offset: 0 })
    }

    async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus> {
        let loaded = self.load_upload(repo, id, false).await?;
        Ok(UploadStatus {
            id: id.clone(),
            offset: loaded.upload.offset(),
        })
    }

    async fn write_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus> {
        let mut loaded = self.load_upload(repo, id, false).await?;
        let prev = loaded.parts.last();
        let received = self
            .receive_chunk(
                repo,
                id,
                &mut loaded.upload,
                prev,
                start,
                body,
                expected_len,
                true,
            )
            .await;
        if let Err(e) = received {
            return Err(self.upload_error(repo, id, e).await);
        }
        Ok(UploadStatus {
            id: id.clone(),
            offset: loaded.upload.offset(),
        })
    }

    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        let (completed, parts, sealed) = self.verify_upload(repo, id, digest, last_chunk).await?;
        let info = BlobInfo {
            digest: completed.digest,
            size: completed.size,
        };
        if let Err(e) = self
            .commit_blob(&info.digest, info.size, &parts, sealed)
            .await
        {
            // A second completion of this upload may have committed the
            // blob (taking the files this one was renaming or copying), or
            // a cancel removed them. The content was verified, so if the
            // blob is there now, this completion succeeded too.
            if self.size_of(Key::BlobData(&info.digest)).await? != Some(info.size) {
                return Err(self.upload_error(repo, id, e).await);
            }
        }
        self.write_link(Key::LayerLink(repo, &info.digest), &info.digest)
            .await?;
        self.end_upload(repo, id).await?;
        Ok(info)
    }

    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        if !self.exists(Key::UploadStartedAt(repo, id)).await? {
            return Err(unknown());
        }
        self.end_upload(repo, id).await
    }
}

impl OpendalStore {
    /// Load a whole upload, receive the completing request's body, and
    /// check the digest: the completed upload, its parts, and whether the
    /// last part is sealed (has no record). A mismatch ends the upload.
    async fn verify_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<(registry_core::upload::Completed, Vec<PartRecord>, bool)> {
        // One load of the whole chain; a last chunk extends it in place.
        let mut sealed_at = None;
        let received = async {
            let mut loaded = self.load_upload(repo, id, true).await?;
            // A single-request push (an empty upload completed with a body)
            // is not sealed: a seal costs a folder and a file per push, and
            // a chunk racing it can only come from a client that sends the
            // same blob's first bytes twice at once; the blob it gets is
            // still exactly the content its digest names.
            let single_request = loaded.parts.is_empty() && last_chunk.is_some();
            for _ in 0..SEAL_ATTEMPTS {
                if loaded.sealed || single_request {
                    break;
                }
                if self.seal_upload(repo, id, loaded.upload.offset()).await? {
                    sealed_at = Some(loaded.upload.offset());
                    break;
                }
                // A chunk got there first: it belongs to the upload.
                loaded = self.load_upload(repo, id, true).await?;
            }
            let mut sealed = false;
            if let Some((body, len)) = last_chunk
                && let Some(record) = self
                    .receive_chunk(
                        repo,
                        id,
                        &mut loaded.upload,
                        loaded.parts.last(),
                        None,
                        body,
                        len,
                        false,
                    )
                    .await?
            {
                loaded.parts.push(record);
                sealed = true;
            }
            Ok((loaded, sealed))
        }
        .await;
        let (
            Loaded {
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
    async fn end_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.delete_key(Key::UploadStartedAt(repo, id)).await?;
        self.delete_dir(Key::UploadDir(repo, id)).await
    }

    /// The answer for a request on upload `id` that failed with `e`: if the
    /// upload is gone, a cancel or completion raced it and the spec's answer
    /// is `BLOB_UPLOAD_UNKNOWN`; otherwise `e` stands.
    async fn upload_error(&self, repo: &RepositoryName, id: &UploadId, e: Error) -> Error {
        if e.kind() == ErrorKind::BlobUploadUnknown {
            return e;
        }
        match self.exists(Key::UploadStartedAt(repo, id)).await {
            Ok(false) => unknown(),
            _ => e,
        }
    }
}

impl OpendalStore {
    /// Whether any part was written without a flush in another boot of the
    /// machine than this one (or this one's is unknown).
    fn written_before_reboot(&self, parts: &[PartRecord]) -> bool {
        let now = self.inner.local.as_ref().and_then(|l| l.boot());
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

/// How often a completion tries to seal an upload that chunks keep
/// extending; past that it completes what it has.
const SEAL_ATTEMPTS: usize = 4;

fn corrupt_part(id: &UploadId, off: u64) -> Error {
    Error::new(
        ErrorKind::BlobUploadInvalid,
        format!("upload {id} has a corrupt record at offset {off}"),
    )
}

fn size_mismatch(want: u64) -> Error {
    Error::new(
        ErrorKind::SizeInvalid,
        format!("body length does not match the declared {want} bytes"),
    )
}
