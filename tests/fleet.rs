//! Three `registry` processes on one store, as on three hosts of a pool:
//! uploads continued by any process, 32 concurrent writers of one tag,
//! read-after-write across processes, 16 writers of one blob.
//!
//! The `fs_*` tests share one directory. The `s3_*` tests share one bucket
//! of the S3 server named by `REGISTRY_TEST_S3_URL` (`scripts/test.sh` starts
//! moto and sets it); without it they are ignored, not passed.

mod common;

use std::sync::Arc;

use common::fleet::Fleet;
use common::http::Client;
use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

fn upload_rotating_across_processes(fleet: &Fleet) {
    let repo = "fleet/rotate";
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = digest(&data);
    let start = fleet
        .client(0)
        .post(&format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(start.status, 202, "{start:?}");
    let mut location = start.must("Location").to_owned();
    let mut offset = 0usize;
    for (i, chunk) in data.chunks(700_000).enumerate() {
        // Each chunk goes to the next process.
        let c = fleet.client(i + 1);
        let range = format!("{}-{}", offset, offset + chunk.len() - 1);
        let r = c.patch(
            &location,
            &[
                ("Content-Range", &range),
                ("Content-Type", "application/octet-stream"),
            ],
            chunk,
        );
        assert_eq!(r.status, 202, "chunk {i} on server {}: {r:?}", (i + 1) % 3);
        assert_eq!(r.must("Range"), format!("0-{}", offset + chunk.len() - 1));
        offset += chunk.len();
        location = r.must("Location").to_owned();
        // Any process reports the same progress.
        let status = fleet.client(i + 2).get(&location, &[]);
        assert_eq!(status.status, 204, "{status:?}");
        assert_eq!(status.must("Range"), format!("0-{}", offset - 1));
    }
    // The same chunk replayed on another process is refused, and harmless.
    let last = data.chunks(700_000).last().unwrap();
    let range = format!("{}-{}", offset - last.len(), offset - 1);
    let replay = fleet
        .client(2)
        .patch(&location, &[("Content-Range", &range)], last);
    assert_eq!(replay.status, 416, "{replay:?}");
    let done = fleet.client(1).put(
        &Client::with_query(&location, &format!("digest={d}")),
        &[],
        b"",
    );
    assert_eq!(done.status, 201, "{done:?}");
    for i in 0..3 {
        let got = fleet.client(i).get(&format!("/v2/{repo}/blobs/{d}"), &[]);
        assert_eq!(got.status, 200);
        assert!(got.body == data, "server {i} serves the blob");
    }
}

fn tag_writers_race_across_processes(fleet: &Fleet) {
    let repo = "fleet/race";
    let config = b"{\"race\":true}".to_vec();
    let layer = b"one shared layer".to_vec();
    fleet.client(0).push_blob(repo, &config);
    fleet.client(0).push_blob(repo, &layer);
    let manifests: Vec<Vec<u8>> = (0..32)
        .map(|i| {
            let mut m: serde_json::Value =
                serde_json::from_slice(&image_manifest(&config, &[&layer], None, None)).unwrap();
            m["annotations"] = serde_json::json!({ "writer": i.to_string() });
            serde_json::to_vec(&m).unwrap()
        })
        .collect();
    let manifests = Arc::new(manifests);
    let barrier = Arc::new(std::sync::Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let (manifests, barrier) = (manifests.clone(), barrier.clone());
            let client = fleet.client(i);
            std::thread::spawn(move || {
                barrier.wait();
                client
                    .put_manifest(repo, "latest", OCI_MANIFEST, &manifests[i])
                    .status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 201);
    }
    // Every process answers with the same manifest, one of those pushed.
    let answers: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let r = fleet.client(i).get(
                &format!("/v2/{repo}/manifests/latest"),
                &[("Accept", OCI_MANIFEST)],
            );
            assert_eq!(r.status, 200);
            r.body
        })
        .collect();
    assert!(
        manifests.contains(&answers[0]),
        "the tag points at a pushed manifest"
    );
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "all processes agree on the tag"
    );
    // Every pushed revision stays readable by digest, everywhere.
    for (i, m) in manifests.iter().enumerate() {
        let r = fleet.client(i).get(
            &format!("/v2/{repo}/manifests/{}", digest(m)),
            &[("Accept", OCI_MANIFEST)],
        );
        assert_eq!(r.status, 200);
        assert!(&r.body == m);
    }
}

fn read_after_write_across_processes(fleet: &Fleet) {
    let repo = "fleet/raw";
    for round in 0..10 {
        let writer = fleet.client(round);
        let (manifest, d) = writer.push_image(repo, "latest", &format!("round {round}"));
        for reader in 0..3 {
            let r = fleet.client(reader).get(
                &format!("/v2/{repo}/manifests/latest"),
                &[("Accept", OCI_MANIFEST)],
            );
            assert_eq!(r.status, 200);
            assert_eq!(
                r.must("Docker-Content-Digest"),
                d,
                "round {round}: server {reader} is stale"
            );
            assert!(r.body == manifest);
        }
    }
}

fn one_blob_from_sixteen_writers(fleet: &Fleet) -> String {
    let repo = "fleet/same-blob";
    let data = Arc::new(
        (0..1_000_000u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let d = digest(&data);
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (data, barrier, d) = (data.clone(), barrier.clone(), d.clone());
            let client = fleet.client(i);
            std::thread::spawn(move || {
                barrier.wait();
                let r = client.post(
                    &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                    &[("Content-Type", "application/octet-stream")],
                    &data,
                );
                r.status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 201);
    }
    for i in 0..3 {
        let r = fleet.client(i).get(&format!("/v2/{repo}/blobs/{d}"), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == *data);
    }
    d
}

#[test]
fn fs_upload_rotating_across_processes() {
    upload_rotating_across_processes(&Fleet::on_fs());
}

#[test]
fn fs_tag_writers_race_across_processes() {
    tag_writers_race_across_processes(&Fleet::on_fs());
}

#[test]
fn fs_read_after_write_across_processes() {
    read_after_write_across_processes(&Fleet::on_fs());
}

#[test]
fn fs_one_blob_from_sixteen_writers() {
    let fleet = Fleet::on_fs();
    let d = one_blob_from_sixteen_writers(&fleet);
    // One copy, and no upload left behind.
    let store = fleet.shared_dir().unwrap().join("store");
    assert!(registry_testkit::content::blob_data_path(&store, &d).is_file());
    let uploads = store.join("docker/registry/v2/repositories/fleet/same-blob/_uploads");
    let left = std::fs::read_dir(&uploads).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "every upload session was cleaned up");
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_upload_rotating_across_processes() {
    upload_rotating_across_processes(&Fleet::on_s3());
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_tag_writers_race_across_processes() {
    tag_writers_race_across_processes(&Fleet::on_s3());
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_read_after_write_across_processes() {
    read_after_write_across_processes(&Fleet::on_s3());
}

#[test]
#[ignore = "needs an S3 server: set REGISTRY_TEST_S3_URL (scripts/test.sh does)"]
fn s3_one_blob_from_sixteen_writers() {
    one_blob_from_sixteen_writers(&Fleet::on_s3());
}
