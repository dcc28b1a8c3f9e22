//! Bearer tokens per the Docker token authentication spec: the challenge,
//! and the validation of JWTs signed by a trusted issuer's keys.

use std::path::Path;

use async_trait::async_trait;
use http::HeaderValue;
use http::header::HOST;
use http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use registry_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::basic::quotable;
use super::rules::parse_actions;
use super::{Access, Actions, Authorizer, Rejection};

/// Clock skew allowed on `exp` and `nbf`, in seconds, by default.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// One public key that may sign tokens, with the only algorithm it is
/// accepted for (`RS256` for RSA keys, `ES256` for P-256 keys).
#[derive(Clone)]
pub struct TokenKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    pub(crate) alg: Algorithm,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// An ES256 key from an uncompressed P-256 point (`04 || x || y`).
    pub(crate) fn es256_point(point: &[u8], kid: Option<String>) -> Self {
        TokenKey {
            kid,
            key: DecodingKey::from_ec_der(point),
            alg: Algorithm::ES256,
        }
    }

    /// The key id, if it has one (JWKS keys usually do; PEM keys do not).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm tokens signed by this key must name.
    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
    }
}

/// The keys tokens may be signed by.
#[derive(Debug, Clone, Default)]
pub struct TokenKeys(pub(crate) Vec<TokenKey>);

impl TokenKeys {
    /// Read a key file: a JWKS document (`{"keys":[...]}`), or PEM with one
    /// or more public keys or certificates (RSA or P-256).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read token key file {}: {e}", path.display()))?;
        let keys = if bytes.trim_ascii_start().starts_with(b"{") {
            Self::from_jwks(&bytes)
        } else {
            Self::from_pem(&bytes)
        };
        keys.map_err(|e| format!("token key file {}: {e}", path.display()))
    }

    /// Every `-----BEGIN ...-----` block of `pem`: RSA public keys (RS256),
    /// EC public keys (ES256), or certificates holding either.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "not PEM text".to_owned())?;
        let mut keys = Vec::new();
        for (i, block) in text.split("-----BEGIN ").skip(1).enumerate() {
            let block = format!("-----BEGIN {block}");
            if block.contains("PRIVATE KEY") {
                return Err(format!(
                    "PEM block {} is a private key; give the issuer's public key",
                    i + 1
                ));
            }
            let key = if let Ok(key) = DecodingKey::from_rsa_pem(block.as_bytes()) {
                TokenKey {
                    kid: None,
                    key,
                    alg: Algorithm::RS256,
                }
            } else if let Ok(key) = DecodingKey::from_ec_pem(block.as_bytes()) {
                TokenKey {
                    kid: None,
                    key,
                    alg: Algorithm::ES256,
                }
            } else {
                return Err(format!(
                    "PEM block {} is not an RSA or EC public key or certificate",
                    i + 1
                ));
            };
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("no PEM key found".to_owned());
        }
        Ok(TokenKeys(keys))
    }

    /// The signing keys of a JWKS document: RSA keys (RS256) and P-256 EC
    /// keys (ES256). Keys marked `"use": "enc"` are skipped; any other key
    /// type or algorithm is an error.
    pub fn from_jwks(json: &[u8]) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let kid = jwk.common.key_id.clone();
            let name = kid.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => {
                    return Err(format!(
                        "JWKS key {name}: only RSA (RS256) and P-256 (ES256) keys are supported"
                    ));
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWKS key {name}: {e}"))?;
            keys.push(TokenKey { kid, key, alg });
        }
        if keys.is_empty() {
            return Err("no signing key in the JWKS".to_owned());
        }
        Ok(TokenKeys(keys))
    }

    /// Add a key.
    pub fn push(&mut self, key: TokenKey) {
        self.0.push(key);
    }

    /// The keys.
    pub fn keys(&self) -> &[TokenKey] {
        &self.0
    }
}

/// The claims a registry token carries (spec_auth_jwt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub nbf: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub access: Vec<AccessEntry>,
}

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// What is read from a validated token (`aud` may be a string or an
/// array, which the validation handles).
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    access: Vec<AccessEntry>,
}

