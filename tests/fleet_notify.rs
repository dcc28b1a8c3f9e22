//! Webhooks delivered at least once across a fleet: three processes on one
//! store take pushes while the receiver is down (`REGISTRY_TEST_NOTIFY_DOWN_SECS`,
//! default 30 s), and one of them is killed with SIGKILL a third of the way
//! through, its events still in the outbox. When the receiver comes back,
//! every accepted push (each blob and each manifest) must have produced
//! exactly one event id there (duplicate deliveries of it allowed, losses
//! not), including those the killed process recorded, which only the
//! others can have delivered. On one directory (`cargo test`) and on one
//! S3 bucket (`#[ignore]`d, run by scripts/test.sh with moto).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::http::Client;
use common::process::TestServer;
use common::receiver::{Receiver, free_addr};
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

/// How long the receiver is down: `REGISTRY_TEST_NOTIFY_DOWN_SECS`, 30 s
/// unless set (a shorter value keeps a local run quick).
fn down_for() -> Duration {
    let secs = std::env::var("REGISTRY_TEST_NOTIFY_DOWN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// What came back of one push: its blobs' and manifest's digests.
struct Pushed {
    digests: Vec<String>,
    by: usize,
}

/// Push one small image through `c` if every request of it is accepted.
fn push(c: &Client, i: usize) -> Option<Vec<String>> {
    let repo = format!("fleet/app{}", i % 4);
    let config = format!("{{\"push\":{i}}}").into_bytes();
    let layer = format!("layer of push {i}").into_bytes();
    let mut digests = Vec::new();
    for blob in [&config, &layer] {
        let d = digest(blob);
        let start = c.post(&format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], blob);
        if start.status != 201 {
            return None;
        }
        digests.push(d);
    }
    let manifest = image_manifest(&config, &[&layer], None, None);
    if c.put_manifest(&repo, &format!("t{i}"), OCI_MANIFEST, &manifest)
        .status
        != 201
    {
        return None;
    }
    digests.push(digest(&manifest));
    Some(digests)
}

fn run(storage: &str) {
    let down = down_for();
    let hook = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("registry.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[notifications.endpoints]]
name = "fleet"
url = "http://{hook}/hook"
timeout = "1s"
backoff = "200ms"
maxbackoff = "2s"
attempts = 100000
"#
        ),
    )
    .unwrap();
    let mut servers: Vec<Option<TestServer>> = (0..3)
        .map(|_| {
            Some(
                TestServer::launch()
                    .without_storage_flag()
                    .arg("--storage")
                    .arg(storage)
                    .arg("--config")
                    .arg(cfg.display().to_string())
                    .start(),
            )
        })
        .collect();
    let addrs: Vec<String> = servers
        .iter()
        .map(|s| s.as_ref().unwrap().addr().to_string())
        .collect();
    let clients: Vec<Client> = servers
        .iter()
        .map(|s| Client::new(s.as_ref().unwrap()))
        .collect();

    // Pushes, round robin, while the receiver is down; server 1 is killed
    // a third of the way through.
    let killed = 1;
    let started = Instant::now();
    let mut pushed = Vec::new();
    let mut i = 0;
    while started.elapsed() < down {
        if servers[killed].is_some() && started.elapsed() > down / 3 {
            let mut server = servers[killed].take().unwrap();
            // SAFETY: a plain syscall on the PID of a child this test started.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
            assert_eq!(rc, 0);
            assert!(server.wait(Duration::from_secs(10)).is_some());
        }
        let by = (0..3)
            .map(|k| (i + k) % 3)
            .find(|k| servers[*k].is_some())
            .unwrap();
        if let Some(digests) = push(&clients[by], i) {
            pushed.push(Pushed { digests, by });
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pushed.iter().any(|p| p.by == killed),
        "the killed process took pushes"
    );
    let expected: BTreeSet<&str> = pushed
        .iter()
        .flat_map(|p| p.digests.iter().map(String::as_str))
        .collect();

    let receiver = Receiver::start_on(hook);
    let ids_by_digest = || {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut sources = BTreeSet::new();
        for d in receiver.deliveries() {
            for e in d.json()["events"].as_array().unwrap() {
                if e["action"] != "push" {
                    continue;
                }
                let digest = e["target"]["digest"].as_str().unwrap().to_owned();
                ids.entry(digest)
                    .or_default()
                    .insert(e["id"].as_str().unwrap().to_owned());
                sources.insert(e["source"]["addr"].as_str().unwrap().to_owned());
            }
        }
        (ids, sources)
    };
    let all_there = receiver.wait_for(Duration::from_secs(90), |_| {
        let (ids, _) = ids_by_digest();
        expected.iter().all(|d| ids.contains_key(*d))
    });
    let (ids, sources) = ids_by_digest();
    let missing: Vec<&&str> = expected.iter().filter(|d| !ids.contains_key(**d)).collect();
    let logs: Vec<String> = servers
        .iter()
        .flatten()
        .flat_map(|s| s.logs().into_iter().rev().take(20))
        .collect();
    assert!(
        all_there,
        "{} of {} pushes' events missing: {missing:?}\n{}",
        missing.len(),
        expected.len(),
        logs.join("\n")
    );
    for d in &expected {
        assert_eq!(ids[*d].len(), 1, "{d}: one event id, got {:?}", ids[*d]);
    }
    assert!(
        sources.contains(&addrs[killed]),
        "events recorded by the killed process were delivered by the others"
    );
    let deliveries = receiver.deliveries().len();
    eprintln!(
        "{} pushes ({} digests) over {down:?}, {} by the killed process; {deliveries} deliveries",
        pushed.len(),
        expected.len(),
        pushed.iter().filter(|p| p.by == killed).count(),
    );
}

#[test]
fn fs_every_push_reaches_the_receiver_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    run(&format!("fs://{}", dir.path().join("store").display()));
}

#[test]
#[ignore = "needs the S3 server: REGISTRY_TEST_S3_URL (scripts/test.sh)"]
fn s3_every_push_reaches_the_receiver_once_it_is_back() {
    run(&common::fleet::Fleet::s3_url("notify"));
}
