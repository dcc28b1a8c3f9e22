//! Every endpoint of the OCI distribution spec v1.1.1 (end-1 to end-13),
//! over real HTTP against the real `registry` process on filesystem
//! storage in a temporary directory: our stand-in for the OCI conformance
//! suite.
//!
//! One test per spec workflow, in the spec's order: pull, push, content
//! discovery, content management, then the error cases. Each test starts
//! its own server, so they are independent and run in parallel.

mod common;

use common::content::{
    DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, blob_data_path, descriptor,
    digest, image_manifest,
};
use common::http::{Client, Resp};
use common::process::TestServer;
use serde_json::json;

/// A fresh server and a client for it.
fn registry() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = Client::new(&server);
    (server, client)
}

/// A `Location` must be a pullable URL of this registry: an absolute URL or
/// a path; returns its path.
#[track_caller]
fn location_path(resp: &Resp) -> String {
    let location = resp.must("Location");
    let path = match location.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap()..],
        None => location,
    };
    assert!(path.starts_with("/v2/"), "Location {location}");
    path.to_owned()
}

/// `Content-Type` without parameters.
fn content_type(resp: &Resp) -> &str {
    resp.must("Content-Type").split(';').next().unwrap().trim()
}

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

// ---------------------------------------------------------------- end-1

