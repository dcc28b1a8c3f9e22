//! Routing: a pure function from a method and a URI to a typed [`Route`].
//!
//! Repository names contain `/`, so a path is read from the right: the
//! endpoint suffix (`blobs/<digest>`, `blobs/uploads/`, `manifests/<ref>`,
//! `tags/list`, `referrers/<digest>`) is matched first and everything
//! between `/v2/` and it is the name. `/v2/a/blobs/manifests/x` is the
//! manifest `x` of the repository `a/blobs`. The trailing slash of
//! `blobs/uploads/` is optional; `blobs/uploads` is never read as a blob
//! named `uploads` (which would not be a digest anyway).
//!
//! Every name, tag, digest and upload id is parsed into its validated
//! `registry-core` type here, so nothing unchecked reaches a handler or the
//! store. Names and ids are taken verbatim: they cannot contain a `%`, so an
//! encoded `.` or `/` makes them invalid. References and digests are
//! percent-decoded, because some clients encode the `:` of a digest.
//! Query values are percent-decoded; `+` stays `+` (none of the parameters
//! can contain a space, and media types contain `+`).

mod query;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use http::{Method, Uri};
use percent_encoding::percent_decode_str;
use registry_core::{Digest, Error, ErrorKind, Reference, RepositoryName, Result, Tag, UploadId};

use self::query::Query;
use crate::auth::{Access, Actions};

/// A request the registry understands, with every path and query parameter
/// validated. Comments cite the endpoint ids of the distribution spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// end-1: `GET /v2/`.
    Base,
    /// `GET /v2/_catalog`: the repositories, paginated (not in the spec's
    /// table; served as CNCF distribution does).
    Catalog {
        /// `n`: page size.
        n: Option<usize>,
        /// `last`: list repositories after this one.
        last: Option<RepositoryName>,
    },
    /// end-2: `GET` or `HEAD /v2/<name>/blobs/<digest>`.
    GetBlob {
        /// The repository.
        name: RepositoryName,
        /// The blob.
        digest: Digest,
        /// `HEAD`: headers only.
        head: bool,
    },
    /// end-10: `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob {
        /// The repository.
        name: RepositoryName,
        /// The blob.
        digest: Digest,
    },
    /// end-4a, end-4b, end-11: `POST /v2/<name>/blobs/uploads/`.
    StartUpload {
        /// The repository.
        name: RepositoryName,
        /// A session, a single-request upload or a mount.
        mode: UploadMode,
    },
    /// end-13: `GET /v2/<name>/blobs/uploads/<id>`.
    UploadStatus {
        /// The repository.
        name: RepositoryName,
        /// The session.
        id: UploadId,
    },
    /// end-5: `PATCH /v2/<name>/blobs/uploads/<id>`.
    PatchUpload {
        /// The repository.
        name: RepositoryName,
        /// The session.
        id: UploadId,
    },
    /// end-6: `PUT /v2/<name>/blobs/uploads/<id>?digest=<digest>`.
    FinishUpload {
        /// The repository.
        name: RepositoryName,
        /// The session.
        id: UploadId,
        /// Digest of the whole blob.
        digest: Digest,
    },
    /// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel an upload (not in the
    /// spec's table; served as CNCF distribution does).
    CancelUpload {
        /// The repository.
        name: RepositoryName,
        /// The session.
        id: UploadId,
    },
    /// end-3: `GET` or `HEAD /v2/<name>/manifests/<reference>`.
    GetManifest {
        /// The repository.
        name: RepositoryName,
        /// Tag or digest.
        reference: Reference,
        /// `HEAD`: headers only.
        head: bool,
    },
    /// end-7: `PUT /v2/<name>/manifests/<reference>`.
    PutManifest {
        /// The repository.
        name: RepositoryName,
        /// Tag or digest.
        reference: Reference,
    },
    /// end-9: `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        /// The repository.
        name: RepositoryName,
        /// Tag or digest.
        reference: Reference,
    },
    /// end-8a, end-8b: `GET /v2/<name>/tags/list`.
    ListTags {
        /// The repository.
        name: RepositoryName,
        /// `n`: page size.
        n: Option<usize>,
        /// `last`: list tags after this one.
        last: Option<Tag>,
    },
    /// end-12a, end-12b: `GET /v2/<name>/referrers/<digest>`.
    ListReferrers {
        /// The repository.
        name: RepositoryName,
        /// The subject.
        digest: Digest,
        /// `artifactType` filter, a well-formed media type.
        artifact_type: Option<String>,
        /// `n`: page size.
        n: Option<usize>,
        /// `last`: list referrers whose digest (as a string) follows this one.
        last: Option<Digest>,
    },
}

