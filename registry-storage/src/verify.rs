//! The one hashing-and-length check on bytes coming in: a stream adapter
//! that every backend's verified put consumes, so that no backend hashes or
//! counts on its own. It also tells a put's [`BodyVerified`] notice, at the
//! end of the body, before the backend flushes or commits.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use registry_core::upload::Chunk;
use registry_core::{BodyVerified, ByteStream, Digest, Error, ErrorKind, Result};

/// `body`, fed into `chunk` (hash and length) piece by piece as it is
/// read. A piece that would take the chunk past `expected` bytes is
/// replaced by a [`ErrorKind::SizeInvalid`] error, and so is the end of a
/// body shorter than `expected`: a consumer that stops at the first error
/// (and removes what it wrote) never keeps bytes of the wrong length.
pub(crate) struct Verified<'a> {
    body: ByteStream,
    chunk: &'a mut Chunk,
    expected: Option<u64>,
    notice: Option<(Digest, BodyVerified)>,
    done: bool,
}

impl<'a> Verified<'a> {
    /// Check `body` into `chunk` against `expected` (bytes, if declared).
    pub(crate) fn new(body: ByteStream, chunk: &'a mut Chunk, expected: Option<u64>) -> Self {
        Verified {
            body,
            chunk,
            expected,
            notice: None,
            done: false,
        }
    }

    /// Tell `notice` at the end of the body if it was as long as expected
    /// and the chunk's running digest is `digest`. The running hash covers
    /// the whole upload, so this is the upload's digest only when no
    /// earlier part must be hashed again (give it for a single-request put,
    /// whose body is all there is).
    pub(crate) fn tell_when_it_hashes_to(mut self, digest: &Digest, notice: BodyVerified) -> Self {
        self.notice = Some((digest.clone(), notice));
        self
    }

    fn fail(&mut self, want: u64) -> Poll<Option<Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(size_mismatch(want))))
    }
}

impl Stream for Verified<'_> {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.body.poll_next_unpin(cx)) {
            Some(Ok(bytes)) => {
                if let Some(max) = this.expected
                    && this.chunk.len() + bytes.len() as u64 > max
                {
                    return this.fail(max);
                }
                this.chunk.update(&bytes);
                Poll::Ready(Some(Ok(bytes)))
            }
            Some(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            None => match this.expected {
                Some(want) if this.chunk.len() != want => this.fail(want),
                _ => {
                    this.done = true;
                    if let Some((digest, notice)) = this.notice.take()
                        && this.chunk.digest() == digest
                    {
                        notice.tell();
                    }
                    Poll::Ready(None)
                }
            },
        }
    }
}

fn size_mismatch(want: u64) -> Error {
    Error::new(
        ErrorKind::SizeInvalid,
        format!("body length does not match the declared {want} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use registry_core::{Algorithm, Upload};

    use super::*;

    fn body(pieces: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes>> = pieces.iter().map(|p| Ok(Bytes::from(*p))).collect();
        futures::stream::iter(items).boxed()
    }

    async fn run(pieces: &[&'static [u8]], expected: Option<u64>) -> (Vec<Result<Bytes>>, u64) {
        let mut chunk = Upload::start(Algorithm::Sha256).begin_chunk(None).unwrap();
        let out = Verified::new(body(pieces), &mut chunk, expected)
            .collect::<Vec<_>>()
            .await;
        (out, chunk.len())
    }

    #[tokio::test]
    async fn passes_and_counts_a_body_of_the_declared_length() {
        let (out, len) = run(&[b"abc", b"de"], Some(5)).await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(len, 5);
        let (out, len) = run(&[b"abc"], None).await;
        assert_eq!((out.len(), len), (1, 3));
    }

    #[tokio::test]
    async fn a_long_body_ends_in_an_error_before_the_extra_piece() {
        let (out, len) = run(&[b"abc", b"def", b"g"], Some(4)).await;
        assert_eq!(out.len(), 2);
        assert!(out[0].is_ok());
        assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::SizeInvalid);
        assert_eq!(len, 3, "the refused piece is not hashed");
    }

    #[tokio::test]
    async fn a_short_body_ends_in_an_error() {
        let (out, _) = run(&[b"abc"], Some(4)).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::SizeInvalid);
    }

    async fn told(pieces: &[&'static [u8]], expected: Option<u64>, of: &[u8]) -> bool {
        let mut chunk = Upload::start(Algorithm::Sha256).begin_chunk(None).unwrap();
        let (notice, verdict) = BodyVerified::channel();
        let _ = Verified::new(body(pieces), &mut chunk, expected)
            .tell_when_it_hashes_to(&Digest::sha256_of(of), notice)
            .collect::<Vec<_>>()
            .await;
        verdict.verified().await
    }

    #[tokio::test]
    async fn the_notice_is_told_only_for_a_body_of_its_digest_and_length() {
        assert!(told(&[b"abc", b"de"], Some(5), b"abcde").await);
        assert!(told(&[b"abc", b"de"], None, b"abcde").await);
        assert!(
            !told(&[b"abc", b"de"], Some(5), b"abcdf").await,
            "another digest"
        );
        assert!(!told(&[b"abc"], Some(5), b"abc").await, "short");
        assert!(!told(&[b"abc", b"def"], Some(5), b"abcdef").await, "long");
    }

    #[tokio::test]
    async fn a_body_error_ends_the_stream() {
        let items: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Err(Error::new(ErrorKind::Storage, "broken body")),
            Ok(Bytes::from_static(b"cd")),
        ];
        let mut chunk = Upload::start(Algorithm::Sha256).begin_chunk(None).unwrap();
        let out = Verified::new(futures::stream::iter(items).boxed(), &mut chunk, Some(4))
            .collect::<Vec<_>>()
            .await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::Storage);
    }
}
