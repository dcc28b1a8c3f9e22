//! The S3 server stops under a running registry with a per-host blob
//! cache, then comes back: `/readyz` goes 503 within the failure threshold
//! and `/livez` stays 200; what this host holds (blobs in the cache,
//! manifests by digest in memory) is still served; everything else answers
//! 503 `UNAVAILABLE` at once instead of spending the retries; a request
//! already in retries when the store went gives up within the storage
//! timeout; readiness returns when the S3 server does, on the same port.
//!
//! Ignored by default: needs moto's server. `scripts/test.sh` runs it in a
//! step of its own with `REGISTRY_TEST_MOTO_PYTHON` naming the venv's
//! python (which runs `scripts/moto_server.py`). The test starts and stops
//! its own moto, by PID.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{Client, Reply};
use common::process::TestServer;
use registry_testkit::agent as client;
use registry_testkit::content::{OCI_MANIFEST, digest};

const BUCKET: &str = "outage";

/// moto's S3 server on `port`, logging into `dir`; ready to serve.
fn start_moto(dir: &Path, port: u16) -> Child {
    let python = std::env::var("REGISTRY_TEST_MOTO_PYTHON")
        .expect("REGISTRY_TEST_MOTO_PYTHON must name a python with moto (scripts/test.sh sets it)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto_server.py");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("moto.log"))
        .unwrap();
    let mut child = Command::new(python)
        .arg(script)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http.get(format!("http://127.0.0.1:{port}/")).call().is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "moto exited ({status}): {}",
                std::fs::read_to_string(dir.join("moto.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let made = http
        .put(format!("http://127.0.0.1:{port}/{BUCKET}"))
        .send_empty()
        .unwrap();
    assert_eq!(made.status(), 200, "bucket created");
    child
}

/// Stop moto by its PID.
fn stop_moto(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Moto stopped on drop too, if the test fails half-way.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        stop_moto(&mut self.0);
    }
}

