//! The filesystem store's chunk appends, seen from the files they leave:
//! chunks of one upload share one file, the commit renames it without a
//! copy, and a writer that died mid-append (its lease and stray bytes left
//! behind) never makes it into a blob.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{BlobStore, ByteStream, Digest, RepositoryName, UploadId, UploadStore};
use registry_storage::OpendalStore;

fn body(data: &[u8]) -> ByteStream {
    let pieces: Vec<_> = data
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn read_all(s: &OpendalStore, r: &RepositoryName, d: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = s.read_blob(r, d, None).await.unwrap().body;
    while let Some(b) = body.next().await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}

/// A fresh store in a temporary directory, with an upload started in `r`
/// for `data` (`len` bytes of test content), whose digest is `d`.
struct Case {
    dir: tempfile::TempDir,
    s: OpendalStore,
    r: RepositoryName,
    data: Vec<u8>,
    d: Digest,
    id: UploadId,
}

async fn case(repo: &str, len: usize, seed: u8) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let s = OpendalStore::fs(dir.path()).unwrap();
    let r = RepositoryName::parse(repo).unwrap();
    let data = content(len, seed);
    let d = Digest::sha256_of(&data);
    let id = s.start_upload(&r).await.unwrap().id;
    Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    }
}

fn chunks_dir(root: &Path, r: &RepositoryName, id: &UploadId) -> PathBuf {
    root.join(format!(
        "docker/registry/v2/repositories/{r}/_uploads/{id}/chunks"
    ))
}

/// The chunk data files of an upload (not the leases), sorted.
fn data_files(root: &Path, r: &RepositoryName, id: &UploadId) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chunks_dir(root, r, id))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().contains(".append-"))
        .collect();
    files.sort();
    files
}

fn blob_file(root: &Path, d: &Digest) -> PathBuf {
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &d.hex()[..2],
        d.hex()
    ))
}

#[tokio::test]
async fn chunks_share_one_file_and_commit_renames_it() {
    let Case {
        dir,
        s: one,
        r,
        data,
        d,
        id,
    } = case("app/append", 300_000, 3).await;
    let two = OpendalStore::fs(dir.path()).unwrap();
    // Three chunks, from two store instances (as from two processes).
    for (i, part) in data.chunks(100_000).enumerate() {
        let s = if i % 2 == 0 { &one } else { &two };
        s.write_chunk(&r, &id, Some(i as u64 * 100_000), body(part), None)
            .await
            .unwrap();
    }
    let files = data_files(dir.path(), &r, &id);
    assert_eq!(files.len(), 1, "one file for all chunks: {files:?}");
    let meta = std::fs::metadata(&files[0]).unwrap();
    assert_eq!(meta.len(), 300_000);
    two.complete_upload(&r, &id, &d, None).await.unwrap();
    // The blob is that very file, renamed: nothing was copied.
    let blob = std::fs::metadata(blob_file(dir.path(), &d)).unwrap();
    assert_eq!((blob.dev(), blob.ino()), (meta.dev(), meta.ino()));
    assert_eq!(read_all(&one, &r, &d).await, data);
}

#[tokio::test]
async fn a_dead_appender_never_reaches_the_blob() {
    let Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    } = case("app/dead", 200_000, 9).await;
    s.write_chunk(&r, &id, Some(0), body(&data[..80_000]), None)
        .await
        .unwrap();
    // A writer took the lease at 80,000, wrote some bytes, and was killed.
    let file = data_files(dir.path(), &r, &id).remove(0);
    let lease = format!("{}.append-{:020}", file.display(), 80_000);
    std::fs::write(&lease, b"").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"stray bytes of a dead writer").unwrap();
    drop(f);
    // The next chunk cannot append there, so it goes to a file of its own.
    s.write_chunk(&r, &id, Some(80_000), body(&data[80_000..150_000]), None)
        .await
        .unwrap();
    assert_eq!(data_files(dir.path(), &r, &id).len(), 2);
    let info = s
        .complete_upload(&r, &id, &d, Some((body(&data[150_000..]), None)))
        .await
        .unwrap();
    assert_eq!(info.size, 200_000);
    assert_eq!(read_all(&s, &r, &d).await, data);
    assert_eq!(
        std::fs::metadata(blob_file(dir.path(), &d)).unwrap().len(),
        200_000
    );
}

