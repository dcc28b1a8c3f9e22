//! The [`Transport`] seam and the [`Client`] that every test talks through.

use std::path::PathBuf;

use crate::content::{OCI_MANIFEST, digest, image_manifest};
use crate::reply::Reply;

/// A request's body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body: no `Content-Length` either.
    None,
    /// A body of known length, sent with its `Content-Length`.
    Full(Vec<u8>),
    /// A body of unknown length, in these pieces: no `Content-Length`
    /// (chunked transfer encoding over HTTP, several frames in process).
    Streamed(Vec<Vec<u8>>),
}

impl From<Option<&[u8]>> for Body {
    fn from(body: Option<&[u8]>) -> Body {
        body.map_or(Body::None, |b| Body::Full(b.to_vec()))
    }
}
impl From<&[u8]> for Body {
    fn from(body: &[u8]) -> Body {
        Body::Full(body.to_vec())
    }
}
impl<const N: usize> From<&[u8; N]> for Body {
    fn from(body: &[u8; N]) -> Body {
        Body::Full(body.to_vec())
    }
}
impl From<&Vec<u8>> for Body {
    fn from(body: &Vec<u8>) -> Body {
        Body::Full(body.clone())
    }
}
impl From<Vec<u8>> for Body {
    fn from(body: Vec<u8>) -> Body {
        Body::Full(body)
    }
}
impl From<&str> for Body {
    fn from(body: &str) -> Body {
        Body::Full(body.as_bytes().to_vec())
    }
}

/// Something that answers requests as a registry does: the router called
/// in process, or a server over HTTP.
pub trait Transport {
    /// Send one request (its URI a path and query, or an absolute URL of
    /// this registry) and read the whole response.
    fn send(&self, request: http::Request<Body>) -> Reply;

    /// Where a filesystem store behind the registry keeps its data, if the
    /// test can see it (the suite then checks the layout too).
    fn storage(&self) -> Option<PathBuf> {
        None
    }
}

/// A client of one registry through a [`Transport`], with request helpers
/// that take a path (or a `Location`) and return a [`Reply`].
pub struct Client<T> {
    transport: T,
    check_api_version: bool,
}

impl<T: Transport> Client<T> {
    /// A client sending through `transport`.
    pub fn with(transport: T) -> Client<T> {
        Client {
            transport,
            check_api_version: false,
        }
    }

    /// This client, asserting that every answer carries
    /// `Docker-Distribution-API-Version: registry/2.0` (the endpoint suite
    /// does: every answer of the router has it).
    pub fn checking_api_version(mut self) -> Client<T> {
        self.check_api_version = true;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// See [`Transport::storage`].
    pub fn storage(&self) -> Option<PathBuf> {
        self.transport.storage()
    }

    /// Send a request.
    #[track_caller]
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = self.transport.send(req.body(body.into()).unwrap());
        if self.check_api_version {
            assert_eq!(
                reply.header("docker-distribution-api-version"),
                Some("registry/2.0"),
                "{method} {path}: {reply:?}"
            );
        }
        reply
    }

    /// `GET`.
    #[track_caller]
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, Body::None)
    }

    /// `HEAD`.
    #[track_caller]
    pub fn head(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("HEAD", path, headers, Body::None)
    }

    /// `DELETE`.
    #[track_caller]
    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, &[], Body::None)
    }

    /// `POST` with a body (`Content-Length` is set, also when empty).
    #[track_caller]
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send("POST", path, headers, body)
    }

    /// `PUT` with a body.
    #[track_caller]
    pub fn put(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send("PUT", path, headers, body)
    }

    /// `PATCH` with a body.
    #[track_caller]
    pub fn patch(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send("PATCH", path, headers, body)
    }

    /// `PATCH` with a body of unknown length, in these pieces: no
    /// `Content-Length`, no `Content-Range` (a "streamed" upload).
    #[track_caller]
    pub fn patch_streamed(&self, path: &str, pieces: &[&[u8]]) -> Reply {
        let pieces = pieces.iter().map(|p| p.to_vec()).collect();
        self.send(
            "PATCH",
            path,
            &[("content-type", "application/octet-stream")],
            Body::Streamed(pieces),
        )
    }

    /// `url` with `query` appended (`?` or `&` as needed).
    pub fn with_query(url: &str, query: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{query}")
    }

    /// Push a blob monolithically (POST, then PUT with the content) and
    /// return its digest.
    #[track_caller]
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let start = self.post(&format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(start.status, 202, "{start:?}");
        let put = self.put(
            &Self::with_query(start.must("location"), &format!("digest={d}")),
            &[("content-type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(put.status, 201, "{put:?} {}", put.text());
        d
    }

    /// Push a manifest of `media_type` under `reference`; the response.
    #[track_caller]
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Reply {
        self.put(
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            bytes,
        )
    }

    /// Push a small image (config and one layer, made from `seed`) tagged
    /// `tag`; returns the manifest's bytes and digest.
    #[track_caller]
    pub fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
        let layer = format!("layer of {seed}").into_bytes();
        self.push_blob(repo, &config);
        self.push_blob(repo, &layer);
        let manifest = image_manifest(&config, &[&layer], None, None);
        let put = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest);
        assert_eq!(put.status, 201, "{put:?} {}", put.text());
        let d = digest(&manifest);
        (manifest, d)
    }

    /// The bytes of an image manifest over an empty config and `layer`,
    /// both pushed to `repo` first, with an optional subject (a manifest's
    /// digest and size) and `artifactType`.
    #[track_caller]
    pub fn image_with_layer(
        &self,
        repo: &str,
        layer: &[u8],
        subject: Option<(&str, usize)>,
        artifact_type: Option<&str>,
    ) -> Vec<u8> {
        let config = b"{}";
        self.push_blob(repo, config);
        self.push_blob(repo, layer);
        let subject = subject.map(
            |(d, size)| serde_json::json!({ "mediaType": OCI_MANIFEST, "digest": d, "size": size }),
        );
        image_manifest(config, &[layer], artifact_type, subject)
    }
}
