//! The server's settings and how they are resolved.
//!
//! Every setting can come from four places, highest precedence first: a
//! command-line flag, an environment variable, the TOML config file, the
//! built-in default. Flags and environment variables are merged by clap (see
//! [`cli`](super::cli)) into one [`Settings`] layer; the config file is read
//! into another; [`Settings::or`] stacks them and [`Config::resolve`] fills
//! in the defaults.
//!
//! Values are validated as they are parsed, whichever source they come
//! from, so a bad value names its source in the error.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

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

/// Settings as given by one source (flags and environment, or the config
/// file). `None` means "not given here".
///
/// This is also the schema of the config file: its keys are the field names
/// and any other key is an error.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: Option<ListenAddr>,
    /// Storage URL.
    pub storage: Option<StorageUrl>,
    /// Log filter.
    pub log_level: Option<LogLevel>,
    /// Largest manifest accepted, in bytes.
    pub manifest_max_size: Option<NonZeroUsize>,
    /// Patterns a foreign layer's URL must match one of.
    pub manifest_urls_allow: Option<Vec<UrlPattern>>,
    /// Patterns a foreign layer's URL must match none of.
    pub manifest_urls_deny: Option<Vec<UrlPattern>>,
    /// Seconds a shutdown waits for in-flight requests.
    pub shutdown_timeout: Option<u64>,
    /// Skip the start-up check that the storage honours conditional writes:
    /// this process is the only writer.
    pub single_writer: Option<bool>,
    /// Seconds after which an unfinished upload is purged.
    pub upload_max_age: Option<u64>,
    /// Directory of the per-host blob cache (none: no cache).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Size bound of the blob cache.
    pub cache_size: Option<ByteSize>,
    /// Filesystem storage: acknowledge writes without flushing them to disk
    /// (for benchmarks; a power loss can lose acknowledged pushes).
    pub no_fsync: Option<bool>,
    /// TLS certificate chain, PEM (with `tls_key`; none: plain HTTP).
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key, PEM.
    pub tls_key: Option<std::path::PathBuf>,
    /// Largest request head (request line and headers).
    pub max_header_size: Option<ByteSize>,
    /// Seconds a client may take to send a request head.
    pub header_read_timeout: Option<std::num::NonZeroU64>,
    /// Seconds a request body may send nothing before the request fails.
    pub body_idle_timeout: Option<std::num::NonZeroU64>,
    /// Upload requests in flight per client IP address (0: no limit).
    pub max_uploads_per_client: Option<usize>,
    /// Requests per second per client IP address (none: no rate limit).
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// Requests a client may send at once above the rate.
    pub rate_limit_burst: Option<std::num::NonZeroU32>,
    /// Authentication and access rules: the `[auth]` table.
    #[serde(default)]
    pub auth: super::auth::AuthSettings,
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

    /// These settings, with anything missing taken from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            storage: self.storage.or(lower.storage),
            log_level: self.log_level.or(lower.log_level),
            manifest_max_size: self.manifest_max_size.or(lower.manifest_max_size),
            manifest_urls_allow: self.manifest_urls_allow.or(lower.manifest_urls_allow),
            manifest_urls_deny: self.manifest_urls_deny.or(lower.manifest_urls_deny),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            single_writer: self.single_writer.or(lower.single_writer),
            upload_max_age: self.upload_max_age.or(lower.upload_max_age),
            cache_dir: self.cache_dir.or(lower.cache_dir),
            cache_size: self.cache_size.or(lower.cache_size),
            no_fsync: self.no_fsync.or(lower.no_fsync),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            max_header_size: self.max_header_size.or(lower.max_header_size),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            body_idle_timeout: self.body_idle_timeout.or(lower.body_idle_timeout),
            max_uploads_per_client: self.max_uploads_per_client.or(lower.max_uploads_per_client),
            rate_limit: self.rate_limit.or(lower.rate_limit),
            rate_limit_burst: self.rate_limit_burst.or(lower.rate_limit_burst),
            auth: self.auth.or(lower.auth),
        }
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
    pub cache: Option<(std::path::PathBuf, u64)>,
    /// Whether filesystem writes are flushed before they are acknowledged.
    pub fsync: bool,
    /// TLS files, if any (both or neither must be given; checked at start-up).
    pub tls: super::tls::TlsSetting,
    /// Transport limits.
    pub limits: super::limits::LimitsConfig,
    /// Authentication settings, checked when the server starts.
    pub auth: super::auth::AuthSettings,
}

