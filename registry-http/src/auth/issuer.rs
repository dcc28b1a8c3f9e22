//! A small built-in token service (`GET /token`), for deployments without
//! one: basic credentials checked against the htpasswd file (or none, for
//! anonymous), each requested scope granted as far as [`AccessRules`]
//! allow, and a short-lived ES256 JWT returned as the Docker token spec
//! describes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry_core::RepositoryName;
use sha2::{Digest as _, Sha256};

use super::basic::{BUSY_RETRY_AFTER_SECS, basic_credentials, quotable};
use super::htpasswd::{Busy, Htpasswd};
use super::rules::{AccessRules, parse_actions};
use super::token::{AccessEntry, Claims, TokenKey};
use crate::body::Body;

/// How long issued tokens live by default.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// The built-in token issuer. See the module docs; serve it with
/// [`TokenIssuer::handle`] at the path the [`TokenAuthorizer`]'s realm
/// names, and give that authorizer [`TokenIssuer::verification_key`].
///
/// [`TokenAuthorizer`]: super::TokenAuthorizer
pub struct TokenIssuer {
    encoding: EncodingKey,
    public: TokenKey,
    issuer: String,
    service: String,
    ttl: Duration,
    users: Option<Arc<Htpasswd>>,
    rules: Arc<AccessRules>,
    challenge: HeaderValue,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with the P-256 private key in `path` (PKCS#8 PEM,
    /// `-----BEGIN PRIVATE KEY-----`, e.g. from `openssl genpkey -algorithm
    /// EC -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pem_file(
        path: &Path,
        issuer: &str,
        service: &str,
        users: Option<Arc<Htpasswd>>,
        rules: Arc<AccessRules>,
    ) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read token issuer key {}: {e}", path.display()))?;
        let bad = |why: String| format!("token issuer key {}: {why}", path.display());
        let encoding = EncodingKey::from_ec_pem(&pem).map_err(|e| {
            bad(format!(
                "{e}: expected a P-256 private key in PKCS#8 PEM (BEGIN PRIVATE KEY)"
            ))
        })?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, encoding.as_bytes())
            .map_err(|e| bad(format!("not a P-256 key: {e}")))?;
        Self::build(encoding, &pair, issuer, service, users, rules)
    }

    /// An issuer signing with a P-256 key generated now. Its tokens are
    /// valid only for this process: a restart invalidates them, and other
    /// processes serving the same registry cannot check them.
    pub fn generate(
        issuer: &str,
        service: &str,
        users: Option<Arc<Htpasswd>>,
        rules: Arc<AccessRules>,
    ) -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate a token signing key".to_owned())?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| "cannot encode the token signing key".to_owned())?;
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        Self::build(encoding, &pair, issuer, service, users, rules)
    }

    fn build(
        encoding: EncodingKey,
        pair: &EcdsaKeyPair,
        issuer: &str,
        service: &str,
        users: Option<Arc<Htpasswd>>,
        rules: Arc<AccessRules>,
    ) -> Result<Self, String> {
        quotable(issuer).map_err(|e| format!("token issuer: {e}"))?;
        quotable(service).map_err(|e| format!("token service: {e}"))?;
        let point = pair.public_key().as_ref();
        let kid = hex_prefix(&Sha256::digest(point));
        Ok(TokenIssuer {
            encoding,
            public: TokenKey::es256_point(point, Some(kid)),
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            ttl: DEFAULT_TOKEN_TTL,
            users,
            rules,
            challenge: HeaderValue::from_static("Basic realm=\"registry\""),
        })
    }

    /// Set how long tokens live (default [`DEFAULT_TOKEN_TTL`]).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The public key to give the [`TokenAuthorizer`](super::TokenAuthorizer).
    pub fn verification_key(&self) -> TokenKey {
        self.public.clone()
    }

    /// What `user` (`None`: anonymous) is granted of the requested scopes
    /// (`repository:<name>:<actions>`, `registry:catalog:*`; several may be
    /// in one string, separated by spaces).
    pub(crate) fn grant(&self, user: Option<&str>, scopes: &[String]) -> Vec<AccessEntry> {
        let mut out: Vec<AccessEntry> = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let wanted: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            let entry = match kind {
                "repository" => {
                    if RepositoryName::parse(name).is_err() {
                        continue;
                    }
                    let allowed = self.rules.granted(user, name);
                    let actions: Vec<String> = wanted
                        .iter()
                        .filter_map(|a| parse_actions(&[a]).ok().map(|set| (a, set)))
                        .filter(|(_, set)| set.iter().all(|x| allowed.contains(x)))
                        .map(|(a, _)| (*a).to_owned())
                        .collect();
                    AccessEntry {
                        kind: kind.to_owned(),
                        name: name.to_owned(),
                        actions,
                    }
                }
                "registry" if name == "catalog" && self.rules.catalog_granted(user) => {
                    AccessEntry {
                        kind: kind.to_owned(),
                        name: name.to_owned(),
                        actions: vec!["*".to_owned()],
                    }
                }
                _ => continue,
            };
            if entry.actions.is_empty() {
                continue;
            }
            match out
                .iter_mut()
                .find(|e| e.kind == entry.kind && e.name == entry.name)
            {
                Some(e) => {
                    for a in entry.actions {
                        if !e.actions.contains(&a) {
                            e.actions.push(a);
                        }
                    }
                }
                None => out.push(entry),
            }
        }
        out
    }

    /// Sign a token for `user` with these access entries, issued at `now`.
    pub(crate) fn sign(&self, user: Option<&str>, access: Vec<AccessEntry>, now: u64) -> String {
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .expect("system randomness");
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.unwrap_or("").to_owned(),
            aud: self.service.clone(),
            exp: now + self.ttl.as_secs(),
            nbf: now,
            iat: now,
            jti: hex_prefix(&jti),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.public.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("ES256 signing")
    }

    /// Answer a token request: `GET <path>?service=...&scope=...` with
    /// optional basic credentials. 200 with `{"token", "access_token",
    /// "expires_in", "issued_at"}`; 401 `UNAUTHORIZED` with a Basic
    /// challenge for wrong credentials; 400 for another service; 405 for
    /// another method; 429 `TOOMANYREQUESTS` with `Retry-After` when the
    /// password could not be checked in time.
    ///
    /// Passwords are checked as [`Htpasswd::verify`] does: on Tokio's
    /// blocking pool, a bounded number at once, and not again for
    /// credentials checked in the last few minutes.
    pub async fn handle(&self, parts: &Parts) -> Response<Body> {
        if parts.method != http::Method::GET {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                error_body("UNSUPPORTED", "the token endpoint answers GET only"),
            );
        }
        let mut scopes = Vec::new();
        let mut service = None;
        for pair in parts.uri.query().unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match k {
                "scope" => scopes.push(v),
                "service" => service = Some(v),
                _ => {}
            }
        }
        if service.as_ref().is_some_and(|s| *s != self.service) {
            return json(
                StatusCode::BAD_REQUEST,
                error_body(
                    "DENIED",
                    "this token service issues tokens for another service",
                ),
            );
        }
        let user = match basic_credentials(parts) {
            Ok(None) => None,
            Ok(Some((user, password))) => {
                let verdict = match &self.users {
                    Some(users) => users.verify(&user, &password).await,
                    None => Ok(false),
                };
                match verdict {
                    Ok(true) => Some(user),
                    Ok(false) => {
                        tracing::info!(%user, "token request with wrong credentials");
                        return self.unauthorized();
                    }
                    Err(Busy) => {
                        tracing::warn!(%user, "token request refused: password checks saturated");
                        return busy();
                    }
                }
            }
            Err(()) => return self.unauthorized(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let access = self.grant(user.as_deref(), &scopes);
        tracing::debug!(user = ?user, ?access, "issuing token");
        let token = self.sign(user.as_deref(), access, now);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": self.ttl.as_secs(),
            "issued_at": rfc3339(now),
        });
        let mut res = json(StatusCode::OK, body);
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    fn unauthorized(&self) -> Response<Body> {
        let mut res = json(
            StatusCode::UNAUTHORIZED,
            error_body("UNAUTHORIZED", "authentication required"),
        );
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge.clone());
        res
    }
}

