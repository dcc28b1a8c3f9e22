//! OpenTelemetry trace export (`--otlp-endpoint`, docs/OPERATIONS.md,
//! "Traces"): a span per request and a child span per storage operation,
//! sent in batches as OTLP over HTTP/protobuf.
//!
//! The spans are `tracing` spans and are made in every build once export
//! is on: the request span by the server's hook ([`request_span`], ended
//! with [`RequestEnd`] when the response body ends), the storage spans by
//! [`TracedStore`]. What turns them into OTLP is the cargo feature `otlp`
//! (`export.rs`): `tracing-opentelemetry`'s layer on an SDK tracer
//! provider with a batch processor. Built without the feature, giving an
//! endpoint is a start-up error, not ignored.

mod store;

#[cfg(feature = "otlp")]
mod export;

use std::fmt;
use std::str::FromStr;

use http::request::Parts;
use serde::Deserialize;
use tracing::field::Empty;

use super::body_end::{EndOfBody, Outcome, WatchedBody};

pub use store::TracedStore;

#[cfg(feature = "otlp")]
pub use export::Exporter;

/// The service name exported when none is configured.
pub const DEFAULT_SERVICE_NAME: &str = "registry";

/// The target of the storage spans, which the log lines leave out (an
/// event inside a storage operation is shown in its request's span).
pub const STORAGE_TARGET: &str = "registry::storage";

/// The collector's OTLP/HTTP address: an `http` or `https` URL. A URL
/// without a path (`http://collector:4318`) gets the traces path
/// `/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` does; one with a path
/// is used as it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Endpoint(String);

impl Endpoint {
    /// The URL spans are POSTed to.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub fn traces_url(&self) -> &str {
        &self.0
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid OTLP endpoint {s:?}: {why}");
        let uri: http::Uri = s.trim().parse().map_err(|e| invalid(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(invalid("expected an http:// or https:// URL")),
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("no host"));
        };
        if authority.host().is_empty() {
            return Err(invalid("no host"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query is not allowed"));
        }
        let url = uri.to_string();
        Ok(Endpoint(match uri.path() {
            "" | "/" => format!("{}/v1/traces", url.trim_end_matches('/')),
            _ => url,
        }))
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `service.name` of the exported spans: printable, at most 255
/// characters, not empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ServiceName(String);

impl FromStr for ServiceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
            return Err(format!(
                "invalid OTLP service name {s:?}: 1 to 255 printable characters"
            ));
        }
        Ok(ServiceName(s.to_owned()))
    }
}

impl TryFrom<String> for ServiceName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Trace export as configured: off, or where and under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Where spans go; `None`: no export, and no extra spans.
    pub endpoint: Option<Endpoint>,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl OtlpConfig {
    /// From the settings' values (either may be absent).
    pub fn resolve(endpoint: Option<Endpoint>, service_name: Option<ServiceName>) -> OtlpConfig {
        OtlpConfig {
            endpoint,
            service_name: service_name.map_or_else(|| DEFAULT_SERVICE_NAME.to_owned(), |n| n.0),
        }
    }

    /// Whether spans are exported.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
    }
}

/// Start the exporter `config` asks for, sending on `runtime`; `None` when
/// export is off. Built without the `otlp` feature, an endpoint is an error.
#[cfg(not(feature = "otlp"))]
pub fn start(
    config: &OtlpConfig,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<Exporter>, String> {
    let _ = runtime;
    match &config.endpoint {
        None => Ok(None),
        Some(endpoint) => Err(format!(
            "--otlp-endpoint {endpoint}: this registry was built without the otlp feature \
             (build it with `cargo build --features otlp` to export traces)"
        )),
    }
}

#[cfg(feature = "otlp")]
pub use export::start;

/// Without the `otlp` feature there is no exporter: [`start`] never
/// returns one.
#[cfg(not(feature = "otlp"))]
#[derive(Debug)]
pub enum Exporter {}

#[cfg(not(feature = "otlp"))]
impl Exporter {
    /// The layer that exports spans (none without the feature).
    pub fn layer(&self) -> super::logging::BoxedLayer {
        match *self {}
    }

    /// Flush and stop.
    pub fn shutdown(self) {
        match self {}
    }
}

/// The route template of a handler of the metrics' `handler` label
/// (OpenTelemetry's `http.route`), if it has one.
fn route_of(handler: &str) -> Option<&'static str> {
    Some(match handler {
        "base" => "/v2/",
        "catalog" => "/v2/_catalog",
        "blob" => "/v2/{name}/blobs/{digest}",
        "blob_upload" => "/v2/{name}/blobs/uploads/",
        "blob_upload_chunk" => "/v2/{name}/blobs/uploads/{uuid}",
        "manifest" => "/v2/{name}/manifests/{reference}",
        "tags" => "/v2/{name}/tags/list",
        "referrers" => "/v2/{name}/referrers/{digest}",
        "token" => super::auth::TOKEN_PATH,
        _ => return None,
    })
}

