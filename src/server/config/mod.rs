//! The server's settings and how they are resolved.
//!
//! Every setting can come from four places, highest precedence first: a
//! command-line flag, an environment variable, the TOML config file, the
//! built-in default. Each is declared once, as a field of [`Settings`]:
//! the field is at the same time the flag and its variable (clap, which
//! merges the two into one layer) and the config file key (serde, into
//! another). [`Layer::or`] stacks the layers, one rule for every field,
//! and [`Config::resolve`] fills in the defaults.
//!
//! Values are validated as they are parsed, whichever source they come
//! from, so a bad value names its source in the error.

mod layer;
mod mirrors;
mod retention;
mod values;

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

pub use layer::Layer;
pub(crate) use layer::layered;
pub use mirrors::{MirrorSetting, UpstreamSetting, parse_flag as parse_mirror_flag};
pub use retention::{RetentionSetting, retention};
pub use values::{
    ByteSize, EndpointUrl, HumanDuration, ListenAddr, LogFormat, LogLevel, StorageUrl, UrlPattern,
};

/// Top-level keys of the config file that have no flag.
pub const FILE_ONLY_KEYS: [&str; 3] = ["gc_retention", "mirrors", "notifications"];

/// Address served when none is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Storage used when none is configured: `./data` in distribution's layout.
pub const DEFAULT_STORAGE: &str = "fs://data";
/// Log filter used when none is configured.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// How long a shutdown waits for in-flight requests when none is configured.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Age after which an unfinished upload is purged, when none is configured.
pub const DEFAULT_UPLOAD_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Size bound of the blob cache when `cache_dir` is set without a size.
pub const DEFAULT_CACHE_SIZE: u64 = 10 * 1024 * 1024 * 1024;
/// How long a presigned blob URL is valid when `--redirect-expiry` is not given.
pub const DEFAULT_REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);
/// What the background collector keeps when no grace is configured.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(24 * 3600);

