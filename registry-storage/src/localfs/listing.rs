//! The folders of a directory, as tags and referrers are listed: every
//! name, or only the smallest few after a given one (a page), without a
//! string per entry.
//!
//! A directory lists its entries in no order, so a page in name order
//! reads every name (SECURITY.md, "Cost bounds"). What it need not do is
//! keep them: a page holds only the smallest names seen so far, in a heap
//! as large as the page, so a page of 100 of 100,000 tags allocates about
//! a hundred strings, not 100,000. On Linux the names are read with
//! `getdents64` into one buffer and looked at in place; elsewhere through
//! `std::fs::read_dir`.

use std::collections::BinaryHeap;
use std::path::Path;

/// Call `each` with the name of every folder directly under `dir`
/// (UTF-8 names only; others are no name this registry writes), in the
/// directory's order. A missing `dir` has none.
pub(crate) fn each_child_folder(dir: &Path, each: impl FnMut(&str)) -> std::io::Result<()> {
    each_child_folder_in(dir, each)
}

/// The at most `keep` smallest folder names under `dir` that come after
/// `after` and pass `wanted`, in ascending order.
pub(crate) fn smallest_child_folders(
    dir: &Path,
    after: Option<&str>,
    keep: usize,
    wanted: impl Fn(&str) -> bool,
) -> std::io::Result<Vec<String>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let mut held: BinaryHeap<String> = BinaryHeap::with_capacity(keep.min(4096));
    each_child_folder(dir, |name| {
        if after.is_some_and(|a| name <= a) || !wanted(name) {
            return;
        }
        if held.len() < keep {
            held.push(name.to_owned());
        } else if held.peek().is_some_and(|largest| name < largest.as_str()) {
            // Reuse the evicted string's buffer for the new name.
            if let Some(mut largest) = held.pop() {
                largest.clear();
                largest.push_str(name);
                held.push(largest);
            }
        }
    })?;
    Ok(held.into_sorted_vec())
}

#[cfg(target_os = "linux")]
fn each_child_folder_in(dir: &Path, mut each: impl FnMut(&str)) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = RawDir::new(&fd, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name();
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            // A filesystem that does not say: ask (an entry removed
            // meanwhile is skipped).
            FileType::Unknown => rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            _ => false,
        };
        if is_dir
            && let Ok(name) = name.to_str()
            && name != "."
            && name != ".."
        {
            each(name);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn each_child_folder_in(dir: &Path, mut each: impl FnMut(&str)) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        // An entry removed meanwhile is skipped.
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Ok(name) = entry.file_name().into_string()
        {
            each(&name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(folders: &[&str], files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in folders {
            std::fs::create_dir(dir.path().join(f)).unwrap();
        }
        for f in files {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        dir
    }

    #[test]
    fn every_folder_and_only_folders() {
        let dir = dir_with(&["b", "a", "c-1"], &["file", "a.txt"]);
        let mut seen = Vec::new();
        each_child_folder(dir.path(), |n| seen.push(n.to_owned())).unwrap();
        seen.sort();
        assert_eq!(seen, ["a", "b", "c-1"]);
        let mut none = 0;
        each_child_folder(&dir.path().join("missing"), |_| none += 1).unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn the_smallest_after_a_name_match_a_full_sort() {
        let names: Vec<String> = (0..500)
            .map(|i| format!("t{:03}", (i * 7919) % 500))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let dir = dir_with(&refs, &["t000.file"]);
        let mut sorted = names.clone();
        sorted.sort();
        let wanted = |n: &str| !n.ends_with('7');
        for (after, keep) in [
            (None, 10),
            (Some("t123"), 5),
            (Some("t495"), 10),
            (None, 0),
            (None, 1000),
        ] {
            let expected: Vec<&String> = sorted
                .iter()
                .filter(|n| after.is_none_or(|a| n.as_str() > a) && wanted(n))
                .take(keep)
                .collect();
            let got = smallest_child_folders(dir.path(), after, keep, wanted).unwrap();
            assert_eq!(got.iter().collect::<Vec<_>>(), expected, "{after:?} {keep}");
        }
    }
}
