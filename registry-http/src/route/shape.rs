//! The shape of a path: the endpoint suffix matched from the right, before
//! any part is validated; and the endpoint a method selects on it.

use http::Method;

use super::Endpoint;

/// The shape of a path, before its parts are validated.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape<'a> {
    Base,
    Catalog,
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Manifest(&'a str, &'a str),
    Tags(&'a str),
    Referrers(&'a str, &'a str),
}

/// Match the endpoint suffix from the right; `None` for any other path.
pub(super) fn shape(path: &str) -> Option<Shape<'_>> {
    let rest = match path {
        "/v2" | "/v2/" => return Some(Shape::Base),
        "/v2/_catalog" => return Some(Shape::Catalog),
        _ => path.strip_prefix("/v2/")?,
    };
    // Trailing slash: only `<name>/blobs/uploads/`.
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Some(Shape::Uploads(name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    let (name, kind) = head.rsplit_once('/')?;
    match (kind, last) {
        ("tags", "list") => return Some(Shape::Tags(name)),
        ("blobs", "uploads") => return Some(Shape::Uploads(name)),
        ("blobs", _) => return Some(Shape::Blob(name, last)),
        ("manifests", _) => return Some(Shape::Manifest(name, last)),
        ("referrers", _) => return Some(Shape::Referrers(name, last)),
        _ => {}
    }
    match name.rsplit_once('/') {
        Some((name, "blobs")) if kind == "uploads" => Some(Shape::Upload(name, last)),
        _ => None,
    }
}

impl Shape<'_> {
    /// The `Allow` header value for this path.
    pub(super) fn allow(self) -> &'static str {
        match self {
            Shape::Base | Shape::Catalog | Shape::Tags(_) | Shape::Referrers(..) => "GET, HEAD",
            Shape::Blob(..) => "GET, HEAD, DELETE",
            Shape::Uploads(_) => "POST",
            Shape::Upload(..) => "GET, PATCH, PUT, DELETE",
            Shape::Manifest(..) => "GET, HEAD, PUT, DELETE",
        }
    }
}

/// The endpoint a method selects on a path, if any. `HEAD` is accepted
/// wherever `GET` is (except upload status, which distribution does not
/// serve for `HEAD` either).
pub(super) fn endpoint(method: &Method, shape: Shape<'_>) -> Option<Endpoint> {
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match shape {
        Shape::Base if read => Endpoint::Base,
        Shape::Catalog if read => Endpoint::Catalog,
        Shape::Tags(_) if read => Endpoint::Tags,
        Shape::Referrers(..) if read => Endpoint::Referrers,
        Shape::Blob(..) if read => Endpoint::BlobRead,
        Shape::Blob(..) if *method == Method::DELETE => Endpoint::BlobDelete,
        Shape::Uploads(_) if *method == Method::POST => Endpoint::UploadStart,
        Shape::Upload(..) => match *method {
            Method::GET => Endpoint::UploadStatus,
            Method::PATCH => Endpoint::UploadChunk,
            Method::PUT => Endpoint::UploadFinish,
            Method::DELETE => Endpoint::UploadCancel,
            _ => return None,
        },
        Shape::Manifest(..) if read => Endpoint::ManifestRead,
        Shape::Manifest(..) if *method == Method::PUT => Endpoint::ManifestPut,
        Shape::Manifest(..) if *method == Method::DELETE => Endpoint::ManifestDelete,
        _ => return None,
    })
}
