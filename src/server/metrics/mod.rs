//! Prometheus metrics: `GET /metrics` in the Prometheus text format
//! (prometheus-client's encoder), on the main listener or on its own
//! (`--metrics-listen`), and the metrics themselves (docs/OPERATIONS.md
//! lists them).
//!
//! [`Metrics`] is the one handle, made at start-up and passed to whatever
//! module has something to count. Its tables are atomics sized at start-up
//! ([`http`], [`store`]), so that the request path takes no lock; the
//! registry's mutex is taken only to register (at start-up) and to scrape.
//!
//! **Registering more metrics** (the notifications' queue depth, oldest
//! undelivered event, deliveries by result): take the `Arc<Metrics>` that
//! `run` builds and call [`Metrics::register`] with a prometheus-client
//! metric (a `Gauge`, a `Family<_, Counter>`: cheap to update, shared by
//! clone) or [`Metrics::register_collector`] with a collector read at each
//! scrape. Keep labels low-cardinality: no repository or digest.

mod collectors;
mod histogram;
mod http;
mod listener;
mod notifications;
mod store;

use std::sync::{Arc, Mutex, MutexGuard};

use ::http::header::CONTENT_TYPE;
use ::http::request::Parts;
use ::http::{HeaderValue, Method, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::{Metric, Registry};
use registry_core::ErrorKind;
use registry_http::server::{OnRequest, RequestInfo};
use registry_http::{Access, Authorizer, Body, Rejection};

pub use collectors::{CacheCollector, GcMetrics, StorageCollector};
pub use http::{HttpMetrics, Meter, MeteredBody, unmetered};
pub use listener::serve_own;
pub use notifications::NotificationsCollector;
pub use store::{MeteredStore, StoreMetrics, result_name};

use super::auth::TOKEN_PATH;
use super::config::ListenAddr;
use super::limits::error_response;

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// The metrics settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `--metrics`: whether metrics are kept and served at all.
    pub enabled: bool,
    /// `--metrics-listen`: a listener of their own (then not on the main one).
    pub listen: Option<ListenAddr>,
    /// `--metrics-auth`, if given; by default the main listener asks for
    /// the registry's authentication and a listener of their own does not.
    pub auth: Option<bool>,
}

impl MetricsConfig {
    /// The settings with their defaults: on, on the main listener.
    pub fn resolve(enabled: Option<bool>, listen: Option<ListenAddr>, auth: Option<bool>) -> Self {
        MetricsConfig {
            enabled: enabled.unwrap_or(true),
            listen,
            auth,
        }
    }

    /// Whether a scrape must authenticate (when the registry has
    /// authentication configured at all).
    pub fn needs_auth(&self) -> bool {
        self.auth.unwrap_or(self.listen.is_none())
    }
}

/// The metrics of this process: the registry that scrapes encode, and the
/// tables the server's modules count into.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The request metrics (the server's request hook counts into them).
    pub http: Arc<HttpMetrics>,
    /// The storage metrics (counted by a [`MeteredStore`]).
    pub store: Arc<StoreMetrics>,
    /// The background collector's runs.
    pub gc: Arc<GcMetrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// The metrics of a server on a store of `driver` (its label).
    pub fn new(driver: &'static str) -> Arc<Metrics> {
        let http = Arc::new(HttpMetrics::default());
        let store = Arc::new(StoreMetrics::new(driver));
        let gc = Arc::new(GcMetrics::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(http.clone()));
        registry.register_collector(Box::new(store.clone()));
        registry.register_collector(Box::new(StorageCollector));
        registry.register_collector(Box::new(gc.clone()));
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            http,
            store,
            gc,
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a metric: `name` without the `_total` of a counter, which
    /// the encoder adds.
    #[allow(dead_code, reason = "the hook for the notifications' gauges")]
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// Register a collector, asked for its metrics at each scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry().register_collector(Box::new(collector));
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry());
        text
    }

    /// The answer to a scrape.
    pub fn response(&self, head: bool) -> Response<Body> {
        let text = self.encode();
        let mut response = Response::new(if head {
            Body::empty()
        } else {
            Body::full(text)
        });
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        );
        response
    }
}

/// The storage driver label of a storage URL, as distribution names its
/// drivers.
pub fn driver_of(storage_url: &str) -> &'static str {
    match storage_url.split_once("://").map(|(scheme, _)| scheme) {
        Some("fs") => "filesystem",
        Some("s3") => "s3aws",
        Some("memory") => "inmemory",
        _ => "other",
    }
}

/// The `handler` label of a request to `path` (what the request metrics
/// count it under; trace export names its spans by it too).
pub fn handler(path: &str) -> &'static str {
    http::HANDLERS[http::handler_of(path, TOKEN_PATH, METRICS_PATH)]
}

/// The metrics as the request hook uses them: counted, and served on this
/// listener or not.
pub struct Endpoint {
    metrics: Arc<Metrics>,
    /// Whether `/metrics` is answered on this listener.
    serve_here: bool,
    /// Whom a scrape must satisfy, if anyone.
    authorizer: Option<Arc<dyn Authorizer>>,
}

impl Endpoint {
    /// The metrics `config` asks for, `authorizer` being the registry's.
    pub fn new(
        metrics: Arc<Metrics>,
        config: &MetricsConfig,
        authorizer: Option<Arc<dyn Authorizer>>,
    ) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            metrics,
            serve_here: config.listen.is_none(),
            authorizer: authorizer.filter(|_| config.needs_auth()),
        })
    }

    /// Start counting a request.
    pub fn start(&self, parts: &Parts) -> Meter {
        let handler = http::handler_of(parts.uri.path(), TOKEN_PATH, METRICS_PATH);
        self.metrics.http.start(parts, handler)
    }

    /// The answer to a scrape, if `parts` is one and the main listener
    /// serves them.
    pub async fn answer(&self, parts: &Parts) -> Option<Response<Body>> {
        if !self.serve_here {
            return None;
        }
        self.scrape(parts).await
    }

    /// The answer to a scrape, if `parts` is one.
    async fn scrape(&self, parts: &Parts) -> Option<Response<Body>> {
        let head = match parts.method {
            Method::GET => false,
            Method::HEAD => true,
            _ => return None,
        };
        if parts.uri.path() != METRICS_PATH {
            return None;
        }
        if let Some(authorizer) = &self.authorizer
            && let Err(rejection) = authorizer.authorize(parts, &Access::base()).await
        {
            return Some(refused(rejection));
        }
        Some(self.metrics.response(head))
    }
}

/// A scrape the authorizer refused, answered as the registry answers.
fn refused(rejection: Rejection) -> Response<Body> {
    let error = rejection.error();
    let (status, code) = match error.kind() {
        ErrorKind::Denied => (StatusCode::FORBIDDEN, "DENIED"),
        ErrorKind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        _ => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
    };
    let mut response = error_response(status, code, error.message());
    for (name, value) in rejection.headers() {
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// The hook of a listener of the metrics' own (`--metrics-listen`): it
/// answers `/metrics` and 404 to anything else; the router behind it is
/// never reached.
pub struct Standalone(pub Arc<Endpoint>);

impl OnRequest for Standalone {
    type State = ();
    type Body = Body;

    async fn before(&self, request: &RequestInfo<'_>) -> ((), Option<Response<Body>>) {
        let answer = match self.0.scrape(request.parts).await {
            Some(answer) => answer,
            None => error_response(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "this listener serves only GET /metrics",
            ),
        };
        ((), Some(answer))
    }

    fn after(&self, (): (), response: Response<Body>) -> Response<Body> {
        response
    }
}

#[cfg(test)]
mod tests;
