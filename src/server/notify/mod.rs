//! Webhook notifications in distribution's format, delivered at least once
//! across a fleet (docs/OPERATIONS.md, "Notifications").
//!
//! The request hook ([`super::http`]) hands each request that may cause an
//! event to [`Notifier::seen`] before the router runs, and the response to
//! [`Notifier::record`] before it is sent: an event of a durable action is
//! then in the shared store's outbox (`registry_storage::outbox`) for
//! every endpoint that wants it, or the request is answered 500; a
//! non-durable one is queued in memory. Every process runs a delivery loop
//! per endpoint over the outbox, so events a dead process wrote are
//! delivered by the others.

mod config;
mod deliver;
mod event;
mod observe;
mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Response, StatusCode};
use registry_http::Body;
use registry_http::server::RequestInfo;
use registry_storage::OpendalStore;
use tokio::sync::mpsc;

pub use config::{Endpoint, NotificationsSettings, endpoints};
pub use event::Event;
pub use observe::Seen;
pub use stats::EndpointStats;

use deliver::Sink;
use event::SourceRecord;

/// The notification side of a running server.
pub struct Notifier {
    sinks: Vec<(Arc<Sink>, mpsc::Sender<Event>)>,
    store: OpendalStore,
    source: SourceRecord,
    scheme: &'static str,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// Start delivering to `endpoints` (none: `None`) from `store`, as the
    /// process listening on `addr` with `scheme`. Needs a Tokio runtime.
    pub fn start(
        endpoints: Vec<Endpoint>,
        store: OpendalStore,
        addr: String,
        scheme: &'static str,
    ) -> Result<Option<Arc<Notifier>>, String> {
        if endpoints.is_empty() {
            return Ok(None);
        }
        let instance_id = registry_storage::outbox::new_event_id().map_err(|e| e.to_string())?;
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for endpoint in endpoints {
            tracing::info!(
                endpoint = %endpoint.name,
                url = %endpoint.url,
                timeout = ?endpoint.timeout,
                durable = ?endpoint.durable,
                "notification endpoint configured"
            );
            let sink = Arc::new(Sink::new(endpoint)?);
            let (tx, rx) = mpsc::channel(deliver::MEMORY_QUEUE);
            tasks.push(tokio::spawn(sink.clone().run_outbox(store.clone())));
            tasks.push(tokio::spawn(sink.clone().run_memory(rx)));
            sinks.push((sink, tx));
        }
        Ok(Some(Arc::new(Notifier {
            sinks,
            store,
            source: SourceRecord { addr, instance_id },
            scheme,
            tasks,
        })))
    }

    /// Each endpoint's numbers, which the metrics endpoint exports.
    pub fn stats(&self) -> Vec<Arc<EndpointStats>> {
        self.sinks.iter().map(|(s, _)| s.stats.clone()).collect()
    }

    /// What an event of this request will need, if it can cause one.
    pub fn seen(&self, request: &RequestInfo<'_>) -> Option<Seen> {
        Seen::take(request, self.scheme)
    }

    /// The request seen before got `response`: record its event, if any,
    /// for every endpoint that wants it, before the response is sent. An
    /// outbox write that fails turns the response into a 500 (the client
    /// retries, and the retry records the event).
    pub async fn record(&self, seen: Seen, response: &mut Response<Body>) {
        let event = seen.event(
            response.status(),
            response.headers(),
            &self.store,
            &self.source,
        );
        let Some(event) = event.await else {
            return;
        };
        let mut json = None;
        for (sink, queue) in &self.sinks {
            if !wants(&sink.endpoint, &event) {
                continue;
            }
            if sink.endpoint.durable.contains(&event.action) {
                let bytes = json
                    .get_or_insert_with(|| serde_json::to_vec(&event).unwrap_or_default())
                    .clone();
                match self
                    .store
                    .outbox_put(&sink.endpoint.name, &event.id, bytes)
                    .await
                {
                    Ok(()) => sink.wake.notify_one(),
                    Err(e) => {
                        EndpointStats::bump(&sink.stats.outbox_errors);
                        tracing::error!(endpoint = %sink.endpoint.name, error = %e, "cannot record a notification: answering 500");
                        *response = super::limits::error_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "UNKNOWN",
                            "the request's notification could not be recorded; retry it",
                        );
                        return;
                    }
                }
            } else {
                match queue.try_send(event.clone()) {
                    Ok(()) => {
                        sink.stats.memory_depth.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => EndpointStats::bump(&sink.stats.dropped),
                }
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether `endpoint`'s filters let `event` through.
fn wants(endpoint: &Endpoint, event: &Event) -> bool {
    if endpoint.ignored_actions.contains(&event.action) {
        return false;
    }
    if let Some(media_type) = &event.target.media_type
        && endpoint.ignored_media_types.iter().any(|m| m == media_type)
    {
        return false;
    }
    endpoint.repositories.is_empty()
        || endpoint
            .repositories
            .iter()
            .any(|p| p.matches(&event.target.repository))
}

#[cfg(test)]
mod tests {
    use super::event::{Action, ActorRecord, RequestRecord, Target};
    use super::*;

    fn event(action: Action, repository: &str, media_type: &str) -> Event {
        Event {
            id: "e".into(),
            timestamp: "t".into(),
            action,
            target: Target {
                media_type: Some(media_type.into()),
                repository: repository.into(),
                ..Target::default()
            },
            request: RequestRecord::default(),
            actor: ActorRecord::default(),
            source: SourceRecord::default(),
        }
    }

    #[test]
    fn filters_by_action_media_type_and_repository() {
        let file: NotificationsSettings = toml::from_str(
            r#"
            [[endpoints]]
            name = "a"
            url = "http://x/"
            ignoredmediatypes = ["application/octet-stream"]
            ignore = { mediatypes = ["text/plain"], actions = ["pull"] }
            repositories = ["team/*"]
            "#,
        )
        .unwrap();
        let endpoint = &endpoints(Some(file), &[]).unwrap()[0];
        let m = "application/vnd.oci.image.manifest.v1+json";
        assert!(wants(endpoint, &event(Action::Push, "team/app", m)));
        assert!(!wants(endpoint, &event(Action::Pull, "team/app", m)));
        assert!(!wants(
            endpoint,
            &event(Action::Push, "team/app", "text/plain")
        ));
        assert!(!wants(
            endpoint,
            &event(Action::Push, "team/app", "application/octet-stream")
        ));
        assert!(!wants(endpoint, &event(Action::Push, "team/a/b", m)));
        assert!(!wants(endpoint, &event(Action::Push, "other/app", m)));
    }
}
