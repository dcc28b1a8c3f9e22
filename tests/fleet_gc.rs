//! Garbage collection racing a fleet for real (docs/GC.md): three `registry
//! serve` processes on one store, pushers that keep pushing images which
//! share base layers and re-reference old unreferenced ones (HEAD, then skip
//! the upload when it says present, as docker and skopeo do), a tagger that
//! deletes tags, and two collectors (`registry gc --commit`, grace 1 s)
//! running in a loop at once, for `GC_RACE_SECS` (default 60) seconds.
//!
//! Afterwards every manifest that got a 201 and whose tag was not deleted
//! pulls completely from every process and every blob matches its digest;
//! the collectors reclaimed what the deleted tags left. A push may be
//! refused during the race (`MANIFEST_BLOB_UNKNOWN`, then retried); no
//! accepted image may lose a blob.
//!
//! Whether the race can catch a broken handshake is checked by hand:
//! `fs_broken_handshake_loses_blobs` (ignored; `cargo test --test fleet_gc
//! -- --ignored fs_broken`) runs it with the servers' side of the handshake
//! disabled (a debug build's `REGISTRY_TEST_GC_NO_HANDSHAKE`) until the
//! first lost blob, at most 150 s. It found losses in most runs here (24
//! in one 30 s run, 70 in another), and none in two CI runs (one beside
//! the rest of the suite, one alone with 42 collections in 150 s): the
//! window is hit by chance, so it is no gate of `scripts/test.sh`. The
//! same window made deterministic (a collection paused once it has doomed
//! a layer, a push onto that layer meanwhile) is the pair in
//! `tests/server_gc.rs`: refused and kept with the handshake, accepted and
//! lost without it. With the behaviour tests
//! `gc_push_of_a_doomed_blob_is_refused` and
//! `gc_keeps_what_a_push_under_way_references` (each fails without its
//! half of the handshake) and the spin model, those check the handshake.
//!
//! `fs_*` runs on one directory; `s3_*` on one bucket of the S3 server named
//! by `REGISTRY_TEST_S3_URL`, ignored without it (a step of
//! `scripts/test.sh`). `GC_RACE_SECS` sets the race time (default 60).

mod common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::http::Client;
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

const REPO: &str = "gcrace/app";
/// Base layers the images share; deleted tags leave them unreferenced, and
/// later pushes reuse them.
const BASES: u64 = 5;
const PUSHERS: usize = 3;
/// Consecutive pushes of a pusher that share one base layer; the bases come
/// round again every `BASES` generations.
const GENERATION: u64 = 8;
/// The tagger deletes a tag this long after its push was accepted, after
/// checking that the image is whole.
const HOLD: Duration = Duration::from_secs(3);
const COLLECTORS: usize = 2;
/// How long the race without the handshake may run: it stops at the first
/// lost blob (within 20 s on a quiet machine, dozens within 30 s; with the
/// rest of the test suite running beside it, collections are slower and
/// the first loss comes later).
const BROKEN_RACE_TIME: Duration = Duration::from_secs(150);

fn race_time() -> Duration {
    let secs = std::env::var("GC_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn base_layer(i: u64) -> Vec<u8> {
    format!("base layer {i} ").repeat(200).into_bytes()
}

/// An image a pusher got a 201 for.
struct Accepted {
    at: Instant,
    tag: String,
    manifest: String,
    blobs: Vec<String>,
}

/// What the race saw.
#[derive(Default)]
struct Tally {
    accepted: Mutex<Vec<Accepted>>,
    deleted: Mutex<HashSet<String>>,
    refused: AtomicUsize,
    skipped_uploads: AtomicUsize,
    collections: AtomicUsize,
    blobs_removed: AtomicUsize,
    longest_collection_ms: AtomicUsize,
    problems: Mutex<Vec<String>>,
}

/// Push one image as `tag`, blobs through `blobs_via`, the manifest
/// through `manifest_via`; retried while refused for a blob being
/// collected.
fn push(blobs_via: &Client, manifest_via: &Client, tag: &str, layers: &[Vec<u8>], tally: &Tally) {
    let config = format!("{{\"tag\":\"{tag}\"}}").into_bytes();
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let manifest = image_manifest(&config, &refs, None, None);
    for _attempt in 0..10 {
        for blob in std::iter::once(&config[..]).chain(refs.iter().copied()) {
            let d = digest(blob);
            if blobs_via.head(&format!("/v2/{REPO}/blobs/{d}"), &[]).status == 200 {
                tally.skipped_uploads.fetch_add(1, Ordering::Relaxed);
            } else {
                blobs_via.push_blob(REPO, blob);
            }
        }
        let put = manifest_via.put_manifest(REPO, tag, OCI_MANIFEST, &manifest);
        match put.status {
            201 => {
                let mut blobs = vec![digest(&config)];
                blobs.extend(refs.iter().map(|l| digest(l)));
                tally.accepted.lock().unwrap().push(Accepted {
                    at: Instant::now(),
                    tag: tag.to_owned(),
                    manifest: digest(&manifest),
                    blobs,
                });
                return;
            }
            400 if put.error_codes() == ["MANIFEST_BLOB_UNKNOWN"] => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                tally.problems.lock().unwrap().push(format!(
                    "PUT {tag}: {other} {}",
                    String::from_utf8_lossy(&put.body)
                ));
                return;
            }
        }
    }
}

