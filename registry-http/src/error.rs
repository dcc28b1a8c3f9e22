//! The one table from error kinds to HTTP statuses and spec error codes,
//! and the JSON error body. The table and its choices are documented in
//! the crate docs (`docs/errors.md`).

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use registry_core::{Error, ErrorKind};
use serde::Serialize;

use crate::body::Body;
use crate::headers::response;
use crate::route::{Endpoint, Target};

/// The status and error code of `kind` when it ends a request that got as
/// far as `target`. This is the only place either is chosen.
pub(crate) fn status_and_code(kind: ErrorKind, target: Target) -> (StatusCode, &'static str) {
    use Endpoint::*;
    let at = |e: &[Endpoint]| matches!(target, Target::Endpoint(x) if e.contains(&x));
    match kind {
        ErrorKind::BlobUnknown => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        ErrorKind::BlobUploadInvalid => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
        ErrorKind::BlobUploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        ErrorKind::RangeInvalid => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
        ErrorKind::DigestInvalid => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        ErrorKind::ManifestBlobUnknown => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
        ErrorKind::ManifestInvalid => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        ErrorKind::ManifestUnknown => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        ErrorKind::NameInvalid => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
        ErrorKind::NameUnknown => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        ErrorKind::SizeInvalid => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
        ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        ErrorKind::Denied => (StatusCode::FORBIDDEN, "DENIED"),
        ErrorKind::Unsupported if target == Target::UnknownPath => {
            (StatusCode::NOT_FOUND, "UNSUPPORTED")
        }
        ErrorKind::Unsupported => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
        ErrorKind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        ErrorKind::TagInvalid if at(&[ManifestPut]) => {
            (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
        }
        ErrorKind::TagInvalid => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        ErrorKind::Incomplete => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
        ErrorKind::TooLarge if at(&[ManifestPut]) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID")
        }
        ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
        ErrorKind::Conflict if at(&[UploadChunk, UploadFinish]) => {
            (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
        }
        ErrorKind::Conflict if at(&[ManifestPut, ManifestDelete]) => {
            (StatusCode::CONFLICT, "MANIFEST_INVALID")
        }
        ErrorKind::Conflict => (StatusCode::CONFLICT, "UNSUPPORTED"),
        // Distribution's code for a backend that is down.
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        // Storage, Internal and any kind added later.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    }
}

/// The response for `error`: the status and code from the table, and the
/// spec's JSON body. A server-side error is logged, and its response says
/// only what kind of failure it was.
pub(crate) fn error_response(error: &Error, target: Target) -> Response<Body> {
    let (status, code) = status_and_code(error.kind(), target);
    let server_side = status.is_server_error();
    if error.kind() == ErrorKind::Unavailable {
        // Expected while the store is down: its health logs the outage once.
        tracing::debug!(error = %error, ?target, "request refused: storage unavailable");
    } else if server_side {
        tracing::error!(error = %error, ?target, "request failed");
    } else {
        tracing::debug!(error = %error, ?target, %status, "request refused");
    }
    let entry = Entry {
        code,
        message: if server_side {
            error.kind().as_str()
        } else {
            error.message()
        },
        detail: if server_side { None } else { error.detail() },
    };
    let json = serde_json::to_vec(&Errors { errors: [entry] }).expect("serializable");
    let mut res = response(status, Body::from(json));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

#[derive(Serialize)]
struct Errors<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

#[cfg(test)]
mod tests;
