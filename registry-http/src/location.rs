//! The URLs the router sends back (`Location`, `Link`), under the
//! configured public prefix. Upload URLs are opaque to clients; they carry
//! the repository and the session id the store chose.

use std::fmt::Write;

use http::HeaderValue;
use registry_core::{Digest, RepositoryName, Result, UploadId};

use crate::headers::value;

/// `<prefix>/v2/<name>/blobs/<digest>`
pub(crate) fn blob(prefix: &str, name: &RepositoryName, digest: &Digest) -> Result<HeaderValue> {
    value(format!("{prefix}/v2/{name}/blobs/{digest}"))
}

/// `<prefix>/v2/<name>/blobs/uploads/<id>`
pub(crate) fn upload(prefix: &str, name: &RepositoryName, id: &UploadId) -> Result<HeaderValue> {
    value(format!("{prefix}/v2/{name}/blobs/uploads/{id}"))
}

/// `<prefix>/v2/<name>/manifests/<digest>`
pub(crate) fn manifest(
    prefix: &str,
    name: &RepositoryName,
    digest: &Digest,
) -> Result<HeaderValue> {
    value(format!("{prefix}/v2/{name}/manifests/{digest}"))
}

/// `Link: <path?n=<n>&last=<last>>; rel="next"`. Tags and names need no
/// escaping in a query.
pub(crate) fn next_page(prefix: &str, path: &str, n: usize, last: &str) -> Result<HeaderValue> {
    let mut s = String::with_capacity(prefix.len() + path.len() + last.len() + 32);
    write!(s, "<{prefix}{path}?n={n}&last={last}>; rel=\"next\"").expect("writing to a String");
    value(s)
}

/// Whether `host` is `domain` or a subdomain of it (case-insensitive; IP
/// addresses only match themselves). Clients following a redirect send the
/// credentials of the first host to such a host: the registry never sends
/// one there (a presigned URL with an `Authorization` header besides is
/// refused by S3, and the credentials would leak to whoever serves it).
pub fn same_or_subdomain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    // `[::1]` as written in a URL or a Host header.
    let bare = |s: &str| s.trim_start_matches('[').trim_end_matches(']').to_owned();
    let (host, domain) = (bare(&host), bare(&domain));
    if host.is_empty() || domain.is_empty() {
        return false;
    }
    if host == domain {
        return true;
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    host.strip_suffix(&domain)
        .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        assert!(same_or_subdomain(
            "registry.example.com",
            "registry.example.com"
        ));
        assert!(same_or_subdomain(
            "s3.Registry.example.com.",
            "registry.example.COM"
        ));
        assert!(same_or_subdomain("127.0.0.1", "127.0.0.1"));
        assert!(same_or_subdomain("[::1]", "::1"));
        assert!(!same_or_subdomain(
            "evilregistry.example.com",
            "registry.example.com"
        ));
        assert!(!same_or_subdomain("example.com", "registry.example.com"));
        assert!(!same_or_subdomain(
            "s3.amazonaws.com",
            "registry.example.com"
        ));
        assert!(!same_or_subdomain("1.127.0.0.1", "127.0.0.1"));
        assert!(!same_or_subdomain("localhost", "127.0.0.1"));
        assert!(!same_or_subdomain("", ""));
    }

    #[test]
    fn urls() {
        let name = RepositoryName::parse("a/b").unwrap();
        let d = Digest::sha256_of(b"");
        assert_eq!(blob("", &name, &d).unwrap(), format!("/v2/a/b/blobs/{d}"));
        assert_eq!(
            manifest("/r", &name, &d).unwrap(),
            format!("/r/v2/a/b/manifests/{d}")
        );
        let id = UploadId::from_random([1; 16]);
        assert_eq!(
            upload("", &name, &id).unwrap(),
            format!("/v2/a/b/blobs/uploads/{id}")
        );
        assert_eq!(
            next_page("/r", "/v2/a/tags/list", 2, "v1").unwrap(),
            "</r/v2/a/tags/list?n=2&last=v1>; rel=\"next\""
        );
        assert!(blob("/bad\n", &name, &d).is_err());
    }
}
