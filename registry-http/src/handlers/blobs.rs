//! end-2 (blob `GET`/`HEAD`, with `Range`; a `GET` redirected where the
//! store gives a location) and end-10 (blob `DELETE`).

use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, LOCATION,
};
use http::{HeaderValue, Response, StatusCode};
use registry_core::{Digest, Error, ErrorKind, RepositoryName};

use super::Reply;
use crate::body::Body;
use crate::error::error_response;
use crate::headers::{self, DOCKER_CONTENT_DIGEST, response};
use crate::route::{Endpoint, Target};
use crate::router::Inner;

/// end-2. The body is the store's stream, passed through frame by frame.
pub(super) async fn get(
    inner: &Inner,
    name: &RepositoryName,
    digest: &Digest,
    head: bool,
    req: &HeaderMap,
) -> Reply {
    let range = headers::blob_range(req);
    if head {
        let info = inner.store.stat_blob(name, digest).await?;
        let (span, partial) = match range {
            None => (0..info.size, false),
            Some(r) => match r.resolve(info.size) {
                Ok(span) => (span, true),
                Err(e) => return Ok(unsatisfiable(&e, info.size)),
            },
        };
        return Ok(blob_response(
            Body::empty(),
            digest,
            &span,
            info.size,
            partial,
        ));
    }
    // Ranged reads (resumes) are served here: a redirect would depend on
    // the client sending its `Range` again to the other host.
    if range.is_none()
        && let Some(url) = inner.store.blob_location(name, digest).await?
    {
        match redirect(&url, digest, req) {
            Some(res) => return Ok(res),
            None => tracing::warn!(
                %digest,
                "not redirecting: the URL is on the host the client asked (it would send its credentials there) or not a valid URL; serving the blob"
            ),
        }
    }
    let read = match inner.store.read_blob(name, digest, range).await {
        Ok(read) => read,
        Err(e) if e.kind() == ErrorKind::RangeInvalid => {
            let size = match e
                .detail()
                .and_then(|d| d.get("size"))
                .and_then(|s| s.as_u64())
            {
                Some(size) => size,
                None => inner.store.stat_blob(name, digest).await?.size,
            };
            return Ok(unsatisfiable(&e, size));
        }
        Err(e) => return Err(e),
    };
    let len = read.range.end - read.range.start;
    let body = Body::stream(read.body, Some(len));
    Ok(blob_response(
        body,
        digest,
        &read.range,
        read.info.size,
        read.partial,
    ))
}

/// end-10.
pub(super) async fn delete(inner: &Inner, name: &RepositoryName, digest: &Digest) -> Reply {
    inner.store.delete_blob(name, digest).await?;
    Ok(response(StatusCode::ACCEPTED, Body::empty()))
}

fn blob_response(
    body: Body,
    digest: &Digest,
    span: &std::ops::Range<u64>,
    size: u64,
    partial: bool,
) -> Response<Body> {
    let status = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut res = response(status, body);
    let h = res.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(span.end - span.start));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(DOCKER_CONTENT_DIGEST, headers::digest_value(digest));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        h.insert(CONTENT_RANGE, headers::content_range(span, size));
    }
    res
}

/// 307 to `url`, with the digest, unless `url` is on the host the client
/// addressed (or a subdomain of it): clients send that host's credentials
/// along, and a presigned URL must not receive them.
fn redirect(url: &str, digest: &Digest, req: &HeaderMap) -> Option<Response<Body>> {
    let location = HeaderValue::from_str(url).ok()?;
    let target = url.parse::<http::Uri>().ok()?;
    let target_host = target.host()?.to_ascii_lowercase();
    let asked = req
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .map(|a| a.host().to_ascii_lowercase());
    if let Some(asked) = asked
        && crate::location::same_or_subdomain(&target_host, &asked)
    {
        return None;
    }
    let mut res = response(StatusCode::TEMPORARY_REDIRECT, Body::empty());
    let h = res.headers_mut();
    h.insert(LOCATION, location);
    h.insert(DOCKER_CONTENT_DIGEST, headers::digest_value(digest));
    h.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    Some(res)
}

/// 416 with `Content-Range: bytes */<size>`.
fn unsatisfiable(e: &Error, size: u64) -> Response<Body> {
    let mut res = error_response(e, Target::Endpoint(Endpoint::BlobRead));
    res.headers_mut()
        .insert(CONTENT_RANGE, headers::unsatisfied_range(size));
    res
}
