//! The sweep: doom markers, the push records, the deletes, and the
//! clean-up (steps C4 to C8 of docs/GC.md).
//!
//! Manifests go first, then blob links and bytes, so a collection killed
//! in between leaves only unreferenced blobs, which the next one removes.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use registry_core::{Digest, Error, ErrorKind, RepositoryName, Result};

use super::GcReport;
use super::lease::{LEASE, MARGIN, Run, counts, lapsed, write_expiry};
use super::mark::Plan;
use crate::OpendalStore;
use crate::layout::Key;

/// How many digests one batch dooms, checks against the push records and
/// deletes before its markers' lease runs short.
const BATCH: usize = 256;

/// How many markers are written or removed at once.
const WRITES_AT_ONCE: usize = 16;

/// A push record older than this (by the store's time) is a dead push's.
const RECORD_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

pub(crate) async fn sweep(store: &OpendalStore, plan: Plan, run: &Run) -> Result<GcReport> {
    let mut report = GcReport {
        committed: true,
        live_manifests: plan.live_manifests,
        live_blobs: plan.live_blobs,
        ..GcReport::default()
    };

    // Retention's tag removals: ordinary tag deletes, each only while the
    // tag still names the manifest the rule decided on.
    for decision in &plan.tags {
        let mut decision = decision.clone();
        if decision.removed {
            run.check()?;
            let (repo, tag) = (&decision.repository, &decision.tag);
            if !store.remove_tag(repo, tag, Some(&decision.digest)).await? {
                decision.removed = false;
                decision.why = format!(
                    "{}, but kept: moved or removed since the mark",
                    decision.why
                );
            }
        }
        report.tags.push(decision);
    }

    let manifests = plan.manifests.iter().map(|m| m.digest.clone());
    in_doomed_batches(store, run, &plan, Phase::Manifests, manifests, &mut report).await?;

    // A manifest kept for a push keeps what it references, as the mark
    // would have had it been live.
    let revived = referenced_by(store, &report.kept_for_pushes).await?;
    report.kept_for_pushes.extend(revived);
    let blobs = (plan.links.iter().map(|l| l.digest.clone()))
        .chain(plan.blobs.iter().map(|b| b.digest.clone()))
        .filter(|d| !report.kept_for_pushes.contains(d))
        .collect::<Vec<_>>();
    in_doomed_batches(store, run, &plan, Phase::Blobs, blobs, &mut report).await?;

    clean_up(store, run, &plan).await;
    report.manifests.sort();
    report.links.sort();
    report.blobs.sort();
    Ok(report)
}

/// What a sweep phase deletes: manifests first, then blob links and bytes.
#[derive(Clone, Copy)]
enum Phase {
    Manifests,
    Blobs,
}

/// C4 to C7 for one phase over `digests` (sorted and without repeats
/// here), a batch at a time: the batch doomed and checked against the push
/// records, then the phase's deletes in it, then its markers removed
/// whatever the deletes did. The digests kept for pushes go to the report.
async fn in_doomed_batches(
    store: &OpendalStore,
    run: &Run,
    plan: &Plan,
    phase: Phase,
    digests: impl IntoIterator<Item = Digest>,
    report: &mut GcReport,
) -> Result<()> {
    let digests: Vec<Digest> = digests
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for batch in digests.chunks(BATCH) {
        let (kept, deadline) = doom(store, run, phase, batch).await?;
        let doomed = Doomed {
            batch,
            kept: &kept,
            deadline,
        };
        let result = match phase {
            Phase::Manifests => delete_manifests(store, plan, &doomed, report).await,
            Phase::Blobs => delete_blobs(store, plan, &doomed, report).await,
        };
        undoom(store, run, batch).await;
        result?;
        report.kept_for_pushes.extend(kept);
    }
    Ok(())
}

/// One doomed batch: its digests, those of them a push under way
/// references (to keep), and the time by which its deletes must be done.
struct Doomed<'a> {
    batch: &'a [Digest],
    kept: &'a HashSet<Digest>,
    deadline: Instant,
}

impl Doomed<'_> {
    /// Whether `digest` is in the batch and may be deleted now: not kept,
    /// and (an error otherwise) before the deadline.
    fn deletes(&self, digest: &Digest) -> Result<bool> {
        if !self.batch.contains(digest) || self.kept.contains(digest) {
            return Ok(false);
        }
        before(self.deadline)?;
        Ok(true)
    }
}