impl Config {
    /// Fill in the defaults for whatever `settings` leaves out.
    pub fn resolve(settings: Settings) -> Config {
        let default = |s: &str| s.parse().expect("built-in defaults are valid");
        Config {
            listen: settings.listen.unwrap_or_else(|| default(DEFAULT_LISTEN)),
            storage: settings
                .storage
                .unwrap_or_else(|| StorageUrl(DEFAULT_STORAGE.to_owned())),
            log_level: settings
                .log_level
                .unwrap_or_else(|| LogLevel(DEFAULT_LOG_LEVEL.to_owned())),
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
            auth: settings.auth,
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

/// A size in bytes, written as a number with an optional binary suffix:
/// `1048576`, `512K`, `64M`, `10G`, `1T` (`KiB`, `MiB`, ... also accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid size {s:?}: expected a number with an optional K, M, G or T suffix")
        })?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
        };
        n.checked_mul(1u64 << shift)
            .filter(|&b| b > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size {s:?}: must be between 1 byte and 16 EiB"))
    }
}

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(i) if i > 0 => Ok(ByteSize(i as u64)),
            toml::Value::String(s) => s.parse(),
            other => Err(format!(
                "invalid size {other:?}: expected a positive integer or a string like \"10G\""
            )),
        }
    }
}

/// A regular expression for foreign layer URLs (`manifest_urls_allow`,
/// `manifest_urls_deny`), checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UrlPattern(String);

impl UrlPattern {
    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UrlPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        registry_core::ForeignUrlPolicy::check_pattern(s)?;
        Ok(UrlPattern(s.to_owned()))
    }
}

impl TryFrom<String> for UrlPattern {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
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

/// A listen address, `HOST:PORT`: an IP address (`127.0.0.1:5000`,
/// `[::1]:5000`, `0.0.0.0:5000`) or a host name (`localhost:5000`). Port 0
/// lets the OS pick a free port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr(String);

impl ListenAddr {
    /// The address as given, for binding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!("invalid listen address {s:?}: {why} (expected HOST:PORT, e.g. 127.0.0.1:5000)")
        };
        if s.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(ListenAddr(s.to_owned()));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        port.parse::<u16>()
            .map_err(|_| bad("port is not a number from 0 to 65535"))?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok {
            return Err(bad("host is not an IP address or host name"));
        }
        Ok(ListenAddr(s.to_owned()))
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A storage URL, `SCHEME://...`. Only its shape is checked here; the
/// storage crate parses the rest at start-up. [`fmt::Display`] shows it
/// with any credentials masked, so it is safe to log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StorageUrl(String);

impl StorageUrl {
    /// The URL exactly as given, for the storage crate. Do not log it: use
    /// `Display`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for StorageUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once("://") {
            Some((scheme, _))
                if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Ok(StorageUrl(s.to_owned()))
            }
            _ => Err(format!(
                "invalid storage URL {:?}: expected SCHEME://..., e.g. fs:///var/lib/registry, fs://data, memory:// or s3://bucket/prefix",
                redact(s)
            )),
        }
    }
}

impl TryFrom<String> for StorageUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUrl({:?})", redact(&self.0))
    }
}

