//! The `registry` command line: help, version, and start-up errors, which
//! must be one clear line on stderr with a non-zero exit code, never a
//! panic.

mod common;

use std::process::Output;

use common::process::{run, run_in};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A start-up failure: exit code 1, one line on stderr naming the problem,
/// nothing that looks like a panic.
#[track_caller]
fn assert_startup_error(out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("registry: error: "), "{err}");
    for needle in expect {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn help_mentions_every_option_storage_forms_and_precedence() {
    for args in [&["--help"][..], &["serve", "--help"], &["help", "serve"]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        for needle in [
            "serve",
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
            "127.0.0.1:5000",
            "fs://data",
            "fs:///abs/path",
            "memory://",
            "s3://bucket/prefix",
            "Precedence, highest first: command-line flag, environment variable, config",
        ] {
            assert!(
                help.contains(needle),
                "{args:?}: help lacks {needle:?}:\n{help}"
            );
        }
    }
}

#[test]
fn version_subcommand_and_flag() {
    let expected = format!("registry {}", env!("CARGO_PKG_VERSION"));
    for args in [&["version"][..], &["--version"], &["-V"]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        assert_eq!(stdout(&out).trim(), expected, "{args:?}");
    }
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: registry <COMMAND>"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_storage_url_is_a_usage_error() {
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--storage",
        "/var/lib/registry",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid storage URL \"/var/lib/registry\""),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unusable_storage_url_fails_start_up_clearly() {
    for (url, expect) in [
        ("ftp://example/registry", "ftp://example/registry"),
        ("fs://", "empty path"),
        ("s3://?region=x", "missing bucket"),
    ] {
        let out = run(&["serve", "--listen", "127.0.0.1:0", "--storage", url]);
        assert_startup_error(&out, &["cannot open storage", expect]);
    }
}

#[test]
fn storage_credentials_never_appear_in_errors() {
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--storage",
        "ftp://user:hunter2@host/x?secret_key=s3cr3t",
    ]);
    assert_startup_error(
        &out,
        &["cannot open storage", "ftp://***@host/x?secret_key=***"],
    );
    let err = stderr(&out);
    assert!(!err.contains("hunter2") && !err.contains("s3cr3t"), "{err}");
}

#[test]
fn invalid_config_file_fails_start_up_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\nstorage_url = \"fs://data\"\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["serve", "--config", path.to_str().unwrap()],
        &[],
    );
    assert_startup_error(
        &out,
        &[
            "registry.toml",
            "line 2",
            "unknown field `storage_url`",
            "expected one of",
        ],
    );

    std::fs::write(&path, "listen = \"localhost\"\n").unwrap();
    let out = run_in(
        dir.path(),
        &["serve"],
        &[("REGISTRY_CONFIG", path.to_str().unwrap())],
    );
    assert_startup_error(
        &out,
        &["registry.toml", "invalid listen address \"localhost\""],
    );

    let out = run_in(dir.path(), &["serve", "--config", "missing.toml"], &[]);
    assert_startup_error(&out, &["cannot read config file missing.toml"]);
}

#[test]
fn invalid_environment_values_are_reported_with_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["serve"], &[("REGISTRY_LOG", "info,[")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid log level"),
        "{}",
        stderr(&out)
    );
    let out = run_in(
        dir.path(),
        &["serve"],
        &[("REGISTRY_MANIFEST_MAX_SIZE", "big")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--manifest-max-size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn port_in_use_fails_start_up_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["serve", "--listen", &addr, "--storage", "fs://data"],
        &[],
    );
    assert_startup_error(&out, &[&format!("cannot listen on {addr}"), "in use"]);
}

#[test]
fn an_otlp_endpoint_is_checked_and_needs_the_feature() {
    // A malformed endpoint is a usage error, with or without the feature.
    let out = run(&["serve", "--otlp-endpoint", "collector:4318"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid OTLP endpoint"),
        "{}",
        stderr(&out)
    );
    // Without the feature, an endpoint is refused at start-up, not ignored.
    if !cfg!(feature = "otlp") {
        let dir = tempfile::tempdir().unwrap();
        for (args, env) in [
            (
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--otlp-endpoint",
                    "http://127.0.0.1:9",
                ][..],
                &[][..],
            ),
            (
                &["serve", "--listen", "127.0.0.1:0"],
                &[("REGISTRY_OTLP_ENDPOINT", "http://127.0.0.1:9")],
            ),
        ] {
            let out = run_in(dir.path(), args, env);
            assert_startup_error(&out, &["--otlp-endpoint", "built without the otlp feature"]);
        }
    }
}
