//! Authentication and access: the `auth` settings of `registry serve`
//! (flags, environment, and the `[auth]` table of the config file), what
//! they build (the router's authorizer and the built-in token issuer, whose
//! `/token` the server's request hook answers).
//!
//! Misconfigurations fail closed: an auth setting given while the mode is
//! `none`, a rule naming an undefined group, a non-bcrypt htpasswd entry,
//! or an unreadable key is a start-up error, never a silently open
//! registry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::Args;
use registry_http::{
    AccessRule, AccessRules, Authorizer, Htpasswd, HtpasswdAuthorizer, RepositoryPattern,
    RouterConfig, TokenAuthorizer, TokenIssuer, TokenKeys, parse_actions,
};
use serde::Deserialize;

/// The path the built-in token issuer answers on.
pub const TOKEN_PATH: &str = "/token";
/// The service name (`aud` of tokens) when none is configured.
pub const DEFAULT_TOKEN_SERVICE: &str = "registry";
/// The built-in issuer's name (`iss` of its tokens) when none is configured.
pub const DEFAULT_TOKEN_ISSUER: &str = "registry-token-issuer";

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication: anyone who reaches the port may do anything.
    #[default]
    None,
    /// HTTP basic against an htpasswd file, access per the rules.
    Htpasswd,
    /// Bearer tokens (Docker token authentication).
    Token,
}

impl FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(AuthMode::None),
            "htpasswd" => Ok(AuthMode::Htpasswd),
            "token" => Ok(AuthMode::Token),
            _ => Err(format!(
                "invalid auth mode {s:?}: expected none, htpasswd or token"
            )),
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMode::None => "none",
            AuthMode::Htpasswd => "htpasswd",
            AuthMode::Token => "token",
        })
    }
}

/// One `[[auth.rules]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Repository glob: `*` within one path component, `**` any depth.
    pub repository: Option<String>,
    /// Also (or only, without `repository`) allow listing the catalog.
    #[serde(default)]
    pub catalog: bool,
    /// Applies to anonymous callers (and so to everyone).
    #[serde(default)]
    pub anonymous: bool,
    /// Applies to these users; `*` for every authenticated user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Applies to members of these groups (from `[auth.groups]`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `pull`, `push`, `delete`, or `*`.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// The keys of the `[auth]` table that have no flag.
pub const FILE_ONLY_KEYS: [&str; 2] = ["groups", "rules"];

crate::server::config::layered! {
    /// The auth flags of `registry serve`, and the `[auth]` table of the
    /// config file (rules and groups: config file only). `None`/empty means
    /// "not given here".
    #[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Args)]
    #[serde(deny_unknown_fields)]
    pub struct AuthSettings {
        /// Authentication: none (anyone who reaches the port may push), htpasswd
        /// (HTTP basic) or token (Docker bearer tokens) [default: none]
        #[arg(long = "auth", value_name = "MODE", env = "REGISTRY_AUTH")]
        pub mode: Option<AuthMode>,

        /// htpasswd file of bcrypt entries (htpasswd -B), for --auth htpasswd
        /// and for the built-in token issuer [default: none]
        #[arg(long, value_name = "FILE", env = "REGISTRY_HTPASSWD")]
        pub htpasswd: Option<PathBuf>,

        /// Token realm sent in the Bearer challenge: the token service's URL
        /// [default: http://<Host>/token with the built-in issuer]
        #[arg(long, value_name = "URL", env = "REGISTRY_TOKEN_REALM")]
        pub token_realm: Option<String>,

        /// Service name: the `aud` tokens must carry [default: registry]
        #[arg(long, value_name = "NAME", env = "REGISTRY_TOKEN_SERVICE")]
        pub token_service: Option<String>,

        /// Trusted token issuer: the `iss` tokens must carry; the built-in
        /// issuer's name [default: registry-token-issuer]
        #[arg(long, value_name = "NAME", env = "REGISTRY_TOKEN_ISSUER")]
        pub token_issuer: Option<String>,

        /// External issuer's public keys: PEM keys/certificates or a JWKS file
        /// [default: none: the built-in issuer]
        #[arg(long, value_name = "FILE", env = "REGISTRY_TOKEN_KEYS")]
        pub token_keys: Option<PathBuf>,

        /// Built-in issuer's P-256 private key (PKCS#8 PEM) [default: generated
        /// at start when --token-keys is not given]
        #[arg(long, value_name = "FILE", env = "REGISTRY_TOKEN_ISSUER_KEY")]
        pub token_issuer_key: Option<PathBuf>,

        /// Groups: name -> members (config file only).
        #[arg(skip)]
        #[serde(default)]
        pub groups: BTreeMap<String, Vec<String>>,

        /// Access rules (config file only).
        #[arg(skip)]
        #[serde(default)]
        pub rules: Vec<RuleSettings>,
    }
}