#[tokio::test]
async fn a_lease_held_at_the_end_makes_the_commit_copy() {
    let Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    } = case("app/held", 100_000, 4).await;
    s.write_chunk(&r, &id, Some(0), body(&data), None)
        .await
        .unwrap();
    // Someone holds the lease to append at the end (a slow or dead writer):
    // renaming the file into place would let it write into the blob.
    let file = data_files(dir.path(), &r, &id).remove(0);
    let ino = std::fs::metadata(&file).unwrap().ino();
    std::fs::write(format!("{}.append-{:020}", file.display(), 100_000), b"").unwrap();
    s.complete_upload(&r, &id, &d, None).await.unwrap();
    let blob = std::fs::metadata(blob_file(dir.path(), &d)).unwrap();
    assert_ne!(blob.ino(), ino, "the commit copied instead of renaming");
    assert_eq!(read_all(&s, &r, &d).await, data);
}

#[tokio::test]
async fn a_failed_append_is_cut_back_and_can_be_retried_in_place() {
    let Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    } = case("app/retry", 50_000, 5).await;
    s.write_chunk(&r, &id, Some(0), body(&data[..20_000]), None)
        .await
        .unwrap();
    let broken = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(registry_core::Error::new(
            registry_core::ErrorKind::Incomplete,
            "client gone",
        )),
    ])
    .boxed();
    s.write_chunk(&r, &id, Some(20_000), broken, None)
        .await
        .unwrap_err();
    let files = data_files(dir.path(), &r, &id);
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 20_000);
    // The lease was given up: the retry appends to the same file.
    s.write_chunk(&r, &id, Some(20_000), body(&data[20_000..]), None)
        .await
        .unwrap();
    assert_eq!(data_files(dir.path(), &r, &id), files);
    s.complete_upload(&r, &id, &d, None).await.unwrap();
    assert_eq!(read_all(&s, &r, &d).await, data);
}

/// Mark every part record of an upload as written, unflushed, in another
/// boot of the machine: what the records look like after a power loss.
fn from_before_a_reboot(root: &Path, r: &RepositoryName, id: &UploadId) {
    let parts = root.join(format!(
        "docker/registry/v2/repositories/{r}/_uploads/{id}/parts"
    ));
    for entry in std::fs::read_dir(parts).unwrap() {
        let path = entry.unwrap().path();
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record["unflushed_boot"] = "a-boot-before-a-power-loss".into();
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    }
}

#[tokio::test]
async fn chunks_from_before_a_reboot_are_read_again_and_kept_if_intact() {
    let Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    } = case("app/reboot-ok", 120_000, 6).await;
    for (i, part) in data.chunks(40_000).enumerate() {
        s.write_chunk(&r, &id, Some(i as u64 * 40_000), body(part), None)
            .await
            .unwrap();
    }
    from_before_a_reboot(dir.path(), &r, &id);
    s.complete_upload(&r, &id, &d, None).await.unwrap();
    assert_eq!(read_all(&s, &r, &d).await, data);
}

#[tokio::test]
async fn chunks_lost_in_a_power_loss_never_become_a_blob() {
    let Case {
        dir,
        s,
        r,
        data,
        d,
        id,
    } = case("app/reboot-lost", 120_000, 8).await;
    s.write_chunk(&r, &id, Some(0), body(&data[..80_000]), None)
        .await
        .unwrap();
    // The power went out before the chunk's pages reached the disk: the
    // record survived, the bytes came back as zeros.
    from_before_a_reboot(dir.path(), &r, &id);
    let file = data_files(dir.path(), &r, &id).remove(0);
    std::fs::write(&file, vec![0u8; 80_000]).unwrap();
    let e = s
        .complete_upload(&r, &id, &d, Some((body(&data[80_000..]), None)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), registry_core::ErrorKind::DigestInvalid, "{e}");
    assert!(!blob_file(dir.path(), &d).exists());
    assert!(s.stat_blob(&r, &d).await.is_err());
}

#[tokio::test]
async fn an_upload_completed_meanwhile_is_unknown_not_recreated() {
    let Case { dir, s, r, id, .. } = case("app/gone", 0, 0).await;
    s.write_chunk(&r, &id, Some(0), body(b"first"), None)
        .await
        .unwrap();
    // Another process completed the upload between this request's read of
    // the chain and its lease: the chunk files are gone.
    std::fs::remove_dir_all(chunks_dir(dir.path(), &r, &id)).unwrap();
    let e = s
        .write_chunk(&r, &id, Some(5), body(b"second"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), registry_core::ErrorKind::BlobUploadUnknown, "{e}");
    assert!(!chunks_dir(dir.path(), &r, &id).exists());
}
