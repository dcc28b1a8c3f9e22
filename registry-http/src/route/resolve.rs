//! How far routing got with a request: the endpoint it reached, or why it
//! reached none, for the error table; and [`resolve`], which gets there.

use http::{Method, Uri};
use registry_core::{Error, ErrorKind, Result};

use super::Route;
use super::query::Query;
use super::shape::{endpoint, shape};
use super::validate::build;

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
