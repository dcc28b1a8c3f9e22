//! Response bodies: small ones read whole under a size bound and a
//! deadline, blobs streamed with an idle timeout between chunks.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use registry_core::{ByteStream, Error, ErrorKind};
use reqwest::Response;
use reqwest::header::{CONTENT_LENGTH, HeaderMap};
use tokio::time::Instant;

use super::error::{UpstreamError, describe};

/// The `Content-Length` header, if present and a number. (reqwest's
/// `content_length()` is the body's size hint, which is 0 for a HEAD.)
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The whole body, refused past `max` bytes or after `deadline`.
pub(crate) async fn read_bounded(
    mut response: Response,
    max: usize,
    deadline: Instant,
    what: &str,
) -> Result<Bytes, UpstreamError> {
    let declared = content_length(response.headers());
    if let Some(len) = declared
        && len > max as u64
    {
        return Err(UpstreamError::Invalid(format!(
            "{what}: body of {len} bytes is over the limit of {max}"
        )));
    }
    let capacity = declared.map_or(0, |len| len as usize);
    let mut buf = BytesMut::with_capacity(capacity);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{what}: body not received in time"
                )));
            }
            Ok(Err(e)) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{what}: reading the body: {}",
                    describe(&e)
                )));
            }
            Ok(Ok(None)) => return Ok(buf.freeze()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if buf.len() + chunk.len() > max {
            return Err(UpstreamError::Invalid(format!(
                "{what}: body is over the limit of {max} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
}

/// The body as a stream whose next chunk must come within `idle`; a stall
/// or a broken connection is one `Unavailable` error item, then the end.
pub(crate) fn idle_stream(response: Response, idle: Duration, what: String) -> ByteStream {
    let body = response.bytes_stream().boxed();
    futures::stream::unfold(Some(body), move |state| {
        let what = what.clone();
        async move {
            let mut body = state?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(None) => None,
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
                Ok(Some(Err(e))) => {
                    let message = format!("{what}: reading the body: {}", describe(&e));
                    let error = Error::new(ErrorKind::Unavailable, message).with_source(e);
                    Some((Err(error), None))
                }
                Err(_) => {
                    let message = format!("{what}: no body bytes for {idle:?}");
                    Some((Err(Error::new(ErrorKind::Unavailable, message)), None))
                }
            }
        }
    })
    .boxed()
}
