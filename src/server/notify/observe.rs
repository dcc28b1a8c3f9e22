//! Where events come from: the request hook. Before the router runs, the
//! request's route and what the event's `request` and `actor` need are
//! taken ([`Seen`]); once the response is known, its status and headers
//! (`Docker-Content-Digest`, `Content-Type`, `Content-Length`) say whether
//! and what happened ([`Seen::event`]). A blob's size, which a completing
//! `PUT`'s response does not carry, is read from the store.

use std::time::SystemTime;

use base64::Engine;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, StatusCode};
use registry_core::{BlobStore, Digest, Reference};
use registry_http::server::RequestInfo;
use registry_http::{Route, UploadMode};
use registry_storage::OpendalStore;

use super::event::{Action, ActorRecord, Event, RequestRecord, SourceRecord, Target};

/// The media type distribution gives blob events.
const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// What the hook took from a request that may cause an event.
#[derive(Debug)]
pub struct Seen {
    route: Route,
    request: RequestRecord,
    actor: ActorRecord,
    content_type: Option<String>,
    content_length: Option<u64>,
    base_url: String,
}

impl Seen {
    /// The request's id, as the response's `X-Request-Id` carries it.
    pub fn with_request_id(mut self, id: &str) -> Seen {
        self.request.id = id.to_owned();
        self
    }

    /// The parts of `info` an event needs, if its route can cause one:
    /// manifest and blob `GET`s, pushes, mounts and deletes.
    pub fn take(info: &RequestInfo<'_>, scheme: &str) -> Option<Seen> {
        let route = match info.route()? {
            r @ (Route::GetManifest { head: false, .. }
            | Route::GetBlob { head: false, .. }
            | Route::PutManifest { .. }
            | Route::FinishUpload { .. }
            | Route::DeleteManifest { .. }
            | Route::DeleteBlob { .. }) => r.clone(),
            r @ Route::StartUpload {
                mode: UploadMode::Monolithic(_) | UploadMode::Mount { .. },
                ..
            } => r.clone(),
            _ => return None,
        };
        let headers = &info.parts.headers;
        let host = text(headers, HOST.as_str()).unwrap_or_default();
        Some(Seen {
            route,
            request: RequestRecord {
                id: text(headers, "x-request-id").unwrap_or_default(),
                addr: info.peer.to_string(),
                host: host.clone(),
                method: info.parts.method.to_string(),
                useragent: text(headers, USER_AGENT.as_str()).unwrap_or_default(),
            },
            actor: ActorRecord {
                name: actor(headers),
            },
            content_type: text(headers, CONTENT_TYPE.as_str()),
            content_length: text(headers, CONTENT_LENGTH.as_str()).and_then(|l| l.parse().ok()),
            base_url: format!("{scheme}://{host}"),
        })
    }

    /// The event the request caused, judged by its response: `None` if it
    /// failed or caused none. Ids are new; `source` is this process.
    pub async fn event(
        mut self,
        status: StatusCode,
        headers: &HeaderMap,
        store: &OpendalStore,
        source: &SourceRecord,
    ) -> Option<Event> {
        let digest = text(headers, "docker-content-digest");
        let url = |name: &str, kind: &str, digest: &str| {
            format!("{}/v2/{name}/{kind}/{digest}", self.base_url)
        };
        let (action, target) = match (&self.route, status) {
            (
                Route::GetManifest {
                    name, reference, ..
                },
                StatusCode::OK,
            ) => {
                let digest = digest?;
                let size = text(headers, CONTENT_LENGTH.as_str()).and_then(|l| l.parse().ok());
                let media_type = text(headers, CONTENT_TYPE.as_str());
                let target = manifest_target(name, reference, digest, media_type, size, &url);
                (Action::Pull, target)
            }
            (Route::GetBlob { name, digest, .. }, StatusCode::OK) => {
                let size = text(headers, CONTENT_LENGTH.as_str()).and_then(|l| l.parse().ok());
                (Action::Pull, blob_target(name, digest, size, &url))
            }
            (Route::PutManifest { name, reference }, StatusCode::CREATED) => {
                let digest = digest?;
                let size = match self.content_length {
                    Some(size) => Some(size),
                    None => blob_size(store, name, &digest).await,
                };
                let media_type = self.content_type.take();
                let target = manifest_target(name, reference, digest, media_type, size, &url);
                (Action::Push, target)
            }
            (
                Route::FinishUpload { name, digest, .. }
                | Route::StartUpload {
                    name,
                    mode: UploadMode::Monolithic(digest),
                },
                StatusCode::CREATED,
            ) => {
                let size = blob_size(store, name, &digest.to_string()).await;
                (Action::Push, blob_target(name, digest, size, &url))
            }
            (
                Route::StartUpload {
                    name,
                    mode:
                        UploadMode::Mount {
                            digest,
                            from: Some(from),
                        },
                },
                StatusCode::CREATED,
            ) => {
                let size = blob_size(store, name, &digest.to_string()).await;
                let mut target = blob_target(name, digest, size, &url);
                target.from_repository = Some(from.to_string());
                (Action::Mount, target)
            }
            (Route::DeleteManifest { name, reference }, StatusCode::ACCEPTED) => {
                let digest = match reference {
                    Reference::Digest(d) => Some(d.to_string()),
                    Reference::Tag(_) => digest,
                };
                let target = Target {
                    digest,
                    repository: name.to_string(),
                    tag: tag_of(reference),
                    ..Target::default()
                };
                (Action::Delete, target)
            }
            (Route::DeleteBlob { name, digest }, StatusCode::ACCEPTED) => {
                let target = Target {
                    digest: Some(digest.to_string()),
                    repository: name.to_string(),
                    ..Target::default()
                };
                (Action::Delete, target)
            }
            _ => return None,
        };
        let id = registry_storage::outbox::new_event_id().ok()?;
        if self.request.id.is_empty() {
            self.request.id = text(headers, "x-request-id").unwrap_or_else(|| id.clone());
        }
        Some(Event {
            id,
            timestamp: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            action,
            target,
            request: self.request,
            actor: self.actor,
            source: source.clone(),
        })
    }
}