layered! {
    /// Settings as given by one source (flags and environment, or the
    /// config file). `None` means "not given here".
    ///
    /// These are the options of `registry serve` (the doc comments are
    /// their `--help`; a `BOOL` option given without a value means true,
    /// see [`cli::command`](super::cli::command)) and the schema of the
    /// config file: its keys are the field names, and any other key is an
    /// error.
    #[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Args)]
    #[serde(deny_unknown_fields)]
    pub struct Settings {
        /// Address to listen on, HOST:PORT; port 0 lets the OS pick one
        /// [default: 127.0.0.1:5000]
        #[arg(long, value_name = "ADDR", env = "REGISTRY_LISTEN")]
        pub listen: Option<ListenAddr>,

        /// Where to store content: fs:///abs/path, fs://relative/path, memory://
        /// or s3://bucket/prefix?endpoint=URL&region=REGION [default: fs://data]
        #[arg(long, value_name = "URL", env = "REGISTRY_STORAGE")]
        pub storage: Option<StorageUrl>,

        /// Log filter: a level (error, warn, info, debug, trace) or a tracing
        /// EnvFilter directive such as info,registry_http=debug [default: info]
        #[arg(long, value_name = "LEVEL", env = "REGISTRY_LOG")]
        pub log_level: Option<LogLevel>,

        /// Log lines, the access log's included: text, or json (one object
        /// per line, with the request id) [default: text]
        #[arg(long, value_name = "FORMAT", env = "REGISTRY_LOG_FORMAT")]
        pub log_format: Option<LogFormat>,

        /// Largest manifest accepted, in bytes; larger pushes get 413
        /// [default: the HTTP layer's, at least 4 MiB]
        #[arg(long, value_name = "BYTES", env = "REGISTRY_MANIFEST_MAX_SIZE")]
        pub manifest_max_size: Option<NonZeroUsize>,

        /// Regular expression the URL of a foreign (non-distributable) layer in
        /// a pushed manifest must match; repeat for several (any one will do;
        /// a list in the config file). Without allow or deny patterns,
        /// manifests with such URLs are refused [default: none]
        #[arg(long, value_name = "REGEX", env = "REGISTRY_MANIFEST_URLS_ALLOW")]
        pub manifest_urls_allow: Option<Vec<UrlPattern>>,

        /// Regular expression the URL of a foreign layer in a pushed manifest
        /// must not match; repeat for several (a list in the config file)
        /// [default: none]
        #[arg(long, value_name = "REGEX", env = "REGISTRY_MANIFEST_URLS_DENY")]
        pub manifest_urls_deny: Option<Vec<UrlPattern>>,

        /// Seconds to let in-flight requests finish after SIGINT/SIGTERM before
        /// closing their connections [default: 30]
        #[arg(long, value_name = "SECS", env = "REGISTRY_SHUTDOWN_TIMEOUT")]
        pub shutdown_timeout: Option<u64>,

        /// Declare this process the only writer of its storage, and skip the
        /// start-up check that the storage refuses conflicting conditional
        /// writes (which several processes sharing one store rely on)
        /// [default: false]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_SINGLE_WRITER")]
        pub single_writer: Option<bool>,

        /// Seconds after which an unfinished upload is deleted by the periodic
        /// sweep [default: 86400]
        #[arg(long, value_name = "SECS", env = "REGISTRY_UPLOAD_MAX_AGE")]
        pub upload_max_age: Option<u64>,

        /// Directory of a per-host, read-through blob cache in front of the
        /// storage (blobs only; manifests and tags are always read from the
        /// storage) [default: no cache]
        #[arg(long, value_name = "DIR", env = "REGISTRY_CACHE_DIR")]
        pub cache_dir: Option<PathBuf>,

        /// Size bound of the blob cache, e.g. 512M or 10G; least recently used
        /// blobs are evicted [default: 10G]
        #[arg(long, value_name = "SIZE", env = "REGISTRY_CACHE_SIZE")]
        pub cache_size: Option<ByteSize>,

        /// S3 storage only: answer a blob GET with 307 to a presigned URL of
        /// the bucket, so the client fetches the bytes from S3 (HEAD, ranged
        /// GETs and blobs in --cache-dir are served here; docs/OPERATIONS.md)
        /// [default: false]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_REDIRECT")]
        pub redirect: Option<bool>,

        /// How long a presigned URL of --redirect stays valid, at most 7d; it
        /// outlives a delete of the blob by as much [default: 20m]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_REDIRECT_EXPIRY")]
        pub redirect_expiry: Option<HumanDuration>,

        /// The S3 endpoint clients reach, when it is not the storage URL's
        /// (--redirect signs for it); its host must not be the registry's
        /// own or a subdomain of it [default: the storage URL's endpoint]
        #[arg(long, value_name = "URL", env = "REGISTRY_REDIRECT_ENDPOINT")]
        pub redirect_endpoint: Option<EndpointUrl>,

        /// Filesystem storage only: acknowledge pushes without flushing them to
        /// disk. Faster, but a power loss can lose acknowledged content; for
        /// benchmarks and throwaway registries [default: false]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_NO_FSYNC")]
        pub no_fsync: Option<bool>,

        /// TLS: certificate chain, PEM, leaf first; with --tls-key. Reloaded
        /// (with the key) on SIGHUP [default: none, plain HTTP]
        #[arg(long, value_name = "FILE", env = "REGISTRY_TLS_CERT")]
        pub tls_cert: Option<PathBuf>,

        /// TLS: private key, PEM (PKCS#8, PKCS#1 or SEC1); with --tls-cert
        /// [default: none]
        #[arg(long, value_name = "FILE", env = "REGISTRY_TLS_KEY")]
        pub tls_key: Option<PathBuf>,

        /// Largest request head (request line and headers), e.g. 64K; larger
        /// ones get 431 [default: 64K, at least 8K]
        #[arg(long, value_name = "SIZE", env = "REGISTRY_MAX_HEADER_SIZE")]
        pub max_header_size: Option<ByteSize>,

        /// Seconds a client may take to send a request head (and a TLS
        /// handshake) before the connection is closed [default: 30]
        #[arg(long, value_name = "SECS", env = "REGISTRY_HEADER_READ_TIMEOUT")]
        pub header_read_timeout: Option<NonZeroU64>,

        /// Seconds a request body may send nothing before the request fails
        /// (the upload is not committed) [default: 60]
        #[arg(long, value_name = "SECS", env = "REGISTRY_BODY_IDLE_TIMEOUT")]
        pub body_idle_timeout: Option<NonZeroU64>,

        /// Upload requests (POST, PATCH, PUT of blob uploads) in flight per
        /// client IP address; more get 429 TOOMANYREQUESTS [default: 32; 0: no limit]
        #[arg(long, value_name = "N", env = "REGISTRY_MAX_UPLOADS_PER_CLIENT")]
        pub max_uploads_per_client: Option<usize>,

        /// Requests per second per client IP address; more get 429
        /// TOOMANYREQUESTS with Retry-After [default: no limit]
        #[arg(long, value_name = "N", env = "REGISTRY_RATE_LIMIT")]
        pub rate_limit: Option<NonZeroU32>,

        /// Requests a client may send at once above --rate-limit [default: the rate]
        #[arg(long, value_name = "N", env = "REGISTRY_RATE_LIMIT_BURST")]
        pub rate_limit_burst: Option<NonZeroU32>,

        /// Collect garbage in the background this often, e.g. 6h: blobs no
        /// manifest references (and, with --gc-delete-untagged, manifests no
        /// tag reaches); safe with any number of processes collecting on one
        /// store (docs/GC.md) [default: off]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_GC_INTERVAL")]
        pub gc_interval: Option<HumanDuration>,

        /// The background collector keeps what was written more recently
        /// than this, in the store's own time [default: 24h]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_GC_GRACE")]
        pub gc_grace: Option<HumanDuration>,

        /// The background collector also removes manifests that no tag
        /// reaches [default: false]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_GC_DELETE_UNTAGGED")]
        pub gc_delete_untagged: Option<bool>,

        /// Ask the store whether it answers this often (/readyz)
        /// [default: 5s]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_STORE_PROBE_INTERVAL")]
        pub store_probe_interval: Option<HumanDuration>,

        /// Consecutive store failures (probes or requests) after which the
        /// server is not ready and requests that need the store answer 503 at
        /// once [default: 3]
        #[arg(long, value_name = "N", env = "REGISTRY_STORE_FAILURE_THRESHOLD")]
        pub store_failure_threshold: Option<NonZeroU32>,

        /// Consecutive successful probes after which a failing store is used
        /// again [default: 2]
        #[arg(long, value_name = "N", env = "REGISTRY_STORE_RECOVERY_THRESHOLD")]
        pub store_recovery_threshold: Option<NonZeroU32>,

        /// Longest a storage operation may take, retries included, before the
        /// request gets 503 (uploads of a request body are not cut off: they
        /// fail when the store is found failing) [default: 10s]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_STORAGE_TIMEOUT")]
        pub storage_timeout: Option<HumanDuration>,

        /// On SIGTERM, answer /readyz 503 and keep serving this long before
        /// closing the listener and starting --shutdown-timeout, so that load
        /// balancers stop sending first [default: 0s]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_SHUTDOWN_DELAY")]
        pub shutdown_delay: Option<HumanDuration>,
        /// Keep Prometheus metrics and serve them at GET /metrics
        /// (docs/OPERATIONS.md) [default: true]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_METRICS")]
        pub metrics: Option<bool>,

        /// Serve /metrics on this address of its own, HOST:PORT, plain HTTP,
        /// and not on the main listener [default: the main listener]
        #[arg(long, value_name = "ADDR", env = "REGISTRY_METRICS_LISTEN")]
        pub metrics_listen: Option<ListenAddr>,

        /// Whether a scrape needs the registry's authentication (any valid
        /// credentials, as for GET /v2/), when authentication is configured
        /// [default: true on the main listener, false on --metrics-listen]
        #[arg(long, value_name = "BOOL", env = "REGISTRY_METRICS_AUTH")]
        pub metrics_auth: Option<bool>,

        /// Peers: the base URLs of every registry process on this store, this
        /// host's own included, comma-separated (a list in the config file);
        /// whole-blob reads are then asked of the digest's owners among them
        /// first, so a layer is read from the store about once per fleet
        /// (needs --peer-secret-file; pays with --cache-dir) [default: none]
        #[arg(long, value_name = "URL,...", env = "REGISTRY_PEERS", value_delimiter = ',')]
        pub peers: Option<Vec<String>>,

        /// Peers from DNS instead of a list, NAME:PORT: each A/AAAA address
        /// of NAME is a member, http://IP:PORT, resolved again every 10s
        /// [default: none]
        #[arg(long, value_name = "NAME:PORT", env = "REGISTRY_PEERS_DNS")]
        pub peers_dns: Option<String>,

        /// File holding the secret every peer shares (required with peers)
        /// [default: none]
        #[arg(long, value_name = "FILE", env = "REGISTRY_PEER_SECRET_FILE")]
        pub peer_secret_file: Option<PathBuf>,

        /// How many peers own each blob (rendezvous hashing of its digest)
        /// [default: 2]
        #[arg(long, value_name = "N", env = "REGISTRY_PEER_OWNERS")]
        pub peer_owners: Option<NonZeroUsize>,

        /// How long an owner gets to send its response headers before the
        /// next owner, then the store, is asked [default: 200ms]
        #[arg(long, value_name = "DURATION", env = "REGISTRY_PEER_TIMEOUT")]
        pub peer_timeout: Option<HumanDuration>,

        /// Export traces (a span per request and per storage operation) as
        /// OTLP over HTTP/protobuf to this collector, e.g.
        /// http://127.0.0.1:4318 (/v1/traces is added to a URL without a
        /// path); needs a build with the otlp feature (docs/OPERATIONS.md)
        /// [default: off]
        #[arg(long, value_name = "URL", env = "REGISTRY_OTLP_ENDPOINT")]
        pub otlp_endpoint: Option<super::otlp::Endpoint>,

        /// The service.name of the exported traces [default: registry]
        #[arg(long, value_name = "NAME", env = "REGISTRY_OTLP_SERVICE_NAME")]
        pub otlp_service_name: Option<super::otlp::ServiceName>,

        /// The collector's retention rules: `[[gc_retention]]` tables of the
        /// config file only (docs/GC.md, "Retention").
        #[arg(skip)]
        #[serde(default)]
        pub gc_retention: Vec<RetentionSetting>,

        /// Send webhook notifications of pushes, pulls, mounts and deletes to
        /// this URL, with the defaults; repeat for several (a list in the
        /// config file; endpoints with options go in [[notifications.endpoints]],
        /// docs/OPERATIONS.md) [default: none]
        #[arg(long, value_name = "URL", env = "REGISTRY_NOTIFY")]
        pub notify: Option<Vec<String>>,

        /// Serve a pull-through mirror of the registry at URL under the
        /// repository prefix PREFIX, as PREFIX=URL (e.g.
        /// docker.io=https://registry-1.docker.io); repeat for several (a
        /// list in the config file; mirrors with credentials and options go
        /// in [[mirrors]], docs/MIRROR.md) [default: none]
        #[arg(long, value_name = "PREFIX=URL", env = "REGISTRY_MIRROR")]
        pub mirror: Option<Vec<String>>,

        /// Pull-through mirrors with their upstreams and options (config
        /// file only: `[[mirrors]]` tables).
        #[arg(skip)]
        #[serde(default)]
        pub mirrors: Vec<MirrorSetting>,

        /// Notification endpoints, distribution's keys and ours (config file
        /// only: the `[notifications]` table).
        #[arg(skip)]
        #[serde(default)]
        pub notifications: Option<super::notify::NotificationsSettings>,

        /// Authentication and access rules: the auth flags, and the `[auth]`
        /// table of the config file.
        #[command(flatten)]
        #[serde(default)]
        pub auth: super::auth::AuthSettings,
    }
}

