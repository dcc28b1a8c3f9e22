//! Parsing and validation of pushed manifests: OCI image manifests and
//! image indexes, Docker image manifests (v2 schema 2) and Docker manifest
//! lists.
//!
//! [`Manifest::parse`] reads the exact bytes a client pushed and returns a
//! checked view of them. It never re-serializes: the manifest's digest is
//! the SHA-256 of those bytes, and those bytes are what gets stored. Nothing
//! here does I/O; whether the referenced blobs and manifests exist is for
//! the caller to check, using [`Manifest::blob_references`] and
//! [`Manifest::manifest_references`].
//!
//! # Which kind of manifest
//!
//! The kind comes from the body's `mediaType` and from the request's
//! `Content-Type` (parameters ignored; `application/json`,
//! `application/octet-stream` and an empty value say nothing). When both
//! name a kind they must agree. OCI manifests and indexes may omit
//! `mediaType`, and then the `Content-Type` decides; Docker manifests and
//! manifest lists must carry it, as the Docker registry requires. With
//! neither, the shape decides: a `manifests` field means an OCI index, a
//! `config` or `layers` field an OCI image manifest.
//!
//! Docker schema 1, under either of its media types or as a body with
//! `schemaVersion: 1`, is refused: it is deprecated. Every other manifest
//! must have `schemaVersion: 2`.
//!
//! # Edge cases, decided
//!
//! - An image manifest may have an empty `layers` array. The image spec only
//!   says it SHOULD have one entry, and artifacts are pushed without layers.
//! - An image manifest whose config is the empty descriptor should carry an
//!   `artifactType`, but this is a rule for clients that the reference
//!   registries do not enforce, so neither does this one.
//! - An index entry's `platform` is optional, including in Docker manifest
//!   lists. The Docker document lists the field without saying it is
//!   required, the Docker registry accepts entries without it, and
//!   build tools push entries (attestations) that carry no meaningful
//!   platform. When present it must be an object with string
//!   `architecture` and `os`.
//! - An image manifest with a `manifests` field, or an index with a `config`
//!   or `layers` field, is refused: such a document could be read as either
//!   kind by different clients (the ambiguity behind CVE-2021-41190).
//! - `subject`, `artifactType` and manifest-level `annotations` belong to
//!   the OCI formats; in Docker manifests they are ignored like any other
//!   unknown field.
//! - A field set to `null` counts as absent. An empty `artifactType` counts
//!   as absent.
//! - JSON nested deeper than 128 levels is refused by the JSON parser with
//!   an error, never a stack overflow.
//! - `urls` are accepted on non-distributable (foreign) layers only, and
//!   refused on the config, ordinary layers, index entries and the subject:
//!   a descriptor with `urls` is not looked for in the registry, so
//!   anywhere else they would let a manifest point at content the registry
//!   does not have. Where foreign URLs may point is checked separately,
//!   against a [`ForeignUrlPolicy`] (see [`Manifest::check_foreign_urls`]).

mod descriptor;
mod json;
#[cfg(test)]
mod tests;
mod urls;

use std::collections::BTreeMap;

use serde_json::Value;

pub use self::descriptor::Descriptor;
use self::json::{Object, field, invalid};
pub use self::urls::ForeignUrlPolicy;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::media_type::{self, ManifestKind};

/// Limits applied to a manifest before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestLimits {
    /// The largest manifest accepted, in bytes. Larger ones fail with
    /// [`ErrorKind::TooLarge`].
    pub max_size: usize,
}

impl ManifestLimits {
    /// The default size limit: 4 MiB, the size the distribution spec says
    /// registries should expect to accept.
    pub const DEFAULT_MAX_SIZE: usize = 4 * 1024 * 1024;
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_size: Self::DEFAULT_MAX_SIZE,
        }
    }
}

