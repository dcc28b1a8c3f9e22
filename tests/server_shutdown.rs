//! SIGTERM during an upload still streaming in: the server stops accepting,
//! lets the upload finish (or cuts it off after `--shutdown-timeout`),
//! exits 0, and the blob is then either complete or absent: never a
//! partial blob under its digest.
//!
//! The uploads are written by hand on a raw socket, with chunked transfer
//! encoding, so that the test controls when each part of the body is sent.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::{Stopped, TestServer};
use common::raw::StreamedRequest;
use registry_testkit::content::{blob_data_path, digest};

/// Content big enough to be streamed in several parts.
fn content() -> Vec<u8> {
    (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// Open an upload session and return its location.
fn start_upload(client: &Client, repo: &str) -> String {
    let resp = client.post(&format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(resp.status, 202, "{resp:?}");
    resp.must("Location").to_owned()
}

/// A PUT that closes a new upload session in `repo` (opened by `client`)
/// with [`content`], its first MiB sent and given 200 ms to arrive; with
/// the content and its digest.
fn put_in_flight(
    server: &TestServer,
    client: &Client,
    repo: &str,
) -> (StreamedRequest, Vec<u8>, String) {
    let (blob, d) = (content(), digest(&content()));
    let location = Client::with_query(&start_upload(client, repo), &format!("digest={d}"));
    let mut put = StreamedRequest::start(server.addr(), "PUT", &location);
    put.send(&blob[..1024 * 1024]);
    std::thread::sleep(Duration::from_millis(200));
    (put, blob, d)
}

/// What `server`, signalled, left once it exited (within 30 s), after
/// checking that it exited 0.
fn exited_zero(server: TestServer) -> Stopped {
    let stopped = server.stopped(Duration::from_secs(30));
    assert!(
        stopped.status.success(),
        "{:?}\n{}",
        stopped.status,
        stopped.logs.join("\n")
    );
    stopped
}

/// Wait until the server logs that it is shutting down.
fn wait_for_shutdown_log(server: &TestServer) {
    server
        .wait_for_log(|l| l.contains("shutting down"))
        .expect("no shutdown log line");
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_then_exits_zero() {
    let server = TestServer::launch().arg("--shutdown-timeout=30").start();
    let client = Client::new(&server);
    let (mut put, blob, d) = put_in_flight(&server, &client, "drain/me");
    server.terminate();
    wait_for_shutdown_log(&server);
    // The listener is closed after that line is logged: wait for it.
    server
        .wait_for_log(|l| l.contains("listener closed"))
        .expect("no 'listener closed' log line");

    // No new connections once shutting down...
    assert!(
        TcpStream::connect(server.addr()).is_err(),
        "still accepting after SIGTERM"
    );
    // ...but the upload in flight goes on to the end.
    put.send(&blob[1024 * 1024..2 * 1024 * 1024]);
    put.send(&blob[2 * 1024 * 1024..]);
    assert_eq!(put.finish(), 201);

    let root = server.storage();
    let _dir_kept = exited_zero(server);
    assert_eq!(
        std::fs::read(blob_data_path(&root, &d)).unwrap(),
        blob,
        "complete blob under its digest"
    );
}

#[test]
fn sigterm_cuts_off_a_stalled_upload_after_the_timeout_leaving_no_blob() {
    let server = TestServer::launch().arg("--shutdown-timeout=1").start();
    let client = Client::new(&server);
    let (put, _, d) = put_in_flight(&server, &client, "stall/me");
    let signalled = Instant::now();
    server.terminate();
    // The client never sends the rest.
    let root = server.storage();
    let stopped = exited_zero(server);
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        signalled.elapsed()
    );
    assert!(
        stopped
            .logs
            .iter()
            .any(|l| l.contains("closing their connections")),
        "{}",
        stopped.logs.join("\n")
    );
    drop(put);

    assert!(
        !blob_data_path(&root, &d).exists(),
        "partial blob visible under its digest"
    );
    // A new server on the same storage does not know the blob either.
    let again = TestServer::launch().in_dir(stopped.dir).start();
    let head = Client::new(&again).head(&format!("/v2/stall/me/blobs/{d}"), &[]);
    assert_eq!(head.status, 404);
}

#[test]
fn stalled_streamed_patch_leaves_a_resumable_upload_after_restart() {
    let server = TestServer::launch().arg("--shutdown-timeout=1").start();
    let client = Client::new(&server);
    let (blob, d) = (content(), digest(&content()));
    let location = start_upload(&client, "resume/me");

    let mut patch = StreamedRequest::start(server.addr(), "PATCH", &location);
    patch.send(&blob[..1024 * 1024]);
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    let stopped = exited_zero(server);
    drop(patch);

    // The session lives in the store: a new process continues it from
    // wherever the cut-off chunk left it (nothing or all of it was kept).
    let again = TestServer::launch().in_dir(stopped.dir).start();
    let client = Client::new(&again);
    let path = location
        .split_once("/v2/")
        .map(|(_, p)| format!("/v2/{p}"))
        .unwrap();
    let status = client.get(&path, &[]);
    assert_eq!(status.status, 204, "{status:?}");
    let range = status.must("Range");
    let offset = match range {
        "0-0" => 0,
        r => r.strip_prefix("0-").unwrap().parse::<usize>().unwrap() + 1,
    };
    assert!(
        offset == 0 || offset == 1024 * 1024,
        "upload kept part of a cut-off chunk: Range {range}"
    );
    let end = format!("{}-{}", offset, blob.len() - 1);
    let rest = client.patch(
        &path,
        &[
            ("Content-Range", &end),
            ("Content-Type", "application/octet-stream"),
        ],
        &blob[offset..],
    );
    assert_eq!(rest.status, 202, "{rest:?}");
    let put = client.put(
        &Client::with_query(rest.must("Location"), &format!("digest={d}")),
        &[],
        b"",
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        client.get(&format!("/v2/resume/me/blobs/{d}"), &[]).body,
        blob
    );
}