/// What a `POST /v2/<name>/blobs/uploads/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadMode {
    /// end-4a: open an upload session.
    Session,
    /// end-4b: the body is the whole blob (`?digest=`).
    Monolithic(Digest),
    /// end-11: link a blob from another repository (`?mount=&from=`);
    /// without `from`, or if the mount fails, a session is opened instead.
    Mount {
        /// The blob.
        digest: Digest,
        /// The repository it is in.
        from: Option<RepositoryName>,
    },
}

/// The endpoint a request was addressed to, for the error table: a few
/// error kinds mean a different status on different endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    /// end-1.
    Base,
    /// `_catalog`.
    Catalog,
    /// end-2.
    BlobRead,
    /// end-10.
    BlobDelete,
    /// end-4a, end-4b, end-11.
    UploadStart,
    /// end-13.
    UploadStatus,
    /// end-5.
    UploadChunk,
    /// end-6.
    UploadFinish,
    /// Upload cancel.
    UploadCancel,
    /// end-3.
    ManifestRead,
    /// end-7.
    ManifestPut,
    /// end-9.
    ManifestDelete,
    /// end-8.
    Tags,
    /// end-12.
    Referrers,
}

/// How far routing got with a request, for the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// The path names no endpoint.
    UnknownPath,
    /// The path names endpoints, none for this method.
    WrongMethod,
    /// The request reached an endpoint.
    Endpoint(Endpoint),
}

/// A request that no route accepts: the error, how far routing got and,
/// for a wrong method, the methods that path allows.
#[derive(Debug)]
pub(crate) struct Unrouted {
    pub(crate) error: Error,
    pub(crate) target: Target,
    pub(crate) allow: Option<&'static str>,
}

/// The shape of a path, before its parts are validated.
#[derive(Debug, Clone, Copy)]
enum Shape<'a> {
    Base,
    Catalog,
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Manifest(&'a str, &'a str),
    Tags(&'a str),
    Referrers(&'a str, &'a str),
}

impl Route {
    /// Parse a request's method and URI. Unknown paths fail with
    /// [`ErrorKind::Unsupported`] (answered 404), a known path with a wrong
    /// method with [`ErrorKind::Unsupported`] (answered 405), and invalid
    /// names, references, digests, ids or query parameters with their own
    /// kinds.
    pub fn parse(method: &Method, uri: &Uri) -> Result<Route> {
        resolve(method, uri).map_err(|u| u.error)
    }

    /// The access this route needs. A mount also needs pull access to its
    /// source, which the router asks for separately.
    pub fn access(&self) -> Access<'_> {
        let pull = Actions::PULL;
        let push = Actions::PULL | Actions::PUSH;
        match self {
            Route::Base => Access::base(),
            Route::Catalog { .. } => Access::catalog(),
            Route::GetBlob { name, .. }
            | Route::GetManifest { name, .. }
            | Route::ListTags { name, .. }
            | Route::ListReferrers { name, .. } => Access::repository(name, pull),
            Route::StartUpload { name, .. }
            | Route::UploadStatus { name, .. }
            | Route::PatchUpload { name, .. }
            | Route::FinishUpload { name, .. }
            | Route::CancelUpload { name, .. }
            | Route::PutManifest { name, .. } => Access::repository(name, push),
            Route::DeleteBlob { name, .. } | Route::DeleteManifest { name, .. } => {
                Access::repository(name, Actions::DELETE)
            }
        }
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        match self {
            Route::Base => Endpoint::Base,
            Route::Catalog { .. } => Endpoint::Catalog,
            Route::GetBlob { .. } => Endpoint::BlobRead,
            Route::DeleteBlob { .. } => Endpoint::BlobDelete,
            Route::StartUpload { .. } => Endpoint::UploadStart,
            Route::UploadStatus { .. } => Endpoint::UploadStatus,
            Route::PatchUpload { .. } => Endpoint::UploadChunk,
            Route::FinishUpload { .. } => Endpoint::UploadFinish,
            Route::CancelUpload { .. } => Endpoint::UploadCancel,
            Route::GetManifest { .. } => Endpoint::ManifestRead,
            Route::PutManifest { .. } => Endpoint::ManifestPut,
            Route::DeleteManifest { .. } => Endpoint::ManifestDelete,
            Route::ListTags { .. } => Endpoint::Tags,
            Route::ListReferrers { .. } => Endpoint::Referrers,
        }
    }
}

/// [`Route::parse`], keeping what the error response needs.
pub(crate) fn resolve(method: &Method, uri: &Uri) -> Result<Route, Unrouted> {
    let shape = shape(uri.path()).ok_or_else(|| Unrouted {
        error: Error::new(ErrorKind::Unsupported, "no such endpoint"),
        target: Target::UnknownPath,
        allow: None,
    })?;
    let endpoint = endpoint(method, shape).ok_or_else(|| Unrouted {
        error: Error::new(
            ErrorKind::Unsupported,
            format!("method {method} not allowed on this endpoint"),
        ),
        target: Target::WrongMethod,
        allow: Some(shape.allow()),
    })?;
    build(
        endpoint,
        shape,
        Query::new(uri.query()),
        method == Method::HEAD,
    )
    .map_err(|error| Unrouted {
        error,
        target: Target::Endpoint(endpoint),
        allow: None,
    })
}

