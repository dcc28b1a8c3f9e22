//! The one error type of the registry, with kinds that follow the OCI
//! distribution spec's error codes.
//!
//! Storage backends translate their own failures into an [`ErrorKind`] once,
//! and the HTTP layer maps each kind to a status code and a spec error code in
//! one table. Nothing in this module knows about HTTP.

use std::fmt;

/// What went wrong, in the vocabulary of the OCI distribution spec.
///
/// The HTTP layer turns each kind into exactly one status and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The blob is not known to the repository (`BLOB_UNKNOWN`).
    BlobUnknown,
    /// The upload failed and must be restarted (`BLOB_UPLOAD_INVALID`).
    BlobUploadInvalid,
    /// The upload session is not known (`BLOB_UPLOAD_UNKNOWN`).
    BlobUploadUnknown,
    /// A chunk was sent at an offset other than the upload's current one.
    /// The HTTP layer answers 416 with the current range.
    RangeInvalid,
    /// The content does not match the digest, or the digest is malformed
    /// (`DIGEST_INVALID`).
    DigestInvalid,
    /// A manifest references a blob or manifest the repository does not
    /// have (`MANIFEST_BLOB_UNKNOWN`).
    ManifestBlobUnknown,
    /// The manifest is malformed or fails validation (`MANIFEST_INVALID`).
    ManifestInvalid,
    /// The manifest is not known to the repository (`MANIFEST_UNKNOWN`).
    ManifestUnknown,
    /// The repository name is malformed (`NAME_INVALID`).
    NameInvalid,
    /// The repository is not known (`NAME_UNKNOWN`).
    NameUnknown,
    /// The content length does not match what was declared (`SIZE_INVALID`).
    SizeInvalid,
    /// Authentication is required (`UNAUTHORIZED`).
    Unauthorized,
    /// The caller is authenticated but may not do this (`DENIED`).
    Denied,
    /// The operation is not supported (`UNSUPPORTED`).
    Unsupported,
    /// Too many requests (`TOOMANYREQUESTS`).
    TooManyRequests,
    /// A tag is malformed. The spec has no code of its own for it; the HTTP
    /// layer reports `MANIFEST_INVALID`.
    TagInvalid,
    /// A request parameter (pagination, range, query) is malformed.
    /// The HTTP layer reports 400 with `UNSUPPORTED`'s sibling code
    /// chosen in its table.
    InvalidArgument,
    /// A request body arrived too slowly, was cut short, or the client went
    /// away. Nothing is committed.
    Incomplete,
    /// The request or its content is larger than allowed.
    TooLarge,
    /// The storage backend failed in a way the client cannot fix. The
    /// detail is logged, never sent to the client.
    Storage,
    /// A conditional write lost a race against another writer.
    Conflict,
    /// The storage backend is known to be failing (or did not answer in
    /// time), so the request was not attempted, or given up: the client
    /// may retry later. The HTTP layer answers 503 `UNAVAILABLE`.
    Unavailable,
    /// An internal invariant failed.
    Internal,
}

impl ErrorKind {
    /// A short, stable description of the kind, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BlobUnknown => "blob unknown to registry",
            ErrorKind::BlobUploadInvalid => "blob upload invalid",
            ErrorKind::BlobUploadUnknown => "blob upload unknown to registry",
            ErrorKind::RangeInvalid => "requested range not satisfiable",
            ErrorKind::DigestInvalid => "provided digest did not match uploaded content",
            ErrorKind::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            ErrorKind::ManifestInvalid => "manifest invalid",
            ErrorKind::ManifestUnknown => "manifest unknown to registry",
            ErrorKind::NameInvalid => "invalid repository name",
            ErrorKind::NameUnknown => "repository name not known to registry",
            ErrorKind::SizeInvalid => "provided length did not match content length",
            ErrorKind::Unauthorized => "authentication required",
            ErrorKind::Denied => "requested access to the resource is denied",
            ErrorKind::Unsupported => "the operation is unsupported",
            ErrorKind::TooManyRequests => "too many requests",
            ErrorKind::TagInvalid => "invalid tag",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Incomplete => "request body incomplete",
            ErrorKind::TooLarge => "content too large",
            ErrorKind::Storage => "storage backend error",
            ErrorKind::Conflict => "concurrent update conflict",
            ErrorKind::Unavailable => "service unavailable",
            ErrorKind::Internal => "internal error",
        }
    }

    /// Whether the failure lies with the server rather than the request.
    /// Messages of server-side errors are never sent to clients.
    pub fn is_server_side(self) -> bool {
        matches!(
            self,
            ErrorKind::Storage | ErrorKind::Internal | ErrorKind::Unavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registry error: a [`ErrorKind`], a human-readable message, optional
/// structured detail for the spec's `detail` field, and an optional source.
pub struct Error {
    kind: ErrorKind,
    message: String,
    detail: Option<serde_json::Value>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            detail: None,
            source: None,
        }
    }

    /// Attach structured detail, sent as the spec's `detail` field
    /// (never for server-side kinds).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message given at construction.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured detail, if any.
    pub fn detail(&self) -> Option<&serde_json::Value> {
        self.detail.as_ref()
    }

    /// Whether this is a "not found" style error for blobs, manifests,
    /// repositories or uploads.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BlobUnknown
                | ErrorKind::ManifestUnknown
                | ErrorKind::NameUnknown
                | ErrorKind::BlobUploadUnknown
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(detail) = &self.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// The registry's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_kind_message_and_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::new(ErrorKind::Storage, "writing blob").with_source(io);
        assert_eq!(
            e.to_string(),
            "storage backend error: writing blob (disk on fire)"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.kind().is_server_side());
    }

    #[test]
    fn not_found_kinds() {
        assert!(Error::new(ErrorKind::BlobUnknown, "").is_not_found());
        assert!(!Error::new(ErrorKind::DigestInvalid, "").is_not_found());
    }

    fn _assert_send_sync() {
        fn f<T: Send + Sync + 'static>() {}
        f::<Error>();
    }
}
