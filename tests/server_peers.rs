//! Peer fetch between per-host caches (`--peers`): three real servers on
//! one shared directory, each with its own `--cache-dir`, listing all three
//! as peers. The store's blob reads are counted on the hosts' `/metrics`
//! (`registry_storage_operations_total{action="read_blob"}`, measured under
//! the peers), so "read once per fleet" is asserted on the real stack.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::TestServer;
use common::receiver::free_addr;
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};
use tempfile::TempDir;

const SECRET: &str = "peer-secret-for-tests";
const PEER_HEADER: &str = "registry-peer-secret";

/// Three servers on one directory, peers of each other.
struct Peers {
    servers: Vec<Option<TestServer>>,
    dir: TempDir,
}

impl Peers {
    /// Start three peers with `extra` arguments each, and wait until every
    /// one sees all three live.
    fn start(extra: &[&str]) -> Peers {
        let dir = TempDir::new().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let store = format!("fs://{}", dir.path().join("store").display());
        let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
        let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
        let servers = (0..3)
            .map(|i| {
                let mut launch = TestServer::launch()
                    .without_storage_flag()
                    .listen(addrs[i])
                    .arg("--storage")
                    .arg(&store)
                    .arg("--cache-dir")
                    .arg(dir.path().join(format!("cache-{i}")).display().to_string())
                    .arg("--peers")
                    .arg(urls.join(","))
                    .arg("--peer-secret-file")
                    .arg(secret.display().to_string());
                for a in extra {
                    launch = launch.arg(*a);
                }
                Some(launch.start())
            })
            .collect();
        let peers = Peers { servers, dir };
        for i in 0..3 {
            peers.wait_for(i, "registry_peer_live_members", 3, Duration::from_secs(15));
        }
        peers
    }

    fn client(&self, i: usize) -> Client {
        Client::new(self.servers[i].as_ref().expect("server running"))
    }

    fn server(&self, i: usize) -> &TestServer {
        self.servers[i].as_ref().expect("server running")
    }

    fn cache_file(&self, i: usize, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap();
        self.dir
            .path()
            .join(format!("cache-{i}"))
            .join(alg)
            .join(hex)
    }

    /// Wait until metric `name` of server `i` is `want`.
    fn wait_for(&self, i: usize, name: &str, want: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = metric(&self.client(i), name);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} of server {i} is {got}, not {want}; logs:\n{}",
                self.server(i).logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The store's blob reads (`read_blob`, every result) of every running
    /// server, summed.
    fn store_reads(&self) -> u64 {
        (0..3)
            .filter(|i| self.servers[*i].is_some())
            .map(|i| store_reads(&self.client(i)))
            .sum()
    }

    /// The sum of metric `name` over the running servers.
    fn sum(&self, name: &str) -> u64 {
        (0..3)
            .filter(|i| self.servers[*i].is_some())
            .map(|i| metric(&self.client(i), name))
            .sum()
    }

    /// Which server owns `digest` with `--peer-owners 1`: after one pull
    /// on server `asked`, the one that served a peer, else `asked` itself.
    fn owner_after_pull(&self, asked: usize, served_before: [u64; 3]) -> usize {
        (0..3)
            .find(|&i| {
                i != asked && metric(&self.client(i), "registry_peer_served") > served_before[i]
            })
            .unwrap_or(asked)
    }

    fn served(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| metric(&self.client(i), "registry_peer_served"))
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.server(i).pid().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

/// The value of an unlabelled metric (counter or gauge) on `/metrics`.
fn metric(c: &Client, name: &str) -> u64 {
    let text = c.get("/metrics", &[]).text();
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name || n == format!("{name}_total")).then(|| v.trim().parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}")) as u64
}

