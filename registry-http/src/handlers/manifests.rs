//! end-3 (manifest `GET`/`HEAD`), end-7 (`PUT`) and end-9 (`DELETE`).

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use http::{HeaderValue, StatusCode};
use registry_core::manifest::Manifest;
use registry_core::media_type::{
    DOCKER_MANIFEST_LIST_V2, DOCKER_MANIFEST_V2, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST,
};
use registry_core::{Error, ErrorKind, Reference, RepositoryName};

use super::Reply;
use crate::accept::accepts;
use crate::body::Body;
use crate::headers::{self, DOCKER_CONTENT_DIGEST, OCI_SUBJECT, response};
use crate::location;
use crate::router::Inner;

/// end-3: the exact bytes pushed, under their stored media type, if the
/// request's `Accept` admits it (see [`crate::accept`]).
pub(super) async fn get(
    inner: &Inner,
    name: &RepositoryName,
    reference: &Reference,
    head: bool,
    req: &HeaderMap,
) -> Reply {
    let manifest = inner.store.get_manifest(name, reference).await?;
    if !accepts(req, &manifest.media_type) {
        return Err(Error::new(
            ErrorKind::ManifestUnknown,
            format!(
                "the manifest is {}, which the Accept header does not admit",
                manifest.media_type
            ),
        ));
    }
    let len = manifest.bytes.len() as u64;
    let body = if head {
        Body::empty()
    } else {
        Body::full(manifest.bytes)
    };
    let mut res = response(StatusCode::OK, body);
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, media_type_value(&manifest.media_type)?);
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        DOCKER_CONTENT_DIGEST,
        headers::digest_value(&manifest.digest),
    );
    Ok(res)
}

/// end-7: stored as sent; 201 with its `Location` by digest, and
/// `OCI-Subject` when it has a subject. Foreign layer URLs are checked
/// against [`RouterConfig::manifest_urls`](crate::RouterConfig::manifest_urls)
/// first; the store validates the rest.
pub(super) async fn put(
    inner: &Inner,
    name: &RepositoryName,
    reference: &Reference,
    req: &HeaderMap,
    bytes: bytes::Bytes,
) -> Reply {
    let content_type = headers::content_type(req);
    check_foreign_urls(inner, content_type, &bytes)?;
    let put = inner
        .store
        .put_manifest(name, reference, content_type, bytes)
        .await?;
    let mut res = response(StatusCode::CREATED, Body::empty());
    let h = res.headers_mut();
    h.insert(
        LOCATION,
        location::manifest(inner.config.prefix(), name, &put.digest)?,
    );
    h.insert(DOCKER_CONTENT_DIGEST, headers::digest_value(&put.digest));
    if let Some(subject) = &put.subject {
        h.insert(OCI_SUBJECT, headers::digest_value(subject));
    }
    Ok(res)
}

/// Refuse a manifest whose foreign layers have URLs the policy does not
/// permit. The store parses the manifest again (it owns validation), so
/// this parses only a body that can hold a `urls` field at all: one with
/// `urls` in it, or a `\u` escape that could spell it.
fn check_foreign_urls(
    inner: &Inner,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(), Error> {
    let may_have_urls = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if !may_have_urls(b"urls") && !may_have_urls(b"\\u") {
        return Ok(());
    }
    Manifest::parse(bytes, content_type, &inner.manifest_limits)?
        .check_foreign_urls(&inner.config.manifest_urls)
}

/// end-9: a tag (the manifest stays) or a manifest by digest.
pub(super) async fn delete(inner: &Inner, name: &RepositoryName, reference: &Reference) -> Reply {
    inner.store.delete_manifest(name, reference).await?;
    Ok(response(StatusCode::ACCEPTED, Body::empty()))
}

/// The common media types without an allocation; others as stored.
fn media_type_value(media_type: &str) -> Result<HeaderValue, Error> {
    for known in [
        OCI_IMAGE_MANIFEST,
        OCI_IMAGE_INDEX,
        DOCKER_MANIFEST_V2,
        DOCKER_MANIFEST_LIST_V2,
    ] {
        if media_type == known {
            return Ok(HeaderValue::from_static(known));
        }
    }
    headers::value(media_type.to_owned())
}