/// C6 for manifests: the planned manifests of the batch.
async fn delete_manifests(
    store: &OpendalStore,
    plan: &Plan,
    doomed: &Doomed<'_>,
    report: &mut GcReport,
) -> Result<()> {
    for m in &plan.manifests {
        if !doomed.deletes(&m.digest)? {
            continue;
        }
        let none = crate::deletes::Tags::NoneName;
        match store
            .delete_revision_with(&m.repository, &m.digest, none)
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::ManifestUnknown => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = store.delete_key(Key::Pull(&m.repository, &m.digest)).await {
            tracing::debug!(error = %e, "a removed manifest's pull time stays");
        }
        report.manifests.push(m.clone());
    }
    Ok(())
}

/// C6 for blobs: the planned layer links, then blob bytes, of the batch.
async fn delete_blobs(
    store: &OpendalStore,
    plan: &Plan,
    doomed: &Doomed<'_>,
    report: &mut GcReport,
) -> Result<()> {
    for l in &plan.links {
        if doomed.deletes(&l.digest)? {
            store
                .remove_link(Key::LayerLink(&l.repository, &l.digest), 1)
                .await?;
            report.links.push(l.clone());
        }
    }
    for b in &plan.blobs {
        if doomed.deletes(&b.digest)? {
            store.remove_link(Key::BlobData(&b.digest), 2).await?;
            report.blobs.push(b.clone());
        }
    }
    Ok(())
}

/// C4 and C5 for one batch: doom each digest, then read the push records.
/// Returns the digests a push under way references (to keep) and the time
/// by which the batch's deletes must be done.
async fn doom(
    store: &OpendalStore,
    run: &Run,
    phase: Phase,
    batch: &[Digest],
) -> Result<(HashSet<Digest>, Instant)> {
    run.check()?;
    let written = Instant::now();
    for some in batch.chunks(WRITES_AT_ONCE) {
        let marked = try_join_all(
            some.iter()
                .map(|d| write_expiry_at(store, Key::GcDoomed(d, &run.id).path())),
        )
        .await;
        if let Err(e) = marked {
            undoom(store, run, batch).await;
            return Err(e);
        }
    }
    if matches!(phase, Phase::Blobs) {
        pause_for_test().await;
    }
    let pushed = match store.pushed_references().await {
        Ok(pushed) => pushed,
        Err(e) => {
            undoom(store, run, batch).await;
            return Err(e);
        }
    };
    let kept = batch
        .iter()
        .filter(|d| pushed.contains(*d))
        .cloned()
        .collect();
    Ok((kept, (written + LEASE - MARGIN).min(run.deadline())))
}

/// Debug builds only, for the race made deterministic in tests/server_gc.rs:
/// with `REGISTRY_TEST_GC_PAUSE_BLOBS=PATH` set, each batch of the blob
/// phase stops once it is doomed, before the push records are read: it
/// creates `PATH.paused` and waits until `PATH` exists (at most 60 s), so
/// a test can push while a collection is at that point. Release builds
/// ignore the variable.
async fn pause_for_test() {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(path) = std::env::var_os("REGISTRY_TEST_GC_PAUSE_BLOBS") else {
        return;
    };
    let go = std::path::PathBuf::from(&path);
    let mut paused = path;
    paused.push(".paused");
    if let Err(e) = std::fs::write(&paused, b"") {
        tracing::warn!(error = %e, "test pause: cannot create the paused file");
        return;
    }
    let until = Instant::now() + Duration::from_secs(60);
    while !go.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// C7: remove the batch's markers, also after a failure. Markers that
/// cannot be removed expire on their own.
async fn undoom(store: &OpendalStore, run: &Run, batch: &[Digest]) {
    for some in batch.chunks(WRITES_AT_ONCE) {
        let removed = try_join_all(
            some.iter()
                .map(|d| store.remove_link(Key::GcDoomed(d, &run.id), 3)),
        )
        .await;
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not remove doom markers; they expire on their own");
        }
    }
}

async fn write_expiry_at(store: &OpendalStore, path: String) -> Result<()> {
    write_expiry(store, &path).await
}