impl Settings {
    /// Read a config file. Errors name the file and, for TOML errors, the
    /// line and the offending key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text)
            .map_err(|e| ConfigError(format!("invalid config file {}: {e}", path.display())))
    }

    /// Parse the TOML text of a config file.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            // toml's Display quotes the source over several lines; keep one.
            let line = e
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            let message = one_line(e.message());
            ConfigError(match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            })
        })
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub listen: ListenAddr,
    /// Storage URL.
    pub storage: StorageUrl,
    /// Log filter.
    pub log_level: LogLevel,
    /// Log line format.
    pub log_format: LogFormat,
    /// The store probe and the fail-fast thresholds.
    pub health: registry_storage::HealthConfig,
    /// How long /readyz answers 503 before the listener closes on SIGTERM.
    pub shutdown_delay: Duration,
    /// Largest manifest accepted; `None` keeps the HTTP layer's default.
    pub manifest_max_size: Option<NonZeroUsize>,
    /// Where foreign layer URLs in pushed manifests may point: allow and
    /// deny patterns (both empty: nowhere).
    pub manifest_urls: (Vec<UrlPattern>, Vec<UrlPattern>),
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Whether this process is declared the only writer of its storage.
    pub single_writer: bool,
    /// Age after which an unfinished upload is purged.
    pub upload_max_age: Duration,
    /// The per-host blob cache: directory and size bound.
    pub cache: Option<(PathBuf, u64)>,
    /// Blob GETs redirected to presigned S3 URLs: how long they are valid,
    /// and the endpoint they are signed for (`None`: the storage's).
    pub redirect: Option<(Duration, Option<EndpointUrl>)>,
    /// Whether filesystem writes are flushed before they are acknowledged.
    pub fsync: bool,
    /// TLS files, if any (both or neither must be given; checked at start-up).
    pub tls: super::tls::TlsSetting,
    /// Transport limits.
    pub limits: super::limits::LimitsConfig,
    /// The background collector: how often, and what it collects.
    pub gc: Option<(Duration, registry_storage::GcOptions)>,
    /// The retention rules (used by the collector; pulls are recorded when
    /// a rule keeps what was pulled).
    pub retention: registry_storage::gc::Retention,
    /// Authentication settings, checked when the server starts.
    pub auth: super::auth::AuthSettings,
    /// Notification endpoints: the config file's table and the `--notify`
    /// URLs, checked when the server starts.
    pub notifications: (Option<super::notify::NotificationsSettings>, Vec<String>),
    /// Prometheus metrics: on or off, where, behind authentication or not.
    pub metrics: super::metrics::MetricsConfig,
    /// Peer fetch between the hosts' caches, as given (checked when the
    /// server starts).
    pub peers: PeerSettings,
    /// Pull-through mirrors: the config file's tables and the `--mirror`
    /// flags (checked when the server starts).
    pub mirrors: (Vec<MirrorSetting>, Vec<String>),
    /// Trace export: where to, under which service name; off by default.
    pub otlp: super::otlp::OtlpConfig,
}

