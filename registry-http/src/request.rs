//! Request bodies: streamed through to the store as they arrive, except
//! manifests, read whole up to the configured limit.

use std::fmt;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use http_body::Body as HttpBody;
use http_body_util::{BodyDataStream, BodyExt};
use registry_core::{ByteStream, Error, ErrorKind, Result};

use crate::body::BoxError;

/// The request body as a stream of chunks, or `None` when the request has
/// none. Trailers are dropped; a transport error ends the stream with
/// [`ErrorKind::Incomplete`].
pub(crate) fn stream<B>(body: B) -> Option<ByteStream>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return None;
    }
    Some(Box::pin(BodyDataStream::new(body).map_err(incomplete)))
}

/// Read a whole body of at most `limit` bytes; [`ErrorKind::TooLarge`]
/// beyond. A declared length over the limit fails before reading.
pub(crate) async fn collect<B>(body: B, limit: usize, declared: Option<u64>) -> Result<Bytes>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        Error::new(
            ErrorKind::TooLarge,
            format!("manifest larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    // One frame is kept as is; more are joined.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(incomplete)?.into_data() else {
            continue;
        };
        let len = first.as_ref().map_or(0, Bytes::len) + joined.as_ref().map_or(0, BytesMut::len);
        if len + data.len() > limit {
            return Err(too_large());
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut buf =
                    BytesMut::with_capacity(declared.map_or(f.len() + data.len(), |n| n as usize));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                first = None;
                joined = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

fn incomplete(e: impl Into<BoxError>) -> Error {
    Error::new(ErrorKind::Incomplete, "reading the request body failed")
        .with_source(Transport(e.into()))
}

/// A transport error, kept as the source of an [`ErrorKind::Incomplete`].
struct Transport(BoxError);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Transport {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::{Full, StreamBody};

    type Chunks = Vec<Result<http_body::Frame<Bytes>, std::io::Error>>;
    type Chunked = StreamBody<
        futures::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, std::io::Error>>>,
    >;

    fn chunked(parts: &[&'static str]) -> Chunked {
        let frames: Chunks = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn collects_one_or_many_frames() {
        assert_eq!(
            collect(Full::new(Bytes::from_static(b"{}")), 10, Some(2))
                .await
                .unwrap(),
            "{}"
        );
        assert_eq!(
            collect(chunked(&["ab", "cd", "e"]), 5, None).await.unwrap(),
            "abcde"
        );
        assert_eq!(collect(chunked(&[]), 5, None).await.unwrap(), "");
    }

    #[tokio::test]
    async fn refuses_too_large() {
        let e = collect(chunked(&["abc", "def"]), 5, None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        let e = collect(Full::new(Bytes::from_static(b"x")), 5, Some(6))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
    }

    #[tokio::test]
    async fn transport_errors_are_incomplete() {
        let frames: Chunks = vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"a"))),
            Err(std::io::Error::other("reset")),
        ];
        let body = StreamBody::new(futures::stream::iter(frames));
        let mut s = stream(body).unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), "a");
        assert_eq!(
            s.next().await.unwrap().unwrap_err().kind(),
            ErrorKind::Incomplete
        );
        assert!(stream(Full::new(Bytes::new())).is_none());
    }
}
