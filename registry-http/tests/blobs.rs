//! Blob pulls (end-2), deletes (end-10) and every way of pushing one
//! (end-4a, end-4b, end-5, end-6, end-11, end-13), through `Router::handle`
//! on the memory store.

mod common;

use bytes::Bytes;
use common::Registry;
use registry_core::Digest;

const CONTENT: &[u8] = b"0123456789abcdefghij";

/// POST to open a session; returns its Location.
async fn open(reg: &Registry, repo: &str) -> String {
    let r = reg
        .send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[("content-length", "0")],
            "",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), "0-0");
    let loc = r.header("location").to_owned();
    assert!(
        loc.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
        "{loc}"
    );
    assert_eq!(
        loc.rsplit('/').next().unwrap(),
        r.header("docker-upload-uuid")
    );
    loc
}

async fn assert_blob(reg: &Registry, repo: &str, digest: &Digest, content: &[u8]) {
    let r = reg.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, content);
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert_eq!(r.header("content-length"), content.len().to_string());
    assert_eq!(r.header("accept-ranges"), "bytes");
}

#[tokio::test]
async fn monolithic_single_post() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    let r = reg
        .send(
            "POST",
            &format!("/v2/a/b/blobs/uploads/?digest={digest}"),
            &[("content-length", "20")],
            CONTENT,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), format!("/v2/a/b/blobs/{digest}"));
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert_blob(&reg, "a/b", &digest, CONTENT).await;
}

#[tokio::test]
async fn monolithic_post_then_put() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    let loc = open(&reg, "a").await;
    let r = reg
        .send(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[("content-length", "20")],
            CONTENT,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), format!("/v2/a/blobs/{digest}"));
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert_blob(&reg, "a", &digest, CONTENT).await;
    // The session is gone.
    reg.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn chunked_with_content_range() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    let loc = open(&reg, "a").await;
    let r = reg
        .send(
            "PATCH",
            &loc,
            &[("content-range", "0-9"), ("content-length", "10")],
            &CONTENT[..10],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), "0-9");
    let loc = r.header("location").to_owned();

    // Status (end-13).
    let s = reg.get(&loc).await;
    assert_eq!(s.status, 204);
    assert_eq!(s.header("range"), "0-9");
    assert_eq!(s.header("location"), loc);

    // Out of order: 416 with where the upload stands.
    let r = reg
        .send("PATCH", &loc, &[("content-range", "5-9")], &CONTENT[5..10])
        .await;
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("range"), "0-9");
    assert_eq!(r.header("location"), loc);

    let r = reg
        .send(
            "PATCH",
            &loc,
            &[("content-range", "10-14")],
            &CONTENT[10..15],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), "0-14");

    // Last chunk in the closing PUT, with its range.
    let r = reg
        .send(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[("content-range", "15-19"), ("content-length", "5")],
            &CONTENT[15..],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_blob(&reg, "a", &digest, CONTENT).await;
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    let loc = open(&reg, "a").await;
    let r = reg
        .send_frames(
            "PATCH",
            &loc,
            &[],
            &[&CONTENT[..3], &CONTENT[3..12], &CONTENT[12..]],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), "0-19");
    let r = reg
        .send("PUT", &format!("{loc}?digest={digest}"), &[], Bytes::new())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_blob(&reg, "a", &digest, CONTENT).await;
}

#[tokio::test]
async fn put_with_last_chunk_and_no_range() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    let loc = open(&reg, "a").await;
    let r = reg.send("PATCH", &loc, &[], &CONTENT[..4]).await;
    assert_eq!(r.status, 202);
    let r = reg
        .send_frames(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[],
            &[&CONTENT[4..9], &CONTENT[9..]],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_blob(&reg, "a", &digest, CONTENT).await;
}

