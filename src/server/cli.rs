//! The command line: `registry serve [OPTIONS]`, `registry fsck`, `registry version`.
//!
//! The options of `serve` are the fields of [`Settings`]; clap merges each
//! flag with its environment variable (a flag beats its variable) into one
//! [`Settings`] layer, which [`config`](super::config) stacks over the
//! config file and the defaults. The settings table of `--help` and the
//! key list of `--config` are generated from those fields by [`command`].

use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::auth::{AuthSettings, FILE_ONLY_KEYS};
use super::config::{Settings, StorageUrl};

/// What `--help` says after the settings table.
const HELP_NOTES: &str = "\
Access rules and groups: [[auth.rules]] and [auth.groups] in the config file
(see SECURITY.md). Retention rules of the collector: [[gc_retention]] tables
(see docs/GC.md). Foreign layer URLs in pushed manifests: refused unless an
allow or deny pattern is set; with allow patterns a URL must match one, and
it must match no deny pattern (see SECURITY.md).

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
#[command(name = "registry", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OCI distribution API over HTTP until SIGINT or SIGTERM.
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
    /// GET a health endpoint of a running server (plain HTTP) and exit 0
    /// if it answers 2xx, else 1: the container image's HEALTHCHECK (it has
    /// no curl).
    Probe(ProbeArgs),
    /// Print the version and exit.
    Version,
}

/// Options of `registry probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET
    #[arg(default_value = "http://127.0.0.1:5000/readyz")]
    pub url: String,

    /// Give up after this long, e.g. 5s
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// The store that `registry gc` and `registry fsck` work on.
#[derive(Debug, Args)]
pub struct OfflineStore {
    /// The store to work on, as for `registry serve`
    #[arg(
        long,
        value_name = "URL",
        env = "REGISTRY_STORAGE",
        hide_env_values = true,
        default_value = "fs://data"
    )]
    pub storage: StorageUrl,
}

/// Options of `registry gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: OfflineStore,

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

    /// A config file of `registry serve` whose [[gc_retention]] rules apply
    /// (its other keys are ignored here)
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Options of `registry fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    #[command(flatten)]
    pub store: OfflineStore,

    /// Repair what is found (by default only report)
    #[arg(long)]
    pub repair: bool,
}

/// Options of `registry serve`: the config file, and the settings. Each
/// setting is optional here: what is not given by flag or environment
/// comes from the config file, then the default.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file (its keys are listed below) [default: none]
    #[arg(long, value_name = "FILE", env = "REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,

    /// The settings given by flags and environment, the top layer.
    #[command(flatten)]
    pub settings: Settings,
}

/// One option of `registry serve`, as the help table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionRow {
    /// `--flag VALUE`.
    pub flag: String,
    /// The environment variable.
    pub env: String,
    /// The config file key: `key` or `[auth] key`; empty for `--config`.
    pub key: String,
    /// The `[default: ...]` of its help, or empty.
    pub default: String,
}

/// The command line, with the settings table and the config keys
/// generated from the declaration of [`Settings`]. Every option's
/// variable value is hidden from `--help` (it may be a secret), and a
/// `BOOL` option given without a value means true.
pub fn command() -> clap::Command {
    let rows = option_rows(&Cli::command());
    let help = format!("{}\n{HELP_NOTES}", settings_table(&rows));
    let keys: Vec<&str> = rows
        .iter()
        .filter(|r| !r.key.is_empty() && !r.key.starts_with("[auth]"))
        .map(|r| r.key.as_str())
        .chain(super::config::FILE_ONLY_KEYS)
        .collect();
    let auth_keys: Vec<String> = auth_ids()
        .into_iter()
        .chain(FILE_ONLY_KEYS.iter().map(|k| k.to_string()))
        .collect();
    let config_help = format!(
        "TOML config file with keys {}, an [auth] table with keys {}, and a \
         [notifications] table of [[notifications.endpoints]] (docs/OPERATIONS.md) [default: none]",
        keys.join(", "),
        auth_keys.join(", ")
    );
    Cli::command()
        .after_help(help.clone())
        .mut_subcommand("serve", |serve| {
            serve
                .after_help(help)
                .mut_args(|arg| {
                    let switch = arg.get_value_names() == Some(&["BOOL".into()][..]);
                    let arg = arg.hide_env_values(true);
                    if switch {
                        // `--no-fsync` alone means `--no-fsync=true`.
                        arg.num_args(0..=1).default_missing_value("true")
                    } else {
                        arg
                    }
                })
                .mut_arg("config", |arg| arg.help(config_help))
        })
}

/// Parse the process's command line; on an error, print it and exit 2.
pub fn parse() -> Cli {
    from_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// Parse `args` (the first is the program name), as [`parse`] does.
#[cfg(test)]
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    from_matches(&command().try_get_matches_from(args)?)
}

fn from_matches(matches: &ArgMatches) -> Result<Cli, clap::Error> {
    Cli::from_arg_matches(matches)
}

/// The ids of the auth options (those of the `[auth]` table).
fn auth_ids() -> Vec<String> {
    AuthSettings::augment_args(clap::Command::new("auth"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The options of `serve`, in declaration order.
pub fn option_rows(cli: &clap::Command) -> Vec<OptionRow> {
    let auth = auth_ids();
    let serve = cli.find_subcommand("serve").expect("serve is a subcommand");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let id = arg.get_id().as_str();
            let value = arg
                .get_value_names()
                .and_then(|v| v.first())
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            let key = match id {
                "config" => String::new(),
                _ if auth.iter().any(|a| a == id) => format!("[auth] {id}"),
                _ => id.to_owned(),
            };
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            Some(OptionRow {
                flag: format!("--{long}{value}"),
                env: arg
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                key,
                default: default_of(&help),
            })
        })
        .collect()
}

/// The `[default: ...]` at the end of a help text.
fn default_of(help: &str) -> String {
    let one_line = help.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.rfind("[default: ") {
        Some(at) if one_line.ends_with(']') => one_line[at..].to_owned(),
        _ => String::new(),
    }
}

/// The settings table of `--help`: flag, variable, key, default.
fn settings_table(rows: &[OptionRow]) -> String {
    let width = |f: fn(&OptionRow) -> &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (flag, env, key) = (width(|r| &r.flag), width(|r| &r.env), width(|r| &r.key));
    let mut out = String::from(
        "Settings of `registry serve`, by flag, environment variable and config file key:\n",
    );
    for r in rows {
        let line = format!(
            "  {:flag$} {:env$} {:key$} {}",
            r.flag, r.env, r.key, r.default
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
