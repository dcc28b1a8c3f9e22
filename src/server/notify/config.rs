//! Notification endpoints as configured: the `[[notifications.endpoints]]`
//! of the config file (distribution's keys, plus ours) and `--notify URL`
//! (an endpoint with the defaults), resolved and checked at start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use registry_http::RepositoryPattern;
use registry_storage::outbox::{Schedule, valid_name};
use serde::Deserialize;

use super::super::config::HumanDuration;
use super::event::Action;

/// Default time an endpoint has to answer a delivery.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default consecutive failures after which a process pauses an endpoint.
pub const DEFAULT_THRESHOLD: u32 = 10;
/// Default wait after a failed attempt (then doubled per attempt).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Default longest wait between attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Default attempts before an event is a dead letter (about a day at the
/// default cap).
pub const DEFAULT_ATTEMPTS: u32 = 300;

/// The `[notifications]` table of the config file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSettings {
    /// The endpoints, `[[notifications.endpoints]]`.
    #[serde(default)]
    pub endpoints: Vec<EndpointSettings>,
}

/// `ignore = { mediatypes = [...], actions = [...] }`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreSettings {
    /// Events whose target has one of these media types are not sent.
    #[serde(default)]
    pub mediatypes: Vec<String>,
    /// Events of these actions are not sent.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// One `[[notifications.endpoints]]` entry; keys as distribution's
/// (lowercase), then ours.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// Name: `[A-Za-z0-9._-]`, unique; names the endpoint's outbox folder.
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// Extra request headers: name -> values.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Time to answer a delivery [default: 5s].
    pub timeout: Option<HumanDuration>,
    /// Consecutive failures after which this process pauses the endpoint
    /// for `backoff` [default: 10].
    pub threshold: Option<u32>,
    /// Wait after a failed attempt, doubled per attempt [default: 1s].
    pub backoff: Option<HumanDuration>,
    /// Skip this endpoint.
    #[serde(default)]
    pub disabled: bool,
    /// Events whose target has one of these media types are not sent.
    #[serde(default)]
    pub ignoredmediatypes: Vec<String>,
    /// Media types and actions not sent.
    #[serde(default)]
    pub ignore: IgnoreSettings,
    /// (ours) Longest wait between attempts [default: 5m].
    pub maxbackoff: Option<HumanDuration>,
    /// (ours) Attempts before an event is a dead letter [default: 300].
    pub attempts: Option<u32>,
    /// (ours) HMAC-SHA256 key: each request carries
    /// `X-Registry-Signature-256: sha256=<hex>` over its body.
    pub secret: Option<String>,
    /// (ours) Only events of repositories matching one of these globs
    /// (`*` within a component, `**` any depth) [default: all].
    #[serde(default)]
    pub repositories: Vec<String>,
    /// (ours) `distribution` (the envelope), `cloudevents` (one structured
    /// CloudEvent per request) or `cloudevents-batch` [default: distribution].
    pub format: Option<String>,
    /// (ours) Actions written to the shared store's outbox before the
    /// request is answered; the others go through this process's memory
    /// [default: push, mount, delete].
    pub durable: Option<Vec<String>>,
}

/// How an endpoint's requests are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"events":[...]}`, `application/vnd.docker.distribution.events.v2+json`.
    Distribution,
    /// One CloudEvent 1.0, structured mode, `application/cloudevents+json`.
    CloudEvents,
    /// A JSON array of CloudEvents, `application/cloudevents-batch+json`.
    CloudEventsBatch,
}

/// An endpoint, resolved.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Time to answer.
    pub timeout: Duration,
    /// Consecutive failures before a pause.
    pub threshold: u32,
    /// Retry schedule.
    pub schedule: Schedule,
    /// Media types not sent.
    pub ignored_media_types: Vec<String>,
    /// Actions not sent.
    pub ignored_actions: Vec<Action>,
    /// HMAC key.
    pub secret: Option<Vec<u8>>,
    /// Repository filter (empty: all).
    pub repositories: Vec<RepositoryPattern>,
    /// Request shape.
    pub format: Format,
    /// Actions written to the outbox.
    pub durable: Vec<Action>,
}

impl Endpoint {
    /// An endpoint from `--notify URL`: the defaults, named `notify-<i>`.
    pub fn from_flag(i: usize, url: &str) -> Result<Endpoint, String> {
        Endpoint::resolve(EndpointSettings {
            name: format!("notify-{i}"),
            url: url.to_owned(),
            ..EndpointSettings::default()
        })
    }

