//! Start-up and shutdown: open the storage, start its health probe, bind
//! the listener, log where the server is, serve until SIGINT or SIGTERM,
//! then turn unready, wait the shutdown delay, and drain.

use std::sync::Arc;
use std::time::Duration;

use registry_core::manifest::ManifestLimits;
use registry_core::{ForeignUrlPolicy, RegistryStore};
use registry_http::{Health, Router, RouterConfig};
use registry_storage::{
    BlobCacheConfig, CachedStore, GuardedStore, OpendalStore, StoreHealth, StoreOptions,
};
use tokio::net::TcpListener;

use super::VERSION;
use super::config::Config;
use super::http;
use super::metrics::{self, Metrics};
use super::shutdown::Signals;

/// How long blocking storage calls get to return once the server has
/// stopped, before the process exits anyway.
pub const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Run the server until a signal stops it. Errors are start-up errors, as
/// one line for stderr; a shutdown, even one that had to cut requests off
/// after the timeout, is a success.
pub async fn run(config: &Config) -> Result<(), String> {
    let auth = super::auth::build(
        &config.auth,
        matches!(config.tls, super::tls::TlsSetting::On(_)),
    )?;
    let mirrors = super::mirror::mirrors(config)?;
    let mut store = super::redirect::apply(config, open_store(config)?).await?;
    if let Some(m) = &mirrors {
        store = store.with_mirrored_repositories(m.patterns());
    }
    if config.single_writer {
        tracing::info!("declared the only writer of its storage: conditional-write check skipped");
    } else {
        store.check_conditional_writes().await.map_err(|e| {
            format!(
                "{}; run with --single-writer if this process is the only one writing to {}",
                e.message(),
                config.storage
            )
        })?;
    }
    if !store.is_durable() {
        tracing::warn!(
            "fsync is off (--no-fsync): pushes are acknowledged before they reach the disk, and a power loss can lose them"
        );
    }
    let metrics = config
        .metrics
        .enabled
        .then(|| Metrics::new(metrics::driver_of(config.storage.expose())));
    let purge = spawn_upload_purge(store.clone(), config.upload_max_age, metrics.clone());
    let collector = config
        .gc
        .clone()
        .map(|(every, options)| spawn_collector(store.clone(), every, options, metrics.clone()));
    let endpoints =
        super::notify::endpoints(config.notifications.0.clone(), &config.notifications.1)?;
    let outbox = store.clone();
    let store_health = Arc::new(StoreHealth::new(config.health.clone()));
    let probe = registry_storage::availability::spawn_probe(store.clone(), store_health.clone());
    let health = health(store_health.clone());
    let origin = store.clone();
    let guarded = GuardedStore::new(store, store_health);
    let peers = super::peers::build(&config.peers)?;
    let (router, peer_endpoint) = router(
        config,
        (guarded, origin),
        &auth,
        metrics.as_deref(),
        (mirrors, peers),
    )?;
    let endpoint = metrics
        .clone()
        .map(|m| metrics::Endpoint::new(m, &config.metrics, auth.authorizer.clone()));
    let metrics_listener = match (&endpoint, &config.metrics.listen) {
        (Some(endpoint), Some(addr)) => {
            Some(metrics::serve_own(addr, endpoint.clone(), router.clone()).await?)
        }
        _ => None,
    };
    let signals = Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let transport = http::Transport::new(config)?;
    let listener = TcpListener::bind(config.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address of {}: {e}", config.listen))?;
    tracing::info!(
        version = %VERSION,
        listen = %config.listen,
        storage = %config.storage,
        "registry {VERSION} listening on {}://{bound}",
        transport.scheme()
    );
    let notifier =
        super::notify::Notifier::start(endpoints, outbox, bound.to_string(), transport.scheme())?;
    if let (Some(m), Some(n)) = (&metrics, &notifier) {
        m.register_collector(metrics::NotificationsCollector(n.stats()));
    }

    let grace = config.shutdown_timeout;
    let delay = config.shutdown_delay;
    let draining = health.clone();
    let stop = async move {
        let signal = signals.recv().await;
        // Unready first, so that load balancers stop sending, then the
        // delay, then the grace period.
        draining.set_draining();
        if !delay.is_zero() {
            tracing::info!(
                signal,
                "shutting down: /readyz answers 503; serving {delay:?} more"
            );
            tokio::time::sleep(delay).await;
        }
        tracing::info!(
            signal,
            "shutting down: no new connections; waiting up to {grace:?} for requests in flight"
        );
    };
    let extras = http::Extras {
        health,
        issuer: auth.issuer.clone(),
        notifier,
        metrics: endpoint,
        peers: peer_endpoint,
        traces: config.otlp.enabled(),
    };
    http::serve(listener, router, extras, stop, grace, transport)
        .await
        .map_err(|e| format!("cannot serve on {}: {e}", config.listen))?;
    purge.abort();
    probe.abort();
    if let Some(listener) = metrics_listener {
        listener.abort();
    }
    if let Some(collector) = collector {
        // A collection cut short is finished by the next one (docs/GC.md).
        collector.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often a process records a pull of one manifest, when a retention
/// rule keeps what was pulled (so pulls do not become writes).
const PULL_TIMES_EVERY: Duration = Duration::from_secs(3600);

/// The configured storage.
fn open_store(config: &Config) -> Result<OpendalStore, String> {
    let options = StoreOptions::default().with_fsync(config.fsync);
    let mut store =
        OpendalStore::from_url_with(config.storage.expose(), &options).map_err(|e| {
            // The storage crate may quote the URL: show it masked.
            let message = e
                .to_string()
                .replace(config.storage.expose(), &config.storage.to_string());
            format!("cannot open storage {}: {message}", config.storage)
        })?;
    if let Some(max) = config.manifest_max_size {
        store = store.with_manifest_limits(ManifestLimits {
            max_size: max.get(),
        });
    }
    if config.retention.needs_pull_times() {
        store = store.with_pull_times(PULL_TIMES_EVERY);
    }
    Ok(store)
}

/// With `--gc-interval`, collect garbage that often (the first time one
/// interval after start-up); the collections of several processes on one
/// store are safe together (docs/GC.md).
fn spawn_collector(
    store: OpendalStore,
    every: Duration,
    options: registry_storage::GcOptions,
    metrics: Option<Arc<Metrics>>,
) -> tokio::task::JoinHandle<()> {
    // At most one a second (a zero interval would spin).
    let every = every.max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.collect_garbage(&options).await {
                Ok(report) => {
                    if let Some(m) = &metrics {
                        m.gc.succeeded(&report);
                    }
                    tracing::info!(
                        manifests = report.manifests.len(),
                        blobs = report.blobs.len(),
                        bytes = report.bytes(),
                        "{}",
                        report.summary()
                    )
                }
                Err(e) => {
                    if let Some(m) = &metrics {
                        m.gc.failed();
                    }
                    tracing::warn!(error = %e, "garbage collection failed; the next one tries again")
                }
            }
        }
    })
}

