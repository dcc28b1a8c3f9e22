//! The health endpoints of the real binary on a directory: `/livez`,
//! `/readyz`, `/startupz` and `/debug/health` answer before authentication;
//! SIGTERM with `--shutdown-delay` turns `/readyz` to 503 while an upload
//! still streams in, which then completes; every response carries an
//! `X-Request-Id`; with `--log-format json` every line of the log is one
//! JSON object and the access-log lines carry the ids the responses did.
//! (The store outage is `tests/server_outage.rs`, on S3.)

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::{TestServer, run};
use common::raw::StreamedRequest;
use registry_testkit::content::digest;

/// An htpasswd file with one bcrypt entry (cost 4).
fn htpasswd(dir: &Path) -> String {
    let hash = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("alice:{hash}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn health_endpoints_answer_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::launch()
        .arg("--auth=htpasswd")
        .arg(format!("--htpasswd={}", htpasswd(dir.path())))
        .start();
    let client = Client::new(&server);
    assert_eq!(
        client.get("/v2/", &[]).status,
        401,
        "the API needs credentials"
    );
    for (path, body) in [
        ("/livez", "ok\n"),
        ("/readyz", "ok\n"),
        ("/startupz", "ok\n"),
        ("/debug/health", "{}"),
    ] {
        let resp = client.get(path, &[]);
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(String::from_utf8_lossy(&resp.body), body, "{path}");
        assert_eq!(resp.header("Cache-Control"), Some("no-store"), "{path}");
        assert_eq!(client.head(path, &[]).status, 200, "HEAD {path}");
    }
    // Other methods are the API's business.
    let post = client.post("/readyz", &[], b"");
    assert_ne!(post.status, 200, "{post:?}");
    assert!(!post.error_codes().is_empty(), "{post:?}");
}

#[test]
fn registry_probe_exits_zero_only_on_a_2xx_answer() {
    let server = TestServer::start();
    let ok = run(&["probe", &server.url("/readyz")]);
    assert!(ok.status.success(), "{ok:?}");
    let missing = run(&["probe", &server.url("/no/such/path")]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{missing:?}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = run(&["probe", &format!("http://127.0.0.1:{port}/livez")]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let https = run(&["probe", "https://127.0.0.1:1/livez"]);
    assert_eq!(https.status.code(), Some(1), "{https:?}");
}

#[test]
fn every_response_carries_a_request_id_a_sane_one_from_the_client() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let mine = client.get("/v2/", &[("X-Request-Id", "build-42.step:7")]);
    assert_eq!(mine.header("X-Request-Id"), Some("build-42.step:7"));
    let long = "a".repeat(129);
    for bad in ["two words", long.as_str(), "quote\"d"] {
        let resp = client.get("/v2/no/manifests/x", &[("X-Request-Id", bad)]);
        assert_eq!(resp.status, 404);
        let id = resp.must("X-Request-Id");
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32, "a generated id: {id}");
    }
    let a = client.get("/livez", &[]).must("X-Request-Id").to_owned();
    let b = client.get("/livez", &[]).must("X-Request-Id").to_owned();
    assert_ne!(a, b, "fresh ids");
}

#[test]
fn json_logs_are_one_object_per_line_with_the_responses_ids() {
    let server = TestServer::launch()
        .arg("--log-format=json")
        .arg("--log-level=info,registry_http=debug")
        .start();
    let client = Client::new(&server);
    let mut ids = Vec::new();
    for (i, path) in [
        "/v2/",
        "/v2/a/tags/list",
        "/readyz",
        "/v2/a/blobs/sha256:00",
    ]
    .iter()
    .enumerate()
    {
        let sent = format!("t-{i}");
        let resp = client.get(path, &[("X-Request-Id", &sent)]);
        assert_eq!(resp.must("X-Request-Id"), sent);
        ids.push((sent, path.to_string(), resp.status));
    }
    let generated = client.get("/livez", &[]);
    ids.push((
        generated.must("X-Request-Id").to_owned(),
        "/livez".into(),
        200,
    ));
    client.push_blob("a", b"a blob");
    let stopped = server.stop();
    assert!(stopped.status.success());
    let mut access = Vec::new();
    for line in &stopped.logs {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for key in ["timestamp", "level", "target"] {
            assert!(v.get(key).is_some(), "{key} in {line}");
        }
        if v["target"] == "registry::access" {
            access.push(v);
        }
    }
    for (id, path, status) in &ids {
        let line = access
            .iter()
            .find(|v| v["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no access line for {id}: {access:?}"));
        assert_eq!(line["path"], path.as_str());
        assert_eq!(line["status"], *status);
        assert!(line["latency_ms"].is_number(), "{line}");
    }
    assert_eq!(
        access.len(),
        ids.len() + 2,
        "one line per request, the push's two too: {access:?}"
    );
    // The router's own events carry the request's span and its id.
    let refused = stopped
        .logs
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["target"] != "registry::access" && v["span"]["request_id"] == "t-1")
        .unwrap_or_else(|| panic!("no router event in t-1's span: {:?}", stopped.logs));
    assert_eq!(refused["span"]["name"], "request", "{refused}");
}

#[test]
fn sigterm_turns_readiness_off_first_while_an_upload_finishes() {
    let server = TestServer::launch()
        .arg("--shutdown-delay=5s")
        .arg("--shutdown-timeout=20")
        .start();
    let client = Client::new(&server);
    let blob: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let d = digest(&blob);
    let started = client.post("/v2/drain/me/blobs/uploads/", &[], b"");
    assert_eq!(started.status, 202, "{started:?}");
    let location = Client::with_query(started.must("Location"), &format!("digest={d}"));
    let mut put = StreamedRequest::start(server.addr(), "PUT", &location);
    put.send(&blob[..1024 * 1024]);
    assert_eq!(client.get("/readyz", &[]).status, 200);

    let signalled = Instant::now();
    server.terminate();
    server
        .wait_for_log(|l| l.contains("/readyz answers 503"))
        .expect("no draining log line");
    // New connections are still served during the delay: readiness says
    // no, liveness yes, and the API still answers.
    let ready = client.get("/readyz", &[]);
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(String::from_utf8_lossy(&ready.body).contains("draining"));
    let debug = client.get("/debug/health", &[]);
    assert_eq!(debug.status, 503);
    assert!(debug.json()["draining"].is_string(), "{debug:?}");
    assert_eq!(client.get("/livez", &[]).status, 200);
    // The upload in flight goes on to the end, past the delay.
    std::thread::sleep(Duration::from_millis(500));
    put.send(&blob[1024 * 1024..]);
    assert_eq!(put.finish(), 201);
    let stopped = server.stopped(Duration::from_secs(30));
    assert!(stopped.status.success(), "{}", stopped.logs.join("\n"));
    assert!(
        signalled.elapsed() >= Duration::from_secs(5),
        "the listener stayed open for the delay"
    );
}