/// The store's `read_blob` operations, every result, of one server.
fn store_reads(c: &Client) -> u64 {
    let text = c.get("/metrics", &[]).text();
    text.lines()
        .filter(|l| {
            l.starts_with("registry_storage_operations_total{")
                && l.contains("action=\"read_blob\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// Bytes that do not compress or repeat: `len` of them from `seed`.
fn content(seed: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(seed);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Push a layer of `len` bytes and a manifest naming it through `c`; the
/// layer's bytes and digest.
fn push_image(c: &Client, repo: &str, seed: u8, len: usize) -> (Vec<u8>, String) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = content(seed, len);
    c.push_blob(repo, &config);
    let d = c.push_blob(repo, &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    let put = c.put_manifest(repo, "latest", OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "{put:?}");
    (layer, d)
}

/// Pull the blob through `c`, asserting it is whole and right.
#[track_caller]
fn pull_ok(c: &Client, repo: &str, d: &str, layer: &[u8]) {
    let r = c.get(&format!("/v2/{repo}/blobs/{d}"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.len(), layer.len());
    assert_eq!(digest(&r.body), d, "the body hashes to its digest");
}

/// A GET whose body may be cut short: the status and whatever arrived
/// (`Err` if reading the body failed).
fn pull_raw(url: &str) -> (u16, Result<Vec<u8>, String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().unwrap();
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string());
    (status, body)
}

const MIB: usize = 1024 * 1024;

#[test]
fn one_owner_means_one_store_read_for_three_hosts() {
    let peers = Peers::start(&["--peer-owners", "1"]);
    let (layer, d) = push_image(&peers.client(0), "team/app", 1, 6 * MIB);
    let before = peers.store_reads();
    assert_eq!(before, 0, "a push reads no blob back");
    for round in 0..2 {
        for i in 0..3 {
            pull_ok(&peers.client(i), "team/app", &d, &layer);
            assert!(
                peers.cache_file(i, &d).exists(),
                "round {round}: host {i} cached it"
            );
        }
    }
    assert_eq!(
        peers.store_reads(),
        1,
        "the layer was read from the store once"
    );
    // Two of the three hosts got it from the owner.
    assert_eq!(peers.sum("registry_peer_requests"), 2);
    assert_eq!(peers.sum("registry_peer_served"), 2);
    assert_eq!(
        peers.sum("registry_peer_received_bytes"),
        2 * layer.len() as u64
    );
    assert_eq!(peers.sum("registry_peer_fallbacks"), 0);
    assert_eq!(peers.sum("registry_peer_verification_failures"), 0);
}

#[test]
fn two_owners_still_read_the_store_once() {
    let peers = Peers::start(&[]);
    let mut reads = 0;
    for seed in 0..4u8 {
        let repo = format!("team/app{seed}");
        let (layer, d) = push_image(&peers.client(seed as usize % 3), &repo, 10 + seed, 2 * MIB);
        for round in 0..2 {
            for i in 0..3 {
                pull_ok(&peers.client((i + round) % 3), &repo, &d, &layer);
            }
        }
        let now = peers.store_reads();
        let this = now - reads;
        reads = now;
        // The second owner asks the first: one read however many owners.
        assert_eq!(this, 1, "blob {seed}: {this} store reads");
    }
    assert_eq!(peers.sum("registry_peer_verification_failures"), 0);
}

#[test]
fn three_hosts_pulling_at_once_read_the_store_once() {
    let peers = Peers::start(&[]);
    let mut reads = peers.store_reads();
    for seed in 0..3u8 {
        let repo = format!("team/rollout{seed}");
        let (layer, d) = push_image(&peers.client(0), &repo, 40 + seed, 16 * MIB);
        let clients: Vec<Client> = (0..3).map(|i| peers.client(i)).collect();
        std::thread::scope(|s| {
            for c in &clients {
                s.spawn(|| pull_ok(c, &repo, &d, &layer));
            }
        });
        let now = peers.store_reads();
        // The owner fills its cache once; the peers' requests arriving
        // meanwhile follow that fill instead of reading the store again.
        assert_eq!(now - reads, 1, "blob {seed}: {} store reads", now - reads);
        reads = now;
    }
    assert_eq!(peers.sum("registry_peer_verification_failures"), 0);
}

#[test]
fn the_peer_endpoint_needs_the_secret_and_serves_blobs_only() {
    let peers = Peers::start(&[]);
    let c = peers.client(0);
    let (layer, d) = push_image(&c, "team/app", 2, 100_000);
    let path = format!("/_registry/peer/v1/team/app/blobs/{d}");
    c.get(&path, &[]).assert_error(401, "UNAUTHORIZED");
    c.get(&path, &[(PEER_HEADER, "wrong")])
        .assert_error(403, "DENIED");
    c.get(&path, &[(PEER_HEADER, &format!("{SECRET}x"))])
        .assert_error(403, "DENIED");
    c.get("/_registry/peer/v1/ping", &[])
        .assert_error(401, "UNAUTHORIZED");
    let ok = c.get(&path, &[(PEER_HEADER, SECRET)]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, layer);
    let head = c.head(&path, &[(PEER_HEADER, SECRET)]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(&*layer.len().to_string())
    );
    let ping = c.get("/_registry/peer/v1/ping", &[(PEER_HEADER, SECRET)]);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.text().len(), 32, "an instance id: {}", ping.text());
    // Never a tag, a manifest or a listing, even with the secret.
    let manifest = c.get("/v2/team/app/manifests/latest", &[]);
    assert_eq!(manifest.status, 200);
    let manifest_digest = digest(&manifest.body);
    for other in [
        "/_registry/peer/v1/team/app/manifests/latest".to_owned(),
        format!("/_registry/peer/v1/team/app/manifests/{manifest_digest}"),
        "/_registry/peer/v1/team/app/tags/list".to_owned(),
        "/_registry/peer/v1/team/app/blobs/latest".to_owned(),
    ] {
        c.get(&other, &[(PEER_HEADER, SECRET)])
            .assert_error(404, "UNSUPPORTED");
    }
    // The manifest's bytes are a blob of the store too, but the peer path
    // serves them only by digest as any blob, which the client could pull
    // anyway; unknown digests are unknown.
    let unknown = format!("/_registry/peer/v1/team/app/blobs/{}", digest(b"nothing"));
    c.get(&unknown, &[(PEER_HEADER, SECRET)])
        .assert_error(404, "BLOB_UNKNOWN");
    // Writes are refused.
    c.put(&path, &[(PEER_HEADER, SECRET)], b"x")
        .assert_error(405, "UNSUPPORTED");
    // A peer's request never goes on to another peer: each host serves it
    // from its cache or the store, though with two owners of three at
    // least one host is not an owner of this layer.
    for i in 0..3 {
        let r = peers.client(i).get(&path, &[(PEER_HEADER, SECRET)]);
        assert_eq!(r.status, 200);
        assert_eq!(digest(&r.body), d);
    }
    assert_eq!(peers.sum("registry_peer_requests"), 0);
    // GET, HEAD, the unknown digest, and these three.
    assert_eq!(peers.sum("registry_peer_served"), 6);
}

#[test]
fn a_corrupt_owner_copy_is_caught_and_never_cached_by_the_asker() {
    let peers = Peers::start(&["--peer-owners", "1"]);
    let (layer, d) = push_image(&peers.client(0), "team/app", 3, 3 * MIB);
    let served = peers.served();
    pull_ok(&peers.client(0), "team/app", &d, &layer);
    let owner = peers.owner_after_pull(0, served);
    let file = peers.cache_file(owner, &d);
    assert!(file.exists(), "the owner {owner} cached the layer");
    // Flip one byte in the middle of the owner's copy (same size: the cache
    // serves hits without hashing them again).
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[layer.len() / 2] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let asker = (0..3).find(|i| *i != owner && *i != 0).unwrap();
    let url = peers.server(asker).url(&format!("/v2/team/app/blobs/{d}"));
    let (status, body) = pull_raw(&url);
    assert_eq!(status, 200);
    // All but the last chunk arrived before the digest could be checked:
    // the body is cut short (an error, or fewer bytes), never whole.
    match body {
        Err(_) => {}
        Ok(b) => assert!(b.len() < layer.len(), "a corrupt body must not end whole"),
    }
    assert_eq!(
        metric(&peers.client(asker), "registry_peer_verification_failures"),
        1
    );
    assert!(
        !peers.cache_file(asker, &d).exists(),
        "the asker's cache holds no copy of unverified bytes"
    );
    // The retry reads the store (the digest is suspect for a while), and
    // then the asker's cache holds the right bytes.
    pull_ok(&peers.client(asker), "team/app", &d, &layer);
    pull_ok(&peers.client(asker), "team/app", &d, &layer);
    assert_eq!(std::fs::read(peers.cache_file(asker, &d)).unwrap(), layer);
    assert_eq!(
        metric(&peers.client(asker), "registry_peer_verification_failures"),
        1
    );
}

#[test]
fn a_stopped_owner_costs_one_deadline_then_is_skipped() {
    let mut peers = Peers::start(&["--peer-owners", "1"]);
    // Find a layer whose owner is not server 0 (the one pushing).
    let mut found = None;
    for seed in 0..12u8 {
        let repo = format!("team/app{seed}");
        let (layer, d) = push_image(&peers.client(0), &repo, 40 + seed, 512 * 1024);
        let served = peers.served();
        let probe = (0..3).find(|i| *i != 0).unwrap();
        pull_ok(&peers.client(probe), &repo, &d, &layer);
        let owner = peers.owner_after_pull(probe, served);
        if owner != 0 && owner != probe {
            found = Some((repo, layer, d, owner));
            break;
        }
    }
    let (repo, layer, d, owner) = found.expect("some layer is owned by server 1 or 2");
    let asker = 0;
    // Frozen (SIGSTOP): the connection is accepted by the kernel, nothing
    // answers; the asker waits the first-byte deadline (200 ms), then reads
    // the store.
    peers.signal(owner, "-STOP");
    let t = Instant::now();
    pull_ok(&peers.client(asker), &repo, &d, &layer);
    let took = t.elapsed();
    peers.signal(owner, "-CONT");
    assert!(took < Duration::from_secs(2), "the fallback took {took:?}");
    assert_eq!(metric(&peers.client(asker), "registry_peer_fallbacks"), 1);
    // Killed: refused at once, counted, and after two failures skipped.
    peers.signal(owner, "-KILL");
    let mut killed = peers.servers[owner].take().unwrap();
    let _ = killed.wait(Duration::from_secs(10));
    let others: Vec<usize> = (0..3).filter(|i| *i != owner).collect();
    for &i in &others {
        for seed in 0..3u8 {
            let repo = format!("after/kill{i}{seed}");
            let (layer, d) =
                push_image(&peers.client(i), &repo, 90 + seed + i as u8 * 3, 256 * 1024);
            let t = Instant::now();
            pull_ok(&peers.client(i), &repo, &d, &layer);
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
        peers.wait_for(i, "registry_peer_live_members", 2, Duration::from_secs(10));
    }
    // Pulls go on while it is skipped, now without asking it: no more
    // fallbacks (a request to it would be one).
    let fallbacks = metric(&peers.client(asker), "registry_peer_fallbacks");
    for seed in 0..4u8 {
        let repo = format!("skipped/app{seed}");
        let (layer, d) = push_image(&peers.client(asker), &repo, 120 + seed, 128 * 1024);
        pull_ok(&peers.client(asker), &repo, &d, &layer);
    }
    assert_eq!(
        metric(&peers.client(asker), "registry_peer_fallbacks"),
        fallbacks,
        "a skipped member is not asked"
    );
}

#[test]
fn dns_membership_finds_this_host_by_its_instance_id() {
    let dir = TempDir::new().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let addr = free_addr();
    let server = TestServer::launch()
        .listen(addr)
        .arg("--cache-dir")
        .arg(dir.path().join("cache").display().to_string())
        .arg("--peers-dns")
        .arg(format!("localhost:{}", addr.port()))
        .arg("--peer-secret-file")
        .arg(secret.display().to_string())
        .start();
    let c = Client::new(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&c, "registry_peer_live_members") != 1 {
        assert!(Instant::now() < deadline, "{}", server.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its only member is itself: every read is its own, none asked of a peer.
    let (layer, d) = push_image(&c, "team/app", 7, 300_000);
    pull_ok(&c, "team/app", &d, &layer);
    assert_eq!(metric(&c, "registry_peer_requests"), 0);
    assert_eq!(store_reads(&c), 1);
}

#[test]
fn peer_settings_are_checked_at_start_up() {
    let dir = TempDir::new().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let (secret, empty) = (secret.display().to_string(), empty.display().to_string());
    for (args, expect) in [
        (
            vec!["--peers", "http://127.0.0.1:5000"],
            "--peer-secret-file",
        ),
        (
            vec!["--peers", "ftp://x", "--peer-secret-file", &secret],
            "not http:// or https://",
        ),
        (
            vec![
                "--peers",
                "http://a:1",
                "--peers-dns",
                "b:1",
                "--peer-secret-file",
                &secret,
            ],
            "not both",
        ),
        (
            vec!["--peers-dns", "nameonly", "--peer-secret-file", &secret],
            "NAME:PORT",
        ),
        (
            vec!["--peers", "http://a:1", "--peer-secret-file", &empty],
            "secret is empty",
        ),
        (
            vec![
                "--peers",
                "http://a:1",
                "--peer-secret-file",
                "/nonexistent/secret",
            ],
            "cannot read peer secret file",
        ),
    ] {
        let out = common::process::serve_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains(SECRET), "the secret is never printed: {err}");
    }
}
