//! OCI content to push: digests, descriptors, manifests, and where the
//! filesystem store keeps blobs.

use std::path::{Path, PathBuf};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    registry_core::Digest::sha256_of(bytes).to_string()
}

/// Where the filesystem store keeps a blob's bytes under `root`
/// (distribution's layout).
pub fn blob_data_path(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    root.join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// The media type of OCI image manifests.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of OCI image indexes.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of OCI image configs.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The media type of gzipped OCI layers.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The media type of Docker v2 schema 2 manifests.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A descriptor's JSON.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": digest(bytes), "size": bytes.len() })
}

/// An OCI image manifest over `config` and `layers`, with optional
/// `artifactType` and `subject` (a descriptor), as bytes.
pub fn image_manifest(
    config: &[u8],
    layers: &[&[u8]],
    artifact_type: Option<&str>,
    subject: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = t.into();
    }
    if let Some(s) = subject {
        m["subject"] = s;
    }
    serde_json::to_vec(&m).unwrap()
}
