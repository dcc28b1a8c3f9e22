use super::*;
use crate::media_type::*;

/// The image manifest example of the OCI image spec, with a subject.
const OCI_MANIFEST: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "size": 16724,
      "annotations": { "org.opencontainers.image.title": "layer.tar.gz" }
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
      "size": 73109
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {
    "com.example.key1": "value1",
    "com.example.key2": "value2"
  }
}"#;

/// The image index example of the OCI image spec, with a nested index.
const OCI_INDEX: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": { "architecture": "ppc64le", "os": "linux" }
    },
    {
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "size": 7682,
      "digest": "sha256:601570aaff1b68a61eb9c85b8beca1644e698003e0cdb5bce960f193d265a8b7"
    }
  ],
  "annotations": { "com.example.key1": "value1" }
}"#;

/// The image manifest example of the Docker schema 2 document.
const DOCKER_MANIFEST: &str = r#"{
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
        "size": 7023
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
            "size": 32654
        },
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
            "size": 16724,
            "urls": ["https://example.com/layer.tar.gz"]
        }
    ]
}"#;

/// The manifest list example of the Docker schema 2 document; its second
/// entry has no platform (see the module docs).
const DOCKER_LIST: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "size": 7143,
      "platform": { "architecture": "arm", "os": "linux", "variant": "v7", "features": ["sse4"] }
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "size": 7682
    }
  ]
}"#;

/// An artifact with an empty config, from the image spec's artifact
/// guidance.
const ARTIFACT: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example+type",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30="
  },
  "layers": [],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": { "org.opencontainers.image.created": "2023-01-02T03:04:05Z" }
}"#;

const CONFIG: &str = r#""config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7", "size": 7023}"#;

fn parse(body: impl AsRef<[u8]>, content_type: Option<&str>) -> Result<Manifest> {
    Manifest::parse(body.as_ref(), content_type, &ManifestLimits::default())
}

/// An image manifest body (no mediaType) with `layer` as its one layer.
fn with_layer(layer: &str) -> String {
    format!(r#"{{"schemaVersion": 2, {CONFIG}, "layers": [{layer}]}}"#)
}

#[track_caller]
fn assert_invalid(body: impl AsRef<[u8]>, content_type: Option<&str>, needle: &str) {
    let body = body.as_ref();
    match parse(body, content_type) {
        Ok(m) => panic!(
            "accepted {:?} as {:?}",
            String::from_utf8_lossy(body),
            m.kind()
        ),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ManifestInvalid, "{e}");
            assert!(
                e.message().contains(needle),
                "message {:?} lacks {needle:?}",
                e.message()
            );
        }
    }
}

#[test]
fn oci_image_manifest() {
    let m = parse(OCI_MANIFEST, Some(OCI_IMAGE_MANIFEST)).unwrap();
    assert_eq!(m.kind(), ManifestKind::OciManifest);
    assert_eq!(m.media_type(), OCI_IMAGE_MANIFEST);
    assert_eq!(m.digest(), &Digest::sha256_of(OCI_MANIFEST.as_bytes()));
    assert_eq!(m.size(), OCI_MANIFEST.len() as u64);
    let config = m.config().unwrap();
    assert_eq!(config.media_type(), OCI_IMAGE_CONFIG);
    assert_eq!(config.size(), 7023);
    assert_eq!(m.layers().len(), 3);
    assert_eq!(
        m.layers()[1].annotations()["org.opencontainers.image.title"],
        "layer.tar.gz"
    );
    assert!(m.manifests().is_empty());
    assert_eq!(
        m.subject().unwrap().digest().to_string(),
        "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
    );
    assert_eq!(m.annotations().len(), 2);
    assert_eq!(m.artifact_type(), None);
    assert_eq!(m.blob_references().count(), 4);
    assert_eq!(m.manifest_references().count(), 0);
    let refs: Vec<_> = m.references().map(|d| d.size()).collect();
    assert_eq!(refs, [7023, 32654, 16724, 73109]);
}

