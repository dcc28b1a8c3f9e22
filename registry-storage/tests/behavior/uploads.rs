//! Upload behaviour: chunk order, races, continuation by another process.

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{BlobStore, Digest, ErrorKind, RepositoryName, UploadId, UploadStore};

use crate::support::*;

pub async fn upload_chunked_in_order(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/chunked");
    let data = content(5 * 1024 * 1024 + 3, 10);
    let d = Digest::sha256_of(&data);
    let st = s.start_upload(&r).await.unwrap();
    assert_eq!(st.offset, 0);
    assert!(
        st.id.as_str().len() >= 32,
        "ids carry at least 128 random bits"
    );
    let mut off = 0u64;
    for piece in data.chunks(1024 * 1024) {
        let next = s
            .write_chunk(
                &r,
                &st.id,
                Some(off),
                body(piece, 100_000),
                Some(piece.len() as u64),
            )
            .await
            .unwrap();
        off += piece.len() as u64;
        assert_eq!(next.offset, off);
        assert_eq!(s.upload_status(&r, &st.id).await.unwrap().offset, off);
    }
    let info = s.complete_upload(&r, &st.id, &d, None).await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(
        collect(s.read_blob(&r, &d, None).await.unwrap().body).await,
        data
    );
    // The session is gone.
    assert_eq!(
        s.upload_status(&r, &st.id).await.unwrap_err().kind(),
        ErrorKind::BlobUploadUnknown
    );
}

pub async fn upload_wrong_offset(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/offset");
    let st = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st.id, None, body(b"0123456789", 3), None)
        .await
        .unwrap();
    for bad in [0, 5, 11, 1000] {
        let e = s
            .write_chunk(&r, &st.id, Some(bad), body(b"x", 1), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RangeInvalid, "offset {bad}");
    }
    assert_eq!(s.upload_status(&r, &st.id).await.unwrap().offset, 10);
    s.write_chunk(&r, &st.id, Some(10), body(b"abc", 3), None)
        .await
        .unwrap();
    let d = Digest::sha256_of(b"0123456789abc");
    // A last chunk sent with the completing request.
    let st2 = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st2.id, Some(0), body(b"0123456789", 10), None)
        .await
        .unwrap();
    let info = s
        .complete_upload(&r, &st2.id, &d, Some((body(b"abc", 1), Some(3))))
        .await
        .unwrap();
    assert_eq!(info.size, 13);
    assert_eq!(
        s.complete_upload(&r, &st.id, &d, None).await.unwrap().size,
        13
    );
}

