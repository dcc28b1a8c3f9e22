//! Authentication state of one upstream: whether it wants Basic, and the
//! bearer tokens fetched from its token endpoint, cached per scope until
//! shortly before they expire, one fetch at a time per scope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::Credentials;
use super::body::read_bounded;
use super::challenge::Challenge;
use super::error::{UpstreamError, from_reqwest, from_status};

/// What a token response may hold (the Docker token spec and OAuth 2).
#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    /// Seconds; read leniently (a float, a negative or a string is the default).
    expires_in: Option<serde_json::Value>,
}

/// The lifetime of a token whose response names none (the token spec's default).
const DEFAULT_EXPIRES_IN: u64 = 60;
/// Token responses are a few kilobytes; more is refused.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;
/// Token lifetimes are capped at a day (an absurd `expires_in` must not overflow).
const MAX_EXPIRES_IN: u64 = 86_400;
/// Scopes kept before expired entries are pruned.
const PRUNE_ABOVE: usize = 1024;

/// A bearer token and when to stop using it.
#[derive(Clone)]
struct Token {
    value: String,
    valid_until: Instant,
}

/// One scope's token; the async lock makes concurrent misses wait for one
/// fetch instead of each fetching.
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

/// What one scope's slot holds.
#[derive(Default)]
struct SlotState {
    token: Option<Token>,
    /// The last fetch's failure and when it ended: those who were already
    /// waiting for that fetch get its error rather than trying again one
    /// after another (each up to the timeout) while the endpoint is down.
    failed: Option<(Instant, UpstreamError)>,
}

/// The authorization a request was sent with.
#[derive(Clone)]
pub(crate) enum Sent {
    Anonymous,
    Basic,
    Bearer(String),
}

/// Per-upstream authentication state.
pub(crate) struct Auth {
    credentials: Option<Credentials>,
    wants_basic: AtomicBool,
    tokens: Mutex<HashMap<String, Slot>>,
    /// Repository name to the scope its challenges named, where that is not
    /// the default `repository:<name>:pull`, so the token goes up front.
    scopes: Mutex<HashMap<String, String>>,
}

/// Where and how to ask for a token: the Bearer challenge's parameters.
pub(crate) struct TokenRequest<'a> {
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scope: &'a str,
}

