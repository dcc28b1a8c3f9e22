//! Blob `GET`s redirected where the store gives a location: 307 with
//! `Location` and `Docker-Content-Digest`, `HEAD` and ranged `GET`s
//! answered here, errors of the location passed through, and never a
//! redirect to the host the request named (or a subdomain of it).

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::InProcess;
use registry_core::store::Decorator;
use registry_core::{Digest, RegistryStore, RepositoryName, Result};
use registry_http::Router;
use registry_storage::OpendalStore;

/// The memory store, giving every blob a repository links a URL on
/// `blobs.example.net` (as a store with redirects on).
struct Redirecting(OpendalStore);

#[async_trait]
impl Decorator for Redirecting {
    fn inner(&self) -> &dyn RegistryStore {
        &self.0
    }

    async fn blob_location(
        this: &Self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        use registry_core::BlobStore;
        this.0.stat_blob(repo, digest).await?;
        Ok(Some(format!(
            "https://blobs.example.net/b/{digest}?X-Sig=1"
        )))
    }
}

fn client() -> common::Client {
    InProcess::new(Router::new(Arc::new(Redirecting(OpendalStore::memory())))).client()
}

#[test]
fn get_is_redirected_with_the_digest() {
    let c = client();
    let d = c.push_blob("r/app", b"some layer");
    let path = format!("/v2/r/app/blobs/{d}");
    let r = c.get(&path, &[]);
    assert_eq!(r.status, 307, "{r:?}");
    assert_eq!(
        r.must("location"),
        format!("https://blobs.example.net/b/{d}?X-Sig=1")
    );
    assert_eq!(r.must("docker-content-digest"), d);
    assert!(r.body.is_empty());
    // The registry's own host, as the request names it: redirected.
    let r = c.get(&path, &[("host", "registry.example.com:5000")]);
    assert_eq!(r.status, 307);
}

#[test]
fn head_and_ranges_are_answered_here() {
    let c = client();
    let d = c.push_blob("r/app", b"some layer");
    let path = format!("/v2/r/app/blobs/{d}");
    let h = c.head(&path, &[]);
    assert_eq!(h.status, 200);
    assert_eq!(h.must("content-length"), "10");
    assert!(!h.has("location"));
    let r = c.get(&path, &[("range", "bytes=5-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"layer");
}

#[test]
fn unlinked_blobs_are_404_not_redirects() {
    let c = client();
    let d = c.push_blob("r/app", b"some layer");
    let r = c.get(&format!("/v2/r/other/blobs/{d}"), &[]);
    r.assert_error(404, "BLOB_UNKNOWN");
    assert!(!r.has("location"));
}

#[test]
fn never_to_the_host_the_client_asked_or_below_it() {
    let c = client();
    let d = c.push_blob("r/app", b"some layer");
    let path = format!("/v2/r/app/blobs/{d}");
    for host in ["blobs.example.net", "BLOBS.example.net:443", "example.net"] {
        let r = c.get(&path, &[("host", host)]);
        assert_eq!(r.status, 200, "Host: {host}: {r:?}");
        assert_eq!(r.body, b"some layer");
    }
}
