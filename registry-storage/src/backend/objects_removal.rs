//! Deletes that tolerate concurrent writers, on an OpenDAL operator (the
//! primitives are described in `removal`).

use registry_core::{Digest, Result};

use super::{Objects, Serial};
use crate::error::{is_condition_failed, is_not_found, storage};
use crate::links::{delete_at, holds, read_link_at};
use crate::removal::Tree;

/// Serialises tag writes with compare-and-delete of tags on backends that
/// cannot delete conditionally. One for the process, not one per store:
/// several stores may share one operator (one memory backend, say).
static LINK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many times a conditional delete that lost to a concurrent write is
/// evaluated again.
const CAS_RETRIES: usize = 8;

impl Objects {
    fn deletes_conditionally(&self) -> bool {
        self.operator().info().capability().delete_with_if_match
    }

    pub(super) async fn tag_lock(&self) -> Serial {
        if self.deletes_conditionally() {
            None
        } else {
            Some(LINK_LOCK.lock().await)
        }
    }

    /// S3: read the ETag and the content (`If-Match`), then `DELETE` with
    /// `If-Match` on that ETag, again while a write comes in between.
    /// Elsewhere: under the in-process lock that tag writes take too.
    pub(super) async fn delete_link_if(&self, path: &str, expected: &Digest) -> Result<bool> {
        let op = self.operator();
        if self.deletes_conditionally() {
            for _ in 0..CAS_RETRIES {
                let etag = match op.stat(path).await {
                    Ok(meta) => meta.etag().map(str::to_owned),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) => return Err(storage("checking link")(e)),
                };
                let Some(etag) = etag else { break };
                let held = match op.read_with(path).if_match(&etag).await {
                    Ok(buf) => buf.to_vec(),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) if is_condition_failed(&e) => {
                        crate::stats::conditional_lost();
                        continue;
                    }
                    Err(e) => return Err(storage("reading link")(e)),
                };
                if !holds(&held, expected) {
                    return Ok(false);
                }
                match op.delete_with(path).if_match(&etag).await {
                    Ok(()) => return Ok(true),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) if is_condition_failed(&e) => {
                        crate::stats::conditional_lost();
                        continue;
                    }
                    Err(e) => return Err(storage("deleting link")(e)),
                }
            }
            // Still losing after several rounds, or no ETag: fall through
            // to the in-process lock rather than fail the delete.
        }
        let _serial = LINK_LOCK.lock().await;
        if read_link_at(op, path).await?.as_ref() != Some(expected) {
            return Ok(false);
        }
        delete_at(op, path).await?;
        Ok(true)
    }

    pub(super) async fn remove_tree(&self, dir: &str, keep: Option<&str>) -> Result<Tree> {
        let op = self.operator();
        let keep = keep.map(|k| format!("{dir}{k}"));
        for _ in 0..3 {
            let entries = match op.list_with(dir).recursive(true).await {
                Ok(entries) => entries,
                Err(e) if is_not_found(&e) => return Ok(Tree::Gone),
                Err(e) => return Err(storage("listing")(e)),
            };
            let mut paths: Vec<String> = entries
                .into_iter()
                .map(|e| e.path().to_owned())
                .filter(|p| p != dir)
                .collect();
            if paths.is_empty() {
                // A filesystem operator keeps the empty folder itself.
                let _ = op.delete(dir).await;
                return Ok(Tree::Gone);
            }
            if keep.as_ref().is_some_and(|k| paths.contains(k)) {
                return Ok(Tree::Kept);
            }
            // Objects first, then folders deepest first (only backends
            // with real folders list them).
            paths.sort_by_key(|p| (p.ends_with('/'), std::cmp::Reverse(p.len())));
            for p in &paths {
                match op.delete(p).await {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    // A folder a writer refilled: look again.
                    Err(_) if p.ends_with('/') => {}
                    Err(e) => return Err(storage("deleting")(e)),
                }
            }
        }
        Ok(Tree::Busy)
    }

    pub(super) async fn remove_link(&self, path: &str, levels: usize) -> Result<()> {
        let op = self.operator();
        delete_at(op, path).await?;
        if self.in_place() {
            // A filesystem operator: prune empty folders; one a writer
            // refilled stays.
            let mut dir = path;
            for _ in 0..levels {
                let Some(cut) = dir.trim_end_matches('/').rfind('/') else {
                    break;
                };
                dir = &dir[..=cut];
                if op.delete(dir).await.is_err() {
                    break;
                }
            }
        }
        Ok(())
    }
}