impl Auth {
    pub(crate) fn new(credentials: Option<Credentials>) -> Self {
        Auth {
            credentials,
            wants_basic: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials, if configured.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The authorization to send first for repository `name`: Basic if
    /// this upstream was seen to want it, else a cached token of the scope
    /// its challenges name, else none.
    pub(crate) async fn initial(&self, name: &str, default_scope: &str) -> Sent {
        if self.credentials.is_some() && self.wants_basic.load(Ordering::Relaxed) {
            return Sent::Basic;
        }
        let hinted = lock(&self.scopes).get(name).cloned();
        let scope = hinted.as_deref().unwrap_or(default_scope);
        let slot = self.lock_tokens().get(scope).cloned();
        if let Some(slot) = slot {
            let state = slot.lock().await;
            if let Some(t) = state
                .token
                .as_ref()
                .filter(|t| Instant::now() < t.valid_until)
            {
                return Sent::Bearer(t.value.clone());
            }
        }
        Sent::Anonymous
    }

    /// Answer a Basic challenge: `Some(Sent::Basic)` to retry with the
    /// credentials (and send them up front from now on), `None` if there
    /// are none or they were just refused.
    pub(crate) fn basic(&self, sent: &Sent) -> Option<Sent> {
        if self.credentials.is_none() || matches!(sent, Sent::Basic) {
            return None;
        }
        self.wants_basic.store(true, Ordering::Relaxed);
        Some(Sent::Basic)
    }

    /// A token for `request.scope`: the cached one unless it is the one
    /// just `rejected`, else one fetched (once, however many ask at once).
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
        request: TokenRequest<'_>,
        rejected: Option<&str>,
        timeout: Duration,
        downgrade_ok: bool,
    ) -> Result<String, UpstreamError> {
        let slot = self.slot(request.scope);
        let asked_at = Instant::now();
        let mut state = slot.lock().await;
        if let Some(t) = state.token.as_ref()
            && Instant::now() < t.valid_until
            && Some(t.value.as_str()) != rejected
        {
            return Ok(t.value.clone());
        }
        if let Some((at, error)) = &state.failed
            && *at >= asked_at
        {
            return Err(error.clone());
        }
        state.token = None;
        match self.fetch(client, &request, timeout, downgrade_ok).await {
            Ok(token) => {
                let value = token.value.clone();
                state.token = Some(token);
                state.failed = None;
                Ok(value)
            }
            Err(error) => {
                state.failed = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        request: &TokenRequest<'_>,
        timeout: Duration,
        downgrade_ok: bool,
    ) -> Result<Token, UpstreamError> {
        let mut url = reqwest::Url::parse(request.realm).map_err(|e| {
            UpstreamError::Invalid(format!("token realm {:?} is not a URL: {e}", request.realm))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if downgrade_ok || self.credentials.is_none() => {}
            "http" => {
                return Err(UpstreamError::Invalid(format!(
                    "token realm {} is plain http while the upstream is https: credentials not sent",
                    request.realm
                )));
            }
            other => {
                return Err(UpstreamError::Invalid(format!(
                    "token realm {} has scheme {other:?}",
                    request.realm
                )));
            }
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = request.service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", request.scope);
        }
        let what = format!("token endpoint {}", request.realm);
        let mut builder = client.get(url);
        if let Some(c) = &self.credentials {
            builder = builder.basic_auth(&c.username, Some(&c.password));
        }
        let requested_at = Instant::now();
        let deadline = requested_at + timeout;
        let response = match tokio::time::timeout_at(deadline, builder.send()).await {
            Err(_) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{what}: no answer within {timeout:?}"
                )));
            }
            Ok(Err(e)) => return Err(from_reqwest(&e, &what)),
            Ok(Ok(r)) => r,
        };
        if !response.status().is_success() {
            return Err(from_status(response.status(), response.headers(), &what));
        }
        let body = read_bounded(response, MAX_TOKEN_RESPONSE, deadline, &what).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Invalid(format!("{what}: bad token response: {e}")))?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                UpstreamError::Invalid(format!("{what}: token response has no token"))
            })?;
        if HeaderValue::from_str(&format!("Bearer {value}")).is_err() {
            return Err(UpstreamError::Invalid(format!(
                "{what}: token is not a valid header value"
            )));
        }
        let expires_in = parsed
            .expires_in
            .as_ref()
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            })
            .unwrap_or(DEFAULT_EXPIRES_IN);
        let lifetime = Duration::from_secs(expires_in.min(MAX_EXPIRES_IN));
        // Stop using it a little before it expires: a tenth of its life, at most 30 s.
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        tracing::debug!(
            realm = request.realm,
            scope = request.scope,
            ?lifetime,
            "upstream token fetched"
        );
        Ok(Token {
            value,
            valid_until: requested_at + lifetime - margin,
        })
    }

    /// Remember that `name`'s challenges name `scope` (forgotten when it
    /// is the default again).
    pub(crate) fn note_scope(&self, name: &str, scope: &str, default_scope: &str) {
        let mut scopes = lock(&self.scopes);
        if scope == default_scope {
            scopes.remove(name);
            return;
        }
        if scopes.len() >= PRUNE_ABOVE && !scopes.contains_key(name) {
            scopes.clear();
        }
        scopes.insert(name.to_owned(), scope.to_owned());
    }

    fn slot(&self, scope: &str) -> Slot {
        let mut tokens = self.lock_tokens();
        if tokens.len() > PRUNE_ABOVE && !tokens.contains_key(scope) {
            let now = Instant::now();
            tokens.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .map(|s| s.token.as_ref().is_some_and(|t| now < t.valid_until))
                        .unwrap_or(true)
            });
        }
        tokens.entry(scope.to_owned()).or_default().clone()
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        lock(&self.tokens)
    }
}

/// The maps hold no invariant a panicking holder could break.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a challenge is one this client answers, and which.
pub(crate) fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
}
