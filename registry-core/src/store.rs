//! The store traits: what a registry needs from its storage.
//!
//! Three small traits, one per concern: [`BlobStore`] (content-addressed
//! bytes and their links into repositories), [`ManifestStore`] (manifests,
//! tags, referrers, listings) and [`UploadStore`] (resumable, verified
//! uploads). [`RegistryStore`] is all three, implemented for any type that
//! implements them, and is what the HTTP router takes. A store in front of
//! another one (a cache, a counter) is a [`Decorator`]: it implements only
//! the operations it changes.
//!
//! Every method is cancel-safe in the sense that matters for a registry: if
//! its future is dropped (client gone, shutdown), nothing half-written
//! becomes visible under a digest or a tag.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Descriptor, ManifestLimits};
use crate::name::{Reference, RepositoryName, Tag};
use crate::range::ByteRange;
use crate::upload::UploadId;

mod decorator;
mod notice;

pub use decorator::Decorator;
pub use notice::{BodyVerified, Verdict};

/// A stream of byte chunks: request bodies going in, blob content coming out.
/// An `Err` item ends the stream; whatever was being written is discarded.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A blob being read: its total size, the byte range being sent, and the
/// bytes of that range.
pub struct BlobRead {
    /// The whole blob.
    pub info: BlobInfo,
    /// The range being streamed, `start..end`, end exclusive. `0..size` when
    /// no range was asked for.
    pub range: std::ops::Range<u64>,
    /// Whether a range was asked for (the HTTP layer answers 206).
    pub partial: bool,
    /// The content of `range`.
    pub body: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("info", &self.info)
            .field("range", &self.range)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

/// A stored manifest: its exact pushed bytes, digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// The media type, from the body (or detected when the body has none).
    pub media_type: String,
    /// The bytes exactly as pushed.
    pub bytes: Bytes,
}

/// Result of a manifest push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPut {
    /// Digest of the pushed bytes.
    pub digest: Digest,
    /// The manifest's `subject`, if it has one (the HTTP layer answers with
    /// `OCI-Subject`).
    pub subject: Option<Digest>,
}

/// Where an upload stands, as the HTTP layer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    /// The session id.
    pub id: UploadId,
    /// Bytes received so far; the next chunk must start here.
    pub offset: u64,
}

/// A pagination request: at most `n` items after `last`, in lexical order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page<'a> {
    /// Maximum number of items; `None` for all.
    pub n: Option<usize>,
    /// Return items strictly after this one.
    pub last: Option<&'a str>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The items, in lexical order.
    pub items: Vec<T>,
    /// Whether more items follow the last one returned.
    pub more: bool,
}

impl<T: AsRef<str>> Listing<T> {
    /// Apply a [`Page`] to a sorted, de-duplicated list.
    pub fn paginate(sorted: Vec<T>, page: Page<'_>) -> Self {
        let mut items: Vec<T> = match page.last {
            Some(last) => sorted.into_iter().filter(|t| t.as_ref() > last).collect(),
            None => sorted,
        };
        let more = matches!(page.n, Some(n) if items.len() > n);
        if let Some(n) = page.n {
            items.truncate(n);
        }
        Listing { items, more }
    }
}

/// One page of a subject's referrers, in the order of their digests (as
/// strings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Referrers {
    /// The referrers' descriptors on this page (after any `artifactType`
    /// filter: a page may hold fewer than asked, even none, while `next`
    /// says more follow).
    pub manifests: Vec<Descriptor>,
    /// Where the next page starts: pass it as [`Page::last`]. `None` on the
    /// last page.
    pub next: Option<Digest>,
}

/// Content-addressed blobs and their links into repositories.
///
/// A blob is visible in a repository when its bytes are stored under its
/// digest and the repository links it. Deleting unlinks; blob data shared by
/// other repositories is never removed here.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Size of a blob linked into `repo`, or [`ErrorKind::BlobUnknown`].
    ///
    /// [`ErrorKind::BlobUnknown`]: crate::ErrorKind::BlobUnknown
    async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<BlobInfo>;

    /// Stream a blob linked into `repo`, whole or one byte range.
    async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead>;

    /// Store `body` under `digest` and link it into `repo`, verifying the
    /// content hashes to `digest` (and is `expected_len` long, if given)
    /// before anything becomes visible.
    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<BlobInfo>;

    /// [`put_blob`](BlobStore::put_blob), and `verified` told as soon as
    /// the whole body is received and hashes to `digest`, which may be
    /// before the blob is durable and visible (see [`BodyVerified`]).
    ///
    /// The default drops the notice and puts: a store that cannot tell
    /// early is still correct, its caller only waits for the result. A
    /// store in front of another forwards the notice to it.
    async fn put_blob_with_notice(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
        verified: BodyVerified,
    ) -> Result<BlobInfo> {
        drop(verified);
        self.put_blob(repo, digest, body, expected_len).await
    }

    /// Unlink a blob from `repo`. The bytes stay for other repositories.
    async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()>;

    /// Where a client may fetch a blob linked into `repo` itself (a
    /// presigned URL of an object store), instead of through this process:
    /// `None` when the blob is to be served here (the default: redirects
    /// off, or a cache holds it). Checks the link like
    /// [`read_blob`](BlobStore::read_blob): [`ErrorKind::BlobUnknown`] if
    /// `repo` does not have it.
    ///
    /// [`ErrorKind::BlobUnknown`]: crate::ErrorKind::BlobUnknown
    async fn blob_location(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let _ = (repo, digest);
        Ok(None)
    }

    /// Link a blob already linked in `from` into `to` without moving bytes.
    /// [`ErrorKind::BlobUnknown`] if `from` does not have it.
    ///
    /// [`ErrorKind::BlobUnknown`]: crate::ErrorKind::BlobUnknown
    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo>;
}

