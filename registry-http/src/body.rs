//! The response body: nothing, one buffer, or a stream of blob chunks passed
//! through frame by frame.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http_body::{Frame, SizeHint};
use registry_core::ByteStream;

/// The error type of a [`Body`]: a boxed error, as hyper and axum take.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A response body.
///
/// Its [`size_hint`](http_body::Body::size_hint) is exact whenever the
/// length is known (always, for what the router produces), so servers send a
/// `Content-Length` rather than chunked encoding.
pub struct Body(Kind);

enum Kind {
    Empty,
    Full(Bytes),
    Stream {
        stream: ByteStream,
        /// Bytes still to come, when known.
        remaining: Option<u64>,
    },
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body(Kind::Empty)
    }

    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body(Kind::Full(bytes))
        }
    }

    /// A streamed body of `len` bytes, if known. Chunks are sent as they
    /// come, without copying; an `Err` item aborts the response.
    pub fn stream(stream: ByteStream, len: Option<u64>) -> Self {
        if len == Some(0) {
            return Body::empty();
        }
        Body(Kind::Stream {
            stream,
            remaining: len,
        })
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Kind::Stream { remaining, .. } => write!(f, "Body::Stream({remaining:?} bytes)"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.0 {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                this.0 = Kind::Empty;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Kind::Stream { stream, remaining } => match Pin::new(stream).poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(r) = remaining {
                        *r = r.saturating_sub(chunk.len() as u64);
                    }
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.0 = Kind::Empty;
                    Poll::Ready(Some(Err(Box::new(e))))
                }
                Poll::Ready(None) => {
                    this.0 = Kind::Empty;
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Empty => true,
            Kind::Full(_) => false,
            Kind::Stream { remaining, .. } => *remaining == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.len() as u64),
            Kind::Stream {
                remaining: Some(n), ..
            } => SizeHint::with_exact(*n),
            Kind::Stream {
                remaining: None, ..
            } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_and_empty() {
        let b = Body::full("hello");
        assert_eq!(b.size_hint().exact(), Some(5));
        assert!(!b.is_end_stream());
        assert_eq!(b.collect().await.unwrap().to_bytes(), "hello");
        let e = Body::full(Bytes::new());
        assert!(e.is_end_stream());
        assert_eq!(e.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn stream_counts_down() {
        let chunks: Vec<registry_core::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"cde")),
        ];
        let mut b = Body::stream(Box::pin(futures::stream::iter(chunks)), Some(5));
        assert_eq!(b.size_hint().exact(), Some(5));
        let f = b.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "ab");
        assert_eq!(b.size_hint().exact(), Some(3));
        b.frame().await.unwrap().unwrap();
        assert!(b.is_end_stream());
    }

    #[tokio::test]
    async fn stream_error_aborts() {
        let chunks = vec![Err(registry_core::Error::new(
            registry_core::ErrorKind::Storage,
            "gone",
        ))];
        let b = Body::stream(Box::pin(futures::stream::iter(chunks)), None);
        assert!(b.size_hint().exact().is_none());
        assert!(b.collect().await.is_err());
    }

    /// Send, not Sync: a stream of chunks need not be shared.
    fn _assert_send() {
        fn f<T: Send + 'static>() {}
        f::<Body>();
    }
}
