//! The request body idle timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::BoxError;

/// A request body that fails when it sends nothing for `idle`.
///
/// The clock runs only while the body is polled and has nothing ready:
/// time the router spends writing a chunk to the store does not count.
#[derive(Debug)]
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: None,
        }
    }
}

/// The error of a body that stalled.
#[derive(Debug)]
pub struct BodyIdle(Duration);

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body sent nothing for {:?}", self.0)
    }
}

impl std::error::Error for BodyIdle {}

impl<B> HttpBody for IdleTimeoutBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(timer.as_mut().poll(cx));
                this.timer = None;
                tracing::info!("request body idle for {idle:?}: failing the request");
                Poll::Ready(Some(Err(Box::new(BodyIdle(idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_bodies_fail_and_flowing_ones_do_not() {
        use http_body_util::BodyExt;
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let body = IdleTimeoutBody::new(
            http_body_util::StreamBody::new(rx),
            Duration::from_millis(300),
        );
        let reader = tokio::spawn(async move {
            let mut body = std::pin::pin!(body);
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => got.push(f.into_data().unwrap()),
                    Err(e) => return (got, Some(e.to_string())),
                }
            }
            (got, None)
        });
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            use futures::SinkExt;
            tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .unwrap();
        }
        let (got, error) = reader.await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(error.unwrap().contains("sent nothing"));
        drop(tx);
    }
}
