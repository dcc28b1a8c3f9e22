//! The process's life: the start-up line, one access-log line per request,
//! and a clean exit (code 0) on SIGINT or SIGTERM.

mod common;

use std::time::Duration;

use common::http::Client;
use common::process::TestServer;

#[test]
fn start_up_line_names_version_listen_storage_and_bound_address() {
    let server = TestServer::start();
    let line = server
        .wait_for_log(|l| l.contains("listening on http://"))
        .unwrap();
    assert!(
        line.contains(&format!("listening on http://{}", server.addr())),
        "{line}"
    );
    assert!(
        line.contains(&format!("version={}", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    assert!(line.contains("listen=127.0.0.1:0"), "{line}");
    assert!(
        line.contains(&format!("storage=fs://{}", server.storage().display())),
        "{line}"
    );
}

#[test]
fn every_request_is_logged_with_status_bytes_and_latency() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let blob = vec![7u8; 12345];
    let d = client.push_blob("logged/repo", &blob);
    assert_eq!(
        client
            .get(&format!("/v2/logged/repo/blobs/{d}"), &[])
            .status,
        200
    );
    assert_eq!(
        client
            .head(&format!("/v2/logged/repo/blobs/{d}"), &[])
            .status,
        200
    );
    assert_eq!(
        client.get("/v2/logged/repo/manifests/nope", &[]).status,
        404
    );

    let find = |method: &str, path: &str, status: u16| {
        let (method, path, status) = (
            format!("method={method} "),
            format!("path={path} "),
            format!("status={status} "),
        );
        server
            .wait_for_log(|l| l.contains(&method) && l.contains(&path) && l.contains(&status))
            .unwrap_or_else(|| {
                panic!(
                    "no access log for {method}{path}{status}: {:#?}",
                    server.logs()
                )
            })
    };
    let get = find("GET", &format!("/v2/logged/repo/blobs/{d}"), 200);
    assert!(get.contains("bytes=12345 "), "{get}");
    assert!(get.contains("latency_ms="), "{get}");
    let head = find("HEAD", &format!("/v2/logged/repo/blobs/{d}"), 200);
    assert!(head.contains("bytes=0 "), "{head}");
    assert!(
        !head.contains("WARN"),
        "a HEAD response is complete without a body: {head}"
    );
    find("POST", "/v2/logged/repo/blobs/uploads/", 202);
    find("GET", "/v2/logged/repo/manifests/nope", 404);
}

#[test]
fn sigterm_when_idle_exits_zero() {
    let server = TestServer::start();
    assert_eq!(Client::new(&server).get("/v2/", &[]).status, 200);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{:?}", stopped.status);
    let logs = stopped.logs.join("\n");
    assert!(
        logs.contains("signal=\"SIGTERM\"") || logs.contains("signal=SIGTERM"),
        "{logs}"
    );
    assert!(logs.contains("stopped"), "{logs}");
}

#[test]
fn sigint_when_idle_exits_zero() {
    let server = TestServer::start();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped = server.stopped(Duration::from_secs(30));
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert!(stopped.logs.join("\n").contains("SIGINT"));
}