/// 429 `TOOMANYREQUESTS` with `Retry-After`: the password could not be
/// checked in time.
fn busy() -> Response<Body> {
    let mut res = json(
        StatusCode::TOO_MANY_REQUESTS,
        error_body(
            "TOOMANYREQUESTS",
            "too many password checks in progress; retry shortly",
        ),
    );
    res.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(BUSY_RETRY_AFTER_SECS),
    );
    res
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "code": code, "message": message }] })
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut res = Response::new(Body::from(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The first 16 bytes as lowercase hex.
fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rules::{AccessRule, RepositoryPattern};
    use crate::auth::{Access, Actions, Authorizer, TokenAuthorizer, TokenKeys};

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_415_387_315), "2014-11-07T19:08:35Z");
    }

    fn issuer() -> TokenIssuer {
        let rules = AccessRules::new()
            .with_rule(
                AccessRule::new(RepositoryPattern::new("public/*").unwrap(), Actions::PULL)
                    .anonymous(),
            )
            .with_rule(
                AccessRule::new(
                    RepositoryPattern::new("team/**").unwrap(),
                    Actions::PULL | Actions::PUSH,
                )
                .users(["bot"]),
            );
        TokenIssuer::generate("iss", "svc", None, Arc::new(rules)).unwrap()
    }

    #[test]
    fn grants_are_the_rules_intersected_with_the_request() {
        let i = issuer();
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let g = i.grant(
            Some("bot"),
            &scopes(&[
                "repository:team/a:pull,push,delete",
                "repository:public/x:push registry:catalog:*",
            ]),
        );
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "team/a");
        assert_eq!(g[0].actions, ["pull", "push"]);
        let g = i.grant(
            None,
            &scopes(&["repository:public/x:pull,push", "repository:public/x:pull"]),
        );
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].actions, ["pull"]);
        assert!(
            i.grant(
                None,
                &scopes(&["repository:team/a:pull", "bogus", "repository:BAD:pull"])
            )
            .is_empty()
        );
        assert!(
            i.grant(Some("bot"), &scopes(&["repository:team/a:*"]))
                .is_empty(),
            "* needs all three"
        );
    }

    #[tokio::test]
    async fn issued_tokens_are_accepted_for_what_they_grant() {
        let i = issuer();
        let mut keys = TokenKeys::default();
        keys.push(i.verification_key());
        let auth = TokenAuthorizer::new(keys, "iss", "svc", "/token").unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = i.sign(
            Some("bot"),
            i.grant(Some("bot"), &["repository:team/a:pull,push".into()]),
            now,
        );
        let parts = http::Request::get("/v2/")
            .header("authorization", format!("Bearer {token}"))
            .header("host", "reg.example:5000")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let name = RepositoryName::parse("team/a").unwrap();
        let other = RepositoryName::parse("team/b").unwrap();
        auth.authorize(&parts, &Access::base()).await.unwrap();
        auth.authorize(
            &parts,
            &Access::repository(&name, Actions::PULL | Actions::PUSH),
        )
        .await
        .unwrap();
        let r = auth
            .authorize(&parts, &Access::repository(&other, Actions::PULL))
            .await
            .unwrap_err();
        assert_eq!(
            r.challenge().unwrap(),
            "Bearer realm=\"http://reg.example:5000/token\",service=\"svc\",scope=\"repository:team/b:pull\",error=\"insufficient_scope\""
        );
        let expired = i.sign(Some("bot"), Vec::new(), now - 3600);
        assert_eq!(auth.validate(&expired).unwrap_err(), "token expired");
        let wrong_aud = TokenAuthorizer::new(
            TokenKeys(vec![i.verification_key()]),
            "iss",
            "other",
            "https://auth/token",
        )
        .unwrap();
        assert_eq!(
            wrong_aud.validate(&token).unwrap_err(),
            "token is for another service"
        );
    }
}
