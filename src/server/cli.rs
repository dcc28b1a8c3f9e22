//! The command line: `registry serve [OPTIONS]`, `registry fsck`, `registry version`.
//!
//! Flags and their environment variables are declared here; clap merges the
//! two (a flag beats its variable) into one [`Settings`] layer, which
//! [`config`](super::config) stacks over the config file and the defaults.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::config::{ByteSize, ListenAddr, LogLevel, Settings, StorageUrl, UrlPattern};

/// Storage URL forms and the precedence rule, shown by `--help`.
const SETTINGS_HELP: &str = "\
Settings of `registry serve`, by flag, environment variable and config file key:
  --listen ADDR              REGISTRY_LISTEN             listen             [default: 127.0.0.1:5000]
  --storage URL              REGISTRY_STORAGE            storage            [default: fs://data]
  --config FILE              REGISTRY_CONFIG                                [default: none]
  --log-level LEVEL          REGISTRY_LOG                log_level          [default: info]
  --manifest-max-size BYTES  REGISTRY_MANIFEST_MAX_SIZE  manifest_max_size  [default: 4 MiB]
  --manifest-urls-allow REGEX REGISTRY_MANIFEST_URLS_ALLOW manifest_urls_allow [default: none] (repeatable; a list in the file)
  --manifest-urls-deny REGEX REGISTRY_MANIFEST_URLS_DENY  manifest_urls_deny [default: none] (repeatable; a list in the file)
  --shutdown-timeout SECS    REGISTRY_SHUTDOWN_TIMEOUT   shutdown_timeout   [default: 30]
  --single-writer            REGISTRY_SINGLE_WRITER      single_writer      [default: false]
  --upload-max-age SECS      REGISTRY_UPLOAD_MAX_AGE     upload_max_age     [default: 86400]
  --cache-dir DIR            REGISTRY_CACHE_DIR          cache_dir          [default: none]
  --cache-size SIZE          REGISTRY_CACHE_SIZE         cache_size         [default: 10G]
  --no-fsync                 REGISTRY_NO_FSYNC           no_fsync           [default: false]
  --tls-cert FILE            REGISTRY_TLS_CERT           tls_cert           [default: none, plain HTTP]
  --tls-key FILE             REGISTRY_TLS_KEY            tls_key            [default: none]
  --max-header-size SIZE     REGISTRY_MAX_HEADER_SIZE    max_header_size    [default: 64K]
  --header-read-timeout SECS REGISTRY_HEADER_READ_TIMEOUT header_read_timeout [default: 30]
  --body-idle-timeout SECS   REGISTRY_BODY_IDLE_TIMEOUT  body_idle_timeout  [default: 60]
  --max-uploads-per-client N REGISTRY_MAX_UPLOADS_PER_CLIENT max_uploads_per_client [default: 32; 0: none]
  --rate-limit N             REGISTRY_RATE_LIMIT         rate_limit         [default: none] (requests/s per client)
  --rate-limit-burst N       REGISTRY_RATE_LIMIT_BURST   rate_limit_burst   [default: the rate]
  --auth MODE                REGISTRY_AUTH               [auth] mode        [default: none] (none, htpasswd, token)
  --htpasswd FILE            REGISTRY_HTPASSWD           [auth] htpasswd    [default: none]
  --token-realm URL          REGISTRY_TOKEN_REALM        [auth] token_realm [default: /token on this server]
  --token-service NAME       REGISTRY_TOKEN_SERVICE      [auth] token_service [default: registry]
  --token-issuer NAME        REGISTRY_TOKEN_ISSUER       [auth] token_issuer [default: registry-token-issuer]
  --token-keys FILE          REGISTRY_TOKEN_KEYS         [auth] token_keys  [default: none: built-in issuer]
  --token-issuer-key FILE    REGISTRY_TOKEN_ISSUER_KEY   [auth] token_issuer_key [default: generated]
  Access rules and groups: [[auth.rules]] and [auth.groups] in the config file (see SECURITY.md).
  Foreign layer URLs in pushed manifests: refused unless an allow or deny pattern is set; with
  allow patterns a URL must match one, and it must match no deny pattern (see SECURITY.md).

Precedence, highest first: command-line flag, environment variable, config
file (TOML, keys as above; an unknown key is an error), built-in default.

Storage URLs:
  fs:///abs/path              a directory, in CNCF distribution's layout
  fs://relative/path          a directory relative to the working directory
  memory://                   process memory, lost on exit (for tests)
  s3://bucket/prefix?endpoint=URL&region=REGION
                              an S3 bucket or S3-compatible server; credentials
                              come from the usual AWS_* environment variables,
                              never from the URL

Example config file:
  listen = \"0.0.0.0:5000\"
  storage = \"fs:///var/lib/registry\"
  log_level = \"info,registry_http=debug\"
  manifest_max_size = 4194304";

/// An OCI distribution (v1.1) registry server.
#[derive(Debug, Parser)]
#[command(name = "registry", version, after_help = SETTINGS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OCI distribution API over HTTP until SIGINT or SIGTERM.
    #[command(after_help = SETTINGS_HELP)]
    Serve(Box<ServeArgs>),
    /// Check the store for dangling tags (naming a manifest the repository
    /// no longer has), tag folders without a current link, and manifests
    /// whose bytes are gone; with --repair, fix them. Safe while servers
    /// run on the same store. Exits 1 if problems remain.
    Fsck(FsckArgs),
    /// Collect garbage: remove manifests no tag reaches (with
    /// --delete-untagged) and blobs no manifest references, after a plan
    /// (the default) or for real (--commit). Safe while servers push,
    /// delete and collect on the same store (docs/GC.md). Ends with one
    /// summary line.
    Gc(GcArgs),
    /// Print the version and exit.
    Version,
}