/// Eight writers race for the chunk at `at` of one upload, with different
/// content (writer `i` sends `len(i)` bytes), over two store instances.
/// Every loser must be told RANGE_INVALID; returns the winners' content and
/// the offset each was answered.
async fn race_for(
    b: &dyn Backend,
    r: &RepositoryName,
    id: &UploadId,
    at: u64,
    len: impl Fn(usize) -> usize,
) -> Vec<(Vec<u8>, u64)> {
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let s = if i % 2 == 0 {
            b.store()
        } else {
            b.another_store()
        };
        let (r, id) = (r.clone(), id.clone());
        let data = content(len(i as usize), i);
        tasks.push(tokio::spawn(async move {
            let res = s
                .write_chunk(&r, &id, Some(at), body(&data, 1000), None)
                .await;
            (data, res)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (data, res) = t.await.unwrap();
        match res {
            Ok(st) => winners.push((data, st.offset)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::RangeInvalid, "{e}"),
        }
    }
    winners
}

pub async fn upload_racing_writers_one_wins(b: &dyn Backend) {
    let r = repo("up/race");
    let st = b.store().start_upload(&r).await.unwrap();
    let mut winners = race_for(b, &r, &st.id, 0, |i| 50_000 + i).await;
    assert_eq!(winners.len(), 1, "exactly one writer wins offset 0");
    let (data, offset) = winners.pop().unwrap();
    assert_eq!(offset, data.len() as u64);
    let s = b.store();
    let d = Digest::sha256_of(&data);
    s.complete_upload(&r, &st.id, &d, None).await.unwrap();
    assert_eq!(
        collect(s.read_blob(&r, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn upload_racing_appenders_one_wins(b: &dyn Backend) {
    // As above, but at the end of an accepted chunk: on the filesystem the
    // racers compete for the lease to append to that chunk's file, and the
    // losers fall back to files of their own.
    let r = repo("up/race-append");
    let s = b.store();
    let st = s.start_upload(&r).await.unwrap();
    let head = content(30_000, 99);
    s.write_chunk(&r, &st.id, Some(0), body(&head, 4096), None)
        .await
        .unwrap();
    let mut winners = race_for(b, &r, &st.id, 30_000, |i| 40_000 + 1000 * i).await;
    assert_eq!(winners.len(), 1, "exactly one writer wins offset 30000");
    let (tail, offset) = winners.pop().unwrap();
    assert_eq!(offset, 30_000 + tail.len() as u64);
    // One more chunk, then an empty completing PUT from the other store.
    let more = content(5_000, 7);
    s.write_chunk(&r, &st.id, Some(offset), body(&more, 512), None)
        .await
        .unwrap();
    let all = [head, tail, more].concat();
    let d = Digest::sha256_of(&all);
    let info = b
        .another_store()
        .complete_upload(&r, &st.id, &d, None)
        .await
        .unwrap();
    assert_eq!(info.size, all.len() as u64);
    assert_eq!(
        collect(s.read_blob(&r, &d, None).await.unwrap().body).await,
        all
    );
}

pub async fn upload_continued_by_another_store(b: &dyn Backend) {
    let (one, two, three) = (b.store(), b.another_store(), b.store());
    let r = repo("up/handoff");
    let data = content(300_000, 11);
    let d = Digest::sha256_of(&data);
    let st = one.start_upload(&r).await.unwrap();
    one.write_chunk(&r, &st.id, Some(0), body(&data[..100_000], 4096), None)
        .await
        .unwrap();
    two.write_chunk(
        &r,
        &st.id,
        Some(100_000),
        body(&data[100_000..200_000], 4096),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        three.upload_status(&r, &st.id).await.unwrap().offset,
        200_000
    );
    let info = three
        .complete_upload(&r, &st.id, &d, Some((body(&data[200_000..], 4096), None)))
        .await
        .unwrap();
    assert_eq!(info.size, 300_000);
    assert_eq!(
        collect(one.read_blob(&r, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn upload_cancel(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/cancel");
    let st = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st.id, None, body(b"doomed", 6), None)
        .await
        .unwrap();
    s.cancel_upload(&r, &st.id).await.unwrap();
    for e in [
        s.upload_status(&r, &st.id).await.unwrap_err(),
        s.write_chunk(&r, &st.id, None, body(b"x", 1), None)
            .await
            .unwrap_err(),
        s.complete_upload(&r, &st.id, &Digest::sha256_of(b"doomed"), None)
            .await
            .unwrap_err(),
        s.cancel_upload(&r, &st.id).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown);
    }
    assert!(!blob_data_exists(&s, &Digest::sha256_of(b"doomed")).await);
}

pub async fn upload_unknown_ids(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/unknown");
    let forged = UploadId::parse("00000000000000000000000000000000").unwrap();
    assert_eq!(
        s.upload_status(&r, &forged).await.unwrap_err().kind(),
        ErrorKind::BlobUploadUnknown
    );
    // An id from another repository is unknown here.
    let st = s.start_upload(&repo("elsewhere")).await.unwrap();
    assert_eq!(
        s.upload_status(&r, &st.id).await.unwrap_err().kind(),
        ErrorKind::BlobUploadUnknown
    );
    let e = s
        .write_chunk(&r, &st.id, None, body(b"x", 1), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown);
}

/// A body that fails half way: the client went away.
fn broken_body() -> registry_core::ByteStream {
    futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(registry_core::Error::new(
            ErrorKind::Incomplete,
            "client gone",
        )),
    ])
    .boxed()
}

pub async fn upload_failed_stream_keeps_offset(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/broken");
    let st = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st.id, None, body(b"good", 4), None)
        .await
        .unwrap();
    let broken = broken_body();
    let e = s
        .write_chunk(&r, &st.id, None, broken, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Incomplete);
    assert_eq!(s.upload_status(&r, &st.id).await.unwrap().offset, 4);
    // A completing PUT whose body fails the same way leaves the upload
    // open for more chunks (its seal is taken back).
    let broken = broken_body();
    let e = s
        .complete_upload(&r, &st.id, &Digest::sha256_of(b"x"), Some((broken, None)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Incomplete);
    assert_eq!(s.upload_status(&r, &st.id).await.unwrap().offset, 4);
    s.write_chunk(&r, &st.id, Some(4), body(b"-more", 5), None)
        .await
        .unwrap();
    let d = Digest::sha256_of(b"good-more");
    assert_eq!(
        s.complete_upload(&r, &st.id, &d, None).await.unwrap().size,
        9
    );
}

pub async fn upload_digest_mismatch_ends_session(b: &dyn Backend) {
    let s = b.store();
    let r = repo("up/mismatch");
    let st = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st.id, None, body(b"actual", 6), None)
        .await
        .unwrap();
    let claimed = Digest::sha256_of(b"claimed");
    let e = s
        .complete_upload(&r, &st.id, &claimed, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestInvalid);
    assert!(!blob_data_exists(&s, &claimed).await);
    assert!(!blob_data_exists(&s, &Digest::sha256_of(b"actual")).await);
    assert_eq!(
        s.upload_status(&r, &st.id).await.unwrap_err().kind(),
        ErrorKind::BlobUploadUnknown
    );
}

pub async fn backend_honours_conditional_writes(b: &dyn Backend) {
    b.store().check_conditional_writes().await.unwrap();
}

pub async fn abandoned_uploads_are_purged(b: &dyn Backend) {
    let s = b.store();
    let (r1, r2) = (repo("purge/one"), repo("purge/two/deep"));
    let old = s.start_upload(&r1).await.unwrap();
    s.write_chunk(&r1, &old.id, None, body(b"stale", 5), None)
        .await
        .unwrap();
    let other = s.start_upload(&r2).await.unwrap();
    // Nothing is a day old yet.
    assert_eq!(
        s.purge_uploads(std::time::Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.upload_status(&r1, &old.id).await.unwrap().offset, 5);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = s.start_upload(&r1).await.unwrap();
    assert_eq!(
        s.purge_uploads(std::time::Duration::from_secs(1))
            .await
            .unwrap(),
        2
    );
    for (r, id) in [(&r1, &old.id), (&r2, &other.id)] {
        assert_eq!(
            s.upload_status(r, id).await.unwrap_err().kind(),
            ErrorKind::BlobUploadUnknown
        );
    }
    assert_eq!(s.upload_status(&r1, &fresh.id).await.unwrap().offset, 0);
}

pub async fn orphan_upload_leftovers_are_purged(b: &dyn Backend) {
    // What a chunk racing its upload's completion can leave: chunk objects
    // (or directories) with no `startedat`.
    let s = b.store();
    let r = repo("purge/orphan");
    let st = s.start_upload(&r).await.unwrap();
    s.write_chunk(&r, &st.id, None, body(b"orphan bytes", 4), None)
        .await
        .unwrap();
    let dir = format!("docker/registry/v2/repositories/{r}/_uploads/{}/", st.id);
    s.operator()
        .delete(&format!("{dir}startedat"))
        .await
        .unwrap();
    let live = s.start_upload(&r).await.unwrap();
    // Written just now: not yet old enough.
    assert_eq!(
        s.purge_uploads(std::time::Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    assert!(!s.operator().list(&dir).await.unwrap().is_empty());
    // A backend that keeps no modification times (memory) cannot tell how
    // old the orphan is: it is left alone there.
    let timed = s
        .operator()
        .stat(&format!("{dir}parts/00000000000000000000"))
        .await
        .unwrap()
        .last_modified()
        .is_some();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let fresh = s.start_upload(&r).await.unwrap();
    // `live` is old enough too; `fresh` is not.
    assert_eq!(
        s.purge_uploads(std::time::Duration::from_secs(2))
            .await
            .unwrap(),
        if timed { 2 } else { 1 }
    );
    if !timed {
        assert!(!s.operator().list(&dir).await.unwrap().is_empty());
        return;
    }
    let left: Vec<String> = s
        .operator()
        .list_with(&dir)
        .recursive(true)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| e.path().to_owned())
        .filter(|p| !p.ends_with('/'))
        .collect();
    assert!(left.is_empty(), "orphan left behind: {left:?}");
    assert_eq!(
        s.upload_status(&r, &live.id).await.unwrap_err().kind(),
        ErrorKind::BlobUploadUnknown
    );
    assert_eq!(s.upload_status(&r, &fresh.id).await.unwrap().offset, 0);
}
