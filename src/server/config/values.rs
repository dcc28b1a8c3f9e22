//! The value types of the settings, each validated as it is parsed
//! (from a flag, a variable or the config file alike): sizes, URL
//! patterns, listen addresses, storage URLs, log filters.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A size in bytes, written as a number with an optional binary suffix:
/// `1048576`, `512K`, `64M`, `10G`, `1T` (`KiB`, `MiB`, ... also accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid size {s:?}: expected a number with an optional K, M, G or T suffix")
        })?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
        };
        n.checked_mul(1u64 << shift)
            .filter(|&b| b > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size {s:?}: must be between 1 byte and 16 EiB"))
    }
}

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(i) if i > 0 => Ok(ByteSize(i as u64)),
            toml::Value::String(s) => s.parse(),
            other => Err(format!(
                "invalid size {other:?}: expected a positive integer or a string like \"10G\""
            )),
        }
    }
}

/// A duration written like `90s`, `6h` or `1h 30m`, as a flag, a variable
/// or a string in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub std::time::Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration {s:?} ({e}): write it like 90s, 6h or 1h 30m"))
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// An `http://` or `https://` URL with a host and nothing after it but a
/// path (`--redirect-endpoint`), checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EndpointUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid endpoint URL {s:?}: {why}");
        let uri: http::Uri = s.parse().map_err(|e| bad(&format!("{e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(bad("it must start with http:// or https://"));
        }
        match uri.authority() {
            Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
            _ => return Err(bad("it needs a host, and no user name or password")),
        }
        if uri.query().is_some() {
            return Err(bad("it cannot have a query"));
        }
        Ok(EndpointUrl(s.to_owned()))
    }
}

impl TryFrom<String> for EndpointUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A regular expression for foreign layer URLs (`manifest_urls_allow`,
/// `manifest_urls_deny`), checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UrlPattern(String);

impl UrlPattern {
    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UrlPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        registry_core::ForeignUrlPolicy::check_pattern(s)?;
        Ok(UrlPattern(s.to_owned()))
    }
}

impl TryFrom<String> for UrlPattern {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A listen address, `HOST:PORT`: an IP address (`127.0.0.1:5000`,
/// `[::1]:5000`, `0.0.0.0:5000`) or a host name (`localhost:5000`). Port 0
/// lets the OS pick a free port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr(String);

impl ListenAddr {
    /// The address as given, for binding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!("invalid listen address {s:?}: {why} (expected HOST:PORT, e.g. 127.0.0.1:5000)")
        };
        if s.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(ListenAddr(s.to_owned()));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        port.parse::<u16>()
            .map_err(|_| bad("port is not a number from 0 to 65535"))?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok {
            return Err(bad("host is not an IP address or host name"));
        }
        Ok(ListenAddr(s.to_owned()))
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A storage URL, `SCHEME://...`. Only its shape is checked here; the
/// storage crate parses the rest at start-up. [`fmt::Display`] shows it
/// with any credentials masked, so it is safe to log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StorageUrl(String);

impl StorageUrl {
    /// The URL exactly as given, for the storage crate. Do not log it: use
    /// `Display`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for StorageUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once("://") {
            Some((scheme, _))
                if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Ok(StorageUrl(s.to_owned()))
            }
            _ => Err(format!(
                "invalid storage URL {:?}: expected SCHEME://..., e.g. fs:///var/lib/registry, fs://data, memory:// or s3://bucket/prefix",
                redact(s)
            )),
        }
    }
}

impl TryFrom<String> for StorageUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUrl({:?})", redact(&self.0))
    }
}

/// Mask what could be a credential in a URL: the user-info part
/// (`user:pass@`) and the values of query parameters whose names suggest a
/// secret.
pub fn redact(url: &str) -> String {
    const SECRET_WORDS: [&str; 6] = [
        "secret",
        "password",
        "token",
        "key",
        "credential",
        "signature",
    ];
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if SECRET_WORDS
                        .iter()
                        .any(|w| k.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// How log lines are written: `text` (human-readable) or `json` (one
/// object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// `tracing-subscriber`'s human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("invalid log format {s:?}: expected text or json")),
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A log filter: a `tracing` `EnvFilter` directive such as `info`,
/// `debug` or `info,registry_http=debug`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LogLevel(String);

impl LogLevel {
    /// The directive.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match tracing_subscriber::EnvFilter::try_new(s) {
            Ok(_) if !s.trim().is_empty() => Ok(LogLevel(s.to_owned())),
            Ok(_) => Err(
                "invalid log level \"\": expected e.g. info, debug or info,registry_http=debug"
                    .to_owned(),
            ),
            Err(e) => Err(format!(
                "invalid log level {s:?}: {e} (expected e.g. info, debug or info,registry_http=debug)"
            )),
        }
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
