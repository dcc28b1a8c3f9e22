//! Hostile requests against the real server on filesystem storage: path
//! traversal through names, tags, digests, upload ids and URL encodings;
//! bad digests; forged and reused upload ids; malformed `Content-Range` and
//! `Range`; bodies longer or shorter than their `Content-Length`; huge,
//! deeply nested and self-referencing manifests.
//!
//! Each case asserts the exact status and error code, and that nothing in
//! the server's directory changed (files and sizes, upload sessions aside)
//! — the storage root is nested two levels down so that a write that
//! escaped it would show too. Requests go over a raw socket, byte for
//! byte, so that nothing is normalised or refused by a client library.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::http::Client;
use common::process::TestServer;
use common::raw::{self, RawResponse};
use registry_testkit::content::{OCI_INDEX, OCI_MANIFEST, digest, image_manifest};

/// `path -> size` of every file under `root`, upload sessions left out.
fn snapshot(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.split('/').any(|c| c == "_uploads") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, meta.len());
            }
        }
    }
    out
}

const D_EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What the server should answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status and OCI error code.
    Error(u16, &'static str),
    /// This status, without an OCI body (hyper's own answers to requests it
    /// cannot parse).
    Bare(u16),
    /// This status, success.
    Ok(u16),
}

struct Case {
    name: &'static str,
    /// The raw request; `{upload}` is replaced by the path of a fresh
    /// upload session of `adv/repo`, `{done}` by that of a finished one.
    request: Vec<u8>,
    /// Close the sending side after the request.
    half_close: bool,
    expect: Expect,
}

fn case(name: &'static str, request: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        request,
        half_close: false,
        expect,
    }
}

fn get(target: &str) -> Vec<u8> {
    raw::request("GET", target, &[], b"")
}

fn put(target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    raw::request("PUT", target, headers, body)
}

fn patch(target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    raw::request("PATCH", target, headers, body)
}

fn post(target: &str) -> Vec<u8> {
    raw::request("POST", target, &[], b"")
}

