//! `upload_throughput`: 64 MiB pushed through the upload state machine into
//! the memory and filesystem stores, in 1 MiB chunks (one PATCH each) and
//! as one stream, next to plain SHA-256 of the same bytes in the same run.
//!
//! Run with: `cargo bench --bench upload_throughput`
//!
//! After criterion's own report it prints each store's throughput as a
//! ratio of raw SHA-256 (goal: memory >= 0.9, fs >= 0.7). The `fs` figures
//! include the flushes that make a 201 durable (one data flush per chunk,
//! plus directory flushes), so they are bound by the disk's flush latency;
//! `fs_nofsync` is the same store with `fsync` off, bound by hashing and
//! copying alone.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use registry::core::{BlobStore, ByteStream, Digest, RepositoryName, UploadStore};
use registry::storage::{OpendalStore, StoreOptions};
use sha2::Digest as _;

const SIZE: usize = 64 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const GROUP: &str = "upload_throughput";

fn data() -> Vec<Bytes> {
    let mut x = 0x9e37_79b9u32;
    let all: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    all.chunks(CHUNK).map(Bytes::copy_from_slice).collect()
}

fn stream(pieces: &[Bytes]) -> ByteStream {
    let owned: Vec<Bytes> = pieces.to_owned();
    futures::stream::iter(owned.into_iter().map(Ok)).boxed()
}

async fn push_stream(
    store: &OpendalStore,
    repo: &RepositoryName,
    pieces: &[Bytes],
    digest: &Digest,
) {
    store
        .put_blob(repo, digest, stream(pieces), Some(SIZE as u64))
        .await
        .unwrap();
    store.delete_blob(repo, digest).await.unwrap();
    remove_data(store, digest).await;
}

async fn push_chunked(
    store: &OpendalStore,
    repo: &RepositoryName,
    pieces: &[Bytes],
    digest: &Digest,
) {
    let st = store.start_upload(repo).await.unwrap();
    let mut offset = 0u64;
    for p in pieces {
        let body = futures::stream::iter([Ok(p.clone())]).boxed();
        offset = store
            .write_chunk(repo, &st.id, Some(offset), body, Some(p.len() as u64))
            .await
            .unwrap()
            .offset;
    }
    store
        .complete_upload(repo, &st.id, digest, None)
        .await
        .unwrap();
    store.delete_blob(repo, digest).await.unwrap();
    remove_data(store, digest).await;
}

/// Each iteration must store the blob anew, not find it already there.
async fn remove_data(store: &OpendalStore, digest: &Digest) {
    let path = registry::storage::layout::Key::BlobData(digest).path();
    store.operator().delete(&path).await.unwrap();
}

fn output_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("criterion"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion"),
    }
}

fn main() {
    let pieces = data();
    let digest = {
        let mut h = sha2::Sha256::new();
        for p in &pieces {
            h.update(p);
        }
        Digest::parse(&format!("sha256:{}", hex_of(&h.finalize()))).unwrap()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = RepositoryName::parse("bench/upload").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let memory = OpendalStore::memory();
    let fs = OpendalStore::fs(dir.path().join("durable")).unwrap();
    let fs_nofsync = OpendalStore::fs_with(
        dir.path().join("nofsync"),
        &StoreOptions::default().with_fsync(false),
    )
    .unwrap();

    let mut c = Criterion::default()
        .output_directory(&output_dir())
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    {
        let mut g = c.benchmark_group(GROUP);
        g.throughput(Throughput::Bytes(SIZE as u64));
        g.bench_function("sha256_raw", |b| {
            b.iter(|| {
                let mut h = sha2::Sha256::new();
                for p in &pieces {
                    h.update(p);
                }
                h.finalize()
            })
        });
        for (name, store) in [
            ("memory", &memory),
            ("fs", &fs),
            ("fs_nofsync", &fs_nofsync),
        ] {
            g.bench_function(format!("{name}_stream"), |b| {
                b.iter(|| rt.block_on(push_stream(store, &repo, &pieces, &digest)))
            });
            g.bench_function(format!("{name}_chunked_1MiB"), |b| {
                b.iter(|| rt.block_on(push_chunked(store, &repo, &pieces, &digest)))
            });
        }
        g.finish();
    }
    c.final_summary();
    print_ratios();
}

/// Read criterion's mean estimates and print each as a ratio of raw SHA-256.
fn print_ratios() {
    let mean_ns = |id: &str| -> Option<f64> {
        let p = output_dir().join(GROUP).join(id).join("new/estimates.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let Some(raw) = mean_ns("sha256_raw") else {
        return; // test mode (`cargo test --benches`): nothing was measured
    };
    let mibs = |ns: f64| SIZE as f64 / (1024.0 * 1024.0) / (ns / 1e9);
    println!("\nupload_throughput summary (64 MiB, ratio = raw SHA-256 time / push time)");
    println!(
        "{:<22} {:>10} {:>8} {:>6}",
        "benchmark", "MiB/s", "ratio", "goal"
    );
    println!(
        "{:<22} {:>10.0} {:>8.2} {:>6}",
        "sha256_raw",
        mibs(raw),
        1.0,
        ""
    );
    for (id, goal) in [
        ("memory_stream", 0.9),
        ("memory_chunked_1MiB", 0.9),
        ("fs_stream", 0.7),
        ("fs_chunked_1MiB", 0.7),
        ("fs_nofsync_stream", 0.7),
        ("fs_nofsync_chunked_1MiB", 0.7),
    ] {
        if let Some(ns) = mean_ns(id) {
            let ratio = raw / ns;
            let verdict = if ratio >= goal { "met" } else { "MISSED" };
            println!(
                "{id:<22} {:>10.0} {ratio:>8.2} {goal:>4} {verdict}",
                mibs(ns)
            );
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
