//! The pull-through mirror of the real binary (docs/MIRROR.md), against a
//! real upstream: another `registry serve` process, with the built-in token
//! issuer (the Docker Hub flow: 401 with a Bearer challenge, then a token
//! request with the mirror's basic credentials) or plain. Pulls by prefix
//! and by `?ns=`, `OCI-Namespace`, pushes refused under the prefix, the
//! upstream stopped or rate limited (the stored copy is served), a corrupt
//! upstream blob (refused, nothing stored, fetched again later), and the
//! default mirror for plain names.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::eventually;
use common::http::Client;
use common::process::TestServer;
use common::raw;
use registry_testkit::content::{OCI_MANIFEST, blob_data_path, digest, image_manifest};
use tempfile::TempDir;

const ACCEPT: (&str, &str) = ("accept", OCI_MANIFEST);

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn htpasswd(dir: &Path, user: &str, password: &str) -> String {
    let hash = bcrypt::hash(password, 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    write(dir, "htpasswd", &format!("{user}:{hash}\n"))
}

/// An image of a config and one layer of `layer_len` bytes made from `seed`.
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(seed: &str, layer_len: usize) -> Image {
        let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
        let layer: Vec<u8> = seed.bytes().cycle().take(layer_len).collect();
        let manifest = image_manifest(&config, &[&layer], None, None);
        Image {
            config,
            layer,
            manifest,
        }
    }

    fn push(&self, c: &Client, repo: &str, tag: &str) {
        c.push_blob(repo, &self.config);
        c.push_blob(repo, &self.layer);
        let r = c.put_manifest(repo, tag, OCI_MANIFEST, &self.manifest);
        assert_eq!(r.status, 201, "{r:?}");
    }
}

/// A plain upstream with `images` pushed, as (repository, tag, image).
fn upstream_with(images: &[(&str, &str, &Image)], args: &[&str]) -> TestServer {
    let server = TestServer::start();
    let c = Client::new(&server);
    for (repo, tag, image) in images {
        image.push(&c, repo, tag);
    }
    if args.is_empty() {
        return server;
    }
    // Restart on the same directory with the options (auth, limits).
    let stopped = server.stop();
    let mut launch = TestServer::launch().in_dir(stopped.dir);
    for a in args {
        launch = launch.arg(*a);
    }
    launch.start()
}

fn mirror(dir: TempDir, config: &str) -> TestServer {
    let file = write(dir.path(), "registry.toml", config);
    TestServer::launch()
        .in_dir(dir)
        .arg("--config")
        .arg(file)
        .start()
}

/// The value of an unlabelled metric on `/metrics`.
fn metric(c: &Client, name: &str) -> u64 {
    let text = c.get("/metrics", &[]).text();
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name || n == format!("{name}_total")).then(|| v.trim().parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}")) as u64
}