impl Config {
    /// Fill in the defaults for whatever `settings` leaves out.
    pub fn resolve(settings: Settings) -> Config {
        Config {
            listen: settings.listen.unwrap_or_else(|| builtin(DEFAULT_LISTEN)),
            storage: settings.storage.unwrap_or_else(|| builtin(DEFAULT_STORAGE)),
            log_level: settings
                .log_level
                .unwrap_or_else(|| builtin(DEFAULT_LOG_LEVEL)),
            log_format: settings.log_format.unwrap_or_default(),
            health: {
                let d = registry_storage::HealthConfig::default();
                registry_storage::HealthConfig {
                    probe_interval: settings
                        .store_probe_interval
                        .map_or(d.probe_interval, |v| v.0),
                    failures: settings
                        .store_failure_threshold
                        .map_or(d.failures, |n| n.get()),
                    successes: settings
                        .store_recovery_threshold
                        .map_or(d.successes, |n| n.get()),
                    op_timeout: settings.storage_timeout.map_or(d.op_timeout, |v| v.0),
                }
            },
            shutdown_delay: settings.shutdown_delay.map_or(Duration::ZERO, |v| v.0),
            manifest_max_size: settings.manifest_max_size,
            manifest_urls: (
                settings.manifest_urls_allow.unwrap_or_default(),
                settings.manifest_urls_deny.unwrap_or_default(),
            ),
            shutdown_timeout: settings
                .shutdown_timeout
                .map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs),
            single_writer: settings.single_writer.unwrap_or(false),
            upload_max_age: settings
                .upload_max_age
                .map_or(DEFAULT_UPLOAD_MAX_AGE, Duration::from_secs),
            cache: settings.cache_dir.map(|dir| {
                let size = settings.cache_size.map_or(DEFAULT_CACHE_SIZE, |s| s.0);
                (dir, size)
            }),
            redirect: settings.redirect.unwrap_or(false).then(|| {
                let expiry = settings
                    .redirect_expiry
                    .map_or(DEFAULT_REDIRECT_EXPIRY, |e| e.0);
                (expiry, settings.redirect_endpoint.clone())
            }),
            retention: retention::retention(&settings.gc_retention),
            gc: settings.gc_interval.map(|every| {
                let options = registry_storage::GcOptions::default()
                    .with_retention(retention::retention(&settings.gc_retention))
                    .with_grace(settings.gc_grace.map_or(DEFAULT_GC_GRACE, |g| g.0))
                    .with_delete_untagged(settings.gc_delete_untagged.unwrap_or(false))
                    .with_commit(true);
                (every.0, options)
            }),
            auth: settings.auth,
            notifications: (settings.notifications, settings.notify.unwrap_or_default()),
            mirrors: (settings.mirrors, settings.mirror.unwrap_or_default()),
            peers: PeerSettings {
                urls: settings.peers.unwrap_or_default(),
                dns: settings.peers_dns,
                secret_file: settings.peer_secret_file,
                owners: settings.peer_owners,
                timeout: settings.peer_timeout.map(|t| t.0),
            },
            metrics: super::metrics::MetricsConfig::resolve(
                settings.metrics,
                settings.metrics_listen,
                settings.metrics_auth,
            ),
            otlp: super::otlp::OtlpConfig::resolve(
                settings.otlp_endpoint,
                settings.otlp_service_name,
            ),
            fsync: !settings.no_fsync.unwrap_or(false),
            tls: super::tls::TlsSetting::resolve(settings.tls_cert, settings.tls_key),
            limits: super::limits::LimitsConfig::resolve(
                settings.max_header_size.map(|s| s.0),
                settings.header_read_timeout,
                settings.body_idle_timeout,
                settings.max_uploads_per_client,
                settings.rate_limit,
                settings.rate_limit_burst,
                settings.manifest_max_size,
            ),
        }
    }
}

/// The peer settings as given; [`super::peers`] checks and builds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSettings {
    /// `--peers`.
    pub urls: Vec<String>,
    /// `--peers-dns`.
    pub dns: Option<String>,
    /// `--peer-secret-file`.
    pub secret_file: Option<PathBuf>,
    /// `--peer-owners`.
    pub owners: Option<NonZeroUsize>,
    /// `--peer-timeout`.
    pub timeout: Option<Duration>,
}

/// A built-in default, which is valid.
fn builtin<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: fmt::Debug,
{
    value.parse().expect("built-in defaults are valid")
}

/// A configuration error: one line, fit for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Join a multi-line message into one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
