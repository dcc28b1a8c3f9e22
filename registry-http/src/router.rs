//! The [`Router`]: route, authorize, read the body as the route needs, and
//! call the endpoint's handler.

use std::sync::Arc;

use bytes::Bytes;
use http::header::ALLOW;
use http::{HeaderValue, Request, Response};
use http_body::Body as HttpBody;
use registry_core::{ManifestLimits, RegistryStore};

use crate::auth::Rejection;
use crate::body::{Body, BoxError};
use crate::config::RouterConfig;
use crate::error::error_response;
use crate::handlers::{self, Input};
use crate::headers::{API_VERSION, API_VERSION_VALUE, content_length};
use crate::request;
use crate::route::{self, Route, Target, Unrouted, UploadMode};

/// The OCI distribution API over a store. Cheap to clone (one `Arc`).
///
/// [`Router::handle`] takes any `http::Request` whose body yields
/// [`Bytes`] and answers with an `http::Response<`[`Body`]`>`; every
/// failure is already a response.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

/// What every handler shares.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn RegistryStore>,
    pub(crate) config: RouterConfig,
    /// The store's manifest limits, asked once: the store owns them.
    pub(crate) manifest_limits: ManifestLimits,
}

impl Router {
    /// A router over `store` with the default [`RouterConfig`].
    pub fn new(store: Arc<dyn RegistryStore>) -> Router {
        Router::with_config(store, RouterConfig::default())
    }

    /// A router over `store` with `config`. Manifest bodies are read up to
    /// the store's [`manifest_limits`](registry_core::ManifestStore::manifest_limits).
    pub fn with_config(store: Arc<dyn RegistryStore>, config: RouterConfig) -> Router {
        let manifest_limits = store.manifest_limits();
        Router {
            inner: Arc::new(Inner {
                store,
                config,
                manifest_limits,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// Answer one request. Never fails: errors are answered with the spec's
    /// JSON error body (see the crate docs for the table). Every response
    /// carries `Docker-Distribution-API-Version: registry/2.0`.
    ///
    /// Blob bodies are streamed to the store as they arrive; manifest
    /// bodies are read whole, up to the store's manifest size limit
    /// ([`ManifestStore::manifest_limits`](registry_core::ManifestStore::manifest_limits)). Bodies of
    /// requests that carry no content are dropped unread.
    ///
    /// Cancel-safety: dropping the future (client gone, shutdown) commits
    /// nothing that was not already committed, as the store traits
    /// guarantee.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let carries_body = !body.is_end_stream() && body.size_hint().upper() != Some(0);
        let mut echo = None;
        let mut res = match route::resolve(&parts.method, &parts.uri) {
            Ok(mut route) => {
                if let Some(namespaces) = &self.inner.config.namespaces {
                    echo = crate::namespaces::apply(&**namespaces, &mut route, &parts.uri);
                }
                self.serve(route, parts, body).await
            }
            Err(unrouted) => unrouted_response(unrouted),
        };
        if let Some(value) = echo.and_then(|ns| HeaderValue::try_from(ns).ok()) {
            res.headers_mut()
                .insert(crate::namespaces::OCI_NAMESPACE, value);
        }
        res.headers_mut().insert(API_VERSION, API_VERSION_VALUE);
        // A refused request's body may be left unread, and then the
        // connection cannot carry another request: say so, so that clients
        // do not reuse it.
        if carries_body && (res.status().is_client_error() || res.status().is_server_error()) {
            res.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    async fn serve<B>(&self, route: Route, parts: http::request::Parts, body: B) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let target = Target::Endpoint(route.endpoint());
        if let Err(rejection) = inner
            .config
            .authorizer
            .authorize(&parts, &route.access())
            .await
        {
            return rejection_response(rejection, target);
        }
        let input = match &route {
            Route::PutManifest { .. } => {
                let declared = content_length(&parts.headers).ok().flatten();
                match request::collect(body, inner.manifest_limits.max_size, declared).await {
                    Ok(bytes) => Input::Bytes(bytes),
                    Err(e) => return error_response(&e, target),
                }
            }
            Route::PatchUpload { .. }
            | Route::FinishUpload { .. }
            | Route::StartUpload {
                mode: UploadMode::Monolithic(_),
                ..
            } => Input::Stream(request::stream(body)),
            _ => Input::None,
        };
        handlers::dispatch(inner, route, &parts, input).await
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn unrouted_response(u: Unrouted) -> Response<Body> {
    let mut res = error_response(&u.error, u.target);
    if let Some(allow) = u.allow {
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    res
}

/// A refused request: the error's row of the table, plus the rejection's
/// headers.
pub(crate) fn rejection_response(rejection: Rejection, target: Target) -> Response<Body> {
    let (error, headers) = rejection.into_parts();
    let mut res = error_response(&error, target);
    res.headers_mut().extend(headers);
    res
}

fn _assert_send_sync() {
    fn f<T: Send + Sync + 'static>() {}
    f::<Router>();
    fn handle_is_send(r: &Router, req: Request<http_body_util::Full<Bytes>>) -> impl Send + '_ {
        r.handle(req)
    }
}