fn cases(layer_digest: &str) -> Vec<Case> {
    use Expect::*;
    let blob = b"some blob bytes".as_slice();
    let d_blob = digest(blob);
    let manifest_put = |reference: &str, body: &[u8], media_type: &str| {
        put(
            &format!("/v2/adv/repo/manifests/{reference}"),
            &[("Content-Type", media_type)],
            body,
        )
    };
    let deep = {
        let mut v = b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"annotations\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 100_000));
        v.extend(std::iter::repeat_n(b']', 100_000));
        v.push(b'}');
        v
    };
    let deep_object = {
        let mut v = b"{\"schemaVersion\":2,\"config\":".to_vec();
        for _ in 0..10_000 {
            v.extend_from_slice(b"{\"a\":");
        }
        v.push(b'1');
        v.extend(std::iter::repeat_n(b'}', 10_001));
        v
    };
    // An index that lists, as its only child, the digest it is pushed
    // under: a manifest cannot contain its own digest, so the URL's digest
    // never matches the content, and under a tag the child is unknown.
    let self_digest = digest(b"placeholder");
    let self_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_INDEX, "digest": self_digest, "size": 2 }],
    }))
    .unwrap();
    let self_subject = image_manifest(
        b"{}",
        &[],
        None,
        Some(serde_json::json!({ "mediaType": OCI_MANIFEST, "digest": self_digest, "size": 2 })),
    );
    let huge = vec![b' '; 5 << 20];
    // Body longer than declared: the server reads 5 bytes ("hello"), whose
    // digest is not the one given, and the rest is a malformed next request.
    let mut long_body = raw::request(
        "POST",
        &format!(
            "/v2/adv/repo/blobs/uploads/?digest={}",
            digest(b"helloEXTRA")
        ),
        &[("Content-Length", "5")],
        b"",
    );
    long_body.extend_from_slice(b"helloEXTRA");
    // Body shorter than declared: 5 of 100 bytes, then the client closes
    // its side.
    let mut short_body = put(
        &format!("{{upload}}?digest={d_blob}"),
        &[("Content-Length", "100")],
        b"",
    );
    short_body.extend_from_slice(b"hello");
    let short_put = {
        let mut r = raw::request(
            "POST",
            &format!("/v2/adv/repo/blobs/uploads/?digest={d_blob}"),
            &[("Content-Length", "100")],
            b"",
        );
        r.extend_from_slice(&blob[..5]);
        r
    };

    vec![
        // --- Path traversal through repository names.
        case(
            "name ..",
            get("/v2/../../../etc/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name a/../b",
            get("/v2/a/../b/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name %2e%2e",
            get("/v2/%2e%2e/%2e%2e/etc/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name %2E%2E upper",
            get("/v2/a/%2E%2E/b/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name %2f",
            get("/v2/a%2f..%2f..%2fb/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name absolute",
            get("/v2//etc/passwd/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name %00",
            get("/v2/a%00b/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "name invalid %-encoding",
            get("/v2/a%zz/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case("name raw NUL", get("/v2/a\0b/tags/list"), Bare(400)),
        case(
            "NUL in a header",
            raw::request("GET", "/v2/", &[("X-Evil", "a\0b")], b""),
            Bare(400),
        ),
        case(
            "name backslash",
            get("/v2/a\\..\\b/tags/list"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "push to name ..",
            post("/v2/adv/../../x/blobs/uploads/"),
            Error(400, "NAME_INVALID"),
        ),
        case(
            "manifest push to name %2e%2e",
            put(
                "/v2/%2e%2e/manifests/t",
                &[("Content-Type", OCI_MANIFEST)],
                b"{}",
            ),
            Error(400, "NAME_INVALID"),
        ),
        // --- Tags.
        case(
            "tag ..",
            manifest_put("..", b"{}", OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
        case(
            "tag %2e%2e%2f",
            manifest_put("%2e%2e%2f%2e%2e%2fx", b"{}", OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
        case(
            "tag with %00",
            manifest_put("t%00x", b"{}", OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
        case(
            "read tag ..",
            get("/v2/adv/repo/manifests/.."),
            Error(404, "MANIFEST_UNKNOWN"),
        ),
        case(
            "read tag %2f",
            get("/v2/adv/repo/manifests/..%2f..%2flink"),
            Error(404, "MANIFEST_UNKNOWN"),
        ),
        // --- Digests.
        case(
            "digest traversal",
            get("/v2/adv/repo/blobs/sha256:..%2f..%2f..%2fetc"),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "digest with /",
            get("/v2/adv/repo/blobs/sha256:../../data"),
            Error(404, "UNSUPPORTED"),
        ),
        case(
            "digest truncated",
            get("/v2/adv/repo/blobs/sha256:e3b0c44298fc"),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "digest upper-case",
            get(&format!(
                "/v2/adv/repo/blobs/{}",
                D_EMPTY.to_ascii_uppercase()
            )),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "digest upper-case hex",
            get(&format!(
                "/v2/adv/repo/blobs/sha256:{}",
                D_EMPTY[7..].to_ascii_uppercase()
            )),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "digest unknown algorithm",
            get(&format!("/v2/adv/repo/blobs/md5:{}", &D_EMPTY[7..39])),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "digest with NUL",
            get(&format!(
                "/v2/adv/repo/blobs/{}%00",
                &D_EMPTY[..D_EMPTY.len() - 1]
            )),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "wrong digest on finish",
            put(
                &format!("{{upload}}?digest={}", digest(b"other")),
                &[],
                blob,
            ),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "truncated digest on finish",
            put("{upload}?digest=sha256:abc", &[], blob),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "upper-case digest on finish",
            put(
                &format!("{{upload}}?digest={}", d_blob.to_ascii_uppercase()),
                &[],
                blob,
            ),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "unknown algorithm on finish",
            put(
                &format!("{{upload}}?digest=sha1:{}", &d_blob[7..47]),
                &[],
                blob,
            ),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "PUT on the uploads collection",
            put(
                "/v2/adv/repo/blobs/uploads/?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
                &[],
                blob,
            ),
            Error(405, "UNSUPPORTED"),
        ),
        case(
            "wrong digest on monolithic POST",
            raw::request(
                "POST",
                &format!("/v2/adv/repo/blobs/uploads/?digest={}", digest(b"other")),
                &[],
                blob,
            ),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "manifest under a digest that is not its own",
            manifest_put(
                layer_digest,
                &image_manifest(b"{}", &[], None, None),
                OCI_MANIFEST,
            ),
            Error(400, "DIGEST_INVALID"),
        ),
        // --- Upload ids.
        case(
            "forged upload id",
            patch(
                "/v2/adv/repo/blobs/uploads/0123456789abcdef0123456789abcdef",
                &[],
                blob,
            ),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "forged upload id, finish",
            put(
                &format!(
                    "/v2/adv/repo/blobs/uploads/0123456789abcdef0123456789abcdef?digest={d_blob}"
                ),
                &[],
                blob,
            ),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "upload id traversal",
            patch("/v2/adv/repo/blobs/uploads/..%2f..%2f..%2fx", &[], blob),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "upload id ..",
            patch("/v2/adv/repo/blobs/uploads/..", &[], blob),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "upload id with NUL",
            patch(
                "/v2/adv/repo/blobs/uploads/0123456789abcdef%000123",
                &[],
                blob,
            ),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "reused upload id",
            put(&format!("{{done}}?digest={d_blob}"), &[], blob),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        case(
            "upload id of another repository",
            get("{upload}"),
            Error(404, "BLOB_UPLOAD_UNKNOWN"),
        ),
        // --- Content-Range and Range.
        case(
            "Content-Range not from 0",
            patch("{upload}", &[("Content-Range", "5-19")], blob),
            Error(416, "BLOB_UPLOAD_INVALID"),
        ),
        case(
            "Content-Range end before start",
            patch("{upload}", &[("Content-Range", "10-2")], blob),
            Error(400, "BLOB_UPLOAD_INVALID"),
        ),
        case(
            "Content-Range not numbers",
            patch("{upload}", &[("Content-Range", "a-b")], blob),
            Error(400, "BLOB_UPLOAD_INVALID"),
        ),
        case(
            "Content-Range bytes= form is tolerated",
            patch("{upload}", &[("Content-Range", "bytes=0-14")], blob),
            Ok(202),
        ),
        case(
            "Content-Range length mismatch",
            patch("{upload}", &[("Content-Range", "0-99")], blob),
            Error(400, "SIZE_INVALID"),
        ),
        case(
            "Content-Range overflow",
            patch(
                "{upload}",
                &[("Content-Range", "0-99999999999999999999999")],
                blob,
            ),
            Error(400, "BLOB_UPLOAD_INVALID"),
        ),
        case(
            "Range beyond the end",
            raw::request(
                "GET",
                &format!("/v2/adv/repo/blobs/{layer_digest}"),
                &[("Range", "bytes=1000-2000")],
                b"",
            ),
            Error(416, "BLOB_UPLOAD_INVALID"),
        ),
        case(
            "Range malformed is ignored",
            raw::request(
                "GET",
                &format!("/v2/adv/repo/blobs/{layer_digest}"),
                &[("Range", "bytes=abc")],
                b"",
            ),
            Ok(200),
        ),
        case(
            "Range overflow is ignored",
            raw::request(
                "GET",
                &format!("/v2/adv/repo/blobs/{layer_digest}"),
                &[("Range", "bytes=0-99999999999999999999999")],
                b"",
            ),
            Ok(200),
        ),
        // --- Bodies and their Content-Length.
        case(
            "body longer than Content-Length",
            long_body,
            Error(400, "DIGEST_INVALID"),
        ),
        Case {
            name: "body shorter than Content-Length (finish)",
            request: short_body,
            half_close: true,
            expect: Error(400, "SIZE_INVALID"),
        },
        Case {
            name: "body shorter than Content-Length (monolithic)",
            request: short_put,
            half_close: true,
            expect: Error(400, "SIZE_INVALID"),
        },
        case(
            "two Content-Lengths",
            put(
                &format!("{{upload}}?digest={d_blob}"),
                &[("Content-Length", "3"), ("Content-Length", "4")],
                b"abcd",
            ),
            Bare(400),
        ),
        case(
            "negative Content-Length",
            patch("{upload}", &[("Content-Length", "-1")], b""),
            Bare(400),
        ),
        // --- Manifests.
        case(
            "huge manifest",
            manifest_put("huge", &huge, OCI_MANIFEST),
            Error(413, "MANIFEST_INVALID"),
        ),
        case(
            "huge declared manifest, no body",
            put(
                "/v2/adv/repo/manifests/huge",
                &[
                    ("Content-Type", OCI_MANIFEST),
                    ("Content-Length", "1000000000000"),
                ],
                b"",
            ),
            Error(413, "MANIFEST_INVALID"),
        ),
        case(
            "deeply nested arrays",
            manifest_put("deep", &deep, OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
        case(
            "deeply nested objects",
            manifest_put("deep", &deep_object, OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
        case(
            "index listing its own digest, by digest",
            manifest_put(&self_digest, &self_index, OCI_INDEX),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "index listing its own digest, by tag",
            manifest_put("self", &self_index, OCI_INDEX),
            Error(400, "MANIFEST_BLOB_UNKNOWN"),
        ),
        case(
            "manifest whose subject is its own digest",
            manifest_put(&self_digest, &self_subject, OCI_MANIFEST),
            Error(400, "DIGEST_INVALID"),
        ),
        case(
            "manifest referencing a missing blob",
            manifest_put(
                "t",
                &image_manifest(b"{\"missing\":1}", &[], None, None),
                OCI_MANIFEST,
            ),
            Error(400, "MANIFEST_BLOB_UNKNOWN"),
        ),
        case(
            "manifest not JSON",
            manifest_put("t", b"\0\0\0\xff", OCI_MANIFEST),
            Error(400, "MANIFEST_INVALID"),
        ),
    ]
}

#[test]
fn hostile_requests_get_exact_errors_and_change_nothing() {
    let server = TestServer::launch()
        .without_storage_flag()
        .arg("--storage")
        .arg("fs://nested/deeper/data")
        .arg("--manifest-max-size")
        .arg("1048576")
        .arg("--body-idle-timeout")
        .arg("2")
        .start();
    let client = Client::new(&server);
    let (_, manifest_digest) = client.push_image("adv/repo", "v1", "adversarial");
    let layer = b"layer of adversarial";
    let layer_digest = digest(layer);
    assert_eq!(
        client
            .get(&format!("/v2/adv/repo/manifests/{manifest_digest}"), &[])
            .status,
        200
    );
    let root = server.dir().to_path_buf();
    assert!(
        snapshot(&root)
            .keys()
            .any(|k| k.starts_with("nested/deeper/data/docker/registry/v2/blobs"))
    );

    let mut failures = Vec::new();
    for case in cases(&layer_digest) {
        let mut request = case.request.clone();
        let text = String::from_utf8_lossy(&request).into_owned();
        if text.contains("{upload}") || text.contains("{done}") {
            let start = client.post("/v2/adv/repo/blobs/uploads/", &[], b"");
            assert_eq!(start.status, 202, "{start:?}");
            let mut location = start.must("Location").to_owned();
            if text.contains("{done}") {
                let d = digest(b"some blob bytes");
                let put = client.put(
                    &Client::with_query(&location, &format!("digest={d}")),
                    &[],
                    b"some blob bytes",
                );
                assert_eq!(put.status, 201, "{put:?}");
            }
            if case.name == "upload id of another repository" {
                location = location.replace("/v2/adv/repo/", "/v2/adv/other/");
            }
            let path = location.trim_start_matches(&server.url(""));
            request = replace(
                &request,
                if text.contains("{done}") {
                    "{done}"
                } else {
                    "{upload}"
                },
                path,
            );
        }
        // Taken after the case's own set-up, which may store a blob.
        let before = snapshot(&root);
        let got = raw::exchange(server.addr(), &request, case.half_close);
        if let Some(why) = check(case.expect, got.as_ref()) {
            failures.push(format!("{}: {why}", case.name));
        }
        let after = snapshot(&root);
        if after != before {
            let added: Vec<_> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .collect();
            let removed: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
            failures.push(format!(
                "{}: store changed: added/changed {added:?}, removed {removed:?}",
                case.name
            ));
        }
    }
    // The server is still healthy and still serves what it had.
    assert_eq!(client.get("/v2/", &[]).status, 200);
    assert_eq!(
        client
            .get(&format!("/v2/adv/repo/blobs/{layer_digest}"), &[])
            .body,
        layer
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `haystack` with the first `needle` replaced, byte for byte.
fn replace(haystack: &[u8], needle: &str, with: &str) -> Vec<u8> {
    let needle = needle.as_bytes();
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("placeholder present");
    [
        &haystack[..at],
        with.as_bytes(),
        &haystack[at + needle.len()..],
    ]
    .concat()
}

fn check(expect: Expect, got: Option<&RawResponse>) -> Option<String> {
    let describe = |r: &RawResponse| format!("{} {:?}", r.status, String::from_utf8_lossy(&r.body));
    match (expect, got) {
        (_, None) => Some(format!("expected {expect:?}, the connection was closed")),
        (Expect::Error(status, code), Some(r)) => (r.status != status
            || r.error_code().as_deref() != Some(code))
        .then(|| format!("expected {status} {code}, got {}", describe(r))),
        (Expect::Bare(status), Some(r)) => (r.status != status || r.error_code().is_some())
            .then(|| format!("expected a bare {status}, got {}", describe(r))),
        (Expect::Ok(status), Some(r)) => {
            (r.status != status).then(|| format!("expected {status}, got {}", describe(r)))
        }
    }
}

/// A client that sends `DELETE /manifests/<digest>` for a manifest with
/// many tags and goes away at once does not stop the delete half way: it
/// runs to the end, and no tag stays listed without resolving.
#[test]
fn manifest_delete_completes_after_the_client_leaves() {
    let server = TestServer::start();
    let client = Client::new(&server);
    let (manifest, d) = client.push_image("leave/many", "t0", "many");
    const TAGS: usize = 600;
    for i in 1..TAGS {
        let put = client.put_manifest("leave/many", &format!("t{i}"), OCI_MANIFEST, &manifest);
        assert_eq!(put.status, 201, "{put:?}");
    }
    // Send the delete and close the connection straight away.
    {
        let mut s = raw::connect(server.addr());
        std::io::Write::write_all(
            &mut s,
            &raw::request("DELETE", &format!("/v2/leave/many/manifests/{d}"), &[], b""),
        )
        .unwrap();
        // Long enough for the request to be read and the delete to begin,
        // far shorter than removing every tag takes.
        std::thread::sleep(std::time::Duration::from_millis(40));
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let tags = client.get("/v2/leave/many/tags/list", &[]);
        let left = match tags.status {
            200 => tags.json()["tags"].as_array().map_or(0, Vec::len),
            _ => 0,
        };
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} of {TAGS} tags still listed a minute after the delete"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    client
        .get(&format!("/v2/leave/many/manifests/{d}"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    // Nothing left over: a second delete finds nothing, and the tag can be
    // pushed again at once (no marker in the way).
    client
        .delete(&format!("/v2/leave/many/manifests/{d}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
    let again = client.put_manifest("leave/many", "t0", OCI_MANIFEST, &manifest);
    assert_eq!(again.status, 201, "{again:?}");
}
