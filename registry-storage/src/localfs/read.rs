//! Blob reads on the filesystem (`pread` for small ranges, memory mappings
//! for large ones) and manifest resolution on the calling thread.

use std::ops::Range;

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{ByteStream, Digest, Result};

use super::{LocalFs, blocking};

/// Size of the pieces a mapped blob is served in.
const READ_PIECE: u64 = 8 * 1024 * 1024;

/// Reads up to this size use `pread`, not a mapping (see
/// [`LocalFs::read_blob`]).
const SMALL_READ: u64 = 1024 * 1024;

impl LocalFs {
    /// Stream `range` of the blob file `rel`. Ranges up to [`SMALL_READ`]
    /// (every manifest, configs, small layers) are read with `pread` into
    /// one buffer. Larger ones come from memory mappings, one per piece:
    /// each piece is a view of the page cache, so serving it copies the
    /// bytes once, into the socket, as `sendfile` would. Pieces are mapped
    /// (and faulted in) on the blocking pool, never on a runtime thread,
    /// and unmapped once sent, so memory stays bounded.
    ///
    /// Mapping is safe only because committed blob files are never written
    /// or truncated in place: a commit renames a complete file over the
    /// name, which leaves an existing mapping untouched. A file cut short
    /// under a mapping would turn the next page fault into SIGBUS for the
    /// whole process. This registry never does that; another tool on the
    /// same directory must not either (docs/CONSISTENCY.md). CNCF
    /// distribution rewrites only small files in place (manifests, with
    /// `PutContent`), and those are read with `pread`, which at worst
    /// returns short.
    pub(crate) async fn read_blob(&self, rel: &str, range: Range<u64>) -> Result<ByteStream> {
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let path = self.abs(rel);
        let end = range.end;
        if end - range.start <= SMALL_READ {
            let start = range.start;
            let bytes = blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0; (end - start) as usize];
                std::fs::File::open(&path)?.read_exact_at(&mut buf, start)?;
                Ok(Bytes::from(buf))
            })
            .await?;
            return Ok(futures::stream::once(async { Ok(bytes) }).boxed());
        }
        let file = blocking(move || {
            let file = std::fs::File::open(&path)?;
            if file.metadata()?.len() < end {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob file shorter than its recorded size",
                ));
            }
            Ok(std::sync::Arc::new(file))
        })
        .await?;
        let pieces = futures::stream::try_unfold(range.start, move |start| {
            let file = file.clone();
            async move {
                if start >= end {
                    return Ok(None);
                }
                let len = READ_PIECE.min(end - start);
                let piece = blocking(move || map_piece(&file, start, len)).await?;
                Ok(Some((piece, start + len)))
            }
        });
        Ok(pieces.boxed())
    }

    /// The size of the file `data` if the link file `link` exists and holds
    /// a digest (see [`crate::backend::Backend::linked_size`]). On the
    /// calling thread, for the reason [`LocalFs::read_link_and_check`] gives.
    pub(crate) fn linked_size(&self, link: &str, data: &str) -> Result<Option<u64>> {
        let size = || -> std::io::Result<Option<u64>> {
            if self.root.read_link(link)?.is_none() {
                return Ok(None);
            }
            self.root.size_of(data)
        };
        size().map_err(super::io_error("reading a blob's size"))
    }

    /// Resolve a manifest reference: read the digest from `link` (a tag's
    /// link) or take `fixed`, then check that the revision link
    /// `revision(digest)` exists. `None` if either is missing.
    ///
    /// Done on the calling (runtime) thread, not the blocking pool: it is
    /// one read of a 71-byte file and one `stat`, answered from the
    /// kernel's caches in a few microseconds, while a trip to the blocking
    /// pool costs two thread wake-ups, more than the work itself: a
    /// manifest GET by tag took 52 to 64 µs of server CPU that way and 29
    /// to 35 µs this way (release build, 64 connections, same machine).
    /// nginx opens and `stat`s the files it serves on its event loop in the
    /// same way. The price: on a directory whose metadata is not cached (a
    /// cold disk, a network file system) one such read holds a runtime
    /// thread for the disk's latency. Both lookups are relative to the
    /// root held open (see [`root`](super::root)).
    pub(crate) fn read_link_and_check(
        &self,
        link: Option<String>,
        fixed: Option<Digest>,
        revision: impl FnOnce(&Digest) -> String,
    ) -> Result<Option<Digest>> {
        let resolve = || -> std::io::Result<Option<Digest>> {
            let digest = match (fixed, link) {
                (Some(d), _) => d,
                (None, Some(link)) => match self.root.read_link(&link)? {
                    Some(d) => d,
                    None => return Ok(None),
                },
                (None, None) => return Ok(None),
            };
            Ok(self.root.size_of(&revision(&digest))?.map(|_| digest))
        };
        resolve().map_err(super::io_error("filesystem"))
    }
}

/// Map `len` bytes of `file` from `start`, faulted in, as `Bytes`. Mapping
/// offsets must be page aligned, so the mapping may begin a little earlier
/// (64 KiB is a multiple of every common page size).
fn map_piece(file: &std::fs::File, start: u64, len: u64) -> std::io::Result<Bytes> {
    const ALIGN: u64 = 64 * 1024;
    let aligned = start - start % ALIGN;
    let skip = (start - aligned) as usize;
    // SAFETY: committed blob files are never truncated or written in place
    // (see `LocalFs::read_blob`): the mapped range stays backed by the file.
    #[allow(unsafe_code)]
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(aligned)
            .len(skip + len as usize)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(map).slice(skip..))
}
