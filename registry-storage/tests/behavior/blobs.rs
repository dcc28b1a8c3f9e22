//! Blob behaviour.

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{Algorithm, BlobStore, BodyVerified, ByteRange, Digest, ErrorKind};

use crate::support::*;

pub async fn blob_put_stat_read(b: &dyn Backend) {
    let s = b.store();
    let r = repo("library/app");
    let data = content(3 * 1024 * 1024 + 17, 1);
    let d = Digest::sha256_of(&data);
    let info = s
        .put_blob(&r, &d, body(&data, 65536), Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(s.stat_blob(&r, &d).await.unwrap(), info);
    let read = s.read_blob(&r, &d, None).await.unwrap();
    assert!(!read.partial);
    assert_eq!(read.range, 0..data.len() as u64);
    assert_eq!(collect(read.body).await, data);
    // Not linked into another repository.
    let other = repo("other");
    assert_eq!(
        s.stat_blob(&other, &d).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
    assert_eq!(
        s.read_blob(&other, &d, None).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
}

pub async fn blob_range_reads(b: &dyn Backend) {
    let s = b.store();
    let r = repo("ranges");
    let data = content(10_000, 2);
    let d = Digest::sha256_of(&data);
    s.put_blob(&r, &d, body(&data, 999), None).await.unwrap();
    let cases = [
        (ByteRange::Bounded { start: 0, end: 0 }, 0..1),
        (
            ByteRange::Bounded {
                start: 100,
                end: 199,
            },
            100..200,
        ),
        (
            ByteRange::Bounded {
                start: 9_990,
                end: 20_000,
            },
            9_990..10_000,
        ),
        (ByteRange::From(5_000), 5_000..10_000),
        (ByteRange::Suffix(10), 9_990..10_000),
    ];
    for (range, want) in cases {
        let read = s.read_blob(&r, &d, Some(range)).await.unwrap();
        assert!(read.partial);
        assert_eq!(read.range, want);
        assert_eq!(
            collect(read.body).await,
            &data[want.start as usize..want.end as usize]
        );
    }
    let e = s
        .read_blob(&r, &d, Some(ByteRange::From(10_000)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RangeInvalid);
}

pub async fn blob_wrong_digest_leaves_nothing(b: &dyn Backend) {
    let s = b.store();
    let r = repo("bad");
    let data = content(100_000, 3);
    let claimed = Digest::sha256_of(b"something else");
    let e = s
        .put_blob(&r, &claimed, body(&data, 4096), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestInvalid);
    assert!(!blob_data_exists(&s, &claimed).await);
    assert!(!blob_data_exists(&s, &Digest::sha256_of(&data)).await);
    assert_eq!(
        s.stat_blob(&r, &claimed).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
}

pub async fn blob_wrong_length_is_size_invalid(b: &dyn Backend) {
    let s = b.store();
    let r = repo("len");
    let data = content(1000, 4);
    let d = Digest::sha256_of(&data);
    for declared in [999, 1001] {
        let e = s
            .put_blob(&r, &d, body(&data, 100), Some(declared))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SizeInvalid, "declared {declared}");
        assert!(!blob_data_exists(&s, &d).await);
    }
}

/// A put's notice is told (by the store itself: the default drops it) for a
/// body of its digest and length, and never for one that does not verify.
pub async fn blob_put_notice_only_for_verified_bodies(b: &dyn Backend) {
    let s = b.store();
    let r = repo("notice");
    let data = content(300_000, 5);
    let d = Digest::sha256_of(&data);
    let other = Digest::sha256_of(b"something else");
    let len = data.len() as u64;
    let cases = [
        ("verified", d.clone(), Some(len), None),
        ("verified, length not declared", d.clone(), None, None),
        (
            "another digest",
            other,
            Some(len),
            Some(ErrorKind::DigestInvalid),
        ),
        (
            "declared longer",
            d.clone(),
            Some(len + 1),
            Some(ErrorKind::SizeInvalid),
        ),
        (
            "declared shorter",
            d.clone(),
            Some(len - 1),
            Some(ErrorKind::SizeInvalid),
        ),
    ];
    for (case, digest, declared, refused) in cases {
        let (notice, verdict) = BodyVerified::channel();
        let put = s
            .put_blob_with_notice(&r, &digest, body(&data, 8192), declared, notice)
            .await;
        assert_eq!(
            put.as_ref().err().map(|e| e.kind()),
            refused,
            "{case}: {put:?}"
        );
        assert_eq!(verdict.verified().await, refused.is_none(), "{case}: told");
    }
    // The verified puts stored it.
    assert_eq!(s.stat_blob(&r, &d).await.unwrap().size, len);
}

pub async fn blob_put_is_idempotent(b: &dyn Backend) {
    let r = repo("same");
    let data = content(200_000, 5);
    let d = Digest::sha256_of(&data);
    // Sixteen writers of one blob at once, over two store instances.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 {
            b.store()
        } else {
            b.another_store()
        };
        let (r, d, data) = (r.clone(), d.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            s.put_blob(&r, &d, body(&data, 7000), None).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().size, data.len() as u64);
    }
    let s = b.store();
    assert_eq!(
        collect(s.read_blob(&r, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn blob_delete_unlinks_only(b: &dyn Backend) {
    let s = b.store();
    let (a, c) = (repo("a"), repo("c"));
    let data = content(5000, 6);
    let d = Digest::sha256_of(&data);
    s.put_blob(&a, &d, body(&data, 5000), None).await.unwrap();
    s.put_blob(&c, &d, body(&data, 5000), None).await.unwrap();
    s.delete_blob(&a, &d).await.unwrap();
    assert_eq!(
        s.stat_blob(&a, &d).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
    assert_eq!(
        s.delete_blob(&a, &d).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
    assert_eq!(
        collect(s.read_blob(&c, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn blob_mount(b: &dyn Backend) {
    let s = b.store();
    let (from, to) = (repo("from"), repo("to/nested"));
    let data = content(4321, 7);
    let d = Digest::sha256_of(&data);
    assert_eq!(
        s.mount_blob(&from, &to, &d).await.unwrap_err().kind(),
        ErrorKind::BlobUnknown
    );
    s.put_blob(&from, &d, body(&data, 1000), None)
        .await
        .unwrap();
    let info = s.mount_blob(&from, &to, &d).await.unwrap();
    assert_eq!(info.size, 4321);
    assert_eq!(
        collect(s.read_blob(&to, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn blob_empty(b: &dyn Backend) {
    let s = b.store();
    let r = repo("empty");
    let d = Digest::sha256_of(b"");
    let info = s
        .put_blob(&r, &d, futures::stream::empty().boxed(), Some(0))
        .await
        .unwrap();
    assert_eq!(info.size, 0);
    let read = s.read_blob(&r, &d, None).await.unwrap();
    assert!(collect(read.body).await.is_empty());
}

pub async fn blob_sha512(b: &dyn Backend) {
    let s = b.store();
    let r = repo("sha512");
    let data = content(70_000, 8);
    let d = Digest::compute(Algorithm::Sha512, &data);
    s.put_blob(&r, &d, body(&data, 10_000), None).await.unwrap();
    assert_eq!(
        collect(s.read_blob(&r, &d, None).await.unwrap().body).await,
        data
    );
    let wrong = Digest::compute(Algorithm::Sha512, b"x");
    let e = s
        .put_blob(&r, &wrong, body(&data, 10_000), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestInvalid);
    let _ = Bytes::new();
}
