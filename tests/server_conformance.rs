//! The endpoint suite (`registry_testkit::suite`: every endpoint of the OCI
//! distribution spec v1.1.1, end-1 to end-13), over real HTTP against the
//! real `registry` process on filesystem storage in a temporary directory:
//! our stand-in for the OCI conformance suite. `registry-http`'s
//! `tests/endpoints.rs` runs the same suite through `Router::handle`.
//!
//! Each test starts its own server, so they are independent and run in
//! parallel.

mod common;

use common::http::{Client, Served};
use common::process::TestServer;
use registry_testkit::content::{OCI_MANIFEST, image_manifest};
use serde_json::json;

registry_testkit::endpoint_suite!(Served::client());

#[test]
fn error_manifest_too_large_is_413() {
    let server = TestServer::launch().arg("--manifest-max-size=1024").start();
    let client = Client::new(&server);
    let config = b"{}".to_vec();
    client.push_blob("errors/large", &config);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image_manifest(&config, &[], None, None)).unwrap();
    manifest["annotations"] = json!({ "padding": "x".repeat(2000) });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let put = client.put_manifest("errors/large", "v1", OCI_MANIFEST, &bytes);
    put.assert_error(413, "MANIFEST_INVALID");
}
