//! The request metrics, with distribution's names and labels:
//! `registry_http_requests_total{handler,code,method}`,
//! `registry_http_request_duration_seconds{handler,method}`, request and
//! response sizes, requests in flight, and the bytes sent.
//!
//! Every series lives in a table allocated at start-up and indexed by
//! handler, method and status code, so counting a request is a few
//! relaxed atomic adds: no lock, no map lookup, no allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use http::{Method, StatusCode};
use http_body::Body;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::histogram::Histogram;
use crate::server::body_end::{EndOfBody, Outcome, WatchedBody};

/// The `handler` label: the endpoint a request's path addresses, named as
/// distribution names its routes, plus this server's own paths.
pub const HANDLERS: [&str; 12] = [
    "base",
    "catalog",
    "blob",
    "blob_upload",
    "blob_upload_chunk",
    "manifest",
    "tags",
    "referrers",
    "token",
    "metrics",
    "health",
    "other",
];

/// The health endpoints (issue 14), whatever serves them.
const HEALTH_PATHS: [&str; 4] = ["/livez", "/readyz", "/startupz", "/debug/health"];

/// The `method` label; any other method counts as `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// Status codes 100 to 599 each have their counter.
const CODES: usize = 500;

/// Index of the handler `path` addresses, by the path's shape: the
/// endpoint suffix matched from the right, as the router does, without
/// validating names or digests (a malformed name still counts under its
/// handler, with the 4xx it got). Cheaper than parsing the route.
pub fn handler_of(path: &str, token_path: &str, metrics_path: &str) -> usize {
    let index = |name: &str| {
        HANDLERS
            .iter()
            .position(|h| *h == name)
            .unwrap_or(HANDLERS.len() - 1)
    };
    let Some(rest) = path.strip_prefix("/v2/") else {
        return index(if path == token_path {
            "token"
        } else if path == metrics_path {
            "metrics"
        } else if HEALTH_PATHS.contains(&path) {
            "health"
        } else if path == "/v2" {
            "base"
        } else {
            "other"
        });
    };
    if rest.is_empty() {
        return index("base");
    }
    if rest == "_catalog" {
        return index("catalog");
    }
    let mut segments = rest.rsplit('/');
    let last = segments.next().unwrap_or("");
    let before = segments.next().unwrap_or("");
    let third = segments.next();
    let name = match (third, before, last) {
        (Some(_), "blobs", "uploads") => "blob_upload",
        (Some("blobs"), "uploads", "") => "blob_upload",
        (Some("blobs"), "uploads", _) => "blob_upload_chunk",
        (_, "blobs", _) => "blob",
        (_, "manifests", _) => "manifest",
        (_, "tags", "list") => "tags",
        (_, "referrers", _) => "referrers",
        _ => "other",
    };
    index(name)
}

fn method_of(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::PUT => 2,
        Method::POST => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The request metrics' tables.
#[derive(Debug)]
pub struct HttpMetrics {
    /// `[handler][method][code - 100]`.
    requests: Box<[AtomicU64]>,
    /// `[handler][method]`.
    duration: Box<[Histogram]>,
    request_size: Box<[Histogram]>,
    response_size: Box<[Histogram]>,
    /// `[handler]`.
    in_flight: Box<[AtomicI64]>,
    sent: AtomicU64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let pairs = HANDLERS.len() * METHODS.len();
        HttpMetrics {
            requests: (0..pairs * CODES).map(|_| AtomicU64::new(0)).collect(),
            duration: (0..pairs).map(|_| Histogram::seconds()).collect(),
            request_size: (0..pairs).map(|_| Histogram::bytes()).collect(),
            response_size: (0..pairs).map(|_| Histogram::bytes()).collect(),
            in_flight: (0..HANDLERS.len()).map(|_| AtomicI64::new(0)).collect(),
            sent: AtomicU64::new(0),
        }
    }
}

impl HttpMetrics {
    /// Start counting a request to `handler` (from [`handler_of`]).
    pub fn start(self: &Arc<Self>, parts: &http::request::Parts, handler: usize) -> Meter {
        let pair = handler * METHODS.len() + method_of(&parts.method);
        // The declared length: chunked uploads count 0 here, and their
        // bytes in `registry_received_bytes_total`.
        let size = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        self.request_size[pair].observe(size);
        self.in_flight[handler].fetch_add(1, Ordering::Relaxed);
        Meter {
            metrics: self.clone(),
            handler,
            pair,
            start: Instant::now(),
        }
    }

    /// How many requests to `handler` got `code`, any method (for tests).
    #[cfg(test)]
    fn requests(&self, handler: usize, method: usize, code: u16) -> u64 {
        let pair = handler * METHODS.len() + method;
        self.requests[pair * CODES + usize::from(code) - 100].load(Ordering::Relaxed)
    }
}

/// A request being counted; ends when its response body does.
#[derive(Debug)]
pub struct Meter {
    metrics: Arc<HttpMetrics>,
    handler: usize,
    pair: usize,
    start: Instant,
}

impl Meter {
    /// Wrap the response body so that the request is counted when it ends.
    pub fn finish<B: Body>(self, response: http::Response<B>) -> http::Response<MeteredBody<B>> {
        let status = response.status();
        response.map(|inner| WatchedBody::new(inner, Some((self, status)), false))
    }
}

