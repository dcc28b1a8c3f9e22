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
//!
//! One step per file: `shape.rs` matches the path's shape and the endpoint
//! the method selects on it, `validate.rs` parses its parts into a
//! [`Route`], and `resolve.rs` runs both, keeping how far a refused request
//! got for the error table.

mod query;
mod resolve;
mod shape;
#[cfg(test)]
mod tests;
mod validate;

use http::{Method, Uri};
use registry_core::{Digest, Reference, RepositoryName, Result, Tag, UploadId};

pub(crate) use self::resolve::{Endpoint, Target, Unrouted, resolve};
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

    /// Replace the repository names the route carries (its repository,
    /// and a mount's source) by what `f` returns for them, where it returns
    /// one.
    pub(crate) fn map_names(
        &mut self,
        mut f: impl FnMut(&RepositoryName) -> Option<RepositoryName>,
    ) {
        let mut map = |name: &mut RepositoryName| {
            if let Some(mapped) = f(name) {
                *name = mapped;
            }
        };
        match self {
            Route::Base | Route::Catalog { .. } => {}
            Route::StartUpload { name, mode } => {
                map(name);
                if let UploadMode::Mount {
                    from: Some(from), ..
                } = mode
                {
                    map(from);
                }
            }
            Route::GetBlob { name, .. }
            | Route::DeleteBlob { name, .. }
            | Route::UploadStatus { name, .. }
            | Route::PatchUpload { name, .. }
            | Route::FinishUpload { name, .. }
            | Route::CancelUpload { name, .. }
            | Route::GetManifest { name, .. }
            | Route::PutManifest { name, .. }
            | Route::DeleteManifest { name, .. }
            | Route::ListTags { name, .. }
            | Route::ListReferrers { name, .. } => map(name),
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
