//! Content descriptors: the typed, sized, digested references that link a
//! manifest to its config, layers, child manifests and subject.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::json::{self, Object, invalid, path};
use crate::digest::Digest;
use crate::error::Result;
use crate::media_type;

/// A validated content descriptor.
///
/// Parsing checks what the image spec requires of every descriptor: a
/// well-formed `mediaType`, a valid `digest`, a `size` that is a
/// non-negative int64, `urls` as an array of strings, `annotations` as a map
/// of strings to strings, a well-formed `artifactType`, and a `platform`
/// object with string `architecture` and `os`. The optional `data` field
/// must be a string but is not kept. Unknown fields are ignored, as the
/// spec requires.
///
/// Serializing writes `mediaType`, `digest`, `size` and whichever optional
/// fields are set, which is the shape of a descriptor in the referrers
/// response (see [`Manifest::referrer_descriptor`](super::Manifest::referrer_descriptor)).
/// Deserializing applies the same checks as manifest parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub(super) media_type: String,
    pub(super) digest: Digest,
    pub(super) size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) urls: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) platform: Option<Value>,
}

impl Descriptor {
    /// A descriptor with only the required fields. Fails with
    /// `ManifestInvalid` if `media_type` is not well formed or `size` does
    /// not fit in an int64.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Result<Self> {
        if !media_type::is_valid(media_type) {
            return Err(invalid(format!(
                "not a valid media type: {}",
                json::quote(media_type)
            )));
        }
        if i64::try_from(size).is_err() {
            return Err(invalid(format!("size {size} is larger than an int64")));
        }
        Ok(Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        })
    }

    /// Set the artifact type; `None` removes it. Fails with
    /// `ManifestInvalid` if it is not a well-formed media type.
    pub fn with_artifact_type(mut self, artifact_type: Option<&str>) -> Result<Self> {
        if let Some(t) = artifact_type.filter(|t| !media_type::is_valid(t)) {
            return Err(invalid(format!(
                "artifactType is not a valid media type: {}",
                json::quote(t)
            )));
        }
        self.artifact_type = artifact_type.map(str::to_owned);
        Ok(self)
    }

    /// Replace the annotations.
    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.annotations = annotations;
        self
    }

    /// The media type of the referenced content.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The digest of the referenced content.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size of the referenced content in bytes, at most `i64::MAX`.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Other locations the content may be fetched from; empty if none.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The descriptor's annotations; empty if none.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// The artifact type of the referenced content, if given.
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// The `platform` object (as found in index entries), if given. It has
    /// string `architecture` and `os` fields; other fields are kept as sent.
    pub fn platform(&self) -> Option<&Value> {
        self.platform.as_ref()
    }

    /// Check `value` as a descriptor found at `at` (a path such as
    /// `layers[0]`, used in messages).
    pub(super) fn from_value(value: &Value, at: &str) -> Result<Self> {
        let obj = json::as_object(value, at)?;
        let media_type = json::media_type(
            json::required(obj, at, "mediaType")?,
            &path(at, "mediaType"),
        )?;
        let digest = digest(json::required(obj, at, "digest")?, &path(at, "digest"))?;
        let size = json::size(json::required(obj, at, "size")?, &path(at, "size"))?;
        let urls = match json::field(obj, "urls") {
            Some(v) => json::string_list(v, &path(at, "urls"))?,
            None => Vec::new(),
        };
        if let Some(v) = json::field(obj, "data") {
            json::as_str(v, &path(at, "data"))?;
        }
        Ok(Descriptor {
            media_type,
            digest,
            size,
            urls,
            annotations: json::annotations(obj, at)?,
            artifact_type: json::optional_media_type(obj, at, "artifactType")?,
            platform: json::field(obj, "platform")
                .map(|v| platform(v, &path(at, "platform")))
                .transpose()?,
        })
    }
}

impl<'de> Deserialize<'de> for Descriptor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Descriptor::from_value(&value, "descriptor")
            .map_err(|e| serde::de::Error::custom(e.message()))
    }
}

fn digest(v: &Value, at: &str) -> Result<Digest> {
    let s = json::as_str(v, at)?;
    Digest::parse(s).map_err(|e| {
        invalid(format!("{at} is not a valid digest: {}", json::quote(s))).with_source(e)
    })
}

/// Check a `platform` object: the fields the image index schema defines
/// must have its types; others are kept untouched.
fn platform(v: &Value, at: &str) -> Result<Value> {
    let obj: &Object = json::as_object(v, at)?;
    for key in ["architecture", "os"] {
        json::as_str(json::required(obj, at, key)?, &path(at, key))?;
    }
    for key in ["os.version", "variant"] {
        if let Some(v) = json::field(obj, key) {
            json::as_str(v, &path(at, key))?;
        }
    }
    for key in ["os.features", "features"] {
        if let Some(v) = json::field(obj, key) {
            json::string_list(v, &path(at, key))?;
        }
    }
    Ok(v.clone())
}