/// A blob's target: its media type is always distribution's blob type.
/// A manifest's target: `reference` gives the tag, if it is one.
fn manifest_target(
    name: &registry_core::RepositoryName,
    reference: &Reference,
    digest: String,
    media_type: Option<String>,
    size: Option<u64>,
    url: &dyn Fn(&str, &str, &str) -> String,
) -> Target {
    Target {
        media_type,
        size,
        length: size,
        repository: name.to_string(),
        url: Some(url(name.as_str(), "manifests", &digest)),
        tag: tag_of(reference),
        digest: Some(digest),
        ..Target::default()
    }
}

fn blob_target(
    name: &registry_core::RepositoryName,
    digest: &Digest,
    size: Option<u64>,
    url: &dyn Fn(&str, &str, &str) -> String,
) -> Target {
    Target {
        media_type: Some(BLOB_MEDIA_TYPE.to_owned()),
        digest: Some(digest.to_string()),
        size,
        length: size,
        repository: name.to_string(),
        url: Some(url(name.as_str(), "blobs", &digest.to_string())),
        ..Target::default()
    }
}

async fn blob_size(
    store: &OpendalStore,
    name: &registry_core::RepositoryName,
    digest: &str,
) -> Option<u64> {
    let digest = Digest::parse(digest).ok()?;
    store.stat_blob(name, &digest).await.ok().map(|i| i.size)
}

fn tag_of(reference: &Reference) -> Option<String> {
    match reference {
        Reference::Tag(t) => Some(t.to_string()),
        Reference::Digest(_) => None,
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The user a request authenticated as: the Basic user name, or a bearer
/// token's `sub`. Only events of requests that succeeded are sent, and
/// with authentication on, the router has checked these by then.
fn actor(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let engine = |url: bool| {
        if url {
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            &base64::engine::general_purpose::STANDARD
        }
    };
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = engine(false).decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        Some(text.split_once(':')?.0.to_owned())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let payload = rest.trim().split('.').nth(1)?;
        let claims: serde_json::Value =
            serde_json::from_slice(&engine(true).decode(payload).ok()?).ok()?;
        claims["sub"].as_str().map(str::to_owned)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_from_basic_and_bearer() {
        let mut h = HeaderMap::new();
        assert_eq!(actor(&h), None);
        h.insert(AUTHORIZATION, "Basic YWxpY2U6c2VjcmV0".parse().unwrap());
        assert_eq!(actor(&h).as_deref(), Some("alice"));
        // {"sub":"bob"}
        h.insert(
            AUTHORIZATION,
            "Bearer e30.eyJzdWIiOiJib2IifQ.sig".parse().unwrap(),
        );
        assert_eq!(actor(&h).as_deref(), Some("bob"));
        h.insert(AUTHORIZATION, "Bearer garbage".parse().unwrap());
        assert_eq!(actor(&h), None);
    }
}
