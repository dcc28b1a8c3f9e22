//! The users of an htpasswd file of bcrypt entries (as written by
//! `htpasswd -B`), and the checking of their passwords at a bounded cost.
//!
//! bcrypt is slow on purpose (tens of milliseconds a check at the usual
//! cost), so a check never runs on the async workers that serve requests:
//!
//! - it runs on Tokio's blocking pool, at most
//!   [`VerifyLimits::concurrent`] at once; a check that cannot start within
//!   [`VerifyLimits::wait`] gives up with [`Busy`], which the callers answer
//!   `429 TOOMANYREQUESTS` with `Retry-After`;
//! - a credential checked recently is not checked again: successes are
//!   remembered for [`VERIFIED_TTL`], failures for [`REFUSED_TTL`], each in
//!   a bounded [`CredentialCache`] keyed by a salted SHA-256 of the user,
//!   the presented password and the user's htpasswd entry (never the
//!   password itself);
//! - an unknown user is checked against a dummy hash at the file's highest
//!   cost, so that it takes as long to refuse as a known one;
//! - a password longer than [`MAX_PASSWORD_BYTES`] is refused without a
//!   check: bcrypt reads only the first 72 bytes, so any longer password
//!   that starts with the right 72 would pass.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::credential_cache::{CredentialCache, CredentialKey};

/// How long a verified password is remembered (a `docker push` sends
/// dozens of requests with the same credentials).
pub const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// How long a wrong password is remembered as wrong (a misconfigured client
/// that retries in a loop then costs no bcrypt).
pub const REFUSED_TTL: Duration = Duration::from_secs(60);
/// At most this many remembered successes, and as many failures.
const CACHE_MAX: usize = 1024;
/// The longest password bcrypt reads whole.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// How many bcrypt checks may run at once, and how long a check waits for
/// its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Checks running at once on the blocking pool (at least 1).
    pub concurrent: usize,
    /// How long a check waits for a free slot before giving up with
    /// [`Busy`].
    pub wait: Duration,
}

impl VerifyLimits {
    /// How long a check waits for a slot by default.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
}

impl Default for VerifyLimits {
    /// Half the CPUs (at least one), so that checks leave the other half to
    /// serving requests; a wait of [`DEFAULT_WAIT`](Self::DEFAULT_WAIT).
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        VerifyLimits {
            concurrent: (cpus / 2).max(1),
            wait: Self::DEFAULT_WAIT,
        }
    }
}

/// A password check that gave no verdict: it could not start because as
/// many checks as [`VerifyLimits::concurrent`] allows were running for all
/// of [`VerifyLimits::wait`] (or its runtime was shutting down). The
/// caller should answer `429` and let the client retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many password checks in progress")
    }
}

impl std::error::Error for Busy {}

