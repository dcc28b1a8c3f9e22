//! Translation of OpenDAL errors into registry errors, in one place.

use registry_core::{Error, ErrorKind};

/// Map an OpenDAL error to a registry error. `not_found` is the kind a
/// missing object means at the call site (a missing link is `BlobUnknown`
/// for a blob read and `ManifestUnknown` for a manifest read).
pub(crate) fn from_opendal(err: opendal::Error, not_found: ErrorKind, what: &str) -> Error {
    let kind = match err.kind() {
        opendal::ErrorKind::NotFound => not_found,
        opendal::ErrorKind::ConditionNotMatch | opendal::ErrorKind::AlreadyExists => {
            ErrorKind::Conflict
        }
        opendal::ErrorKind::RateLimited => ErrorKind::TooManyRequests,
        opendal::ErrorKind::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Storage,
    };
    Error::new(kind, what.to_string()).with_source(err)
}

/// Shorthand for storage failures where "not found" is itself unexpected.
pub(crate) fn storage(what: &'static str) -> impl FnOnce(opendal::Error) -> Error {
    move |e| from_opendal(e, ErrorKind::Storage, what)
}

/// Whether an OpenDAL error means the object is absent.
pub(crate) fn is_not_found(err: &opendal::Error) -> bool {
    err.kind() == opendal::ErrorKind::NotFound
}

/// Whether an OpenDAL error means a conditional write lost.
pub(crate) fn is_condition_failed(err: &opendal::Error) -> bool {
    matches!(
        err.kind(),
        opendal::ErrorKind::ConditionNotMatch | opendal::ErrorKind::AlreadyExists
    )
}
