//! Media types of manifests and the content they reference, and the syntax
//! check applied to every media type found in a manifest.
//!
//! Two kinds of strings are handled here:
//!
//! - media types written inside a manifest (`mediaType`, `artifactType`),
//!   which must be a bare `type/subtype` of restricted names (RFC 6838,
//!   section 4.2, as profiled by the OCI image spec's descriptor schema) and
//!   are compared exactly;
//! - `Content-Type` header values, which may carry parameters
//!   (`; charset=utf-8`) that are ignored, and are compared without regard
//!   to ASCII case, as HTTP media types are case-insensitive.

use std::fmt;

/// OCI image manifest.
pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI content descriptor.
pub const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
/// OCI image configuration.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI empty descriptor content: the two bytes `{}`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, uncompressed tar (deprecated by the spec).
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip-compressed tar (deprecated by the spec).
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd-compressed tar (deprecated by the spec).
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Docker image manifest, version 2 schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list ("fat manifest").
pub const DOCKER_MANIFEST_LIST_V2: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 1 (deprecated, refused on push).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image manifest, signed schema 1 (deprecated, refused on push).
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker container image configuration.
pub const DOCKER_CONTAINER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip-compressed tar.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign layer: fetched from its `urls`, never pushed.
pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker plugin configuration.
pub const DOCKER_PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";

/// Generic JSON. As a `Content-Type` on a manifest push it says nothing
/// about the kind of manifest.
pub const JSON: &str = "application/json";
/// Arbitrary bytes.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The longest name allowed on either side of the `/` (RFC 6838, 4.2).
const MAX_NAME_LEN: usize = 127;

/// The manifest formats this registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManifestKind {
    /// OCI image manifest ([`OCI_IMAGE_MANIFEST`]).
    OciManifest,
    /// OCI image index ([`OCI_IMAGE_INDEX`]).
    OciIndex,
    /// Docker image manifest v2 schema 2 ([`DOCKER_MANIFEST_V2`]).
    DockerManifest,
    /// Docker manifest list ([`DOCKER_MANIFEST_LIST_V2`]).
    DockerManifestList,
}

impl ManifestKind {
    /// Every kind, OCI first.
    pub const ALL: [ManifestKind; 4] = [
        ManifestKind::OciManifest,
        ManifestKind::OciIndex,
        ManifestKind::DockerManifest,
        ManifestKind::DockerManifestList,
    ];

    /// The media type of this kind.
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => OCI_IMAGE_MANIFEST,
            ManifestKind::OciIndex => OCI_IMAGE_INDEX,
            ManifestKind::DockerManifest => DOCKER_MANIFEST_V2,
            ManifestKind::DockerManifestList => DOCKER_MANIFEST_LIST_V2,
        }
    }

    /// A short human-readable name, such as "OCI image index", for messages.
    pub fn name(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => "OCI image manifest",
            ManifestKind::OciIndex => "OCI image index",
            ManifestKind::DockerManifest => "Docker image manifest",
            ManifestKind::DockerManifestList => "Docker manifest list",
        }
    }

    /// The kind whose media type is exactly `media_type`, as written in a
    /// manifest's `mediaType` field. No parameters, case-sensitive.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.media_type() == media_type)
    }

    /// The kind named by a `Content-Type` header value: parameters are
    /// ignored and case does not matter.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = essence(content_type);
        Self::ALL
            .into_iter()
            .find(|k| k.media_type().eq_ignore_ascii_case(essence))
    }

    /// Whether this kind lists other manifests (an index or manifest list)
    /// rather than a config and layers.
    pub fn is_index(self) -> bool {
        matches!(
            self,
            ManifestKind::OciIndex | ManifestKind::DockerManifestList
        )
    }

    /// Whether this is one of the OCI formats, which carry `subject`,
    /// `artifactType` and `annotations`.
    pub fn is_oci(self) -> bool {
        matches!(self, ManifestKind::OciManifest | ManifestKind::OciIndex)
    }
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// The `type/subtype` part of a `Content-Type` value: everything before the
/// first `;`, without surrounding spaces or tabs. The result is not checked.
pub fn essence(content_type: &str) -> &str {
    let bare = match content_type.split_once(';') {
        Some((bare, _params)) => bare,
        None => content_type,
    };
    bare.trim_matches([' ', '\t'])
}

