//! `--redirect` on S3: a blob `GET` answers 307 to a presigned URL of the
//! bucket, which fetched directly gives the blob's bytes; `HEAD` and ranged
//! `GET`s are answered here; a blob the repository does not link is 404,
//! not a redirect; a blob this host's cache holds is served from it; a
//! request that names the URL's own host is served here; a mirrored blob
//! is fetched and served here until it is stored; the start-up
//! checks (S3 only, the URL's host not the registry's own).
//!
//! The S3 tests are ignored by default: they need moto's server, named by
//! `REGISTRY_TEST_S3_URL` (`scripts/test.sh` starts it). They sign for
//! `localhost` (`--redirect-endpoint`), the same server under another
//! name, since the registry listens on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::http::Client;
use common::process::{TestServer, run_in, serve_in};
use common::raw;
use registry_testkit::agent;

/// The storage URL's endpoint, as `localhost` rather than 127.0.0.1.
fn public_endpoint(storage: &str) -> String {
    let endpoint = storage
        .split_once("endpoint=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(rest))
        .expect("REGISTRY_TEST_S3_URL names an endpoint");
    endpoint.replace("127.0.0.1", "localhost")
}

/// A server on a fresh prefix of the bucket, with redirects to `localhost`.
fn start(name: &str, extra: &[&str]) -> (TestServer, String) {
    let storage = Fleet::s3_url(name);
    let endpoint = public_endpoint(&storage);
    let mut launch = TestServer::launch()
        .without_storage_flag()
        .arg("--storage")
        .arg(storage.clone())
        .arg("--redirect=true")
        .arg("--redirect-expiry=2m")
        .arg("--redirect-endpoint")
        .arg(endpoint.clone());
    for a in extra {
        launch = launch.arg(*a);
    }
    (launch.start(), endpoint)
}

/// Fetch an absolute URL, following nothing.
fn fetch(url: &str) -> (u16, Vec<u8>) {
    let mut res = agent().get(url).call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_vec().unwrap())
}

#[test]
#[ignore = "needs the S3 server: REGISTRY_TEST_S3_URL (scripts/test.sh)"]
fn s3_blob_get_redirects_to_a_presigned_url() {
    let (server, endpoint) = start("redirect", &[]);
    let c = Client::new(&server);
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = c.push_blob("r/app", &bytes);
    let path = format!("/v2/r/app/blobs/{d}");

    let get = c.get(&path, &[]);
    assert_eq!(get.status, 307, "{get:?}");
    assert_eq!(get.must("docker-content-digest"), d);
    let location = get.must("location").to_owned();
    assert!(
        location.starts_with(&format!("{endpoint}/")),
        "{location} is on {endpoint}"
    );
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=120"), "{location}");
    assert!(get.body.is_empty());
    let (status, fetched) = fetch(&location);
    assert_eq!(status, 200);
    assert_eq!(fetched.len(), bytes.len());
    assert!(fetched == bytes, "the presigned URL gives the blob's bytes");

    // HEAD: answered here, with the size and digest.
    let head = c.head(&path, &[]);
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.must("content-length"), bytes.len().to_string());
    assert_eq!(head.must("docker-content-digest"), d);
    assert!(!head.has("location"));

    // A ranged GET (a resume) is served here.
    let ranged = c.get(&path, &[("range", "bytes=10-19")]);
    assert_eq!(ranged.status, 206, "{ranged:?}");
    assert_eq!(ranged.body, bytes[10..20]);

    // Not linked in this repository: 404, no URL handed out.
    let other = c.get(&format!("/v2/r/other/blobs/{d}"), &[]);
    other.assert_error(404, "BLOB_UNKNOWN");
    assert!(!other.has("location"));
    // Unknown everywhere: the same.
    let unknown = format!("/v2/r/app/blobs/sha256:{}", "0".repeat(64));
    c.get(&unknown, &[]).assert_error(404, "BLOB_UNKNOWN");

    // Manifests are always served here.
    let (manifest, md) = c.push_image("r/app", "v1", "redirect");
    let got = c.get(
        "/v2/r/app/manifests/v1",
        &[("accept", registry_testkit::content::OCI_MANIFEST)],
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.body, manifest);
    assert_eq!(got.must("docker-content-digest"), md);

    // A client that reached the registry under the URL's own host would
    // send its credentials along: served here instead.
    let host = endpoint.trim_start_matches("http://");
    let req = raw::request("GET", &path, &[("host", host)], b"");
    let res = raw::exchange(server.addr(), &req, false).expect("a response");
    assert_eq!(res.status, 200, "{:?}", res.header("location"));
    assert!(res.body == bytes);
}