#[test]
fn end_1_api_version_check() {
    let (_server, client) = registry();
    let resp = client.get("/v2/", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    // Without the trailing slash too, as clients send both.
    assert_eq!(client.get("/v2", &[]).status, 200);
}

// ------------------------------------------------------------------ pull

#[test]
fn pull_blob_whole_and_by_range_end_2() {
    let (_server, client) = registry();
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let d = client.push_blob("pull/blob", &blob);
    let url = format!("/v2/pull/blob/blobs/{d}");

    let head = client.head(&url, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.must("Content-Length"), "1000");
    assert_eq!(head.must("Docker-Content-Digest"), d);
    assert!(head.body.is_empty());

    let get = client.get(&url, &[]);
    assert_eq!(get.status, 200);
    assert_eq!(get.must("Docker-Content-Digest"), d);
    assert_eq!(get.must("Content-Length"), "1000");
    assert_eq!(get.body, blob);

    // Resumable pull: RFC 9110 ranges.
    let part = client.get(&url, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.must("Content-Range"), "bytes 100-199/1000");
    assert_eq!(part.must("Content-Length"), "100");
    assert_eq!(part.body, &blob[100..200]);
    let tail = client.get(&url, &[("Range", "bytes=900-")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.must("Content-Range"), "bytes 900-999/1000");
    assert_eq!(tail.body, &blob[900..]);
    let suffix = client.get(&url, &[("Range", "bytes=-10")]);
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &blob[990..]);

    let beyond = client.get(&url, &[("Range", "bytes=1000-1100")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.must("Content-Range"), "bytes */1000");

    let unknown = format!("/v2/pull/blob/blobs/{}", digest(b"never pushed"));
    client.get(&unknown, &[]).assert_error(404, "BLOB_UNKNOWN");
    let head = client.head(&unknown, &[]);
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
}

#[test]
fn pull_manifest_by_tag_and_digest_end_3() {
    let (_server, client) = registry();
    let (manifest, d) = client.push_image("pull/manifest", "v1", "pull");

    for reference in ["v1", d.as_str()] {
        let url = format!("/v2/pull/manifest/manifests/{reference}");
        let get = client.get(&url, &[("Accept", OCI_MANIFEST)]);
        assert_eq!(get.status, 200, "{reference}");
        assert_eq!(get.body, manifest, "the exact bytes pushed");
        assert_eq!(content_type(&get), OCI_MANIFEST);
        assert_eq!(get.must("Docker-Content-Digest"), d);

        let head = client.head(&url, &[("Accept", OCI_MANIFEST)]);
        assert_eq!(head.status, 200);
        assert_eq!(head.must("Content-Length"), manifest.len().to_string());
        assert_eq!(head.must("Docker-Content-Digest"), d);
        assert_eq!(content_type(&head), OCI_MANIFEST);
        assert!(head.body.is_empty());
    }

    client
        .get("/v2/pull/manifest/manifests/v2", &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    let missing = format!(
        "/v2/pull/manifest/manifests/{}",
        digest(b"no such manifest")
    );
    client
        .get(&missing, &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(client.head(&missing, &[]).status, 404);
}

#[test]
fn pull_manifest_content_negotiation() {
    let (_server, client) = registry();
    let (oci, oci_digest) = client.push_image("negotiate", "oci", "negotiate");
    let config = b"{\"architecture\":\"arm64\"}";
    client.push_blob("negotiate", config);
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": digest(config) },
        "layers": []
    }))
    .unwrap();
    assert_eq!(
        client
            .put_manifest("negotiate", "docker", DOCKER_MANIFEST, &docker)
            .status,
        201
    );

    // The stored type is served whenever the client accepts it, whatever
    // else it lists and in whatever order.
    for accept in [
        OCI_MANIFEST.to_owned(),
        format!("{DOCKER_MANIFEST}, {OCI_INDEX}, {OCI_MANIFEST}"),
        format!("{DOCKER_MANIFEST};q=0.9, {OCI_MANIFEST};q=0.5"),
        "*/*".to_owned(),
    ] {
        let get = client.get("/v2/negotiate/manifests/oci", &[("Accept", &accept)]);
        assert_eq!(get.status, 200, "Accept: {accept}");
        assert_eq!(content_type(&get), OCI_MANIFEST, "Accept: {accept}");
        assert_eq!(get.body, oci);
    }
    let get = client.get(
        "/v2/negotiate/manifests/docker",
        &[("Accept", DOCKER_MANIFEST)],
    );
    assert_eq!(get.status, 200);
    assert_eq!(content_type(&get), DOCKER_MANIFEST);
    assert_eq!(get.body, docker);

    // A client that accepts none of the stored type gets no manifest: the
    // bytes are never converted, since that would change their digest.
    for accept in [
        OCI_INDEX.to_owned(),
        format!("{OCI_MANIFEST};q=0, {DOCKER_MANIFEST}"),
    ] {
        let get = client.get("/v2/negotiate/manifests/oci", &[("Accept", &accept)]);
        get.assert_error(404, "MANIFEST_UNKNOWN");
    }

    // No Accept header: the manifest as stored.
    let get = client.get(&format!("/v2/negotiate/manifests/{oci_digest}"), &[]);
    assert_eq!(get.status, 200);
    assert_eq!(content_type(&get), OCI_MANIFEST);
}

// ------------------------------------------------------------------ push

#[test]
fn push_blob_monolithic_post_then_put_end_4a_end_6() {
    let (server, client) = registry();
    let blob = b"a monolithic blob".to_vec();
    let d = digest(&blob);

    let start = client.post("/v2/push/mono/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202);
    let upload = location_path(&start);
    assert!(
        upload.starts_with("/v2/push/mono/blobs/uploads/"),
        "{upload}"
    );
    assert!(
        upload.len() > "/v2/push/mono/blobs/uploads/".len(),
        "Location has a session id: {upload}"
    );

    let put = client.put(
        &Client::with_query(&upload, &format!("digest={d}")),
        &[OCTET],
        &blob,
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(location_path(&put), format!("/v2/push/mono/blobs/{d}"));
    assert_eq!(put.must("Docker-Content-Digest"), d);

    assert_eq!(client.get(&location_path(&put), &[]).body, blob);
    assert_eq!(
        std::fs::read(blob_data_path(&server.storage(), &d)).unwrap(),
        blob,
        "distribution layout"
    );
    // The session is closed.
    client
        .get(&upload, &[])
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn push_blob_single_post_with_digest_end_4b() {
    let (_server, client) = registry();
    let blob = b"pushed in one request".to_vec();
    let d = digest(&blob);

    let post = client.post(
        &format!("/v2/push/single/blobs/uploads/?digest={d}"),
        &[OCTET],
        &blob,
    );
    assert_eq!(post.status, 201, "{post:?}");
    assert_eq!(location_path(&post), format!("/v2/push/single/blobs/{d}"));
    assert_eq!(post.must("Docker-Content-Digest"), d);
    assert_eq!(client.get(&location_path(&post), &[]).body, blob);

    // The content must match the digest.
    let wrong = digest(b"something else");
    let post = client.post(
        &format!("/v2/push/single/blobs/uploads/?digest={wrong}"),
        &[OCTET],
        &blob,
    );
    post.assert_error(400, "DIGEST_INVALID");
    assert_eq!(
        client
            .head(&format!("/v2/push/single/blobs/{wrong}"), &[])
            .status,
        404
    );
}

#[test]
fn push_blob_in_chunks_with_content_range_end_5_end_6() {
    let (_server, client) = registry();
    let blob: Vec<u8> = (0..26u8).map(|i| b'a' + i).collect();
    let d = digest(&blob);

    let start = client.post(
        "/v2/push/chunked/blobs/uploads/",
        &[("Content-Length", "0")],
        b"",
    );
    assert_eq!(start.status, 202);
    let mut upload = location_path(&start);

    for (range, chunk, expect) in [
        ("0-9", &blob[0..10], "0-9"),
        ("10-19", &blob[10..20], "0-19"),
    ] {
        let patch = client.patch(&upload, &[OCTET, ("Content-Range", range)], chunk);
        assert_eq!(patch.status, 202, "{range}: {patch:?}");
        assert_eq!(patch.must("Range"), expect);
        upload = location_path(&patch);
    }

    // The last chunk comes with the closing PUT.
    let put = client.put(
        &Client::with_query(&upload, &format!("digest={d}")),
        &[OCTET, ("Content-Range", "20-25")],
        &blob[20..],
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(location_path(&put), format!("/v2/push/chunked/blobs/{d}"));
    assert_eq!(put.must("Docker-Content-Digest"), d);
    assert_eq!(
        client.get(&format!("/v2/push/chunked/blobs/{d}"), &[]).body,
        blob
    );
}

#[test]
fn push_chunk_out_of_order_is_416_and_status_tells_where_to_resume_end_5_end_13() {
    let (_server, client) = registry();
    let blob = b"0123456789abcdefghij".to_vec();
    let d = digest(&blob);
    let upload = location_path(&client.post("/v2/push/order/blobs/uploads/", &[], b""));

    let first = client.patch(&upload, &[OCTET, ("Content-Range", "0-9")], &blob[..10]);
    assert_eq!(first.status, 202);

    // A gap, then an overlap: both refused, nothing appended.
    for range in ["15-24", "5-14"] {
        let bad = client.patch(&upload, &[OCTET, ("Content-Range", range)], &blob[10..20]);
        bad.assert_error(416, "BLOB_UPLOAD_INVALID");
        // Where to resume, as distribution answers.
        assert_eq!(bad.must("Range"), "0-9");
        assert_eq!(location_path(&bad), upload);
    }

    let status = client.get(&upload, &[]);
    assert_eq!(status.status, 204);
    assert_eq!(status.must("Range"), "0-9");
    let upload = location_path(&status);

    let next = client.patch(&upload, &[OCTET, ("Content-Range", "10-19")], &blob[10..]);
    assert_eq!(next.status, 202);
    assert_eq!(next.must("Range"), "0-19");
    let put = client.put(
        &Client::with_query(&location_path(&next), &format!("digest={d}")),
        &[],
        b"",
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        client.get(&format!("/v2/push/order/blobs/{d}"), &[]).body,
        blob
    );
}

#[test]
fn push_blob_streamed_patch_end_5() {
    let (_server, client) = registry();
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let d = digest(&blob);
    let upload = location_path(&client.post("/v2/push/streamed/blobs/uploads/", &[], b""));

    // No Content-Length, no Content-Range: chunked transfer encoding.
    let patch = client.patch_streamed(&upload, &blob);
    assert_eq!(patch.status, 202, "{patch:?}");
    assert_eq!(patch.must("Range"), format!("0-{}", blob.len() - 1));

    let put = client.put(
        &Client::with_query(&location_path(&patch), &format!("digest={d}")),
        &[],
        b"",
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        client
            .get(&format!("/v2/push/streamed/blobs/{d}"), &[])
            .body,
        blob
    );
}

#[test]
fn upload_status_end_13() {
    let (_server, client) = registry();
    let start = client.post("/v2/push/status/blobs/uploads/", &[], b"");
    let upload = location_path(&start);

    let empty = client.get(&upload, &[]);
    assert_eq!(empty.status, 204);
    assert_eq!(empty.must("Range"), "0-0");
    assert_eq!(location_path(&empty), upload);

    client.patch(&upload, &[OCTET, ("Content-Range", "0-4")], b"hello");
    let status = client.get(&upload, &[]);
    assert_eq!(status.status, 204);
    assert_eq!(status.must("Range"), "0-4");
    assert!(status.body.is_empty());

    let unknown = "/v2/push/status/blobs/uploads/00000000-0000-0000-0000-000000000000";
    client
        .get(unknown, &[])
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn cancel_upload() {
    let (_server, client) = registry();
    let upload = location_path(&client.post("/v2/push/cancel/blobs/uploads/", &[], b""));
    client.patch(&upload, &[OCTET, ("Content-Range", "0-2")], b"abc");

    let cancel = client.delete(&upload);
    assert_eq!(cancel.status, 204, "{cancel:?}");
    client
        .get(&upload, &[])
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    client
        .patch(&upload, &[OCTET], b"more")
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    client
        .delete(&upload)
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn mount_blob_from_another_repository_end_11() {
    let (_server, client) = registry();
    let blob = b"shared layer".to_vec();
    let d = client.push_blob("mount/source", &blob);

    let mount = client.post(
        &format!("/v2/mount/target/blobs/uploads/?mount={d}&from=mount/source"),
        &[],
        b"",
    );
    assert_eq!(mount.status, 201, "{mount:?}");
    assert_eq!(location_path(&mount), format!("/v2/mount/target/blobs/{d}"));
    assert_eq!(mount.must("Docker-Content-Digest"), d);
    assert_eq!(
        client.get(&format!("/v2/mount/target/blobs/{d}"), &[]).body,
        blob
    );

    // Fallback: a blob the source does not have starts an ordinary upload.
    let other = b"not in the source".to_vec();
    let od = digest(&other);
    let fallback = client.post(
        &format!("/v2/mount/target/blobs/uploads/?mount={od}&from=mount/source"),
        &[],
        b"",
    );
    assert_eq!(fallback.status, 202, "{fallback:?}");
    let upload = location_path(&fallback);
    assert!(
        upload.starts_with("/v2/mount/target/blobs/uploads/"),
        "{upload}"
    );
    let put = client.put(
        &Client::with_query(&upload, &format!("digest={od}")),
        &[OCTET],
        &other,
    );
    assert_eq!(put.status, 201);

    // So does a source repository that does not exist.
    let nowhere = client.post(
        &format!("/v2/mount/target/blobs/uploads/?mount={d}&from=no/such/repo"),
        &[],
        b"",
    );
    assert_eq!(nowhere.status, 202, "{nowhere:?}");
}

#[test]
fn push_manifest_by_tag_and_by_digest_end_7() {
    let (_server, client) = registry();
    let config = b"{\"os\":\"linux\"}".to_vec();
    let layer = b"some layer".to_vec();
    client.push_blob("push/manifest", &config);
    client.push_blob("push/manifest", &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    let d = digest(&manifest);

    let put = client.put_manifest("push/manifest", "latest", OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        location_path(&put),
        format!("/v2/push/manifest/manifests/{d}")
    );
    assert_eq!(put.must("Docker-Content-Digest"), d);
    assert!(
        put.header("OCI-Subject").is_none(),
        "no subject, no OCI-Subject"
    );

    // By digest: the same bytes, under their own digest.
    let put = client.put_manifest("push/manifest", &d, OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201);
    assert_eq!(put.must("Docker-Content-Digest"), d);

    // An index over it.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &manifest)],
    }))
    .unwrap();
    let put = client.put_manifest("push/manifest", "multi", OCI_INDEX, &index);
    assert_eq!(put.status, 201, "{put:?}");
    let get = client.get(
        "/v2/push/manifest/manifests/multi",
        &[("Accept", OCI_INDEX)],
    );
    assert_eq!(content_type(&get), OCI_INDEX);
    assert_eq!(get.body, index);

    // Re-tagging moves the tag.
    let (_, other) = client.push_image("push/manifest", "latest", "second");
    assert_eq!(
        client
            .head("/v2/push/manifest/manifests/latest", &[])
            .must("Docker-Content-Digest"),
        other
    );
}

// ----------------------------------------------------- content discovery

#[test]
fn list_tags_with_pagination_end_8a_end_8b() {
    let (_server, client) = registry();
    let (_, _) = client.push_image("discover/tags", "v1", "tags");
    let (manifest, _) = client.push_image("discover/tags", "v2", "tags");
    for tag in ["latest", "a", "v1.1", "b"] {
        assert_eq!(
            client
                .put_manifest("discover/tags", tag, OCI_MANIFEST, &manifest)
                .status,
            201
        );
    }
    let all = ["a", "b", "latest", "v1", "v1.1", "v2"];

    let list = client.get("/v2/discover/tags/tags/list", &[]);
    assert_eq!(list.status, 200);
    assert_eq!(list.json(), json!({ "name": "discover/tags", "tags": all }));
    assert!(list.header("Link").is_none());

    // Page through with n, following Link.
    let mut next = Some("/v2/discover/tags/tags/list?n=4".to_owned());
    let mut seen = Vec::new();
    while let Some(url) = next {
        let page = client.get(&url, &[]);
        assert_eq!(page.status, 200);
        let tags = page.json()["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 4);
        seen.extend(tags.iter().map(|t| t.as_str().unwrap().to_owned()));
        next = page.header("Link").map(|link| {
            assert!(link.ends_with(">; rel=\"next\""), "Link: {link}");
            link[1..link.find('>').unwrap()].to_owned()
        });
    }
    assert_eq!(seen, all);

    let first = client.get("/v2/discover/tags/tags/list?n=2", &[]);
    assert_eq!(first.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        first.must("Link"),
        "</v2/discover/tags/tags/list?n=2&last=b>; rel=\"next\""
    );

    let after = client.get("/v2/discover/tags/tags/list?n=2&last=latest", &[]);
    assert_eq!(after.json()["tags"], json!(["v1", "v1.1"]));
    let rest = client.get("/v2/discover/tags/tags/list?last=v1", &[]);
    assert_eq!(rest.json()["tags"], json!(["v1.1", "v2"]));
    assert!(rest.header("Link").is_none());

    let none = client.get("/v2/discover/tags/tags/list?n=0", &[]);
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["tags"], json!([]));
    assert!(none.header("Link").is_none(), "n=0 has no Link");

    client
        .get("/v2/no/such/repo/tags/list", &[])
        .assert_error(404, "NAME_UNKNOWN");
}

#[test]
fn catalog_with_pagination() {
    let (_server, client) = registry();
    for repo in ["zeta", "alpha/one", "alpha/two", "mid"] {
        client.push_image(repo, "latest", repo);
    }
    let all = client.get("/v2/_catalog", &[]);
    assert_eq!(all.status, 200);
    assert_eq!(
        all.json(),
        json!({ "repositories": ["alpha/one", "alpha/two", "mid", "zeta"] })
    );

    let page = client.get("/v2/_catalog?n=2", &[]);
    assert_eq!(
        page.json()["repositories"],
        json!(["alpha/one", "alpha/two"])
    );
    assert_eq!(
        page.must("Link"),
        "</v2/_catalog?n=2&last=alpha/two>; rel=\"next\""
    );
    let last = client.get("/v2/_catalog?n=2&last=alpha/two", &[]);
    assert_eq!(last.json()["repositories"], json!(["mid", "zeta"]));
    assert!(last.header("Link").is_none());
}

#[test]
fn list_referrers_with_and_without_artifact_type_filter_end_12a_end_12b() {
    let (_server, client) = registry();
    let repo = "discover/referrers";
    let (subject_bytes, subject) = client.push_image(repo, "app", "subject");
    let subject_desc = descriptor(OCI_MANIFEST, &subject_bytes);

    // Artifacts: one SBOM, one signature, one without artifactType (whose
    // type is then its config's media type).
    let empty = b"{}".to_vec();
    client.push_blob(repo, &empty);
    let mut referrers = Vec::new();
    for (artifact_type, payload) in [
        (Some("application/vnd.example.sbom.v1"), "sbom"),
        (Some("application/vnd.example.sig.v1"), "sig"),
        (None, "plain"),
    ] {
        let layer = payload.as_bytes().to_vec();
        client.push_blob(repo, &layer);
        let mut manifest: serde_json::Value = serde_json::from_slice(&image_manifest(
            &empty,
            &[&layer],
            artifact_type,
            Some(subject_desc.clone()),
        ))
        .unwrap();
        manifest["annotations"] = json!({ "org.example.payload": payload });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let d = digest(&bytes);
        let put = client.put_manifest(repo, &d, OCI_MANIFEST, &bytes);
        assert_eq!(put.status, 201, "{put:?}");
        assert_eq!(
            put.must("OCI-Subject"),
            subject,
            "the registry processed the subject"
        );
        referrers.push((d, bytes.len(), artifact_type.unwrap_or(OCI_CONFIG), payload));
    }

    let all = client.get(&format!("/v2/{repo}/referrers/{subject}"), &[]);
    assert_eq!(all.status, 200);
    assert_eq!(content_type(&all), OCI_INDEX);
    assert!(all.header("OCI-Filters-Applied").is_none());
    let index = all.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed = index["manifests"].as_array().unwrap().clone();
    listed.sort_by_key(|m| m["digest"].as_str().unwrap().to_owned());
    let mut expected: Vec<_> = referrers
        .iter()
        .map(|(d, size, artifact_type, payload)| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": d,
                "size": size,
                "artifactType": artifact_type,
                "annotations": { "org.example.payload": payload },
            })
        })
        .collect();
    expected.sort_by_key(|m| m["digest"].as_str().unwrap().to_owned());
    assert_eq!(listed, expected);

    let sboms = client.get(
        &format!("/v2/{repo}/referrers/{subject}?artifactType=application/vnd.example.sbom.v1"),
        &[],
    );
    assert_eq!(sboms.status, 200);
    assert_eq!(sboms.must("OCI-Filters-Applied"), "artifactType");
    let manifests = sboms.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], referrers[0].0.as_str());

    // In pages of one, linked with `Link: <...>; rel="next"`: each referrer
    // once, in digest order; a filter goes with every link.
    for (query, want) in [
        ("n=1", expected.len()),
        ("n=1&artifactType=application/vnd.example.sig.v1", 1),
    ] {
        let mut url = Some(format!("/v2/{repo}/referrers/{subject}?{query}"));
        let (mut seen, mut pages) = (Vec::new(), 0);
        while let Some(u) = url {
            let page = client.get(&u, &[]);
            assert_eq!(page.status, 200, "{u}");
            assert_eq!(
                page.header("OCI-Filters-Applied").is_some(),
                query.contains("artifactType")
            );
            let manifests = page.json()["manifests"].as_array().unwrap().clone();
            assert!(manifests.len() <= 1);
            seen.extend(manifests.into_iter().map(|m| m["digest"].clone()));
            url = page.header("Link").map(|l| {
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                l[1..l.find('>').unwrap()].to_owned()
            });
            pages += 1;
        }
        assert_eq!(
            pages,
            expected.len(),
            "{query}: one referrer examined per page"
        );
        let wanted: Vec<_> = expected
            .iter()
            .filter(|m| {
                !query.contains("artifactType")
                    || m["artifactType"] == "application/vnd.example.sig.v1"
            })
            .map(|m| m["digest"].clone())
            .collect();
        assert_eq!(seen.len(), want);
        assert_eq!(seen, wanted, "{query}");
    }

    // No referrers: an empty index, not a 404.
    let lonely = client.get(
        &format!("/v2/{repo}/referrers/{}", digest(b"nothing refers to me")),
        &[],
    );
    assert_eq!(lonely.status, 200);
    assert_eq!(lonely.json()["manifests"], json!([]));

    client
        .get(&format!("/v2/{repo}/referrers/sha256:nothex"), &[])
        .assert_error(400, "DIGEST_INVALID");
}

