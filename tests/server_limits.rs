//! The server's transport limits, against the real process: request head
//! size (431), header read timeout (connection closed), body idle timeout
//! (the upload fails, nothing committed), upload requests (manifest pushes
//! included) in flight per client, the bytes of manifests in flight and
//! the per-client rate limit (429 TOOMANYREQUESTS with Retry-After),
//! manifest size (413), and start-up errors for bad values.

mod common;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::{TestServer, run};
use common::raw::{self, read_response};
use registry_testkit::content::digest;

#[test]
fn request_heads_over_the_limit_get_431_and_the_connection_closes() {
    let server = TestServer::launch()
        .arg("--max-header-size")
        .arg("16K")
        .start();
    let ok = raw::exchange(
        server.addr(),
        &raw::request("GET", "/v2/", &[("X-Pad", &"a".repeat(8 << 10))], b""),
        false,
    )
    .unwrap();
    assert_eq!(ok.status, 200);

    let mut s = raw::connect(server.addr());
    let big = raw::request("GET", "/v2/", &[("X-Pad", &"a".repeat(32 << 10))], b"");
    let _ = s.write_all(&big);
    let mut r = BufReader::new(s);
    let res = read_response(&mut r).unwrap().expect("an answer");
    assert_eq!(res.status, 431);
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty(), "connection closed after the 431");
    // Many headers, each small, count too.
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("X-H{i}"), "v".repeat(10)))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = raw::exchange(
        server.addr(),
        &raw::request("GET", "/v2/", &many, b""),
        false,
    )
    .unwrap();
    assert_eq!(res.status, 431);
}

#[test]
fn slow_request_heads_are_cut_off() {
    let server = TestServer::launch()
        .arg("--header-read-timeout")
        .arg("1")
        .start();
    let mut s = raw::connect(server.addr());
    let started = Instant::now();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Never finish the head: the server closes the connection.
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
}

#[test]
fn stalled_bodies_fail_and_commit_nothing() {
    let server = TestServer::launch()
        .arg("--body-idle-timeout")
        .arg("1")
        .start();
    let client = Client::new(&server);
    let blob = vec![7u8; 4096];
    let d = digest(&blob);
    // A monolithic upload that sends half its body and then stalls.
    let mut s = raw::connect(server.addr());
    let mut req = raw::request(
        "POST",
        &format!("/v2/lim/repo/blobs/uploads/?digest={d}"),
        &[("Content-Length", "4096")],
        b"",
    );
    req.extend_from_slice(&blob[..2048]);
    s.write_all(&req).unwrap();
    let started = Instant::now();
    let res = read_response(&mut BufReader::new(s.try_clone().unwrap()))
        .unwrap()
        .expect("an answer");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(res.error_code().as_deref(), Some("SIZE_INVALID"));
    assert_eq!(
        client.head(&format!("/v2/lim/repo/blobs/{d}"), &[]).status,
        404
    );
    assert!(!registry_testkit::content::blob_data_path(&server.storage(), &d).exists());

    // A session chunk that stalls leaves the session where it was.
    let start = client.post("/v2/lim/repo/blobs/uploads/", &[], b"");
    let location = start.must("Location").to_owned();
    let path = location.trim_start_matches(&server.url("")).to_owned();
    let mut s = raw::connect(server.addr());
    let mut req = raw::request("PATCH", &path, &[("Content-Length", "4096")], b"");
    req.extend_from_slice(&blob[..100]);
    s.write_all(&req).unwrap();
    let res = read_response(&mut BufReader::new(s))
        .unwrap()
        .expect("an answer");
    assert_eq!(res.status, 400, "{res:?}");
    let status = client.get(&location, &[]);
    assert_eq!(status.status, 204);
    assert_eq!(
        status.must("Range"),
        "0-0",
        "nothing of the stalled chunk kept"
    );
    // The session still works.
    let put = client.put(
        &Client::with_query(&location, &format!("digest={d}")),
        &[],
        &blob,
    );
    assert_eq!(put.status, 201, "{put:?}");
}

