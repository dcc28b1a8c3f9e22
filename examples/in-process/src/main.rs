//! Run with: cargo run -p in-process
//!
//! Starts a registry inside this process on an ephemeral port, pushes a blob
//! to it over HTTP, pulls it back and stops it: the pattern for another
//! crate's integration tests that need a registry to talk to. Copy
//! [`TestRegistry`] into your tests; give each test its own instance (the
//! memory store is private to it, and the port is picked by the OS, so tests
//! can run in parallel).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use registry_core::Digest;
use registry_http::{Router, server};
use registry_storage::OpendalStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A registry serving in this process until [`TestRegistry::stop`].
struct TestRegistry {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl TestRegistry {
    /// Serve a fresh, empty, in-memory registry on 127.0.0.1 with a port
    /// the OS picks.
    async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = Router::new(Arc::new(OpendalStore::memory()));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            // Either a stop request or the handle being dropped.
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::serve(listener, router, shutdown));
        Ok(TestRegistry { addr, stop, task })
    }

    /// `http://127.0.0.1:<port>`: what a client calls the registry.
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections, let requests in flight finish, and wait.
    async fn stop(self) -> io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(io::Error::other)?
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = TestRegistry::start().await?;
    let base = registry.url();
    println!("registry listening on {base}");
    let client = reqwest::Client::new();

    // Push: open an upload session, then close it with the content.
    let content = b"hello, registry".to_vec();
    let digest = Digest::sha256_of(&content);
    let res = client
        .post(format!("{base}/v2/demo/app/blobs/uploads/"))
        .send()
        .await?;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str()?.to_owned();
    let res = client
        .put(format!("{base}{location}?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(content.clone())
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    println!("pushed {digest} ({} bytes)", content.len());

    // Pull it back and check it.
    let res = client
        .get(format!("{base}/v2/demo/app/blobs/{digest}"))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let pulled = res.bytes().await?;
    assert_eq!(Digest::sha256_of(&pulled), digest);
    println!("pulled {digest}: {:?}", String::from_utf8_lossy(&pulled));

    registry.stop().await?;
    println!("registry stopped");
    Ok(())
}