#[tokio::test]
async fn empty_blob() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(b"");
    let loc = open(&reg, "a").await;
    let r = reg
        .send(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[("content-length", "0")],
            "",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = reg.get(&format!("/v2/a/blobs/{digest}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), "0");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn content_length_must_match_content_range() {
    let reg = Registry::new();
    let loc = open(&reg, "a").await;
    let r = reg
        .send(
            "PATCH",
            &loc,
            &[("content-range", "0-9"), ("content-length", "5")],
            &CONTENT[..5],
        )
        .await;
    r.assert_error(400, "SIZE_INVALID");
    let r = reg
        .send("PATCH", &loc, &[("content-range", "nine")], &CONTENT[..5])
        .await;
    r.assert_error(400, "BLOB_UPLOAD_INVALID");
    // Nothing was written.
    assert_eq!(reg.get(&loc).await.header("range"), "0-0");
}

#[tokio::test]
async fn content_range_longer_than_any_chunk() {
    // end - start + 1 does not fit in a u64: refused, never wrapped to 0.
    let reg = Registry::new();
    let loc = open(&reg, "a").await;
    let r = reg
        .send(
            "PATCH",
            &loc,
            &[
                ("content-range", "0-18446744073709551615"),
                ("content-length", "0"),
            ],
            "",
        )
        .await;
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    // As for an out-of-order chunk: where to resume.
    assert_eq!(r.header("location"), loc);
    assert_eq!(r.header("range"), "0-0");
    assert_eq!(reg.get(&loc).await.header("range"), "0-0");
    // The same on the closing PUT.
    let digest = Digest::sha256_of(b"");
    let r = reg
        .send(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[("content-range", "0-18446744073709551615")],
            "",
        )
        .await;
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("location"), loc);
}

#[tokio::test]
async fn body_shorter_than_declared_range() {
    let reg = Registry::new();
    let loc = open(&reg, "a").await;
    let r = reg
        .send("PATCH", &loc, &[("content-range", "0-9")], &CONTENT[..5])
        .await;
    assert!(r.status.is_client_error(), "{:?}", r);
}

#[tokio::test]
async fn digest_mismatch() {
    let reg = Registry::new();
    let wrong = Digest::sha256_of(b"other");
    let loc = open(&reg, "a").await;
    let r = reg
        .send("PUT", &format!("{loc}?digest={wrong}"), &[], CONTENT)
        .await;
    r.assert_error(400, "DIGEST_INVALID");
    reg.get(&format!("/v2/a/blobs/{wrong}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    let r = reg
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={wrong}"),
            &[],
            CONTENT,
        )
        .await;
    r.assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn close_without_digest() {
    let reg = Registry::new();
    let loc = open(&reg, "a").await;
    reg.send("PUT", &loc, &[], CONTENT)
        .await
        .assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn cancel() {
    let reg = Registry::new();
    let loc = open(&reg, "a").await;
    let r = reg.send("DELETE", &loc, &[], "").await;
    assert_eq!(r.status, 204);
    reg.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.send("PATCH", &loc, &[], CONTENT)
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn unknown_and_malformed_sessions() {
    let reg = Registry::new();
    reg.get("/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get("/v2/a/blobs/uploads/..")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    // A session of another repository.
    let loc = open(&reg, "a").await;
    let id = loc.rsplit('/').next().unwrap();
    reg.get(&format!("/v2/b/blobs/uploads/{id}"))
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn head_and_ranges() {
    let reg = Registry::new();
    let digest = reg.push_blob("a", CONTENT).await;
    let url = format!("/v2/a/blobs/{digest}");

    let r = reg.send("HEAD", &url, &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), "20");
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert!(r.body.is_empty());

    let cases = [
        ("bytes=0-4", "01234", "bytes 0-4/20"),
        ("bytes=15-", "fghij", "bytes 15-19/20"),
        ("bytes=-3", "hij", "bytes 17-19/20"),
        ("bytes=18-100", "ij", "bytes 18-19/20"),
    ];
    for (range, body, content_range) in cases {
        let r = reg.send("GET", &url, &[("range", range)], "").await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, body.as_bytes(), "{range}");
        assert_eq!(r.header("content-range"), content_range, "{range}");
        assert_eq!(
            r.header("content-length"),
            body.len().to_string(),
            "{range}"
        );
        let h = reg.send("HEAD", &url, &[("range", range)], "").await;
        assert_eq!(h.status, 206, "{range}");
        assert_eq!(h.header("content-range"), content_range, "{range}");
    }

    let r = reg.send("GET", &url, &[("range", "bytes=20-")], "").await;
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("content-range"), "bytes */20");
    let r = reg
        .send("HEAD", &url, &[("range", "bytes=30-40")], "")
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), "bytes */20");

    // Not a single byte range: ignored.
    let r = reg
        .send("GET", &url, &[("range", "bytes=0-1,5-6")], "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, CONTENT);
}

#[tokio::test]
async fn unknown_blob() {
    let reg = Registry::new();
    let d = Digest::sha256_of(b"nothing");
    reg.get(&format!("/v2/a/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    let r = reg.send("HEAD", &format!("/v2/a/blobs/{d}"), &[], "").await;
    assert_eq!(r.status, 404);
    // Linked into one repository only.
    let d = reg.push_blob("a", CONTENT).await;
    reg.get(&format!("/v2/b/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn delete_blob() {
    let reg = Registry::new();
    let digest = reg.push_blob("a", CONTENT).await;
    let url = format!("/v2/a/blobs/{digest}");
    let r = reg.send("DELETE", &url, &[], "").await;
    assert_eq!(r.status, 202, "{}", r.text());
    reg.get(&url).await.assert_error(404, "BLOB_UNKNOWN");
    reg.send("DELETE", &url, &[], "")
        .await
        .assert_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = Registry::new();
    let digest = reg.push_blob("src", CONTENT).await;
    let r = reg
        .send(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={digest}&from=src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), format!("/v2/dst/blobs/{digest}"));
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert_blob(&reg, "dst", &digest, CONTENT).await;
}

#[tokio::test]
async fn mount_falls_back_to_an_upload() {
    let reg = Registry::new();
    let digest = Digest::sha256_of(CONTENT);
    for query in [
        format!("mount={digest}&from=src"),
        format!("mount={digest}"),
    ] {
        let r = reg
            .send("POST", &format!("/v2/dst/blobs/uploads/?{query}"), &[], "")
            .await;
        assert_eq!(r.status, 202, "{query}: {}", r.text());
        let loc = r.header("location").to_owned();
        let r = reg
            .send("PUT", &format!("{loc}?digest={digest}"), &[], CONTENT)
            .await;
        assert_eq!(r.status, 201);
    }
}
