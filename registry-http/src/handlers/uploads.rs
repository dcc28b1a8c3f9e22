//! Blob uploads: end-4a (open a session), end-4b (single-request upload),
//! end-11 (cross-repository mount), end-5 (chunks, streamed or ranged),
//! end-13 (status), end-6 (close) and cancel.

use http::header::HeaderMap;
use http::request::Parts;
use http::{Response, StatusCode};
use registry_core::{
    ByteStream, Digest, Error, ErrorKind, RepositoryName, Result, UploadId, UploadStatus,
};

use super::Reply;
use crate::auth::{Access, Actions};
use crate::body::Body;
use crate::error::error_response;
use crate::headers::{self, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, response};
use crate::location;
use crate::route::{Endpoint, Target, UploadMode};
use crate::router::Inner;

/// `POST /v2/<name>/blobs/uploads/`: end-4a, end-4b or end-11.
pub(super) async fn start(
    inner: &Inner,
    parts: &Parts,
    name: &RepositoryName,
    mode: UploadMode,
    body: Option<ByteStream>,
) -> Reply {
    match mode {
        // end-4b: the body is the blob.
        UploadMode::Monolithic(digest) => {
            let declared = headers::content_length(&parts.headers)?;
            let body = body.unwrap_or_else(empty);
            let info = inner.store.put_blob(name, &digest, body, declared).await?;
            created(inner, name, &info.digest)
        }
        // end-11, falling back to end-4a when the mount cannot be done.
        UploadMode::Mount {
            digest,
            from: Some(from),
        } => match mount(inner, parts, name, &digest, &from).await? {
            Some(res) => Ok(res),
            None => session(inner, name).await,
        },
        UploadMode::Mount { from: None, .. } | UploadMode::Session => session(inner, name).await,
    }
}

