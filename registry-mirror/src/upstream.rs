//! The client of one upstream registry: manifests and blobs fetched over
//! the distribution API, with Basic or Docker-style bearer-token
//! authentication, bounded waits, and blob bodies streamed, never buffered.
//!
//! | module | holds |
//! | --- | --- |
//! | `exchange.rs` | one request and the 401 dance (Basic, or a token from the Bearer challenge's realm) |
//! | `auth.rs` | credentials, "this upstream wants Basic", tokens cached per scope with one fetch at a time |
//! | `challenge.rs` | the `WWW-Authenticate` parser |
//! | `body.rs` | bodies read whole under a bound, blob bodies streamed with an idle timeout |
//! | `error.rs` | [`UpstreamError`] and the status table |
//!
//! Credentials go only to the upstream's own origin and to the token realm
//! its challenge names. Redirects (blob storage elsewhere) are followed by
//! reqwest, which drops `Authorization` when the scheme, host or port
//! changes.

mod auth;
mod body;
mod challenge;
mod error;
mod exchange;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use registry_core::media_type;
use registry_core::{ByteStream, Digest, Reference, RepositoryName};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

pub use error::UpstreamError;

use auth::Auth;
use body::{content_length, idle_stream, read_bounded};

/// The manifest media types asked for, in the `Accept` header (kept in
/// step with registry-core's constants by the `accept_list` test).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Redirects followed at most (blob storage, CDNs).
const MAX_REDIRECTS: usize = 10;

/// Basic credentials for an upstream (for a Bearer challenge, sent to its
/// token realm).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to reach one upstream.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Base URL: http(s)://host[:port][/path], no query. `/v2/...` is appended.
    pub url: String,
    /// Credentials, if the upstream needs (or rewards) them.
    pub credentials: Option<Credentials>,
    /// Connect + until response headers (manifests: the whole body).
    pub timeout: Duration,
    /// A blob body that yields nothing for this long fails.
    pub idle_timeout: Duration,
}

/// A client of one upstream registry; cheap to clone (shared state inside:
/// the connection pool, the token cache).
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: reqwest::Client,
    /// The base URL without a trailing slash.
    base: String,
    origin: reqwest::Url,
    timeout: Duration,
    idle_timeout: Duration,
    auth: Auth,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("url", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// What a manifest HEAD told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, if sent and parsable.
    pub digest: Option<Digest>,
    /// The `Content-Type` (its essence, without parameters), if sent.
    pub media_type: Option<String>,
    /// The `Content-Length`, if sent.
    pub size: Option<u64>,
}

/// A manifest fetched whole.
#[derive(Debug, Clone)]
pub struct UpstreamManifest {
    /// The exact bytes the upstream sent.
    pub bytes: Bytes,
    /// The `Content-Type` (its essence), if sent.
    pub media_type: Option<String>,
    /// `Docker-Content-Digest`, if sent and parsable; checked against the
    /// bytes (a mismatch is [`UpstreamError::Invalid`]).
    pub digest: Option<Digest>,
}

/// A blob being fetched.
pub struct UpstreamBlob {
    /// The `Content-Length` of the final (post-redirect) answer, if sent.
    pub size: Option<u64>,
    /// The bytes as they arrive; a stall longer than the idle timeout or a
    /// broken connection is an `Unavailable` error item.
    pub body: ByteStream,
}

