//! Garbage collection: find what no tag reaches and remove it, online, with
//! any number of processes pushing, deleting and collecting on one store.
//!
//! The design and the argument are in docs/GC.md; the handshake with writers
//! is model-checked (docs/models/gc.pml). In short:
//!
//! - [`mark`]: per repository, the live manifests (tagged ones, or every
//!   revision without `delete_untagged`, plus index children and referrers,
//!   recursively) and the blobs they reference; everything else older than
//!   the grace period (in the store's own time) is a candidate.
//! - [`sweep`]: a collection announces itself (`_registry/gc/runs/<run>`),
//!   marks, writes a doom marker on each candidate, reads the records of the
//!   manifest pushes under way, keeps what they reference and deletes the
//!   rest while its lease holds.
//! - [`guard`]: the writer's side. A manifest push records what it
//!   references before it checks that it exists, and treats a doomed
//!   reference as absent.

mod guard;
mod lease;
mod mark;
mod retention;
mod sweep;

use std::collections::BTreeSet;
use std::time::Duration;

use registry_core::{Digest, RepositoryName, Result};

use crate::OpendalStore;

pub(crate) use guard::{Doomed, doomed_reference};
pub use retention::{Retention, RetentionRule, TagDecision};

/// What a collection does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Content written more recently than this is kept, whatever references
    /// it (default 24 h). Measured in the store's own time.
    pub grace: Duration,
    /// Remove manifests that no tag reaches (directly, through an index, or
    /// as a referrer of a reached manifest). Off: every manifest revision is
    /// kept, and only blobs no revision references are removed.
    pub delete_untagged: bool,
    /// Delete. Off: only plan, and report what would be removed.
    pub commit: bool,
    /// Retention rules: which tags go, and when untagged manifests may
    /// (the module documentation of [`Retention`] says how). None: every
    /// tag stays.
    pub retention: Retention,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(24 * 3600),
            delete_untagged: false,
            commit: false,
            retention: Retention::default(),
        }
    }
}

impl GcOptions {
    /// Set [`GcOptions::grace`].
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Set [`GcOptions::delete_untagged`].
    pub fn with_delete_untagged(mut self, on: bool) -> Self {
        self.delete_untagged = on;
        self
    }

    /// Set [`GcOptions::retention`].
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Set [`GcOptions::commit`].
    pub fn with_commit(mut self, on: bool) -> Self {
        self.commit = on;
        self
    }
}

/// Why something is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// A manifest no tag reaches, directly, through an index or as a
    /// referrer of a reached manifest.
    Unreachable,
    /// A repository's link to a blob that no live manifest of that
    /// repository references.
    UnusedInRepository,
    /// Blob bytes that no live manifest of any repository references.
    Unreferenced,
}

impl Reason {
    /// A short explanation, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unreachable => "no tag reaches it",
            Reason::UnusedInRepository => "no live manifest of the repository references it",
            Reason::Unreferenced => "no live manifest references it",
        }
    }
}

/// A manifest revision that is (or would be) removed from a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestRemoval {
    /// The repository.
    pub repository: RepositoryName,
    /// The manifest.
    pub digest: Digest,
    /// Why.
    pub reason: Reason,
}

/// A repository's link to a blob that is (or would be) removed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkRemoval {
    /// The repository.
    pub repository: RepositoryName,
    /// The blob.
    pub digest: Digest,
    /// Why.
    pub reason: Reason,
}

/// Blob bytes that are (or would be) removed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlobRemoval {
    /// The blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Why.
    pub reason: Reason,
}

/// What a collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Whether the removals below were made (`false`: a plan only).
    pub committed: bool,
    /// What the retention rules decided for each tag they selected:
    /// removed (or, in a plan, to be removed), or kept and why.
    pub tags: Vec<TagDecision>,
    /// Manifest revisions removed.
    pub manifests: Vec<ManifestRemoval>,
    /// Blob links removed.
    pub links: Vec<LinkRemoval>,
    /// Blob bytes removed.
    pub blobs: Vec<BlobRemoval>,
    /// Candidates kept because a manifest push under way references them.
    pub kept_for_pushes: BTreeSet<Digest>,
    /// Live manifests found by the mark (summed over repositories).
    pub live_manifests: usize,
    /// Distinct live blobs (manifests' bytes included).
    pub live_blobs: usize,
}

impl GcReport {
    /// Bytes of the blobs removed.
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    /// The one summary line: `gc: N manifests, M blobs, B bytes removed`
    /// (or `would remove`).
    pub fn summary(&self) -> String {
        let (m, b, n) = (self.manifests.len(), self.blobs.len(), self.bytes());
        if self.committed {
            format!("gc: {m} manifests, {b} blobs, {n} bytes removed")
        } else {
            format!("gc: would remove {m} manifests, {b} blobs, {n} bytes")
        }
    }
}

impl OpendalStore {
    /// Collect garbage (docs/GC.md): plan, and with
    /// [`GcOptions::commit`] delete, safely while any number of processes
    /// push, delete and collect on the same store. A collection killed at
    /// any point leaves a consistent store that the next one finishes.
    pub async fn collect_garbage(&self, options: &GcOptions) -> Result<GcReport> {
        let run = if options.commit {
            Some(lease::Run::announce(self).await?)
        } else {
            None
        };
        let result = async {
            let plan = mark::mark(self, options, run.as_ref()).await?;
            match &run {
                Some(run) => sweep::sweep(self, plan, run).await,
                None => Ok(plan.into_report(false)),
            }
        }
        .await;
        if let Some(run) = run {
            run.end(self).await;
        }
        result
    }
}
