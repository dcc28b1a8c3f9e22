//! Prometheus metrics of the real `registry serve` process: the counters
//! move by exactly what the test did, `--metrics-listen` serves them on a
//! port of their own (and the main one answers 404), `--metrics false`
//! turns them off, the main listener's scrape follows the registry's
//! authentication unless `--metrics-auth false`, and the background
//! collector's runs are counted. `promtool_accepts_the_scrape` (ignored:
//! it needs Prometheus' `promtool`, which scripts/test.sh installs and runs
//! it with) checks the whole output with Prometheus' own parser.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::http::Client;
use common::process::TestServer;
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};
use tempfile::TempDir;

/// The samples of a scrape: `name{labels}` (labels as the server writes
/// them) to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// Scrape `url` (a full URL) with `headers`.
fn scrape(c: &Client, url: &str, headers: &[(&str, &str)]) -> BTreeMap<String, f64> {
    let r = c.get(url, headers);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    samples(std::str::from_utf8(&r.body).unwrap())
}

/// The value of `series`, 0 when absent (a series appears once counted).
fn value(s: &BTreeMap<String, f64>, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

fn requests(handler: &str, code: u16, method: &str) -> String {
    format!(
        "registry_http_requests_total{{handler=\"{handler}\",code=\"{code}\",method=\"{method}\"}}"
    )
}

/// Push an image of a config and one layer, returning the manifest and
/// every byte received (blobs and manifest).
fn push(c: &Client, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, u64) {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let layer = format!("the layer of {seed}, a little longer").into_bytes();
    c.push_blob(repo, &config);
    c.push_blob(repo, &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    assert_eq!(
        c.put_manifest(repo, tag, OCI_MANIFEST, &manifest).status,
        201
    );
    let bytes = (config.len() + layer.len() + manifest.len()) as u64;
    (manifest, bytes)
}

#[test]
fn counters_move_by_what_was_done() {
    let cache = TempDir::new().unwrap();
    let server = TestServer::launch()
        .arg("--cache-dir")
        .arg(cache.path().display().to_string())
        .start();
    let c = Client::new(&server);
    let before = scrape(&c, "/metrics", &[]);

    let mut received = 0;
    let mut last = Vec::new();
    for i in 0..3 {
        let (manifest, bytes) = push(&c, "team/app", &format!("v{i}"), &format!("seed {i}"));
        received += bytes;
        last = manifest;
    }
    for _ in 0..5 {
        let r = c.get("/v2/team/app/manifests/v2", &[("Accept", OCI_MANIFEST)]);
        assert_eq!(r.status, 200);
    }
    let missing = c.get("/v2/team/app/manifests/nope", &[]);
    assert_eq!(missing.status, 404);
    // One layer read twice: a miss that fills the cache, then a hit.
    let layer = b"the layer of seed 0, a little longer";
    for _ in 0..2 {
        let r = c.get(&format!("/v2/team/app/blobs/{}", digest(layer)), &[]);
        assert_eq!(r.body, layer);
    }
    // An upload left open.
    assert_eq!(c.post("/v2/team/app/blobs/uploads/", &[], b"").status, 202);

    let after = scrape(&c, "/metrics", &[]);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved(&requests("manifest", 201, "PUT")), 3.0);
    assert_eq!(moved(&requests("blob_upload", 202, "POST")), 7.0);
    assert_eq!(moved(&requests("blob_upload_chunk", 201, "PUT")), 6.0);
    assert_eq!(moved(&requests("manifest", 200, "GET")), 5.0);
    assert_eq!(moved(&requests("manifest", 404, "GET")), 1.0);
    assert_eq!(moved(&requests("blob", 200, "GET")), 2.0);
    // The first scrape was counted once its body was sent.
    assert_eq!(value(&after, &requests("metrics", 200, "GET")), 1.0);
    let get = "handler=\"manifest\",method=\"GET\"";
    assert_eq!(
        moved(&format!(
            "registry_http_request_duration_seconds_count{{{get}}}"
        )),
        6.0
    );
    assert_eq!(
        moved(&format!("registry_http_response_size_bytes_sum{{{get}}}")),
        (5 * last.len() + missing.body.len()) as f64
    );
    assert_eq!(
        value(
            &after,
            "registry_http_in_flight_requests{handler=\"manifest\"}"
        ),
        0.0
    );
    // This scrape is in flight while it is encoded.
    assert_eq!(
        value(
            &after,
            "registry_http_in_flight_requests{handler=\"metrics\"}"
        ),
        1.0
    );
    assert_eq!(moved("registry_received_bytes_total"), received as f64);
    let store = |action: &str, result: &str| {
        format!(
            "registry_storage_operations_total{{driver=\"filesystem\",action=\"{action}\",result=\"{result}\"}}"
        )
    };
    assert_eq!(moved(&store("put_manifest", "ok")), 3.0);
    assert_eq!(moved(&store("get_manifest", "ok")), 5.0);
    assert_eq!(moved(&store("get_manifest", "not_found")), 1.0);
    assert_eq!(
        moved(
            "registry_storage_action_seconds_count{driver=\"filesystem\",action=\"get_manifest\"}"
        ),
        6.0
    );
    assert_eq!(value(&after, "registry_upload_sessions_open"), 1.0);
    assert_eq!(moved("registry_storage_cache_requests_total"), 2.0);
    assert_eq!(moved("registry_storage_cache_hits_total"), 1.0);
    assert_eq!(moved("registry_storage_cache_misses_total"), 1.0);
    assert_eq!(moved("registry_storage_cache_fills_total"), 1.0);
    assert_eq!(
        moved("registry_storage_cache_hit_bytes_total"),
        layer.len() as f64
    );
    assert_eq!(
        value(&after, "registry_storage_cache_bytes"),
        layer.len() as f64
    );
    // The blob cache's reads are not storage actions; the miss is.
    assert_eq!(moved(&store("read_blob", "ok")), 1.0);
}

#[test]
fn metrics_listen_serves_on_its_own_port_only() {
    let server = TestServer::launch()
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .start();
    let line = server
        .wait_for_log(|l| l.contains("metrics on http://"))
        .expect("the metrics listener says where it is");
    let url = line
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    assert!(url.ends_with("/metrics"), "{url}");
    let c = Client::new(&server);
    assert_eq!(c.get("/v2/", &[]).status, 200);
    let on_main = c.get("/metrics", &[]);
    assert_eq!(on_main.status, 404, "{on_main:?}");
    let s = scrape(&c, &url, &[]);
    assert_eq!(value(&s, &requests("base", 200, "GET")), 1.0);
    // The main listener's refusal was counted there, as any request.
    assert_eq!(value(&s, &requests("metrics", 404, "GET")), 1.0);
    // Nothing but /metrics on the metrics port.
    let other = c.get(&url.replace("/metrics", "/v2/"), &[]);
    assert_eq!(other.status, 404, "{other:?}");
}

#[test]
fn metrics_false_turns_them_off() {
    let server = TestServer::launch().arg("--metrics").arg("false").start();
    let c = Client::new(&server);
    assert_eq!(c.get("/metrics", &[]).status, 404);
}

/// An htpasswd file with one user, `alice`.
fn htpasswd(dir: &Path) -> String {
    let hash = bcrypt::hash("alice-pw", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("alice:{hash}\n")).unwrap();
    path.display().to_string()
}

fn alice() -> String {
    let raw = base64::engine::general_purpose::STANDARD.encode("alice:alice-pw");
    format!("Basic {raw}")
}

#[test]
fn the_main_listener_asks_for_the_registry_authentication() {
    let dir = TempDir::new().unwrap();
    let file = htpasswd(dir.path());
    let server = TestServer::launch()
        .arg("--auth")
        .arg("htpasswd")
        .arg("--htpasswd")
        .arg(file.clone())
        .in_dir(dir)
        .start();
    let c = Client::new(&server);
    let anonymous = c.get("/metrics", &[]);
    anonymous.assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        anonymous.header("WWW-Authenticate"),
        Some("Basic realm=\"registry\"")
    );
    let wrong = c.get("/metrics", &[("Authorization", "Basic YWxpY2U6bm8=")]);
    assert_eq!(wrong.status, 401);
    let auth = alice();
    let s = scrape(&c, "/metrics", &[("Authorization", auth.as_str())]);
    assert_eq!(value(&s, &requests("metrics", 401, "GET")), 2.0);

    // --metrics-auth false: open, though the registry is not.
    let dir = TempDir::new().unwrap();
    let file = htpasswd(dir.path());
    let open = TestServer::launch()
        .arg("--auth")
        .arg("htpasswd")
        .arg("--htpasswd")
        .arg(file)
        .arg("--metrics-auth")
        .arg("false")
        .in_dir(dir)
        .start();
    let c = Client::new(&open);
    assert_eq!(c.get("/v2/", &[]).status, 401);
    scrape(&c, "/metrics", &[]);
}

