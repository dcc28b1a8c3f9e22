//! A store found failing: a `GuardedStore` refuses at once what needs the
//! store, still answers manifests by digest from the in-process cache (in
//! the repositories seen to have them only), a `CachedStore` in front still
//! serves the blobs it holds past the links' trust window, and the store
//! is used again after the probes' successes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use registry_core::*;
use registry_storage::{
    BlobCacheConfig, CachedStore, GuardedStore, HealthConfig, OpendalStore, StoreHealth,
};

fn stream(data: &[u8]) -> ByteStream {
    futures::stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed()
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}

fn manifest(config: (&Digest, usize), layer: (&Digest, usize)) -> Bytes {
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        config.0, config.1, layer.0, layer.1
    ))
}

fn unavailable<T: std::fmt::Debug>(r: Result<T>) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
        Ok(v) => panic!("served while the store fails: {v:?}"),
    }
}

#[tokio::test]
async fn while_failing_only_what_this_host_holds_is_served() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = OpendalStore::fs(dirs.0.path()).unwrap();
    let health = Arc::new(StoreHealth::new(HealthConfig {
        failures: 2,
        successes: 2,
        ..HealthConfig::default()
    }));
    let guarded = Arc::new(GuardedStore::new(store, health.clone()));
    let mut cfg = BlobCacheConfig::new(dirs.1.path(), 1 << 20);
    cfg.link_ttl = Duration::from_millis(10);
    let cached = CachedStore::new(guarded.clone(), cfg).unwrap();

    let repo = RepositoryName::parse("outage/app").unwrap();
    let other = RepositoryName::parse("outage/other").unwrap();
    let (config, layer) = (b"{}".to_vec(), b"layer bytes".to_vec());
    let (dc, dl) = (Digest::sha256_of(&config), Digest::sha256_of(&layer));
    for (d, data) in [(&dc, &config), (&dl, &layer)] {
        guarded
            .put_blob(&repo, d, stream(data), None)
            .await
            .unwrap();
        guarded
            .put_blob(&other, d, stream(data), None)
            .await
            .unwrap();
    }
    let m = manifest((&dc, config.len()), (&dl, layer.len()));
    let tag = Reference::parse("v1").unwrap();
    let put = guarded
        .put_manifest(&repo, &tag, None, m.clone())
        .await
        .unwrap();
    let by_digest = Reference::Digest(put.digest.clone());
    guarded
        .put_manifest(&other, &by_digest, None, m.clone())
        .await
        .unwrap();
    // Pulled once in `repo`: the manifest and the layer are now held here.
    assert_eq!(
        guarded.get_manifest(&repo, &by_digest).await.unwrap().bytes,
        m
    );
    let read = cached.read_blob(&repo, &dl, None).await.unwrap();
    assert_eq!(collect(read.body).await, layer);
    assert!(cached.contains(&dl));
    tokio::time::sleep(Duration::from_millis(30)).await;

    let down = Error::new(ErrorKind::Storage, "connection refused");
    health.record_failure(&down);
    assert!(!health.is_failing(), "one failure is under the threshold");
    health.record_failure(&down);
    assert!(health.is_failing());
    assert!(health.status().unwrap_err().contains("connection refused"));

    // Held here: served.
    let read = cached.read_blob(&repo, &dl, None).await.unwrap();
    assert_eq!(
        collect(read.body).await,
        layer,
        "the cached blob, past its trust window"
    );
    let got = guarded.get_manifest(&repo, &by_digest).await.unwrap();
    assert_eq!((got.bytes, got.digest), (m.clone(), put.digest.clone()));
    // Not known to be held for that repository, or not cacheable: refused.
    unavailable(cached.read_blob(&other, &dl, None).await);
    unavailable(guarded.get_manifest(&other, &by_digest).await);
    unavailable(guarded.get_manifest(&repo, &tag).await);
    unavailable(cached.stat_blob(&repo, &dl).await);
    unavailable(
        guarded
            .list_tags(
                &repo,
                Page {
                    n: None,
                    last: None,
                },
            )
            .await,
    );
    unavailable(guarded.start_upload(&repo).await);
    unavailable(cached.read_blob(&repo, &dc, None).await);

    // Requests do not bring it back; two good probes do.
    health.record_success(false);
    assert!(health.is_failing());
    health.record_success(true);
    health.record_success(true);
    assert!(!health.is_failing());
    let tags = guarded
        .list_tags(
            &repo,
            Page {
                n: None,
                last: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(tags.items.len(), 1);
    assert_eq!(
        guarded
            .get_manifest(&other, &by_digest)
            .await
            .unwrap()
            .bytes,
        m
    );
}