/// Everything the manifests `kept` reference, recursively through index
/// children. `kept` holds only manifests (the first phase dooms nothing
/// else), so no layer is ever read here.
async fn referenced_by(store: &OpendalStore, kept: &BTreeSet<Digest>) -> Result<HashSet<Digest>> {
    let mut out = HashSet::new();
    let mut pending: Vec<Digest> = kept.iter().cloned().collect();
    let mut visited = HashSet::new();
    while let Some(digest) = pending.pop() {
        if !visited.insert(digest.clone()) {
            continue;
        }
        // Gone, or bytes that do not parse (the push will be refused).
        let Ok(Some(refs)) = store.references_of(&digest).await else {
            continue;
        };
        out.extend(refs.blobs);
        out.extend(refs.children.iter().cloned());
        pending.extend(refs.children);
    }
    Ok(out)
}

fn before(deadline: Instant) -> Result<()> {
    if Instant::now() < deadline {
        Ok(())
    } else {
        Err(lapsed())
    }
}

/// One push record: the repository, the manifest, what it references.
struct PushRecord {
    repository: RepositoryName,
    manifest: Digest,
    references: Vec<Digest>,
}

fn parse_record(bytes: &[u8]) -> Option<PushRecord> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    let repository = RepositoryName::parse(lines.next()?).ok()?;
    let manifest = Digest::parse(lines.next()?).ok()?;
    let references = lines.filter_map(|l| Digest::parse(l).ok()).collect();
    Some(PushRecord {
        repository,
        manifest,
        references,
    })
}

impl OpendalStore {
    /// Every digest the manifest pushes under way reference (their own
    /// included). An unreadable record fails the batch: nothing may be
    /// deleted that a push might need.
    async fn pushed_references(&self) -> Result<HashSet<Digest>> {
        let mut out = HashSet::new();
        for name in self.list_names(Key::GcPushesDir).await? {
            let Some(bytes) = self
                .read_object(Key::GcPush(&name), "reading a push record")
                .await?
            else {
                continue;
            };
            let record = parse_record(&bytes).ok_or_else(|| {
                Error::new(
                    ErrorKind::Storage,
                    format!("unreadable push record {name}; nothing was deleted"),
                )
            })?;
            out.insert(record.manifest);
            out.extend(record.references);
        }
        Ok(out)
    }
}

/// C8, and leftovers of dead collections: push records whose manifest the
/// mark saw (unless a collection listed when the mark ended still runs),
/// push records of dead
/// pushes, expired run records and doom markers. Failures are logged: all
/// of it is tidying.
async fn clean_up(store: &OpendalStore, run: &Run, plan: &Plan) {
    let (seen, earlier) = (&plan.seen_revisions, &plan.runs_after_mark);
    let result = async {
        // No run that may have marked before a push this mark saw is still
        // listed (runs announced since the mark ended mark after it).
        let alone = store
            .gc_runs()
            .await?
            .iter()
            .all(|r| *r == run.id || !earlier.contains(r));
        let now = store.store_now().await?;
        for (path, at, _) in store.files_under(&Key::GcPushesDir.path()).await? {
            let dead = matches!((now, at), (Some(now), Some(at))
                if now.duration_since(at).is_ok_and(|age| age > RECORD_MAX_AGE));
            let overtaken = alone
                && match store.operator().read(&path).await {
                    Ok(buf) => parse_record(&buf.to_vec())
                        .is_some_and(|r| seen.contains(&(r.repository, r.manifest))),
                    Err(_) => false,
                };
            if dead || overtaken {
                store
                    .operator()
                    .delete(&path)
                    .await
                    .map_err(crate::error::storage("removing a push record"))?;
            }
        }
        for dir in [Key::GcRunsDir.path(), Key::GcDoomedRoot.path()] {
            for (path, _, _) in store.files_under(&dir).await? {
                if let Ok(buf) = store.operator().read(&path).await
                    && !counts(&buf.to_vec())
                {
                    store
                        .operator()
                        .delete(&path)
                        .await
                        .map_err(crate::error::storage("removing an expired lease"))?;
                }
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "tidying the collector's records failed; the next run tries again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_records_parse_back() {
        let (m, b) = (Digest::sha256_of(b"m"), Digest::sha256_of(b"b"));
        let text = format!("team/app\n{m}\n{b}\n");
        let r = parse_record(text.as_bytes()).unwrap();
        assert_eq!(r.repository.as_str(), "team/app");
        assert_eq!(r.manifest, m);
        assert_eq!(r.references, vec![b]);
        assert!(parse_record(b"").is_none());
        assert!(parse_record(b"team/app\nnot a digest\n").is_none());
    }
}