#[test]
fn background_collections_are_counted_with_what_they_reclaimed() {
    let server = TestServer::launch()
        .arg("--gc-interval")
        .arg("1s")
        .arg("--gc-grace")
        .arg("0s")
        .start();
    let c = Client::new(&server);
    let config = b"{\"unreferenced\":true}".to_vec();
    let layer = b"a layer that its manifest leaves behind".to_vec();
    c.push_blob("app", &config);
    c.push_blob("app", &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    assert_eq!(
        c.put_manifest("app", "v1", OCI_MANIFEST, &manifest).status,
        201
    );
    let deleted = c.delete(&format!("/v2/app/manifests/{}", digest(&manifest)));
    assert_eq!(deleted.status, 202, "{deleted:?}");
    let expected = (config.len() + layer.len() + manifest.len()) as f64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = scrape(&c, "/metrics", &[]);
        if value(&s, "registry_gc_reclaimed_bytes_total") >= expected || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        value(&s, "registry_gc_reclaimed_bytes_total"),
        expected,
        "{s:?}"
    );
    assert_eq!(value(&s, "registry_gc_removed_blobs_total"), 3.0);
    assert!(value(&s, "registry_gc_runs_total{result=\"ok\"}") >= 1.0);
    assert_eq!(value(&s, "registry_gc_runs_total{result=\"failed\"}"), 0.0);
    assert!(value(&s, "registry_gc_last_success_timestamp_seconds") > 1.7e9);
}

/// Run by scripts/test.sh, which installs Prometheus' `promtool`: the scrape
/// after every kind of request passes `promtool check metrics` (the text
/// format parser and Prometheus' naming lint).
#[test]
#[ignore = "needs promtool (Debian's prometheus package); scripts/test.sh runs it"]
fn promtool_accepts_the_scrape() {
    let cache = TempDir::new().unwrap();
    let server = TestServer::launch()
        .arg("--cache-dir")
        .arg(cache.path().display().to_string())
        .arg("--gc-interval")
        .arg("1s")
        .start();
    let c = Client::new(&server);
    let (manifest, _) = push(&c, "lint/app", "v1", "lint");
    c.get("/v2/lint/app/manifests/v1", &[]);
    c.get(
        &format!("/v2/lint/app/manifests/{}", digest(&manifest)),
        &[],
    );
    c.get("/v2/lint/app/tags/list", &[]);
    c.get("/v2/_catalog", &[]);
    c.get("/v2/lint/app/blobs/sha256:0000", &[]);
    let r = c.get("/metrics", &[]);
    assert_eq!(r.status, 200);
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool on PATH (scripts/install-test-tools.sh installs it)");
    use std::io::Write as _;
    promtool.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&r.body)
    );
}
