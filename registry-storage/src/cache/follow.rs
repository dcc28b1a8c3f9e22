//! Reads that follow a fill in progress: a second request for a blob this
//! host is filling right now streams the fill's temporary file as it grows,
//! instead of reading the shared store a second time. On an owner of a
//! peer fleet (registry-peers) that is what makes a rollout read each layer
//! from the store once, however many hosts ask for it at the same moment.
//!
//! A follower never gets all of a blob that did not verify: its last chunk
//! is held until the fill is admitted (verified and renamed into the cache);
//! a fill that fails or stalls ends the follower's stream with an error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{ByteStream, Error, ErrorKind};
use tokio::io::AsyncReadExt;

/// Read size of a follower.
const READ_BUF: u64 = 1024 * 1024;
/// How long a follower waits between looks at the fill (a notification
/// normally wakes it sooner).
const POLL: Duration = Duration::from_millis(20);
/// A fill that writes nothing for this long is given up by its followers.
const STALL: Duration = Duration::from_secs(30);

const RUNNING: u8 = 0;
const ADMITTED: u8 = 1;
const FAILED: u8 = 2;

/// The state of one fill, shared with the requests that follow it.
pub(super) struct Progress {
    /// The fill's temporary file.
    pub(super) tmp: PathBuf,
    /// Where the blob is once admitted.
    dest: PathBuf,
    /// The blob's size (0 until the fill knows it).
    size: AtomicU64,
    /// Bytes written to `tmp` and flushed so far.
    written: AtomicU64,
    state: AtomicU8,
    changed: tokio::sync::Notify,
}

impl Progress {
    pub(super) fn new(tmp: PathBuf, dest: PathBuf) -> Self {
        Progress {
            tmp,
            dest,
            size: AtomicU64::new(0),
            written: AtomicU64::new(0),
            state: AtomicU8::new(RUNNING),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Release);
    }

    /// The blob's size, if the fill has started reading it.
    pub(super) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// `n` more bytes are in the temporary file.
    pub(super) fn wrote(&self, n: u64) {
        self.written.fetch_add(n, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// The fill ended: admitted into the cache, or not. Only the first call
    /// counts.
    pub(super) fn end(&self, admitted: bool) {
        let to = if admitted { ADMITTED } else { FAILED };
        let _ = self
            .state
            .compare_exchange(RUNNING, to, Ordering::AcqRel, Ordering::Acquire);
        self.changed.notify_waiters();
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        let _ = tokio::time::timeout(POLL, self.changed.notified()).await;
    }
}

/// Stream the blob of `progress` (`size` bytes) as its fill writes it.
pub(super) fn follow(progress: Arc<Progress>, size: u64) -> ByteStream {
    let state = Follower {
        progress,
        size,
        file: None,
        pos: 0,
        done: false,
        moved: Instant::now(),
    };
    futures::stream::unfold(state, |mut f| async move {
        if f.done {
            return None;
        }
        match f.next().await {
            Ok(Some(bytes)) => Some((Ok(bytes), f)),
            Ok(None) => None,
            Err(e) => {
                f.done = true;
                Some((Err(e), f))
            }
        }
    })
    .boxed()
}

struct Follower {
    progress: Arc<Progress>,
    size: u64,
    file: Option<tokio::fs::File>,
    pos: u64,
    done: bool,
    /// When the fill last wrote something this follower saw.
    moved: Instant,
}

impl Follower {
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.pos == self.size {
                return Ok(None);
            }
            let state = self.progress.state();
            if state == FAILED {
                return Err(failed("the cache fill this read followed failed"));
            }
            let written = self.progress.written.load(Ordering::Acquire).min(self.size);
            if self.pos < written {
                let bytes = self.read((written - self.pos).min(READ_BUF)).await?;
                if bytes.is_empty() {
                    self.progress.wait().await;
                    continue;
                }
                self.moved = Instant::now();
                self.pos += bytes.len() as u64;
                if self.pos == self.size {
                    self.verdict().await?;
                    self.done = true;
                }
                return Ok(Some(bytes));
            }
            if self.moved.elapsed() > STALL {
                return Err(failed("the cache fill this read followed stalled"));
            }
            self.progress.wait().await;
        }
    }

    /// Read up to `want` bytes at the current position.
    async fn read(&mut self, want: u64) -> Result<Bytes, Error> {
        if self.file.is_none() {
            // The temporary file, or the cached one if it was admitted
            // since (an open handle survives the rename).
            let file = match tokio::fs::File::open(&self.progress.tmp).await {
                Ok(file) => file,
                Err(_) => tokio::fs::File::open(&self.progress.dest)
                    .await
                    .map_err(|e| failed("opening a cache fill to follow").with_source(e))?,
            };
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(Bytes::new());
        };
        let mut buf = vec![0u8; want as usize];
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| failed("reading a cache fill").with_source(e))?;
        buf.truncate(n);
        Ok(Bytes::from(buf))
    }

    /// Wait until the fill is admitted (the bytes verified) or failed.
    async fn verdict(&self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            match self.progress.state() {
                ADMITTED => return Ok(()),
                FAILED => return Err(failed("the cache fill this read followed did not verify")),
                _ if started.elapsed() > STALL => {
                    return Err(failed("the cache fill this read followed never finished"));
                }
                _ => self.progress.wait().await,
            }
        }
    }
}

fn failed(what: &str) -> Error {
    Error::new(ErrorKind::Storage, what)
}