/// The users of an htpasswd file: `user:hash` lines, `#` comments and blank
/// lines ignored. Only bcrypt hashes (`$2y$`, `$2b$`, `$2a$`) are accepted;
/// MD5 (`$apr1$`), SHA-1 (`{SHA}`), crypt and plain entries are refused
/// when the file is loaded. See the module docs for what a check costs.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// A hash of an unguessable password at the file's highest cost,
    /// verified against for unknown users so that they take as long as
    /// known ones.
    dummy: String,
    /// Random, per process: mixed into every cache key.
    salt: [u8; 32],
    verified: Mutex<CredentialCache>,
    refused: Mutex<CredentialCache>,
    slots: Arc<Semaphore>,
    wait: Duration,
    #[cfg(test)]
    probe: Arc<probe::Probe>,
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
    ///
    /// Logs a warning that passwords longer than [`MAX_PASSWORD_BYTES`]
    /// cannot be used: a hash does not tell how long its password was, and
    /// `htpasswd -B` hashes only the first 72 bytes of a longer one.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read htpasswd file {}: {e}", path.display()))?;
        let users =
            Self::parse(&text).map_err(|e| format!("htpasswd file {}: {e}", path.display()))?;
        tracing::warn!(
            file = %path.display(),
            "passwords longer than {MAX_PASSWORD_BYTES} bytes cannot be used: bcrypt reads only \
             the first {MAX_PASSWORD_BYTES}, so such logins are refused"
        );
        Ok(users)
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
        let mut salt = [0u8; 32];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "cannot read system randomness".to_owned())?;
        let dummy = bcrypt::hash(hex(&salt), cost).map_err(|e| format!("cannot hash: {e}"))?;
        let limits = VerifyLimits::default();
        Ok(Htpasswd {
            users,
            dummy,
            salt,
            verified: Mutex::new(CredentialCache::new(VERIFIED_TTL, CACHE_MAX)),
            refused: Mutex::new(CredentialCache::new(REFUSED_TTL, CACHE_MAX)),
            slots: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            wait: limits.wait,
            #[cfg(test)]
            probe: Arc::default(),
        })
    }

    /// Set how many checks run at once and how long one waits for its turn
    /// (default [`VerifyLimits::default`]).
    pub fn with_verify_limits(mut self, limits: VerifyLimits) -> Self {
        self.slots = Arc::new(Semaphore::new(limits.concurrent.max(1)));
        self.wait = limits.wait;
        self
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s: `Ok(true)` or `Ok(false)`, or
    /// [`Busy`] if the check gave no verdict (nothing is remembered then).
    ///
    /// Runs bcrypt on Tokio's blocking pool (inline when called outside a
    /// Tokio runtime), unless this user and password were checked
    /// recently. Inside a Tokio runtime, the runtime needs its time driver
    /// (`enable_all`, as `#[tokio::main]` has) for the wait. Takes as long for unknown users as for known ones.
    /// Passwords longer than [`MAX_PASSWORD_BYTES`] are refused at once.
    pub async fn verify(&self, user: &str, password: &str) -> Result<bool, Busy> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let key = self.key(user, password, hash);
        if lock(&self.verified).contains(&key, Instant::now()) {
            return Ok(known);
        }
        if lock(&self.refused).contains(&key, Instant::now()) {
            return Ok(false);
        }
        let ok = self.bcrypt(password, hash).await? && known;
        let cache = if ok { &self.verified } else { &self.refused };
        lock(cache).insert(key, Instant::now());
        Ok(ok)
    }

    /// Check `password` against `hash` with bcrypt, within the limits.
    async fn bcrypt(&self, password: &str, hash: &str) -> Result<bool, Busy> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Ok(bcrypt::verify(password, hash).unwrap_or(false));
        };
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let (password, hash) = (password.to_owned(), hash.to_owned());
        #[cfg(test)]
        let probe = self.probe.clone();
        // The permit moves into the task: a request that is dropped while
        // its check runs still holds its slot until bcrypt returns.
        let check = runtime.spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            let _running = probe.enter();
            bcrypt::verify(password, &hash).unwrap_or(false)
        });
        // A check that could not finish (the runtime is shutting down) is
        // no verdict: not remembered as a failure.
        check.await.map_err(|_| Busy)
    }

    /// The cache key of a credential: a salted SHA-256 of the user, the
    /// presented password and the htpasswd entry (so that a changed entry
    /// invalidates what was remembered of the old one), each
    /// length-prefixed.
    fn key(&self, user: &str, password: &str, hash: &str) -> CredentialKey {
        let mut h = Sha256::new();
        h.update(self.salt);
        for part in [user, password, hash] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }
}

fn lock(cache: &Mutex<CredentialCache>) -> std::sync::MutexGuard<'_, CredentialCache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A count of the bcrypt checks running, and the most ever at once.
#[cfg(test)]
pub(crate) mod probe {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    pub(crate) struct Probe {
        running: AtomicUsize,
        pub(crate) peak: AtomicUsize,
        pub(crate) total: AtomicUsize,
    }

    pub(crate) struct Running(Arc<Probe>);

    impl Probe {
        pub(crate) fn enter(self: &Arc<Self>) -> Running {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            self.total.fetch_add(1, Ordering::SeqCst);
            Running(self.clone())
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.0.running.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests;