/// Split a media type into its type and subtype if it is well formed: two
/// restricted names (RFC 6838, section 4.2) joined by `/`, each starting with
/// a letter or digit, then at most 126 of `A-Z a-z 0-9 ! # $ & ^ _ . + -`.
/// Parameters, spaces and anything non-ASCII make it ill formed.
///
/// This is the rule the OCI image spec's descriptor schema applies to
/// `mediaType` and `artifactType`.
pub fn parse(media_type: &str) -> Option<(&str, &str)> {
    let (ty, subtype) = media_type.split_once('/')?;
    (is_restricted_name(ty) && is_restricted_name(subtype)).then_some((ty, subtype))
}

/// Whether `media_type` is well formed; see [`parse`].
pub fn is_valid(media_type: &str) -> bool {
    parse(media_type).is_some()
}

/// Whether `media_type` is one of the two Docker schema 1 media types
/// (ASCII case ignored), which this registry refuses.
pub fn is_docker_schema1(media_type: &str) -> bool {
    [DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(media_type))
}

/// Whether a layer of this media type may be absent from the registry and
/// fetched from its descriptor's `urls` instead: Docker foreign layers and
/// OCI non-distributable layers.
pub fn is_foreign_layer(media_type: &str) -> bool {
    [
        DOCKER_FOREIGN_LAYER_TAR_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_TAR,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
    ]
    .contains(&media_type)
}

fn is_restricted_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    first_ok
        && name.len() <= MAX_NAME_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_media_types() {
        for kind in ManifestKind::ALL {
            assert_eq!(ManifestKind::from_media_type(kind.media_type()), Some(kind));
            assert_eq!(kind.to_string(), kind.media_type());
            assert!(is_valid(kind.media_type()));
        }
        assert_eq!(ManifestKind::from_media_type(DOCKER_MANIFEST_V1), None);
        assert_eq!(ManifestKind::from_media_type(JSON), None);
        // The body's mediaType is compared exactly.
        assert_eq!(
            ManifestKind::from_media_type("Application/vnd.oci.image.index.v1+json"),
            None
        );
        assert!(ManifestKind::OciIndex.is_index() && ManifestKind::DockerManifestList.is_index());
        assert!(!ManifestKind::DockerManifest.is_index() && !ManifestKind::DockerManifest.is_oci());
    }

    #[test]
    fn content_type_ignores_parameters_case_and_spaces() {
        let cases = [
            (
                "application/vnd.oci.image.manifest.v1+json",
                Some(ManifestKind::OciManifest),
            ),
            (
                " application/vnd.oci.image.index.v1+json ; charset=utf-8",
                Some(ManifestKind::OciIndex),
            ),
            (
                "Application/VND.docker.distribution.manifest.v2+json;q=1",
                Some(ManifestKind::DockerManifest),
            ),
            ("application/json", None),
            ("", None),
            (";", None),
        ];
        for (ct, want) in cases {
            assert_eq!(ManifestKind::from_content_type(ct), want, "{ct:?}");
        }
        assert_eq!(essence("a/b;c=d"), "a/b");
        assert_eq!(essence("\ta/b \t"), "a/b");
    }

    #[test]
    fn media_type_syntax() {
        let good = [
            OCI_LAYER_TAR_GZIP,
            DOCKER_FOREIGN_LAYER_TAR_GZIP,
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "text/plain",
            "a/b",
            "application/vnd.example+type",
            "x/a!#$&^_.+-",
        ];
        for s in good {
            assert!(is_valid(s), "{s:?}");
        }
        assert_eq!(parse("text/plain"), Some(("text", "plain")));
        let long = format!("application/{}", "a".repeat(127));
        assert!(is_valid(&long));
        let too_long = format!("application/{}", "a".repeat(128));
        let bad = [
            "",
            "/",
            "text",
            "text/",
            "/plain",
            "text/plain/extra",
            "text/plain; charset=utf-8",
            " text/plain",
            "text/pla in",
            "-text/plain",
            "text/.plain",
            "text/plain\n",
            "t\u{e9}xt/plain",
            "text/*",
            &too_long,
        ];
        for s in bad {
            assert!(!is_valid(s), "{s:?}");
        }
    }

    #[test]
    fn schema1_and_foreign_layers() {
        assert!(is_docker_schema1(DOCKER_MANIFEST_V1));
        assert!(is_docker_schema1(&DOCKER_MANIFEST_V1_SIGNED.to_uppercase()));
        assert!(!is_docker_schema1(DOCKER_MANIFEST_V2));
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER_TAR_GZIP));
        assert!(is_foreign_layer(OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP));
        assert!(!is_foreign_layer(OCI_LAYER_TAR_GZIP));
    }
}
