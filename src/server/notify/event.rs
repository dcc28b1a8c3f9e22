//! Events in distribution's notification format, and their CloudEvents
//! 1.0 form (structured mode).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The media type of distribution's envelope.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v2+json";
/// One structured CloudEvent.
pub const CLOUDEVENT_MEDIA_TYPE: &str = "application/cloudevents+json";
/// A batch of structured CloudEvents.
pub const CLOUDEVENTS_BATCH_MEDIA_TYPE: &str = "application/cloudevents-batch+json";
/// The CloudEvents `type` of an event: this prefix and the action.
pub const CLOUDEVENT_TYPE_PREFIX: &str = "org.distribution.registry.";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A manifest or blob was pushed.
    Push,
    /// A manifest or blob was read (`GET`).
    Pull,
    /// A blob was mounted from another repository.
    Mount,
    /// A manifest, tag or blob was deleted.
    Delete,
}

impl Action {
    /// Its name in events and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Pull => "pull",
            Action::Mount => "mount",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "push" => Ok(Action::Push),
            "pull" => Ok(Action::Pull),
            "mount" => Ok(Action::Mount),
            "delete" => Ok(Action::Delete),
            _ => Err(format!(
                "unknown action {s:?}: use push, pull, mount or delete"
            )),
        }
    }
}

/// `target`: what the event is about. Deletes carry only the digest, the
/// repository and (a tag delete) the tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The content's media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Its size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The same (distribution's deprecated name, still sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// The repository.
    pub repository: String,
    /// A mount's source repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_repository: Option<String>,
    /// Where the content can be fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The tag, for a manifest pushed, pulled or deleted by tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `request`: the request that caused the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Its id (`X-Request-Id` when the client sent one).
    pub id: String,
    /// The client's address.
    pub addr: String,
    /// The `Host` it was sent to.
    pub host: String,
    /// Its method.
    pub method: String,
    /// Its `User-Agent`.
    pub useragent: String,
}

/// `actor`: who made the request (empty when anonymous).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// The user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `source`: the registry process that generated the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Its listening address.
    pub addr: String,
    /// Its instance id, new each start.
    #[serde(rename = "instanceID")]
    pub instance_id: String,
}

/// One event, as distribution sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id: every delivery of this event carries it.
    pub id: String,
    /// When it happened, RFC 3339.
    pub timestamp: String,
    /// What happened.
    pub action: Action,
    /// To what.
    pub target: Target,
    /// The request.
    pub request: RequestRecord,
    /// Who.
    pub actor: ActorRecord,
    /// Which process.
    pub source: SourceRecord,
}

/// A request body and its `Content-Type`.
pub fn encode(events: &[Event], format: super::config::Format) -> (Vec<u8>, &'static str) {
    use super::config::Format;
    let body = match format {
        Format::Distribution => serde_json::json!({ "events": events }),
        Format::CloudEvents => match events {
            [one] => cloudevent(one),
            _ => serde_json::Value::Array(events.iter().map(cloudevent).collect()),
        },
        Format::CloudEventsBatch => {
            serde_json::Value::Array(events.iter().map(cloudevent).collect())
        }
    };
    let media_type = match (format, events.len()) {
        (Format::Distribution, _) => ENVELOPE_MEDIA_TYPE,
        (Format::CloudEvents, 1) => CLOUDEVENT_MEDIA_TYPE,
        _ => CLOUDEVENTS_BATCH_MEDIA_TYPE,
    };
    (body.to_string().into_bytes(), media_type)
}

/// The CloudEvents 1.0 form: the distribution event is the `data`.
fn cloudevent(e: &Event) -> serde_json::Value {
    let subject = e.target.tag.clone().or_else(|| e.target.digest.clone());
    let mut ce = serde_json::json!({
        "specversion": "1.0",
        "id": e.id,
        "source": format!("//{}/v2/{}", e.source.addr, e.target.repository),
        "type": format!("{CLOUDEVENT_TYPE_PREFIX}{}", e.action),
        "time": e.timestamp,
        "datacontenttype": "application/json",
        "data": e,
    });
    if let Some(subject) = subject {
        ce["subject"] = serde_json::Value::String(subject);
    }
    ce
}

#[cfg(test)]
mod tests {
    use super::super::config::Format;
    use super::*;

    fn event() -> Event {
        Event {
            id: "e1".into(),
            timestamp: "2026-01-02T03:04:05.000000006Z".into(),
            action: Action::Delete,
            target: Target {
                digest: Some("sha256:ab".into()),
                repository: "a/b".into(),
                ..Target::default()
            },
            request: RequestRecord::default(),
            actor: ActorRecord::default(),
            source: SourceRecord {
                addr: "h:5000".into(),
                instance_id: "i".into(),
            },
        }
    }

    #[test]
    fn deletes_carry_only_digest_and_repository() {
        let (body, media_type) = encode(&[event()], Format::Distribution);
        assert_eq!(media_type, ENVELOPE_MEDIA_TYPE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let target = v["events"][0]["target"].as_object().unwrap();
        let keys: Vec<&String> = target.keys().collect();
        assert_eq!(keys, ["digest", "repository"]);
        assert_eq!(v["events"][0]["actor"], serde_json::json!({}));
        assert_eq!(v["events"][0]["source"]["instanceID"], "i");
    }

    #[test]
    fn cloudevents_wrap_the_same_event() {
        let (body, media_type) = encode(&[event()], Format::CloudEvents);
        assert_eq!(media_type, CLOUDEVENT_MEDIA_TYPE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "org.distribution.registry.delete");
        assert_eq!(v["source"], "//h:5000/v2/a/b");
        assert_eq!(v["subject"], "sha256:ab");
        let back: Event = serde_json::from_value(v["data"].clone()).unwrap();
        assert_eq!(back, event());
        let (body, media_type) = encode(&[event()], Format::CloudEventsBatch);
        assert_eq!(media_type, CLOUDEVENTS_BATCH_MEDIA_TYPE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[0]["id"], "e1");
    }
}
