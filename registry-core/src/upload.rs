//! The digest-verifying upload state machine and upload session ids.
//!
//! An upload is a pure value: it knows its offset and running hash and
//! decides which transitions are legal. It does no I/O. Storage streams each
//! chunk into its backend while feeding a [`Chunk`], and only after the bytes
//! are durably stored calls [`Upload::commit_chunk`]. If the write fails the
//! chunk is dropped and the upload stays where it was.
//!
//! ```text
//!   start ──► Receiving{offset: 0} ──commit_chunk──► Receiving{offset: N}
//!                  │                                     │
//!                  ├──────────── finish(digest) ◄────────┤
//!                  │               │ digest matches      │ cancel
//!                  ▼               ▼                     ▼
//!              Cancelled       Completed             Cancelled
//! ```
//!
//! The running hash can be saved at any chunk boundary with
//! [`Upload::save_hash_state`] and an upload rebuilt from it with
//! [`Upload::resume`], so a different process can continue it.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};

/// An opaque upload session id: 16 to 128 characters of `[A-Za-z0-9_-]`.
///
/// Fresh ids are made from 128 random bits by [`UploadId::from_random`]; the
/// caller supplies the randomness (this crate does no I/O).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// Parse an id received from a client.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = (16..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(UploadId(s.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::BlobUploadUnknown,
                "malformed upload id",
            ))
        }
    }

    /// An id from 16 random bytes (128 bits), as 32 lowercase hex characters.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        UploadId(hex::encode(bytes))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

impl FromStr for UploadId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        UploadId::parse(s)
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Accepting chunks; `offset` bytes received and hashed so far.
    Receiving {
        /// Bytes received so far; the next chunk must start here.
        offset: u64,
    },
    /// Finished: the content hashed to `digest`.
    Completed {
        /// The verified digest.
        digest: Digest,
        /// Total size in bytes.
        size: u64,
    },
    /// Cancelled by the client or failed verification. Nothing is kept.
    Cancelled,
}

/// An upload in progress. See the module documentation for the transitions.
#[derive(Debug, Clone)]
pub struct Upload {
    state: UploadState,
    hasher: Option<Hasher>,
}

/// A chunk being received: bytes are fed as they arrive, then the chunk is
/// committed to its [`Upload`] once stored, or dropped.
#[derive(Debug, Clone)]
pub struct Chunk {
    start: u64,
    len: u64,
    hasher: Hasher,
}

impl Chunk {
    /// Feed received bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Offset of the chunk's first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The upload's offset after this chunk.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    /// The hash state after this chunk, for saving with the chunk.
    pub fn save_hash_state(&self) -> Vec<u8> {
        self.hasher.save()
    }

    /// The digest of the upload's bytes through this chunk: the running
    /// hash (which began with the upload, not with the chunk), finished on
    /// a copy. Only the upload's [`finish`](Upload::finish) decides a
    /// completion; this lets a store tell early what it will decide.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }
}

/// Outcome of a verified upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The verified digest.
    pub digest: Digest,
    /// Total size in bytes.
    pub size: u64,
}

impl Upload {
    /// A new upload hashing with `algorithm` (SHA-256 unless the client is
    /// known to want another).
    pub fn start(algorithm: Algorithm) -> Self {
        Upload {
            state: UploadState::Receiving { offset: 0 },
            hasher: Some(Hasher::new(algorithm)),
        }
    }

    /// Rebuild an upload at `offset` from a saved hash state.
    pub fn resume(algorithm: Algorithm, offset: u64, hash_state: &[u8]) -> Result<Self> {
        Ok(Upload {
            state: UploadState::Receiving { offset },
            hasher: Some(Hasher::restore(algorithm, hash_state)?),
        })
    }

    /// The current state.
    pub fn state(&self) -> &UploadState {
        &self.state
    }

    /// Bytes received so far (the size, once completed; 0 once cancelled).
    pub fn offset(&self) -> u64 {
        match &self.state {
            UploadState::Receiving { offset } => *offset,
            UploadState::Completed { size, .. } => *size,
            UploadState::Cancelled => 0,
        }
    }

