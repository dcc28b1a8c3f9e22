//! [`crate::removal`]'s primitives on a directory: compare-and-delete by
//! rename, folders removed only when empty (`rmdir`).

use std::path::{Path, PathBuf};

use registry_core::{Digest, Result};

use super::{LocalFs, blocking, with_dirs};
use crate::links::holds;
use crate::removal::Tree;

impl LocalFs {
    /// Remove the file `rel` if it holds `expected`: read it, rename it
    /// away (atomic, so exactly one remover gets it), and check what was
    /// taken. A newer link renamed over it between the read and the rename
    /// is linked back, unless a still newer one took its place.
    pub(crate) async fn remove_if_content(&self, rel: &str, expected: Digest) -> Result<bool> {
        let path = self.abs(rel);
        let taken = self.tmp_dir().join(format!("taken-{}", crate::nonce()?));
        blocking(move || {
            let held_at = |p: &Path| match std::fs::read(p) {
                Ok(c) => Ok(Some(holds(&c, &expected))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
            if held_at(&path)? != Some(true) {
                return Ok(false);
            }
            std::fs::create_dir_all(taken.parent().unwrap_or(Path::new("/")))?;
            match std::fs::rename(&path, &taken) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
            if held_at(&taken)? == Some(true) {
                std::fs::remove_file(&taken)?;
                return Ok(true);
            }
            // A newer link: put it back unless a newer one still is there.
            let restored = with_dirs(&path, || std::fs::hard_link(&taken, &path));
            let _ = std::fs::remove_file(&taken);
            match restored {
                Ok(_) => Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// [`OpendalStore::remove_tree`] on a directory: unlink the files, then
    /// remove the folders deepest first with `rmdir`, which fails on a
    /// folder a writer put something in meanwhile.
    pub(crate) async fn remove_tree(&self, rel: &str, keep: Option<&str>) -> Result<Tree> {
        let dir = self.abs(rel);
        let keep = keep.map(|k| dir.join(k));
        blocking(move || {
            for _ in 0..8 {
                if keep.as_ref().is_some_and(|k| k.exists()) {
                    return Ok(Tree::Kept);
                }
                let (mut files, mut dirs) = (Vec::new(), Vec::new());
                if !walk(&dir, &mut files, &mut dirs)? {
                    return Ok(Tree::Gone);
                }
                if keep.as_ref().is_some_and(|k| files.contains(k)) {
                    return Ok(Tree::Kept);
                }
                for f in &files {
                    ignore_not_found(std::fs::remove_file(f))?;
                }
                let mut refilled = false;
                // `walk` lists a folder after everything in it.
                for d in &dirs {
                    match std::fs::remove_dir(d) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                            refilled = true;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if !refilled {
                    return Ok(Tree::Gone);
                }
            }
            Ok(Tree::Busy)
        })
        .await
    }

    /// Remove the file `rel`, then up to `levels` folders above it while
    /// they are empty.
    pub(crate) async fn remove_pruning(&self, rel: &str, levels: usize) -> Result<()> {
        let path = self.abs(rel);
        blocking(move || {
            ignore_not_found(std::fs::remove_file(&path))?;
            let mut dir = path.parent();
            for _ in 0..levels {
                let Some(d) = dir else { break };
                match std::fs::remove_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Someone else's entry is in it: it stays.
                    Err(_) => break,
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }
}

/// List `dir` depth first: files, and folders after their contents.
/// `Ok(false)` if `dir` does not exist.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                walk(&path, files, dirs)?;
            }
            Ok(_) => files.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    dirs.push(dir.to_path_buf());
    Ok(true)
}

fn ignore_not_found(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
