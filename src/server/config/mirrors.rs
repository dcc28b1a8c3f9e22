//! `[[mirrors]]` tables of the config file and `--mirror PREFIX=URL`: the
//! pull-through mirrors (docs/MIRROR.md), validated as they are read.
//! Credentials are read from files when the server starts, never from the
//! config file itself.

use std::path::PathBuf;

use registry_core::{RepositoryName, RepositoryPattern};
use serde::Deserialize;

use super::HumanDuration;

/// One `[[mirrors]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSetting {
    /// The local prefix (`docker.io`, `ghcr`, any repository name).
    #[serde(deserialize_with = "name")]
    pub prefix: RepositoryName,
    /// The `ns` values that select the mirror [default: the prefix].
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// The upstreams, tried in order.
    pub upstreams: Vec<UpstreamSetting>,
    /// How long a tag is served before one `HEAD` upstream [default: 5m].
    pub revalidate_after: Option<HumanDuration>,
    /// How long an upstream's "not found" is remembered [default: 30s].
    pub not_found_ttl: Option<HumanDuration>,
    /// Only upstream names matching this glob are fetched [default: all].
    #[serde(default, deserialize_with = "pattern")]
    pub repositories: Option<RepositoryPattern>,
    /// Whether clients may push and delete under the prefix [default: false].
    #[serde(default)]
    pub allow_push: bool,
    /// Whether names under no prefix that the store lacks are looked up
    /// here [default: false].
    #[serde(default)]
    pub default: bool,
    /// Docker Hub's one-word names as `library/` [default: when the prefix
    /// is docker.io or the upstream is Docker Hub's].
    pub docker_hub: Option<bool>,
}

/// One `[[mirrors.upstreams]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSetting {
    /// `http(s)://host[:port]`.
    pub url: String,
    /// Basic credentials (sent to the upstream, or to its token service).
    pub username: Option<String>,
    /// A file holding the password (one line).
    pub password_file: Option<PathBuf>,
    /// Until an answer's headers [default: 30s].
    pub timeout: Option<HumanDuration>,
}

fn name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RepositoryName, D::Error> {
    let s = String::deserialize(d)?;
    RepositoryName::parse(&s)
        .map_err(|e| serde::de::Error::custom(format!("prefix {s:?}: {}", e.message())))
}

fn pattern<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RepositoryPattern>, D::Error> {
    let s = String::deserialize(d)?;
    RepositoryPattern::new(s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `--mirror PREFIX=URL`: a mirror with the defaults and one anonymous
/// upstream.
pub fn parse_flag(value: &str) -> Result<MirrorSetting, String> {
    let (prefix, url) = value.split_once('=').ok_or_else(|| {
        format!(
            "--mirror {value:?}: write it PREFIX=URL, e.g. docker.io=https://registry-1.docker.io"
        )
    })?;
    let prefix = RepositoryName::parse(prefix.trim())
        .map_err(|e| format!("--mirror {value:?}: prefix: {}", e.message()))?;
    Ok(MirrorSetting {
        prefix,
        namespaces: Vec::new(),
        upstreams: vec![UpstreamSetting {
            url: url.trim().to_owned(),
            username: None,
            password_file: None,
            timeout: None,
        }],
        revalidate_after: None,
        not_found_ttl: None,
        repositories: None,
        allow_push: false,
        default: false,
        docker_hub: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn tables_and_flags_are_read_and_checked() {
        let s = Settings::from_toml(
            r#"
[[mirrors]]
prefix = "docker.io"
default = true
revalidate_after = "1m"
repositories = "library/**"
[[mirrors.upstreams]]
url = "https://registry-1.docker.io"
username = "me"
password_file = "/run/secrets/hub"
"#,
        )
        .unwrap();
        let m = &s.mirrors[0];
        assert_eq!(m.prefix.as_str(), "docker.io");
        assert!(m.default && !m.allow_push);
        assert_eq!(m.revalidate_after.unwrap().0.as_secs(), 60);
        assert_eq!(m.upstreams[0].username.as_deref(), Some("me"));
        assert!(m.repositories.as_ref().unwrap().matches("library/alpine"));
        for bad in [
            "[[mirrors]]\nprefix = \"Docker.io\"\nupstreams = []",
            "[[mirrors]]\nprefix = \"a\"\nupstreams = [{ url = \"http://x\", password = \"inline\" }]",
            "[[mirrors]]\nprefix = \"a\"\nrepositories = \"***\"\nupstreams = []",
        ] {
            assert!(Settings::from_toml(bad).is_err(), "{bad}");
        }
        let f = parse_flag("ghcr=https://ghcr.io").unwrap();
        assert_eq!(
            (f.prefix.as_str(), f.upstreams[0].url.as_str()),
            ("ghcr", "https://ghcr.io")
        );
        assert!(parse_flag("no-equals").is_err());
        assert!(parse_flag("Bad=http://x").is_err());
    }
}