/// Where clients are sent for tokens.
#[derive(Debug, Clone)]
enum Realm {
    /// An absolute URL.
    Url(String),
    /// A path on this server: `<scheme>://<Host><path>`.
    Path(&'static str, String),
}

/// Bearer-token authorization: every request needs a JWT from a trusted
/// issuer whose `access` claim grants what the request needs. Tokens are
/// trusted for exactly what they grant.
///
/// Checked: the signature, by one of the configured keys with the one
/// algorithm that key is for (`RS256` or `ES256`: `alg: none`, HMAC and
/// any key carried in the token itself are never accepted); `iss`; `aud`
/// (the service); `exp` (required) and `nbf` with a small leeway.
///
/// A request with more than one `Authorization` header is refused with
/// `error="invalid_request"`.
///
/// Refusals are 401 `UNAUTHORIZED` with the spec's challenge,
/// `Bearer realm="...",service="...",scope="repository:<name>:pull,push"`
/// plus `error="invalid_token"` for a bad token or
/// `error="insufficient_scope"` for a good token lacking the scope, so
/// that clients fetch a new token for that scope.
#[derive(Debug, Clone)]
pub struct TokenAuthorizer {
    keys: TokenKeys,
    issuer: String,
    service: String,
    realm: Realm,
    leeway: u64,
}

impl TokenAuthorizer {
    /// Accept tokens issued by `issuer` (their `iss`) for `service` (their
    /// `aud`), signed by one of `keys`, and send clients to `realm` for
    /// them: an absolute URL, or a path such as `/token` for a token
    /// service on this server (then `http://<Host header><path>`).
    pub fn new(keys: TokenKeys, issuer: &str, service: &str, realm: &str) -> Result<Self, String> {
        if keys.0.is_empty() {
            return Err("no token signing key configured".to_owned());
        }
        for (what, v) in [("issuer", issuer), ("service", service), ("realm", realm)] {
            if v.is_empty() {
                return Err(format!("the token {what} is empty"));
            }
            quotable(v).map_err(|e| format!("token {what}: {e}"))?;
        }
        let realm = if realm.starts_with('/') {
            Realm::Path("http", realm.to_owned())
        } else if realm.starts_with("https://") || realm.starts_with("http://") {
            Realm::Url(realm.to_owned())
        } else {
            return Err(format!(
                "token realm {realm:?}: expected an http(s) URL or a path"
            ));
        };
        Ok(TokenAuthorizer {
            keys,
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            realm,
            leeway: DEFAULT_LEEWAY_SECS,
        })
    }

    /// For a realm that is a path on this server: the scheme to name,
    /// `http` (the default) or `https`.
    pub fn with_local_scheme(mut self, scheme: &'static str) -> Self {
        if let Realm::Path(s, _) = &mut self.realm {
            *s = scheme;
        }
        self
    }

