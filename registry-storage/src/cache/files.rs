//! [`Files`]: the cached blob files on local disk, their index and their
//! byte bound.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{ByteStream, Digest, Error, ErrorKind, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::follow::Progress;
use super::recency::Recency;
use super::stats::{Counters, add};

/// Read size of cache hits.
const READ_BUF: usize = 1024 * 1024;

/// The cache directory: `<alg>/<hex>` per cached blob, `tmp/` for fills.
pub(super) struct Files {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// What the cache counts (hits, fills, evictions...).
    pub(super) counters: Counters,
}

struct Index {
    /// Cached blobs and their sizes, least recently used first.
    blobs: Recency<Digest, u64>,
    /// Sum of the sizes in `blobs`.
    total: u64,
    /// Blobs being filled right now, and how far each fill is.
    filling: HashMap<Digest, Arc<Progress>>,
}

impl Files {
    /// Open the cache in `dir`: blobs already there are indexed, oldest
    /// modification first, and trimmed to `max_bytes`; leftovers of
    /// interrupted fills are removed.
    pub(super) fn open(dir: PathBuf, max_bytes: u64) -> Result<Self> {
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Storage, format!("blob cache: {what}")).with_source(e)
        };
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| io("creating directory", e))?;
        let _ = std::fs::remove_dir_all(dir.join("tmp"));
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| io("creating directory", e))?;
        let mut found = Vec::new();
        for alg in ["sha256", "sha512"] {
            let Ok(rd) = std::fs::read_dir(dir.join(alg)) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(hex) = name.to_str() else { continue };
                let Ok(digest) = Digest::parse(&format!("{alg}:{hex}")) else {
                    continue;
                };
                let Ok(meta) = entry.metadata() else { continue };
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((mtime, digest, meta.len()));
            }
        }
        found.sort();
        let mut index = Index {
            blobs: Recency::new(),
            total: 0,
            filling: HashMap::new(),
        };
        for (_, digest, size) in found {
            index.total += size;
            index.blobs.insert(digest, size);
        }
        let files = Files {
            dir,
            max_bytes,
            index: Mutex::new(index),
            counters: Counters::default(),
        };
        files.evict(0);
        Ok(files)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(super) fn total(&self) -> u64 {
        self.lock().total
    }

    /// The size of `digest` if it is cached.
    pub(super) fn size(&self, digest: &Digest) -> Option<u64> {
        self.lock().blobs.get(digest).copied()
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// A fresh temporary path for a fill of `digest`.
    fn tmp_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("tmp").join(format!(
            "{}-{}",
            digest.hex(),
            crate::nonce().unwrap_or_default()
        ))
    }

    /// Stream `range` of a cached blob and count it as used. `None` if the
    /// file is gone (evicted since the caller looked): the blob is then no
    /// longer indexed either.
    pub(super) async fn read(
        &self,
        digest: &Digest,
        range: std::ops::Range<u64>,
    ) -> Option<ByteStream> {
        match file_stream(self.path(digest), range).await {
            Ok(body) => {
                self.lock().blobs.touch(digest);
                Some(body)
            }
            Err(_) => {
                let mut index = self.lock();
                if let Some(size) = index.blobs.remove(digest) {
                    index.total -= size;
                }
                None
            }
        }
    }

    /// Claim the fill of `digest`; false if another request is filling it.
    pub(super) fn start_fill(&self, digest: &Digest) -> bool {
        let progress = Arc::new(Progress::new(self.tmp_path(digest), self.path(digest)));
        let mut index = self.lock();
        if index.filling.contains_key(digest) {
            return false;
        }
        index.filling.insert(digest.clone(), progress);
        true
    }

    /// The fill of `digest` in progress, if there is one (to follow it, or,
    /// for the filler, to report on it).
    pub(super) fn progress(&self, digest: &Digest) -> Option<Arc<Progress>> {
        self.lock().filling.get(digest).cloned()
    }

    /// Release the claim of [`start_fill`](Self::start_fill); a fill not
    /// admitted by then has failed, for whoever follows it.
    pub(super) fn end_fill(&self, digest: &Digest) {
        if let Some(progress) = self.lock().filling.remove(digest) {
            progress.end(false);
        }
    }

    /// Move a verified fill into the cache, making room first; whether it
    /// is in.
    pub(super) fn admit(&self, digest: &Digest, tmp: &Path, size: u64) -> bool {
        if size > self.max_bytes {
            let _ = std::fs::remove_file(tmp);
            return false;
        }
        self.evict(size);
        let dest = self.path(digest);
        let ok = dest
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .is_ok()
            && std::fs::rename(tmp, &dest).is_ok();
        if !ok {
            let _ = std::fs::remove_file(tmp);
            return false;
        }
        let mut index = self.lock();
        if index.blobs.insert(digest.clone(), size).is_none() {
            index.total += size;
        }
        drop(index);
        add(&self.counters.fills, 1);
        add(&self.counters.fill_bytes, size);
        true
    }

    /// Drop least recently used blobs until `incoming` more bytes fit.
    fn evict(&self, incoming: u64) {
        let mut victims = Vec::new();
        {
            let mut index = self.lock();
            while index.total + incoming > self.max_bytes {
                let Some((digest, size)) = index.blobs.pop_oldest() else {
                    break;
                };
                index.total -= size;
                add(&self.counters.evictions, 1);
                add(&self.counters.evicted_bytes, size);
                victims.push(digest);
            }
        }
        // Readers holding a file open keep reading it after the unlink.
        for d in victims {
            let _ = std::fs::remove_file(self.path(&d));
        }
    }
}

/// Stream `range` of a cached file.
async fn file_stream(path: PathBuf, range: std::ops::Range<u64>) -> std::io::Result<ByteStream> {
    let mut file = tokio::fs::File::open(&path).await?;
    file.seek(std::io::SeekFrom::Start(range.start)).await?;
    let remaining = range.end - range.start;
    let s = futures::stream::try_unfold((file, remaining), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let want = remaining.min(READ_BUF as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await.map_err(cache_io)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Storage,
                "cached blob shorter than indexed",
            ));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, remaining - n as u64))))
    });
    Ok(s.boxed())
}

fn cache_io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Storage, "blob cache I/O").with_source(e)
}