/// Options of `registry gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The store to collect, as for `registry serve`
    #[arg(
        long,
        value_name = "URL",
        env = "REGISTRY_STORAGE",
        hide_env_values = true,
        default_value = "fs://data"
    )]
    pub storage: StorageUrl,

    /// Keep what was written more recently than this (in the store's own
    /// time), e.g. 0s, 90s, 24h
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,

    /// Delete (by default only print the plan)
    #[arg(long)]
    pub commit: bool,

    /// Also remove manifests that no tag reaches (directly, through an
    /// index, or as a referrer of one that is reached)
    #[arg(long)]
    pub delete_untagged: bool,

    /// Print the report as one JSON object (before the summary line)
    #[arg(long)]
    pub json: bool,
}

/// Options of `registry fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// The store to check, as for `registry serve`
    #[arg(
        long,
        value_name = "URL",
        env = "REGISTRY_STORAGE",
        hide_env_values = true,
        default_value = "fs://data"
    )]
    pub storage: StorageUrl,

    /// Repair what is found (by default only report)
    #[arg(long)]
    pub repair: bool,
}

/// Options of `registry serve`. Each is optional here: what is not given by
/// flag or environment comes from the config file, then the default.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT; port 0 lets the OS pick one
    /// [default: 127.0.0.1:5000]
    #[arg(
        long,
        value_name = "ADDR",
        env = "REGISTRY_LISTEN",
        hide_env_values = true
    )]
    pub listen: Option<ListenAddr>,

    /// Where to store content: fs:///abs/path, fs://relative/path, memory://
    /// or s3://bucket/prefix?endpoint=URL&region=REGION [default: fs://data]
    #[arg(
        long,
        value_name = "URL",
        env = "REGISTRY_STORAGE",
        hide_env_values = true
    )]
    pub storage: Option<StorageUrl>,

    /// TOML config file with keys listen, storage, log_level,
    /// manifest_max_size, shutdown_timeout
    #[arg(
        long,
        value_name = "FILE",
        env = "REGISTRY_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,

    /// Log filter: a level (error, warn, info, debug, trace) or a tracing
    /// EnvFilter directive such as info,registry_http=debug [default: info]
    #[arg(
        long,
        value_name = "LEVEL",
        env = "REGISTRY_LOG",
        hide_env_values = true
    )]
    pub log_level: Option<LogLevel>,

    /// Largest manifest accepted, in bytes; larger pushes get 413
    /// [default: the HTTP layer's, at least 4 MiB]
    #[arg(
        long,
        value_name = "BYTES",
        env = "REGISTRY_MANIFEST_MAX_SIZE",
        hide_env_values = true
    )]
    pub manifest_max_size: Option<NonZeroUsize>,

    /// Regular expression the URL of a foreign (non-distributable) layer in
    /// a pushed manifest must match; repeat for several (any one will do).
    /// Without allow or deny patterns, manifests with such URLs are refused
    #[arg(
        long,
        value_name = "REGEX",
        env = "REGISTRY_MANIFEST_URLS_ALLOW",
        hide_env_values = true
    )]
    pub manifest_urls_allow: Vec<UrlPattern>,

    /// Regular expression the URL of a foreign layer in a pushed manifest
    /// must not match; repeat for several
    #[arg(
        long,
        value_name = "REGEX",
        env = "REGISTRY_MANIFEST_URLS_DENY",
        hide_env_values = true
    )]
    pub manifest_urls_deny: Vec<UrlPattern>,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM before
    /// closing their connections [default: 30]
    #[arg(
        long,
        value_name = "SECS",
        env = "REGISTRY_SHUTDOWN_TIMEOUT",
        hide_env_values = true
    )]
    pub shutdown_timeout: Option<u64>,

    /// Declare this process the only writer of its storage, and skip the
    /// start-up check that the storage refuses conflicting conditional
    /// writes (which several processes sharing one store rely on)
    #[arg(
        long,
        value_name = "BOOL",
        env = "REGISTRY_SINGLE_WRITER",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub single_writer: Option<bool>,

    /// Seconds after which an unfinished upload is deleted by the periodic
    /// sweep [default: 86400]
    #[arg(
        long,
        value_name = "SECS",
        env = "REGISTRY_UPLOAD_MAX_AGE",
        hide_env_values = true
    )]
    pub upload_max_age: Option<u64>,

    /// Directory of a per-host, read-through blob cache in front of the
    /// storage (blobs only; manifests and tags are always read from the
    /// storage) [default: no cache]
    #[arg(
        long,
        value_name = "DIR",
        env = "REGISTRY_CACHE_DIR",
        hide_env_values = true
    )]
    pub cache_dir: Option<PathBuf>,

    /// Size bound of the blob cache, e.g. 512M or 10G; least recently used
    /// blobs are evicted [default: 10G]
    #[arg(
        long,
        value_name = "SIZE",
        env = "REGISTRY_CACHE_SIZE",
        hide_env_values = true
    )]
    pub cache_size: Option<ByteSize>,

    /// Filesystem storage only: acknowledge pushes without flushing them to
    /// disk. Faster, but a power loss can lose acknowledged content; for
    /// benchmarks and throwaway registries [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        env = "REGISTRY_NO_FSYNC",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub no_fsync: Option<bool>,

    /// TLS: certificate chain, PEM, leaf first; with --tls-key. Reloaded
    /// (with the key) on SIGHUP [default: none, plain HTTP]
    #[arg(
        long,
        value_name = "FILE",
        env = "REGISTRY_TLS_CERT",
        hide_env_values = true
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS: private key, PEM (PKCS#8, PKCS#1 or SEC1); with --tls-cert
    #[arg(
        long,
        value_name = "FILE",
        env = "REGISTRY_TLS_KEY",
        hide_env_values = true
    )]
    pub tls_key: Option<PathBuf>,

    /// Largest request head (request line and headers), e.g. 64K; larger
    /// ones get 431 [default: 64K, at least 8K]
    #[arg(
        long,
        value_name = "SIZE",
        env = "REGISTRY_MAX_HEADER_SIZE",
        hide_env_values = true
    )]
    pub max_header_size: Option<ByteSize>,

    /// Seconds a client may take to send a request head (and a TLS
    /// handshake) before the connection is closed [default: 30]
    #[arg(
        long,
        value_name = "SECS",
        env = "REGISTRY_HEADER_READ_TIMEOUT",
        hide_env_values = true
    )]
    pub header_read_timeout: Option<std::num::NonZeroU64>,

    /// Seconds a request body may send nothing before the request fails
    /// (the upload is not committed) [default: 60]
    #[arg(
        long,
        value_name = "SECS",
        env = "REGISTRY_BODY_IDLE_TIMEOUT",
        hide_env_values = true
    )]
    pub body_idle_timeout: Option<std::num::NonZeroU64>,

    /// Upload requests (POST, PATCH, PUT of blob uploads) in flight per
    /// client IP address; more get 429 TOOMANYREQUESTS [default: 32; 0: no limit]
    #[arg(
        long,
        value_name = "N",
        env = "REGISTRY_MAX_UPLOADS_PER_CLIENT",
        hide_env_values = true
    )]
    pub max_uploads_per_client: Option<usize>,

    /// Requests per second per client IP address; more get 429
    /// TOOMANYREQUESTS with Retry-After [default: no limit]
    #[arg(
        long,
        value_name = "N",
        env = "REGISTRY_RATE_LIMIT",
        hide_env_values = true
    )]
    pub rate_limit: Option<std::num::NonZeroU32>,

    /// Requests a client may send at once above --rate-limit [default: the rate]
    #[arg(
        long,
        value_name = "N",
        env = "REGISTRY_RATE_LIMIT_BURST",
        hide_env_values = true
    )]
    pub rate_limit_burst: Option<std::num::NonZeroU32>,

    /// Authentication flags.
    #[command(flatten)]
    pub auth: super::auth::AuthArgs,
}

