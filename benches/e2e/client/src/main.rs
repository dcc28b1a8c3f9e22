//! `e2e-client`: the client side of the end-to-end benchmark
//! (`benches/e2e/run.sh`, described in `BENCHMARKS.md`).
//!
//! Plain OCI distribution API calls over HTTP/1.1 (hyper), the same calls
//! against any registry. Each subcommand prints one JSON object on stdout.
//!
//! - `push`: one blob from a file, monolithic (`POST` then one streaming
//!   `PUT ?digest=`) or in chunks (`POST`, one `PATCH` per chunk with
//!   `Content-Range`, then an empty `PUT ?digest=`). The file is read by a
//!   separate thread in 1 MiB pieces handed to hyper without copying, so at
//!   most a few MiB are in flight. The digest is given by `--digest`, or
//!   computed before the clock starts: hashing is never in the timed part.
//! - `pull`: `GET` a blob, stream it to nowhere, check the length
//!   (`--verify` also checks the digest, inline and so inside the timing).
//! - `small-blobs`: N random blobs of a given size (generated before the
//!   clock starts), each pushed as `POST` + `PUT ?digest=` with body, by
//!   `--concurrency` tasks sharing one connection pool.
//! - `put-manifest`: a config, a layer and an OCI image manifest tagged
//!   `--tag`, the target of the manifest `GET`/`HEAD` workload.
//!
//! The runtime is single-threaded: on a small machine the client should
//! take as little CPU from the server as possible.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use sha2::{Digest as _, Sha256};

mod body;
mod data;
mod rate;

use body::{empty, file_body, full, with_digest};
use data::{parse_size, random_blobs, sha256_file, sha256_hex};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;
type Body = BoxBody<Bytes, BoxError>;

