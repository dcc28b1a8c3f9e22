//! The webhook notifications' numbers ([`EndpointStats`], kept by
//! `notify/`), read at scrape time, one series per endpoint (the endpoint's
//! configured name is the only label: there are few).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::server::notify::EndpointStats;

/// Every endpoint's numbers.
#[derive(Debug)]
pub struct NotificationsCollector(pub Vec<Arc<EndpointStats>>);

impl Collector for NotificationsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        type Read = fn(&EndpointStats) -> u64;
        let rows: [(&str, &str, MetricType, Read); 8] = [
            (
                "registry_notifications_pending",
                "Events waiting for delivery: the shared outbox (as this process last saw it) and this process's memory queue.",
                MetricType::Gauge,
                |s| s.outbox_depth.load(Ordering::Relaxed) + s.memory_depth.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_oldest_undelivered_seconds",
                "Age of the oldest undelivered event in the outbox (0: none).",
                MetricType::Gauge,
                |s| s.oldest_undelivered_seconds.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_delivered",
                "Deliveries that succeeded, by this process.",
                MetricType::Counter,
                |s| s.delivered.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_failed",
                "Delivery attempts that failed, by this process.",
                MetricType::Counter,
                |s| s.failed.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_dead_letters",
                "Events that exhausted their attempts (moved to the dead-letter prefix).",
                MetricType::Counter,
                |s| s.dead_letters.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_dropped",
                "Non-durable events dropped because the memory queue was full.",
                MetricType::Counter,
                |s| s.dropped.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_outbox_errors",
                "Durable events that could not be written to the outbox (their requests got 500).",
                MetricType::Counter,
                |s| s.outbox_errors.load(Ordering::Relaxed),
            ),
            (
                "registry_notifications_memory_pending",
                "Events in this process's memory queue.",
                MetricType::Gauge,
                |s| s.memory_depth.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, kind, read) in rows {
            let mut family = e.encode_descriptor(name, help, None, kind)?;
            for stats in &self.0 {
                let labels = [("endpoint", stats.name.as_str())];
                let mut metric = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => metric
                        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                            &read(stats),
                            None,
                        )?,
                    _ => metric.encode_gauge(&read(stats))?,
                }
            }
        }
        Ok(())
    }
}
