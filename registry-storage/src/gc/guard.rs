//! The writer's side of the handshake with collectors (steps W1, W2 and W5
//! of docs/GC.md): a manifest push records what it references before it
//! checks that those exist, and treats what a collection is about to delete
//! as absent.

use std::time::{Duration, Instant};

use futures::future::try_join_all;
use registry_core::{Digest, Error, ErrorKind, RepositoryName, Result};

use super::lease::LEASE;
use crate::OpendalStore;
use crate::layout::Key;

/// How many doom markers a push looks for at once.
const CHECKS_AT_ONCE: usize = 8;

/// A manifest push under way: its record in the store.
#[derive(Debug)]
pub(crate) struct PushGuard {
    nonce: String,
}

/// What the push must do about collections under way.
#[derive(Debug, Default)]
pub(crate) struct Doomed {
    /// References that a collection is deleting: the push is refused as if
    /// they were absent.
    pub(crate) references: Vec<Digest>,
    /// The manifest's own bytes are being deleted: the push waits, then
    /// stores them again.
    pub(crate) itself: bool,
}

impl OpendalStore {
    /// W1 and W2: record the push of `manifest` into `repo` and what it
    /// references, then look for collections about to delete any of it.
    pub(crate) async fn enter_push(
        &self,
        repo: &RepositoryName,
        manifest: &Digest,
        references: &[&Digest],
    ) -> Result<(PushGuard, Doomed)> {
        let nonce = crate::nonce()?;
        if handshake_disabled() {
            return Ok((PushGuard { nonce }, Doomed::default()));
        }
        let mut record = format!("{repo}\n{manifest}\n");
        for d in references {
            record.push_str(&format!("{d}\n"));
        }
        // A unique name: the create cannot conflict.
        self.create_object_exclusive(&Key::GcPush(&nonce).path(), record.into_bytes())
            .await?;
        let guard = PushGuard { nonce };
        let doomed = match self.doomed_of(manifest, references).await {
            Ok(doomed) => doomed,
            Err(e) => {
                self.leave_push(guard).await;
                return Err(e);
            }
        };
        Ok((guard, doomed))
    }

    async fn doomed_of(&self, manifest: &Digest, references: &[&Digest]) -> Result<Doomed> {
        if self.gc_runs().await?.is_empty() {
            return Ok(Doomed::default());
        }
        let itself = self.is_doomed(manifest).await?;
        let mut doomed = Vec::new();
        for some in references.chunks(CHECKS_AT_ONCE) {
            let found = try_join_all(some.iter().map(|d| self.is_doomed(d))).await?;
            doomed.extend(
                some.iter()
                    .zip(found)
                    .filter(|(_, doomed)| *doomed)
                    .map(|(d, _)| (*d).clone()),
            );
        }
        Ok(Doomed {
            references: doomed,
            itself,
        })
    }

    /// Whether a collection under way is about to delete `digest` (one
    /// listing of the runs when none is; their markers otherwise).
    pub(crate) async fn doomed_now(&self, digest: &Digest) -> Result<bool> {
        if self.gc_runs().await?.is_empty() {
            return Ok(false);
        }
        self.is_doomed(digest).await
    }

    /// Wait until no collection is about to delete `digest` (it finished,
    /// or its lease ran out).
    pub(crate) async fn await_collection(&self, digest: &Digest) -> Result<()> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        while self.is_doomed(digest).await? {
            if started.elapsed() > LEASE {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{digest} is being garbage collected; retry"),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        Ok(())
    }

    /// W5: remove the push's record, unless a collection is under way (a
    /// collection that marked before this push may still need it; the
    /// collectors remove it then). Failures are logged, never the push's.
    pub(crate) async fn leave_push(&self, guard: PushGuard) {
        let quiet = match self.gc_runs().await {
            Ok(runs) => runs.is_empty(),
            Err(_) => false,
        };
        if quiet && let Err(e) = self.delete_key(Key::GcPush(&guard.nonce)).await {
            tracing::warn!(error = %e, "could not remove a push record");
        }
    }
}

/// Debug builds only, for the fleet race test that shows the handshake is
/// needed (tests/fleet_gc.rs): with `REGISTRY_TEST_GC_NO_HANDSHAKE` set,
/// manifest pushes neither record themselves nor look for doom markers, as
/// in a registry without the handshake. Release builds ignore the variable.
fn handshake_disabled() -> bool {
    cfg!(debug_assertions) && std::env::var_os("REGISTRY_TEST_GC_NO_HANDSHAKE").is_some()
}

/// An error for a push that references what a collection is deleting: the
/// client is told the blob is unknown and uploads it again.
pub(crate) fn doomed_reference(digest: &Digest, repo: &RepositoryName) -> Error {
    Error::new(
        ErrorKind::ManifestBlobUnknown,
        format!("blob {digest} of repository {repo} is being garbage collected; push it again"),
    )
    .with_detail(serde_json::json!({ "digest": digest }))
}
