//! Another program writing the store's directory must not crash the
//! server. CNCF distribution on the same directory rewrites a manifest's
//! blob file in place (truncate, then write) when it is pushed again; a
//! blob served from a memory mapping of that file would turn the next
//! page fault into SIGBUS for the whole process. Small blobs are read with
//! `pread`, which at worst comes back short.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::TestServer;
use registry_testkit::content::blob_data_path;

#[test]
fn manifest_blob_rewritten_in_place_while_read_does_not_crash() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let (manifest, digest) = client.push_image("foreign/rewrite", "v1", "x");
    // A small blob (a config, say) rewritten the same way.
    let small: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let small_digest = client.push_blob("foreign/rewrite", &small);
    let files = [
        (blob_data_path(&server.storage(), &digest), manifest.clone()),
        (
            blob_data_path(&server.storage(), &small_digest),
            small.clone(),
        ),
    ];
    let file = &files[0].0;
    assert!(file.is_file());

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, files) = (stop.clone(), files.clone());
        std::thread::spawn(move || {
            let mut rewrites = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (file, bytes) in &files {
                    // What `PutContent` does: truncate, then write, in place.
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(file)
                        .unwrap();
                    std::thread::yield_now();
                    f.write_all(bytes).unwrap();
                    rewrites += 1;
                }
            }
            rewrites
        })
    };

    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut whole, mut failed) = (0, 0);
    while Instant::now() < deadline {
        for (path, want) in [
            (format!("/v2/foreign/rewrite/blobs/{small_digest}"), &small),
            (format!("/v2/foreign/rewrite/manifests/{digest}"), &manifest),
        ] {
            let r = client.get(&path, &[]);
            // A read that met the file cut short may fail or come back
            // short; the process must live on.
            if r.status == 200 && &r.body == want {
                whole += 1;
            } else {
                failed += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rewrites = writer.join().unwrap();
    assert!(rewrites > 100, "the file was rewritten {rewrites} times");
    // Still serving.
    let after = client.get(&format!("/v2/foreign/rewrite/blobs/{small_digest}"), &[]);
    assert_eq!(after.status, 200, "{after:?}");
    assert!(after.body == small);
    assert!(file.is_file());
    assert!(whole > 0, "{whole} whole reads, {failed} failed");
    eprintln!("{rewrites} rewrites; {whole} whole reads, {failed} short or failed");
}