#[test]
fn oci_image_index() {
    let m = parse(OCI_INDEX, None).unwrap();
    assert_eq!(m.kind(), ManifestKind::OciIndex);
    assert!(m.config().is_none() && m.layers().is_empty());
    assert_eq!(m.manifests().len(), 2);
    assert_eq!(m.manifest_references().count(), 2);
    assert_eq!(m.blob_references().count(), 0);
    let platform = m.manifests()[0].platform().unwrap();
    assert_eq!(platform["architecture"], "ppc64le");
    assert_eq!(m.manifests()[1].media_type(), OCI_IMAGE_INDEX);
    assert_eq!(m.manifests()[1].platform(), None);
    assert_eq!(m.effective_artifact_type(), None);
    // An index may list nothing.
    let empty = r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}"#;
    assert!(parse(empty, None).unwrap().manifests().is_empty());
}

#[test]
fn docker_manifest_and_list() {
    let m = parse(DOCKER_MANIFEST, Some(DOCKER_MANIFEST_V2)).unwrap();
    assert_eq!(m.kind(), ManifestKind::DockerManifest);
    assert_eq!(m.config().unwrap().media_type(), DOCKER_CONTAINER_CONFIG);
    let foreign = &m.layers()[1];
    assert!(is_foreign_layer(foreign.media_type()));
    assert_eq!(foreign.urls(), ["https://example.com/layer.tar.gz"]);

    let l = parse(DOCKER_LIST, None).unwrap();
    assert_eq!(l.kind(), ManifestKind::DockerManifestList);
    assert_eq!(l.manifests().len(), 2);
    assert_eq!(l.manifests()[0].platform().unwrap()["variant"], "v7");
    assert_eq!(l.manifests()[1].platform(), None);
}

#[test]
fn docker_manifests_ignore_oci_only_fields() {
    let body = DOCKER_MANIFEST.replacen(
        "\"schemaVersion\": 2,",
        r#""schemaVersion": 2, "artifactType": "not a media type", "annotations": 7,"#,
        1,
    );
    let m = parse(&body, None).unwrap();
    assert_eq!(m.artifact_type(), None);
    assert!(m.annotations().is_empty());
    assert_eq!(m.effective_artifact_type(), Some(DOCKER_CONTAINER_CONFIG));
}

#[test]
fn kind_comes_from_content_type_when_the_body_has_no_media_type() {
    let manifest = OCI_MANIFEST.replacen(
        r#""mediaType": "application/vnd.oci.image.manifest.v1+json","#,
        "",
        1,
    );
    let index = OCI_INDEX.replacen(
        r#""mediaType": "application/vnd.oci.image.index.v1+json","#,
        "",
        1,
    );
    assert!(manifest != OCI_MANIFEST && index != OCI_INDEX);
    let cases = [
        (
            &manifest,
            Some(OCI_IMAGE_MANIFEST),
            ManifestKind::OciManifest,
        ),
        (
            &manifest,
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            ManifestKind::OciManifest,
        ),
        (&manifest, None, ManifestKind::OciManifest),
        (
            &manifest,
            Some("application/json"),
            ManifestKind::OciManifest,
        ),
        (&manifest, Some(""), ManifestKind::OciManifest),
        (
            &index,
            Some("Application/VND.oci.image.index.v1+JSON"),
            ManifestKind::OciIndex,
        ),
        (&index, None, ManifestKind::OciIndex),
    ];
    for (body, ct, want) in cases {
        assert_eq!(parse(body, ct).unwrap().kind(), want, "{ct:?}");
    }
    // With both present and agreeing, parameters are ignored.
    let m = parse(
        DOCKER_LIST,
        Some(&format!("{DOCKER_MANIFEST_LIST_V2};charset=utf-8")),
    )
    .unwrap();
    assert_eq!(m.kind(), ManifestKind::DockerManifestList);
}

