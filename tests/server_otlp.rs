//! OpenTelemetry trace export of the real binary (feature `otlp`,
//! docs/OPERATIONS.md, "Traces"): a receiver in the test takes the OTLP
//! HTTP/protobuf posts, the test decodes them with the OTLP messages and
//! checks the request spans (one per request, with the id the response
//! carried in `X-Request-Id`, method, route, handler and status) and the
//! storage spans (children of their request's span, in its trace, with the
//! repository and the result). The server is stopped before the spans are
//! read: whatever arrived was flushed by the shutdown, without waiting for
//! a batch interval.
#![cfg(feature = "otlp")]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::TestServer;
use common::receiver::{Delivery, Receiver, free_addr};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

/// A caller's span, sampled (W3C Trace Context).
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    kind: i32,
    status: i32,
    start: u64,
    end: u64,
    attributes: HashMap<String, String>,
    service: String,
}

impl Exported {
    fn attr(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .unwrap_or_else(|| panic!("{} has no attribute {key}: {self:#?}", self.name))
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// Every span of every post to `/v1/traces`, after checking the posts'
/// content type.
fn spans(deliveries: &[Delivery]) -> Vec<Exported> {
    let mut out = Vec::new();
    for d in deliveries {
        assert_eq!(d.path, "/v1/traces", "only traces are posted");
        assert_eq!(d.headers["content-type"], "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(d.body.as_slice())
            .expect("an OTLP ExportTraceServiceRequest");
        for resource_spans in request.resource_spans {
            let resource = attributes(
                &resource_spans
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default(),
            );
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for s in scope.spans {
                    out.push(Exported {
                        name: s.name,
                        trace: s.trace_id,
                        id: s.span_id,
                        parent: s.parent_span_id,
                        kind: s.kind,
                        status: s.status.map_or(0, |st| st.code),
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        attributes: attributes(&s.attributes),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The one request span whose `request_id` is `id`.
fn request<'a>(spans: &'a [Exported], id: &str) -> &'a Exported {
    let found: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.attributes.get("request_id").map(String::as_str) == Some(id))
        .collect();
    assert_eq!(found.len(), 1, "one request span for {id}: {spans:#?}");
    found[0]
}

/// The storage spans that are children of `parent`.
fn children<'a>(spans: &'a [Exported], parent: &Exported) -> Vec<&'a Exported> {
    spans
        .iter()
        .filter(|s| s.parent == parent.id && s.name.starts_with("storage."))
        .collect()
}

/// The one child of `parent` named `name`.
fn child<'a>(spans: &'a [Exported], parent: &Exported, name: &str) -> &'a Exported {
    let found: Vec<&Exported> = children(spans, parent)
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} under {}: {spans:#?}",
        parent.name
    );
    let c = found[0];
    assert_eq!(c.trace, parent.trace, "{name} is in its request's trace");
    assert!(
        parent.start <= c.start && c.end <= parent.end,
        "{name} ({}..{}) within {} ({}..{})",
        c.start,
        c.end,
        parent.name,
        parent.start,
        parent.end
    );
    c
}

fn check_request(s: &Exported, method: &str, route: &str, handler: &str, status: u16) {
    assert_eq!(s.name, format!("{method} {route}"));
    assert_eq!(s.kind, SpanKind::Server as i32, "{s:#?}");
    assert!(s.parent.is_empty(), "a request span is a root: {s:#?}");
    assert_eq!(s.trace.len(), 16);
    assert!(s.trace.iter().any(|b| *b != 0));
    assert_eq!(s.id.len(), 8);
    assert_eq!(s.attr("http.request.method"), method);
    assert_eq!(s.attr("http.route"), route);
    assert_eq!(s.attr("handler"), handler);
    assert_eq!(s.attr("http.response.status_code"), status.to_string());
    assert_eq!(s.attr("outcome"), "complete");
    assert_ne!(s.status, StatusCode::Error as i32, "{s:#?}");
    assert!(s.start <= s.end);
}

#[test]
fn requests_and_their_storage_operations_are_exported_as_linked_spans() {
    let receiver = Receiver::start();
    let server = TestServer::launch()
        // A URL without a path: the exporter adds /v1/traces.
        .arg("--otlp-endpoint")
        .arg(receiver.url(""))
        .arg("--otlp-service-name")
        .arg("registry-under-test")
        .start();
    let c = Client::new(&server);
    let repo = "team/traced";

    // A push: two blobs (POST and PUT each) and the manifest.
    let config = br#"{"architecture":"amd64"}"#.to_vec();
    let layer = b"a traced layer".to_vec();
    let layer_digest = digest(&layer);
    c.push_blob(repo, &config);
    c.push_blob(repo, &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    let put = c.put(
        &format!("/v2/{repo}/manifests/v1"),
        &[
            ("content-type", OCI_MANIFEST),
            ("X-Request-Id", "otlp-put-1"),
        ],
        &manifest,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        put.must("x-request-id"),
        "otlp-put-1",
        "the client's id kept"
    );

    // A pull: the manifest by tag, the layer; and a manifest that is not there.
    let get = c.get(
        &format!("/v2/{repo}/manifests/v1"),
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!(get.status, 200);
    let head = c.head(&format!("/v2/{repo}/blobs/{layer_digest}"), &[]);
    assert_eq!(head.status, 200);
    let blob = c.get(&format!("/v2/{repo}/blobs/{layer_digest}"), &[]);
    assert_eq!(blob.status, 200);
    assert_eq!(blob.body, layer);
    let missing = c.get(
        &format!("/v2/{repo}/manifests/nope"),
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!(missing.status, 404);
    // A caller's W3C trace context is continued.
    let traced = c.get(
        &format!("/v2/{repo}/manifests/v1"),
        &[
            ("Accept", OCI_MANIFEST),
            ("X-Request-Id", "otlp-continued"),
            ("traceparent", TRACEPARENT),
        ],
    );
    assert_eq!(traced.status, 200);
    let head_id = head.must("x-request-id").to_owned();
    let (get_id, blob_id, missing_id) = (
        get.must("x-request-id").to_owned(),
        blob.must("x-request-id").to_owned(),
        missing.must("x-request-id").to_owned(),
    );
    assert_eq!(get_id.len(), 32, "a generated id");

    // Stopped before anything is read: the shutdown flushes the last batch.
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.logs.join("\n"));
    let spans = spans(&receiver.deliveries());
    assert!(!spans.is_empty(), "logs: {}", stopped.logs.join("\n"));
    assert!(
        spans.iter().all(|s| s.service == "registry-under-test"),
        "service.name on every span"
    );

    let put = request(&spans, "otlp-put-1");
    check_request(
        put,
        "PUT",
        "/v2/{name}/manifests/{reference}",
        "manifest",
        201,
    );
    assert_eq!(put.attr("url.path"), format!("/v2/{repo}/manifests/v1"));
    let stored = child(&spans, put, "storage.put_manifest");
    assert_eq!(stored.attr("repository"), repo);
    assert_eq!(stored.attr("reference"), "v1");
    assert_eq!(stored.attr("result"), "ok");
    assert_eq!(stored.kind, SpanKind::Internal as i32);

    let get = request(&spans, &get_id);
    check_request(
        get,
        "GET",
        "/v2/{name}/manifests/{reference}",
        "manifest",
        200,
    );
    let read = child(&spans, get, "storage.get_manifest");
    assert_eq!(read.attr("repository"), repo);
    assert_eq!(read.attr("reference"), "v1");
    assert_eq!(read.attr("result"), "ok");

    let blob = request(&spans, &blob_id);
    check_request(blob, "GET", "/v2/{name}/blobs/{digest}", "blob", 200);
    let read = child(&spans, blob, "storage.read_blob");
    assert_eq!(read.attr("digest"), layer_digest);
    assert_eq!(read.attr("result"), "ok");

    let head = request(&spans, &head_id);
    check_request(head, "HEAD", "/v2/{name}/blobs/{digest}", "blob", 200);
    let stat = child(&spans, head, "storage.stat_blob");
    assert_eq!(stat.attr("digest"), layer_digest);

    let missing = request(&spans, &missing_id);
    check_request(
        missing,
        "GET",
        "/v2/{name}/manifests/{reference}",
        "manifest",
        404,
    );
    let lookup = child(&spans, missing, "storage.get_manifest");
    assert_eq!(lookup.attr("result"), "not_found");
    assert_ne!(lookup.status, StatusCode::Error as i32, "a 404 is no error");
    // Each request has its own trace.
    assert_ne!(get.trace, missing.trace);

    let continued = request(&spans, "otlp-continued");
    assert_eq!(hex(&continued.trace), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(
        hex(&continued.parent),
        "b7ad6b7169203331",
        "the caller's span"
    );
    assert_eq!(continued.kind, SpanKind::Server as i32);
    child(&spans, continued, "storage.get_manifest");

    // The blob pushes: each upload started under a POST, completed under a PUT.
    let of = |name: &str| spans.iter().filter(|s| s.name == name).count();
    assert_eq!(of("POST /v2/{name}/blobs/uploads/"), 2);
    assert_eq!(of("PUT /v2/{name}/blobs/uploads/{uuid}"), 2);
    for s in spans
        .iter()
        .filter(|s| s.name == "PUT /v2/{name}/blobs/uploads/{uuid}")
    {
        assert_eq!(s.attr("http.response.status_code"), "201");
        let done = child(&spans, s, "storage.complete_upload");
        assert_eq!(done.attr("result"), "ok");
        assert_eq!(done.attr("repository"), repo);
    }
    for s in spans
        .iter()
        .filter(|s| s.name == "POST /v2/{name}/blobs/uploads/")
    {
        child(&spans, s, "storage.start_upload");
    }
    // Every storage span hangs under an exported request span.
    for s in spans.iter().filter(|s| s.name.starts_with("storage.")) {
        assert!(
            spans
                .iter()
                .any(|p| p.id == s.parent && p.kind == SpanKind::Server as i32),
            "orphan storage span {s:#?}"
        );
    }
}

#[test]
fn a_collector_that_is_down_costs_nothing_but_the_spans() {
    // Nothing listens there.
    let nowhere = format!("http://{}", free_addr());
    let server = TestServer::launch()
        .arg("--otlp-endpoint")
        .arg(nowhere)
        .start();
    let c = Client::new(&server);
    let (_, d) = c.push_image("down/collector", "v1", "seed");
    let got = c.get(
        "/v2/down/collector/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!(got.status, 200);
    assert_eq!(digest(&got.body), d);
    let started = Instant::now();
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.logs.join("\n"));
    assert!(
        stopped
            .logs
            .iter()
            .any(|l| l.contains(" opentelemetry") && (l.contains("WARN") || l.contains("ERROR"))),
        "the failed export is logged: {}",
        stopped.logs.join("\n")
    );
    // The last export fails at once (connection refused) or within the
    // shutdown's bound.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped in {:?}",
        started.elapsed()
    );
}