/// What the auth settings build.
#[derive(Default)]
pub struct Auth {
    /// The router's authorizer; `None` lets everything through.
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// The built-in token issuer, served at [`TOKEN_PATH`].
    pub issuer: Option<Arc<TokenIssuer>>,
}

impl Auth {
    /// `config` with this authorizer, if any.
    pub fn apply(&self, config: RouterConfig) -> RouterConfig {
        match &self.authorizer {
            Some(authorizer) => config.with_authorizer(authorizer.clone()),
            None => config,
        }
    }
}

/// Build the authorizer and issuer, or say why the settings are unusable.
/// `https`: whether the server serves TLS (the scheme of a token realm
/// that is a path on this server).
pub fn build(s: &AuthSettings, https: bool) -> Result<Auth, String> {
    let mode = s.mode.unwrap_or_default();
    if mode == AuthMode::None {
        let given = [
            ("htpasswd", s.htpasswd.is_some()),
            ("token_realm", s.token_realm.is_some()),
            ("token_service", s.token_service.is_some()),
            ("token_issuer", s.token_issuer.is_some()),
            ("token_keys", s.token_keys.is_some()),
            ("token_issuer_key", s.token_issuer_key.is_some()),
            ("rules", !s.rules.is_empty()),
            ("groups", !s.groups.is_empty()),
        ];
        if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
            return Err(format!(
                "auth setting {name} is given but the auth mode is none: set --auth htpasswd or --auth token (or remove it)"
            ));
        }
        return Ok(Auth::default());
    }
    let users = s
        .htpasswd
        .as_deref()
        .map(Htpasswd::from_file)
        .transpose()?
        .map(Arc::new);
    let rules = Arc::new(match (rules(s)?, &users) {
        (Some(rules), _) => rules,
        (None, Some(_)) => AccessRules::authenticated_users_only(),
        (None, None) => AccessRules::new(),
    });
    match mode {
        AuthMode::None => unreachable!(),
        AuthMode::Htpasswd => {
            let users = users.ok_or("--auth htpasswd needs --htpasswd FILE")?;
            for (name, set) in [
                ("token_realm", s.token_realm.is_some()),
                ("token_keys", s.token_keys.is_some()),
                ("token_issuer_key", s.token_issuer_key.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "auth setting {name} needs --auth token (the auth mode is htpasswd)"
                    ));
                }
            }
            tracing::info!(
                users = users.len(),
                rules = rules.rules().len(),
                "HTTP basic authentication"
            );
            Ok(Auth {
                authorizer: Some(Arc::new(HtpasswdAuthorizer::new(users, rules))),
                issuer: None,
            })
        }
        AuthMode::Token => {
            let service = s.token_service.as_deref().unwrap_or(DEFAULT_TOKEN_SERVICE);
            let mut keys = match &s.token_keys {
                Some(path) => TokenKeys::from_file(path)?,
                None => TokenKeys::default(),
            };
            let builtin = s.token_keys.is_none() || s.token_issuer_key.is_some();
            let issuer_name = match (&s.token_issuer, builtin) {
                (Some(name), _) => name.clone(),
                (None, true) => DEFAULT_TOKEN_ISSUER.to_owned(),
                (None, false) => {
                    return Err(
                        "--token-keys needs --token-issuer (the iss tokens must carry)".to_owned(),
                    );
                }
            };
            let issuer = if builtin {
                if users.is_none() {
                    tracing::warn!(
                        "token issuer without --htpasswd: it issues anonymous tokens only"
                    );
                }
                let issuer = match &s.token_issuer_key {
                    Some(path) => TokenIssuer::from_pem_file(
                        path,
                        &issuer_name,
                        service,
                        users.clone(),
                        rules.clone(),
                    )?,
                    None => {
                        tracing::warn!(
                            "token issuer key generated at start: tokens die with this process, and other processes cannot check them (set --token-issuer-key)"
                        );
                        TokenIssuer::generate(&issuer_name, service, users.clone(), rules.clone())?
                    }
                };
                keys.push(issuer.verification_key());
                Some(Arc::new(issuer))
            } else {
                None
            };
            let realm = match (&s.token_realm, builtin) {
                (Some(realm), _) => realm.clone(),
                (None, true) => TOKEN_PATH.to_owned(),
                (None, false) => {
                    return Err(
                        "--token-keys needs --token-realm (the token service's URL)".to_owned()
                    );
                }
            };
            let authorizer = TokenAuthorizer::new(keys, &issuer_name, service, &realm)?
                .with_local_scheme(if https { "https" } else { "http" });
            tracing::info!(
                service,
                issuer = %issuer_name,
                realm,
                builtin_issuer = builtin,
                "bearer token authentication"
            );
            Ok(Auth {
                authorizer: Some(Arc::new(authorizer)),
                issuer,
            })
        }
    }
}

