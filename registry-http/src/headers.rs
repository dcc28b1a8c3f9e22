//! Header names the registry API uses, and the parsing and formatting of
//! the headers it reads and writes.

use http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderName, RANGE};
use http::{HeaderValue, Response, StatusCode};
use registry_core::{ByteRange, Digest, Error, ErrorKind, Result};

use crate::body::Body;

/// The digest of the content in the response (or just stored).
pub(crate) const DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
/// Sent on every response.
pub(crate) const API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
/// The upload session id.
pub(crate) const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
/// The subject of a pushed manifest (spec: pushing manifests with subject).
pub(crate) const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
/// Which filters a referrers response applied.
pub(crate) const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// The value of [`API_VERSION`].
pub(crate) const API_VERSION_VALUE: HeaderValue = HeaderValue::from_static("registry/2.0");

/// A response with a status and a body, headers to be added.
pub(crate) fn response(status: StatusCode, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res
}

/// A header value from a string built by the router (digests, URLs of
/// validated names), which cannot hold invalid bytes. The prefix comes from
/// configuration, so a bad one fails here with an internal error.
pub(crate) fn value(s: String) -> Result<HeaderValue> {
    HeaderValue::try_from(s).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            "invalid header value (check public_prefix)",
        )
        .with_source(e)
    })
}

/// `Docker-Content-Digest` and friends.
pub(crate) fn digest_value(digest: &Digest) -> HeaderValue {
    HeaderValue::try_from(digest.to_string()).expect("a digest is a valid header value")
}

/// The `Range` of an upload that has received `offset` bytes:
/// `0-<offset - 1>`. An empty upload gets `0-0`, as CNCF distribution sends
/// (the spec's `^[0-9]+-[0-9]+$` has no form for "nothing"); clients that
/// track their own offset are unaffected, and `0-0` after zero or one byte
/// is the same ambiguity every distribution client already lives with.
pub(crate) fn upload_range(offset: u64) -> HeaderValue {
    let s = format!("0-{}", offset.saturating_sub(1));
    HeaderValue::try_from(s).expect("digits are a valid header value")
}

/// `Content-Range: bytes start-end/size` of a partial blob response.
pub(crate) fn content_range(range: &std::ops::Range<u64>, size: u64) -> HeaderValue {
    let s = format!("bytes {}-{}/{size}", range.start, range.end - 1);
    HeaderValue::try_from(s).expect("digits are a valid header value")
}

/// `Content-Range: bytes */size` of a 416 on a blob.
pub(crate) fn unsatisfied_range(size: u64) -> HeaderValue {
    HeaderValue::try_from(format!("bytes */{size}")).expect("digits are a valid header value")
}

/// The request's `Content-Length`, if it has a valid one.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(v) = headers.get(CONTENT_LENGTH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    s.and_then(|s| s.parse().ok()).map(Some).ok_or_else(|| {
        Error::new(
            ErrorKind::SizeInvalid,
            "Content-Length is not a non-negative integer",
        )
    })
}

/// The request's `Content-Type`, if readable.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// The `Content-Range` of an upload chunk: `start-end`, both inclusive, as
/// `start` and length. `bytes ` / `bytes=` prefixes and a `/total` suffix,
/// which some clients send, are tolerated. A range whose length does not
/// fit in a `u64` (`0-18446744073709551615`) is
/// [`ErrorKind::RangeInvalid`]: no chunk can be that long.
pub(crate) fn chunk_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(v) = headers.get(CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        Error::new(
            ErrorKind::BlobUploadInvalid,
            "Content-Range must be <start>-<end>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes")
        .map_or(s, |r| r.trim_start_matches([' ', '=']));
    let s = s.split_once('/').map_or(s, |(r, _total)| r);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let num = |x: &str| -> Result<u64> {
        if x.is_empty() || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let (start, end) = (num(a)?, num(b)?);
    if end < start {
        return Err(bad());
    }
    let len = (end - start).checked_add(1).ok_or_else(|| {
        Error::new(
            ErrorKind::RangeInvalid,
            "Content-Range is longer than any chunk can be",
        )
    })?;
    Ok(Some((start, len)))
}

/// The `Range` of a blob read. A header this registry cannot satisfy as a
/// single byte range is ignored, and the whole blob is sent (RFC 9110
/// allows a server to ignore `Range`).
pub(crate) fn blob_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers.get(RANGE)?.to_str().ok()?;
    ByteRange::parse_header(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: HeaderName, v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(1), "0-0");
        assert_eq!(upload_range(10), "0-9");
    }

    #[test]
    fn chunk_ranges() {
        let r = |v| chunk_range(&headers(CONTENT_RANGE, v));
        assert_eq!(r("0-9").unwrap(), Some((0, 10)));
        assert_eq!(r("10-10").unwrap(), Some((10, 1)));
        assert_eq!(r("bytes 5-9/10").unwrap(), Some((5, 5)));
        assert_eq!(r("bytes=5-9").unwrap(), Some((5, 5)));
        assert_eq!(chunk_range(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            r("1-18446744073709551615").unwrap(),
            Some((1, u64::MAX)),
            "the longest range that has a length"
        );
        for overflow in ["0-18446744073709551615", "bytes 0-18446744073709551615/*"] {
            assert_eq!(
                r(overflow).unwrap_err().kind(),
                ErrorKind::RangeInvalid,
                "{overflow}"
            );
        }
        for bad in ["", "5", "-5", "5-", "9-5", "a-b", "1-2-3", "0x1-2"] {
            assert_eq!(
                r(bad).unwrap_err().kind(),
                ErrorKind::BlobUploadInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn content_lengths() {
        assert_eq!(
            content_length(&headers(CONTENT_LENGTH, "42")).unwrap(),
            Some(42)
        );
        assert_eq!(content_length(&HeaderMap::new()).unwrap(), None);
        assert!(content_length(&headers(CONTENT_LENGTH, "-1")).is_err());
    }

    #[test]
    fn blob_ranges() {
        assert_eq!(
            blob_range(&headers(RANGE, "bytes=0-9")),
            Some(ByteRange::Bounded { start: 0, end: 9 })
        );
        assert_eq!(blob_range(&headers(RANGE, "bytes=0-1,4-5")), None);
        assert_eq!(blob_range(&headers(RANGE, "items=0-1")), None);
    }

    #[test]
    fn formats() {
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
        assert_eq!(unsatisfied_range(7), "bytes */7");
    }
}