/// A parsed and validated manifest of one of the four supported kinds.
///
/// It does not hold the bytes it was parsed from; the caller keeps and
/// stores those unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    kind: ManifestKind,
    digest: Digest,
    size: u64,
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parse and validate `bytes`, pushed with the given `Content-Type`
    /// header value.
    ///
    /// Fails with [`ErrorKind::TooLarge`] if `bytes` is longer than
    /// `limits.max_size`, and with [`ErrorKind::ManifestInvalid`] for
    /// everything else: not JSON, not an object, an unsupported or
    /// conflicting media type, Docker schema 1, a wrong `schemaVersion`, a
    /// missing or malformed field, `urls` anywhere but on a foreign layer.
    /// Never panics.
    pub fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
        limits: &ManifestLimits,
    ) -> Result<Self> {
        if bytes.len() > limits.max_size {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "manifest is {} bytes, more than the limit of {} bytes",
                    bytes.len(),
                    limits.max_size
                ),
            ));
        }
        let header_kind = content_type
            .map(kind_from_content_type)
            .transpose()?
            .flatten();
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
        let obj = json::as_object(&value, "manifest")?;
        let body_kind = kind_from_body(obj)?;
        check_schema_version(obj)?;
        let kind = match (header_kind, body_kind) {
            (Some(header), Some(body)) if header != body => {
                return Err(invalid(format!(
                    "Content-Type {header} does not match the manifest's mediaType {body}"
                )));
            }
            (Some(kind), _) | (None, Some(kind)) => kind,
            (None, None) => detect_kind(obj)?,
        };
        if !kind.is_oci() && body_kind.is_none() {
            return Err(invalid(format!(
                "mediaType is required in a {}",
                kind.name()
            )));
        }
        Self::validate(kind, obj, bytes)
    }

    fn validate(kind: ManifestKind, obj: &Object, bytes: &[u8]) -> Result<Self> {
        let mut manifest = Manifest {
            kind,
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        };
        if kind.is_index() {
            forbid(obj, kind, &["config", "layers"])?;
            manifest.manifests = descriptor_list(obj, "manifests")?;
        } else {
            forbid(obj, kind, &["manifests"])?;
            let config = json::required(obj, "", "config")?;
            manifest.config = Some(Descriptor::from_value(config, "config")?);
            manifest.layers = descriptor_list(obj, "layers")?;
        }
        if kind.is_oci() {
            manifest.subject = field(obj, "subject")
                .map(|v| Descriptor::from_value(v, "subject"))
                .transpose()?;
            manifest.artifact_type = json::optional_media_type(obj, "", "artifactType")?;
            manifest.annotations = json::annotations(obj, "")?;
        }
        manifest.check_url_placement()?;
        Ok(manifest)
    }

    /// `urls` only on foreign layers.
    fn check_url_placement(&self) -> Result<()> {
        if let Some(config) = &self.config {
            urls::check_placement(config, "config", false)?;
        }
        for (i, d) in self.layers.iter().enumerate() {
            urls::check_placement(d, &format!("layers[{i}]"), true)?;
        }
        for (i, d) in self.manifests.iter().enumerate() {
            urls::check_placement(d, &format!("manifests[{i}]"), false)?;
        }
        if let Some(subject) = &self.subject {
            urls::check_placement(subject, "subject", false)?;
        }
        Ok(())
    }

    /// Check the URLs of the foreign layers against `policy`: fails with
    /// [`ErrorKind::ManifestInvalid`] naming the first URL it refuses. A
    /// manifest without URLs passes any policy.
    pub fn check_foreign_urls(&self, policy: &ForeignUrlPolicy) -> Result<()> {
        policy.check(&self.layers, "layers")
    }

    /// The kind of manifest.
    pub fn kind(&self) -> ManifestKind {
        self.kind
    }

    /// The manifest's media type, to be served as its `Content-Type`.
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }

    /// The SHA-256 digest of the exact bytes parsed.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The length of the bytes parsed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The config descriptor of an image manifest; `None` for an index.
    pub fn config(&self) -> Option<&Descriptor> {
        self.config.as_ref()
    }

    /// The layers of an image manifest, base first; empty for an index.
    pub fn layers(&self) -> &[Descriptor] {
        &self.layers
    }

    /// The entries of an index; empty for an image manifest.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// The manifest this one refers to (OCI only), which makes it appear in
    /// that manifest's referrers list.
    pub fn subject(&self) -> Option<&Descriptor> {
        self.subject.as_ref()
    }

    /// The `artifactType` field as written (OCI only).
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// The artifact type the referrers API reports for this manifest: its
    /// `artifactType` if set; otherwise, for an image manifest, the config's
    /// media type; otherwise (an index) none.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(Descriptor::media_type))
    }

    /// The manifest-level annotations (OCI only); empty if none.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// The descriptors that must exist as blobs in the repository: the
    /// config and the layers of an image manifest. Only layers with a
    /// foreign media type (see [`media_type::is_foreign_layer`]) can have
    /// `urls`, and may be meant to be fetched from there; whether to check
    /// for them, and where they may point
    /// ([`check_foreign_urls`](Self::check_foreign_urls)), is the caller's
    /// policy.
    pub fn blob_references(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers)
    }

    /// The descriptors that must exist as manifests in the repository: the
    /// entries of an index.
    pub fn manifest_references(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter()
    }

    /// Every descriptor the manifest depends on: blob references, then
    /// manifest references. The `subject` is not among them: it is a weak
    /// link and may be pushed after this manifest.
    pub fn references(&self) -> impl Iterator<Item = &Descriptor> {
        self.blob_references().chain(self.manifest_references())
    }

    /// A descriptor of this manifest: media type, digest and size.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type().to_owned(),
            digest: self.digest.clone(),
            size: self.size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        }
    }

    /// The descriptor of this manifest as listed in a referrers response:
    /// media type, digest, size, the
    /// [effective artifact type](Self::effective_artifact_type) and the
    /// manifest's annotations.
    pub fn referrer_descriptor(&self) -> Descriptor {
        Descriptor {
            artifact_type: self.effective_artifact_type().map(str::to_owned),
            annotations: self.annotations.clone(),
            ..self.descriptor()
        }
    }
}