/// Match the endpoint suffix from the right; `None` for any other path.
fn shape(path: &str) -> Option<Shape<'_>> {
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
    fn allow(self) -> &'static str {
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
fn endpoint(method: &Method, shape: Shape<'_>) -> Option<Endpoint> {
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

/// Validate the parts of a path and its query into a route.
fn build(endpoint: Endpoint, shape: Shape<'_>, query: Query<'_>, head: bool) -> Result<Route> {
    let route = match (endpoint, shape) {
        (Endpoint::Base, _) => Route::Base,
        (Endpoint::Catalog, _) => Route::Catalog {
            n: query.page_size()?,
            last: query
                .get("last")
                .map(|l| RepositoryName::parse(&l).map_err(|e| bad_argument("last", e)))
                .transpose()?,
        },
        (Endpoint::BlobRead, Shape::Blob(name, digest)) => Route::GetBlob {
            name: name_of(name)?,
            digest: digest_of(digest)?,
            head,
        },
        (Endpoint::BlobDelete, Shape::Blob(name, digest)) => Route::DeleteBlob {
            name: name_of(name)?,
            digest: digest_of(digest)?,
        },
        (Endpoint::UploadStart, Shape::Uploads(name)) => Route::StartUpload {
            name: name_of(name)?,
            mode: start_mode(&query)?,
        },
        (_, Shape::Upload(name, id)) => {
            let (name, id) = (name_of(name)?, UploadId::parse(id)?);
            match endpoint {
                Endpoint::UploadStatus => Route::UploadStatus { name, id },
                Endpoint::UploadChunk => Route::PatchUpload { name, id },
                Endpoint::UploadCancel => Route::CancelUpload { name, id },
                _ => {
                    let digest = query.get("digest").ok_or_else(|| {
                        Error::new(
                            ErrorKind::DigestInvalid,
                            "the digest query parameter is required",
                        )
                    })?;
                    Route::FinishUpload {
                        name,
                        id,
                        digest: Digest::parse(&digest)?,
                    }
                }
            }
        }
        (_, Shape::Manifest(name, reference)) => {
            let name = name_of(name)?;
            let reference = Reference::parse(&decode(reference))?;
            match endpoint {
                Endpoint::ManifestRead => Route::GetManifest {
                    name,
                    reference,
                    head,
                },
                Endpoint::ManifestPut => Route::PutManifest { name, reference },
                _ => Route::DeleteManifest { name, reference },
            }
        }
        (Endpoint::Tags, Shape::Tags(name)) => Route::ListTags {
            name: name_of(name)?,
            n: query.page_size()?,
            last: query
                .get("last")
                .map(|l| Tag::parse(&l).map_err(|e| bad_argument("last", e)))
                .transpose()?,
        },
        (Endpoint::Referrers, Shape::Referrers(name, digest)) => Route::ListReferrers {
            name: name_of(name)?,
            digest: digest_of(digest)?,
            n: query.page_size()?,
            last: query
                .get("last")
                .map(|l| Digest::parse(&l).map_err(|e| bad_argument("last", e)))
                .transpose()?,
            artifact_type: query
                .get("artifactType")
                .filter(|t| !t.is_empty())
                .map(|t| {
                    if registry_core::media_type::is_valid(&t) {
                        Ok(t.into_owned())
                    } else {
                        Err(Error::new(
                            ErrorKind::InvalidArgument,
                            format!("artifactType {t:?} is not a media type"),
                        ))
                    }
                })
                .transpose()?,
        },
        _ => unreachable!("endpoint() only selects endpoints of the path's shape"),
    };
    Ok(route)
}

fn start_mode(query: &Query<'_>) -> Result<UploadMode> {
    if let Some(mount) = query.get("mount") {
        let from = query
            .get("from")
            .map(|f| RepositoryName::parse(&f))
            .transpose()?;
        return Ok(UploadMode::Mount {
            digest: Digest::parse(&mount)?,
            from,
        });
    }
    match query.get("digest") {
        Some(d) => Ok(UploadMode::Monolithic(Digest::parse(&d)?)),
        None => Ok(UploadMode::Session),
    }
}

fn name_of(raw: &str) -> Result<RepositoryName> {
    RepositoryName::parse(raw)
}

fn digest_of(raw: &str) -> Result<Digest> {
    Digest::parse(&decode(raw))
}

/// Percent-decode one path segment. Anything that does not decode to UTF-8
/// is kept as is and fails validation.
fn decode(raw: &str) -> Cow<'_, str> {
    match percent_decode_str(raw).decode_utf8() {
        Ok(s) => s,
        Err(_) => Cow::Borrowed(raw),
    }
}

fn bad_argument(param: &str, e: Error) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("invalid {param}: {}", e.message()),
    )
}