#[test]
fn uploads_in_flight_per_client_are_bounded() {
    let server = TestServer::launch()
        .arg("--max-uploads-per-client")
        .arg("2")
        .start();
    let client = Client::new(&server);
    // Two uploads hold their slot by sending their bodies slowly.
    let mut held = Vec::new();
    for _ in 0..2 {
        let location = client
            .post("/v2/lim/repo/blobs/uploads/", &[], b"")
            .must("Location")
            .to_owned();
        let path = location.trim_start_matches(&server.url("")).to_owned();
        let mut s = raw::connect(server.addr());
        let mut req = raw::request("PATCH", &path, &[("Content-Length", "10")], b"");
        req.extend_from_slice(b"12345");
        s.write_all(&req).unwrap();
        held.push(s);
    }
    // Give the server a moment to have both requests in hand.
    std::thread::sleep(Duration::from_millis(300));
    let refused = client.post("/v2/lim/repo/blobs/uploads/", &[], b"");
    refused.assert_error(429, "TOOMANYREQUESTS");
    assert_eq!(refused.must("Retry-After"), "1");
    // Reads are not uploads.
    assert_eq!(client.get("/v2/", &[]).status, 200);
    // Finishing one frees a slot.
    let mut first = held.remove(0);
    first.write_all(b"67890").unwrap();
    let res = read_response(&mut BufReader::new(first)).unwrap().unwrap();
    assert_eq!(res.status, 202);
    let start = client.post("/v2/lim/repo/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202, "{start:?}");
    drop(held);
}

/// A manifest `PUT` whose body has begun (5 of `length` bytes sent) and
/// stops, holding whatever it holds until the connection closes.
fn manifest_put_held(server: &TestServer, tag: &str, length: usize) -> std::net::TcpStream {
    let mut s = raw::connect(server.addr());
    let len = length.to_string();
    let mut req = raw::request(
        "PUT",
        &format!("/v2/lim/repo/manifests/{tag}"),
        &[
            ("Content-Length", &len),
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        ],
        b"",
    );
    req.extend_from_slice(b"{\"sch");
    s.write_all(&req).unwrap();
    s
}

#[test]
fn manifest_pushes_count_as_uploads_and_share_a_byte_budget() {
    // One upload request per client: a manifest push takes it.
    let server = TestServer::launch()
        .arg("--max-uploads-per-client")
        .arg("1")
        .start();
    let client = Client::new(&server);
    let held = manifest_put_held(&server, "slow", 100);
    std::thread::sleep(Duration::from_millis(300));
    client
        .put("/v2/lim/repo/manifests/other", &[], b"{}")
        .assert_error(429, "TOOMANYREQUESTS");
    client
        .post("/v2/lim/repo/blobs/uploads/", &[], b"")
        .assert_error(429, "TOOMANYREQUESTS");
    drop(held);
    drop(server);

    // Manifests of at most 1 KiB: 16 KiB of them in flight at once.
    let server = TestServer::launch().arg("--manifest-max-size=1024").start();
    let client = Client::new(&server);
    let held: Vec<_> = (0..16)
        .map(|i| manifest_put_held(&server, &format!("t{i}"), 1024))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let refused = client.put(
        "/v2/lim/repo/manifests/late",
        &[("Content-Length", "10")],
        b"0123456789",
    );
    refused.assert_error(429, "TOOMANYREQUESTS");
    assert_eq!(refused.must("Retry-After"), "1");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited for room first"
    );
    // Over the size limit: refused unread (413), the budget is not asked.
    let big = vec![b' '; 2000];
    assert_eq!(
        client.put("/v2/lim/repo/manifests/big", &[], &big).status,
        413
    );
    // Reads go on.
    assert_eq!(client.get("/v2/", &[]).status, 200);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let put = client.put("/v2/lim/repo/manifests/late", &[], b"{}");
    put.assert_error(400, "MANIFEST_INVALID");
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let server = TestServer::launch()
        .arg("--rate-limit")
        .arg("1")
        .arg("--rate-limit-burst")
        .arg("5")
        .start();
    let client = Client::new(&server);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(client.get("/v2/", &[]));
    }
    let ok = statuses.iter().filter(|r| r.status == 200).count();
    assert!((5..=6).contains(&ok), "{ok} accepted");
    let refused = statuses.last().unwrap();
    refused.assert_error(429, "TOOMANYREQUESTS");
    let retry: u64 = refused.must("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(client.get("/v2/", &[]).status, 200, "refilled");
}

#[test]
fn rate_limit_is_off_by_default() {
    let server = TestServer::start();
    let client = Client::new(&server);
    for _ in 0..200 {
        assert_eq!(client.get("/v2/", &[]).status, 200);
    }
}

#[test]
fn manifests_over_the_limit_get_413() {
    let server = TestServer::launch()
        .arg("--manifest-max-size")
        .arg("1000")
        .start();
    let client = Client::new(&server);
    let big = format!("{{\"schemaVersion\":2,\"pad\":\"{}\"}}", "x".repeat(2000));
    let res = client.put_manifest(
        "lim/repo",
        "t",
        registry_testkit::content::OCI_MANIFEST,
        big.as_bytes(),
    );
    res.assert_error(413, "MANIFEST_INVALID");
}

#[test]
fn bad_limit_and_tls_settings_are_start_up_errors() {
    for (args, expect) in [
        (&["serve", "--max-header-size", "1K"][..], "max_header_size"),
        (&["serve", "--tls-cert", "cert.pem"], "without tls_key"),
        (&["serve", "--tls-key", "key.pem"], "without tls_cert"),
        (
            &[
                "serve",
                "--tls-cert",
                "missing.pem",
                "--tls-key",
                "missing.key",
            ],
            "cannot read TLS certificate",
        ),
    ] {
        let out = run(&[args, &["--listen", "127.0.0.1:0", "--storage", "memory://"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    for (args, flag) in [
        (
            &["serve", "--body-idle-timeout", "0"][..],
            "--body-idle-timeout",
        ),
        (&["serve", "--rate-limit", "0"], "--rate-limit"),
        (
            &["serve", "--header-read-timeout", "x"],
            "--header-read-timeout",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag));
    }
}
