//! [`Peers`]: the members, their health, and which of them own a digest.
//!
//! Every member is pinged every [`HEALTH_INTERVAL`]; the ping answers the
//! member's instance id, so this process recognises its own URL in the list
//! without being told it. A member that never answered is not used; one
//! that failed [`FAILURES_BEFORE_SKIP`] times in a row (pings or blob
//! requests) is skipped for [`SKIP_FOR`]. With `--peers-dns` the name is
//! resolved again every [`DNS_INTERVAL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use registry_core::Digest;

use crate::config::{Membership, PeerConfig};
use crate::hashing;
use crate::protocol;
use crate::stats::{Counters, PeerStats};

/// How often every member is pinged.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// How long a ping may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a DNS membership is resolved again.
pub const DNS_INTERVAL: Duration = Duration::from_secs(10);
/// Consecutive failures after which a member is skipped.
pub const FAILURES_BEFORE_SKIP: u32 = 2;
/// How long a failing member is skipped.
pub const SKIP_FOR: Duration = Duration::from_secs(10);
/// How long a digest that a peer served wrong is read from the store only.
pub const SUSPECT_FOR: Duration = Duration::from_secs(300);
/// Most suspect digests remembered (past it the oldest are forgotten).
const MAX_SUSPECTS: usize = 4096;
/// Longest instance id accepted from a ping.
const MAX_ID_LEN: usize = 64;

/// A random instance id: 128 bits, hex.
pub fn instance_id() -> String {
    let mut bytes = [0u8; 16];
    // Without an entropy source the id is still unique enough with the time.
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (t ^ u128::from(std::process::id())).to_be_bytes();
    }
    hex::encode(bytes)
}

#[derive(Debug)]
struct Member {
    url: String,
    /// The instance id its last successful ping answered.
    id: Option<String>,
    failures: u32,
    skip_until: Option<Instant>,
}

