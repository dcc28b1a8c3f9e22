//! Configuration observed end to end on the real process: the defaults, and
//! flag > environment > config file precedence.
//!
//! The default listen address (127.0.0.1:5000) may be taken on a test
//! machine, so it is covered by the unit tests of `src/server/config.rs`;
//! every process here listens on port 0.

mod common;

use common::http::Client;
use common::process::TestServer;
use registry_testkit::content::{
    DOCKER_MANIFEST, OCI_MANIFEST, blob_data_path, digest, image_manifest,
};

#[test]
fn defaults_store_in_data_under_the_working_directory() {
    let server = TestServer::launch().without_storage_flag().start();
    let start = server.wait_for_log(|l| l.contains("listening on")).unwrap();
    assert!(
        start.contains(&format!("registry {}", env!("CARGO_PKG_VERSION"))),
        "{start}"
    );
    assert!(start.contains("storage=fs://data"), "{start}");
    assert!(start.contains("listen=127.0.0.1:0"), "{start}");

    let client = Client::new(&server);
    let d = client.push_blob("library/hello", b"hello, default storage");
    let path = blob_data_path(&server.dir().join("data"), &d);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello, default storage");
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let file_store = dir.path().join("file-store");
    let env_store = dir.path().join("env-store");
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:9\"\nstorage = \"fs://{}\"\nlog_level = \"debug\"\nmanifest_max_size = 300\n",
            file_store.display()
        ),
    )
    .unwrap();
    let server = TestServer::launch()
        .without_storage_flag()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .env("REGISTRY_STORAGE", format!("fs://{}", env_store.display()))
        .env("REGISTRY_LOG", "info")
        .in_dir(dir)
        .start();

    // listen: the flag (port 0) beat the file (port 9).
    assert_ne!(server.addr().port(), 9);
    // storage: the environment beat the file.
    let client = Client::new(&server);
    let d = client.push_blob("precedence", b"where does this go?");
    assert!(blob_data_path(&env_store, &d).exists());
    assert!(!file_store.exists());
    // manifest_max_size: only the file sets it.
    let big = image_manifest(
        b"{}",
        &[&[b'x'; 400][..]],
        Some("application/vnd.example+type"),
        None,
    );
    assert!(big.len() > 300);
    client.push_blob("precedence", b"{}");
    client.push_blob("precedence", &[b'x'; 400]);
    let put = client.put_manifest("precedence", "big", OCI_MANIFEST, &big);
    assert_eq!(put.status, 413, "{put:?}");
    // log_level: the environment (info) beat the file (debug).
    assert!(
        server.logs().iter().all(|l| !l.contains("DEBUG")),
        "{:#?}",
        server.logs()
    );
}

#[test]
fn config_file_supplies_storage_while_the_flag_supplies_listen() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        "storage = \"fs://from-file\"\nlisten = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    let server = TestServer::launch()
        .without_storage_flag()
        .env("REGISTRY_CONFIG", config.to_str().unwrap())
        .in_dir(dir)
        .start();
    assert_ne!(server.addr().port(), 9);
    let d = Client::new(&server).push_blob("from/file", b"relative to the working directory");
    assert!(blob_data_path(&server.dir().join("from-file"), &d).exists());
    assert!(!server.dir().join("data").exists());
}

#[test]
fn manifest_max_size_flag_beats_environment() {
    let server = TestServer::launch()
        .arg("--manifest-max-size=100000")
        .env("REGISTRY_MANIFEST_MAX_SIZE", "10")
        .start();
    let client = Client::new(&server);
    let config = b"{\"architecture\":\"amd64\"}";
    client.push_blob("sized", config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": digest(config) },
        "layers": []
    }))
    .unwrap();
    let put = client.put_manifest("sized", "v1", DOCKER_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "{put:?}");
}

/// A Docker manifest whose one layer is foreign, absent from the registry,
/// and fetched from `url`.
fn foreign_layer_manifest(client: &Client, repo: &str, url: &str) -> Vec<u8> {
    let config = b"{\"architecture\":\"amd64\"}";
    client.push_blob(repo, config);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": digest(config) },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 7,
            "digest": digest(b"foreign"),
            "urls": [url],
        }]
    }))
    .unwrap()
}

#[test]
fn foreign_layer_urls_follow_the_allow_and_deny_settings() {
    // Default: no URL is accepted.
    let server = TestServer::start();
    let client = Client::new(&server);
    let m = foreign_layer_manifest(&client, "win", "https://example.com/l.tar.gz");
    client
        .put_manifest("win", "v1", DOCKER_MANIFEST, &m)
        .assert_error(400, "MANIFEST_INVALID");
    drop(server);

    // The file allows example.com; the flag's deny list replaces none of it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        "manifest_urls_allow = [\"^https://example\\\\.com/\", \"^https://mirror\\\\.example\\\\.org/\"]\n",
    )
    .unwrap();
    let server = TestServer::launch()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .arg("--manifest-urls-deny=/private/")
        .start();
    let client = Client::new(&server);
    for (url, status) in [
        ("https://example.com/l.tar.gz", 201),
        ("https://mirror.example.org/l.tar.gz", 201),
        ("https://example.com/private/l.tar.gz", 400),
        ("https://elsewhere.example/l.tar.gz", 400),
    ] {
        let m = foreign_layer_manifest(&client, "win", url);
        let put = client.put_manifest("win", "v1", DOCKER_MANIFEST, &m);
        assert_eq!(put.status, status, "{url}: {put:?}");
    }
    drop(server);

    // An invalid pattern is a start-up error naming it.
    let out = common::process::run(&["serve", "--manifest-urls-allow", "(unclosed"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid regular expression"),
        "{out:?}"
    );
}
