//! The pull-through mirrors of `registry serve` (docs/MIRROR.md): built
//! from the config file's `[[mirrors]]` tables and the `--mirror` flags,
//! with upstream passwords read from their files, and their counters as
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use registry_mirror::upstream::{Credentials, UpstreamOptions};
use registry_mirror::{MirrorConfig, MirrorStore, Mirrors};

use super::config::{Config, MirrorSetting, UpstreamSetting};

/// How long an upstream has to answer with headers, when not configured.
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a blob body from an upstream may stall.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The configured mirrors, checked; `None` when there are none.
pub fn mirrors(config: &Config) -> Result<Option<Arc<Mirrors>>, String> {
    let (tables, flags) = &config.mirrors;
    let mut settings = tables.clone();
    for flag in flags {
        settings.push(super::config::parse_mirror_flag(flag)?);
    }
    if settings.is_empty() {
        return Ok(None);
    }
    let configs = settings
        .into_iter()
        .map(mirror_config)
        .collect::<Result<Vec<_>, _>>()?;
    for m in &configs {
        tracing::info!(
            prefix = %m.prefix,
            upstreams = ?m.upstreams.iter().map(|u| u.url.as_str()).collect::<Vec<_>>(),
            default = m.default,
            allow_push = m.allow_push,
            "pull-through mirror"
        );
    }
    Mirrors::new(configs).map(|m| Some(Arc::new(m)))
}

fn mirror_config(s: MirrorSetting) -> Result<MirrorConfig, String> {
    let mut upstreams = s
        .upstreams
        .into_iter()
        .map(|u| upstream(s.prefix.as_str(), u))
        .collect::<Result<Vec<_>, _>>()?;
    if upstreams.is_empty() {
        return Err(format!("mirror {}: no upstream", s.prefix));
    }
    let first = upstreams.remove(0);
    let mut m = MirrorConfig::new(s.prefix, first);
    m.upstreams.extend(upstreams);
    m.namespaces = s.namespaces;
    if let Some(d) = s.revalidate_after {
        m.revalidate_after = d.0;
    }
    if let Some(d) = s.not_found_ttl {
        m.not_found_ttl = d.0;
    }
    m.repositories = s.repositories;
    m.allow_push = s.allow_push;
    m.default = s.default;
    if let Some(hub) = s.docker_hub {
        m.docker_hub = hub;
    }
    Ok(m)
}

fn upstream(prefix: &str, u: UpstreamSetting) -> Result<UpstreamOptions, String> {
    let credentials = match (u.username, u.password_file) {
        (None, None) => None,
        (Some(username), Some(file)) => {
            let password = std::fs::read_to_string(&file).map_err(|e| {
                format!(
                    "mirror {prefix}: cannot read password_file {}: {e}",
                    file.display()
                )
            })?;
            Some(Credentials {
                username,
                password: password.trim_end_matches(['\r', '\n']).to_owned(),
            })
        }
        _ => {
            return Err(format!(
                "mirror {prefix}: upstream {}: username and password_file go together",
                u.url
            ));
        }
    };
    Ok(UpstreamOptions {
        url: u.url,
        credentials,
        timeout: u.timeout.map_or(DEFAULT_UPSTREAM_TIMEOUT, |t| t.0),
        idle_timeout: UPSTREAM_IDLE_TIMEOUT,
    })
}

/// The mirror's counters ([`MirrorStats`](registry_mirror::MirrorStats)).
#[derive(Clone)]
pub struct MirrorCollector(pub MirrorStore);

impl std::fmt::Debug for MirrorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MirrorCollector")
    }
}

impl Collector for MirrorCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.stats();
        let rows: [(&str, &str, u64); 11] = [
            (
                "registry_mirror_manifest_fetches",
                "Manifests fetched from an upstream and stored.",
                s.manifest_fetches,
            ),
            (
                "registry_mirror_revalidations",
                "Tags checked upstream (HEAD) after their interval.",
                s.revalidations,
            ),
            (
                "registry_mirror_blob_fetches",
                "Blobs fetched from an upstream and stored by this process.",
                s.blob_fetches,
            ),
            (
                "registry_mirror_fetched_bytes",
                "Bytes of blobs received from upstreams.",
                s.bytes_fetched,
            ),
            (
                "registry_mirror_stale_served",
                "Tags served from the store because every upstream failed.",
                s.stale_served,
            ),
            (
                "registry_mirror_not_found_cached",
                "Requests answered unknown from a remembered upstream 404.",
                s.not_found_cached,
            ),
            (
                "registry_mirror_lease_waits",
                "Blob misses served after waiting for another process's fetch.",
                s.lease_waits,
            ),
            (
                "registry_mirror_adopted",
                "Blob misses served from bytes already stored (another repository or process).",
                s.adopted,
            ),
            (
                "registry_mirror_passthrough",
                "Blobs streamed from upstream without storing (another fetch took too long).",
                s.passthrough,
            ),
            (
                "registry_mirror_upstream_errors",
                "Upstream requests that failed (unreachable, refused, rate limited).",
                s.upstream_errors,
            ),
            (
                "registry_mirror_rejected",
                "Upstream content refused: digest mismatch or invalid manifest.",
                s.rejected,
            ),
        ];
        for (name, help, value) in rows {
            e.encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}
