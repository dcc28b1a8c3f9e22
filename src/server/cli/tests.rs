//! The command line: parsing, precedence, help.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use super::*;
use crate::server::config::{Config, ConfigError, Layer};

/// Tests that parse a command line hold [`ENV`] so that the tests that
/// set the environment variables `serve` reads cannot leak them into
/// another.
static ENV: Mutex<()> = Mutex::new(());

/// The environment variables `serve` reads: every option's.
fn vars() -> Vec<String> {
    option_rows(&command()).into_iter().map(|r| r.env).collect()
}

fn env_lock() -> MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    try_parse_from(std::iter::once("registry").chain(args.iter().copied()))
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
        args.settings.clone().or(Settings::from_toml(file)?),
    ))
}

#[test]
fn cli_definition_is_consistent() {
    command().debug_assert();
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
        for k in vars() {
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
    let top = command().render_long_help().to_string();
    let mut cmd = command();
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

/// The keys serde accepts in a table of the config file, from its
/// "unknown field" error (`prefix` opens the table).
fn file_keys(prefix: &str) -> Vec<String> {
    let e = Settings::from_toml(&format!("{prefix}no_such_key = 1")).unwrap_err();
    let (_, expected) =
        e.0.split_once("expected one of")
            .expect("serde lists the keys");
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// For every option, a valid value as a flag or variable, and as TOML.
/// An option missing here fails [`every_option_is_the_same_by_flag_variable_and_file`].
const SAMPLES: [(&str, &str, &str); 51] = [
    ("listen", "127.0.0.1:7001", r#""127.0.0.1:7001""#),
    ("storage", "memory://", r#""memory://""#),
    ("log_level", "debug", r#""debug""#),
    ("log_format", "json", r#""json""#),
    ("store_probe_interval", "2s", r#""2s""#),
    ("store_failure_threshold", "4", "4"),
    ("store_recovery_threshold", "1", "1"),
    ("storage_timeout", "3s", r#""3s""#),
    ("shutdown_delay", "5s", r#""5s""#),
    ("manifest_max_size", "100", "100"),
    ("manifest_urls_allow", "^https://a/", r#"["^https://a/"]"#),
    ("manifest_urls_deny", "/private/", r#"["/private/"]"#),
    ("shutdown_timeout", "7", "7"),
    ("single_writer", "true", "true"),
    ("upload_max_age", "60", "60"),
    ("cache_dir", "/c", r#""/c""#),
    ("cache_size", "512M", r#""512M""#),
    ("redirect", "true", "true"),
    ("redirect_expiry", "5m", r#""5m""#),
    (
        "redirect_endpoint",
        "https://s3.example.net",
        r#""https://s3.example.net""#,
    ),
    ("no_fsync", "true", "true"),
    ("tls_cert", "/cert.pem", r#""/cert.pem""#),
    ("tls_key", "/key.pem", r#""/key.pem""#),
    ("max_header_size", "16K", r#""16K""#),
    ("header_read_timeout", "5", "5"),
    ("body_idle_timeout", "6", "6"),
    ("max_uploads_per_client", "3", "3"),
    ("rate_limit", "10", "10"),
    ("rate_limit_burst", "20", "20"),
    ("gc_interval", "6h", r#""6h""#),
    ("gc_grace", "90s", r#""90s""#),
    ("gc_delete_untagged", "true", "true"),
    (
        "notify",
        "http://127.0.0.1:9/hook",
        r#"["http://127.0.0.1:9/hook"]"#,
    ),
    (
        "mirror",
        "docker.io=https://registry-1.docker.io",
        r#"["docker.io=https://registry-1.docker.io"]"#,
    ),
    (
        "peers",
        "http://10.0.0.2:5000,http://10.0.0.3:5000",
        r#"["http://10.0.0.2:5000", "http://10.0.0.3:5000"]"#,
    ),
    ("peers_dns", "registry.svc:5000", r#""registry.svc:5000""#),
    ("peer_secret_file", "/secret", r#""/secret""#),
    ("peer_owners", "3", "3"),
    ("peer_timeout", "150ms", r#""150ms""#),
    ("metrics", "false", "false"),
    ("metrics_listen", "127.0.0.1:9100", r#""127.0.0.1:9100""#),
    ("metrics_auth", "false", "false"),
    (
        "otlp_endpoint",
        "http://127.0.0.1:4318",
        r#""http://127.0.0.1:4318""#,
    ),
    ("otlp_service_name", "reg-a", r#""reg-a""#),
    ("mode", "htpasswd", r#""htpasswd""#),
    ("htpasswd", "/h", r#""/h""#),
    (
        "token_realm",
        "https://auth/token",
        r#""https://auth/token""#,
    ),
    ("token_service", "svc", r#""svc""#),
    ("token_issuer", "iss", r#""iss""#),
    ("token_keys", "/keys.pem", r#""/keys.pem""#),
    ("token_issuer_key", "/issuer.pem", r#""/issuer.pem""#),
];

#[test]
#[allow(unsafe_code)]
fn every_option_is_the_same_by_flag_variable_and_file() {
    let _env = env_lock();
    let rows: Vec<OptionRow> = option_rows(&command())
        .into_iter()
        .filter(|r| !r.key.is_empty())
        .collect();
    assert_eq!(rows.len(), SAMPLES.len(), "a sample for every option");
    for row in rows {
        let (table, key) = match row.key.strip_prefix("[auth] ") {
            Some(key) => ("[auth]\n", key),
            None => ("", row.key.as_str()),
        };
        let (_, value, toml) = SAMPLES
            .iter()
            .find(|(k, _, _)| *k == key)
            .unwrap_or_else(|| panic!("no sample for {key}"));
        let long = row.flag.split(' ').next().unwrap();
        let by_flag = serve(&[&format!("{long}={value}")]).settings;
        // SAFETY: every test in this binary that reads these variables holds
        // ENV, and nothing else in the process reads or writes them.
        unsafe { std::env::set_var(&row.env, value) };
        let by_env = serve(&[]).settings;
        // SAFETY: as above.
        unsafe { std::env::remove_var(&row.env) };
        let by_file = Settings::from_toml(&format!("{table}{key} = {toml}")).unwrap();
        assert_ne!(by_flag, Settings::default(), "{long} is read");
        assert_eq!(by_flag, by_env, "{long} and {}", row.env);
        assert_eq!(by_flag, by_file, "{long} and {key} in the file");
    }
}

#[test]
fn every_option_has_a_variable_a_file_key_a_default_and_a_readme_row() {
    let rows = option_rows(&command());
    let mut top: Vec<String> = ["auth"]
        .iter()
        .chain(&crate::server::config::FILE_ONLY_KEYS)
        .map(|k| k.to_string())
        .collect();
    let mut auth: Vec<String> = FILE_ONLY_KEYS.iter().map(|k| k.to_string()).collect();
    for r in &rows {
        assert!(r.env.starts_with("REGISTRY_"), "{} has no variable", r.flag);
        assert!(!r.default.is_empty(), "{} has no [default: ...]", r.flag);
        match r.key.strip_prefix("[auth] ") {
            Some(key) => auth.push(key.to_owned()),
            None if r.key.is_empty() => assert!(r.flag.starts_with("--config ")),
            None => top.push(r.key.clone()),
        }
    }
    for (mut declared, mut file) in [(top, file_keys("")), (auth, file_keys("[auth]\n"))] {
        declared.sort();
        file.sort();
        assert_eq!(declared, file, "options and config file keys");
    }

    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Server options\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Server options section");
    let listed: Vec<(String, String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let cells: Vec<String> = l
                .replace("\\|", "\u{0}")
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            (cells[1].clone(), cells[2].clone(), cells[3].clone())
        })
        .collect();
    let declared: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.flag.clone(), r.env.clone(), r.key.clone()))
        .collect();
    for row in &declared {
        assert!(listed.contains(row), "README lacks the row {row:?}");
    }
    for row in &listed {
        assert!(
            declared.contains(row),
            "README lists {row:?}, not an option"
        );
    }
}

#[test]
fn the_config_help_lists_the_file_keys() {
    let mut cmd = command();
    let serve = cmd.find_subcommand_mut("serve").unwrap();
    let help = serve
        .get_arguments()
        .find(|a| a.get_id() == "config")
        .and_then(|a| a.get_help())
        .unwrap()
        .to_string();
    for key in file_keys("").iter().chain(&file_keys("[auth]\n")) {
        assert!(
            help.contains(&format!(" {key},"))
                || help.contains(&format!(" {key} "))
                || help.contains(&format!("[{key}]")),
            "--config help lacks {key}: {help}"
        );
    }
}
