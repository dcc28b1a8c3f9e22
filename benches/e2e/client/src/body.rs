//! Request bodies: empty, whole, or a file streamed by a reader thread;
//! and the session URL a closing `PUT` goes to.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

use crate::{Body, BoxError, QUEUED_READS, READ_SIZE};

/// `url` with `digest=` appended to its query (a session URL may have one).
pub(crate) fn with_digest(url: &str, digest: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={}", digest.replace(':', "%3A"))
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub(crate) fn full(data: Bytes) -> Body {
    Full::new(data).map_err(|never| match never {}).boxed()
}

/// A streaming body of `len` bytes of `file` from `offset`, `repeat` times
/// over, read by a thread in `READ_SIZE` pieces.
pub(crate) fn file_body(file: &Path, offset: u64, len: u64, repeat: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(QUEUED_READS);
    let file = file.to_owned();
    std::thread::spawn(move || {
        let read_all = || -> std::io::Result<()> {
            let mut f = File::open(&file)?;
            for _ in 0..repeat {
                f.seek(SeekFrom::Start(offset))?;
                let mut left = len;
                while left > 0 {
                    let n = left.min(READ_SIZE as u64);
                    let mut buf = Vec::with_capacity(n as usize);
                    (&mut f).take(n).read_to_end(&mut buf)?;
                    if buf.len() as u64 != n {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    left -= n;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return Ok(()); // the request was dropped
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = read_all() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    })
    .map(|piece| piece.map(Frame::data).map_err(BoxError::from));
    BodyExt::boxed(StreamBody::new(frames))
}
