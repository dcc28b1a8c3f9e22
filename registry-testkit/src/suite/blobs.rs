//! Blob pulls (end-2), deletes (end-10), mounts (end-11) and the base
//! (end-1).

use serde_json::json;

use crate::content::{blob_data_path, digest};
use crate::{Client, Transport};

/// end-1: `/v2/` answers 200 with `{}`, with and without its slash.
pub fn api_version_check<T: Transport>(c: &Client<T>) {
    let r = c.get("/v2/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.must("docker-distribution-api-version"), "registry/2.0");
    assert_eq!(r.json(), json!({}));
    // Without the trailing slash too, as clients send both.
    assert_eq!(c.get("/v2", &[]).status, 200);
}

/// Paths outside the API and methods an endpoint does not take.
pub fn unknown_paths_and_methods<T: Transport>(c: &Client<T>) {
    for path in [
        "/",
        "/v1/",
        "/v2/a",
        "/v2/a/blobs/",
        "/v2/a/unknown/x",
        "/favicon.ico",
    ] {
        c.get(path, &[]).assert_error(404, "UNSUPPORTED");
    }
    let r = c.post("/v2/a/manifests/x", &[], b"");
    r.assert_error(405, "UNSUPPORTED");
    assert_eq!(r.must("allow"), "GET, HEAD, PUT, DELETE");
    let r = c.put("/v2/", &[], b"");
    r.assert_error(405, "UNSUPPORTED");
    assert_eq!(r.must("allow"), "GET, HEAD");
}

/// end-2: a blob whole, by HEAD, and by RFC 9110 ranges.
pub fn pull_blob_whole_and_by_range<T: Transport>(c: &Client<T>) {
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let d = c.push_blob("pull/blob", &blob);
    let url = format!("/v2/pull/blob/blobs/{d}");

    let head = c.head(&url, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.must("content-length"), "1000");
    assert_eq!(head.must("docker-content-digest"), d);
    assert!(head.body.is_empty());

    let get = c.get(&url, &[]);
    assert_eq!(get.status, 200);
    assert_eq!(get.must("docker-content-digest"), d);
    assert_eq!(get.must("content-length"), "1000");
    assert_eq!(get.must("accept-ranges"), "bytes");
    assert_eq!(get.body, blob);

    // Resumable pulls; HEAD answers the same headers.
    for (range, bytes, content_range) in [
        ("bytes=100-199", &blob[100..200], "bytes 100-199/1000"),
        ("bytes=900-", &blob[900..], "bytes 900-999/1000"),
        ("bytes=-10", &blob[990..], "bytes 990-999/1000"),
        ("bytes=998-1100", &blob[998..], "bytes 998-999/1000"),
    ] {
        let part = c.get(&url, &[("range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, bytes, "{range}");
        assert_eq!(part.must("content-range"), content_range, "{range}");
        assert_eq!(part.must("content-length"), bytes.len().to_string());
        let head = c.head(&url, &[("range", range)]);
        assert_eq!(head.status, 206, "{range}");
        assert_eq!(head.must("content-range"), content_range, "{range}");
    }

    let beyond = c.get(&url, &[("range", "bytes=1000-1100")]);
    beyond.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(beyond.must("content-range"), "bytes */1000");
    let beyond = c.head(&url, &[("range", "bytes=3000-4000")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.must("content-range"), "bytes */1000");

    // Not a single byte range: ignored.
    let r = c.get(&url, &[("range", "bytes=0-1,5-6")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
}

/// end-2: a blob never pushed, or pushed to another repository only.
pub fn unknown_blob<T: Transport>(c: &Client<T>) {
    let unknown = format!("/v2/a/blobs/{}", digest(b"never pushed"));
    c.get(&unknown, &[]).assert_error(404, "BLOB_UNKNOWN");
    assert_eq!(c.head(&unknown, &[]).status, 404);
    // Linked into one repository only.
    let d = c.push_blob("a", b"content");
    c.get(&format!("/v2/b/blobs/{d}"), &[])
        .assert_error(404, "BLOB_UNKNOWN");
}

/// end-11: a mount from another repository, and the upload it falls back
/// to when the source has no such blob, or is unknown, or is not named.
pub fn mount_from_another_repository<T: Transport>(c: &Client<T>) {
    let blob = b"shared layer".to_vec();
    let d = c.push_blob("mount/source", &blob);

    let mount = c.post(
        &format!("/v2/mount/target/blobs/uploads/?mount={d}&from=mount/source"),
        &[],
        b"",
    );
    assert_eq!(mount.status, 201, "{mount:?}");
    assert_eq!(mount.location(), format!("/v2/mount/target/blobs/{d}"));
    assert_eq!(mount.must("docker-content-digest"), d);
    let get = c.get(&format!("/v2/mount/target/blobs/{d}"), &[]);
    assert_eq!(get.body, blob);
    assert_eq!(get.must("docker-content-digest"), d);

    // Fallback: a blob the source does not have starts an ordinary upload.
    let other = b"not in the source".to_vec();
    let od = digest(&other);
    for query in [
        format!("mount={od}&from=mount/source"),
        format!("mount={od}"),
        format!("mount={d}&from=no/such/repo"),
    ] {
        let fallback = c.post(
            &format!("/v2/mount/fallback/blobs/uploads/?{query}"),
            &[],
            b"",
        );
        assert_eq!(fallback.status, 202, "{query}: {fallback:?}");
        let upload = fallback.location();
        assert!(
            upload.starts_with("/v2/mount/fallback/blobs/uploads/"),
            "{upload}"
        );
        let put = c.put(
            &Client::<T>::with_query(&upload, &format!("digest={od}")),
            &[super::OCTET],
            &other,
        );
        assert_eq!(put.status, 201, "{query}: {put:?}");
    }
}

/// end-10: a deleted blob is gone from its repository, not from another
/// that links the same bytes.
pub fn delete_blob<T: Transport>(c: &Client<T>) {
    let d = c.push_blob("manage/blobs", b"short-lived");
    c.push_blob("manage/other", b"short-lived");
    let url = format!("/v2/manage/blobs/blobs/{d}");

    let r = c.delete(&url);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(c.head(&url, &[]).status, 404);
    c.get(&url, &[]).assert_error(404, "BLOB_UNKNOWN");
    c.delete(&url).assert_error(404, "BLOB_UNKNOWN");
    // Another repository linking the same content keeps it.
    assert_eq!(
        c.get(&format!("/v2/manage/other/blobs/{d}"), &[]).body,
        b"short-lived"
    );
}

/// A digest that does not match the bytes: 400, and neither digest is a
/// blob afterwards, in the API or on disk.
pub fn digest_mismatch_leaves_nothing<T: Transport>(c: &Client<T>) {
    let content = b"the real content".to_vec();
    let claimed = digest(b"a different content");
    let upload = c
        .post("/v2/errors/mismatch/blobs/uploads/", &[], b"")
        .location();
    let put = c.put(
        &Client::<T>::with_query(&upload, &format!("digest={claimed}")),
        &[super::OCTET],
        &content,
    );
    put.assert_error(400, "DIGEST_INVALID");
    // In one POST too.
    let post = c.post(
        &format!("/v2/errors/mismatch/blobs/uploads/?digest={claimed}"),
        &[super::OCTET],
        &content,
    );
    post.assert_error(400, "DIGEST_INVALID");

    for d in [&claimed, &digest(&content)] {
        let url = format!("/v2/errors/mismatch/blobs/{d}");
        assert_eq!(c.head(&url, &[]).status, 404);
        c.get(&url, &[]).assert_error(404, "BLOB_UNKNOWN");
        if let Some(root) = c.storage() {
            assert!(!blob_data_path(&root, d).exists());
        }
    }
}

/// Where the filesystem store keeps a pushed blob: distribution's layout.
pub(crate) fn assert_in_layout<T: Transport>(c: &Client<T>, d: &str, blob: &[u8]) {
    if let Some(root) = c.storage() {
        let path = blob_data_path(&root, d);
        assert_eq!(std::fs::read(&path).unwrap(), blob, "{}", path.display());
    }
}
