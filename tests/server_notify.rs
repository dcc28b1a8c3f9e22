//! Webhook notifications of the real binary, checked by a receiver against
//! distribution's documented format (docs/OPERATIONS.md, "Notifications"):
//! every field of push, pull, mount and delete events, the envelope's media
//! type, configured headers, the HMAC signature, the repository filter and
//! the CloudEvents form; a failing endpoint's events go to the dead
//! letters.

mod common;

use std::time::Duration;

use common::http::Client;
use common::process::TestServer;
use common::receiver::{Delivery, Receiver};
use hmac::{KeyInit, Mac};
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};
use serde_json::Value;

const ENVELOPE: &str = "application/vnd.docker.distribution.events.v2+json";
const SECRET: &str = "s3cret";

/// Write `body` to `registry.toml` in `dir`; its path.
fn config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("registry.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// A server whose config file is `body`, in the server's own directory.
fn serve_with_config(body: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), body);
    TestServer::launch()
        .in_dir(dir)
        .arg("--config")
        .arg(cfg)
        .start()
}

/// The events of `deliveries` at `path` in distribution's envelope, after
/// checking each request's media type, header and signature.
fn distribution_events(deliveries: &[Delivery], path: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for d in deliveries.iter().filter(|d| d.path == path) {
        assert_eq!(d.headers["content-type"], ENVELOPE);
        assert_eq!(d.headers["x-test"], "yes", "configured header");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&d.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(d.headers["x-registry-signature-256"], expected);
        let body = d.json();
        let list = body["events"].as_array().expect("an envelope");
        assert!(!list.is_empty());
        events.extend(list.iter().cloned());
    }
    events
}

/// The one event of `action` on `digest`.
fn find<'a>(events: &'a [Value], action: &str, digest: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == action && e["target"]["digest"] == digest)
        .collect();
    assert_eq!(found.len(), 1, "one {action} of {digest} in {events:#?}");
    found[0]
}

