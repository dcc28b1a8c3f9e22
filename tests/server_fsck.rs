//! `registry fsck`: finds what a delete that raced a push in earlier
//! versions left (a tag naming a manifest the repository no longer has), a
//! tag folder without `current/link`, and a revision whose bytes are gone;
//! reports them with exit code 1, repairs them with `--repair`, and leaves
//! every live image as it was.

mod common;

use std::path::Path;

use common::http::Client;
use common::process::{TestServer, run_in};
use registry_testkit::content::blob_data_path;

const REPO: &str = "docker/registry/v2/repositories/fsck/app";

fn fsck(dir: &Path, repair: bool) -> (Option<i32>, String) {
    let mut args = vec!["fsck", "--storage", "fs://data"];
    if repair {
        args.push("--repair");
    }
    let out = run_in(dir, &args, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn revision_dir(store: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    store.join(format!("{REPO}/_manifests/revisions/sha256/{hex}"))
}

#[test]
fn fsck_reports_then_repairs_dangling_and_phantom_tags() {
    let server = TestServer::start();
    let client = Client::new(&server);
    client.push_image("fsck/app", "good", "one");
    let (_, dangling) = client.push_image("fsck/app", "dangling", "two");
    let (_, no_bytes) = client.push_image("fsck/app", "bytes-gone", "three");
    let stopped = server.stop();
    let dir = stopped.dir;
    let store = dir.path().join("data");

    // What the old delete race left: a tag whose revision link is gone.
    std::fs::remove_dir_all(revision_dir(&store, &dangling)).unwrap();
    // A tag folder with only its history.
    let phantom = store.join(format!("{REPO}/_manifests/tags/phantom/index/sha256/ab"));
    std::fs::create_dir_all(&phantom).unwrap();
    std::fs::write(phantom.join("link"), "sha256:ab").unwrap();
    // Manifest bytes removed by another tool.
    std::fs::remove_file(blob_data_path(&store, &no_bytes)).unwrap();

    let (code, out) = fsck(dir.path(), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("fsck/app:dangling: dangling tag"), "{out}");
    assert!(
        out.contains("fsck/app:phantom: tag folder without current/link"),
        "{out}"
    );
    assert!(
        out.contains(&format!("fsck/app@{no_bytes}: revision link")),
        "{out}"
    );
    assert!(out.contains("3 problems found, 0 repaired"), "{out}");
    assert!(out.contains("run with --repair"), "{out}");
    // Reporting changed nothing.
    assert!(
        store
            .join(format!("{REPO}/_manifests/tags/dangling"))
            .exists()
    );

    let (code, out) = fsck(dir.path(), true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 problems found, 3 repaired"), "{out}");

    let (code, out) = fsck(dir.path(), false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 problems found"), "{out}");

    // The live image is untouched; the repaired tags are gone everywhere.
    let server = TestServer::launch().in_dir(dir).start();
    let client = Client::new(&server);
    let tags = client.get("/v2/fsck/app/tags/list", &[]);
    assert_eq!(tags.status, 200);
    assert_eq!(tags.json()["tags"], serde_json::json!(["good"]));
    assert_eq!(client.get("/v2/fsck/app/manifests/good", &[]).status, 200);
    for gone in ["dangling", "phantom", "bytes-gone"] {
        client
            .get(&format!("/v2/fsck/app/manifests/{gone}"), &[])
            .assert_error(404, "MANIFEST_UNKNOWN");
    }
}

#[test]
fn fsck_of_a_clean_or_empty_store_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = fsck(dir.path(), false);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("fsck: 0 repositories, 0 problems found"),
        "{out}"
    );
}

/// A referrer link left behind by a manifest that is gone (another tool,
/// or a delete from before referrer links were removed with it):
/// `/referrers` lists a manifest that cannot be pulled. `fsck` reports it
/// and `--repair` removes the link; the live referrer stays listed.
#[test]
fn fsck_repairs_referrers_whose_manifest_is_gone() {
    use registry_testkit::content::{OCI_MANIFEST, digest, image_manifest};

    let server = TestServer::start();
    let client = Client::new(&server);
    let (subject_bytes, subject) = client.push_image("fsck/app", "subject", "s");
    let about = serde_json::json!({
        "mediaType": OCI_MANIFEST, "digest": subject, "size": subject_bytes.len(),
    });
    let mut referrers = Vec::new();
    for name in ["kept signature", "orphaned signature"] {
        client.push_blob("fsck/app", name.as_bytes());
        let m = image_manifest(
            name.as_bytes(),
            &[],
            Some("application/example"),
            Some(about.clone()),
        );
        let put = client.put_manifest("fsck/app", &digest(&m), OCI_MANIFEST, &m);
        assert_eq!(put.status, 201);
        referrers.push(digest(&m));
    }
    let stopped = server.stop();
    let dir = stopped.dir;
    let store = dir.path().join("data");
    std::fs::remove_dir_all(revision_dir(&store, &referrers[1])).unwrap();

    let (code, out) = fsck(dir.path(), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "fsck/app@{subject}: dangling referrer (lists {}",
            referrers[1]
        )),
        "{out}"
    );
    assert!(out.contains("1 problems found, 0 repaired"), "{out}");
    let (code, out) = fsck(dir.path(), true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 problems found, 1 repaired"), "{out}");

    let server = TestServer::launch().in_dir(dir).start();
    let client = Client::new(&server);
    let listed = client.get(&format!("/v2/fsck/app/referrers/{subject}"), &[]);
    assert_eq!(listed.status, 200);
    let found: Vec<String> = listed.json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(found, vec![referrers[0].clone()]);
}