/// Poll `path` until it answers `status`, at most `within`; the time taken.
fn wait_status(client: &Client, path: &str, status: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = client.get(path, &[]).status;
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{path} still {got} after {within:?}, expected {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A request to make.
type Request<'a> = Box<dyn Fn() -> Reply + 'a>;

/// A request timed: its status, its error code and how long it took.
fn timed(what: impl FnOnce() -> Reply) -> (u16, Vec<String>, Duration) {
    let start = Instant::now();
    let resp = what();
    (resp.status, resp.error_codes(), start.elapsed())
}

#[test]
#[ignore = "needs moto's S3 server: scripts/test.sh runs it with REGISTRY_TEST_MOTO_PYTHON"]
fn s3_outage_fails_fast_serves_the_cache_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut moto = Moto(start_moto(dir.path(), port));
    let storage =
        format!("s3://{BUCKET}/registry?endpoint=http://127.0.0.1:{port}&region=us-east-1");
    let cache = dir.path().join("cache");
    let server = TestServer::launch()
        .without_storage_flag()
        .arg(format!("--storage={storage}"))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg("--store-probe-interval=500ms")
        .arg("--store-failure-threshold=2")
        .arg("--store-recovery-threshold=2")
        .arg("--storage-timeout=2s")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .start();
    let c = Client::new(&server);
    wait_status(&c, "/startupz", 200, Duration::from_secs(10));
    assert_eq!(c.get("/readyz", &[]).status, 200);

    // Push an image and pull it once: the blobs go to this host's cache,
    // the manifest into the in-process cache.
    let (manifest, md) = c.push_image("outage/app", "v1", "outage");
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.push(parsed["layers"][0]["digest"].as_str().unwrap().to_owned());
    let accept = [("Accept", OCI_MANIFEST)];
    let pulled = c.get(&format!("/v2/outage/app/manifests/{md}"), &accept);
    assert_eq!(pulled.status, 200);
    let mut contents = Vec::new();
    for d in &blobs {
        let resp = c.get(&format!("/v2/outage/app/blobs/{d}"), &[]);
        assert_eq!(resp.status, 200);
        assert_eq!(digest(&resp.body), *d);
        contents.push(resp.body);
        let file = cache.join("sha256").join(d.trim_start_matches("sha256:"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !file.exists() {
            assert!(Instant::now() < deadline, "{d} not cached");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    stop_moto(&mut moto.0);
    // Already in retries when the store goes: gives up within the storage
    // timeout (2 s) or when the probe finds the store failing, whichever
    // is first; not after the retry layer's ~10 s.
    let (status, codes, took) = timed(|| c.get("/v2/outage/app/tags/list", &[]));
    assert_eq!((status, codes), (503, vec!["UNAVAILABLE".to_owned()]));
    eprintln!("in retries when the store went: 503 after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "bounded retries took {took:?}"
    );

    let unready = wait_status(&c, "/readyz", 503, Duration::from_secs(10));
    eprintln!("unready {unready:?} after the store went");
    let ready = c.get("/readyz", &[]);
    assert!(
        String::from_utf8_lossy(&ready.body).starts_with("storage: "),
        "{ready:?}"
    );
    let debug = c.get("/debug/health", &[]);
    assert_eq!(debug.status, 503);
    let reason = debug.json()["storage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !reason.is_empty() && !reason.contains("127.0.0.1") && !reason.contains(BUCKET),
        "the store's own error (endpoint, bucket) stays in the log: {reason}"
    );
    assert_eq!(
        c.get("/livez", &[]).status,
        200,
        "liveness never asks the store"
    );
    assert_eq!(c.get("/startupz", &[]).status, 200, "started once, started");

    // What this host holds is still served.
    for (d, bytes) in blobs.iter().zip(&contents) {
        let resp = c.get(&format!("/v2/outage/app/blobs/{d}"), &[]);
        assert_eq!(resp.status, 200, "cached blob {d}: {resp:?}");
        assert_eq!(&resp.body, bytes);
    }
    let by_digest = c.get(&format!("/v2/outage/app/manifests/{md}"), &accept);
    assert_eq!(by_digest.status, 200, "{by_digest:?}");
    assert_eq!(by_digest.body, manifest);
    assert_eq!(by_digest.must("Docker-Content-Digest"), md);

    // Everything else: 503 UNAVAILABLE at once.
    let unknown = digest(b"never pushed");
    let requests: Vec<(&str, Request)> = vec![
        (
            "manifest by tag",
            Box::new(|| c.get("/v2/outage/app/manifests/v1", &accept)),
        ),
        (
            "tag list",
            Box::new(|| c.get("/v2/outage/app/tags/list", &[])),
        ),
        (
            "upload",
            Box::new(|| c.post("/v2/outage/app/blobs/uploads/", &[], b"")),
        ),
        (
            "blob not cached",
            Box::new(|| c.get(&format!("/v2/outage/app/blobs/{unknown}"), &[])),
        ),
        (
            "manifest of another repository",
            Box::new(|| c.get(&format!("/v2/outage/other/manifests/{md}"), &accept)),
        ),
        ("catalog", Box::new(|| c.get("/v2/_catalog", &[]))),
    ];
    for (what, request) in &requests {
        let (status, codes, took) = timed(request);
        assert_eq!(
            (status, codes),
            (503, vec!["UNAVAILABLE".to_owned()]),
            "{what}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{what}: {took:?}, not at once"
        );
    }

    // The S3 server comes back on the same port (empty: moto keeps
    // nothing), and so does readiness.
    moto = Moto(start_moto(dir.path(), port));
    let back = wait_status(&c, "/readyz", 200, Duration::from_secs(15));
    eprintln!("ready {back:?} after the store returned");
    assert_eq!(c.get("/debug/health", &[]).status, 200);
    let listed = c.get("/v2/outage/app/tags/list", &[]);
    assert_eq!(
        listed.status, 404,
        "asked the (empty) store again: {listed:?}"
    );
    let (_, md2) = c.push_image("outage/again", "v1", "again");
    assert_eq!(
        c.get(&format!("/v2/outage/again/manifests/{md2}"), &accept)
            .status,
        200
    );
    let stopped = server.stop();
    assert!(stopped.status.success());
    drop(moto);
}