#[test]
#[ignore = "needs the S3 server: REGISTRY_TEST_S3_URL (scripts/test.sh)"]
fn s3_a_blob_in_the_cache_is_served_here() {
    let cache = tempfile::TempDir::new().unwrap();
    let dir = cache.path().display().to_string();
    let (server, _) = start("redirect-cache", &["--cache-dir", &dir]);
    let c = Client::new(&server);
    let bytes = b"cached layer bytes".repeat(1000);
    let d = c.push_blob("r/cached", &bytes);
    let path = format!("/v2/r/cached/blobs/{d}");
    // A miss: redirected, and filled behind the client's back.
    let first = c.get(&path, &[]);
    assert_eq!(first.status, 307, "{first:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let hit = loop {
        let res = c.get(&path, &[]);
        if res.status == 200 || Instant::now() > deadline {
            break res;
        }
        assert_eq!(res.status, 307, "{res:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(hit.status, 200, "the cache never filled: {hit:?}");
    assert_eq!(hit.must("docker-content-digest"), d);
    assert!(hit.body == bytes);
    // The cache holds it; another repository still has to link it.
    c.get(&format!("/v2/r/nope/blobs/{d}"), &[])
        .assert_error(404, "BLOB_UNKNOWN");
}

#[test]
#[ignore = "needs the S3 server: REGISTRY_TEST_S3_URL (scripts/test.sh)"]
fn s3_a_mirrored_blob_is_fetched_here_then_redirected() {
    let upstream = TestServer::start();
    let bytes = b"an upstream layer".repeat(5000);
    let d = Client::new(&upstream).push_blob("lib/app", &bytes);
    let flag = format!("up={}", upstream.url(""));
    let (server, endpoint) = start("redirect-mirror", &["--mirror", &flag]);
    let c = Client::new(&server);
    let path = format!("/v2/up/lib/app/blobs/{d}");
    // Not stored yet: fetched from the upstream and served here.
    let first = c.get(&path, &[]);
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.body == bytes);
    // Stored by that fetch: redirected from then on.
    let deadline = Instant::now() + Duration::from_secs(10);
    let redirected = loop {
        let res = c.get(&path, &[]);
        if res.status == 307 || Instant::now() > deadline {
            break res;
        }
        assert_eq!(res.status, 200, "{res:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(redirected.status, 307, "never redirected: {redirected:?}");
    let location = redirected.must("location");
    assert!(location.starts_with(&format!("{endpoint}/")), "{location}");
    let (status, fetched) = fetch(location);
    assert_eq!(status, 200);
    assert!(fetched == bytes);
    // A digest the upstream does not have either: 404, as without redirects.
    let unknown = format!("/v2/up/lib/app/blobs/sha256:{}", "1".repeat(64));
    c.get(&unknown, &[]).assert_error(404, "BLOB_UNKNOWN");
}

#[test]
#[ignore = "needs the S3 server: REGISTRY_TEST_S3_URL (scripts/test.sh)"]
fn s3_redirects_to_the_registrys_own_host_are_refused_at_start_up() {
    let storage = Fleet::s3_url("redirect-refused");
    let dir = tempfile::TempDir::new().unwrap();
    // The storage endpoint is on 127.0.0.1, where the registry listens.
    for (listen, endpoint) in [
        ("127.0.0.1:0", None),
        ("127.0.0.1:0", Some("http://127.0.0.1:9")),
        ("localhost:0", Some("http://s3.LOCALHOST:9")),
    ] {
        let mut args = vec!["serve", "--listen", listen, "--storage", &storage];
        args.push("--redirect=true");
        if let Some(e) = endpoint {
            args.extend(["--redirect-endpoint", e]);
        }
        let out = run_in(dir.path(), &args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains("registry's own"), "{args:?}: {err}");
    }
}

#[test]
fn redirects_need_s3_storage() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = serve_in(dir.path(), &["--redirect=true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("redirects need S3 storage"), "{err}");
    let out = serve_in(
        dir.path(),
        &["--redirect=true", "--redirect-endpoint", "ftp://x"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("http:// or https://"), "{err}");
}