/// The media type of a stored manifest whose media type was not recorded:
/// the body's `mediaType` if it is a well-formed media type, otherwise a
/// Docker schema 1 type for a body with `schemaVersion: 1`, otherwise the
/// kind told by the body's shape as in [`Manifest::parse`]. `None` if none
/// of these applies or the bytes are not a JSON object. Applies no size
/// limit and never panics.
pub fn detect_media_type(bytes: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let obj = value.as_object()?;
    if let Some(s) = field(obj, "mediaType")
        .and_then(Value::as_str)
        .filter(|s| media_type::is_valid(s))
    {
        return Some(s.to_owned());
    }
    if field(obj, "schemaVersion").and_then(Value::as_i64) == Some(1) {
        let schema1 = if obj.contains_key("signatures") {
            media_type::DOCKER_MANIFEST_V1_SIGNED
        } else {
            media_type::DOCKER_MANIFEST_V1
        };
        return Some(schema1.to_owned());
    }
    detect_kind(obj).ok().map(|k| k.media_type().to_owned())
}

fn schema1_refused() -> Error {
    invalid(
        "Docker image manifest schema 1 is deprecated and not supported; \
         push an OCI image manifest or a Docker schema 2 manifest",
    )
}

/// The kind named by a `Content-Type` value: `None` if it says nothing
/// about the kind.
fn kind_from_content_type(content_type: &str) -> Result<Option<ManifestKind>> {
    let essence = media_type::essence(content_type);
    if essence.is_empty()
        || essence.eq_ignore_ascii_case(media_type::JSON)
        || essence.eq_ignore_ascii_case(media_type::OCTET_STREAM)
    {
        return Ok(None);
    }
    if media_type::is_docker_schema1(essence) {
        return Err(schema1_refused());
    }
    ManifestKind::from_content_type(essence)
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "unsupported manifest media type in Content-Type: {}",
                json::quote(essence)
            ))
        })
}

/// The kind named by the body's `mediaType`, if it has one.
fn kind_from_body(obj: &Object) -> Result<Option<ManifestKind>> {
    let Some(v) = field(obj, "mediaType") else {
        return Ok(None);
    };
    let s = json::as_str(v, "mediaType")?;
    if media_type::is_docker_schema1(s) {
        return Err(schema1_refused());
    }
    ManifestKind::from_media_type(s).map(Some).ok_or_else(|| {
        invalid(format!(
            "unsupported manifest mediaType: {}",
            json::quote(s)
        ))
    })
}

fn check_schema_version(obj: &Object) -> Result<()> {
    let v = json::required(obj, "", "schemaVersion")?;
    match v.as_i64() {
        Some(2) => Ok(()),
        Some(1) => Err(schema1_refused()),
        _ => Err(invalid(match v {
            Value::Number(n) => format!("schemaVersion must be 2, found {n}"),
            other => format!("schemaVersion must be 2, found {}", json::type_name(other)),
        })),
    }
}

/// The kind told by the shape of a body with no media type anywhere.
fn detect_kind(obj: &Object) -> Result<ManifestKind> {
    let index_like = field(obj, "manifests").is_some();
    let image_like = field(obj, "config").is_some() || field(obj, "layers").is_some();
    match (index_like, image_like) {
        (true, false) => Ok(ManifestKind::OciIndex),
        (false, true) => Ok(ManifestKind::OciManifest),
        (true, true) => Err(invalid(
            "manifest has both manifests and config or layers, and no mediaType to tell \
             which kind it is",
        )),
        (false, false) => Err(invalid(
            "cannot tell the kind of manifest: no mediaType, no Content-Type, and neither \
             manifests nor config and layers",
        )),
    }
}

/// Refuse fields that belong to the other family of manifests.
fn forbid(obj: &Object, kind: ManifestKind, keys: &[&str]) -> Result<()> {
    match keys.iter().find(|key| field(obj, key).is_some()) {
        Some(key) => Err(invalid(format!(
            "{} must not have a {key} field",
            kind.name()
        ))),
        None => Ok(()),
    }
}

/// A required array of descriptors, such as `layers`.
fn descriptor_list(obj: &Object, key: &str) -> Result<Vec<Descriptor>> {
    json::as_array(json::required(obj, "", key)?, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| Descriptor::from_value(v, &format!("{key}[{i}]")))
        .collect()
}
