//! Every way of pushing a blob: end-4a, end-4b, end-5, end-6, end-13 and
//! cancelling an upload.

use super::OCTET;
use super::blobs::assert_in_layout;
use crate::content::digest;
use crate::{Client, Transport};

const CONTENT: &[u8] = b"0123456789abcdefghij";

/// POST to open a session in `repo`; returns its Location, checked.
#[track_caller]
fn open<T: Transport>(c: &Client<T>, repo: &str) -> String {
    let r = c.post(
        &format!("/v2/{repo}/blobs/uploads/"),
        &[("content-length", "0")],
        b"",
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.must("range"), "0-0");
    let loc = r.location();
    let prefix = format!("/v2/{repo}/blobs/uploads/");
    assert!(
        loc.starts_with(&prefix) && loc.len() > prefix.len(),
        "Location has a session id: {loc}"
    );
    let id = loc.split('?').next().unwrap().rsplit('/').next().unwrap();
    assert_eq!(id, r.must("docker-upload-uuid"));
    loc
}

/// The blob at `/v2/{repo}/blobs/{d}` is `content`, with its headers.
#[track_caller]
fn assert_blob<T: Transport>(c: &Client<T>, repo: &str, d: &str, content: &[u8]) {
    let r = c.get(&format!("/v2/{repo}/blobs/{d}"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, content);
    assert_eq!(r.must("docker-content-digest"), d);
    assert_eq!(r.must("content-length"), content.len().to_string());
}

fn with_digest<T: Transport>(loc: &str, d: &str) -> String {
    Client::<T>::with_query(loc, &format!("digest={d}"))
}

/// end-4a, end-6: POST opens a session, PUT with the digest closes it.
pub fn push_blob_post_then_put<T: Transport>(c: &Client<T>) {
    let blob = b"a monolithic blob".to_vec();
    let d = digest(&blob);
    let upload = open(c, "push/mono");
    let put = c.put(&with_digest::<T>(&upload, &d), &[OCTET], &blob);
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(put.location(), format!("/v2/push/mono/blobs/{d}"));
    assert_eq!(put.must("docker-content-digest"), d);
    assert_blob(c, "push/mono", &d, &blob);
    assert_in_layout(c, &d, &blob);
    // The session is closed.
    c.get(&upload, &[]).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

/// end-4b: one POST with the digest and the bytes.
pub fn push_blob_in_one_post<T: Transport>(c: &Client<T>) {
    let d = digest(CONTENT);
    let post = c.post(
        &format!("/v2/push/single/blobs/uploads/?digest={d}"),
        &[OCTET, ("content-length", "20")],
        CONTENT,
    );
    assert_eq!(post.status, 201, "{post:?}");
    assert_eq!(post.location(), format!("/v2/push/single/blobs/{d}"));
    assert_eq!(post.must("docker-content-digest"), d);
    assert_blob(c, "push/single", &d, CONTENT);
    assert_in_layout(c, &d, CONTENT);
}

/// end-5, end-6, end-13: chunks with `Content-Range`, the status between
/// them, the last chunk in the closing PUT with its range.
pub fn push_blob_in_chunks<T: Transport>(c: &Client<T>) {
    let blob: Vec<u8> = (0..26u8).map(|i| b'a' + i).collect();
    let d = digest(&blob);
    let mut upload = open(c, "push/chunked");
    for (range, chunk, expect) in [
        ("0-9", &blob[0..10], "0-9"),
        ("10-19", &blob[10..20], "0-19"),
    ] {
        let len = chunk.len().to_string();
        let patch = c.patch(
            &upload,
            &[OCTET, ("content-range", range), ("content-length", &len)],
            chunk,
        );
        assert_eq!(patch.status, 202, "{range}: {patch:?}");
        assert_eq!(patch.must("range"), expect);
        upload = patch.location();

        let status = c.get(&upload, &[]);
        assert_eq!(status.status, 204);
        assert_eq!(status.must("range"), expect);
        assert_eq!(status.location(), upload);
    }
    let put = c.put(
        &with_digest::<T>(&upload, &d),
        &[OCTET, ("content-range", "20-25"), ("content-length", "6")],
        &blob[20..],
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(put.location(), format!("/v2/push/chunked/blobs/{d}"));
    assert_eq!(put.must("docker-content-digest"), d);
    assert_blob(c, "push/chunked", &d, &blob);
}

/// end-5, end-13: a gap or an overlap is a 416 that tells where to resume,
/// and appends nothing.
pub fn chunk_out_of_order_is_416<T: Transport>(c: &Client<T>) {
    let d = digest(CONTENT);
    let upload = open(c, "push/order");
    let first = c.patch(&upload, &[OCTET, ("content-range", "0-9")], &CONTENT[..10]);
    assert_eq!(first.status, 202);
    let upload = first.location();

    for range in ["15-24", "5-14"] {
        let bad = c.patch(
            &upload,
            &[OCTET, ("content-range", range)],
            &CONTENT[10..20],
        );
        bad.assert_error(416, "BLOB_UPLOAD_INVALID");
        // Where to resume, as distribution answers.
        assert_eq!(bad.must("range"), "0-9");
        assert_eq!(bad.location(), upload);
    }
    let status = c.get(&upload, &[]);
    assert_eq!(status.status, 204);
    assert_eq!(status.must("range"), "0-9");

    let next = c.patch(
        &status.location(),
        &[OCTET, ("content-range", "10-19")],
        &CONTENT[10..],
    );
    assert_eq!(next.status, 202);
    assert_eq!(next.must("range"), "0-19");
    let put = c.put(&with_digest::<T>(&next.location(), &d), &[], b"");
    assert_eq!(put.status, 201, "{put:?}");
    assert_blob(c, "push/order", &d, CONTENT);
}

/// end-5: a PATCH of unknown length (no `Content-Length`, no
/// `Content-Range`), then an empty closing PUT.
pub fn push_blob_streamed<T: Transport>(c: &Client<T>) {
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let d = digest(&blob);
    let upload = open(c, "push/streamed");
    let patch = c.patch_streamed(&upload, &[&blob[..3], &blob[3..70_000], &blob[70_000..]]);
    assert_eq!(patch.status, 202, "{patch:?}");
    assert_eq!(patch.must("range"), format!("0-{}", blob.len() - 1));
    let put = c.put(&with_digest::<T>(&patch.location(), &d), &[], b"");
    assert_eq!(put.status, 201, "{put:?}");
    assert_blob(c, "push/streamed", &d, &blob);
}

/// end-6: the last chunk in the closing PUT, with no range and no length.
pub fn last_chunk_in_the_put_without_range<T: Transport>(c: &Client<T>) {
    let d = digest(CONTENT);
    let upload = open(c, "a");
    let r = c.patch(&upload, &[], &CONTENT[..4]);
    assert_eq!(r.status, 202, "{r:?}");
    let put = c.send(
        "PUT",
        &with_digest::<T>(&r.location(), &d),
        &[],
        crate::Body::Streamed(vec![CONTENT[4..9].to_vec(), CONTENT[9..].to_vec()]),
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_blob(c, "a", &d, CONTENT);
}

/// A blob of no bytes.
pub fn empty_blob<T: Transport>(c: &Client<T>) {
    let d = digest(b"");
    let upload = open(c, "a");
    let put = c.put(
        &with_digest::<T>(&upload, &d),
        &[("content-length", "0")],
        b"",
    );
    assert_eq!(put.status, 201, "{put:?}");
    let r = c.get(&format!("/v2/a/blobs/{d}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.must("content-length"), "0");
    assert!(r.body.is_empty());
}

/// end-13: the status of a session, empty and after a chunk.
pub fn upload_status<T: Transport>(c: &Client<T>) {
    let upload = open(c, "push/status");
    let empty = c.get(&upload, &[]);
    assert_eq!(empty.status, 204);
    assert_eq!(empty.must("range"), "0-0");
    assert_eq!(empty.location(), upload);

    let r = c.patch(&upload, &[OCTET, ("content-range", "0-4")], b"hello");
    assert_eq!(r.status, 202, "{r:?}");
    let status = c.get(&upload, &[]);
    assert_eq!(status.status, 204);
    assert_eq!(status.must("range"), "0-4");
    assert!(status.body.is_empty());
}

/// `Content-Range` and `Content-Length` must agree; a range longer than any
/// chunk (end - start + 1 overflows) is refused, never wrapped to 0; a body
/// shorter than its range is refused. Nothing is written.
pub fn content_range_must_fit<T: Transport>(c: &Client<T>) {
    let upload = open(c, "a");
    let r = c.patch(
        &upload,
        &[("content-range", "0-9"), ("content-length", "5")],
        &CONTENT[..5],
    );
    r.assert_error(400, "SIZE_INVALID");
    let r = c.patch(&upload, &[("content-range", "nine")], &CONTENT[..5]);
    r.assert_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(c.get(&upload, &[]).must("range"), "0-0");

    let huge = ("content-range", "0-18446744073709551615");
    let r = c.patch(&upload, &[huge, ("content-length", "0")], b"");
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    // As for an out-of-order chunk: where to resume.
    assert_eq!(r.location(), upload);
    assert_eq!(r.must("range"), "0-0");
    assert_eq!(c.get(&upload, &[]).must("range"), "0-0");
    // The same on the closing PUT.
    let r = c.put(&with_digest::<T>(&upload, &digest(b"")), &[huge], b"");
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(r.location(), upload);

    // Fewer bytes than the range says.
    let r = c.send(
        "PATCH",
        &upload,
        &[("content-range", "0-9")],
        crate::Body::Streamed(vec![CONTENT[..5].to_vec()]),
    );
    assert!((400..500).contains(&r.status), "{r:?}");
}

/// A cancelled session is gone: status, PATCH and DELETE are 404.
pub fn cancel_upload<T: Transport>(c: &Client<T>) {
    let upload = open(c, "push/cancel");
    let r = c.patch(&upload, &[OCTET, ("content-range", "0-2")], b"abc");
    assert_eq!(r.status, 202, "{r:?}");

    let cancel = c.delete(&upload);
    assert_eq!(cancel.status, 204, "{cancel:?}");
    c.get(&upload, &[]).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    c.patch(&upload, &[OCTET], b"more")
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    c.delete(&upload).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

/// Session ids never issued, not ids at all, or of another repository.
pub fn unknown_and_malformed_sessions<T: Transport>(c: &Client<T>) {
    for id in [
        "0123456789abcdef0123456789abcdef",
        "00000000-0000-0000-0000-000000000000",
        "..",
    ] {
        c.get(&format!("/v2/a/blobs/uploads/{id}"), &[])
            .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    let upload = open(c, "a");
    let id = upload
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    c.get(&format!("/v2/b/blobs/uploads/{id}"), &[])
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}