#[test]
fn artifact_type_subject_and_effective_artifact_type() {
    let a = parse(ARTIFACT, Some(OCI_IMAGE_MANIFEST)).unwrap();
    assert_eq!(a.artifact_type(), Some("application/vnd.example+type"));
    assert_eq!(
        a.effective_artifact_type(),
        Some("application/vnd.example+type")
    );
    assert!(a.layers().is_empty());
    assert!(a.subject().is_some());

    // Without artifactType, an image manifest's artifact type is its
    // config's media type; an empty artifactType counts as missing.
    for patch in ["", r#""artifactType": "","#] {
        let body = ARTIFACT
            .replacen(
                r#""artifactType": "application/vnd.example+type","#,
                patch,
                1,
            )
            .replacen(OCI_EMPTY, "application/vnd.example.config.v1+json", 1);
        let m = parse(&body, None).unwrap();
        assert_eq!(m.artifact_type(), None);
        assert_eq!(
            m.effective_artifact_type(),
            Some("application/vnd.example.config.v1+json")
        );
    }

    // An index has one only if it says so.
    let index = OCI_INDEX.replacen(
        r#""schemaVersion": 2,"#,
        r#""schemaVersion": 2, "artifactType": "application/vnd.food.stand","#,
        1,
    );
    assert_eq!(
        parse(&index, None).unwrap().effective_artifact_type(),
        Some("application/vnd.food.stand")
    );
    assert_eq!(
        parse(OCI_INDEX, None).unwrap().effective_artifact_type(),
        None
    );
}

#[test]
fn referrer_descriptor_carries_artifact_type_and_annotations() {
    let m = parse(ARTIFACT, None).unwrap();
    let d = serde_json::to_value(m.referrer_descriptor()).unwrap();
    assert_eq!(
        d,
        serde_json::json!({
            "mediaType": OCI_IMAGE_MANIFEST,
            "digest": Digest::sha256_of(ARTIFACT.as_bytes()).to_string(),
            "size": ARTIFACT.len(),
            "annotations": { "org.opencontainers.image.created": "2023-01-02T03:04:05Z" },
            "artifactType": "application/vnd.example+type",
        })
    );
    let index = parse(OCI_INDEX, None).unwrap().referrer_descriptor();
    assert_eq!(index.artifact_type(), None);
    let plain = serde_json::to_value(m.descriptor()).unwrap();
    assert_eq!(plain.as_object().unwrap().len(), 3);
}

#[test]
fn digest_is_of_the_exact_bytes() {
    let compact =
        serde_json::to_vec(&serde_json::from_str::<Value>(OCI_MANIFEST).unwrap()).unwrap();
    let crlf = OCI_MANIFEST.replace('\n', "\r\n");
    let padded = format!("\n\t {OCI_MANIFEST} \n");
    let bodies = [
        OCI_MANIFEST.as_bytes(),
        &compact,
        crlf.as_bytes(),
        padded.as_bytes(),
    ];
    let mut digests = Vec::new();
    for body in bodies {
        let m = parse(body, None).unwrap();
        assert_eq!(m.digest(), &Digest::sha256_of(body));
        assert_eq!(m.size(), body.len() as u64);
        assert_eq!(m.layers().len(), 3);
        digests.push(m.digest().clone());
    }
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), bodies.len());
}

#[test]
fn refuses_docker_schema_1() {
    let schema1 = r#"{"schemaVersion": 1, "name": "hello-world", "tag": "latest", "architecture": "amd64",
        "fsLayers": [{"blobSum": "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}],
        "history": [{"v1Compatibility": "{}"}]}"#;
    let needle = "schema 1 is deprecated and not supported";
    assert_invalid(schema1, None, needle);
    assert_invalid(schema1, Some(DOCKER_MANIFEST_V1), needle);
    assert_invalid(OCI_MANIFEST, Some(DOCKER_MANIFEST_V1_SIGNED), needle);
    assert_invalid(
        r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}"#,
        None,
        needle,
    );
}

