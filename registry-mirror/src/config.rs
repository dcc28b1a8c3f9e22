//! The mirrors a registry serves, and how requested names map to them.
//!
//! A mirror owns the repositories under its prefix: `docker.io/library/alpine`
//! is the upstream's `library/alpine`. Requests reach it three ways:
//!
//! - by path prefix: `/v2/docker.io/library/alpine/manifests/3`;
//! - by `ns` (containerd's `hosts.toml` mirrors):
//!   `/v2/library/alpine/manifests/3?ns=docker.io`, looked up among the
//!   mirrors' namespace keys only (the value is never a host to dial);
//! - as the default mirror, for names under no prefix that the store does
//!   not have (the Docker engine's `registry-mirrors` sends plain
//!   `/v2/library/alpine/...`): decided in the store, which can tell what
//!   it has ([`MirrorStore`](crate::MirrorStore)).
//!
//! Docker Hub's one-word names are `library/` names: with `docker_hub`,
//! `docker.io/alpine` and `alpine?ns=docker.io` are `docker.io/library/alpine`,
//! so both spellings share one copy.

use std::fmt;
use std::time::Duration;

use registry_core::{RepositoryName, RepositoryPattern};
use registry_http::{Mapped, Namespaces};

use crate::upstream::UpstreamOptions;

/// One mirror: a local prefix and the upstreams behind it.
pub struct MirrorConfig {
    /// The local prefix: the mirror's repositories are `<prefix>/<name>`.
    pub prefix: RepositoryName,
    /// The `ns` values that select this mirror. Empty: the prefix itself
    /// (so `ns=docker.io` selects the mirror whose prefix is `docker.io`).
    pub namespaces: Vec<String>,
    /// The upstreams, tried in this order until one answers.
    pub upstreams: Vec<UpstreamOptions>,
    /// How long a tag fetched or revalidated is served without asking the
    /// upstream again (then one `HEAD`).
    pub revalidate_after: Duration,
    /// How long an upstream's "not found" is remembered.
    pub not_found_ttl: Duration,
    /// Only upstream names matching this are fetched (others are answered
    /// from what the store has). `None`: all.
    pub repositories: Option<RepositoryPattern>,
    /// Whether clients may push, delete and mount under the prefix. Off by
    /// default: the prefix holds the upstream's content only.
    pub allow_push: bool,
    /// Whether names under no prefix that the store does not have are
    /// looked up here (at most one mirror may be the default).
    pub default: bool,
    /// Docker Hub's rule: a one-word name is `library/<name>`.
    pub docker_hub: bool,
}

impl MirrorConfig {
    /// A mirror of `upstream` under `prefix` with the defaults: tags
    /// revalidated after 5 minutes, "not found" remembered 30 s, no
    /// filter, no pushes, not the default; Docker Hub's rule when the
    /// prefix is `docker.io` or the upstream is Docker Hub's.
    pub fn new(prefix: RepositoryName, upstream: UpstreamOptions) -> MirrorConfig {
        let docker_hub = prefix.as_str() == "docker.io" || is_docker_hub(&upstream.url);
        MirrorConfig {
            prefix,
            namespaces: Vec::new(),
            upstreams: vec![upstream],
            revalidate_after: Duration::from_secs(300),
            not_found_ttl: Duration::from_secs(30),
            repositories: None,
            allow_push: false,
            default: false,
            docker_hub,
        }
    }

    /// The `ns` keys that select it.
    fn keys(&self) -> impl Iterator<Item = &str> {
        let own = self.namespaces.is_empty().then_some(self.prefix.as_str());
        self.namespaces.iter().map(String::as_str).chain(own)
    }
}

impl fmt::Debug for MirrorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Upstream credentials are never printed.
        f.debug_struct("MirrorConfig")
            .field("prefix", &self.prefix.as_str())
            .field("namespaces", &self.namespaces)
            .field(
                "upstreams",
                &self.upstreams.iter().map(|u| &u.url).collect::<Vec<_>>(),
            )
            .field("revalidate_after", &self.revalidate_after)
            .field("not_found_ttl", &self.not_found_ttl)
            .field("repositories", &self.repositories)
            .field("allow_push", &self.allow_push)
            .field("default", &self.default)
            .field("docker_hub", &self.docker_hub)
            .finish()
    }
}

/// Whether an upstream URL is Docker Hub's registry.
fn is_docker_hub(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "docker.io" || host.ends_with(".docker.io")
}