/// One `registry gc --commit` run; the blobs it removed.
fn collect(dir: &std::path::Path, storage: &str) -> Result<usize, String> {
    let args = [
        "gc",
        "--storage",
        storage,
        "--grace",
        "1s",
        "--delete-untagged",
        "--commit",
    ];
    let Some(run) = common::process::run_in_for(dir, &args, &[], Duration::from_secs(180)) else {
        return Err("registry gc did not end within 180 s".to_owned());
    };
    let out = String::from_utf8_lossy(&run.stdout);
    let summary = out.lines().last().unwrap_or("");
    if !run.status.success() {
        return Err(format!(
            "registry gc failed ({}): {summary} {}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    // `gc: N manifests, M blobs, B bytes removed`
    summary
        .split(", ")
        .nth(1)
        .and_then(|b| b.strip_suffix(" blobs"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no summary line: {out}"))
}

/// How a race ends: after its time, or at the first blob an accepted image
/// lost (to show that it catches a broken handshake).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    Time,
    FirstLoss,
}

fn race(storage: &str, fleet: &Fleet, time: Duration, until: Until) {
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let work = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + time;
    std::thread::scope(|s| {
        for p in 0..PUSHERS {
            let (tally, stop) = (&tally, &stop);
            s.spawn(move || {
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A base per generation of pushes; generations come
                    // round again, onto bases left unreferenced meanwhile.
                    let base = base_layer((n / GENERATION) % BASES);
                    let own = format!("layer of pusher {p} push {n}").into_bytes();
                    let tag = format!("p{p}-{n}");
                    let host = n as usize + p;
                    push(
                        &fleet.client(host),
                        &fleet.client(host + 1),
                        &tag,
                        &[base, own],
                        tally,
                    );
                    n += 1;
                }
            });
        }
        {
            let (tally, stop) = (&tally, &stop);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    // Delete the oldest tag once it is HOLD old, so that old
                    // bases lose their last reference; first check that
                    // the image is still whole.
                    let victim = {
                        let accepted = tally.accepted.lock().unwrap();
                        let deleted = tally.deleted.lock().unwrap();
                        accepted
                            .iter()
                            .find(|a| !deleted.contains(&a.tag) && a.at.elapsed() > HOLD)
                            .map(|a| (a.tag.clone(), a.blobs.clone()))
                    };
                    let Some((tag, blobs)) = victim else { continue };
                    let client = fleet.client(n);
                    for d in &blobs {
                        let head = client.head(&format!("/v2/{REPO}/blobs/{d}"), &[]);
                        if head.status != 200 {
                            tally.problems.lock().unwrap().push(format!(
                                "tag {tag} lost blob {d} ({}) before its tag was deleted",
                                head.status
                            ));
                            if until == Until::FirstLoss {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    let del = client.delete(&format!("/v2/{REPO}/manifests/{tag}"));
                    if del.status == 202 {
                        tally.deleted.lock().unwrap().insert(tag);
                    } else {
                        tally
                            .problems
                            .lock()
                            .unwrap()
                            .push(format!("DELETE {tag}: {}", del.status));
                    }
                    n += 1;
                }
            });
        }
        for c in 0..COLLECTORS {
            let (tally, stop, dir) = (&tally, &stop, work.path());
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Pauses of 0 to 1.4 s: the two collections overlap
                    // often, but not always (see docs/GC.md, "Not yet").
                    std::thread::sleep(Duration::from_millis((n * 7 + c as u64 * 3) % 15 * 100));
                    n += 1;
                    let started = Instant::now();
                    let result = collect(dir, storage);
                    let took = started.elapsed().as_millis() as usize;
                    tally
                        .longest_collection_ms
                        .fetch_max(took, Ordering::Relaxed);
                    match result {
                        Ok(blobs) => {
                            tally.collections.fetch_add(1, Ordering::Relaxed);
                            tally.blobs_removed.fetch_add(blobs, Ordering::Relaxed);
                        }
                        Err(e) => tally.problems.lock().unwrap().push(e),
                    }
                }
            });
        }
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });

    // Every accepted image whose tag stayed pulls whole from every process.
    let accepted = tally.accepted.into_inner().unwrap();
    let deleted = tally.deleted.into_inner().unwrap();
    let mut problems = tally.problems.into_inner().unwrap();
    let mut live = 0;
    for a in accepted.iter().filter(|a| !deleted.contains(&a.tag)) {
        live += 1;
        for i in 0..3 {
            let c = fleet.client(i);
            let m = c.get(
                &format!("/v2/{REPO}/manifests/{}", a.tag),
                &[("Accept", OCI_MANIFEST)],
            );
            if m.status != 200 || m.header("Docker-Content-Digest") != Some(a.manifest.as_str()) {
                problems.push(format!("host {i}: tag {} answers {}", a.tag, m.status));
                continue;
            }
            for d in &a.blobs {
                let b = c.get(&format!("/v2/{REPO}/blobs/{d}"), &[]);
                if b.status != 200 || digest(&b.body) != *d {
                    problems.push(format!(
                        "host {i}: tag {} lost blob {d} ({})",
                        a.tag, b.status
                    ));
                }
            }
        }
    }
    let summary = format!(
        "{} pushes accepted ({live} still tagged, {} tags deleted), {} refused and retried, {} uploads skipped after HEAD, {} collections removed {} blobs, the longest took {} ms",
        accepted.len(),
        deleted.len(),
        tally.refused.load(Ordering::Relaxed),
        tally.skipped_uploads.load(Ordering::Relaxed),
        tally.collections.load(Ordering::Relaxed),
        tally.blobs_removed.load(Ordering::Relaxed),
        tally.longest_collection_ms.load(Ordering::Relaxed),
    );
    println!("{summary}");
    assert!(
        problems.is_empty(),
        "{} problems; {summary}:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        live > 0 && !deleted.is_empty(),
        "the race did too little: {summary}"
    );
    assert!(
        tally.blobs_removed.load(Ordering::Relaxed) > 0,
        "nothing was reclaimed: {summary}"
    );
}