/// Every process sweeps abandoned uploads now and then; the sweeps of
/// several processes on one store are harmless to each other.
fn spawn_upload_purge(
    store: OpendalStore,
    max_age: Duration,
    metrics: Option<Arc<Metrics>>,
) -> tokio::task::JoinHandle<()> {
    let every = (max_age / 4).clamp(Duration::from_secs(10), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match store.purge_uploads(max_age).await {
                Ok(0) => {}
                Ok(n) => {
                    if let Some(m) = &metrics {
                        m.store.uploads_purged(n);
                    }
                    tracing::info!(purged = n, "purged abandoned uploads")
                }
                Err(e) => tracing::warn!(error = %e, "purging abandoned uploads failed"),
            }
        }
    })
}

/// The health endpoints: ready while the store answers (and the server is
/// not draining), started once a probe has succeeded. That the
/// configuration is loaded goes without a check: nothing is served before.
fn health(store: Arc<StoreHealth>) -> Health {
    let started = store.clone();
    Health::new()
        // The store's own error stays in the log: these endpoints answer
        // anyone, and an error can name the bucket, endpoint or paths.
        .readiness("storage", move || {
            store
                .status()
                .map_err(|_| "the store does not answer (the server log says why)".to_owned())
        })
        .startup("storage", move || {
            if started.started() {
                Ok(())
            } else {
                Err("the store has not answered a probe yet".to_owned())
            }
        })
}