#[test]
fn refuses_wrong_or_conflicting_media_types() {
    assert_invalid(
        OCI_MANIFEST,
        Some(OCI_IMAGE_INDEX),
        "does not match the manifest's mediaType",
    );
    assert_invalid(
        DOCKER_MANIFEST,
        Some(OCI_IMAGE_MANIFEST),
        "does not match the manifest's mediaType",
    );
    assert_invalid(
        OCI_MANIFEST,
        Some("text/html"),
        "unsupported manifest media type",
    );
    assert_invalid(
        OCI_MANIFEST,
        Some("garbage"),
        "unsupported manifest media type",
    );
    assert_invalid(
        OCI_MANIFEST.replacen(OCI_IMAGE_MANIFEST, OCI_EMPTY, 1),
        Some(OCI_IMAGE_MANIFEST),
        "unsupported manifest mediaType",
    );
    assert_invalid(
        OCI_MANIFEST.replacen(
            OCI_IMAGE_MANIFEST,
            "application/vnd.example.manifest.v9+json",
            1,
        ),
        None,
        "unsupported manifest mediaType",
    );
    assert_invalid(
        r#"{"schemaVersion": 2, "mediaType": 7, "manifests": []}"#,
        None,
        "mediaType must be a string, found a number",
    );
    // Docker formats must say what they are in the body.
    let no_media_type = DOCKER_MANIFEST.replacen(
        r#""mediaType": "application/vnd.docker.distribution.manifest.v2+json","#,
        "",
        1,
    );
    assert_invalid(
        &no_media_type,
        Some(DOCKER_MANIFEST_V2),
        "mediaType is required in a Docker image manifest",
    );
}

