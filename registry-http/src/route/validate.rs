//! The parts of a path and its query, validated into a [`Route`]: every
//! name, tag, digest and upload id through its `registry-core` type.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use registry_core::{Digest, Error, ErrorKind, Reference, RepositoryName, Result, Tag, UploadId};

use super::query::Query;
use super::shape::Shape;
use super::{Endpoint, Route, UploadMode};

/// Validate the parts of a path and its query into a route.
pub(super) fn build(
    endpoint: Endpoint,
    shape: Shape<'_>,
    query: Query<'_>,
    head: bool,
) -> Result<Route> {
    let route = match (endpoint, shape) {
        (Endpoint::Base, _) => Route::Base,
        (Endpoint::Catalog, _) => Route::Catalog {
            n: query.page_size()?,
            last: last(&query, RepositoryName::parse)?,
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
            last: last(&query, Tag::parse)?,
        },
        (Endpoint::Referrers, Shape::Referrers(name, digest)) => Route::ListReferrers {
            name: name_of(name)?,
            digest: digest_of(digest)?,
            n: query.page_size()?,
            last: last(&query, Digest::parse)?,
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

/// The `last` pagination parameter, parsed by `parse`.
fn last<T>(query: &Query<'_>, parse: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    (query.get("last"))
        .map(|l| parse(&l).map_err(|e| bad_argument("last", e)))
        .transpose()
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
