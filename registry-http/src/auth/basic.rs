//! HTTP basic authentication against an htpasswd file of bcrypt entries
//! (as written by `htpasswd -B`), with access decided by [`AccessRules`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use http::request::Parts;
use sha2::{Digest as _, Sha256};

use super::rules::AccessRules;
use super::{Access, Authorizer, Rejection};

/// How long a verified password is remembered (bcrypt is slow on purpose;
/// a `docker push` sends dozens of requests with the same credentials).
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// At most this many remembered credentials; the memory is cleared when
/// full.
const VERIFIED_MAX: usize = 1024;

/// The users of an htpasswd file: `user:hash` lines, `#` comments and blank
/// lines ignored. Only bcrypt hashes (`$2y$`, `$2b$`, `$2a$`) are accepted;
/// MD5 (`$apr1$`), SHA-1 (`{SHA}`), crypt and plain entries are refused
/// when the file is loaded.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// A hash of an unguessable password at the file's highest cost,
    /// verified against for unknown users so that they take as long as
    /// known ones.
    dummy: String,
    /// SHA-256 of `user \0 password` for recently verified credentials.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Read an htpasswd file. Errors name the file and line.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read htpasswd file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("htpasswd file {}: {e}", path.display()))
    }

    /// Parse the text of an htpasswd file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n}: expected user:hash"))?;
            if user.is_empty() {
                return Err(format!("line {n}: empty user name"));
            }
            let bcrypt = ["$2y$", "$2b$", "$2a$"]
                .iter()
                .any(|prefix| hash.starts_with(prefix));
            if !bcrypt {
                return Err(format!(
                    "line {n}: user {user:?} has a non-bcrypt password hash; only bcrypt entries ($2y$, $2b$, $2a$) are supported: recreate it with `htpasswd -B`"
                ));
            }
            if bcrypt::verify("", hash).is_err() {
                return Err(format!(
                    "line {n}: user {user:?} has a malformed bcrypt hash"
                ));
            }
            if users.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(format!("line {n}: user {user:?} appears twice"));
            }
        }
        let cost = users
            .values()
            .filter_map(|h| h.get(4..6)?.parse::<u32>().ok())
            .max()
            .unwrap_or(4);
        let dummy = bcrypt::hash(format!("{:p}{cost}", &users), cost)
            .map_err(|e| format!("cannot hash: {e}"))?;
        Ok(Htpasswd {
            users,
            dummy,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Takes about as long for unknown
    /// users as for known ones. Runs bcrypt on the calling thread (tens of
    /// milliseconds), except for credentials verified in the last few
    /// minutes.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match verified.get(&key) {
                Some(at) if at.elapsed() < VERIFIED_TTL => return self.users.contains_key(user),
                Some(_) => {
                    verified.remove(&key);
                }
                None => {}
            }
        }
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
            verified.insert(key, Instant::now());
        }
        ok
    }
}

/// What an `Authorization: Basic` header says: `Some((user, password))`,
/// or `None` if there is no such header. `Err` for a malformed one.
pub(crate) fn basic_credentials(parts: &Parts) -> Result<Option<(String, String)>, ()> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (user, password) = decoded.split_once(':').ok_or(())?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

/// HTTP basic authentication against an [`Htpasswd`] file, then
/// [`AccessRules`].
///
/// - Wrong, malformed or non-basic credentials: 401 `UNAUTHORIZED` with
///   `WWW-Authenticate: Basic realm="<realm>"`, whatever anonymous callers
///   may do.
/// - No credentials: `GET /v2/` is 401 with the challenge (so clients know
///   to log in); other requests proceed as anonymous, and are 401 with the
///   challenge if the rules do not allow anonymous callers.
/// - A known user the rules do not allow: 403 `DENIED`.
#[derive(Debug, Clone)]
pub struct HtpasswdAuthorizer {
    users: Arc<Htpasswd>,
    rules: Arc<AccessRules>,
    challenge: HeaderValue,
}

impl HtpasswdAuthorizer {
    /// Users from `users`, access from `rules`, challenge realm
    /// `registry`.
    pub fn new(users: Arc<Htpasswd>, rules: Arc<AccessRules>) -> Self {
        HtpasswdAuthorizer {
            users,
            rules,
            challenge: HeaderValue::from_static("Basic realm=\"registry\""),
        }
    }

