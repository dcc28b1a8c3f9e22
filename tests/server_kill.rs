//! `kill -9` during pushes: 20 times, a server on one directory is killed
//! by its PID at a random moment while a client streams chunked and
//! single-request uploads, then started again on the same directory.
//! Afterwards every blob file in the store hashes to the digest its path
//! names, and every blob acknowledged with 201 before a kill is served,
//! intact, after the restart.
//!
//! The seed of the random delays is printed; set `KILL_TEST_SEED` to replay.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::Client;
use common::process::TestServer;
use registry_testkit::agent as client;
use registry_testkit::content::digest;

const ROUNDS: usize = 20;
const CHUNK: usize = 256 << 10;

/// xorshift64*, enough for delays and contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Push blobs until a request fails (the server was killed) or `stop` is
/// set; record each digest acknowledged with 201.
fn pusher(base: String, seed: u64, acked: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let agent = client();
    let mut rng = Rng(seed | 1);
    let url = |p: &str| {
        if p.starts_with("http") {
            p.to_owned()
        } else {
            format!("{base}{p}")
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let len = CHUNK * (1 + rng.below(12) as usize) + rng.below(1000) as usize;
        let blob = rng.bytes(len);
        let d = digest(&blob);
        let acknowledged = if rng.below(3) == 0 {
            // Single request.
            agent
                .post(url(&format!("/v2/kill/repo/blobs/uploads/?digest={d}")))
                .header("Content-Type", "application/octet-stream")
                .send(&blob[..])
                .ok()
                .map(|r| r.status().as_u16())
        } else {
            // Session: PATCH in chunks, then PUT.
            (|| {
                let start = agent
                    .post(url("/v2/kill/repo/blobs/uploads/"))
                    .send_empty()
                    .ok()?;
                let mut location = start.headers().get("Location")?.to_str().ok()?.to_owned();
                for (i, chunk) in blob.chunks(CHUNK).enumerate() {
                    let from = i * CHUNK;
                    let res = agent
                        .patch(url(&location))
                        .header("Content-Type", "application/octet-stream")
                        .header(
                            "Content-Range",
                            format!("{from}-{}", from + chunk.len() - 1),
                        )
                        .send(chunk)
                        .ok()?;
                    if res.status() != 202 {
                        return Some(res.status().as_u16());
                    }
                    location = res.headers().get("Location")?.to_str().ok()?.to_owned();
                }
                let put = agent
                    .put(url(&Client::with_query(&location, &format!("digest={d}"))))
                    .send_empty()
                    .ok()?;
                Some(put.status().as_u16())
            })()
        };
        match acknowledged {
            Some(201) => acked.lock().unwrap().push(d),
            Some(status) => panic!("unexpected status {status} for a valid push"),
            None => return, // killed
        }
    }
}

/// Every `blobs/**/data` under `root` hashes to the digest in its path.
fn check_blob_files(root: &Path) -> usize {
    let blobs = root.join("docker/registry/v2/blobs/sha256");
    let mut checked = 0;
    let Ok(prefixes) = std::fs::read_dir(&blobs) else {
        return 0;
    };
    for prefix in prefixes {
        for blob_dir in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let blob_dir = blob_dir.unwrap().path();
            let hex = blob_dir.file_name().unwrap().to_string_lossy().into_owned();
            let data = blob_dir.join("data");
            if !data.exists() {
                continue;
            }
            let bytes = std::fs::read(&data).unwrap();
            assert_eq!(
                digest(&bytes),
                format!("sha256:{hex}"),
                "{} holds other bytes",
                data.display()
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn pushes_killed_at_random_points_leave_a_consistent_store() {
    let seed = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("KILL_TEST_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut dir = None;
    let mut kills_mid_push = 0;
    for round in 0..ROUNDS {
        let mut launch = TestServer::launch().arg("--single-writer");
        if let Some(d) = dir.take() {
            launch = launch.in_dir(d);
        }
        let server = launch.start();
        let client = Client::new(&server);
        // Everything acknowledged before earlier kills is still there.
        for d in acked.lock().unwrap().iter() {
            let res = client.get(&format!("/v2/kill/repo/blobs/{d}"), &[]);
            assert_eq!(res.status, 200, "round {round}: {d} lost");
            assert_eq!(&digest(&res.body), d, "round {round}: {d} corrupted");
        }
        let before = acked.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (base, acked, stop) = (server.url(""), acked.clone(), stop.clone());
            let seed = rng.next();
            std::thread::spawn(move || pusher(base, seed, acked, stop))
        };
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &server.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(killed);
        let stopped = server.stopped(Duration::from_secs(10));
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        if !thread_was_idle(before, &acked) {
            kills_mid_push += 1;
        }
        check_blob_files(&stopped.dir.path().join("data"));
        dir = Some(stopped.dir);
    }
    // A last start: everything acknowledged is served, every file is sound.
    let server = TestServer::launch()
        .arg("--single-writer")
        .in_dir(dir.unwrap())
        .start();
    let client = Client::new(&server);
    let acked = acked.lock().unwrap().clone();
    for d in &acked {
        let res = client.get(&format!("/v2/kill/repo/blobs/{d}"), &[]);
        assert_eq!(res.status, 200, "{d} lost");
        assert_eq!(&digest(&res.body), d);
    }
    let files = check_blob_files(&server.storage());
    assert!(
        files >= acked.len(),
        "{files} files for {} acknowledged blobs",
        acked.len()
    );
    assert!(!acked.is_empty(), "no push ever completed");
    eprintln!(
        "{ROUNDS} kills ({kills_mid_push} after some pushes completed), {} blobs acknowledged, {files} blob files checked, {:?}",
        acked.len(),
        started.elapsed()
    );
}

fn thread_was_idle(before: usize, acked: &Arc<Mutex<Vec<String>>>) -> bool {
    acked.lock().unwrap().len() == before
}