/// A repository of a mirror: which mirror, and the upstream's name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Index of the mirror in [`Mirrors`].
    pub(crate) mirror: usize,
    /// The store's name (`<prefix>/<name>`).
    pub(crate) local: RepositoryName,
    /// The upstream's name.
    pub(crate) upstream: String,
}

/// The configured mirrors, checked: prefixes distinct and not inside one
/// another, namespace keys distinct, at most one default, at least one
/// upstream each.
#[derive(Debug)]
pub struct Mirrors {
    mirrors: Vec<MirrorConfig>,
}

impl Mirrors {
    /// Check `mirrors`.
    pub fn new(mirrors: Vec<MirrorConfig>) -> Result<Mirrors, String> {
        for (i, m) in mirrors.iter().enumerate() {
            if m.upstreams.is_empty() {
                return Err(format!("mirror {}: no upstream", m.prefix));
            }
            for other in &mirrors[..i] {
                let (a, b) = (m.prefix.as_str(), other.prefix.as_str());
                if a == b || under(a, b) || under(b, a) {
                    return Err(format!(
                        "mirror prefixes {b} and {a} overlap: a repository would belong to both"
                    ));
                }
                if let Some(k) = m.keys().find(|k| other.keys().any(|o| o == *k)) {
                    return Err(format!("mirrors {b} and {a} both answer to ns={k}"));
                }
            }
        }
        if mirrors.iter().filter(|m| m.default).count() > 1 {
            return Err("more than one mirror is the default".to_owned());
        }
        Ok(Mirrors { mirrors })
    }

    /// The mirrors.
    pub fn iter(&self) -> impl Iterator<Item = &MirrorConfig> {
        self.mirrors.iter()
    }

    pub(crate) fn get(&self, i: usize) -> &MirrorConfig {
        &self.mirrors[i]
    }

    /// Patterns of every mirror's repositories (for
    /// `OpendalStore::with_mirrored_repositories`).
    pub fn patterns(&self) -> Vec<RepositoryPattern> {
        self.mirrors
            .iter()
            .filter_map(|m| RepositoryPattern::new(format!("{}/**", m.prefix)).ok())
            .collect()
    }

    /// The mirror repository `name` is, if it is under a prefix.
    pub(crate) fn target(&self, name: &RepositoryName) -> Option<Target> {
        self.mirrors.iter().enumerate().find_map(|(i, m)| {
            let rest = name
                .as_str()
                .strip_prefix(m.prefix.as_str())?
                .strip_prefix('/')?;
            Some(Target {
                mirror: i,
                local: name.clone(),
                upstream: rest.to_owned(),
            })
        })
    }

    /// What the default mirror would hold `name` as, if there is a default
    /// mirror and `name` is under no prefix.
    pub(crate) fn default_target(&self, name: &RepositoryName) -> Option<Target> {
        if self.target(name).is_some() {
            return None;
        }
        let (i, m) = self.mirrors.iter().enumerate().find(|(_, m)| m.default)?;
        let local = local_name(m, name.as_str())?;
        self.target(&local).filter(|t| t.mirror == i)
    }

    /// Whether the mirror fetches `target` upstream (its filter).
    pub(crate) fn fetches(&self, target: &Target) -> bool {
        self.get(target.mirror)
            .repositories
            .as_ref()
            .is_none_or(|p| p.matches(&target.upstream))
    }
}

/// Whether `name` is strictly under `prefix`.
fn under(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|r| r.starts_with('/'))
}

/// `<prefix>/<name>`, with Docker Hub's `library/` for a one-word name.
fn local_name(m: &MirrorConfig, name: &str) -> Option<RepositoryName> {
    let library = if m.docker_hub && !name.contains('/') {
        "library/"
    } else {
        ""
    };
    RepositoryName::parse(&format!("{}/{library}{name}", m.prefix)).ok()
}