    /// Set the realm named in the challenge. Refused if it holds a `"`,
    /// `\` or a control character.
    pub fn with_realm(mut self, realm: &str) -> Result<Self, String> {
        self.challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", quotable(realm)?))
            .map_err(|e| format!("invalid realm {realm:?}: {e}"))?;
        Ok(self)
    }

    /// Who sent the request: `Some(Some(user))` for good credentials,
    /// `Some(None)` for none (anonymous), `None` for wrong or malformed
    /// ones.
    pub fn authenticate(&self, parts: &Parts) -> Option<Option<String>> {
        match basic_credentials(parts) {
            Ok(None) => Some(None),
            Ok(Some((user, password))) if self.users.verify(&user, &password) => Some(Some(user)),
            Ok(Some((user, _))) => {
                tracing::info!(%user, "basic authentication failed");
                None
            }
            Err(()) => None,
        }
    }

    fn unauthorized(&self) -> Rejection {
        Rejection::unauthorized(self.challenge.clone())
    }
}

/// `s` if it can go between double quotes in a header as is.
pub(crate) fn quotable(s: &str) -> Result<&str, String> {
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        Err(format!(
            "{s:?} may not contain quotes, backslashes or control characters"
        ))
    } else {
        Ok(s)
    }
}

#[async_trait]
impl Authorizer for HtpasswdAuthorizer {
    async fn authorize(&self, parts: &Parts, access: &Access<'_>) -> Result<(), Rejection> {
        let Some(user) = self.authenticate(parts) else {
            return Err(self.unauthorized());
        };
        let is_base = access.repository.is_none() && !access.catalog;
        match user {
            None if is_base => Err(self.unauthorized()),
            None if self.rules.allows(None, access) => Ok(()),
            None => Err(self.unauthorized()),
            Some(user) if self.rules.allows(Some(&user), access) => Ok(()),
            Some(user) => Err(Rejection::denied(format!(
                "user {user:?} may not {}",
                access.scope().unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_files() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let y = hash.replacen("$2b$", "$2y$", 1);
        let h = Htpasswd::parse(&format!("# users\n\nalice:{hash}\nbob:{y}\n")).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.verify("alice", "secret"));
        assert!(h.verify("alice", "secret"), "remembered");
        assert!(h.verify("bob", "secret"), "$2y$ as htpasswd -B writes");
        assert!(!h.verify("alice", "Secret"));
        assert!(!h.verify("carol", "secret"));
        for (text, expect) in [
            (
                "alice:$apr1$abc$def",
                "line 1: user \"alice\" has a non-bcrypt",
            ),
            ("x\nalice:{SHA}abc=", "line 1: expected user:hash"),
            ("bob:{SHA}abc=", "htpasswd -B"),
            ("carol:plain", "non-bcrypt"),
            ("dave:$2y$10$short", "malformed bcrypt"),
            (":$2y$", "empty user name"),
        ] {
            let e = Htpasswd::parse(text).unwrap_err();
            assert!(e.contains(expect), "{text}: {e}");
        }
        let dup = format!("a:{hash}\na:{hash}");
        assert!(Htpasswd::parse(&dup).unwrap_err().contains("twice"));
        assert!(h.dummy.starts_with("$2b$04$"), "{}", h.dummy);
    }

    #[test]
    fn basic_headers() {
        let parts = |v: Option<&str>| {
            let mut b = http::Request::get("/v2/");
            if let Some(v) = v {
                b = b.header(AUTHORIZATION, v);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert_eq!(basic_credentials(&parts(None)), Ok(None));
        assert_eq!(
            basic_credentials(&parts(Some("Basic YWxpY2U6czpl"))),
            Ok(Some(("alice".into(), "s:e".into())))
        );
        assert_eq!(
            basic_credentials(&parts(Some("basic YWxpY2U6"))),
            Ok(Some(("alice".into(), String::new())))
        );
        for bad in ["Bearer x", "Basic !!!", "Basic", "Basic YWxpY2U="] {
            assert_eq!(basic_credentials(&parts(Some(bad))), Err(()), "{bad}");
        }
    }
}
