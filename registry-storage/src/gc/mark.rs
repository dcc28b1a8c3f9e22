//! The mark: what is live, and the plan of what is not (step C2 and C3 of
//! docs/GC.md).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use futures::future::try_join_all;

use crate::backend::Backend;
use registry_core::manifest::Manifest;
use registry_core::{Digest, Error, ErrorKind, RepositoryName, Result, Tag};

use super::lease::Run;
use super::{BlobRemoval, GcOptions, GcReport, LinkRemoval, ManifestRemoval, Reason, TagDecision};
use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::{Key, PREFIX};
use crate::maintenance::repository_of_dir;

/// How many objects' times are read at once where a listing lacks them.
const STATS_AT_ONCE: usize = 16;

/// What a manifest references.
pub(super) struct References {
    pub(super) blobs: Vec<Digest>,
    pub(super) children: Vec<Digest>,
}

/// What the mark found: the removals it plans, and what it saw.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Retention decisions on tags (those removed are removed first).
    pub(crate) tags: Vec<TagDecision>,
    pub(crate) manifests: Vec<ManifestRemoval>,
    pub(crate) links: Vec<LinkRemoval>,
    pub(crate) blobs: Vec<BlobRemoval>,
    /// Every manifest revision the mark listed: a push record naming one of
    /// these was overtaken by the mark and may go (step C8).
    pub(crate) seen_revisions: HashSet<(RepositoryName, Digest)>,
    /// The runs listed once the mark had listed every manifest: while one
    /// of them (other than this run) is listed, push records stay (C8).
    pub(crate) runs_after_mark: Vec<String>,
    pub(crate) live_manifests: usize,
    pub(crate) live_blobs: usize,
}

impl Plan {
    pub(crate) fn into_report(mut self, committed: bool) -> GcReport {
        self.manifests.sort();
        self.links.sort();
        self.blobs.sort();
        self.tags.sort();
        GcReport {
            committed,
            tags: self.tags,
            manifests: self.manifests,
            links: self.links,
            blobs: self.blobs,
            kept_for_pushes: Default::default(),
            live_manifests: self.live_manifests,
            live_blobs: self.live_blobs,
        }
    }
}

/// Ages in the store's own time.
pub(super) struct Clock {
    pub(super) now: Option<SystemTime>,
    pub(super) grace: Duration,
}

impl Clock {
    /// Whether something written at `at` is past the grace period. Without
    /// times (a backend that keeps none) only a zero grace passes.
    fn is_old(&self, at: Option<SystemTime>) -> bool {
        if self.grace.is_zero() {
            return true;
        }
        match (self.now, at) {
            (Some(now), Some(at)) => now.duration_since(at).is_ok_and(|age| age >= self.grace),
            _ => false,
        }
    }
}

/// Mark every repository and plan the removals. With a `run`, the mark
/// stops if its lease lapsed.
pub(crate) async fn mark(
    store: &OpendalStore,
    options: &GcOptions,
    run: Option<&Run>,
) -> Result<Plan> {
    let clock = Clock {
        now: store.store_now().await?,
        grace: options.grace,
    };
    let mut plan = Plan::default();
    let mut live = HashSet::new();
    let mut recently_linked = HashSet::new();
    for (dir, children) in store.walk_repositories().await? {
        if let Some(run) = run {
            run.check()?;
        }
        if !children
            .iter()
            .any(|c| c == "_manifests/" || c == "_layers/")
        {
            continue;
        }
        let Some(repo) = repository_of_dir(&dir) else {
            continue;
        };
        let marked = mark_repository(store, &repo, options, &clock).await?;
        plan.live_manifests += marked.live_manifests.len();
        plan.tags.extend(marked.tags);
        for digest in &marked.revisions {
            if !marked.live_manifests.contains(digest) {
                plan.manifests.push(ManifestRemoval {
                    repository: repo.clone(),
                    digest: digest.clone(),
                    reason: Reason::Unreachable,
                });
            }
            plan.seen_revisions.insert((repo.clone(), digest.clone()));
        }
        for (digest, at) in marked.links {
            if marked.live_blobs.contains(&digest) {
                continue;
            }
            if clock.is_old(at) {
                plan.links.push(LinkRemoval {
                    repository: repo.clone(),
                    digest,
                    reason: Reason::UnusedInRepository,
                });
            } else {
                recently_linked.insert(digest);
            }
        }
        live.extend(marked.live_blobs);
    }
    plan.live_blobs = live.len();
    if let Some(run) = run {
        run.check()?;
        // Runs announced after this point mark after every manifest this
        // mark saw (step C8).
        plan.runs_after_mark = store.gc_runs().await?;
    }
    let blobs_dir = format!("{PREFIX}blobs/");
    for (path, at, size) in store.files_under(&blobs_dir).await? {
        let Some(digest) = blob_digest(&path) else {
            continue;
        };
        if live.contains(&digest) || recently_linked.contains(&digest) || !clock.is_old(at) {
            continue;
        }
        plan.blobs.push(BlobRemoval {
            digest,
            size,
            reason: Reason::Unreferenced,
        });
    }
    Ok(plan)
}