    /// Set the clock-skew leeway on `exp` and `nbf` (default
    /// [`DEFAULT_LEEWAY_SECS`]).
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// The challenge for `access`, with an optional `error` parameter.
    pub fn challenge(
        &self,
        parts: &Parts,
        access: &Access<'_>,
        error: Option<&str>,
    ) -> HeaderValue {
        let realm = match &self.realm {
            Realm::Url(url) => url.clone(),
            Realm::Path(scheme, path) => {
                let host = parts
                    .headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| quotable(h).is_ok() && !h.contains(['/', ' ', ',']))
                    .or(parts.uri.authority().map(|a| a.as_str()))
                    .unwrap_or("localhost");
                format!("{scheme}://{host}{path}")
            }
        };
        let mut value = format!("Bearer realm=\"{realm}\",service=\"{}\"", self.service);
        if let Some(scope) = access.scope() {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    fn refuse(
        &self,
        parts: &Parts,
        access: &Access<'_>,
        error: Option<&str>,
        why: &str,
    ) -> Rejection {
        Rejection::from(Error::new(ErrorKind::Unauthorized, why.to_owned())).with_header(
            http::header::WWW_AUTHENTICATE,
            self.challenge(parts, access, error),
        )
    }

    /// Validate `token`: its subject and access entries, or why not.
    pub(crate) fn validate(&self, token: &str) -> Result<(String, Vec<AccessEntry>), String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!("token algorithm {:?} is not accepted", header.alg));
        }
        let by_kid: Vec<&TokenKey> = match &header.kid {
            Some(kid) => self
                .keys
                .0
                .iter()
                .filter(|k| k.kid.as_ref() == Some(kid))
                .collect(),
            None => Vec::new(),
        };
        let candidates: Vec<&TokenKey> = if by_kid.is_empty() {
            self.keys.0.iter().filter(|k| k.alg == header.alg).collect()
        } else {
            by_kid
        };
        let mut last = "no key for the token's algorithm".to_owned();
        for key in candidates {
            if key.alg != header.alg {
                continue;
            }
            let mut v = Validation::new(key.alg);
            v.algorithms = vec![key.alg];
            v.leeway = self.leeway;
            v.validate_exp = true;
            v.validate_nbf = true;
            v.validate_aud = true;
            v.set_issuer(&[&self.issuer]);
            v.set_audience(&[&self.service]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            match jsonwebtoken::decode::<RawClaims>(token, &key.key, &v) {
                Ok(data) => return Ok((data.claims.sub, data.claims.access)),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as J;
                    last = match e.kind() {
                        J::InvalidSignature => "invalid token signature".to_owned(),
                        J::ExpiredSignature => "token expired".to_owned(),
                        J::ImmatureSignature => "token not yet valid".to_owned(),
                        J::InvalidAudience => "token is for another service".to_owned(),
                        J::InvalidIssuer => "token from an untrusted issuer".to_owned(),
                        J::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
                        other => format!("invalid token: {other:?}"),
                    };
                    // A bad signature may mean another key: try the next.
                    // Any other failure means the signature was good.
                    if !matches!(e.kind(), J::InvalidSignature) {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// The actions `entries` grant on repository `name` (exact match).
pub(crate) fn granted(entries: &[AccessEntry], kind: &str, name: &str) -> Actions {
    entries
        .iter()
        .filter(|e| e.kind == kind && e.name == name)
        .fold(Actions::NONE, |acc, e| {
            // Unknown action names grant nothing but do not void the rest.
            e.actions
                .iter()
                .filter_map(|a| parse_actions(&[a]).ok())
                .fold(acc, |acc, a| acc | a)
        })
}

/// The bearer token of a request, if it has one; `Err` when it has more
/// than one `Authorization` header.
fn bearer(parts: &Parts) -> Result<Option<&str>, ()> {
    let Some(value) = super::authorization(parts)? else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    Ok(token)
}

#[async_trait]
impl Authorizer for TokenAuthorizer {
    async fn authorize(&self, parts: &Parts, access: &Access<'_>) -> Result<(), Rejection> {
        let Ok(token) = bearer(parts) else {
            return Err(self.refuse(
                parts,
                access,
                Some("invalid_request"),
                "more than one Authorization header",
            ));
        };
        let Some(token) = token else {
            return Err(self.refuse(parts, access, None, "authentication required"));
        };
        let (sub, entries) = self.validate(token).map_err(|why| {
            tracing::info!(reason = %why, "bearer token refused");
            self.refuse(parts, access, Some("invalid_token"), &why)
        })?;
        let ok = if access.catalog {
            granted(&entries, "registry", "catalog").contains(super::Action::Pull)
        } else if let Some(name) = access.repository {
            let have = granted(&entries, "repository", name.as_str());
            access.actions.iter().all(|a| have.contains(a))
        } else {
            true
        };
        if ok {
            Ok(())
        } else {
            tracing::debug!(subject = %sub, scope = ?access.scope(), "token lacks the scope");
            Err(self.refuse(
                parts,
                access,
                Some("insufficient_scope"),
                "token lacks the scope",
            ))
        }
    }
}