/// The configured rules, or `None` if there are none.
fn rules(s: &AuthSettings) -> Result<Option<AccessRules>, String> {
    if s.rules.is_empty() {
        if !s.groups.is_empty() {
            return Err("auth groups are defined but there are no auth rules".to_owned());
        }
        return Ok(None);
    }
    let mut rules = AccessRules::new();
    for (group, members) in &s.groups {
        rules = rules.with_group(group, members.iter().cloned());
    }
    for (i, r) in s.rules.iter().enumerate() {
        let n = i + 1;
        let bad = |why: String| format!("auth rule {n}: {why}");
        let actions = parse_actions(&r.actions).map_err(bad)?;
        let mut rule = match &r.repository {
            Some(pattern) => {
                if actions.is_empty() {
                    return Err(bad("no actions (pull, push, delete or *)".to_owned()));
                }
                AccessRule::new(
                    RepositoryPattern::new(pattern.as_str()).map_err(bad)?,
                    actions,
                )
            }
            None if r.catalog && actions.is_empty() => AccessRule::catalog_only(),
            None => {
                return Err(bad(
                    "needs a repository pattern (or catalog = true alone)".to_owned()
                ));
            }
        };
        if r.catalog {
            rule = rule.with_catalog();
        }
        if !r.anonymous && r.users.is_empty() && r.groups.is_empty() {
            return Err(bad(
                "applies to nobody: give anonymous, users or groups".to_owned()
            ));
        }
        if let Some(g) = r
            .groups
            .iter()
            .find(|g| *g != "*" && !s.groups.contains_key(*g))
        {
            return Err(bad(format!("group {g:?} is not defined in [auth.groups]")));
        }
        if r.anonymous {
            rule = rule.anonymous();
        }
        rules = rules.with_rule(
            rule.users(r.users.iter().cloned())
                .groups(r.groups.iter().cloned()),
        );
    }
    Ok(Some(rules))
}

#[cfg(test)]
mod tests;