impl Namespaces for Mirrors {
    fn map(&self, name: &RepositoryName, ns: Option<&str>) -> Option<Mapped> {
        if let Some(ns) = ns
            && let Some(m) = self.mirrors.iter().find(|m| m.keys().any(|k| k == ns))
        {
            return Some(Mapped {
                name: local_name(m, name.as_str())?,
                by_ns: true,
            });
        }
        // Under a prefix: only Docker Hub's one-word names change.
        let target = self.target(name)?;
        let m = self.get(target.mirror);
        if !m.docker_hub || target.upstream.contains('/') {
            return None;
        }
        Some(Mapped {
            name: local_name(m, &target.upstream)?,
            by_ns: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> UpstreamOptions {
        UpstreamOptions {
            url: url.to_owned(),
            credentials: None,
            timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
        }
    }

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    fn mirrors() -> Mirrors {
        let hub = MirrorConfig::new(name("docker.io"), upstream("https://registry-1.docker.io"));
        let mut ghcr = MirrorConfig::new(name("ghcr"), upstream("https://ghcr.io"));
        ghcr.namespaces = vec!["ghcr.io".into(), "ghcr.example:5000".into()];
        Mirrors::new(vec![hub, ghcr]).unwrap()
    }

    fn mapped(m: &Mirrors, n: &str, ns: Option<&str>) -> Option<(String, bool)> {
        m.map(&name(n), ns)
            .map(|m| (m.name.as_str().to_owned(), m.by_ns))
    }

    #[test]
    fn names_by_ns_and_prefix() {
        let m = mirrors();
        let s = |x: &str, by| Some((x.to_owned(), by));
        assert_eq!(
            mapped(&m, "library/alpine", Some("docker.io")),
            s("docker.io/library/alpine", true)
        );
        assert_eq!(
            mapped(&m, "alpine", Some("docker.io")),
            s("docker.io/library/alpine", true)
        );
        assert_eq!(
            mapped(&m, "docker.io/alpine", None),
            s("docker.io/library/alpine", false)
        );
        assert_eq!(mapped(&m, "docker.io/library/alpine", None), None);
        assert_eq!(
            mapped(&m, "owner/app", Some("ghcr.example:5000")),
            s("ghcr/owner/app", true)
        );
        // Not Docker Hub: one-word names stay.
        assert_eq!(mapped(&m, "app", Some("ghcr.io")), s("ghcr/app", true));
        assert_eq!(mapped(&m, "ghcr/app", None), None);
        // The prefix itself is not a key of a mirror with its own keys,
        // and an unknown ns is ignored, never dialled.
        assert_eq!(mapped(&m, "app", Some("ghcr")), None);
        assert_eq!(mapped(&m, "library/alpine", Some("evil.example")), None);
        assert_eq!(mapped(&m, "team/app", None), None);
    }

    #[test]
    fn targets_and_defaults() {
        let mut m = mirrors();
        let t = m.target(&name("docker.io/library/alpine")).unwrap();
        assert_eq!((t.mirror, t.upstream.as_str()), (0, "library/alpine"));
        assert!(m.target(&name("docker.iox/a")).is_none());
        assert!(m.target(&name("docker.io")).is_none());
        assert!(m.default_target(&name("alpine")).is_none());
        m.mirrors[0].default = true;
        let t = m.default_target(&name("alpine")).unwrap();
        assert_eq!(t.local.as_str(), "docker.io/library/alpine");
        assert!(m.default_target(&name("ghcr/app")).is_none());
        m.mirrors[0].repositories = Some(RepositoryPattern::new("library/*").unwrap());
        assert!(m.fetches(&t));
        assert!(!m.fetches(&m.target(&name("docker.io/x/y")).unwrap()));
    }

    #[test]
    fn overlapping_configurations_are_refused() {
        let two = |a: &str, b: &str| {
            Mirrors::new(vec![
                MirrorConfig::new(name(a), upstream("http://127.0.0.1:1")),
                MirrorConfig::new(name(b), upstream("http://127.0.0.1:2")),
            ])
        };
        assert!(two("a", "a").is_err());
        assert!(two("a", "a/b").is_err());
        assert!(two("a/b", "a").is_err());
        assert!(two("a", "ab").is_ok());
        let mut x = MirrorConfig::new(name("x"), upstream("http://127.0.0.1:1"));
        let mut y = MirrorConfig::new(name("y"), upstream("http://127.0.0.1:2"));
        y.namespaces = vec!["x".into()];
        assert!(Mirrors::new(vec![x, y]).is_err());
        x = MirrorConfig::new(name("x"), upstream("http://127.0.0.1:1"));
        y = MirrorConfig::new(name("y"), upstream("http://127.0.0.1:2"));
        x.default = true;
        y.default = true;
        assert!(Mirrors::new(vec![x, y]).is_err());
        let mut none = MirrorConfig::new(name("n"), upstream("http://127.0.0.1:1"));
        none.upstreams.clear();
        assert!(Mirrors::new(vec![none]).is_err());
        assert!(is_docker_hub("https://registry-1.docker.io/"));
        assert!(!is_docker_hub("https://notdocker.io.example"));
    }
}
