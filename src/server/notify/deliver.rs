//! Delivery to one endpoint: the HTTP request (format, headers, HMAC
//! signature), the loop over the shared outbox that every process runs
//! (claim an attempt, post, remove or bury), and the memory queue of the
//! non-durable events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use registry_storage::OpendalStore;
use registry_storage::outbox::Claim;
use tokio::sync::{Notify, mpsc};

use super::config::Endpoint;
use super::event::{Event, encode};
use super::stats::EndpointStats;

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Registry-Signature-256";

/// How often a process looks at the outbox when nothing wakes it.
pub const POLL: Duration = Duration::from_secs(1);

/// Events one round looks at, at most (the oldest).
pub const ROUND: usize = 512;

/// Non-durable events one process holds for an endpoint; more are dropped
/// (and counted).
pub const MEMORY_QUEUE: usize = 10_000;

/// One endpoint and what delivers to it.
pub struct Sink {
    pub(super) endpoint: Endpoint,
    pub(super) stats: Arc<EndpointStats>,
    pub(super) wake: Notify,
    client: reqwest::Client,
}

impl Sink {
    /// A sink for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Result<Sink, String> {
        let client = reqwest::Client::builder()
            .timeout(endpoint.timeout)
            .build()
            .map_err(|e| format!("notification endpoint {:?}: {e}", endpoint.name))?;
        Ok(Sink {
            stats: Arc::new(EndpointStats::new(&endpoint.name)),
            endpoint,
            wake: Notify::new(),
            client,
        })
    }

    /// POST `events`; `Ok` on a 2xx or 3xx answer (redirects followed).
    pub async fn post(&self, events: &[Event]) -> Result<(), String> {
        let (body, media_type) = encode(events, self.endpoint.format);
        let mut request = self
            .client
            .post(&self.endpoint.url)
            .header(http::header::CONTENT_TYPE, media_type);
        for (name, value) in &self.endpoint.headers {
            request = request.header(name, value);
        }
        if let Some(secret) = &self.endpoint.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, &body));
        }
        let response = request.body(body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }

    /// The loop every process runs over the endpoint's outbox: a round
    /// when woken (an event was just written here) or every [`POLL`].
    pub async fn run_outbox(self: Arc<Self>, store: OpendalStore) {
        loop {
            match self.outbox_round(&store).await {
                Ok(Some(pause)) => tokio::time::sleep(pause).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    endpoint = %self.endpoint.name,
                    error = %e,
                    "reading the notification outbox failed; trying again"
                ),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass over the pending events, oldest first; `Some(pause)` when
    /// `threshold` posts in a row failed.
    async fn outbox_round(&self, store: &OpendalStore) -> registry_core::Result<Option<Duration>> {
        let name = self.endpoint.name.as_str();
        let mut pending = store.outbox_pending(name).await?;
        self.stats
            .outbox_depth
            .store(pending.len() as u64, Ordering::Relaxed);
        let oldest = pending
            .first()
            .and_then(|id| registry_storage::outbox::event_id_time(id));
        let age = oldest.map_or(Duration::ZERO, |at| {
            SystemTime::now().duration_since(at).unwrap_or_default()
        });
        self.stats
            .oldest_undelivered_seconds
            .store(age.as_secs(), Ordering::Relaxed);
        if pending.is_empty() {
            return Ok(None);
        }
        // A bounded pass, oldest first: a large backlog costs a bounded
        // number of store requests per round.
        pending.truncate(ROUND);
        let now = store.outbox_now().await?;
        let mut failures = 0;
        for id in pending {
            match store
                .outbox_claim(name, &id, &self.endpoint.schedule, now)
                .await?
            {
                Claim::NotNow => {}
                Claim::Exhausted => {
                    if store.outbox_bury(name, &id).await? {
                        EndpointStats::bump(&self.stats.dead_letters);
                        tracing::warn!(endpoint = name, event = %id, "notification exhausted its attempts: moved to the dead letters");
                    }
                }
                Claim::Won(attempt) => {
                    let Some(bytes) = store.outbox_read(name, &id).await? else {
                        // Delivered by another process meanwhile.
                        store.outbox_delivered(name, &id).await?;
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<Event>(&bytes) else {
                        tracing::warn!(endpoint = name, event = %id, "unreadable notification: moved to the dead letters");
                        if store.outbox_bury(name, &id).await? {
                            EndpointStats::bump(&self.stats.dead_letters);
                        }
                        continue;
                    };
                    match self.post(std::slice::from_ref(&event)).await {
                        Ok(()) => {
                            EndpointStats::bump(&self.stats.delivered);
                            store.outbox_delivered(name, &id).await?;
                        }
                        Err(e) => {
                            EndpointStats::bump(&self.stats.failed);
                            failures += 1;
                            tracing::debug!(endpoint = name, event = %id, attempt, error = %e, "notification not delivered");
                            if failures >= self.endpoint.threshold {
                                tracing::warn!(endpoint = name, error = %e, "notification endpoint failing: backing off");
                                return Ok(Some(self.endpoint.schedule.backoff));
                            }
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Deliver the non-durable events of this process, in order, each
    /// retried on the endpoint's schedule; one that exhausts its attempts
    /// is counted as a dead letter (it is not kept).
    pub async fn run_memory(self: Arc<Self>, mut queue: mpsc::Receiver<Event>) {
        while let Some(event) = queue.recv().await {
            let schedule = &self.endpoint.schedule;
            let mut attempt = 1;
            loop {
                match self.post(std::slice::from_ref(&event)).await {
                    Ok(()) => {
                        EndpointStats::bump(&self.stats.delivered);
                        break;
                    }
                    Err(e) => {
                        EndpointStats::bump(&self.stats.failed);
                        if attempt >= schedule.attempts {
                            EndpointStats::bump(&self.stats.dead_letters);
                            tracing::warn!(endpoint = %self.endpoint.name, event = %event.id, error = %e, "notification dropped after its last attempt");
                            break;
                        }
                        tokio::time::sleep(schedule.backoff_after(attempt)).await;
                        attempt += 1;
                    }
                }
            }
            self.stats.memory_depth.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::event::{Action, ActorRecord, RequestRecord, SourceRecord, Target};
    use super::*;

    fn event(id: &str) -> Event {
        Event {
            id: id.to_owned(),
            timestamp: "2026-01-02T03:04:05Z".into(),
            action: Action::Push,
            target: Target {
                repository: "a/b".into(),
                ..Target::default()
            },
            request: RequestRecord::default(),
            actor: ActorRecord::default(),
            source: SourceRecord {
                addr: "127.0.0.1:5000".into(),
                instance_id: "i".into(),
            },
        }
    }

    /// `threshold` failed posts in a row end a round with the endpoint's
    /// backoff, leaving the other events for later rounds.
    #[tokio::test]
    async fn a_round_pauses_after_threshold_failures() {
        let store = OpendalStore::memory();
        // Nothing listens on port 1 of the loopback: every post fails.
        let mut endpoint =
            super::super::config::Endpoint::from_flag(0, "http://127.0.0.1:1/").unwrap();
        endpoint.threshold = 2;
        endpoint.schedule.attempts = 100;
        let name = endpoint.name.clone();
        for _ in 0..5 {
            let id = registry_storage::outbox::new_event_id().unwrap();
            let bytes = serde_json::to_vec(&event(&id)).unwrap();
            store.outbox_put(&name, &id, bytes).await.unwrap();
        }
        let sink = Sink::new(endpoint).unwrap();
        let pause = sink.outbox_round(&store).await.unwrap();
        assert_eq!(pause, Some(sink.endpoint.schedule.backoff));
        assert_eq!(
            sink.stats.failed.load(Ordering::Relaxed),
            2,
            "stopped at the threshold"
        );
        assert_eq!(
            store.outbox_pending(&name).await.unwrap().len(),
            5,
            "nothing lost"
        );

        // A threshold above the number of events: a round tries each once
        // (with no wait between attempts, the two tried before too) and
        // does not pause.
        let mut endpoint =
            super::super::config::Endpoint::from_flag(0, "http://127.0.0.1:1/").unwrap();
        endpoint.threshold = 10;
        endpoint.schedule.backoff = Duration::ZERO;
        endpoint.schedule.lease = Duration::ZERO;
        endpoint.schedule.attempts = 100;
        let sink = Sink::new(endpoint).unwrap();
        assert_eq!(sink.outbox_round(&store).await.unwrap(), None);
        assert_eq!(
            sink.stats.failed.load(Ordering::Relaxed),
            5,
            "each event once"
        );
    }

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