#[test]
fn push_referrer_before_its_subject() {
    let (_server, client) = registry();
    let repo = "discover/early";
    let empty = b"{}".to_vec();
    client.push_blob(repo, &empty);
    let absent = json!({ "mediaType": OCI_MANIFEST, "digest": digest(b"later"), "size": 5 });
    let bytes = image_manifest(
        &empty,
        &[],
        Some("application/vnd.example.sig.v1"),
        Some(absent),
    );
    let put = client.put_manifest(repo, &digest(&bytes), OCI_MANIFEST, &bytes);
    assert_eq!(
        put.status, 201,
        "a missing subject must be accepted: {put:?}"
    );
    assert_eq!(put.must("OCI-Subject"), digest(b"later"));
    let list = client.get(&format!("/v2/{repo}/referrers/{}", digest(b"later")), &[]);
    assert_eq!(list.json()["manifests"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------- content management

#[test]
fn delete_tag_then_manifest_end_9() {
    let (_server, client) = registry();
    let repo = "manage/manifests";
    let (manifest, d) = client.push_image(repo, "one", "delete");
    assert_eq!(
        client
            .put_manifest(repo, "two", OCI_MANIFEST, &manifest)
            .status,
        201
    );

    // Deleting a tag leaves the manifest and its other tags.
    assert_eq!(
        client.delete(&format!("/v2/{repo}/manifests/one")).status,
        202
    );
    client
        .get(&format!("/v2/{repo}/manifests/one"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(
        client.get(&format!("/v2/{repo}/manifests/{d}"), &[]).status,
        200
    );
    assert_eq!(
        client.get(&format!("/v2/{repo}/manifests/two"), &[]).status,
        200
    );
    assert_eq!(
        client.get(&format!("/v2/{repo}/tags/list"), &[]).json()["tags"],
        json!(["two"])
    );

    // Deleting the manifest takes the tags pointing to it along.
    assert_eq!(
        client.delete(&format!("/v2/{repo}/manifests/{d}")).status,
        202
    );
    client
        .get(&format!("/v2/{repo}/manifests/{d}"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    client
        .get(&format!("/v2/{repo}/manifests/two"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");

    client
        .delete(&format!("/v2/{repo}/manifests/{d}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
    client
        .delete(&format!("/v2/{repo}/manifests/one"))
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn delete_blob_end_10() {
    let (_server, client) = registry();
    let d = client.push_blob("manage/blobs", b"short-lived");
    client.push_blob("manage/other", b"short-lived");

    assert_eq!(
        client.delete(&format!("/v2/manage/blobs/blobs/{d}")).status,
        202
    );
    assert_eq!(
        client
            .head(&format!("/v2/manage/blobs/blobs/{d}"), &[])
            .status,
        404
    );
    client
        .get(&format!("/v2/manage/blobs/blobs/{d}"), &[])
        .assert_error(404, "BLOB_UNKNOWN");
    client
        .delete(&format!("/v2/manage/blobs/blobs/{d}"))
        .assert_error(404, "BLOB_UNKNOWN");
    // Another repository linking the same content keeps it.
    assert_eq!(
        client.get(&format!("/v2/manage/other/blobs/{d}"), &[]).body,
        b"short-lived"
    );
}

// ----------------------------------------------------------------- errors

#[test]
fn error_unknown_blob_manifest_and_repository() {
    let (_server, client) = registry();
    client.push_image("errors/known", "v1", "errors");
    let nothing = digest(b"nothing");
    client
        .get(&format!("/v2/errors/known/blobs/{nothing}"), &[])
        .assert_error(404, "BLOB_UNKNOWN");
    client
        .get("/v2/errors/known/manifests/v9", &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    client
        .get(&format!("/v2/errors/known/manifests/{nothing}"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    client
        .get("/v2/errors/unknown/tags/list", &[])
        .assert_error(404, "NAME_UNKNOWN");
    // Error bodies are JSON.
    let resp = client.get("/v2/errors/known/manifests/v9", &[]);
    assert_eq!(content_type(&resp), "application/json");
    assert!(resp.json()["errors"][0]["message"].is_string());
}

#[test]
fn error_invalid_name() {
    let (_server, client) = registry();
    for name in ["Upper/Case", "trailing-/x", "a//b", "double..dot"] {
        let post = client.post(&format!("/v2/{name}/blobs/uploads/"), &[], b"");
        post.assert_error(400, "NAME_INVALID");
        client
            .get(&format!("/v2/{name}/tags/list"), &[])
            .assert_error(400, "NAME_INVALID");
    }
}

#[test]
fn error_invalid_digest() {
    let (_server, client) = registry();
    for bad in [
        "sha256:abc",
        "sha256:ZZZZ",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "notadigest",
    ] {
        client
            .get(&format!("/v2/errors/digest/blobs/{bad}"), &[])
            .assert_error(400, "DIGEST_INVALID");
    }
    let upload = location_path(&client.post("/v2/errors/digest/blobs/uploads/", &[], b""));
    client
        .put(
            &Client::with_query(&upload, "digest=sha256:abc"),
            &[OCTET],
            b"content",
        )
        .assert_error(400, "DIGEST_INVALID");
    client
        .put(&upload, &[OCTET], b"content")
        .assert_error(400, "DIGEST_INVALID");
}

#[test]
fn error_digest_mismatch_leaves_nothing() {
    let (server, client) = registry();
    let content = b"the real content".to_vec();
    let claimed = digest(b"a different content");
    let upload = location_path(&client.post("/v2/errors/mismatch/blobs/uploads/", &[], b""));
    let put = client.put(
        &Client::with_query(&upload, &format!("digest={claimed}")),
        &[OCTET],
        &content,
    );
    put.assert_error(400, "DIGEST_INVALID");

    for d in [&claimed, &digest(&content)] {
        assert_eq!(
            client
                .head(&format!("/v2/errors/mismatch/blobs/{d}"), &[])
                .status,
            404
        );
        assert!(!blob_data_path(&server.storage(), d).exists());
    }

    // A manifest pushed by digest must match it too.
    let (manifest, _) = client.push_image("errors/mismatch", "v1", "mismatch");
    let put = client.put_manifest("errors/mismatch", &claimed, OCI_MANIFEST, &manifest);
    put.assert_error(400, "DIGEST_INVALID");
}

#[test]
fn error_manifest_referencing_unknown_blob() {
    let (_server, client) = registry();
    let config = b"{}".to_vec();
    client.push_blob("errors/refs", &config);
    let manifest = image_manifest(&config, &[b"layer never pushed"], None, None);
    client
        .put_manifest("errors/refs", "v1", OCI_MANIFEST, &manifest)
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");

    // An index over a manifest the repository does not have.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, b"{\"no\":\"such manifest\"}")],
    }))
    .unwrap();
    client
        .put_manifest("errors/refs", "idx", OCI_INDEX, &index)
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    client
        .get("/v2/errors/refs/manifests/v1", &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn error_invalid_manifest() {
    let (_server, client) = registry();
    client
        .put_manifest("errors/invalid", "v1", OCI_MANIFEST, b"not json")
        .assert_error(400, "MANIFEST_INVALID");
    let config = b"{}".to_vec();
    client.push_blob("errors/invalid", &config);
    // The body's mediaType and the Content-Type disagree.
    let manifest = image_manifest(&config, &[], None, None);
    client
        .put_manifest("errors/invalid", "v1", OCI_INDEX, &manifest)
        .assert_error(400, "MANIFEST_INVALID");
    // Layers must be descriptors.
    let bad = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [{ "mediaType": OCI_LAYER }],
    }))
    .unwrap();
    client
        .put_manifest("errors/invalid", "v1", OCI_MANIFEST, &bad)
        .assert_error(400, "MANIFEST_INVALID");
}

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
    assert_eq!(put.status, 413, "{put:?}");
}