impl ServeArgs {
    /// The settings given by flags and environment, the top layer.
    pub fn settings(&self) -> Settings {
        Settings {
            listen: self.listen.clone(),
            storage: self.storage.clone(),
            log_level: self.log_level.clone(),
            manifest_max_size: self.manifest_max_size,
            manifest_urls_allow: given(&self.manifest_urls_allow),
            manifest_urls_deny: given(&self.manifest_urls_deny),
            shutdown_timeout: self.shutdown_timeout,
            single_writer: self.single_writer,
            upload_max_age: self.upload_max_age,
            cache_dir: self.cache_dir.clone(),
            cache_size: self.cache_size,
            no_fsync: self.no_fsync,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            max_header_size: self.max_header_size,
            header_read_timeout: self.header_read_timeout,
            body_idle_timeout: self.body_idle_timeout,
            max_uploads_per_client: self.max_uploads_per_client,
            rate_limit: self.rate_limit,
            rate_limit_burst: self.rate_limit_burst,
            auth: self.auth.settings(),
        }
    }
}

/// A list flag: `None` when it was not given, so that a lower layer may
/// give it.
fn given<T: Clone>(values: &[T]) -> Option<Vec<T>> {
    (!values.is_empty()).then(|| values.to_vec())
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, MutexGuard};

    use clap::CommandFactory;

    use super::*;
    use crate::server::config::{Config, ConfigError};

    /// The environment variables `serve` reads. Tests that parse a command
    /// line hold [`ENV`] so that the one test that sets them cannot leak
    /// them into another.
    const VARS: [&str; 11] = [
        "REGISTRY_LISTEN",
        "REGISTRY_STORAGE",
        "REGISTRY_CONFIG",
        "REGISTRY_LOG",
        "REGISTRY_MANIFEST_MAX_SIZE",
        "REGISTRY_SHUTDOWN_TIMEOUT",
        "REGISTRY_SINGLE_WRITER",
        "REGISTRY_UPLOAD_MAX_AGE",
        "REGISTRY_CACHE_DIR",
        "REGISTRY_CACHE_SIZE",
        "REGISTRY_NO_FSYNC",
    ];
    static ENV: Mutex<()> = Mutex::new(());

    fn env_lock() -> MutexGuard<'static, ()> {
        ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("registry").chain(args.iter().copied()))
    }

    fn serve(args: &[&str]) -> ServeArgs {
        match parse(&[&["serve"], args].concat()).unwrap().command {
            Command::Serve(a) => *a,
            other => unreachable!("{other:?}"),
        }
    }

    /// Resolve as `main` does: flags and environment over the file.
    fn resolve(args: &ServeArgs, file: &str) -> Result<Config, ConfigError> {
        Ok(Config::resolve(
            args.settings().or(Settings::from_toml(file)?),
        ))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_without_options_uses_defaults() {
        let _env = env_lock();
        let c = resolve(&serve(&[]), "").unwrap();
        assert_eq!(c, Config::resolve(Settings::default()));
    }

    #[test]
    fn flags_beat_the_config_file() {
        let _env = env_lock();
        let args = serve(&[
            "--listen=127.0.0.1:7000",
            "--log-level=debug",
            "--manifest-max-size=100",
            "--shutdown-timeout=1",
        ]);
        let file = "listen = \"127.0.0.1:6000\"\nstorage = \"memory://\"\nlog_level = \"warn\"\nmanifest_max_size = 5\nshutdown_timeout = 9";
        let c = resolve(&args, file).unwrap();
        assert_eq!(c.listen.as_str(), "127.0.0.1:7000");
        assert_eq!(c.storage.expose(), "memory://", "from the file");
        assert_eq!(c.log_level.as_str(), "debug");
        assert_eq!(c.manifest_max_size, NonZeroUsize::new(100));
        assert_eq!(c.shutdown_timeout.as_secs(), 1);
    }

    #[test]
    #[allow(unsafe_code)]
    fn environment_is_between_flags_and_file() {
        let _env = env_lock();
        let set = [
            ("REGISTRY_LISTEN", "127.0.0.1:8000"),
            ("REGISTRY_STORAGE", "fs:///from/env"),
            ("REGISTRY_LOG", "trace"),
            ("REGISTRY_CONFIG", "/etc/registry.toml"),
        ];
        // SAFETY: every test in this binary that reads these variables holds
        // ENV, and nothing else in the process reads or writes them.
        unsafe {
            for (k, v) in set {
                std::env::set_var(k, v);
            }
        }
        let args = serve(&["--listen", "127.0.0.1:9000"]);
        // SAFETY: as above.
        unsafe {
            for k in VARS {
                std::env::remove_var(k);
            }
        }
        assert_eq!(
            args.config.as_deref(),
            Some(std::path::Path::new("/etc/registry.toml"))
        );
        let c = resolve(&args, "storage = \"fs:///from/file\"\nlog_level = \"warn\"").unwrap();
        assert_eq!(c.listen.as_str(), "127.0.0.1:9000", "flag beats env");
        assert_eq!(c.storage.expose(), "fs:///from/env", "env beats file");
        assert_eq!(c.log_level.as_str(), "trace", "env beats file");
    }

    #[test]
    fn invalid_flag_values_are_usage_errors() {
        let _env = env_lock();
        for (args, expect) in [
            (
                &["serve", "--listen", "nowhere"][..],
                "invalid listen address",
            ),
            (&["serve", "--storage", "/tmp/x"], "invalid storage URL"),
            (&["serve", "--log-level", "info,["], "invalid log level"),
            (
                &["serve", "--manifest-max-size", "0"],
                "--manifest-max-size",
            ),
            (
                &["serve", "--manifest-max-size", "4MB"],
                "--manifest-max-size",
            ),
            (&["serve", "--shutdown-timeout=-1"], "--shutdown-timeout"),
            (&["serve", "--colour"], "--colour"),
            (&["frobnicate"], "frobnicate"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(expect), "{args:?}: {e}");
        }
    }

    #[test]
    fn version_forms() {
        let _env = env_lock();
        assert!(matches!(
            parse(&["version"]).unwrap().command,
            Command::Version
        ));
        let e = parse(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(e.exit_code(), 0);
    }

    #[test]
    fn help_documents_every_option_storage_forms_and_precedence() {
        let top = Cli::command().render_long_help().to_string();
        let mut cmd = Cli::command();
        let serve = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for help in [&top, &serve] {
            for needle in [
                "--listen",
                "--storage",
                "--config",
                "--log-level",
                "--manifest-max-size",
                "--shutdown-timeout",
                "REGISTRY_LISTEN",
                "REGISTRY_STORAGE",
                "REGISTRY_CONFIG",
                "REGISTRY_LOG",
                "fs:///abs/path",
                "fs://relative/path",
                "memory://",
                "s3://bucket/prefix",
                "Precedence",
            ] {
                assert!(help.contains(needle), "help lacks {needle}:\n{help}");
            }
        }
    }
}