/// One repository's mark.
struct RepositoryMark {
    /// Every revision, live or not.
    revisions: Vec<Digest>,
    live_manifests: HashSet<Digest>,
    /// Blobs the live manifests reference, their own bytes included.
    live_blobs: HashSet<Digest>,
    /// The repository's blob links and when each was written.
    links: Vec<(Digest, Option<SystemTime>)>,
    /// What its retention rule decided for the tags it selected.
    tags: Vec<TagDecision>,
}

async fn mark_repository(
    store: &OpendalStore,
    repo: &RepositoryName,
    options: &GcOptions,
    clock: &Clock,
) -> Result<RepositoryMark> {
    let base = Key::RepositoryDir(repo).path();
    let revisions_dir = format!("{base}_manifests/revisions/");
    let revisions: HashMap<Digest, Option<SystemTime>> = store
        .files_under(&revisions_dir)
        .await?
        .into_iter()
        .filter_map(|(path, at, _)| link_digest(&revisions_dir, &path).map(|d| (d, at)))
        .collect();
    let rule = options.retention.rule_for(repo);
    let untagged_go =
        options.delete_untagged || rule.is_some_and(|r| r.untagged_older_than.is_some());
    let needs_tags = untagged_go || rule.is_some_and(|r| r.selects_tags());
    let pulls = match rule {
        Some(r) if r.keep_pulled_within.is_some() => store.pull_times_of(repo).await?,
        _ => HashMap::new(),
    };
    let mut tags = Vec::new();
    if needs_tags {
        let times = tag_times(store, repo).await?;
        for tag in store.tag_names(repo).await? {
            if let Some(digest) = store.read_link(Key::TagCurrentLink(repo, &tag)).await? {
                let at = times.get(&tag).copied().flatten();
                tags.push((tag, digest, at));
            }
        }
    }
    let decisions = match rule {
        Some(r) => r.decide(repo, tags.clone(), &pulls, clock.now),
        None => Vec::new(),
    };
    let mut pending: Vec<Digest> = Vec::new();
    if untagged_go {
        let removed: HashSet<&Tag> = decisions
            .iter()
            .filter(|d| d.removed)
            .map(|d| &d.tag)
            .collect();
        pending.extend(
            tags.into_iter()
                .filter(|(tag, _, _)| !removed.contains(tag))
                .map(|(_, digest, _)| digest),
        );
        // Untagged but recent (a push by digest that a tag may follow), or
        // pulled recently.
        let young = |at: Option<SystemTime>| match rule.and_then(|r| r.untagged_older_than) {
            Some(age) => !Clock {
                now: clock.now,
                grace: age.max(clock.grace),
            }
            .is_old(at),
            None => !clock.is_old(at),
        };
        pending.extend(
            revisions
                .iter()
                .filter(|(d, at)| {
                    young(**at)
                        || rule.is_some_and(|r| r.pulled_recently(d, &pulls, clock.now).is_some())
                })
                .map(|(d, _)| d.clone()),
        );
    } else {
        pending.extend(revisions.keys().cloned());
    }
    let referrers = referrers_of(store, repo).await?;

    let mut live_manifests = HashSet::new();
    let mut live_blobs = HashSet::new();
    while let Some(digest) = pending.pop() {
        if !revisions.contains_key(&digest) || live_manifests.contains(&digest) {
            continue;
        }
        live_manifests.insert(digest.clone());
        live_blobs.insert(digest.clone());
        if let Some(found) = referrers.get(&digest) {
            pending.extend(found.iter().cloned());
        }
        let found = store.references_of(&digest).await.map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!(
                    "manifest {digest} of {repo} cannot be read or parsed, so what it references is unknown; nothing was collected ({e})"
                ),
            )
        })?;
        let Some(refs) = found else {
            tracing::warn!(repository = %repo, %digest, "a revision whose bytes are gone (registry fsck reports it)");
            continue;
        };
        live_blobs.extend(refs.blobs);
        pending.extend(refs.children);
    }

    let layers_dir = format!("{base}_layers/");
    let links = store
        .files_under(&layers_dir)
        .await?
        .into_iter()
        .filter_map(|(path, at, _)| link_digest(&layers_dir, &path).map(|d| (d, at)))
        .collect();
    let mut revisions: Vec<Digest> = revisions.into_keys().collect();
    revisions.sort();
    Ok(RepositoryMark {
        revisions,
        live_manifests,
        live_blobs,
        links,
        tags: decisions,
    })
}

