//! [`Histogram`]: buckets of atomic counters, so that an observation on the
//! request path takes no lock (prometheus-client's own histogram takes a
//! mutex per observation). Encoded by prometheus-client at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, MetricEncoder, NoLabelSet};

/// Upper bounds of the latency buckets, in seconds: Prometheus' default
/// buckets, which distribution's histograms use too.
pub const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the size buckets, in bytes: 256 B to 1 GiB by powers of
/// four (manifests at the low end, layers at the high end).
pub const BYTES: &[f64] = &[
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];

/// A histogram of integer observations (nanoseconds or bytes), shown in
/// the unit of its bounds after dividing by `scale`.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// In the observations' unit: `bounds` times `scale`.
    limits: Box<[u64]>,
    /// One per bound, then the `+Inf` bucket; not cumulative.
    buckets: Box<[AtomicU64]>,
    /// Sum of the observations, in their unit.
    sum: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// A histogram of latencies observed in nanoseconds, shown in seconds.
    pub fn seconds() -> Histogram {
        Histogram::new(SECONDS, 1e9)
    }

    /// A histogram of sizes in bytes.
    pub fn bytes() -> Histogram {
        Histogram::new(BYTES, 1.0)
    }

    fn new(bounds: &'static [f64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            limits: bounds.iter().map(|b| (b * scale) as u64).collect(),
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// Count one observation of `value` (nanoseconds or bytes).
    pub fn observe(&self, value: u64) {
        // A linear scan of a dozen bounds beats a binary search here.
        let i = self
            .limits
            .iter()
            .position(|&limit| value <= limit)
            .unwrap_or(self.limits.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Write this histogram as the member of its family that `labels` name.
    pub fn encode(
        &self,
        encoder: &mut MetricEncoder<'_>,
        labels: &impl EncodeLabelSet,
    ) -> std::fmt::Result {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' sum, so that the two always agree.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        encoder
            .encode_family(labels)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them() {
        let h = Histogram::seconds();
        h.observe(5_000_000); // 5 ms: the first bucket (le 0.005)
        h.observe(5_000_001);
        h.observe(60_000_000_000); // a minute: +Inf
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[SECONDS.len()], 1);
        assert_eq!(h.count(), 3);
    }
}
