//! The `server` module over a real socket on 127.0.0.1:0: a push and pull
//! with reqwest, and graceful shutdown with a request in flight.
#![cfg(feature = "hyper")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use registry_core::Digest;
use registry_http::{Router, server};
use registry_storage::OpendalStore;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new(Arc::new(OpendalStore::memory()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, router, async {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

#[tokio::test]
async fn push_and_pull_over_http() {
    let srv = start().await;
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), "{}");

    // A chunked-encoded, streamed PATCH, then the closing PUT.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&content);
    let r = client
        .post(format!("{base}/v2/a/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-length"], "0");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let chunks: Vec<Result<Bytes, std::io::Error>> = content
        .chunks(65_536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = client
        .patch(format!("{base}{location}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    assert_eq!(r.headers()["range"], format!("0-{}", content.len() - 1));
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = client
        .put(format!("{base}{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let url = format!("{base}/v2/a/b/blobs/{digest}");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], content.len().to_string());
    assert_eq!(r.headers()["docker-content-digest"], digest.to_string());
    assert_eq!(r.bytes().await.unwrap(), content);

    let r = client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], content.len().to_string());
    assert!(r.bytes().await.unwrap().is_empty());

    let r = client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", content.len())
    );
    assert_eq!(r.bytes().await.unwrap(), content[10..20]);

    let r = client
        .get(format!("{base}/v2/a/b/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json_value().await;
    assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN");

    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let srv = start().await;
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();

    // A PATCH whose body arrives in two parts, with shutdown asked for in
    // between.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let patch = tokio::spawn(client.patch(format!("{base}{location}")).body(body).send());
    tx.send(Ok(Bytes::from_static(b"first "))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    srv.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !srv.task.is_finished(),
        "the server waits for the request in flight"
    );
    // No new connections.
    let fresh = reqwest::Client::new()
        .get(format!("{base}/v2/"))
        .send()
        .await;
    assert!(fresh.is_err(), "{fresh:?}");

    tx.send(Ok(Bytes::from_static(b"second"))).await.unwrap();
    drop(tx);
    let r = patch.await.unwrap().unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-11");
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// An mpsc receiver as a stream.
fn tokio_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}