#[test]
fn pulls_through_a_token_upstream_by_prefix_and_ns() {
    let image = Image::new("token", 300_000);
    let dir = TempDir::new().unwrap();
    let users = htpasswd(dir.path(), "mirror", "mirror-pw");
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth/issuer-ec.key");
    let rules = write(
        dir.path(),
        "upstream.toml",
        "[[auth.rules]]\nrepository = \"team/**\"\nusers = [\"mirror\"]\nactions = [\"pull\"]\n",
    );
    let up = upstream_with(
        &[("team/app", "v1", &image)],
        &[
            "--auth",
            "token",
            "--htpasswd",
            &users,
            "--token-issuer-key",
            key.to_str().unwrap(),
            "--config",
            &rules,
        ],
    );
    // The upstream wants a token: anonymous pulls are refused.
    let direct = Client::new(&up).get("/v2/team/app/manifests/v1", &[ACCEPT]);
    assert_eq!(direct.status, 401, "{direct:?}");
    assert!(direct.must("www-authenticate").starts_with("Bearer "));

    let mdir = TempDir::new().unwrap();
    let password = write(mdir.path(), "password", "mirror-pw\n");
    let m = mirror(
        mdir,
        &format!(
            r#"
[[mirrors]]
prefix = "up"
namespaces = ["upstream.example:5000"]
revalidate_after = "1s"
[[mirrors.upstreams]]
url = "{}"
username = "mirror"
password_file = "{password}"
"#,
            up.url("")
        ),
    );
    let c = Client::new(&m);
    let mdigest = digest(&image.manifest);

    // By prefix: the manifest, then its blobs, byte for byte.
    let r = c.get("/v2/up/team/app/manifests/v1", &[ACCEPT]);
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    assert_eq!(r.body, image.manifest);
    assert_eq!(r.must("docker-content-digest"), mdigest);
    assert!(!r.has("oci-namespace"), "no ns, no echo");
    for blob in [&image.config, &image.layer] {
        let r = c.get(&format!("/v2/up/team/app/blobs/{}", digest(blob)), &[]);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body == *blob, "blob bytes differ");
        let stored = blob_data_path(&m.storage(), &digest(blob));
        // Stored (and counted) just after the client has the last byte:
        // the store tells the mirror the bytes verified before its commit.
        eventually(10, "stored verified", || {
            std::fs::read(&stored).is_ok_and(|b| b == *blob)
        });
    }
    eventually(10, "two blob fetches", || {
        metric(&c, "registry_mirror_blob_fetches") == 2
    });
    assert_eq!(metric(&c, "registry_mirror_manifest_fetches"), 1);

    // By ns (containerd's hosts.toml mirrors): the same repository, and
    // the ns echoed.
    let r = c.get(
        "/v2/team/app/manifests/v1?ns=upstream.example:5000",
        &[ACCEPT],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.must("docker-content-digest"), mdigest);
    assert_eq!(r.header("oci-namespace"), Some("upstream.example:5000"));
    let r = c.get(
        &format!(
            "/v2/team/app/blobs/{}?ns=upstream.example:5000",
            digest(&image.layer)
        ),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        metric(&c, "registry_mirror_blob_fetches"),
        2,
        "served from the store"
    );
    // An ns that is no mirror's is ignored, never dialled.
    let r = c.get("/v2/team/app/manifests/v1?ns=evil.example", &[ACCEPT]);
    assert_eq!(r.status, 404, "{r:?}");
    assert!(!r.has("oci-namespace"));

    // Pushes and deletes under the prefix are refused; elsewhere the
    // registry is an ordinary one.
    c.post("/v2/up/team/app/blobs/uploads/", &[], b"")
        .assert_error(403, "DENIED");
    c.delete(&format!("/v2/up/team/app/manifests/{mdigest}"))
        .assert_error(403, "DENIED");
    c.push_image("local/app", "v1", "local");

    // The upstream stopped: what is stored still pulls, by tag (after its
    // interval: the stale copy, counted) and by digest; what is not fails
    // at once with the spec's error.
    drop(up);
    std::thread::sleep(Duration::from_millis(1100));
    let r = c.get("/v2/up/team/app/manifests/v1", &[ACCEPT]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.must("docker-content-digest"), mdigest);
    assert_eq!(metric(&c, "registry_mirror_stale_served"), 1);
    let r = c.get(&format!("/v2/up/team/app/manifests/{mdigest}"), &[ACCEPT]);
    assert_eq!(r.status, 200);
    let started = Instant::now();
    c.get("/v2/up/team/app/manifests/v2", &[ACCEPT])
        .assert_error(503, "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_rate_limited_upstream_leaves_the_stored_copy_served() {
    let image = Image::new("limited", 1000);
    let up = upstream_with(
        &[("app", "v1", &image)],
        &["--rate-limit", "1", "--rate-limit-burst", "3"],
    );
    let mdir = TempDir::new().unwrap();
    let m = mirror(
        mdir,
        &format!(
            "[[mirrors]]\nprefix = \"up\"\nrevalidate_after = \"1s\"\n[[mirrors.upstreams]]\nurl = \"{}\"\n",
            up.url("")
        ),
    );
    let c = Client::new(&m);
    std::thread::sleep(Duration::from_secs(3)); // the bucket refills
    let r = c.get("/v2/up/app/manifests/v1", &[ACCEPT]);
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    std::thread::sleep(Duration::from_millis(1100));
    // Drain the upstream's bucket for 127.0.0.1 (the mirror's address too).
    let direct = Client::new(&up);
    let refused = (0..20).any(|_| direct.get("/v2/", &[]).status == 429);
    assert!(refused, "the upstream never answered 429");
    let r = c.get("/v2/up/app/manifests/v1", &[ACCEPT]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, image.manifest);
    assert_eq!(metric(&c, "registry_mirror_stale_served"), 1);
    assert!(metric(&c, "registry_mirror_upstream_errors") >= 1);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let image = Image::new("corrupt", 200_000);
    let up = upstream_with(&[("app", "v1", &image)], &[]);
    let layer = digest(&image.layer);
    let file = blob_data_path(&up.storage(), &layer);
    // Other bytes of the same length under the layer's digest: the
    // upstream serves them as they are.
    let bad = vec![b'x'; image.layer.len()];
    std::fs::write(&file, &bad).unwrap();

    let m = mirror(
        TempDir::new().unwrap(),
        &format!(
            "[[mirrors]]\nprefix = \"up\"\n[[mirrors.upstreams]]\nurl = \"{}\"\n",
            up.url("")
        ),
    );
    let c = Client::new(&m);
    assert_eq!(c.get("/v2/up/app/manifests/v1", &[ACCEPT]).status, 200);
    let get = raw::request("GET", &format!("/v2/up/app/blobs/{layer}"), &[], b"");
    // The body is cut short (the last chunk is held until the store
    // verified the digest): the client never has all of wrong bytes.
    match raw::exchange(m.addr(), &get, false) {
        None => {}
        Some(r) => assert!(
            r.status != 200,
            "a complete 200 for bytes that do not match: {} bytes",
            r.body.len()
        ),
    }
    assert!(
        !blob_data_path(&m.storage(), &layer).exists(),
        "nothing stored"
    );
    assert_eq!(metric(&c, "registry_mirror_rejected"), 1);
    assert_eq!(metric(&c, "registry_mirror_blob_fetches"), 0);

    // The upstream repaired: the next pull fetches again, verified.
    std::fs::write(&file, &image.layer).unwrap();
    let r = c.get(&format!("/v2/up/app/blobs/{layer}"), &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == image.layer);
    eventually(10, "one blob fetch", || {
        metric(&c, "registry_mirror_blob_fetches") == 1
    });
}