/// Manifests, tags, referrers and the repository catalog.
#[async_trait]
pub trait ManifestStore: Send + Sync {
    /// Validate and store a manifest under `reference` (a tag, which is then
    /// pointed at it atomically, or its own digest, which must match the
    /// bytes). Every blob and manifest it references must already be in
    /// `repo`. `content_type` is the request's `Content-Type`.
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut>;

    /// The manifest a tag points to, or the manifest with that digest.
    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest>;

    /// Delete a tag (the manifest stays), or a manifest by digest (its tags
    /// go with it).
    async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> Result<()>;

    /// The limits this store validates manifests with (on push, and when it
    /// reads one back). The HTTP layer asks here rather than keeping a limit
    /// of its own, so there is one owner of the manifest size limit.
    fn manifest_limits(&self) -> ManifestLimits;

    /// The repository's tags in lexical order: at most `page.n` after
    /// `page.last`.
    async fn list_tags(&self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>>;

    /// Descriptors of the manifests in `repo` whose `subject` is `subject`,
    /// optionally only those of one artifact type, in digest order: one
    /// page of at most `page.n` referrers after the digest `page.last`
    /// (`None`: all). The filter applies within the page, so a page may
    /// hold fewer than `n` and still have a [`Referrers::next`]; a store
    /// may also end a page early to bound its size.
    async fn list_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers>;

    /// The repositories of the registry in lexical order.
    async fn list_repositories(&self, page: Page<'_>) -> Result<Listing<RepositoryName>>;
}

/// Resumable uploads whose content is verified against its digest before it
/// becomes a blob.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Open an upload session in `repo`.
    async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus>;

    /// Where an upload stands.
    async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadStatus>;

    /// Append a chunk. `start` is the client's stated offset (refused with
    /// [`ErrorKind::RangeInvalid`] unless it is the current one); `None`
    /// appends at the current offset. `expected_len`, if known, is checked
    /// against the bytes received.
    ///
    /// [`ErrorKind::RangeInvalid`]: crate::ErrorKind::RangeInvalid
    async fn write_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<UploadStatus>;

    /// Finish an upload, with an optional last chunk: verify the content
    /// against `digest`, then make it visible as a blob linked into `repo`.
    /// On a mismatch nothing is visible and the session is gone.
    async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<BlobInfo>;

    /// Abandon an upload and discard what it received.
    async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()>;
}

/// Everything a registry needs from storage.
pub trait RegistryStore: BlobStore + ManifestStore + UploadStore {}

impl<T: BlobStore + ManifestStore + UploadStore + ?Sized> RegistryStore for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginate() {
        let all = || vec!["a", "b", "c", "d"];
        let p = Listing::paginate(
            all(),
            Page {
                n: Some(2),
                last: None,
            },
        );
        assert_eq!(
            p,
            Listing {
                items: vec!["a", "b"],
                more: true
            }
        );
        let p = Listing::paginate(
            all(),
            Page {
                n: Some(2),
                last: Some("b"),
            },
        );
        assert_eq!(
            p,
            Listing {
                items: vec!["c", "d"],
                more: false
            }
        );
        let p = Listing::paginate(
            all(),
            Page {
                n: None,
                last: Some("bb"),
            },
        );
        assert_eq!(p.items, vec!["c", "d"]);
        let p = Listing::paginate(
            all(),
            Page {
                n: Some(0),
                last: None,
            },
        );
        assert_eq!(
            p,
            Listing {
                items: vec![],
                more: true
            }
        );
        let p = Listing::paginate(
            all(),
            Page {
                n: Some(10),
                last: Some("z"),
            },
        );
        assert_eq!(
            p,
            Listing {
                items: vec![],
                more: false
            }
        );
    }

    fn _assert_object_safe(_: &dyn RegistryStore) {}
}