/// Mount `digest` from `from` into `name`, if the caller may pull `from`
/// and it has the blob; `None` to fall back to an upload.
async fn mount(
    inner: &Inner,
    parts: &Parts,
    name: &RepositoryName,
    digest: &Digest,
    from: &RepositoryName,
) -> Result<Option<Response<Body>>> {
    let access = Access::repository(from, Actions::PULL);
    if let Err(r) = inner.config.authorizer.authorize(parts, &access).await {
        tracing::debug!(%from, %name, error = %r.error(), "mount source refused, uploading instead");
        return Ok(None);
    }
    match inner.store.mount_blob(from, name, digest).await {
        Ok(info) => created(inner, name, &info.digest).map(Some),
        Err(e) if falls_back(&e) => {
            tracing::debug!(%from, %name, error = %e, "mount failed, uploading instead");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn falls_back(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BlobUnknown
            | ErrorKind::NameUnknown
            | ErrorKind::Unsupported
            | ErrorKind::Denied
            | ErrorKind::Unauthorized
    )
}

/// end-4a: 202 with the session's `Location`.
async fn session(inner: &Inner, name: &RepositoryName) -> Reply {
    let status = inner.store.start_upload(name).await?;
    in_progress(inner, StatusCode::ACCEPTED, name, &status)
}

/// end-13.
pub(super) async fn status(inner: &Inner, name: &RepositoryName, id: &UploadId) -> Reply {
    let status = inner.store.upload_status(name, id).await?;
    in_progress(inner, StatusCode::NO_CONTENT, name, &status)
}

/// end-5: a chunk at `Content-Range`'s start, or streamed at the current
/// offset when there is no `Content-Range`.
pub(super) async fn patch(
    inner: &Inner,
    name: &RepositoryName,
    id: &UploadId,
    req: &HeaderMap,
    body: Option<ByteStream>,
) -> Reply {
    let written = async {
        let (start, expected) = chunk(req)?;
        let body = body.unwrap_or_else(empty);
        inner
            .store
            .write_chunk(name, id, start, body, expected)
            .await
    };
    chunk_reply(
        inner,
        name,
        id,
        Endpoint::UploadChunk,
        written.await,
        |status| in_progress(inner, StatusCode::ACCEPTED, name, &status),
    )
    .await
}

/// end-6: close with `?digest=`, with an optional last chunk.
pub(super) async fn finish(
    inner: &Inner,
    name: &RepositoryName,
    id: &UploadId,
    digest: &Digest,
    req: &HeaderMap,
    body: Option<ByteStream>,
) -> Reply {
    let completed = async {
        let (start, expected) = chunk(req)?;
        let last_chunk = match (body, start) {
            // A ranged last chunk: its start is checked like a PATCH's.
            (Some(body), Some(start)) => {
                inner
                    .store
                    .write_chunk(name, id, Some(start), body, expected)
                    .await?;
                None
            }
            (Some(body), None) => Some((body, expected)),
            (None, _) => None,
        };
        inner
            .store
            .complete_upload(name, id, digest, last_chunk)
            .await
    };
    chunk_reply(
        inner,
        name,
        id,
        Endpoint::UploadFinish,
        completed.await,
        |info| created(inner, name, &info.digest),
    )
    .await
}

/// Cancel an upload: 204.
pub(super) async fn cancel(inner: &Inner, name: &RepositoryName, id: &UploadId) -> Reply {
    inner.store.cancel_upload(name, id).await?;
    Ok(response(StatusCode::NO_CONTENT, Body::empty()))
}

/// The start and length of a chunk from `Content-Range` and
/// `Content-Length`, which must agree when both are given. A range no
/// chunk can have is [`ErrorKind::RangeInvalid`], answered like an
/// out-of-order chunk.
fn chunk(req: &HeaderMap) -> Result<(Option<u64>, Option<u64>)> {
    let declared = headers::content_length(req)?;
    match headers::chunk_range(req)? {
        Some((_, len)) if declared.is_some_and(|d| d != len) => Err(Error::new(
            ErrorKind::SizeInvalid,
            format!(
                "Content-Length {} does not match the Content-Range length {len}",
                declared.unwrap_or_default()
            ),
        )),
        Some((start, len)) => Ok((Some(start), Some(len))),
        None => Ok((None, declared)),
    }
}

fn out_of_order(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::RangeInvalid | ErrorKind::Conflict)
}

/// The reply to what became of a chunk: `ok` of the store's answer; for
/// an out-of-order chunk or a range no chunk can have, 416 with the
/// session's `Location` and the `Range` received so far, so the client can
/// resume.
async fn chunk_reply<T>(
    inner: &Inner,
    name: &RepositoryName,
    id: &UploadId,
    endpoint: Endpoint,
    outcome: Result<T>,
    ok: impl FnOnce(T) -> Reply,
) -> Reply {
    let e = match outcome {
        Ok(value) => return ok(value),
        Err(e) if out_of_order(&e) => e,
        Err(e) => return Err(e),
    };
    let mut res = error_response(&e, Target::Endpoint(endpoint));
    match inner.store.upload_status(name, id).await {
        Ok(status) => {
            if let Err(e) = upload_headers(inner, &mut res, name, &status) {
                tracing::error!(error = %e, "building upload headers");
            }
        }
        Err(e) => tracing::debug!(error = %e, "upload status after a refused range"),
    }
    Ok(res)
}

/// A response about an open session.
fn in_progress(
    inner: &Inner,
    code: StatusCode,
    name: &RepositoryName,
    status: &UploadStatus,
) -> Reply {
    let mut res = response(code, Body::empty());
    upload_headers(inner, &mut res, name, status)?;
    Ok(res)
}

/// `Location`, `Range` and `Docker-Upload-UUID` of a session.
fn upload_headers(
    inner: &Inner,
    res: &mut Response<Body>,
    name: &RepositoryName,
    status: &UploadStatus,
) -> Result<()> {
    let location = location::upload(inner.config.prefix(), name, &status.id)?;
    let h = res.headers_mut();
    h.insert(http::header::LOCATION, location);
    h.insert(http::header::RANGE, headers::upload_range(status.offset));
    h.insert(DOCKER_UPLOAD_UUID, headers::value(status.id.to_string())?);
    Ok(())
}

/// 201 for a blob now in the repository.
fn created(inner: &Inner, name: &RepositoryName, digest: &Digest) -> Reply {
    let mut res = response(StatusCode::CREATED, Body::empty());
    let h = res.headers_mut();
    h.insert(
        http::header::LOCATION,
        location::blob(inner.config.prefix(), name, digest)?,
    );
    h.insert(DOCKER_CONTENT_DIGEST, headers::digest_value(digest));
    Ok(res)
}

fn empty() -> ByteStream {
    Box::pin(futures::stream::empty())
}