/// When each tag of `repo` was last pushed: its `current/link`'s time, from
/// one listing of the tags folder.
async fn tag_times(
    store: &OpendalStore,
    repo: &RepositoryName,
) -> Result<HashMap<Tag, Option<SystemTime>>> {
    let dir = Key::TagsDir(repo).path();
    Ok(store
        .files_under(&dir)
        .await?
        .into_iter()
        .filter_map(|(path, at, _)| {
            let name = path.strip_prefix(&dir)?.strip_suffix("/current/link")?;
            Some((Tag::parse(name).ok()?, at))
        })
        .collect())
}

/// A repository's referrers by subject.
async fn referrers_of(
    store: &OpendalStore,
    repo: &RepositoryName,
) -> Result<HashMap<Digest, Vec<Digest>>> {
    let base = format!("{}_referrers/", Key::RepositoryDir(repo).path());
    let mut out = HashMap::new();
    for subject in store.list_digests_at(&base).await? {
        let found = store
            .list_digests_at(&Key::ReferrersDir(repo, &subject).path())
            .await?;
        out.insert(subject, found);
    }
    Ok(out)
}

impl OpendalStore {
    /// What the manifest `digest` references: its blobs, and its children
    /// (an index's manifests). `None` if its bytes are gone; an error if
    /// they do not parse. The bytes come from the in-memory cache (they
    /// never change under a digest) or the store.
    pub(super) async fn references_of(&self, digest: &Digest) -> Result<Option<References>> {
        let bytes = match self.inner.manifests.get(digest) {
            Some((_, bytes)) => bytes,
            None => match self.read_manifest_bytes(digest).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::ManifestUnknown => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let manifest = Manifest::parse(&bytes, None, &self.inner.limits)?;
        Ok(Some(References {
            blobs: manifest
                .blob_references()
                .map(|d| d.digest().clone())
                .collect(),
            children: manifest
                .manifest_references()
                .map(|d| d.digest().clone())
                .collect(),
        }))
    }

    /// Every file under `dir`, recursively, with its modification time and
    /// size (read one by one where the listing lacks them).
    pub(crate) async fn files_under(
        &self,
        dir: &str,
    ) -> Result<Vec<(String, Option<SystemTime>, u64)>> {
        if let Backend::Local(fs) = &self.inner.backend {
            return fs.files_under(dir).await;
        }
        let entries = match self.operator().list_with(dir).recursive(true).await {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(storage("listing")(e)),
        };
        let files: Vec<opendal::Entry> = entries
            .into_iter()
            .filter(|e| !e.path().ends_with('/'))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for some in files.chunks(STATS_AT_ONCE) {
            let found = try_join_all(some.iter().map(|e| self.times_of(e))).await?;
            out.extend(found.into_iter().flatten());
        }
        Ok(out)
    }

    /// An entry's path, modification time and size, from the listing or,
    /// where it lacks them, from the object; `None` if it is gone.
    async fn times_of(
        &self,
        entry: &opendal::Entry,
    ) -> Result<Option<(String, Option<SystemTime>, u64)>> {
        let meta = entry.metadata();
        if let Some(at) = meta.last_modified() {
            let found = (
                entry.path().to_owned(),
                Some(SystemTime::from(at)),
                meta.content_length(),
            );
            return Ok(Some(found));
        }
        match self.operator().stat(entry.path()).await {
            Ok(m) => Ok(Some((
                entry.path().to_owned(),
                m.last_modified().map(SystemTime::from),
                m.content_length(),
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage("reading modification time")(e)),
        }
    }
}

/// The digest of `blobs/<alg>/<xx>/<hex>/data`.
fn blob_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix(PREFIX)?.strip_prefix("blobs/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [alg, _, hex, "data"] => Digest::parse(&format!("{alg}:{hex}")).ok(),
        _ => None,
    }
}

/// The digest of `<base><alg>/<hex>/link`.
fn link_digest(base: &str, path: &str) -> Option<Digest> {
    let parts: Vec<&str> = path.strip_prefix(base)?.split('/').collect();
    match parts.as_slice() {
        [alg, hex, "link"] => Digest::parse(&format!("{alg}:{hex}")).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_back_from_paths() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(blob_digest(&Key::BlobData(&d).path()), Some(d.clone()));
        let repo = RepositoryName::parse("a/b").unwrap();
        let base = format!("{}_layers/", Key::RepositoryDir(&repo).path());
        assert_eq!(
            link_digest(&base, &Key::LayerLink(&repo, &d).path()),
            Some(d.clone())
        );
        assert_eq!(link_digest(&base, &format!("{base}sha256/zz/link")), None);
        assert_eq!(blob_digest("docker/registry/v2/blobs/sha256/ab/data"), None);
    }

    #[test]
    fn ages_need_times_unless_the_grace_is_zero() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let clock = Clock {
            now: Some(now),
            grace: hour,
        };
        assert!(clock.is_old(Some(now - 2 * hour)));
        assert!(!clock.is_old(Some(now - hour / 2)));
        assert!(!clock.is_old(None));
        let timeless = Clock {
            now: None,
            grace: Duration::ZERO,
        };
        assert!(timeless.is_old(None));
    }
}