/// Size of one read from the file, and of one body frame.
const READ_SIZE: usize = 1 << 20;
/// Frames queued between the reader thread and hyper.
const QUEUED_READS: usize = 4;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Parser)]
#[command(
    name = "e2e-client",
    about = "Client of the end-to-end registry benchmark"
)]
struct Cli {
    /// The registry, HOST:PORT (plain HTTP); before or after the subcommand.
    #[arg(long, global = true)]
    registry: Option<String>,
    /// The repository name, e.g. bench/blob; before or after the subcommand.
    #[arg(long, global = true)]
    repo: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push one blob from a file.
    Push {
        /// The file holding the blob.
        #[arg(long)]
        file: PathBuf,
        /// The blob's digest, sha256:<hex>; computed (untimed) when absent.
        #[arg(long)]
        digest: Option<String>,
        /// Push in PATCH chunks of this size (e.g. 16MiB) instead of one PUT.
        #[arg(long, value_parser = parse_size)]
        chunk_size: Option<u64>,
        /// Send the file this many times over as one blob (monolithic only),
        /// to push a blob larger than the file.
        #[arg(long, default_value_t = 1)]
        repeat: u64,
    },
    /// Pull one blob and discard it.
    Pull {
        /// The blob's digest, sha256:<hex>.
        #[arg(long)]
        digest: String,
        /// Expected size in bytes (otherwise the response's Content-Length).
        #[arg(long)]
        size: Option<u64>,
        /// Also hash what is received and compare with the digest (timed).
        #[arg(long)]
        verify: bool,
    },
    /// Push many small random blobs concurrently.
    SmallBlobs {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, value_parser = parse_size, default_value = "4096")]
        size: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Closed-loop request rate: `--connections` connections each sending
    /// one request after the other for `--duration` seconds (after
    /// `--warmup` seconds not counted); requests/s and latency percentiles.
    /// Used for `HEAD`, which wrk cannot do (its parser waits for a body).
    Rate {
        /// http://HOST:PORT/path
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: Method,
        /// Extra request header, "Name: value" (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// Push a config and a layer, then an OCI image manifest under a tag.
    PutManifest {
        #[arg(long, default_value = "latest")]
        tag: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let target = Target {
        registry: cli.registry,
        repo: cli.repo,
    };
    match run(cli.command, target).await {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e-client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--registry` and `--repo`, needed by every subcommand but `rate`.
struct Target {
    registry: Option<String>,
    repo: Option<String>,
}

async fn run(command: Command, target: Target) -> Result<serde_json::Value> {
    match command {
        Command::Push {
            file,
            digest,
            chunk_size,
            repeat,
        } => {
            let len = std::fs::metadata(&file)?.len();
            if repeat == 0 || (repeat > 1 && chunk_size.is_some()) {
                return Err("--repeat must be >= 1, and 1 with --chunk-size".into());
            }
            let digest = match digest {
                Some(d) => d,
                None => sha256_file(&file, repeat)?,
            };
            let reg = Registry::new(target)?;
            let start = Instant::now();
            match chunk_size {
                None => reg.push_monolithic(&file, len, repeat, &digest).await?,
                Some(chunk) => reg.push_chunked(&file, len, chunk, &digest).await?,
            }
            let elapsed = start.elapsed().as_secs_f64();
            let bytes = len * repeat;
            Ok(json!({
                "elapsed_s": elapsed,
                "bytes": bytes,
                "mib_per_s": bytes as f64 / elapsed / (1 << 20) as f64,
                "digest": digest,
            }))
        }
        Command::Pull {
            digest,
            size,
            verify,
        } => {
            let reg = Registry::new(target)?;
            let start = Instant::now();
            let bytes = reg.pull(&digest, size, verify).await?;
            let elapsed = start.elapsed().as_secs_f64();
            Ok(json!({
                "elapsed_s": elapsed,
                "bytes": bytes,
                "mib_per_s": bytes as f64 / elapsed / (1 << 20) as f64,
                "verified": verify,
            }))
        }
        Command::SmallBlobs {
            count,
            size,
            concurrency,
        } => {
            let blobs = Arc::new(random_blobs(count, size as usize));
            let reg = Arc::new(Registry::new(target)?);
            let next = Arc::new(AtomicUsize::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency.max(1) {
                let (reg, blobs, next) = (reg.clone(), blobs.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((data, digest)) = blobs.get(i) else {
                            return Ok::<_, BoxError>(());
                        };
                        reg.push_bytes(data.clone(), digest).await?;
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
            let elapsed = start.elapsed().as_secs_f64();
            Ok(json!({
                "elapsed_s": elapsed,
                "count": count,
                "blobs_per_s": count as f64 / elapsed,
            }))
        }
        Command::Rate {
            url,
            method,
            headers,
            connections,
            duration,
            warmup,
        } => rate::run(&url, method, &headers, connections, duration, warmup).await,
        Command::PutManifest { tag } => {
            let reg = Registry::new(target)?;
            let (layer, layer_digest) = random_blobs(1, 4096).remove(0);
            let config = Bytes::from(
                json!({
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                })
                .to_string(),
            );
            let config_digest = sha256_hex(&config);
            reg.push_bytes(config.clone(), &config_digest).await?;
            reg.push_bytes(layer.clone(), &layer_digest).await?;
            let manifest = Bytes::from(
                json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config_digest,
                        "size": config.len(),
                    },
                    "layers": [{
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": layer.len(),
                    }],
                })
                .to_string(),
            );
            let digest = sha256_hex(&manifest);
            let url = reg.url(&format!("/v2/{}/manifests/{tag}", reg.repo));
            let req = Request::put(url)
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .header(header::CONTENT_LENGTH, manifest.len())
                .body(full(manifest.clone()))?;
            reg.expect(req, StatusCode::CREATED).await?;
            Ok(json!({"digest": digest, "size": manifest.len(), "media_type": OCI_MANIFEST}))
        }
    }
}

/// One registry and repository, with a pooled HTTP/1.1 client.
struct Registry {
    client: Client<HttpConnector, Body>,
    authority: String,
    repo: String,
}

impl Registry {
    fn new(target: Target) -> Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Registry {
            client: Client::builder(TokioExecutor::new()).build(connector),
            authority: target.registry.ok_or("--registry HOST:PORT is required")?,
            repo: target.repo.ok_or("--repo NAME is required")?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    /// An absolute URL for a `Location` (absolute or relative).
    fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            self.url(location)
        }
    }

    /// Send `req`, read the whole (small) response, check its status.
    async fn expect(&self, req: Request<Body>, want: StatusCode) -> Result<HeaderMap> {
        let what = format!("{} {}", req.method(), req.uri());
        let res = self.client.request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        if parts.status != want {
            return Err(format!(
                "{what}: {} (wanted {want}): {}",
                parts.status,
                String::from_utf8_lossy(&body[..body.len().min(500)])
            )
            .into());
        }
        Ok(parts.headers)
    }

    /// `POST` a new upload session; the absolute URL of its `Location`.
    async fn start_upload(&self) -> Result<String> {
        let req = Request::post(self.url(&format!("/v2/{}/blobs/uploads/", self.repo)))
            .header(header::CONTENT_LENGTH, 0)
            .body(empty())?;
        let headers = self.expect(req, StatusCode::ACCEPTED).await?;
        self.location(&headers)
    }

    fn location(&self, headers: &HeaderMap) -> Result<String> {
        let loc = headers
            .get(header::LOCATION)
            .ok_or("response without Location")?
            .to_str()?;
        Ok(self.resolve(loc))
    }

    /// A blob in one `POST` + `PUT ?digest=` with the body.
    async fn push_bytes(&self, data: Bytes, digest: &str) -> Result<()> {
        let location = self.start_upload().await?;
        let req = Request::put(with_digest(&location, digest))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, data.len())
            .body(full(data))?;
        self.expect(req, StatusCode::CREATED).await?;
        Ok(())
    }

    async fn push_monolithic(
        &self,
        file: &Path,
        len: u64,
        repeat: u64,
        digest: &str,
    ) -> Result<()> {
        let location = self.start_upload().await?;
        let req = Request::put(with_digest(&location, digest))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len * repeat)
            .body(file_body(file, 0, len, repeat))?;
        self.expect(req, StatusCode::CREATED).await?;
        Ok(())
    }

    async fn push_chunked(&self, file: &Path, len: u64, chunk: u64, digest: &str) -> Result<()> {
        if chunk == 0 {
            return Err("--chunk-size must be > 0".into());
        }
        let mut location = self.start_upload().await?;
        let mut offset = 0;
        while offset < len {
            let n = chunk.min(len - offset);
            let req = Request::patch(&location)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, n)
                .header(
                    header::CONTENT_RANGE,
                    format!("{offset}-{}", offset + n - 1),
                )
                .body(file_body(file, offset, n, 1))?;
            let headers = self.expect(req, StatusCode::ACCEPTED).await?;
            location = self.location(&headers)?;
            offset += n;
        }
        let req = Request::put(with_digest(&location, digest))
            .header(header::CONTENT_LENGTH, 0)
            .body(empty())?;
        self.expect(req, StatusCode::CREATED).await?;
        Ok(())
    }

    /// `GET` a blob; the number of bytes received.
    async fn pull(&self, digest: &str, size: Option<u64>, verify: bool) -> Result<u64> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(self.url(&format!("/v2/{}/blobs/{digest}", self.repo)))
            .body(empty())?;
        let res = self.client.request(req).await?;
        if res.status() != StatusCode::OK {
            return Err(format!("GET blob: {}", res.status()).into());
        }
        let announced = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let mut body = res.into_body();
        let mut hasher = verify.then(Sha256::new);
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                received += data.len() as u64;
                if let Some(h) = hasher.as_mut() {
                    h.update(&data);
                }
            }
        }
        let expected = size
            .or(announced)
            .ok_or("no --size and no Content-Length")?;
        if received != expected {
            return Err(format!("received {received} bytes, expected {expected}").into());
        }
        if let Some(h) = hasher {
            let got = format!("sha256:{}", hex::encode(h.finalize()));
            if got != digest {
                return Err(format!("received content has digest {got}, not {digest}").into());
            }
        }
        Ok(received)
    }
}
