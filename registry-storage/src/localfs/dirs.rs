//! Directories on the filesystem: created for a write (again, if a
//! concurrent delete pruned them meanwhile) and flushed once they changed.

use std::path::{Path, PathBuf};

/// A new file, its directory created if needed.
pub(super) fn open_new(path: &Path) -> std::io::Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut file = None;
            with_dirs(path, || {
                file = Some(open()?);
                Ok(())
            })?;
            file.ok_or_else(|| std::io::Error::other("file not opened"))
        }
        other => other,
    }
}

/// Create the directories above `path`, then run `op` (which puts an entry
/// at `path`); return the directories created, outermost first. A
/// concurrent delete may remove an empty directory between the two steps
/// (deletes prune the directories they empty): then `op` fails with
/// `NotFound` and both steps are tried again, a bounded number of times.
pub(crate) fn with_dirs(
    path: &Path,
    mut op: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut tries = 0;
    loop {
        match create_dirs(path) {
            Ok(dirs) => created.extend(dirs),
            // A parent pruned between the check and the `mkdir`.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < DIR_RACE_RETRIES => {
                tries += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < DIR_RACE_RETRIES => {
                tries += 1;
            }
            other => return other.map(|()| created),
        }
    }
}

/// How often an operation racing a delete of its directory is retried.
const DIR_RACE_RETRIES: usize = 8;

/// Create the missing directories above `path`; return those created,
/// outermost first.
fn create_dirs(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    Ok(missing)
}

/// fsync the directory that gained `path`'s entry, and the parent of each
/// directory in `created`.
pub(super) fn sync_changed_dirs(path: &Path, created: &[PathBuf]) -> std::io::Result<()> {
    let mut dirs: Vec<&Path> = path.parent().into_iter().collect();
    dirs.extend(created.iter().filter_map(|c| c.parent()));
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        match std::fs::File::open(d) {
            Ok(f) => f.sync_all()?,
            // A concurrent delete removed the entry and its folder: the
            // write was overtaken, and there is nothing of it to flush.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