/// The fields every event carries.
fn check_common(e: &Value, server: &TestServer, method: &str) {
    let id = e["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let ts = e["timestamp"].as_str().unwrap();
    humantime::parse_rfc3339(ts).unwrap_or_else(|_| panic!("RFC 3339 timestamp {ts}"));
    let r = &e["request"];
    assert!(!r["id"].as_str().unwrap().is_empty());
    assert!(r["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(r["host"], server.addr().to_string());
    assert_eq!(r["method"], method);
    assert!(r["useragent"].is_string());
    assert!(e["actor"].is_object());
    assert_eq!(e["source"]["addr"], server.addr().to_string());
    assert_eq!(e["source"]["instanceID"].as_str().unwrap().len(), 36);
}

fn check_blob_target(e: &Value, server: &TestServer, repo: &str, bytes: &[u8]) {
    let t = &e["target"];
    let d = digest(bytes);
    assert_eq!(t["mediaType"], "application/octet-stream");
    assert_eq!(t["size"], bytes.len());
    assert_eq!(t["length"], bytes.len());
    assert_eq!(t["repository"], repo);
    assert_eq!(
        t["url"],
        format!("http://{}/v2/{repo}/blobs/{d}", server.addr())
    );
}

#[test]
fn events_carry_distributions_fields_signed_filtered_and_as_cloudevents() {
    let receiver = Receiver::start();
    let server = serve_with_config(&format!(
        r#"
[[notifications.endpoints]]
name = "dist"
url = "{dist}"
headers = {{ X-Test = ["yes"] }}
timeout = "2s"
backoff = "100ms"
secret = "{SECRET}"

[[notifications.endpoints]]
name = "ce"
url = "{ce}"
format = "cloudevents"
repositories = ["team/**"]
ignore = {{ actions = ["delete"] }}
durable = ["push", "pull"]
"#,
        dist = receiver.url("/dist"),
        ce = receiver.url("/ce"),
    ));
    let c = Client::new(&server);

    let (repo, other) = ("team/app", "other/app");
    let config_blob = br#"{"architecture":"amd64"}"#.to_vec();
    let layer = b"the layer".to_vec();
    c.push_blob(repo, &config_blob);
    c.push_blob(repo, &layer);
    let manifest = image_manifest(&config_blob, &[&layer], None, None);
    let md = digest(&manifest);
    assert_eq!(
        c.put_manifest(repo, "v1", OCI_MANIFEST, &manifest).status,
        201
    );
    let got = c.get(
        &format!("/v2/{repo}/manifests/v1"),
        &[
            ("Accept", OCI_MANIFEST),
            ("User-Agent", "notify-test/1.0"),
            ("X-Request-Id", "req-42"),
        ],
    );
    assert_eq!(got.status, 200);
    assert_eq!(
        c.get(&format!("/v2/{repo}/blobs/{}", digest(&layer)), &[])
            .status,
        200
    );
    // HEAD causes no event.
    assert_eq!(c.head(&format!("/v2/{repo}/manifests/v1"), &[]).status, 200);
    let ld = digest(&layer);
    let mount = c.post(
        &format!("/v2/{other}/blobs/uploads/?mount={ld}&from={repo}"),
        &[],
        b"",
    );
    assert_eq!(mount.status, 201);
    assert_eq!(c.delete(&format!("/v2/{repo}/manifests/{md}")).status, 202);
    assert_eq!(c.delete(&format!("/v2/{other}/blobs/{ld}")).status, 202);

    // dist: 2 blob pushes, a manifest push, 2 pulls, a mount, 2 deletes.
    assert!(
        receiver.wait_for(Duration::from_secs(30), |d| {
            d.iter().filter(|d| d.path == "/dist").count() >= 8
                && d.iter().filter(|d| d.path == "/ce").count() >= 5
        }),
        "deliveries: {:#?}\nlogs: {}",
        receiver.deliveries(),
        server.logs().join("\n")
    );
    std::thread::sleep(Duration::from_millis(500)); // nothing more comes
    let deliveries = receiver.deliveries();
    let events = distribution_events(&deliveries, "/dist");
    assert_eq!(events.len(), 8, "{events:#?}");
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 8, "every event has its own id");

    for bytes in [&config_blob, &layer] {
        let e = find(&events, "push", &digest(bytes));
        check_common(e, &server, "PUT");
        check_blob_target(e, &server, repo, bytes);
    }

    let e = find(&events, "push", &md);
    check_common(e, &server, "PUT");
    let t = &e["target"];
    assert_eq!(t["mediaType"], OCI_MANIFEST);
    assert_eq!(t["size"], manifest.len());
    assert_eq!(t["length"], manifest.len());
    assert_eq!(t["repository"], repo);
    assert_eq!(t["tag"], "v1");
    assert_eq!(
        t["url"],
        format!("http://{}/v2/{repo}/manifests/{md}", server.addr())
    );

    let e = find(&events, "pull", &md);
    check_common(e, &server, "GET");
    assert_eq!(e["request"]["id"], "req-42");
    assert_eq!(e["request"]["useragent"], "notify-test/1.0");
    assert_eq!(e["target"]["mediaType"], OCI_MANIFEST);
    assert_eq!(e["target"]["size"], manifest.len());
    assert_eq!(e["target"]["tag"], "v1");

    let e = find(&events, "pull", &ld);
    check_common(e, &server, "GET");
    check_blob_target(e, &server, repo, &layer);

    let e = find(&events, "mount", &ld);
    check_common(e, &server, "POST");
    check_blob_target(e, &server, other, &layer);
    assert_eq!(e["target"]["fromRepository"], repo);

    // Deletes: only the digest and the repository.
    for (d, r) in [(&md, repo), (&ld, other)] {
        let e = find(&events, "delete", d);
        check_common(e, &server, "DELETE");
        let keys: Vec<&String> = e["target"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["digest", "repository"]);
        assert_eq!(e["target"]["repository"], r);
    }

    // ce: only team/app, no deletes, one structured CloudEvent per request.
    let ce: Vec<&Delivery> = deliveries.iter().filter(|d| d.path == "/ce").collect();
    assert_eq!(ce.len(), 5, "{ce:#?}");
    for d in ce {
        assert_eq!(d.headers["content-type"], "application/cloudevents+json");
        assert!(!d.headers.contains_key("x-registry-signature-256"));
        let v = d.json();
        assert_eq!(v["specversion"], "1.0");
        let data = &v["data"];
        assert_eq!(data["target"]["repository"], repo);
        assert_eq!(v["id"], data["id"]);
        assert!(ids.contains(v["id"].as_str().unwrap()), "the same event id");
        assert_eq!(
            v["type"],
            format!(
                "org.distribution.registry.{}",
                data["action"].as_str().unwrap()
            )
        );
        assert_eq!(v["time"], data["timestamp"]);
        assert_eq!(v["source"], format!("//{}/v2/{repo}", server.addr()));
        assert!(v["subject"].is_string());
    }
    // The outbox is empty once everything is delivered.
    let pending = server.storage().join("_registry/events/dist/pending");
    let left = std::fs::read_dir(&pending).map_or(0, |d| d.count());
    assert_eq!(left, 0, "outbox {} emptied", pending.display());
}

#[test]
fn events_that_exhaust_their_attempts_become_dead_letters() {
    // Nothing listens there: every attempt fails.
    let down = common::receiver::free_addr();
    let server = serve_with_config(&format!(
        r#"
[[notifications.endpoints]]
name = "down"
url = "http://{down}/hook"
timeout = "1s"
backoff = "10ms"
maxbackoff = "10ms"
attempts = 2
"#
    ));
    let c = Client::new(&server);
    let d = c.push_blob("dead/letters", b"never delivered");
    let dead = server.storage().join("_registry/events/down/dead");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let names: Vec<String> = std::fs::read_dir(&dead)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() || std::time::Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(letters.len(), 1, "{}", server.logs().join("\n"));
    let letter: Value =
        serde_json::from_slice(&std::fs::read(dead.join(&letters[0])).unwrap()).unwrap();
    assert_eq!(letter["id"], letters[0].as_str());
    assert_eq!(letter["target"]["digest"], d);
    let pending = server.storage().join("_registry/events/down/pending");
    assert_eq!(std::fs::read_dir(&pending).map_or(0, |d| d.count()), 0);
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("exhausted its attempts")),
        "logged"
    );
    // The endpoint's numbers on /metrics.
    let scrape = c.get("/metrics", &[]);
    assert_eq!(scrape.status, 200);
    let text = String::from_utf8_lossy(&scrape.body).into_owned();
    let value = |name: &str| -> u64 {
        let prefix = format!("{name}{{endpoint=\"down\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("registry_notifications_dead_letters_total"), 1);
    assert!(value("registry_notifications_failed_total") >= 2);
    assert_eq!(value("registry_notifications_delivered_total"), 0);
    // As the outbox was when this process last looked: present, not exact.
    value("registry_notifications_pending");
}

#[test]
fn bad_endpoints_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[[notifications.endpoints]]\nname = \"x\"\nurl = \"ftp://nowhere/\"\n",
    );
    let out = common::process::serve_in(dir.path(), &["--config", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an http(s) URL"), "{err}");
}

#[test]
fn a_push_whose_event_cannot_be_recorded_is_answered_500_and_its_retry_records_it() {
    let receiver = Receiver::start();
    let server = serve_with_config(&format!(
        "[[notifications.endpoints]]\nname = \"ci\"\nurl = \"{}\"\n",
        receiver.url("/ci")
    ));
    let c = Client::new(&server);
    // A file where the outbox folder belongs: every event write fails.
    let pending = server.storage().join("_registry/events/ci/pending");
    std::fs::create_dir_all(pending.parent().unwrap()).unwrap();
    std::fs::write(&pending, b"in the way").unwrap();
    let blob = b"an event that cannot be written";
    let d = digest(blob);
    let r = c.post(&format!("/v2/a/b/blobs/uploads/?digest={d}"), &[], blob);
    r.assert_error(500, "UNKNOWN");
    std::fs::remove_file(&pending).unwrap();
    let r = c.post(&format!("/v2/a/b/blobs/uploads/?digest={d}"), &[], blob);
    assert_eq!(r.status, 201);
    assert!(
        receiver.wait_for(Duration::from_secs(20), |got| !got.is_empty()),
        "{}",
        server.logs().join("\n")
    );
    let events: Vec<Value> = receiver
        .deliveries()
        .iter()
        .flat_map(|d| d.json()["events"].as_array().unwrap().clone())
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["target"]["digest"], d);
}
