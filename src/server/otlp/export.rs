//! The exporter (feature `otlp`): an SDK tracer provider with a batch
//! processor (its own thread, a batch every few seconds and when 512
//! spans wait) and the OTLP/HTTP protobuf exporter, which posts through
//! the server's reqwest client on the server's Tokio runtime; and the
//! `tracing` layer that turns the server's spans into OpenTelemetry spans.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

use super::OtlpConfig;
use crate::server::VERSION;
use crate::server::logging::BoxedLayer;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the final flush may take at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest collector answer read.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Trace export, running.
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

/// Start the exporter `config` asks for, sending on `runtime`; `None` when
/// export is off.
pub fn start(
    config: &OtlpConfig,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<Exporter>, String> {
    let Some(endpoint) = &config.endpoint else {
        return Ok(None);
    };
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: cannot build the HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.traces_url())
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(OnRuntime {
            client,
            runtime: runtime.clone(),
        })
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", VERSION))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    Ok(Some(Exporter { provider }))
}

impl Exporter {
    /// The layer that exports the server's spans (and attaches the events
    /// logged in them): those of this package and its crates (targets
    /// `registry*`) at level info and above, whatever the log level.
    pub fn layer(&self) -> BoxedLayer {
        let tracer = self.provider.tracer("registry");
        let only_ours = Targets::new()
            .with_target("registry", LevelFilter::INFO)
            .with_default(LevelFilter::OFF);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .with_filter(only_ours)
            .boxed()
    }

    /// Export what is left and stop (bounded by a timeout). Call it while
    /// the runtime still runs: the last batch is sent on it.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "trace export: the last spans may be lost");
        }
    }
}

/// Make `span` (just made, not entered yet) a child of the caller's span
/// when `headers` carry a W3C `traceparent` (and `tracestate`); a malformed
/// one is ignored and the span starts a trace of its own. The caller's
/// sampled flag is followed, as OpenTelemetry's default sampler does.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !headers.contains_key("traceparent") {
        return;
    }
    let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let parent = propagator.extract(&opentelemetry_http::HeaderExtractor(headers));
    if let Err(e) = span.set_parent(parent) {
        tracing::debug!(error = %e, "traceparent not followed");
    }
}

/// The OTLP exporter's HTTP client: the request is sent by a task on the
/// server's runtime (the batch processor's thread has none), whose
/// answer the exporter awaits.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[registry_http::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let mut response = client.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    return Err::<_, HttpError>("the collector's answer is over 4 MiB".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(answer.body(Bytes::from(body))?)
        });
        sent.await?
    }
}