impl fmt::Debug for UpstreamBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamBlob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for `options.url`, which must be an absolute http(s) URL
    /// with a host, no query, fragment or user information.
    pub fn new(options: UpstreamOptions) -> Result<Upstream, UpstreamError> {
        let origin = validate_url(&options.url)?;
        let client = reqwest::Client::builder()
            .connect_timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .user_agent(concat!("registry-mirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                UpstreamError::Invalid(format!("building the HTTP client: {}", error::describe(&e)))
            })?;
        Ok(Upstream {
            inner: Arc::new(Inner {
                client,
                base: options.url.trim_end_matches('/').to_owned(),
                origin,
                timeout: options.timeout,
                idle_timeout: options.idle_timeout,
                auth: Auth::new(options.credentials),
            }),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// HEAD /v2/<name>/manifests/<reference> with the manifest Accept list.
    pub async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<ManifestHead, UpstreamError> {
        let url = self.manifest_url(name, reference)?;
        let what = format!("HEAD {url}");
        let answer = self
            .inner
            .exchange(Method::HEAD, &url, name, Some(MANIFEST_ACCEPT), &what)
            .await?;
        let headers = answer.response.headers();
        Ok(ManifestHead {
            digest: digest_header(headers),
            media_type: media_type_header(headers),
            size: content_length(headers),
        })
    }

    /// GET the same; the body read whole but refused past `max_size` bytes
    /// (UpstreamError::Invalid), all within the timeout.
    pub async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        max_size: usize,
    ) -> Result<UpstreamManifest, UpstreamError> {
        let url = self.manifest_url(name, reference)?;
        let what = format!("GET {url}");
        let answer = self
            .inner
            .exchange(Method::GET, &url, name, Some(MANIFEST_ACCEPT), &what)
            .await?;
        let headers = answer.response.headers();
        let digest = digest_header(headers);
        let media_type = media_type_header(headers);
        let deadline = answer.sent_at + self.inner.timeout;
        let bytes = read_bounded(answer.response, max_size, deadline, &what).await?;
        if let Some(d) = &digest
            && Digest::compute(d.algorithm(), &bytes) != *d
        {
            return Err(UpstreamError::Invalid(format!(
                "{what}: the manifest's bytes do not match its Docker-Content-Digest {d}"
            )));
        }
        Ok(UpstreamManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// HEAD /v2/<name>/blobs/<digest>: the size (Content-Length).
    pub async fn head_blob(&self, name: &str, digest: &Digest) -> Result<u64, UpstreamError> {
        let url = self.blob_url(name, digest)?;
        let what = format!("HEAD {url}");
        let answer = self
            .inner
            .exchange(Method::HEAD, &url, name, None, &what)
            .await?;
        content_length(answer.response.headers())
            .ok_or_else(|| UpstreamError::Invalid(format!("{what}: no Content-Length")))
    }

    /// GET /v2/<name>/blobs/<digest>, streamed (never buffered whole),
    /// redirects followed (without credentials to other hosts).
    pub async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<UpstreamBlob, UpstreamError> {
        let url = self.blob_url(name, digest)?;
        let what = format!("GET {url}");
        let answer = self
            .inner
            .exchange(Method::GET, &url, name, None, &what)
            .await?;
        let size = content_length(answer.response.headers());
        let body = idle_stream(
            answer.response,
            self.inner.idle_timeout,
            format!("upstream {what}"),
        );
        Ok(UpstreamBlob { size, body })
    }

    fn manifest_url(&self, name: &str, reference: &str) -> Result<String, UpstreamError> {
        let name = parse_name(name)?;
        let reference = Reference::parse(reference).map_err(|e| {
            UpstreamError::Invalid(format!("reference {reference:?}: {}", e.message()))
        })?;
        let reference = match &reference {
            Reference::Tag(tag) => tag.as_str().to_owned(),
            Reference::Digest(digest) => digest.to_string(),
        };
        Ok(format!(
            "{}/v2/{}/manifests/{reference}",
            self.inner.base,
            name.as_str()
        ))
    }

    fn blob_url(&self, name: &str, digest: &Digest) -> Result<String, UpstreamError> {
        let name = parse_name(name)?;
        Ok(format!(
            "{}/v2/{}/blobs/{digest}",
            self.inner.base,
            name.as_str()
        ))
    }
}

fn parse_name(name: &str) -> Result<RepositoryName, UpstreamError> {
    RepositoryName::parse(name)
        .map_err(|e| UpstreamError::Invalid(format!("repository name {name:?}: {}", e.message())))
}

fn validate_url(url: &str) -> Result<reqwest::Url, UpstreamError> {
    let bad = |why: &str| UpstreamError::Invalid(format!("upstream URL {url:?}: {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if parsed.query().is_some() || url.contains('?') {
        return Err(bad("a query is not allowed"));
    }
    if parsed.fragment().is_some() || url.contains('#') {
        return Err(bad("a fragment is not allowed"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials belong in the configuration, not the URL"));
    }
    // The base is used as written: it must already be in normal form, or
    // the paths built on it would differ from what the client sends.
    if parsed.as_str().trim_end_matches('/') != url.trim_end_matches('/') {
        return Err(bad(&format!(
            "not in normal form (write it as {})",
            parsed.as_str().trim_end_matches('/')
        )));
    }
    Ok(parsed)
}

fn digest_header(headers: &HeaderMap) -> Option<Digest> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?;
    Digest::parse(value.trim()).ok()
}

fn media_type_header(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = media_type::essence(value).trim();
    (!essence.is_empty()).then(|| essence.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_core::media_type::{
        DOCKER_MANIFEST_LIST_V2, DOCKER_MANIFEST_V2, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST,
    };

    #[test]
    fn accept_list() {
        let expected = [
            OCI_IMAGE_MANIFEST,
            OCI_IMAGE_INDEX,
            DOCKER_MANIFEST_V2,
            DOCKER_MANIFEST_LIST_V2,
        ]
        .join(", ");
        assert_eq!(MANIFEST_ACCEPT, expected);
    }

    #[test]
    fn urls_are_validated() {
        for ok in [
            "http://127.0.0.1:5000",
            "https://registry-1.docker.io",
            "https://example.com/prefix/",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "registry-1.docker.io",
            "ftp://example.com",
            "https://example.com?x=1",
            "https://example.com/#frag",
            "https://user:pw@example.com",
            "https://EXAMPLE.com",
            "http:///path",
        ] {
            assert!(
                matches!(validate_url(bad), Err(UpstreamError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_references_are_validated() {
        let up = Upstream::new(UpstreamOptions {
            url: "http://127.0.0.1:1/base/".into(),
            credentials: None,
            timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        })
        .unwrap();
        assert_eq!(up.url(), "http://127.0.0.1:1/base");
        assert_eq!(
            up.manifest_url("library/alpine", "3.20").unwrap(),
            "http://127.0.0.1:1/base/v2/library/alpine/manifests/3.20"
        );
        assert!(up.manifest_url("../etc", "latest").is_err());
        assert!(up.manifest_url("a", "x?y").is_err());
        assert!(up.manifest_url("a", "sha256:nothex").is_err());
    }
}
