//! PROVISIONAL (lead's local stand-in until branch `upstream` lands; never committed).
#![allow(missing_docs, unused)]
use bytes::Bytes;
use registry_core::{ByteStream, Digest};
use std::time::Duration;
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}
#[derive(Clone)]
pub struct UpstreamOptions {
    pub url: String,
    pub credentials: Option<Credentials>,
    pub timeout: Duration,
    pub idle_timeout: Duration,
}
#[derive(Clone, Debug)]
pub struct Upstream {
    url: String,
}
impl Upstream {
    pub fn new(options: UpstreamOptions) -> Result<Upstream, UpstreamError> {
        unimplemented!()
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    pub async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<ManifestHead, UpstreamError> {
        unimplemented!()
    }
    pub async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        max_size: usize,
    ) -> Result<UpstreamManifest, UpstreamError> {
        unimplemented!()
    }
    pub async fn head_blob(&self, name: &str, digest: &Digest) -> Result<u64, UpstreamError> {
        unimplemented!()
    }
    pub async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<UpstreamBlob, UpstreamError> {
        unimplemented!()
    }
}
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}
pub struct UpstreamManifest {
    pub bytes: Bytes,
    pub media_type: Option<String>,
    pub digest: Option<Digest>,
}
pub struct UpstreamBlob {
    pub size: Option<u64>,
    pub body: ByteStream,
}
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("not found")]
    NotFound,
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("denied {status}")]
    Denied { status: u16 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("invalid: {0}")]
    Invalid(String),
}
impl UpstreamError {
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. } | UpstreamError::Unavailable(_)
        )
    }
}
