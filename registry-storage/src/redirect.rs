//! Redirects: blob reads answered with a presigned URL of the bucket, so
//! that clients fetch the bytes from S3 rather than through this process
//! (docs/OPERATIONS.md, "Redirects"). S3 only; off unless asked for.

use std::time::Duration;

use opendal::Operator;
use registry_core::{Digest, Error, ErrorKind, Result};

use crate::OpendalStore;
use crate::error;
use crate::layout::Key;

/// The longest expiry a SigV4 presigned URL may have (seven days).
pub const MAX_REDIRECT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// How blob reads are redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedirectOptions {
    /// How long a presigned URL stays valid (at most
    /// [`MAX_REDIRECT_EXPIRY`]).
    pub expiry: Duration,
    /// The endpoint the URLs are signed for and point at, when clients reach
    /// the bucket under another address than this process does; `None`: the
    /// storage URL's endpoint (AWS's when it has none).
    pub endpoint: Option<String>,
}

impl RedirectOptions {
    /// URLs valid for `expiry`, on the storage's own endpoint.
    pub fn new(expiry: Duration) -> Self {
        RedirectOptions {
            expiry,
            endpoint: None,
        }
    }

    /// Sign for, and point at, `endpoint` instead.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

/// The presigning side of a store with redirects on.
#[derive(Debug)]
pub(crate) struct Redirects {
    /// An operator on the same bucket and root, built for the public
    /// endpoint: SigV4 signs the host, so the URL cannot be rewritten after.
    op: Operator,
    expiry: Duration,
    /// The endpoint `op` signs for (`None`: AWS's).
    endpoint: Option<String>,
}

impl Redirects {
    /// A presigned `GET` of the blob's data, valid for the expiry.
    pub(crate) async fn presign(&self, digest: &Digest) -> Result<String> {
        let req = self
            .op
            .presign_read(&Key::BlobData(digest).path(), self.expiry)
            .await
            .map_err(error::storage("presigning a blob URL"))?;
        Ok(req.uri().to_string())
    }
}

impl OpendalStore {
    /// Answer [`blob_location`](registry_core::BlobStore::blob_location)
    /// with presigned URLs of the bucket. S3 stores only
    /// ([`ErrorKind::Unsupported`] otherwise); signs one URL first, so that
    /// missing credentials or a bad endpoint fail here rather than on the
    /// first pull.
    pub async fn with_redirects(self, options: &RedirectOptions) -> Result<Self> {
        if options.expiry < Duration::from_secs(1) || options.expiry > MAX_REDIRECT_EXPIRY {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "redirect expiry {:?} is not between 1s and {:?} (SigV4's limit)",
                    options.expiry, MAX_REDIRECT_EXPIRY
                ),
            ));
        }
        let redirects = self.redirects_for(options)?;
        let probe = Digest::parse(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        )?;
        redirects.presign(&probe).await?;
        Ok(self.edited(|inner| inner.redirects = Some(std::sync::Arc::new(redirects))))
    }

    /// The endpoint presigned URLs point at: the public one if given, else
    /// the storage URL's; `None` when redirects are off or the store is on
    /// AWS's default endpoint.
    pub fn redirect_endpoint(&self) -> Option<&str> {
        self.redirects()?.endpoint.as_deref()
    }

    #[cfg(feature = "s3")]
    fn redirects_for(&self, options: &RedirectOptions) -> Result<Redirects> {
        let Some(s3) = self.inner.s3.as_deref() else {
            return Err(not_s3());
        };
        let endpoint = options.endpoint.as_deref().or(s3.endpoint.as_deref());
        let op = Operator::new(crate::s3_builder(s3, endpoint))
            .map_err(error::storage("configuring S3 for presigning"))?;
        Ok(Redirects {
            op,
            expiry: options.expiry,
            endpoint: endpoint.map(str::to_owned),
        })
    }

    #[cfg(not(feature = "s3"))]
    fn redirects_for(&self, _: &RedirectOptions) -> Result<Redirects> {
        Err(not_s3())
    }

    pub(crate) fn redirects(&self) -> Option<&Redirects> {
        self.inner.redirects.as_deref()
    }
}

fn not_s3() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "redirects need S3 storage (s3://...): other stores have no URL a client could fetch",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_off_s3_and_beyond_sigv4s_expiries() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpendalStore::fs(dir.path()).unwrap();
        let ok = RedirectOptions::new(Duration::from_secs(60));
        let err = store.clone().with_redirects(&ok).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(store.redirect_endpoint(), None);
        for expiry in [
            Duration::ZERO,
            Duration::from_millis(999),
            MAX_REDIRECT_EXPIRY * 2,
        ] {
            let err = store
                .clone()
                .with_redirects(&RedirectOptions::new(expiry))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{expiry:?}");
        }
    }
}