impl EndOfBody for (Meter, StatusCode) {
    fn ended(self, bytes: u64, _: Outcome) {
        let (meter, status) = self;
        let m = &meter.metrics;
        let code = usize::from(status.as_u16()).clamp(100, 599) - 100;
        m.requests[meter.pair * CODES + code].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(meter.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        m.duration[meter.pair].observe(nanos);
        m.response_size[meter.pair].observe(bytes);
        m.sent.fetch_add(bytes, Ordering::Relaxed);
        m.in_flight[meter.handler].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that counts its bytes and, when it ends or is dropped,
/// its request. Without metrics it only forwards.
pub type MeteredBody<B> = WatchedBody<B, (Meter, StatusCode)>;

/// A body that counts nothing (metrics off).
pub fn unmetered<B>(response: http::Response<B>) -> http::Response<MeteredBody<B>> {
    response.map(|inner| WatchedBody::new(inner, None, false))
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let pairs = || {
            HANDLERS.iter().enumerate().flat_map(|(h, handler)| {
                METHODS
                    .iter()
                    .enumerate()
                    .map(move |(m, method)| (h * METHODS.len() + m, *handler, *method))
            })
        };
        {
            let mut family = encoder.encode_descriptor(
                "registry_http_requests",
                "HTTP requests answered, by handler, status code and method.",
                None,
                MetricType::Counter,
            )?;
            for (pair, handler, method) in pairs() {
                for code in 0..CODES {
                    let n = self.requests[pair * CODES + code].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let code = u16::try_from(code + 100)
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok());
                    let code = code.as_ref().map_or("0", StatusCode::as_str);
                    let labels = [("handler", handler), ("code", code), ("method", method)];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        let histograms: [(&str, &str, &[Histogram]); 3] = [
            (
                "registry_http_request_duration_seconds",
                "Time from a request's head to the end of its response body.",
                &self.duration,
            ),
            (
                "registry_http_request_size_bytes",
                "Request body sizes as declared by Content-Length (0 when absent).",
                &self.request_size,
            ),
            (
                "registry_http_response_size_bytes",
                "Response body bytes sent.",
                &self.response_size,
            ),
        ];
        for (name, help, table) in histograms {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (pair, handler, method) in pairs() {
                if table[pair].count() == 0 {
                    continue;
                }
                table[pair].encode(&mut family, &[("handler", handler), ("method", method)])?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "registry_http_in_flight_requests",
                "Requests whose response has not been sent in full yet, by handler.",
                None,
                MetricType::Gauge,
            )?;
            for (h, handler) in HANDLERS.iter().enumerate() {
                let n = self.in_flight[h].load(Ordering::Relaxed);
                family
                    .encode_family(&[("handler", *handler)])?
                    .encode_gauge(&n)?;
            }
        }
        let sent = self.sent.load(Ordering::Relaxed);
        encoder
            .encode_descriptor(
                "registry_sent_bytes",
                "Response body bytes sent, all handlers.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&sent, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(path: &str) -> &'static str {
        HANDLERS[handler_of(path, "/token", "/metrics")]
    }

    #[test]
    fn paths_get_the_handler_of_their_route() {
        assert_eq!(handler("/v2/"), "base");
        assert_eq!(handler("/v2/_catalog"), "catalog");
        assert_eq!(handler("/v2/a/b/blobs/sha256:00"), "blob");
        assert_eq!(handler("/v2/a/blobs/uploads/"), "blob_upload");
        assert_eq!(handler("/v2/a/blobs/uploads"), "blob_upload");
        assert_eq!(handler("/v2/a/blobs/uploads/0123"), "blob_upload_chunk");
        assert_eq!(handler("/v2/a/manifests/latest"), "manifest");
        // A repository named like an endpoint is still matched from the right.
        assert_eq!(handler("/v2/blobs/manifests/manifests/v1"), "manifest");
        assert_eq!(handler("/v2/manifests/x/blobs/sha256:00"), "blob");
        assert_eq!(handler("/v2/a/tags/list"), "tags");
        assert_eq!(handler("/v2/a/referrers/sha256:00"), "referrers");
        assert_eq!(handler("/token"), "token");
        assert_eq!(handler("/metrics"), "metrics");
        assert_eq!(handler("/readyz"), "health");
        assert_eq!(handler("/v2/a"), "other");
        assert_eq!(handler("/favicon.ico"), "other");
    }

    #[test]
    fn a_request_counts_when_its_body_is_dropped() {
        let metrics = Arc::new(HttpMetrics::default());
        let (parts, ()) = http::Request::get("/v2/a/manifests/v1")
            .body(())
            .unwrap()
            .into_parts();
        let h = handler_of("/v2/a/manifests/v1", "/token", "/metrics");
        let meter = metrics.start(&parts, h);
        assert_eq!(metrics.in_flight[h].load(Ordering::Relaxed), 1);
        let response = http::Response::builder()
            .status(404)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        drop(meter.finish(response));
        assert_eq!(metrics.requests(h, 0, 404), 1);
        assert_eq!(metrics.in_flight[h].load(Ordering::Relaxed), 0);
    }
}
