//! Manifest and tag deletes that race pushes on any process of the fleet,
//! and the push side of the same handshake.
//!
//! The danger is a tag that names a manifest whose revision link is gone
//! (a dangling tag), or a tag a newer push moved being removed by a delete
//! of the old manifest (a lost update). The protocol, argued step by step
//! in docs/CONSISTENCY.md ("Deletes"):
//!
//! **Delete of manifest `M`** (by digest):
//! 1. create the marker `_registry/deleting/<repo>/_revisions/<M>`
//!    (create-if-absent; a second delete of `M` waits for the first);
//! 2. remove `M`'s revision link: from here on `M` and every tag naming
//!    it answer 404 (this is the moment the delete takes effect);
//! 3. remove each tag whose `current/link` holds `M`, with a
//!    compare-and-delete, so a tag moved on by a push meanwhile stays;
//! 4. remove `M`'s referrer link, then the marker.
//!
//! **Push of `M` under a tag (or with a subject)**:
//! 1. write `M`'s revision link;
//! 2. if a marker for `M` exists, wait until it is gone and start again;
//! 3. write the referrer link and the tag's links;
//! 4. if a marker for `M` exists, or the revision link is gone, wait for
//!    the marker to go and start again.
//!
//! Every interleaving ends as if the push ran wholly before the delete
//! (both gone) or wholly after it (both present). A marker left by a
//! process that died mid-delete is ignored and removed once older than
//! [`MARKER_TTL`].

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use registry_core::manifest::Manifest;
use registry_core::{Digest, Error, ErrorKind, RepositoryName, Result, Tag};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;
use crate::removal::Tree;

/// How long a delete may hold its marker before others take it for the
/// leftover of a dead process.
pub(crate) const MARKER_TTL: Duration = Duration::from_secs(60);

/// How many times a push starts again because a delete of its manifest
/// overlapped it.
const PUSH_ATTEMPTS: usize = 4;

/// Where a manifest push writes its links.
pub(crate) struct Links<'a> {
    pub repo: &'a RepositoryName,
    pub digest: &'a Digest,
    /// The subject, and the referrer descriptor recorded for it (see
    /// `referrers`).
    pub referrer: Option<(&'a Digest, &'a Bytes)>,
    pub tag: Option<&'a Tag>,
}

/// Whether a manifest delete looks for the tags naming the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tags {
    /// Read every tag of the repository and remove those naming it (a
    /// client's delete: distribution's behaviour).
    Scan,
    /// The caller knows none does (the collector: its mark found none, and
    /// a tag push since then is kept or waits for the collection).
    NoneName,
}