/// The router over the store (measured, with metrics), behind the peers
/// if there are any, behind the blob cache if one is configured, behind the
/// mirrors if there are any (`origin` is the store under the guard: the
/// mirrors' fetch leases), each operation the router asks traced when
/// traces are exported; and the peer endpoint, which serves the blob cache
/// (over the peers) to the other hosts.
fn router(
    config: &Config,
    (store, origin): (GuardedStore, OpendalStore),
    auth: &super::auth::Auth,
    metrics: Option<&Metrics>,
    (mirrors, peers): (
        Option<Arc<registry_mirror::Mirrors>>,
        Option<Arc<registry_peers::Peers>>,
    ),
) -> Result<(Router, Option<super::peers::PeerEndpoint>), String> {
    let store: Arc<dyn RegistryStore> = match metrics {
        Some(m) => Arc::new(metrics::MeteredStore::new(Arc::new(store), m.store.clone())),
        None => Arc::new(store),
    };
    let store: Arc<dyn RegistryStore> = match &peers {
        None => store,
        Some(peers) => {
            if let Some(m) = metrics {
                m.register_collector(super::peers::PeerCollector(peers.clone()));
            }
            if config.cache.is_none() {
                tracing::info!(
                    "peers without --cache-dir: owners stream from the store, so the store is still read once per host"
                );
            }
            Arc::new(registry_peers::PeerStore::new(store, peers.clone()))
        }
    };
    let store: Arc<dyn RegistryStore> = match &config.cache {
        None => store,
        Some((dir, size)) => {
            let cached = CachedStore::new(store, BlobCacheConfig::new(dir, *size))
                .map_err(|e| format!("cannot open blob cache {}: {e}", dir.display()))?;
            tracing::info!(dir = %dir.display(), size, "blob cache enabled");
            if let Some(m) = metrics {
                m.register_collector(metrics::CacheCollector(cached.clone()));
            }
            Arc::new(cached)
        }
    };
    let peer_endpoint = peers.map(|p| super::peers::PeerEndpoint::new(p, store.clone()));
    let (allow, deny) = &config.manifest_urls;
    let urls = ForeignUrlPolicy::new(
        allow.iter().map(|p| p.as_str()),
        deny.iter().map(|p| p.as_str()),
    )?;
    if !urls.refuses_all() {
        tracing::info!(
            allow = ?urls.allow().collect::<Vec<_>>(),
            deny = ?urls.deny().collect::<Vec<_>>(),
            "foreign layer URLs accepted in manifests as these patterns allow"
        );
    }
    // The mirrors in front of it all: their blob misses are filled through
    // the cache and measured like any push.
    let (store, namespaces): (Arc<dyn RegistryStore>, _) = match mirrors {
        None => (store, None),
        Some(mirrors) => {
            let mirror = registry_mirror::MirrorStore::new(
                store,
                origin,
                mirrors.clone(),
                registry_mirror::FetchOptions::default(),
            )?;
            if let Some(m) = metrics {
                m.register_collector(super::mirror::MirrorCollector(mirror.clone()));
            }
            (Arc::new(mirror), Some(mirrors))
        }
    };
    // Traced outermost: each operation the router asks.
    let store: Arc<dyn RegistryStore> = if let Some(endpoint) = &config.otlp.endpoint {
        tracing::info!(
            %endpoint,
            service = %config.otlp.service_name,
            "exporting traces (OTLP over HTTP)"
        );
        Arc::new(super::otlp::TracedStore::new(store))
    } else {
        store
    };
    // The manifest size limit is the store's (set in `open_store`).
    let mut router_config = auth.apply(RouterConfig::default()).with_manifest_urls(urls);
    if let Some(namespaces) = namespaces {
        router_config = router_config.with_namespaces(namespaces);
    }
    Ok((Router::with_config(store, router_config), peer_endpoint))
}
