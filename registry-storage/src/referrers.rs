//! Referrers answered from what their pushes recorded.
//!
//! A push of a manifest with a `subject` writes the referrer link
//! `_referrers/<subject>/<alg>/<hex>/link` holding the manifest's referrer
//! descriptor as JSON (media type, digest, size, artifact type,
//! annotations), computed from the manifest it just parsed. A listing then
//! reads one small object per referrer of the page, in digest order, and
//! parses no manifest. Each referrer has its own object, written whole, so
//! concurrent pushes never read-modify-write anything shared
//! (docs/CONSISTENCY.md, "Referrers").
//!
//! Links written before (and by older versions of this registry) hold the
//! referrer's digest only: for those the manifest is read and parsed with
//! the store's limits, as before. They are not rewritten: a listing that
//! wrote one back could re-create the link of a referrer being deleted.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use registry_core::manifest::{Descriptor, Manifest};
use registry_core::{Digest, Page, Referrers, RepositoryName, Result};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;

/// Referrer links read at once while a page is assembled.
const READ_AHEAD: usize = 16;

/// A page ends once its descriptors take this many bytes of JSON (a page
/// always holds at least one): annotations can make one descriptor as
/// large as a manifest, and a page is held in memory whole.
pub(crate) const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// What a manifest push records for its subject: the referrer descriptor,
/// as JSON.
pub(crate) fn referrer_record(m: &Manifest) -> Bytes {
    // A descriptor of validated fields always serializes.
    Bytes::from(serde_json::to_vec(&m.referrer_descriptor()).unwrap_or_default())
}

impl OpendalStore {
    /// One page of the referrers of `subject` in `repo`, in digest order:
    /// at most `page.n` referrer links after `page.last` are read, and
    /// those of `artifact_type` (if given) are returned.
    pub(crate) async fn referrers_page(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        let dir = Key::ReferrersDir(repo, subject).path();
        let want = page.n.unwrap_or(usize::MAX);
        let (digests, more) = self.referrer_digests(&dir, page.last, want).await?;
        let mut records = futures::stream::iter(digests.iter().cloned())
            .map(|d| async move { self.referrer_descriptor(repo, subject, &d).await })
            .buffered(READ_AHEAD)
            .boxed();
        let (mut out, mut bytes, mut examined) = (Vec::new(), 0, 0);
        while let Some(record) = records.try_next().await? {
            examined += 1;
            if let Some((descriptor, len)) = record
                && artifact_type.is_none_or(|want| descriptor.artifact_type() == Some(want))
            {
                bytes += len;
                out.push(descriptor);
            }
            if bytes >= PAGE_BYTES {
                break;
            }
        }
        let next = if more || examined < digests.len() {
            examined
                .checked_sub(1)
                .and_then(|i| digests.get(i))
                .cloned()
        } else {
            None
        };
        Ok(Referrers {
            manifests: out,
            next,
        })
    }

    /// The digests of the referrer folders under `dir`, in digest order,
    /// after `last`, at most `want` of them, and whether more follow.
    async fn referrer_digests(
        &self,
        dir: &str,
        last: Option<&str>,
        want: usize,
    ) -> Result<(Vec<Digest>, bool)> {
        let (last_alg, last_hex) = match last.and_then(|l| l.split_once(':')) {
            Some((alg, hex)) => (Some(alg), Some(hex)),
            None => (last, None),
        };
        let mut algs: Vec<String> = self
            .child_folders(dir)
            .await?
            .into_iter()
            .filter(|alg| last_alg.is_none_or(|l| alg.as_str() >= l))
            .collect();
        algs.sort_unstable();
        let mut out = Vec::new();
        for alg in algs {
            if out.len() > want {
                break;
            }
            let after = last_hex.filter(|_| Some(alg.as_str()) == last_alg);
            let (hexes, _) = self
                .sorted_children(
                    &format!("{dir}{alg}/"),
                    after,
                    (want - out.len()).saturating_add(1),
                )
                .await?;
            out.extend(
                hexes
                    .iter()
                    .filter_map(|hex| Digest::parse(&format!("{alg}:{hex}")).ok())
                    .filter(|d| last.is_none_or(|l| d.to_string().as_str() > l)),
            );
        }
        let more = out.len() > want;
        out.truncate(want);
        Ok((out, more))
    }

    /// The names of the child folders of `dir` after `after`, sorted, at
    /// most `limit`, and whether more follow. For names whose keys sort as
    /// the names do (digests' hex: one length, one alphabet): a backend
    /// that lists from a start key (S3, which lists in key order) is asked
    /// for the page only, the first page too.
    async fn sorted_children(
        &self,
        dir: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool)> {
        let mut names = Vec::new();
        let from_key = self.operator().info().capability().list_with_start_after;
        if from_key {
            let mut list = self
                .operator()
                .lister_with(dir)
                .limit(crate::folders::list_limit(limit));
            if let Some(after) = after {
                list = list.start_after(&format!("{dir}{after}"));
            }
            let mut lister = list.await.map_err(storage("listing"))?;
            while let Some(entry) = lister.try_next().await.map_err(storage("listing"))? {
                if let Some(name) = entry.name().strip_suffix('/')
                    && entry.path() != dir
                    && after.is_none_or(|a| name > a)
                {
                    names.push(name.to_owned());
                    if names.len() > limit {
                        break;
                    }
                }
            }
            names.sort_unstable();
        } else {
            // Sorted already.
            names = self
                .smallest_child_folders(dir, after, limit.saturating_add(1), |_| true)
                .await?;
        }
        let more = names.len() > limit;
        names.truncate(limit);
        Ok((names, more))
    }

    /// What the referrer link of `digest` holds, if it and the revision
    /// link both exist. On the filesystem, one trip to the blocking pool.
    async fn referrer_record(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        digest: &Digest,
    ) -> Result<Option<Bytes>> {
        let link = Key::ReferrerLink(repo, subject, digest).path();
        let revision = Key::RevisionLink(repo, digest).path();
        self.read_if_both(&link, &revision).await
    }

    /// The descriptor of referrer `digest` and the length of its JSON, or
    /// `None` if it is no longer a referrer (its revision or link deleted,
    /// possibly while this listing runs). A storage failure fails the
    /// listing rather than silently drop a signature from it.
    async fn referrer_descriptor(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        digest: &Digest,
    ) -> Result<Option<(Descriptor, usize)>> {
        let Some(record) = self.referrer_record(repo, subject, digest).await? else {
            return Ok(None);
        };
        if let Ok(d) = serde_json::from_slice::<Descriptor>(&record)
            && d.digest() == digest
        {
            return Ok(Some((d, record.len())));
        }
        // A link from before descriptors were recorded: the manifest, parsed
        // with the limits it was accepted under.
        let bytes = match self.operator().read(&Key::BlobData(digest).path()).await {
            Ok(buf) => buf.to_bytes(),
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(storage("reading manifest")(e)),
        };
        let d = Manifest::parse(&bytes, None, &self.inner.limits)?.referrer_descriptor();
        let len = serde_json::to_vec(&d).map_or(0, |v| v.len());
        Ok(Some((d, len)))
    }
}