impl OpendalStore {
    /// Write a pushed manifest's links (its bytes are stored already):
    /// the revision, then the referrer and tag links, following the
    /// handshake with deletes described in the module documentation.
    pub(crate) async fn link_manifest(&self, l: &Links<'_>) -> Result<()> {
        let revision = Key::RevisionLink(l.repo, l.digest);
        // A push with no tag and no subject writes one link: any order
        // with a delete is already a serial order.
        let handshake = l.tag.is_some() || l.referrer.is_some();
        for _ in 0..PUSH_ATTEMPTS {
            self.write_link(revision, l.digest).await?;
            if handshake && self.await_deletion(l.repo, l.digest).await? {
                continue;
            }
            if let Some((s, record)) = l.referrer {
                let link = Key::ReferrerLink(l.repo, s, l.digest).path();
                self.write_object_atomic(&link, record.clone()).await?;
            }
            if let Some(tag) = l.tag {
                self.write_link(Key::TagIndexLink(l.repo, tag, l.digest), l.digest)
                    .await?;
                self.write_tag_link(Key::TagCurrentLink(l.repo, tag), l.digest)
                    .await?;
            }
            if !handshake {
                return Ok(());
            }
            let overlapped = self.await_deletion(l.repo, l.digest).await?;
            if !overlapped && self.exists(revision).await? {
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "manifest {} is being deleted and pushed at once; retry",
                l.digest
            ),
        ))
    }

    /// If a delete of `digest` is under way, wait for it to end (or for its
    /// marker to expire) and say `true`; `false` at once if none is.
    pub(crate) async fn await_deletion(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool> {
        let marker = Key::DeletingMarker(repo, digest).path();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        let mut seen = false;
        loop {
            let since = match self.operator().read(&marker).await {
                Ok(buf) => String::from_utf8(buf.to_vec())
                    .ok()
                    .and_then(|t| humantime::parse_rfc3339(t.trim()).ok()),
                Err(e) if is_not_found(&e) => return Ok(seen),
                Err(e) => return Err(storage("reading delete marker")(e)),
            };
            seen = true;
            let age = since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            if age > MARKER_TTL || started.elapsed() > MARKER_TTL {
                tracing::warn!(%repo, %digest, "removing the marker of an abandoned delete");
                self.remove_link(Key::DeletingMarker(repo, digest), 2)
                    .await?;
                return Ok(true);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Delete the manifest `digest` from `repo`, with the tags naming it.
    ///
    /// The delete runs on a task of its own: a client that goes away (or
    /// times out) mid-delete does not stop it half way, with the marker
    /// left to expire and tags still listed.
    pub(crate) async fn delete_revision(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<()> {
        self.delete_revision_with(repo, digest, Tags::Scan).await
    }

    /// [`Self::delete_revision`], for the garbage collector: with
    /// [`Tags::NoneName`] the tags are not scanned for it (docs/GC.md,
    /// "Deletes": no tag names a manifest the collector deletes).
    pub(crate) async fn delete_revision_with(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        tags: Tags,
    ) -> Result<()> {
        let (store, repo, digest) = (self.clone(), repo.clone(), digest.clone());
        tokio::spawn(async move { store.delete_revision_here(&repo, &digest, tags).await })
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, "delete task failed").with_source(e))?
    }

    async fn delete_revision_here(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        tags: Tags,
    ) -> Result<()> {
        let marker = Key::DeletingMarker(repo, digest);
        let now = humantime::format_rfc3339(SystemTime::now()).to_string();
        loop {
            if !self.exists(Key::RevisionLink(repo, digest)).await? {
                return Err(crate::manifests::manifest_unknown(digest));
            }
            if self
                .create_object_exclusive(&marker.path(), now.clone().into_bytes())
                .await?
            {
                break;
            }
            // Another delete of it is under way: let it end, look again.
            self.await_deletion(repo, digest).await?;
        }
        let deleted = self.delete_marked_revision(repo, digest, tags).await;
        if let Err(e) = self.remove_link(marker, 2).await {
            tracing::warn!(%repo, %digest, error = %e, "delete marker left behind; it expires");
        }
        deleted
    }

    /// Steps 2 to 4 of a delete, under its marker.
    async fn delete_marked_revision(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        tags: Tags,
    ) -> Result<()> {
        let subject = match self.operator().read(&Key::BlobData(digest).path()).await {
            Ok(buf) => Manifest::parse(&buf.to_bytes(), None, &self.inner.limits)
                .ok()
                .and_then(|m| m.subject().map(|s| s.digest().clone())),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(storage("reading manifest")(e)),
        };
        if !self.exists(Key::RevisionLink(repo, digest)).await? {
            return Err(crate::manifests::manifest_unknown(digest));
        }
        self.remove_link(Key::RevisionLink(repo, digest), 1).await?;
        if tags == Tags::Scan {
            self.remove_tags_naming(repo, digest).await?;
        }
        if let Some(s) = &subject {
            self.remove_link(Key::ReferrerLink(repo, s, digest), 3)
                .await?;
        }
        Ok(())
    }

    /// Remove every tag of `repo` whose `current/link` holds `digest`.
    async fn remove_tags_naming(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        for tag in self.tag_names(repo).await? {
            if self
                .read_link(Key::TagCurrentLink(repo, &tag))
                .await?
                .as_ref()
                == Some(digest)
            {
                self.remove_tag(repo, &tag, Some(digest)).await?;
            }
        }
        Ok(())
    }

    /// Repair: remove the tags naming `digest` while `repo` has no such
    /// revision, under the marker a delete of it would take (so a push of
    /// it meanwhile waits, then writes its tag again). `Ok(false)` if a
    /// delete of it holds the marker (that delete removes them itself).
    pub(crate) async fn remove_dangling_tags(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool> {
        self.while_absent(repo, digest, self.remove_tags_naming(repo, digest))
            .await
    }

    /// Repair: remove the link listing `referrer` among the referrers of
    /// `subject` while `repo` has no such revision, as
    /// [`Self::remove_dangling_tags`] does for tags.
    pub(crate) async fn remove_dangling_referrer(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<bool> {
        let link = Key::ReferrerLink(repo, subject, referrer);
        self.while_absent(repo, referrer, self.remove_link(link, 3))
            .await
    }

    /// Run `repair` under the marker a delete of `digest` would take, if
    /// `repo` has no revision of it once the marker is held. `Ok(false)` if
    /// another delete or repair holds the marker.
    async fn while_absent(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        repair: impl std::future::Future<Output = Result<()>>,
    ) -> Result<bool> {
        let marker = Key::DeletingMarker(repo, digest);
        let now = humantime::format_rfc3339(SystemTime::now()).to_string();
        if !self
            .create_object_exclusive(&marker.path(), now.into_bytes())
            .await?
        {
            return Ok(false);
        }
        let removed = async {
            // A push restored the revision: what names it is live again.
            if !self.exists(Key::RevisionLink(repo, digest)).await? {
                repair.await?;
            }
            Ok(true)
        }
        .await;
        if let Err(e) = self.remove_link(marker, 2).await {
            tracing::warn!(%repo, %digest, error = %e, "repair marker left behind; it expires");
        }
        removed
    }

    /// Remove a tag: its `current/link` (only while it holds `only_if`,
    /// when given), then the rest of its folder unless a push wrote a new
    /// `current/link` meanwhile. `Ok(false)` if there was nothing (or
    /// another manifest) to remove.
    pub(crate) async fn remove_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        only_if: Option<&Digest>,
    ) -> Result<bool> {
        let current = Key::TagCurrentLink(repo, tag);
        let removed = match only_if {
            Some(d) => self.delete_link_if(current, d).await?,
            None => {
                let had = self.exists(current).await?;
                self.delete_key(current).await?;
                had
            }
        };
        if removed {
            let dir = Key::TagDir(repo, tag).path();
            if self.remove_tree(&dir, Some("current/link")).await? == Tree::Busy {
                tracing::debug!(%repo, %tag, "tag folder refilled while removing it");
            }
        }
        Ok(removed)
    }
}
