//! An in-process registry on the memory store, and helpers to talk to it
//! through `Router::handle`.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use registry_core::Digest;
use registry_http::{Router, RouterConfig};
use registry_storage::OpendalStore;
use serde_json::{Value, json};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub struct Registry {
    pub router: Router,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Registry {
    pub fn new() -> Self {
        Self::with_config(RouterConfig::default())
    }

    pub fn with_config(config: RouterConfig) -> Self {
        Self::with_store(OpendalStore::memory(), config)
    }

    pub fn with_store(store: OpendalStore, config: RouterConfig) -> Self {
        Registry {
            router: Router::with_config(Arc::new(store), config),
        }
    }

    /// Send a request with a body in one frame.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let body = Full::new(body.into());
        self.send_body(method, uri, headers, body).await
    }

    /// Send a request whose body comes in several frames.
    pub async fn send_frames(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        frames: &[&[u8]],
    ) -> Reply {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = frames
            .iter()
            .map(|f| Ok(http_body::Frame::data(Bytes::copy_from_slice(f))))
            .collect();
        let body = StreamBody::new(futures::stream::iter(frames));
        self.send_body(method, uri, headers, body).await
    }

    pub async fn send_body<B>(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: B,
    ) -> Reply
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.router.handle(req.body(body).unwrap()).await;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        assert_eq!(
            parts
                .headers
                .get("docker-distribution-api-version")
                .map(|v| v.to_str().unwrap()),
            Some("registry/2.0"),
            "{method} {uri}"
        );
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, &[], Bytes::new()).await
    }

    /// Push a blob with a single POST; returns its digest.
    pub async fn push_blob(&self, repo: &str, content: &[u8]) -> Digest {
        let digest = Digest::sha256_of(content);
        let len = content.len().to_string();
        let r = self
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                &[("content-length", &len)],
                Bytes::copy_from_slice(content),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.text());
        digest
    }

    /// Push an image manifest with a config and one layer under `reference`;
    /// returns its bytes and digest.
    pub async fn push_image(&self, repo: &str, reference: &str, layer: &[u8]) -> (Bytes, Digest) {
        let manifest = self.image_manifest(repo, layer, None, None).await;
        let r = self
            .put_manifest(repo, reference, OCI_MANIFEST, manifest.clone())
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let digest = Digest::sha256_of(&manifest);
        (manifest, digest)
    }

    /// The bytes of an image manifest whose blobs are pushed to `repo`.
    pub async fn image_manifest(
        &self,
        repo: &str,
        layer: &[u8],
        subject: Option<(&Digest, u64)>,
        artifact_type: Option<&str>,
    ) -> Bytes {
        let config = b"{}";
        let config_digest = self.push_blob(repo, config).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest.to_string(),
                "size": layer.len(),
            }],
        });
        if let Some((d, size)) = subject {
            m["subject"] =
                json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size});
        }
        if let Some(t) = artifact_type {
            m["artifactType"] = json!(t);
        }
        Bytes::from(serde_json::to_vec(&m).unwrap())
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Reply {
        self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            bytes,
        )
        .await
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert an error response: status, code and the spec's JSON shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/json");
        let v = self.json();
        let errors = v["errors"].as_array().expect("errors array");
        assert_eq!(errors.len(), 1, "{v}");
        assert_eq!(errors[0]["code"], code, "{v}");
        assert!(errors[0]["message"].is_string(), "{v}");
    }
}
