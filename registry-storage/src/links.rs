//! Link files: small objects that hold a digest string, the way
//! distribution records that a repository has a blob, a manifest revision or
//! a tag; and the few object helpers both backends use on an operator.

use bytes::Bytes;
use opendal::Operator;
use registry_core::{Digest, Error, ErrorKind, Result};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;

impl OpendalStore {
    /// The digest a link holds, or `None` if there is no link.
    pub(crate) async fn read_link(&self, key: Key<'_>) -> Result<Option<Digest>> {
        read_link_at(self.operator(), &key.path()).await
    }

    /// Write (or overwrite, atomically) a link.
    pub(crate) async fn write_link(&self, key: Key<'_>, digest: &Digest) -> Result<()> {
        self.write_object_atomic(&key.path(), digest.to_string().into())
            .await
    }

    /// An object's bytes, or `None` if it is absent; `what` says what was
    /// being read in a storage error.
    pub(crate) async fn read_object(
        &self,
        key: Key<'_>,
        what: &'static str,
    ) -> Result<Option<Bytes>> {
        match self.operator().read(&key.path()).await {
            Ok(buf) => Ok(Some(buf.to_bytes())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage(what)(e)),
        }
    }

    /// Whether an object exists.
    pub(crate) async fn exists(&self, key: Key<'_>) -> Result<bool> {
        exists_at(self.operator(), &key.path()).await
    }

    /// Size of an object, or `None` if absent.
    pub(crate) async fn size_of(&self, key: Key<'_>) -> Result<Option<u64>> {
        size_at(self.operator(), &key.path()).await
    }

    /// Delete an object; absent is fine.
    pub(crate) async fn delete_key(&self, key: Key<'_>) -> Result<()> {
        delete_at(self.operator(), &key.path()).await
    }

    /// Delete a directory and everything under it; absent is fine. Entries
    /// a concurrent writer adds meanwhile may stay (see `removal`).
    pub(crate) async fn delete_dir(&self, key: Key<'_>) -> Result<()> {
        self.remove_tree(&key.path(), None).await.map(drop)
    }

    /// Names of the direct children of a directory (directories end in `/`).
    pub(crate) async fn list_names(&self, key: Key<'_>) -> Result<Vec<String>> {
        self.list_names_at(&key.path()).await
    }

    /// The digests named by `<alg>/<hex>/` folders under `dir` (how
    /// revisions, layers and referrers are laid out); other names are
    /// skipped.
    pub(crate) async fn list_digests_at(&self, dir: &str) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in self.list_names_at(dir).await? {
            for hex in self.list_names_at(&format!("{dir}{alg}")).await? {
                let text = format!(
                    "{}:{}",
                    alg.trim_end_matches('/'),
                    hex.trim_end_matches('/')
                );
                if let Ok(digest) = Digest::parse(&text) {
                    out.push(digest);
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn list_names_at(&self, dir: &str) -> Result<Vec<String>> {
        match self.operator().list(dir).await {
            Ok(entries) => Ok(entries
                .into_iter()
                .filter(|e| e.path() != dir)
                .map(|e| e.name().to_owned())
                .collect()),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(storage("listing")(e)),
        }
    }
}

/// The digest a link file's content names, if it is one.
pub(crate) fn parse_link(content: &[u8]) -> Option<Digest> {
    let text = std::str::from_utf8(content).ok()?;
    Digest::parse(text.trim()).ok()
}

/// Whether a link's content is `expected`.
pub(crate) fn holds(content: &[u8], expected: &Digest) -> bool {
    std::str::from_utf8(content).is_ok_and(|t| t.trim() == expected.to_string())
}

/// The digest the link at `path` holds, or `None` if there is no link.
pub(crate) async fn read_link_at(op: &Operator, path: &str) -> Result<Option<Digest>> {
    match op.read(path).await {
        Ok(buf) => parse_link(&buf.to_vec())
            .map(Some)
            .ok_or_else(|| Error::new(ErrorKind::Storage, format!("corrupt link at {path}"))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(storage("reading link")(e)),
    }
}

/// Size of the object at `path`, or `None` if it is absent.
pub(crate) async fn size_at(op: &Operator, path: &str) -> Result<Option<u64>> {
    match op.stat(path).await {
        Ok(m) => Ok(Some(m.content_length())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(storage("reading size")(e)),
    }
}

/// Whether the object at `path` exists.
pub(crate) async fn exists_at(op: &Operator, path: &str) -> Result<bool> {
    match op.stat(path).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(storage("checking existence")(e)),
    }
}

/// Delete the object at `path`; absent is fine.
pub(crate) async fn delete_at(op: &Operator, path: &str) -> Result<()> {
    match op.delete(path).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(storage("deleting")(e)),
    }
}