#[test]
fn fs_collectors_race_pushes_and_deletes_on_a_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("fs://{}", dir.path().join("store").display());
    let fleet = Fleet::start(&url, Some(dir));
    race(&url, &fleet, race_time(), Until::Time);
}

/// The same race with the servers' side of the handshake disabled (a debug
/// build's `REGISTRY_TEST_GC_NO_HANDSHAKE`): it must find an accepted image
/// that lost a blob, or the race above could not fail either.
#[test]
#[ignore = "probabilistic, by hand: cargo test --test fleet_gc -- --ignored fs_broken"]
fn fs_broken_handshake_loses_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("fs://{}", dir.path().join("store").display());
    let env = [("REGISTRY_TEST_GC_NO_HANDSHAKE", "1")];
    let fleet = Fleet::start_with_env(&url, Some(dir), &env);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        race(&url, &fleet, BROKEN_RACE_TIME, Until::FirstLoss)
    }));
    let message = match outcome {
        Ok(()) => panic!("no accepted image lost a blob without the handshake"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("lost blob"), "failed otherwise: {message}");
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL"]
fn s3_collectors_race_pushes_and_deletes_on_a_fleet() {
    let url = Fleet::s3_url("gc-race");
    let fleet = Fleet::start(&url, None);
    race(&url, &fleet, race_time(), Until::Time);
}
