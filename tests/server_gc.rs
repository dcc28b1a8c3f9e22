//! `registry gc` against the store of a running server: a plan first, then
//! the deletes; the live image still pulls whole, the deleted one is gone,
//! and a second run finds nothing. Run beside the server, not instead of it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::http::Client;
use common::process::{TestServer, run_in};
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

/// Run `registry gc` in `dir` (whose `data/` is the store); exit code and
/// stdout.
fn gc(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["gc", "--storage", "fs://data"];
    all.extend_from_slice(args);
    let out = run_in(dir, &all, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "registry gc {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout)
}

fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or("")
}

/// The manifest `reference` of `repo` and every blob it references read
/// back whole (200).
fn pulls_whole(client: &Client, repo: &str, reference: &str) -> String {
    let manifest = client.get(&format!("/v2/{repo}/manifests/{reference}"), &[]);
    assert_eq!(manifest.status, 200, "{repo}:{reference}");
    let m = manifest.json();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    for l in m["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_owned());
    }
    for d in blobs {
        let status = client.get(&format!("/v2/{repo}/blobs/{d}"), &[]).status;
        assert_eq!(status, 200, "{repo}:{reference} blob {d}");
    }
    manifest.must("Docker-Content-Digest").to_owned()
}

#[test]
fn gc_plans_then_removes_what_no_tag_reaches_while_the_server_runs() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let (_, live) = client.push_image("gc/app", "live", "one");
    let (_, dead) = client.push_image("gc/app", "dead", "two");
    assert_eq!(client.delete("/v2/gc/app/manifests/dead").status, 202);

    // Without --delete-untagged the untagged manifest and its blobs stay.
    let (code, out) = gc(server.dir(), &["--grace", "0s"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        last_line(&out),
        "gc: would remove 0 manifests, 0 blobs, 0 bytes"
    );

    let (_, out) = gc(server.dir(), &["--grace", "0s", "--delete-untagged"]);
    assert!(
        out.contains(&format!(
            "would remove manifest gc/app@{dead}: no tag reaches it"
        )),
        "{out}"
    );
    assert!(
        last_line(&out).starts_with("gc: would remove 1 manifests, 3 blobs, "),
        "{out}"
    );
    assert_eq!(
        client
            .get(&format!("/v2/gc/app/manifests/{dead}"), &[])
            .status,
        200,
        "a plan removes nothing"
    );

    // A grace period protects what was just pushed.
    let (_, out) = gc(
        server.dir(),
        &["--grace", "1h", "--delete-untagged", "--commit"],
    );
    assert_eq!(
        last_line(&out),
        "gc: 0 manifests, 0 blobs, 0 bytes removed",
        "{out}"
    );

    let (_, out) = gc(
        server.dir(),
        &["--grace", "0s", "--delete-untagged", "--commit", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["committed"], true);
    assert_eq!(report["manifests"][0]["digest"], dead.as_str());
    assert_eq!(report["blobs"].as_array().unwrap().len(), 3, "{report}");
    assert!(
        last_line(&out).starts_with("gc: 1 manifests, 3 blobs, "),
        "{out}"
    );
    assert!(last_line(&out).ends_with(" bytes removed"), "{out}");

    // The server sees it at once: the deleted image is gone, the live one
    // pulls whole.
    client
        .get(&format!("/v2/gc/app/manifests/{dead}"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(pulls_whole(&client, "gc/app", "live"), live);

    let (_, out) = gc(
        server.dir(),
        &["--grace", "0s", "--delete-untagged", "--commit"],
    );
    assert_eq!(
        last_line(&out),
        "gc: 0 manifests, 0 blobs, 0 bytes removed",
        "{out}"
    );
}

/// A collection killed (SIGKILL) at points spread over its run, again and
/// again, then one run to the end: the store is consistent (`registry
/// fsck` finds nothing), every live image pulls whole, and what was dead is
/// gone.
#[test]
fn a_collection_killed_at_any_point_is_finished_by_the_next() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let mut live = Vec::new();
    for i in 0..5 {
        live.push(client.push_image("gc/kill", &format!("live{i}"), &format!("live {i}")));
    }
    let mut dead = Vec::new();
    for i in 0..40 {
        let tag = format!("dead{i}");
        dead.push(client.push_image("gc/kill", &tag, &format!("dead {i}")).1);
        assert_eq!(
            client
                .delete(&format!("/v2/gc/kill/manifests/{tag}"))
                .status,
            202
        );
    }

    for delay_ms in [5u64, 10, 20, 35, 50, 80, 120, 200] {
        let mut child = common::process::command(server.dir())
            .args(["gc", "--storage", "fs://data", "--grace", "0s"])
            .args(["--delete-untagged", "--commit"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }

    // A collector killed inside a manifest delete leaves that delete's
    // marker, which the next delete of the manifest waits out (60 s, see
    // docs/CONSISTENCY.md): allow for it.
    let args = [
        "gc",
        "--storage",
        "fs://data",
        "--grace",
        "0s",
        "--delete-untagged",
        "--commit",
    ];
    let last = common::process::run_in_for(server.dir(), &args, &[], Duration::from_secs(180))
        .expect("the last collection did not end");
    let out = String::from_utf8_lossy(&last.stdout);
    assert!(last.status.success(), "{out}");
    assert!(last_line(&out).ends_with(" bytes removed"), "{out}");
    let fsck = run_in(server.dir(), &["fsck", "--storage", "fs://data"], &[]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    for (_, digest) in &live {
        pulls_whole(&client, "gc/kill", digest);
    }
    for digest in &dead {
        client
            .get(&format!("/v2/gc/kill/manifests/{digest}"), &[])
            .assert_error(404, "MANIFEST_UNKNOWN");
    }
    let (_, out) = gc(server.dir(), &["--grace", "0s", "--delete-untagged"]);
    assert_eq!(
        last_line(&out),
        "gc: would remove 0 manifests, 0 blobs, 0 bytes",
        "{out}"
    );
}

/// `registry serve --gc-interval` collects in the background: what no tag
/// reaches goes, the live image stays, and the log says what was removed.
#[test]
fn serve_collects_in_the_background() {
    let server = TestServer::launch()
        .arg("--gc-interval")
        .arg("1s")
        // Long enough that an upload is not collected before the manifest
        // that references it is pushed.
        .arg("--gc-grace")
        .arg("2s")
        .arg("--gc-delete-untagged")
        .start();
    let client = Client::new(&server);
    let (_, live) = client.push_image("gc/online", "live", "online one");
    let (_, dead) = client.push_image("gc/online", "dead", "online two");
    assert_eq!(client.delete("/v2/gc/online/manifests/dead").status, 202);
    let line = server
        .wait_for_log(|l| l.contains("gc: 1 manifests, 3 blobs, "))
        .unwrap_or_else(|| panic!("no collection logged: {:#?}", server.logs()));
    assert!(line.contains("bytes removed"), "{line}");
    client
        .get(&format!("/v2/gc/online/manifests/{dead}"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(pulls_whole(&client, "gc/online", "live"), live);
}

/// Retention rules from the config file: `registry serve` records a pull
/// by digest in the store, and `registry gc --config` plans and makes the
/// rules' tag removals (with a reason for each decision), keeping the tag
/// a pull keeps, the newest and the matching ones.
#[test]
fn retention_rules_of_the_config_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        r#"
[[gc_retention]]
repositories = "ret/*"
keep_last = 1
keep_tags = "^release-"
keep_pulled_within = "1h"
untagged_older_than = "0s"
"#,
    )
    .unwrap();
    let server = TestServer::launch()
        .in_dir(dir)
        .arg("--config")
        .arg("registry.toml")
        .start();
    let client = Client::new(&server);
    let mut pushed = Vec::new();
    for (t, seed) in [
        ("release-1", "r"),
        ("pulled", "p"),
        ("old", "o"),
        ("newest", "n"),
    ] {
        pushed.push(client.push_image("ret/app", t, seed).1);
        // Push times a second apart, on every filesystem's clock.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let pulled = &pushed[1];
    assert_eq!(
        client
            .get(&format!("/v2/ret/app/manifests/{pulled}"), &[])
            .status,
        200
    );
    let record = server
        .dir()
        .join("data/_registry/pulls/ret/app/sha256")
        .join(pulled.strip_prefix("sha256:").unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !record.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no pull recorded at {record:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (_, plan) = gc(
        server.dir(),
        &["--grace", "0s", "--config", "registry.toml"],
    );
    let old = &pushed[2];
    assert!(
        plan.contains(&format!(
            "would remove tag ret/app:old -> {old}: not among the 1 most recently pushed tags"
        )),
        "{plan}"
    );
    assert!(plan.contains("kept tag ret/app:release-1 -> "), "{plan}");
    assert!(
        plan.contains(": not among the 1 most recently pushed tags, but kept: matches ^release-"),
        "{plan}"
    );
    assert!(plan.contains("kept tag ret/app:pulled -> "), "{plan}");
    assert!(plan.contains("but kept: pulled "), "{plan}");
    assert!(plan.contains("kept tag ret/app:newest -> "), "{plan}");
    assert!(
        last_line(&plan).starts_with("gc: would remove 1 manifests, 3 blobs, "),
        "{plan}"
    );
    assert_eq!(client.get("/v2/ret/app/manifests/old", &[]).status, 200);

    let (_, done) = gc(
        server.dir(),
        &["--grace", "0s", "--config", "registry.toml", "--commit"],
    );
    assert!(done.contains("removed tag ret/app:old -> "), "{done}");
    assert!(
        last_line(&done).starts_with("gc: 1 manifests, 3 blobs, "),
        "{done}"
    );
    client
        .get("/v2/ret/app/manifests/old", &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    for t in ["release-1", "pulled", "newest"] {
        pulls_whole(&client, "ret/app", t);
    }
}

/// What a client saw pushing during a paused collection, and what the store
/// held once the collection went on.
struct PausedRace {
    client: Client,
    _server: TestServer,
    /// The answer to the manifest PUT made during the pause.
    put: registry_testkit::Reply,
    /// `GET` of the shared layer after the collection.
    layer_after: u16,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

const RACE_REPO: &str = "gc/race";

/// The race of distribution's #3045, made deterministic: an untagged image
/// leaves its layer unreferenced; a collection dooms that layer and pauses
/// there, before it reads the push records (a debug build's
/// `REGISTRY_TEST_GC_PAUSE_BLOBS`); meanwhile a client pushes a new image
/// on the same layer as docker does (HEAD says it is present, so only the
/// config is uploaded, then the manifest PUT); then the collection goes on.
/// `server_env` is the server's extra environment.
fn push_during_a_paused_collection(server_env: &[(&str, &str)]) -> PausedRace {
    let mut launch = TestServer::launch();
    for (k, v) in server_env {
        launch = launch.env(k, *v);
    }
    let server = launch.start();
    let client = Client::new(&server);
    let layer = b"a base layer the old image and the new one share".to_vec();
    let old_config = b"{\"image\":\"old\"}".to_vec();
    client.push_blob(RACE_REPO, &old_config);
    client.push_blob(RACE_REPO, &layer);
    let old = image_manifest(&old_config, &[&layer], None, None);
    let put = client.put_manifest(RACE_REPO, "old", OCI_MANIFEST, &old);
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        client
            .delete(&format!("/v2/{RACE_REPO}/manifests/old"))
            .status,
        202
    );

    let go = server.dir().join("go");
    let paused = server.dir().join("go.paused");
    let out = std::fs::File::create(server.dir().join("gc.out")).unwrap();
    let mut collector = common::process::command(server.dir())
        .args(["gc", "--storage", "fs://data", "--grace", "0s"])
        .args(["--delete-untagged", "--commit"])
        .env("REGISTRY_TEST_GC_PAUSE_BLOBS", &go)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !paused.exists() {
        if std::time::Instant::now() > until {
            let _ = collector.kill();
            let _ = collector.wait();
            panic!("the collection never reached its pause");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let layer_digest = digest(&layer);
    let head = client.head(&format!("/v2/{RACE_REPO}/blobs/{layer_digest}"), &[]);
    assert_eq!(head.status, 200, "the doomed layer is still stored");
    let config = b"{\"image\":\"new\"}".to_vec();
    client.push_blob(RACE_REPO, &config);
    let manifest = image_manifest(&config, &[&layer], None, None);
    let put = client.put_manifest(RACE_REPO, "new", OCI_MANIFEST, &manifest);

    std::fs::write(&go, b"").unwrap();
    let status = common::process::wait_timeout(&mut collector, Duration::from_secs(120));
    if status.is_none() {
        let _ = collector.kill();
        let _ = collector.wait();
    }
    let log = std::fs::read_to_string(server.dir().join("gc.out")).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "registry gc: {log}");
    let layer_after = client
        .get(&format!("/v2/{RACE_REPO}/blobs/{layer_digest}"), &[])
        .status;
    PausedRace {
        client,
        _server: server,
        put,
        layer_after,
        layer,
        manifest,
    }
}

/// With the handshake the push during the pause is told the doomed layer
/// is unknown (the doom marker, W2), and its record (W1) makes the
/// collection keep the layer; the client's retry once the collection is
/// done (HEAD: present, so the manifest PUT alone) is accepted and pulls
/// whole.
#[test]
fn a_push_onto_a_doomed_layer_is_refused_and_the_layer_kept() {
    let race = push_during_a_paused_collection(&[]);
    race.put.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(race.layer_after, 200, "the push's record kept the layer");
    let layer = digest(&race.layer);
    let head = race
        .client
        .head(&format!("/v2/{RACE_REPO}/blobs/{layer}"), &[]);
    assert_eq!(head.status, 200);
    let put = race
        .client
        .put_manifest(RACE_REPO, "new", OCI_MANIFEST, &race.manifest);
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        pulls_whole(&race.client, RACE_REPO, "new"),
        digest(&race.manifest)
    );
}

/// The same race with the servers' side of the handshake disabled (a debug
/// build's `REGISTRY_TEST_GC_NO_HANDSHAKE`): the push is accepted and the
/// collection deletes its layer: an accepted image that does not pull,
/// which the test above would catch.
#[test]
fn without_the_handshake_an_accepted_image_loses_its_layer() {
    let race = push_during_a_paused_collection(&[("REGISTRY_TEST_GC_NO_HANDSHAKE", "1")]);
    assert_eq!(race.put.status, 201, "{}", race.put.text());
    let manifest = race
        .client
        .get(&format!("/v2/{RACE_REPO}/manifests/new"), &[]);
    assert_eq!(manifest.status, 200, "the accepted manifest is served");
    assert_eq!(race.layer_after, 404, "its layer was collected");
}
