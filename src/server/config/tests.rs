//! Settings, their layering and the value types.

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
    let e = Settings::from_toml("listen = \"127.0.0.1:5000\"\nstorge = \"fs://x\"\n").unwrap_err();
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