/// Mask what could be a credential in a URL: the user-info part
/// (`user:pass@`) and the values of query parameters whose names suggest a
/// secret.
pub fn redact(url: &str) -> String {
    const SECRET_WORDS: [&str; 6] = [
        "secret",
        "password",
        "token",
        "key",
        "credential",
        "signature",
    ];
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if SECRET_WORDS
                        .iter()
                        .any(|w| k.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A log filter: a `tracing` `EnvFilter` directive such as `info`,
/// `debug` or `info,registry_http=debug`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LogLevel(String);

impl LogLevel {
    /// The directive.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match tracing_subscriber::EnvFilter::try_new(s) {
            Ok(_) if !s.trim().is_empty() => Ok(LogLevel(s.to_owned())),
            Ok(_) => Err(
                "invalid log level \"\": expected e.g. info, debug or info,registry_http=debug"
                    .to_owned(),
            ),
            Err(e) => Err(format!(
                "invalid log level {s:?}: {e} (expected e.g. info, debug or info,registry_http=debug)"
            )),
        }
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Join a multi-line message into one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> ListenAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_serve_port_5000_on_local_data_dir() {
        let c = Config::resolve(Settings::default());
        assert_eq!(c.listen.as_str(), "127.0.0.1:5000");
        assert_eq!(c.storage.expose(), "fs://data");
        assert_eq!(c.log_level.as_str(), "info");
        assert_eq!(c.manifest_max_size, None);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    }

    #[test]
    fn higher_layer_wins_and_lower_fills_gaps() {
        let flags = Settings {
            listen: Some(listen("127.0.0.1:1")),
            ..Default::default()
        };
        let file = Settings::from_toml(
            "listen = \"127.0.0.1:2\"\nstorage = \"memory://\"\nshutdown_timeout = 5\n",
        )
        .unwrap();
        let c = Config::resolve(flags.or(file));
        assert_eq!(c.listen.as_str(), "127.0.0.1:1");
        assert_eq!(c.storage.expose(), "memory://");
        assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(c.log_level.as_str(), DEFAULT_LOG_LEVEL);
    }

    #[test]
    fn config_file_with_every_key() {
        let s = Settings::from_toml(
            r#"
            listen = "0.0.0.0:5001"
            storage = "s3://bucket/prefix?region=eu-west-1"
            log_level = "debug,hyper=info"
            manifest_max_size = 1048576
            shutdown_timeout = 10
            single_writer = true
            upload_max_age = 3600
            cache_dir = "/var/cache/registry"
            cache_size = "512M"
            manifest_urls_allow = ["^https://example\\.com/"]
            manifest_urls_deny = ["/private/", "\\.internal/"]
            "#,
        )
        .unwrap();
        let (allow, deny) = Config::resolve(s.clone()).manifest_urls;
        assert_eq!(allow.len(), 1);
        assert_eq!(allow[0].as_str(), "^https://example\\.com/");
        assert_eq!(deny.len(), 2);
        assert_eq!(
            Config::resolve(Settings::default()).manifest_urls,
            (Vec::new(), Vec::new()),
            "no pattern: no foreign URL is accepted"
        );
        assert_eq!(s.single_writer, Some(true));
        assert_eq!(s.upload_max_age, Some(3600));
        assert_eq!(s.cache_size, Some(ByteSize(512 << 20)));
        let c = Config::resolve(s.clone());
        assert!(c.single_writer);
        assert_eq!(c.upload_max_age, Duration::from_secs(3600));
        assert_eq!(c.cache, Some(("/var/cache/registry".into(), 512 << 20)));
        assert_eq!(s.listen, Some(listen("0.0.0.0:5001")));
        assert_eq!(
            s.storage.unwrap().expose(),
            "s3://bucket/prefix?region=eu-west-1"
        );
        assert_eq!(s.log_level.unwrap().as_str(), "debug,hyper=info");
        assert_eq!(s.manifest_max_size, NonZeroUsize::new(1 << 20));
        assert_eq!(s.shutdown_timeout, Some(10));
        assert_eq!(Settings::from_toml("").unwrap(), Settings::default());
    }

    #[test]
    fn fleet_defaults_and_sizes() {
        let c = Config::resolve(Settings::default());
        assert!(
            !c.single_writer,
            "the conditional-write check runs unless declared otherwise"
        );
        assert_eq!(c.upload_max_age, DEFAULT_UPLOAD_MAX_AGE);
        assert_eq!(c.cache, None);
        let only_dir = Settings {
            cache_dir: Some("/c".into()),
            ..Settings::default()
        };
        assert_eq!(
            Config::resolve(only_dir).cache,
            Some(("/c".into(), DEFAULT_CACHE_SIZE))
        );
        for (text, bytes) in [
            ("1", 1),
            ("512K", 512 << 10),
            ("64M", 64 << 20),
            ("10G", 10 << 30),
            ("2GiB", 2 << 30),
            ("1t", 1 << 40),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "0", "G", "10X", "-1", "99999999999T"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
        assert_eq!(
            Settings::from_toml("cache_size = 4096").unwrap().cache_size,
            Some(ByteSize(4096))
        );
        assert!(Settings::from_toml("cache_size = -5").is_err());
    }

    #[test]
    fn config_file_rejects_unknown_keys_by_name() {
        let e =
            Settings::from_toml("listen = \"127.0.0.1:5000\"\nstorge = \"fs://x\"\n").unwrap_err();
        assert!(e.0.starts_with("line 2: unknown field `storge`"), "{e}");
        assert!(e.0.contains("expected one of"), "{e}");
        assert!(!e.0.contains('\n'), "{e}");
    }

    #[test]
    fn config_file_rejects_invalid_values() {
        for (toml, expect) in [
            ("listen = \"nowhere\"", "invalid listen address"),
            ("listen = 5000", "invalid type"),
            ("storage = \"/var/lib/registry\"", "invalid storage URL"),
            ("log_level = \"info,[\"", "invalid log level"),
            ("manifest_max_size = 0", "nonzero"),
            ("manifest_max_size = -1", "invalid value"),
            ("shutdown_timeout = \"soon\"", "invalid type"),
            ("listen = ", "line 1: string values must be quoted"),
            (
                "manifest_urls_allow = [\"(\"]",
                "invalid regular expression \"(\"",
            ),
            ("manifest_urls_deny = \"x\"", "invalid type"),
        ] {
            let e = Settings::from_toml(toml).unwrap_err();
            assert!(e.0.contains(expect), "{toml}: {e}");
        }
    }

    #[test]
    fn config_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let e = Settings::from_file(&missing).unwrap_err();
        assert!(
            e.0.starts_with("cannot read config file") && e.0.contains("missing.toml"),
            "{e}"
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "colour = \"blue\"\n").unwrap();
        let e = Settings::from_file(&bad).unwrap_err();
        assert!(
            e.0.contains("bad.toml") && e.0.contains("unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn listen_addresses() {
        for ok in [
            "127.0.0.1:5000",
            "0.0.0.0:0",
            "[::1]:5000",
            "localhost:5000",
            "registry.local:443",
        ] {
            assert_eq!(listen(ok).as_str(), ok);
        }
        for bad in [
            "",
            "5000",
            ":5000",
            "127.0.0.1",
            "127.0.0.1:65536",
            "host:port",
            "a b:1",
            "[::1]",
        ] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert!(e.starts_with("invalid listen address"), "{bad}: {e}");
        }
    }

    #[test]
    fn storage_urls_are_checked_for_shape_only() {
        for ok in [
            "fs:///var/lib/registry",
            "fs://data",
            "memory://",
            "s3://b/p?region=x",
        ] {
            assert_eq!(ok.parse::<StorageUrl>().unwrap().expose(), ok);
        }
        for bad in ["", "data", "/var/lib/registry", "://x", "f s://x"] {
            assert!(bad.parse::<StorageUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_urls_are_displayed_without_credentials() {
        let cases = [
            ("fs:///var/lib/registry", "fs:///var/lib/registry"),
            (
                "s3://bucket/p?endpoint=http://minio:9000&region=x",
                "s3://bucket/p?endpoint=http://minio:9000&region=x",
            ),
            ("s3://AKIA:hunter2@bucket/p", "s3://***@bucket/p"),
            (
                "s3://bucket?access_key_id=AKIA&secret_access_key=hunter2",
                "s3://bucket?access_key_id=***&secret_access_key=***",
            ),
            (
                "s3://bucket?session_token=t&region=r",
                "s3://bucket?session_token=***&region=r",
            ),
        ];
        for (url, shown) in cases {
            let u: StorageUrl = url.parse().unwrap();
            assert_eq!(u.to_string(), shown);
            assert!(!format!("{u:?}").contains("hunter2"));
        }
    }

    #[test]
    fn log_levels() {
        for ok in ["info", "debug", "warn,registry=trace", "off"] {
            assert_eq!(ok.parse::<LogLevel>().unwrap().as_str(), ok);
        }
        for bad in ["", "info,[", "=x="] {
            assert!(
                bad.parse::<LogLevel>()
                    .unwrap_err()
                    .starts_with("invalid log level"),
                "{bad}"
            );
        }
    }
}
