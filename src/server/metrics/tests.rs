use super::*;

#[test]
fn the_defaults_serve_on_the_main_listener_behind_its_authentication() {
    let on_main = MetricsConfig::resolve(None, None, None);
    assert!(on_main.enabled);
    assert!(on_main.needs_auth());
    let own: ListenAddr = "127.0.0.1:9100".parse().unwrap();
    let separate = MetricsConfig::resolve(None, Some(own.clone()), None);
    assert!(
        !separate.needs_auth(),
        "a listener of their own is open unless asked"
    );
    assert!(MetricsConfig::resolve(None, Some(own), Some(true)).needs_auth());
    assert!(!MetricsConfig::resolve(Some(false), None, Some(false)).enabled);
}

#[test]
fn the_registry_encodes_every_family_in_the_text_format() {
    let metrics = Metrics::new("filesystem");
    let gauge = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    metrics.register(
        "registry_test_queue_depth",
        "A registered gauge.",
        gauge.clone(),
    );
    gauge.set(7);
    let text = metrics.encode();
    for line in [
        "# TYPE registry_http_requests_total counter",
        "# TYPE registry_http_request_duration_seconds histogram",
        "# TYPE registry_http_in_flight_requests gauge",
        "# TYPE registry_storage_action_seconds histogram",
        "# TYPE registry_storage_conditional_conflicts_total counter",
        "# TYPE registry_gc_runs_total counter",
        "registry_test_queue_depth 7",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
}

#[test]
fn drivers_are_named_as_distribution_names_them() {
    assert_eq!(driver_of("fs:///var/lib/registry"), "filesystem");
    assert_eq!(driver_of("s3://bucket/prefix?endpoint=x"), "s3aws");
    assert_eq!(driver_of("memory://"), "inmemory");
}