#[test]
fn the_default_mirror_serves_names_the_store_lacks() {
    let image = Image::new("default", 5000);
    let up = upstream_with(&[("library/alpine", "3", &image)], &[]);
    let m = mirror(
        TempDir::new().unwrap(),
        &format!(
            "[[mirrors]]\nprefix = \"docker.io\"\ndefault = true\n[[mirrors.upstreams]]\nurl = \"{}\"\n",
            up.url("")
        ),
    );
    let c = Client::new(&m);
    // The Docker engine's registry-mirrors: plain names, no prefix, no ns;
    // and Docker Hub's one-word names are library/ names.
    for path in [
        "/v2/library/alpine/manifests/3",
        "/v2/docker.io/alpine/manifests/3",
        "/v2/docker.io/library/alpine/manifests/3",
    ] {
        let r = c.get(path, &[ACCEPT]);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.body, image.manifest, "{path}");
    }
    let r = c.get(
        &format!("/v2/library/alpine/blobs/{}", digest(&image.layer)),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        metric(&c, "registry_mirror_manifest_fetches"),
        1,
        "one copy"
    );
    let tags = c.get("/v2/docker.io/library/alpine/tags/list", &[]).json();
    assert_eq!(tags["tags"], serde_json::json!(["3"]));
    // A local repository is served as it is, never looked up upstream.
    c.push_image("team/app", "v1", "local");
    assert_eq!(c.get("/v2/team/app/manifests/v1", &[ACCEPT]).status, 200);
    let before = metric(&c, "registry_mirror_manifest_fetches");
    c.get("/v2/team/app/manifests/v1", &[ACCEPT]);
    assert_eq!(metric(&c, "registry_mirror_manifest_fetches"), before);
    // What neither has is unknown.
    c.get("/v2/nothing/here/manifests/1", &[ACCEPT])
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn cached_images_expire_through_retention_and_are_fetched_again() {
    let (old, used) = (Image::new("old", 4000), Image::new("used", 4000));
    let up = upstream_with(&[("app", "old", &old), ("app", "used", &used)], &[]);
    let config = format!(
        r#"
[[mirrors]]
prefix = "up"
[[mirrors.upstreams]]
url = "{}"

# What was not pulled lately goes; a blob another image uses stays.
[[gc_retention]]
repositories = "up/**"
tags_older_than = "1s"
keep_pulled_within = "3s"
untagged_older_than = "1s"
"#,
        up.url("")
    );
    let m = mirror(TempDir::new().unwrap(), &config);
    let c = Client::new(&m);
    let pull = |tag: &str, image: &Image| {
        let r = c.get(&format!("/v2/up/app/manifests/{tag}"), &[ACCEPT]);
        assert_eq!(r.status, 200, "{tag}: {r:?}");
        for blob in [&image.config, &image.layer] {
            let r = c.get(&format!("/v2/up/app/blobs/{}", digest(blob)), &[]);
            assert_eq!(r.status, 200, "{tag}");
        }
    };
    pull("old", &old);
    std::thread::sleep(Duration::from_secs(4));
    pull("used", &used);
    // Past tags_older_than (so the rule looks at it) and within
    // keep_pulled_within; the pull record is written in the background.
    std::thread::sleep(Duration::from_millis(1500));

    let out = common::process::run_in(
        m.dir(),
        &[
            "gc",
            "--storage",
            "fs://data",
            "--grace",
            "0s",
            "--config",
            "registry.toml",
            "--commit",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("removed tag up/app:old -> "), "{text}");
    assert!(text.contains("kept tag up/app:used -> "), "{text}");
    let stored = |b: &[u8]| blob_data_path(&m.storage(), &digest(b)).exists();
    assert!(!stored(&old.layer), "the expired image's layer is gone");
    assert!(stored(&used.layer) && stored(&used.config), "{text}");

    // Pulled again, it is fetched again.
    let before = metric(&c, "registry_mirror_blob_fetches");
    pull("old", &old);
    eventually(10, "two more blob fetches, stored", || {
        metric(&c, "registry_mirror_blob_fetches") == before + 2 && stored(&old.layer)
    });
}
