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
//!
//! `records.rs` reads the records (the last one for a new chunk, the whole
//! chain for a completion) and seals; `chunks.rs` receives a chunk, claimed
//! (`PATCH`) or not (the completing body); `completion.rs` verifies and
//! ends uploads. Where the bytes go is the backend's business (`backend`).

mod chunks;
mod completion;
mod records;

use async_trait::async_trait;
use registry_core::{
    BlobInfo, BodyVerified, ByteStream, Digest, Error, ErrorKind, RepositoryName, Result, Upload,
    UploadId, UploadStatus, UploadStore,
};
use serde::{Deserialize, Serialize};

use crate::OpendalStore;
use crate::layout::Key;

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
    /// Algorithm of the running hash (`sha256`, `sha512`).
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

/// An upload as a new chunk (or a status request) needs it: its state
/// after the last record.
pub(crate) struct Tail {
    pub upload: Upload,
    /// The last record, if any chunk was accepted.
    pub last: Option<PartRecord>,
}

/// An upload as its completion needs it: every record, in order.
pub(crate) struct Chain {
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

fn corrupt_part(id: &UploadId, off: u64) -> Error {
    Error::new(
        ErrorKind::BlobUploadInvalid,
        format!("upload {id} has a corrupt record at offset {off}"),
    )
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
        let tail = self.load_tail(repo, id).await?;
        Ok(UploadStatus {
            id: id.clone(),
            offset: tail.upload.offset(),
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
        let mut tail = self.load_tail(repo, id).await?;
        let accepted = self
            .accept_chunk(repo, id, &mut tail, start, body, expected_len)
            .await;
        if let Err(e) = accepted {
            return Err(self.upload_error(repo, id, e).await);
        }
        Ok(UploadStatus {
            id: id.clone(),
            offset: tail.upload.offset(),
        })
    }

    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo> {
        self.complete(repo, id, digest, last_chunk, None).await
    }

    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        if !self.exists(Key::UploadStartedAt(repo, id)).await? {
            return Err(unknown());
        }
        self.end_upload(repo, id).await
    }
}

impl OpendalStore {
    /// [`UploadStore::complete_upload`], and `notice` told as soon as a
    /// single-request body hashes to `digest` (before the commit).
    pub(crate) async fn complete(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
        notice: Option<BodyVerified>,
    ) -> Result<BlobInfo> {
        let (completed, parts, sealed) = self
            .verify_upload(repo, id, digest, last_chunk, notice)
            .await?;
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
}