    /// The algorithm of the running hash.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.hasher.as_ref().map(Hasher::algorithm)
    }

    fn receiving(&self) -> Result<(u64, &Hasher)> {
        match (&self.state, &self.hasher) {
            (UploadState::Receiving { offset }, Some(h)) => Ok((*offset, h)),
            _ => Err(Error::new(
                ErrorKind::BlobUploadUnknown,
                "upload is no longer in progress",
            )),
        }
    }

    /// Begin a chunk. `start` is the first byte's offset as the client stated
    /// it (from `Content-Range`), or `None` to append at the current offset.
    /// A chunk that does not start exactly at the current offset is refused
    /// with [`ErrorKind::RangeInvalid`].
    pub fn begin_chunk(&self, start: Option<u64>) -> Result<Chunk> {
        let (offset, hasher) = self.receiving()?;
        if let Some(s) = start
            && s != offset
        {
            return Err(Error::new(
                ErrorKind::RangeInvalid,
                format!("chunk starts at {s}, upload is at {offset}"),
            )
            .with_detail(serde_json::json!({ "offset": offset })));
        }
        Ok(Chunk {
            start: offset,
            len: 0,
            hasher: hasher.clone(),
        })
    }

    /// Accept a chunk whose bytes are stored. It must have been begun at the
    /// current offset.
    pub fn commit_chunk(&mut self, chunk: Chunk) -> Result<()> {
        let (offset, _) = self.receiving()?;
        if chunk.start != offset {
            return Err(Error::new(
                ErrorKind::RangeInvalid,
                format!("chunk began at {}, upload is at {offset}", chunk.start),
            ));
        }
        self.state = UploadState::Receiving {
            offset: chunk.end(),
        };
        self.hasher = Some(chunk.hasher);
        Ok(())
    }

    /// The running hash state at the current offset.
    pub fn save_hash_state(&self) -> Result<Vec<u8>> {
        Ok(self.receiving()?.1.save())
    }

    /// Finish the upload: compare the running digest with `expected`. On a
    /// match the state becomes [`UploadState::Completed`]; on a mismatch it
    /// becomes [`UploadState::Cancelled`] and [`ErrorKind::DigestInvalid`] is
    /// returned. Nothing may be made visible under a digest before this
    /// returns `Ok`.
    ///
    /// When `expected` uses another algorithm than the running hash, the
    /// caller must compute that digest itself and use [`Upload::finish_with`].
    pub fn finish(&mut self, expected: &Digest) -> Result<Completed> {
        let (offset, hasher) = self.receiving()?;
        if hasher.algorithm() != expected.algorithm() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "upload was hashed with {}, digest uses {}",
                    hasher.algorithm(),
                    expected.algorithm()
                ),
            ));
        }
        let actual = hasher.clone().finish();
        self.settle(offset, actual, expected)
    }

    /// Finish with a digest the caller computed over the stored bytes (the
    /// fallback when the client's algorithm differs from the running hash).
    pub fn finish_with(&mut self, actual: Digest, expected: &Digest) -> Result<Completed> {
        let (offset, _) = self.receiving()?;
        self.settle(offset, actual, expected)
    }

    fn settle(&mut self, size: u64, actual: Digest, expected: &Digest) -> Result<Completed> {
        self.hasher = None;
        if &actual != expected {
            self.state = UploadState::Cancelled;
            return Err(Error::new(
                ErrorKind::DigestInvalid,
                format!("content digest {actual} does not match {expected}"),
            ));
        }
        self.state = UploadState::Completed {
            digest: actual.clone(),
            size,
        };
        Ok(Completed {
            digest: actual,
            size,
        })
    }

    /// Cancel the upload. Legal from any state but `Completed`.
    pub fn cancel(&mut self) -> Result<()> {
        if matches!(self.state, UploadState::Completed { .. }) {
            return Err(Error::new(
                ErrorKind::BlobUploadUnknown,
                "upload already completed",
            ));
        }
        self.state = UploadState::Cancelled;
        self.hasher = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(up: &mut Upload, start: Option<u64>, bytes: &[u8]) -> Result<()> {
        let mut c = up.begin_chunk(start)?;
        c.update(bytes);
        up.commit_chunk(c)
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::from_random([0xab; 16]);
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(UploadId::parse(id.as_str()).unwrap(), id);
        assert!(UploadId::parse("3f2d9a4e-0b7c-4c1e-9f5e-6a7b8c9d0e1f").is_ok());
        for bad in [
            "",
            "short",
            "../../../../../../etc/passwd",
            "a/b/c/d/e/f/g/h/i",
            "%2e%2e%2e%2e%2e%2e%2e%2e",
            &"a".repeat(129),
        ] {
            assert_eq!(
                UploadId::parse(bad).unwrap_err().kind(),
                ErrorKind::BlobUploadUnknown,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chunks_in_order_complete_with_the_right_digest() {
        let mut up = Upload::start(Algorithm::Sha256);
        assert_eq!(up.state(), &UploadState::Receiving { offset: 0 });
        feed(&mut up, Some(0), b"hello ").unwrap();
        feed(&mut up, None, b"world").unwrap();
        assert_eq!(up.offset(), 11);
        let want = Digest::sha256_of(b"hello world");
        let done = up.finish(&want).unwrap();
        assert_eq!(
            done,
            Completed {
                digest: want.clone(),
                size: 11
            }
        );
        assert_eq!(
            up.state(),
            &UploadState::Completed {
                digest: want,
                size: 11
            }
        );
    }

    #[test]
    fn empty_upload_completes() {
        let mut up = Upload::start(Algorithm::Sha256);
        assert_eq!(up.finish(&Digest::sha256_of(b"")).unwrap().size, 0);
    }

    #[test]
    fn wrong_offset_is_refused_and_changes_nothing() {
        let mut up = Upload::start(Algorithm::Sha256);
        feed(&mut up, None, b"abc").unwrap();
        for bad in [0, 2, 4, u64::MAX] {
            let e = feed(&mut up, Some(bad), b"x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::RangeInvalid);
        }
        assert_eq!(up.offset(), 3);
        assert_eq!(up.finish(&Digest::sha256_of(b"abc")).unwrap().size, 3);
    }

    #[test]
    fn a_dropped_chunk_leaves_the_upload_unchanged() {
        let mut up = Upload::start(Algorithm::Sha256);
        let mut c = up.begin_chunk(None).unwrap();
        c.update(b"lost in a failed write");
        drop(c);
        feed(&mut up, Some(0), b"kept").unwrap();
        assert_eq!(up.finish(&Digest::sha256_of(b"kept")).unwrap().size, 4);
    }

    #[test]
    fn racing_chunks_at_the_same_offset_only_one_commits() {
        let mut up = Upload::start(Algorithm::Sha256);
        let mut a = up.begin_chunk(Some(0)).unwrap();
        let mut b = up.begin_chunk(Some(0)).unwrap();
        a.update(b"aaaa");
        b.update(b"bb");
        up.commit_chunk(a).unwrap();
        assert_eq!(
            up.commit_chunk(b).unwrap_err().kind(),
            ErrorKind::RangeInvalid
        );
        assert_eq!(up.offset(), 4);
    }

    #[test]
    fn digest_mismatch_cancels() {
        let mut up = Upload::start(Algorithm::Sha256);
        feed(&mut up, None, b"data").unwrap();
        let e = up.finish(&Digest::sha256_of(b"other")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestInvalid);
        assert_eq!(up.state(), &UploadState::Cancelled);
        assert_eq!(
            feed(&mut up, None, b"x").unwrap_err().kind(),
            ErrorKind::BlobUploadUnknown
        );
    }

    #[test]
    fn other_algorithm_needs_finish_with() {
        let mut up = Upload::start(Algorithm::Sha256);
        feed(&mut up, None, b"data").unwrap();
        let want = Digest::compute(Algorithm::Sha512, b"data");
        assert_eq!(up.finish(&want).unwrap_err().kind(), ErrorKind::Unsupported);
        // Still receiving: the caller can compute and finish.
        assert_eq!(up.finish_with(want.clone(), &want).unwrap().digest, want);
    }

    #[test]
    fn completed_and_cancelled_refuse_everything() {
        let mut up = Upload::start(Algorithm::Sha256);
        up.finish(&Digest::sha256_of(b"")).unwrap();
        assert_eq!(
            up.begin_chunk(None).unwrap_err().kind(),
            ErrorKind::BlobUploadUnknown
        );
        assert_eq!(
            up.cancel().unwrap_err().kind(),
            ErrorKind::BlobUploadUnknown
        );
        assert!(up.save_hash_state().is_err());

        let mut up = Upload::start(Algorithm::Sha256);
        up.cancel().unwrap();
        assert_eq!(up.state(), &UploadState::Cancelled);
        assert_eq!(
            up.begin_chunk(None).unwrap_err().kind(),
            ErrorKind::BlobUploadUnknown
        );
        assert!(up.finish(&Digest::sha256_of(b"")).is_err());
    }

    #[test]
    fn resume_from_saved_state_in_another_process() {
        let mut first = Upload::start(Algorithm::Sha256);
        feed(&mut first, None, b"part one, ").unwrap();
        let saved = first.save_hash_state().unwrap();
        let mut second = Upload::resume(Algorithm::Sha256, first.offset(), &saved).unwrap();
        feed(&mut second, Some(10), b"part two").unwrap();
        let want = Digest::sha256_of(b"part one, part two");
        assert_eq!(second.finish(&want).unwrap().size, 18);
        assert!(Upload::resume(Algorithm::Sha256, 3, b"junk").is_err());
    }
}
