//! A response body that reports how it ended: the bytes it sent, and
//! whether it was sent in full, failed, or was dropped before its end.
//! The access log and the request metrics are both written at that moment;
//! each is an [`EndOfBody`] carried by a [`WatchedBody`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent in full.
    Complete,
    /// The body failed while streaming.
    Failed,
    /// Dropped before its end: the client went away or the server shut down.
    Aborted,
}

/// Told once how a body ended.
pub trait EndOfBody {
    /// The body sent `bytes` and ended so.
    fn ended(self, bytes: u64, outcome: Outcome);
}

/// A body that counts its data frames and tells its [`EndOfBody`] when it
/// ends, fails or is dropped, whichever comes first.
#[derive(Debug)]
pub struct WatchedBody<B, E: EndOfBody> {
    inner: B,
    pending: Option<(E, u64)>,
    /// Nothing is to be sent (HEAD, or an empty body): dropping it unpolled
    /// is a complete response.
    empty: bool,
}

impl<B, E: EndOfBody> WatchedBody<B, E> {
    /// `inner`, reported to `watcher` (none: only forwarded).
    pub fn new(inner: B, watcher: Option<E>, empty: bool) -> Self {
        WatchedBody {
            inner,
            pending: watcher.map(|w| (w, 0)),
            empty,
        }
    }

    fn end(&mut self, outcome: Outcome) {
        if let Some((watcher, bytes)) = self.pending.take() {
            watcher.ended(bytes, outcome);
        }
    }
}

impl<B: Body + Unpin, E: EndOfBody + Unpin> Body for WatchedBody<B, E> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((_, bytes))) = (frame.data_ref(), this.pending.as_mut()) {
                    *bytes += data.remaining() as u64;
                }
                if this.inner.is_end_stream() {
                    this.end(Outcome::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(Outcome::Failed),
            Poll::Ready(None) => this.end(Outcome::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, E: EndOfBody> Drop for WatchedBody<B, E> {
    fn drop(&mut self) {
        let outcome = match &self.pending {
            Some((_, 0)) if self.empty => Outcome::Complete,
            _ => Outcome::Aborted,
        };
        self.end(outcome);
    }
}
