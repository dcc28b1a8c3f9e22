//! The store's root directory, held open, for the lookups of the request
//! path: a tag's link, a revision's link, a blob's size.
//!
//! The kernel resolves a path one component at a time, and with the root
//! held open a lookup walks only the part below it (on Unix, with
//! `openat` and `fstatat`): a store at `/var/lib/registry` saves three of
//! the fifteen components a manifest GET by tag walks, a deeper one more.
//! A link file is read with one `read` into a buffer on the stack, with
//! no `stat` first to size a heap buffer (as `std::fs::read` does).
//!
//! If the root directory itself is removed while the registry runs (and
//! made again, say), the open handle names the removed one: a lookup that
//! finds nothing then checks whether the handle's directory is gone and,
//! if it is, looks the path up by name, as every lookup does where this
//! module has no handle (other platforms).

use std::io::Read;
use std::path::{Path, PathBuf};

use registry_core::Digest;

use crate::links::parse_link;

/// The longest link file read in one go; a link holds a digest (71 bytes
/// for SHA-256, 135 for SHA-512), and a longer file is read in full.
const LINK_BUF: usize = 256;

/// An open directory (none is ever held where lookups relative to one
/// are not built).
#[cfg(unix)]
type Dir = std::os::fd::OwnedFd;
#[cfg(not(unix))]
type Dir = std::convert::Infallible;

/// The root directory: its path, and (on Unix) an open handle to it.
#[derive(Debug)]
pub(crate) struct Root {
    path: PathBuf,
    dir: Option<Dir>,
}

impl Root {
    /// The root at `path` (which should exist); without a handle if it
    /// cannot be opened (every lookup is then by name).
    pub(crate) fn open(path: PathBuf) -> Root {
        #[cfg(unix)]
        let dir = {
            use rustix::fs::{Mode, OFlags};
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            rustix::fs::open(&path, flags, Mode::empty()).ok()
        };
        #[cfg(not(unix))]
        let dir = None;
        Root { path, dir }
    }

    /// The root's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The digest in the link file `rel` (relative to the root), `None` if
    /// there is none; a file that holds no digest is an `InvalidData`
    /// error.
    pub(crate) fn read_link(&self, rel: &str) -> std::io::Result<Option<Digest>> {
        let Some(mut file) = self.lookup(
            rel,
            |dir| open_at(dir, rel),
            || std::fs::File::open(self.path.join(rel)),
        )?
        else {
            return Ok(None);
        };
        let mut buf = [0u8; LINK_BUF];
        let n = file.read(&mut buf)?;
        // A read that returns a whole digest is the whole file: a link file
        // holds nothing else. Otherwise (a short read, a file that is not a
        // link) the rest is read before judging.
        if let Some(digest) = parse_link(&buf[..n]) {
            return Ok(Some(digest));
        }
        let mut text = buf[..n].to_vec();
        if n > 0 {
            file.read_to_end(&mut text)?;
        }
        parse_link(&text).map(Some).ok_or_else(corrupt_link)
    }

    /// The size of the file `rel` (relative to the root), `None` if there
    /// is none.
    pub(crate) fn size_of(&self, rel: &str) -> std::io::Result<Option<u64>> {
        self.lookup(
            rel,
            |dir| size_at(dir, rel),
            || std::fs::metadata(self.path.join(rel)).map(|m| m.len()),
        )
    }

    /// `at` relative to the open root, or `by_name` without one or when
    /// the root directory was removed; `None` for a file that is not there.
    fn lookup<T>(
        &self,
        rel: &str,
        at: impl FnOnce(&Dir) -> std::io::Result<T>,
        by_name: impl FnOnce() -> std::io::Result<T>,
    ) -> std::io::Result<Option<T>> {
        debug_assert!(!rel.starts_with('/'), "{rel} is relative to the root");
        if let Some(dir) = &self.dir {
            match at(dir) {
                Ok(found) => return Ok(Some(found)),
                Err(e) if is_absent(&e) && root_removed(dir) => {}
                Err(e) if is_absent(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        match by_name() {
            Ok(found) => Ok(Some(found)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn is_absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Whether the directory `dir` was removed (a directory's link count is 0
/// once it is).
#[cfg(unix)]
fn root_removed(dir: &Dir) -> bool {
    rustix::fs::fstat(dir).is_ok_and(|st| st.st_nlink == 0)
}

#[cfg(unix)]
fn open_at(dir: &Dir, rel: &str) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    Ok(std::fs::File::from(fd))
}

#[cfg(unix)]
fn size_at(dir: &Dir, rel: &str) -> std::io::Result<u64> {
    let st = rustix::fs::statat(dir, rel, rustix::fs::AtFlags::empty())?;
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

#[cfg(not(unix))]
fn root_removed(dir: &Dir) -> bool {
    match *dir {}
}

#[cfg(not(unix))]
fn open_at(dir: &Dir, _: &str) -> std::io::Result<std::fs::File> {
    match *dir {}
}

#[cfg(not(unix))]
fn size_at(dir: &Dir, _: &str) -> std::io::Result<u64> {
    match *dir {}
}

fn corrupt_link() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt link file")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn root_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let root = Root::open(dir.path().to_owned());
        (dir, root)
    }

    #[test]
    fn reads_links_and_sizes_below_the_root() {
        let long = vec![b'x'; 3 * LINK_BUF];
        let (_dir, root) = root_with(&[
            ("a/link", DIGEST.as_bytes()),
            ("a/newline", format!("{DIGEST}\n").as_bytes()),
            ("a/junk", b"not a digest"),
            ("a/long", &long),
            ("a/data", b"12345"),
        ]);
        let digest: Digest = DIGEST.parse().unwrap();
        assert_eq!(root.read_link("a/link").unwrap(), Some(digest.clone()));
        assert_eq!(root.read_link("a/newline").unwrap(), Some(digest));
        assert_eq!(root.read_link("a/none").unwrap(), None);
        assert_eq!(root.read_link("b/none").unwrap(), None);
        for corrupt in ["a/junk", "a/long"] {
            let err = root.read_link(corrupt).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{corrupt}");
        }
        assert_eq!(root.size_of("a/data").unwrap(), Some(5));
        assert_eq!(root.size_of("a/long").unwrap(), Some(3 * LINK_BUF as u64));
        assert_eq!(root.size_of("a/missing").unwrap(), None);
    }

    #[test]
    fn a_root_removed_and_made_again_is_looked_up_by_name() {
        let (dir, root) = root_with(&[("a/link", DIGEST.as_bytes())]);
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert_eq!(root.read_link("a/link").unwrap(), None);
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/link"), DIGEST).unwrap();
        std::fs::write(dir.path().join("a/data"), b"123").unwrap();
        assert!(root.read_link("a/link").unwrap().is_some());
        assert_eq!(root.size_of("a/data").unwrap(), Some(3));
    }
}