#[test]
fn refuses_bad_schema_versions() {
    let body = |v: &str| format!(r#"{{"schemaVersion": {v}, "manifests": []}}"#);
    assert_invalid(body("3"), None, "schemaVersion must be 2, found 3");
    assert_invalid(body("2.0"), None, "schemaVersion must be 2, found 2.0");
    assert_invalid(
        body("\"2\""),
        None,
        "schemaVersion must be 2, found a string",
    );
    assert_invalid(body("null"), None, "schemaVersion is required");
    assert_invalid(r#"{"manifests": []}"#, None, "schemaVersion is required");
}

#[test]
fn refuses_missing_or_misplaced_fields() {
    let cases = [
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}"#,
            "config is required",
        ),
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": null, "layers": []}"#,
            "config is required",
        ),
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}"#,
            "manifests is required",
        ),
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"}"#,
            "manifests is required",
        ),
        (
            r#"{"schemaVersion": 2, "manifests": {}}"#,
            "manifests must be an array, found an object",
        ),
        (
            r#"{"schemaVersion": 2, "manifests": [], "layers": []}"#,
            "both manifests and config or layers",
        ),
        (
            r#"{"schemaVersion": 2}"#,
            "cannot tell the kind of manifest",
        ),
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [], "config": {}}"#,
            "OCI image index must not have a config field",
        ),
        (
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {}, "layers": [], "manifests": []}"#,
            "Docker image manifest must not have a manifests field",
        ),
    ];
    for (body, needle) in cases {
        assert_invalid(body, None, needle);
    }
    // No layers at all is refused; an empty array is accepted.
    let no_layers = format!(r#"{{"schemaVersion": 2, {CONFIG}}}"#);
    assert_invalid(&no_layers, Some(OCI_IMAGE_MANIFEST), "layers is required");
    let empty_layers = format!(r#"{{"schemaVersion": 2, {CONFIG}, "layers": []}}"#);
    assert!(parse(&empty_layers, None).unwrap().layers().is_empty());
}

#[test]
fn refuses_malformed_descriptors() {
    const D: &str = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0";
    let layer = |fields: &str| with_layer(&format!("{{{fields}}}"));
    let ok = format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": 1"#);
    assert!(parse(layer(&ok), None).is_ok());
    let upper = D.to_uppercase().replacen("SHA256", "sha256", 1);
    let cases = [
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "sha256:abc", "size": 1"#),
            "layers[0].digest is not a valid digest: \"sha256:abc\"",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{upper}", "size": 1"#),
            "layers[0].digest is not a valid digest",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": 12, "size": 1"#),
            "layers[0].digest must be a string, found a number",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "size": 1"#),
            "layers[0].digest is required",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": -1"#),
            "layers[0].size must not be negative, found -1",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": "12""#),
            "layers[0].size must be an integer, found a string",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": 1.5"#),
            "layers[0].size must be an integer, found 1.5",
        ),
        (
            format!(
                r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": 9223372036854775808"#
            ),
            "layers[0].size is out of range",
        ),
        (
            format!(r#""mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}""#),
            "layers[0].size is required",
        ),
        (
            format!(r#""digest": "{D}", "size": 1"#),
            "layers[0].mediaType is required",
        ),
        (
            format!(r#""mediaType": "tar+gzip", "digest": "{D}", "size": 1"#),
            "layers[0].mediaType is not a valid media type: \"tar+gzip\"",
        ),
        (
            format!(r#""mediaType": "text/plain; charset=utf-8", "digest": "{D}", "size": 1"#),
            "layers[0].mediaType is not a valid media type",
        ),
        (
            format!(r#"{ok}, "urls": "https://example.com""#),
            "layers[0].urls must be an array, found a string",
        ),
        (
            format!(r#"{ok}, "urls": ["https://example.com", 3]"#),
            "layers[0].urls[1] must be a string, found a number",
        ),
        (
            format!(r#"{ok}, "annotations": ["a"]"#),
            "layers[0].annotations must be an object, found an array",
        ),
        (
            format!(r#"{ok}, "annotations": {{"k": true}}"#),
            "layers[0].annotations[\"k\"] must be a string, found a boolean",
        ),
        (
            format!(r#"{ok}, "artifactType": "sbom""#),
            "layers[0].artifactType is not a valid media type",
        ),
        (
            format!(r#"{ok}, "data": 42"#),
            "layers[0].data must be a string",
        ),
        (
            format!(r#"{ok}, "platform": {{"architecture": "amd64"}}"#),
            "layers[0].platform.os is required",
        ),
        (
            format!(
                r#"{ok}, "platform": {{"architecture": "amd64", "os": "linux", "os.features": [1]}}"#
            ),
            "layers[0].platform.os.features[0] must be a string",
        ),
    ];
    for (fields, needle) in cases {
        assert_invalid(layer(&fields), None, needle);
    }
    assert_invalid(
        with_layer("\"not an object\""),
        None,
        "layers[0] must be an object, found a string",
    );

    // Manifest-level fields.
    let top = |extra: &str| format!(r#"{{"schemaVersion": 2, {CONFIG}, "layers": [], {extra}}}"#);
    assert_invalid(
        top(r#""artifactType": "nope""#),
        None,
        "artifactType is not a valid media type",
    );
    assert_invalid(
        top(r#""annotations": {"a": 1}"#),
        None,
        "annotations[\"a\"] must be a string",
    );
    assert_invalid(
        top(r#""subject": {"mediaType": "a/b", "size": 1}"#),
        None,
        "subject.digest is required",
    );
    assert_invalid(
        top(r#""subject": []"#),
        None,
        "subject must be an object, found an array",
    );
    // null counts as absent.
    let m = parse(
        top(r#""subject": null, "annotations": null, "artifactType": null"#),
        None,
    )
    .unwrap();
    assert!(m.subject().is_none() && m.annotations().is_empty() && m.artifact_type().is_none());
}

#[test]
fn refuses_what_is_not_a_json_object() {
    let cases: [(&[u8], &str); 9] = [
        (b"", "not valid JSON"),
        (b"blablabla", "not valid JSON"),
        (b"{\"schemaVersion\": 2,", "not valid JSON"),
        (b"{\"schemaVersion\": 2} {}", "not valid JSON"),
        (b"\xef\xbb\xbf{\"schemaVersion\": 2}", "not valid JSON"),
        (
            b"{\"schemaVersion\": 2, \"manifests\": [], \"x\": \"\xff\xfe\"}",
            "not valid JSON",
        ),
        (
            b"{\"schemaVersion\": 2, \"manifests\": [], \"x\": \"\\ud800\"}",
            "not valid JSON",
        ),
        (b"[]", "manifest must be an object, found an array"),
        (
            b"\"application/vnd.oci.image.index.v1+json\"",
            "manifest must be an object, found a string",
        ),
    ];
    for (body, needle) in cases {
        assert_invalid(body, Some(OCI_IMAGE_INDEX), needle);
    }
}

#[test]
fn size_limit() {
    let limits = ManifestLimits::default();
    assert_eq!(limits.max_size, 4 * 1024 * 1024);
    let exact = ManifestLimits {
        max_size: OCI_INDEX.len(),
    };
    assert!(Manifest::parse(OCI_INDEX.as_bytes(), None, &exact).is_ok());
    let small = ManifestLimits {
        max_size: OCI_INDEX.len() - 1,
    };
    let e = Manifest::parse(OCI_INDEX.as_bytes(), None, &small).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(
        e.message()
            .contains(&format!("limit of {} bytes", small.max_size)),
        "{e}"
    );

    // Over the default limit, whatever the content.
    let big = format!("{}{}", " ".repeat(limits.max_size), OCI_INDEX);
    assert_eq!(parse(&big, None).unwrap_err().kind(), ErrorKind::TooLarge);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_invalid(&arrays, None, "recursion limit exceeded");
    let in_annotations = format!(
        r#"{{"schemaVersion": 2, "manifests": [], "annotations": {{"a": {}{}}}}}"#,
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    assert_invalid(&in_annotations, None, "recursion limit exceeded");
    let unclosed = "[".repeat(depth);
    assert_invalid(&unclosed, None, "not valid JSON");
    assert_eq!(detect_media_type(arrays.as_bytes()), None);
}

#[test]
fn truncated_manifests_never_panic() {
    for body in [OCI_MANIFEST, DOCKER_LIST] {
        for end in 0..body.len() {
            let prefix = &body.as_bytes()[..end];
            assert!(parse(prefix, None).is_err());
            let _ = detect_media_type(prefix);
        }
    }
}

#[test]
fn detects_media_types_of_stored_manifests() {
    let strip = |body: &str, mt: &str| body.replacen(&format!(r#""mediaType": "{mt}","#), "", 1);
    let cases: [(&str, Option<&str>); 9] = [
        (OCI_MANIFEST, Some(OCI_IMAGE_MANIFEST)),
        (DOCKER_LIST, Some(DOCKER_MANIFEST_LIST_V2)),
        (
            &strip(OCI_MANIFEST, OCI_IMAGE_MANIFEST),
            Some(OCI_IMAGE_MANIFEST),
        ),
        (&strip(OCI_INDEX, OCI_IMAGE_INDEX), Some(OCI_IMAGE_INDEX)),
        (
            r#"{"schemaVersion": 1, "fsLayers": []}"#,
            Some(DOCKER_MANIFEST_V1),
        ),
        (
            r#"{"schemaVersion": 1, "fsLayers": [], "signatures": []}"#,
            Some(DOCKER_MANIFEST_V1_SIGNED),
        ),
        // A mediaType that could not be a header value is not trusted.
        (
            r#"{"mediaType": "a/b\r\nX: y", "manifests": []}"#,
            Some(OCI_IMAGE_INDEX),
        ),
        (r#"{"schemaVersion": 2}"#, None),
        ("not json", None),
    ];
    for (body, want) in cases {
        assert_eq!(
            detect_media_type(body.as_bytes()).as_deref(),
            want,
            "{body}"
        );
    }
    assert_eq!(detect_media_type(b"\xff\xfe"), None);
}

#[test]
fn descriptor_serde() {
    const D: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
    let json = format!(
        r#"{{"mediaType": "{OCI_IMAGE_MANIFEST}", "size": 7682, "digest": "{D}", "urls": ["https://example.com/m"], "artifactType": "application/vnd.example.sbom.v1", "unknown": true}}"#
    );
    let d: Descriptor = serde_json::from_str(&json).unwrap();
    assert_eq!(d.urls(), ["https://example.com/m"]);
    assert_eq!(d.artifact_type(), Some("application/vnd.example.sbom.v1"));
    let back = serde_json::to_string(&d).unwrap();
    assert_eq!(
        back,
        format!(
            r#"{{"mediaType":"{OCI_IMAGE_MANIFEST}","digest":"{D}","size":7682,"urls":["https://example.com/m"],"artifactType":"application/vnd.example.sbom.v1"}}"#
        )
    );
    assert_eq!(serde_json::from_str::<Descriptor>(&back).unwrap(), d);

    let bad = json.replacen("7682", "-7682", 1);
    let e = serde_json::from_str::<Descriptor>(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("descriptor.size must not be negative"),
        "{e}"
    );

    let digest = Digest::parse(D).unwrap();
    let built = Descriptor::new(OCI_IMAGE_MANIFEST, digest.clone(), 7682)
        .unwrap()
        .with_artifact_type(Some("application/vnd.example.sbom.v1"))
        .unwrap();
    assert_eq!(built.artifact_type(), d.artifact_type());
    assert!(Descriptor::new("bad", digest.clone(), 1).is_err());
    assert!(Descriptor::new(OCI_IMAGE_MANIFEST, digest.clone(), u64::MAX).is_err());
    assert!(built.with_artifact_type(Some("bad")).is_err());
}

#[test]
fn urls_only_on_foreign_layers() {
    const D: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
    const URLS: &str = r#""urls": ["https://example.com/l"]"#;
    let layer = |media_type: &str| {
        format!(r#"{{"mediaType": "{media_type}", "digest": "{D}", "size": 1, {URLS}}}"#)
    };
    for foreign in [
        OCI_LAYER_NONDISTRIBUTABLE_TAR,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
        DOCKER_FOREIGN_LAYER_TAR_GZIP,
    ] {
        let m = parse(with_layer(&layer(foreign)), None).unwrap();
        assert_eq!(m.layers()[0].urls(), ["https://example.com/l"], "{foreign}");
    }
    assert_invalid(
        with_layer(&layer(OCI_LAYER_TAR_GZIP)),
        None,
        "layers[0].urls: only non-distributable layers may have urls, not \"application/vnd.oci.image.layer.v1.tar+gzip\"",
    );
    assert_invalid(
        with_layer(&layer("application/vnd.docker.image.rootfs.diff.tar.gzip")),
        None,
        "layers[0].urls",
    );
    // Not even a config with a foreign layer's media type.
    let config = format!(
        r#"{{"schemaVersion": 2, "config": {}, "layers": []}}"#,
        layer(DOCKER_FOREIGN_LAYER_TAR_GZIP)
    );
    assert_invalid(config, None, "config.urls");
    let index = format!(
        r#"{{"schemaVersion": 2, "manifests": [{}]}}"#,
        layer(OCI_IMAGE_MANIFEST)
    );
    assert_invalid(index, None, "manifests[0].urls");
    let subject = format!(
        r#"{{"schemaVersion": 2, {CONFIG}, "layers": [], "subject": {}}}"#,
        layer(OCI_IMAGE_MANIFEST)
    );
    assert_invalid(subject, None, "subject.urls");
    // An empty list is no URL.
    let empty = format!(
        r#"{{"schemaVersion": 2, {CONFIG}, "layers": [{{"mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D}", "size": 1, "urls": []}}]}}"#
    );
    parse(empty, None).unwrap();
}

#[test]
fn foreign_urls_against_a_policy() {
    let m = parse(DOCKER_MANIFEST, None).unwrap();
    let e = m
        .check_foreign_urls(&ForeignUrlPolicy::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ManifestInvalid);
    assert!(e.message().contains("layers[1].urls"), "{e}");
    let allow = ForeignUrlPolicy::new([r"^https://example\.com/"], [] as [&str; 0]).unwrap();
    m.check_foreign_urls(&allow).unwrap();
    let deny = ForeignUrlPolicy::new([r"^https://"], [r"\.tar\.gz$"]).unwrap();
    let e = m.check_foreign_urls(&deny).unwrap_err();
    assert!(
        e.message()
            .contains("\"https://example.com/layer.tar.gz\" is not allowed"),
        "{e}"
    );
    // No URLs: any policy.
    let plain = parse(OCI_MANIFEST, None).unwrap();
    plain
        .check_foreign_urls(&ForeignUrlPolicy::default())
        .unwrap();
}

fn _assert_send_sync() {
    fn f<T: Send + Sync + 'static>() {}
    f::<Manifest>();
    f::<Descriptor>();
    f::<ManifestLimits>();
    f::<ForeignUrlPolicy>();
}