impl Member {
    fn new(url: String) -> Self {
        Member {
            url,
            id: None,
            failures: 0,
            skip_until: None,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.id.is_some() && self.skip_until.is_none_or(|t| now >= t)
    }
}

#[derive(Debug, Default)]
struct State {
    members: Vec<Member>,
    resolved_at: Option<Instant>,
}

/// The peer membership of one process, its client and its counters.
#[derive(Debug)]
pub struct Peers {
    id: String,
    config: PeerConfig,
    pub(crate) client: reqwest::Client,
    state: Mutex<State>,
    suspects: Mutex<HashMap<Digest, Instant>>,
    pub(crate) counters: Counters,
}

impl Peers {
    /// The membership of `config`, with a fresh instance id, not yet
    /// checked: nothing is live until [`Peers::check`] (or the loop of
    /// [`Peers::start`]) pinged the members.
    pub fn new(config: PeerConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.first_byte_timeout.max(Duration::from_millis(50)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("registry-peers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the peer HTTP client: {e}"))?;
        let members = match &config.membership {
            Membership::Static(urls) => urls.iter().cloned().map(Member::new).collect(),
            Membership::Dns { .. } => Vec::new(),
        };
        Ok(Peers {
            id: instance_id(),
            config: PeerConfig {
                owners: config.owners.max(1),
                ..config
            },
            client,
            state: Mutex::new(State {
                members,
                resolved_at: None,
            }),
            suspects: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// [`Peers::new`], and the health loop started (ends when the last
    /// handle is dropped). Needs a Tokio runtime.
    pub fn start(config: PeerConfig) -> Result<Arc<Self>, String> {
        let peers = Arc::new(Self::new(config)?);
        let weak = Arc::downgrade(&peers);
        tokio::spawn(health_loop(weak));
        Ok(peers)
    }

    /// This process's instance id (what its ping answers).
    pub fn instance_id(&self) -> &str {
        &self.id
    }

    /// The settings.
    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The counters now.
    pub fn stats(&self) -> PeerStats {
        let now = Instant::now();
        let live = self.state().members.iter().filter(|m| m.live(now)).count();
        self.counters.snapshot(live as u64)
    }

    /// Count a blob request answered for a peer.
    pub fn served(&self) {
        crate::stats::add(&self.counters.served, 1);
    }

    /// Whether `given` is the shared secret.
    pub fn authorized(&self, given: &[u8]) -> bool {
        self.config.secret.matches(given)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URLs of the members to ask for `digest`, in order; empty
    /// when this process is its first owner or no other member is live
    /// (read the store then). Only the first live owner reads the store:
    /// a later owner asks the ones ranked above it, so that a rollout
    /// reads each layer once whatever R is; R is how far the fleet can
    /// fall back when owners fail.
    pub fn owners(&self, digest: &Digest) -> Vec<String> {
        let now = Instant::now();
        let state = self.state();
        let live: Vec<&Member> = state.members.iter().filter(|m| m.live(now)).collect();
        let owners = hashing::owners(
            live.iter().map(|m| m.url.as_str()),
            digest,
            self.config.owners,
        );
        owners
            .into_iter()
            .take_while(|&i| live[i].id.as_deref() != Some(self.id.as_str()))
            .map(|i| live[i].url.clone())
            .collect()
    }

    /// Whether this process recognised itself among the members.
    pub fn knows_itself(&self) -> bool {
        self.state()
            .members
            .iter()
            .any(|m| m.id.as_deref() == Some(self.id.as_str()))
    }

    /// Record a failed request to `url`: after [`FAILURES_BEFORE_SKIP`] in
    /// a row it is skipped for [`SKIP_FOR`].
    pub(crate) fn failed(&self, url: &str) {
        let mut state = self.state();
        if let Some(m) = state.members.iter_mut().find(|m| m.url == url) {
            m.failures += 1;
            if m.failures >= FAILURES_BEFORE_SKIP {
                if m.skip_until.is_none_or(|t| Instant::now() >= t) {
                    tracing::warn!(peer = %m.url, failures = m.failures, "peer skipped for {SKIP_FOR:?}");
                }
                m.skip_until = Some(Instant::now() + SKIP_FOR);
            }
        }
    }

    /// Record a good answer of `url` (with its id when it is a ping's).
    pub(crate) fn answered(&self, url: &str, id: Option<String>) {
        let mut state = self.state();
        if let Some(m) = state.members.iter_mut().find(|m| m.url == url) {
            m.failures = 0;
            m.skip_until = None;
            if id.is_some() {
                m.id = id;
            }
        }
    }

    /// Remember that a peer served `digest` wrong: it is read from the
    /// store only for [`SUSPECT_FOR`].
    pub(crate) fn suspect(&self, digest: &Digest) {
        let mut s = self.suspects.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.retain(|_, t| now.duration_since(*t) < SUSPECT_FOR);
        if s.len() >= MAX_SUSPECTS
            && let Some(oldest) = s.iter().min_by_key(|(_, t)| **t).map(|(d, _)| d.clone())
        {
            s.remove(&oldest);
        }
        s.insert(digest.clone(), now);
    }

    /// Whether `digest` is read from the store only, for now.
    pub(crate) fn suspected(&self, digest: &Digest) -> bool {
        let s = self.suspects.lock().unwrap_or_else(|p| p.into_inner());
        s.get(digest).is_some_and(|t| t.elapsed() < SUSPECT_FOR)
    }

    /// One round of the health loop: resolve the DNS name if due, then ping
    /// every member at once.
    pub async fn check(&self) {
        self.resolve().await;
        let urls: Vec<String> = self.state().members.iter().map(|m| m.url.clone()).collect();
        let pings = urls.into_iter().map(|url| async move {
            match self.ping(&url).await {
                Ok(id) => self.answered(&url, Some(id)),
                Err(why) => {
                    tracing::debug!(peer = %url, %why, "peer ping failed");
                    self.failed(&url)
                }
            }
        });
        futures::future::join_all(pings).await;
    }

    async fn ping(&self, url: &str) -> Result<String, String> {
        let request = self
            .client
            .get(format!("{url}{}", protocol::PING_PATH))
            .header(protocol::SECRET_HEADER, self.config.secret.expose())
            .timeout(PING_TIMEOUT);
        let response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        let id = text.trim();
        if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("not an instance id".to_owned());
        }
        Ok(id.to_owned())
    }

    /// With a DNS membership, resolve the name if [`DNS_INTERVAL`] passed:
    /// members whose address stays keep their state; a failed lookup keeps
    /// the last list.
    async fn resolve(&self) {
        let Membership::Dns { name, port } = &self.config.membership else {
            return;
        };
        let due = self
            .state()
            .resolved_at
            .is_none_or(|t| t.elapsed() >= DNS_INTERVAL);
        if !due {
            return;
        }
        let found = match tokio::net::lookup_host((name.as_str(), *port)).await {
            Ok(addrs) => addrs,
            Err(e) => {
                tracing::warn!(%name, error = %e, "peer DNS lookup failed; keeping the last members");
                self.state().resolved_at = Some(Instant::now());
                return;
            }
        };
        let mut urls: Vec<String> = found.map(|a| format!("http://{a}")).collect();
        urls.sort();
        urls.dedup();
        let mut state = self.state();
        let mut old = std::mem::take(&mut state.members);
        state.members = urls
            .into_iter()
            .map(|url| match old.iter().position(|m| m.url == url) {
                Some(i) => old.swap_remove(i),
                None => Member::new(url),
            })
            .collect();
        state.resolved_at = Some(Instant::now());
    }
}

async fn health_loop(peers: Weak<Peers>) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(peers) = peers.upgrade() else { return };
        peers.check().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn peers(urls: &[&str]) -> Peers {
        Peers::new(PeerConfig::new(
            Membership::urls(urls).unwrap(),
            Secret::new("s").unwrap(),
        ))
        .unwrap()
    }

    #[test]
    fn nothing_is_live_before_a_ping_and_self_owns_nothing_remote() {
        let p = peers(&[
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3",
        ]);
        let d = Digest::sha256_of(b"a");
        assert!(p.owners(&d).is_empty());
        p.answered("http://127.0.0.1:1", Some("other1".into()));
        p.answered("http://127.0.0.1:2", Some("other2".into()));
        let own = p.id.clone();
        p.answered("http://127.0.0.1:3", Some(own));
        assert!(p.knows_itself());
        assert_eq!(p.stats().live_members, 3);
        // Over many digests, this process is the first owner of some
        // (empty answer: it reads the store), the second of others (it
        // asks the first only), and asks both owners of the rest; never
        // itself.
        let (mut mine, mut second, mut theirs) = (0, 0, 0);
        for i in 0..100u32 {
            let o = p.owners(&Digest::sha256_of(&i.to_be_bytes()));
            assert!(!o.contains(&"http://127.0.0.1:3".to_owned()));
            match o.len() {
                0 => mine += 1,
                1 => second += 1,
                2 => theirs += 1,
                n => panic!("{n} owners"),
            }
        }
        assert!(
            mine > 0 && second > 0 && theirs > 0,
            "{mine} {second} {theirs}"
        );
    }

    #[test]
    fn failing_members_are_skipped_then_tried_again() {
        let p = peers(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        p.answered("http://127.0.0.1:1", Some("x".into()));
        assert_eq!(p.stats().live_members, 1);
        p.failed("http://127.0.0.1:1");
        assert_eq!(p.stats().live_members, 1, "one failure is not enough");
        p.failed("http://127.0.0.1:1");
        assert_eq!(p.stats().live_members, 0);
        p.answered("http://127.0.0.1:1", None);
        assert_eq!(p.stats().live_members, 1);
    }

    #[test]
    fn suspects_are_remembered() {
        let p = peers(&["http://127.0.0.1:1"]);
        let d = Digest::sha256_of(b"a");
        assert!(!p.suspected(&d));
        p.suspect(&d);
        assert!(p.suspected(&d));
    }
}