/// The span of one request, for export: a server span named
/// `METHOD route` (OpenTelemetry's HTTP conventions), with the request id,
/// method, path, route and `handler` (the metrics' label); the status is
/// recorded by [`RequestEnd`]. A request with a W3C `traceparent` header
/// continues that trace (its span a child of the caller's). None for the
/// health endpoints and `/metrics`: probes and scrapes every few seconds
/// are not worth a trace.
pub fn request_span(parts: &Parts, request_id: &str) -> Option<RequestSpan> {
    let path = parts.uri.path();
    let handler = super::metrics::handler(path);
    if matches!(handler, "health" | "metrics") {
        return None;
    }
    let route = route_of(handler);
    let method = parts.method.as_str();
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        request_id = %request_id,
        http.request.method = %method,
        url.path = %path,
        http.route = route,
        handler,
        http.response.status_code = Empty,
        outcome = Empty,
    );
    #[cfg(feature = "otlp")]
    export::continue_trace(&span, &parts.headers);
    Some(RequestSpan {
        span,
        head: parts.method == http::Method::HEAD,
    })
}

/// A request's exported span, until [`RequestEnd`] ends it.
#[derive(Debug)]
pub struct RequestSpan {
    span: tracing::Span,
    /// A HEAD request: its response sends no body.
    head: bool,
}

impl RequestSpan {
    /// The span (the router's work runs in it).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

/// Ends a request's span when its response body ends: records the status
/// (a 5xx, or a body that failed, makes the span's status an error) and
/// how the body ended (`complete`, `failed`, `aborted`).
#[derive(Debug)]
pub struct RequestEnd {
    span: tracing::Span,
}

/// A response body that ends its request's span.
pub type TracedBody<B> = WatchedBody<B, RequestEnd>;

impl RequestEnd {
    /// `response` with its body ending `request`'s span, whose status is
    /// recorded now; without a span, the body as it is.
    pub fn wrap<B: http_body::Body>(
        request: Option<RequestSpan>,
        response: http::Response<B>,
    ) -> http::Response<TracedBody<B>> {
        let status = response.status();
        let empty = response.body().is_end_stream() || request.as_ref().is_some_and(|r| r.head);
        let end = request.map(|RequestSpan { span, .. }| {
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
            RequestEnd { span }
        });
        response.map(|inner| WatchedBody::new(inner, end, empty))
    }
}

impl EndOfBody for RequestEnd {
    fn ended(self, _bytes: u64, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Complete => "complete",
            Outcome::Failed => {
                self.span.record("otel.status_code", "error");
                "failed"
            }
            Outcome::Aborted => "aborted",
        };
        self.span.record("outcome", outcome);
        // The span ends here, when its last handle is dropped.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_traces_path_unless_they_have_one() {
        for (given, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/v1/traces",
                "https://otel.example/v1/traces",
            ),
            (
                "https://otel.example/custom/path",
                "https://otel.example/custom/path",
            ),
        ] {
            assert_eq!(
                given.parse::<Endpoint>().unwrap().traces_url(),
                url,
                "{given}"
            );
        }
        for (bad, why) in [
            ("collector:4318", "http:// or https://"),
            ("ftp://collector/", "http:// or https://"),
            ("/v1/traces", "http:// or https://"),
            ("http://c:4318/?a=b", "query"),
            ("", "invalid OTLP endpoint"),
            ("http://exa mple/", "invalid OTLP endpoint"),
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert!(
                e.contains(why) && e.contains("invalid OTLP endpoint"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn service_names_are_printable_and_not_empty() {
        let named = OtlpConfig::resolve(None, Some("reg-1".parse().unwrap()));
        assert_eq!(named.service_name, "reg-1");
        for bad in ["", "a\nb", &"x".repeat(256)] {
            assert!(bad.parse::<ServiceName>().is_err(), "{bad:?}");
        }
        let c = OtlpConfig::resolve(None, None);
        assert_eq!(c.service_name, DEFAULT_SERVICE_NAME);
        assert!(!c.enabled());
    }

    #[test]
    fn routes_are_templates_without_names_or_digests() {
        let route = |path| route_of(crate::server::metrics::handler(path));
        assert_eq!(
            route("/v2/a/b/manifests/latest"),
            Some("/v2/{name}/manifests/{reference}")
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/0123"),
            Some("/v2/{name}/blobs/uploads/{uuid}")
        );
        assert_eq!(route("/token"), Some("/token"));
        assert_eq!(route("/favicon.ico"), None);
        assert_eq!(route("/readyz"), None);
    }
}
