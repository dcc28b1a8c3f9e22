//! Metrics read from the storage crate's counters at scrape time (the blob
//! cache, conditional-write conflicts, retries), and the background
//! collector's runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use registry_storage::{CachedStore, GcReport};

/// Write one unlabelled counter.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// Write one unlabelled gauge.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// The per-host blob cache's counters
/// ([`CacheStats`](registry_storage::CacheStats)); the request and hit
/// counts under distribution's names.
#[derive(Clone)]
pub struct CacheCollector(pub CachedStore);

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCollector")
    }
}

impl Collector for CacheCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.stats();
        let rows: [(&str, &str, u64); 10] = [
            (
                "registry_storage_cache_requests",
                "Blob reads asked of this host's blob cache.",
                s.requests,
            ),
            (
                "registry_storage_cache_hits",
                "Blob reads served from this host's blob cache.",
                s.hits,
            ),
            (
                "registry_storage_cache_misses",
                "Blob reads the blob cache sent to the shared store.",
                s.misses,
            ),
            (
                "registry_storage_cache_hit_bytes",
                "Bytes served from the blob cache.",
                s.hit_bytes,
            ),
            (
                "registry_storage_cache_fills",
                "Blobs admitted into the blob cache after a verified fill.",
                s.fills,
            ),
            (
                "registry_storage_cache_fill_bytes",
                "Bytes admitted into the blob cache.",
                s.fill_bytes,
            ),
            (
                "registry_storage_cache_fill_failures",
                "Fills of the blob cache that failed verification.",
                s.fill_failures,
            ),
            (
                "registry_storage_cache_follows",
                "Blob cache misses that followed a fill in progress instead of reading the store again.",
                s.follows,
            ),
            (
                "registry_storage_cache_evictions",
                "Blobs evicted from the blob cache to make room.",
                s.evictions,
            ),
            (
                "registry_storage_cache_evicted_bytes",
                "Bytes evicted from the blob cache.",
                s.evicted_bytes,
            ),
        ];
        for (name, help, value) in rows {
            counter(&mut e, name, help, value)?;
        }
        gauge(
            &mut e,
            "registry_storage_cache_bytes",
            "Bytes in the blob cache now.",
            s.cached_bytes,
        )?;
        gauge(
            &mut e,
            "registry_storage_cache_max_bytes",
            "The blob cache's size bound.",
            s.max_bytes,
        )
    }
}

/// The storage layer's process-wide counters
/// ([`StorageStats`](registry_storage::StorageStats)).
#[derive(Debug, Clone, Copy)]
pub struct StorageCollector;

impl Collector for StorageCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = registry_storage::storage_stats();
        counter(
            &mut e,
            "registry_storage_conditional_conflicts",
            "Conditional writes that lost to another writer (S3 412 on If-None-Match or \
             If-Match, a create-if-absent that found the name taken); handled, expected under \
             concurrency.",
            s.conditional_conflicts,
        )?;
        counter(
            &mut e,
            "registry_storage_retries",
            "Object-store requests retried after a transient failure.",
            s.retries,
        )
    }
}

/// The background collector's runs (`--gc-interval`).
#[derive(Debug, Default)]
pub struct GcMetrics {
    runs: AtomicU64,
    failures: AtomicU64,
    manifests: AtomicU64,
    blobs: AtomicU64,
    bytes: AtomicU64,
    last_success: AtomicU64,
}

impl GcMetrics {
    /// A collection finished and removed what `report` says.
    pub fn succeeded(&self, report: &GcReport) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.manifests
            .fetch_add(report.manifests.len() as u64, Ordering::Relaxed);
        self.blobs
            .fetch_add(report.blobs.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(report.bytes(), Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_success.store(now, Ordering::Relaxed);
    }

    /// A collection failed.
    pub fn failed(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for GcMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        {
            let mut family = e.encode_descriptor(
                "registry_gc_runs",
                "Background garbage collections, by result.",
                None,
                MetricType::Counter,
            )?;
            let failed = get(&self.failures);
            let ok = get(&self.runs) - failed;
            for (result, n) in [("ok", ok), ("failed", failed)] {
                family
                    .encode_family(&[("result", result)])?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        counter(
            &mut e,
            "registry_gc_reclaimed_bytes",
            "Blob bytes the background collector removed.",
            get(&self.bytes),
        )?;
        counter(
            &mut e,
            "registry_gc_removed_blobs",
            "Blobs the background collector removed.",
            get(&self.blobs),
        )?;
        counter(
            &mut e,
            "registry_gc_removed_manifests",
            "Manifest revisions the background collector removed.",
            get(&self.manifests),
        )?;
        gauge(
            &mut e,
            "registry_gc_last_success_timestamp_seconds",
            "When the last background collection succeeded (0: none yet), Unix time.",
            get(&self.last_success),
        )
    }
}