    /// Check and resolve one entry of the config file.
    pub fn resolve(s: EndpointSettings) -> Result<Endpoint, String> {
        let what = format!("notification endpoint {:?}", s.name);
        if !valid_name(&s.name) {
            return Err(format!(
                "{what}: a name is letters, digits, '.', '_' and '-' (at most 128)"
            ));
        }
        if !(s.url.starts_with("http://") || s.url.starts_with("https://"))
            || reqwest::Url::parse(&s.url).is_err()
        {
            return Err(format!("{what}: url {:?} is not an http(s) URL", s.url));
        }
        let actions = |list: &[String]| -> Result<Vec<Action>, String> {
            list.iter()
                .map(|a| a.parse().map_err(|e| format!("{what}: {e}")))
                .collect()
        };
        let format = match s.format.as_deref() {
            None | Some("distribution") => Format::Distribution,
            Some("cloudevents") => Format::CloudEvents,
            Some("cloudevents-batch") => Format::CloudEventsBatch,
            Some(other) => {
                return Err(format!(
                    "{what}: format {other:?}: use distribution, cloudevents or cloudevents-batch"
                ));
            }
        };
        let timeout = s.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        let backoff = s.backoff.map_or(DEFAULT_BACKOFF, |d| d.0);
        let max_backoff = s
            .maxbackoff
            .map_or(DEFAULT_MAX_BACKOFF, |d| d.0)
            .max(backoff);
        let attempts = s.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if attempts == 0 || timeout.is_zero() {
            return Err(format!("{what}: attempts and timeout must be above zero"));
        }
        let mut headers = Vec::new();
        for (name, values) in &s.headers {
            for value in values {
                http::HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("{what}: invalid header name {name:?}"))?;
                http::HeaderValue::try_from(value.as_str())
                    .map_err(|_| format!("{what}: invalid value of header {name}"))?;
                headers.push((name.clone(), value.clone()));
            }
        }
        let mut ignored_media_types = s.ignoredmediatypes;
        ignored_media_types.extend(s.ignore.mediatypes);
        Ok(Endpoint {
            ignored_actions: actions(&s.ignore.actions)?,
            durable: match &s.durable {
                Some(list) => actions(list)?,
                None => vec![Action::Push, Action::Mount, Action::Delete],
            },
            repositories: s
                .repositories
                .iter()
                .map(|p| RepositoryPattern::new(p.as_str()).map_err(|e| format!("{what}: {e}")))
                .collect::<Result<_, _>>()?,
            name: s.name,
            url: s.url,
            headers,
            timeout,
            threshold: s.threshold.unwrap_or(DEFAULT_THRESHOLD).max(1),
            schedule: Schedule {
                backoff,
                max_backoff,
                // An attempt may take the timeout; another process waits
                // that long, and a little more, before taking over.
                lease: timeout + Duration::from_secs(1),
                attempts,
            },
            ignored_media_types,
            secret: s.secret.map(String::into_bytes),
            format,
        })
    }
}

/// Every endpoint: the file's (minus the disabled ones), then the flag's.
/// Names must be unique.
pub fn endpoints(
    file: Option<NotificationsSettings>,
    flags: &[String],
) -> Result<Vec<Endpoint>, String> {
    let mut out = Vec::new();
    for s in file.unwrap_or_default().endpoints {
        if !s.disabled {
            out.push(Endpoint::resolve(s)?);
        }
    }
    for (i, url) in flags.iter().enumerate() {
        out.push(Endpoint::from_flag(i, url)?);
    }
    let mut names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("two notification endpoints are named {:?}", w[0]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_style_entry_resolves() {
        let file: NotificationsSettings = toml::from_str(
            r#"
            [[endpoints]]
            name = "ci"
            url = "https://ci.example/hook"
            headers = { Authorization = ["Bearer t"] }
            timeout = "500ms"
            threshold = 5
            backoff = "2s"
            ignoredmediatypes = ["application/octet-stream"]
            ignore = { mediatypes = ["text/plain"], actions = ["pull"] }
            secret = "k"
            repositories = ["team/**"]
            format = "cloudevents"
            durable = ["push"]
            [[endpoints]]
            name = "off"
            url = "http://x/"
            disabled = true
            "#,
        )
        .unwrap();
        let all = endpoints(Some(file), &["http://127.0.0.1:9/h".into()]).unwrap();
        assert_eq!(all.len(), 2);
        let ci = &all[0];
        assert_eq!(ci.timeout, Duration::from_millis(500));
        assert_eq!(ci.schedule.backoff, Duration::from_secs(2));
        assert_eq!(ci.ignored_media_types.len(), 2);
        assert_eq!(ci.ignored_actions, [Action::Pull]);
        assert_eq!(ci.durable, [Action::Push]);
        assert_eq!(ci.format, Format::CloudEvents);
        assert!(ci.repositories[0].matches("team/a/b"));
        assert_eq!(all[1].name, "notify-0");
        assert_eq!(
            all[1].durable,
            [Action::Push, Action::Mount, Action::Delete]
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        for (entry, needle) in [
            (
                r#"name = "a/b"
                url = "http://x/""#,
                "a name is",
            ),
            (
                r#"name = "a"
                url = "ftp://x/""#,
                "not an http",
            ),
            (
                r#"name = "a"
                url = "http://x/"
                format = "xml""#,
                "format",
            ),
            (
                r#"name = "a"
                url = "http://x/"
                durable = ["fly"]"#,
                "fly",
            ),
        ] {
            let file: NotificationsSettings =
                toml::from_str(&format!("[[endpoints]]\n{entry}")).unwrap();
            let e = endpoints(Some(file), &[]).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let e = endpoints(None, &["http://a/".into(), "http://b/".into()]).unwrap();
        assert_eq!(e.len(), 2);
    }
}
