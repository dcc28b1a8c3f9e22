//! The endpoint suite's transport in process: `Router::handle` called
//! directly, on a Tokio runtime of the transport's own, with the memory or
//! the filesystem store.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use registry_http::{Router, RouterConfig};
use registry_storage::OpendalStore;
use registry_testkit::{Body, Reply, Transport};

/// The client every test here talks through.
pub type Client = registry_testkit::Client<InProcess>;

/// A router and the runtime that drives it.
pub struct InProcess {
    router: Router,
    runtime: tokio::runtime::Runtime,
    dir: Option<tempfile::TempDir>,
    proxy_prefix: Option<&'static str>,
}

impl InProcess {
    /// `router`, called in process.
    pub fn new(router: Router) -> InProcess {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        InProcess {
            router,
            runtime,
            dir: None,
            proxy_prefix: None,
        }
    }

    /// A router with the default configuration on the memory store.
    pub fn memory() -> InProcess {
        InProcess::with_config(RouterConfig::default())
    }

    /// A router with `config` on the memory store.
    pub fn with_config(config: RouterConfig) -> InProcess {
        InProcess::with_store(OpendalStore::memory(), config)
    }

    /// A router with `config` on `store`.
    pub fn with_store(store: OpendalStore, config: RouterConfig) -> InProcess {
        InProcess::new(Router::with_config(Arc::new(store), config))
    }

    /// A router with the default configuration on the filesystem store in a
    /// fresh temporary directory, which the suite can look into.
    pub fn fs() -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = OpendalStore::fs(dir.path()).unwrap();
        let mut t = InProcess::with_store(store, RouterConfig::default());
        t.dir = Some(dir);
        t
    }

    /// As behind a reverse proxy that serves the router under `prefix`
    /// (the router's public prefix): the prefix is taken off request paths
    /// that have it, such as the `Location`s the router sends.
    pub fn behind_proxy(mut self, prefix: &'static str) -> InProcess {
        self.proxy_prefix = Some(prefix);
        self
    }

    /// A client of this router.
    pub fn client(self) -> Client {
        Client::with(self)
    }
}

impl Transport for InProcess {
    fn send(&self, request: Request<Body>) -> Reply {
        let (mut parts, body) = request.into_parts();
        if let Some(prefix) = self.proxy_prefix {
            let target = parts.uri.to_string();
            if let Some(rest) = target.strip_prefix(prefix) {
                parts.uri = rest.parse().unwrap();
            }
        }
        let body: BoxBody<Bytes, std::io::Error> = match body {
            Body::None => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
            Body::Full(bytes) => {
                // As an HTTP client sends it.
                (parts.headers.entry(header::CONTENT_LENGTH)).or_insert(bytes.len().into());
                Full::new(Bytes::from(bytes))
                    .map_err(|e| match e {})
                    .boxed()
            }
            Body::Streamed(pieces) => {
                let frames = pieces
                    .into_iter()
                    .map(|p| Ok(http_body::Frame::data(Bytes::from(p))));
                StreamBody::new(futures::stream::iter(frames)).boxed()
            }
        };
        let request = Request::from_parts(parts, body);
        self.runtime.block_on(async {
            let response = self.router.handle(request).await;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_vec(),
            }
        })
    }

    fn storage(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_owned())
    }
}

/// A client of a router with the default configuration on the memory
/// store.
pub fn registry() -> Client {
    InProcess::memory().client()
}
