//! Manifests: pulls (end-3), pushes (end-7), deletes (end-9), content
//! negotiation, and referrers (end-12).

use serde_json::json;

use crate::content::{
    DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, descriptor, digest, image_manifest,
};
use crate::{Client, Transport};

/// end-3: GET and HEAD by tag and by digest give the exact bytes pushed.
pub fn pull_manifest_by_tag_and_digest<T: Transport>(c: &Client<T>) {
    let (manifest, d) = c.push_image("pull/manifest", "v1", "pull");
    for reference in ["v1", d.as_str()] {
        let url = format!("/v2/pull/manifest/manifests/{reference}");
        let get = c.get(&url, &[("accept", OCI_MANIFEST)]);
        assert_eq!(get.status, 200, "{reference}");
        assert_eq!(get.body, manifest, "the exact bytes pushed");
        assert_eq!(get.content_type(), OCI_MANIFEST);
        assert_eq!(get.must("docker-content-digest"), d);
        assert_eq!(get.must("content-length"), manifest.len().to_string());

        let head = c.head(&url, &[("accept", OCI_MANIFEST)]);
        assert_eq!(head.status, 200);
        assert_eq!(head.must("content-length"), manifest.len().to_string());
        assert_eq!(head.must("docker-content-digest"), d);
        assert_eq!(head.content_type(), OCI_MANIFEST);
        assert!(head.body.is_empty());
    }
    let missing = format!(
        "/v2/pull/manifest/manifests/{}",
        digest(b"no such manifest")
    );
    for url in ["/v2/pull/manifest/manifests/v2", missing.as_str()] {
        c.get(url, &[]).assert_error(404, "MANIFEST_UNKNOWN");
        assert_eq!(c.head(url, &[]).status, 404);
    }
}

/// end-7: a push by tag and by digest, of a manifest and of an index over
/// it; re-tagging moves the tag.
pub fn push_manifest_by_tag_and_digest<T: Transport>(c: &Client<T>) {
    let config = b"{\"os\":\"linux\"}".to_vec();
    let layer = b"some layer".to_vec();
    c.push_blob("push/manifest", &config);
    c.push_blob("push/manifest", &layer);
    let manifest = image_manifest(&config, &[&layer], None, None);
    let d = digest(&manifest);

    let put = c.put_manifest("push/manifest", "latest", OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(put.location(), format!("/v2/push/manifest/manifests/{d}"));
    assert_eq!(put.must("docker-content-digest"), d);
    assert!(!put.has("oci-subject"), "no subject, no OCI-Subject");

    // By digest: the same bytes, under their own digest.
    let put = c.put_manifest("push/manifest", &d, OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(put.must("docker-content-digest"), d);

    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &manifest)],
    }))
    .unwrap();
    let put = c.put_manifest("push/manifest", "multi", OCI_INDEX, &index);
    assert_eq!(put.status, 201, "{put:?}");
    let get = c.get(
        "/v2/push/manifest/manifests/multi",
        &[("accept", OCI_INDEX)],
    );
    assert_eq!(get.content_type(), OCI_INDEX);
    assert_eq!(get.body, index);

    let (_, other) = c.push_image("push/manifest", "latest", "second");
    let head = c.head("/v2/push/manifest/manifests/latest", &[]);
    assert_eq!(head.must("docker-content-digest"), other);
}

/// The stored type is served whenever the client accepts it, however the
/// `Accept` headers list it; never converted when it does not.
pub fn content_negotiation<T: Transport>(c: &Client<T>) {
    let (oci, oci_digest) = c.push_image("negotiate", "oci", "negotiate");
    let config = b"{\"architecture\":\"arm64\"}";
    c.push_blob("negotiate", config);
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": digest(config),
        },
        "layers": []
    }))
    .unwrap();
    let put = c.put_manifest("negotiate", "docker", DOCKER_MANIFEST, &docker);
    assert_eq!(put.status, 201, "{put:?}");

    let lists = [
        format!("{DOCKER_MANIFEST}, {OCI_INDEX}, {OCI_MANIFEST}"),
        format!("{DOCKER_MANIFEST};q=0.9, {OCI_MANIFEST};q=0.5"),
        format!("{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.9"),
    ];
    let accepted: Vec<Vec<(&str, &str)>> = [
        vec![],
        vec![("accept", OCI_MANIFEST)],
        vec![("accept", "*/*")],
        vec![("accept", "application/*")],
        // Two headers.
        vec![("accept", DOCKER_MANIFEST), ("accept", OCI_MANIFEST)],
    ]
    .into_iter()
    .chain(lists.iter().map(|l| vec![("accept", l.as_str())]))
    .collect();
    for headers in &accepted {
        let get = c.get("/v2/negotiate/manifests/oci", headers);
        assert_eq!(get.status, 200, "{headers:?}");
        assert_eq!(get.content_type(), OCI_MANIFEST, "{headers:?}");
        assert_eq!(get.body, oci);
    }
    let get = c.get(
        "/v2/negotiate/manifests/docker",
        &[("accept", DOCKER_MANIFEST)],
    );
    assert_eq!(get.status, 200);
    assert_eq!(get.content_type(), DOCKER_MANIFEST);
    assert_eq!(get.body, docker);

    // None of the stored type: no manifest, since converting the bytes
    // would change their digest.
    let refused = format!("{OCI_MANIFEST};q=0, {DOCKER_MANIFEST}");
    for accept in [OCI_INDEX, DOCKER_MANIFEST, refused.as_str()] {
        let get = c.get("/v2/negotiate/manifests/oci", &[("accept", accept)]);
        get.assert_error(404, "MANIFEST_UNKNOWN");
    }
    let get = c.get(&format!("/v2/negotiate/manifests/{oci_digest}"), &[]);
    assert_eq!(get.status, 200);
    assert_eq!(get.content_type(), OCI_MANIFEST);
}

/// end-9: deleting a tag leaves the manifest and its other tags; deleting
/// the manifest takes its tags along.
pub fn delete_tag_then_manifest<T: Transport>(c: &Client<T>) {
    let repo = "manage/manifests";
    let (manifest, d) = c.push_image(repo, "one", "delete");
    assert_eq!(
        c.put_manifest(repo, "two", OCI_MANIFEST, &manifest).status,
        201
    );
    let url = |reference: &str| format!("/v2/{repo}/manifests/{reference}");

    let r = c.delete(&url("one"));
    assert_eq!(r.status, 202, "{r:?}");
    c.get(&url("one"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(c.get(&url(&d), &[]).status, 200);
    assert_eq!(c.get(&url("two"), &[]).status, 200);
    let tags = c.get(&format!("/v2/{repo}/tags/list"), &[]);
    assert_eq!(tags.json()["tags"], json!(["two"]));

    let r = c.delete(&url(&d));
    assert_eq!(r.status, 202, "{r:?}");
    c.get(&url(&d), &[]).assert_error(404, "MANIFEST_UNKNOWN");
    c.get(&url("two"), &[])
        .assert_error(404, "MANIFEST_UNKNOWN");

    for reference in [d.as_str(), "one", "never"] {
        c.delete(&url(reference))
            .assert_error(404, "MANIFEST_UNKNOWN");
    }
}

/// end-12a, end-12b: referrers of a manifest, all, filtered by artifact
/// type, and in pages linked with `Link`.
pub fn referrers_with_and_without_filter<T: Transport>(c: &Client<T>) {
    let repo = "discover/referrers";
    let (subject_bytes, subject) = c.push_image(repo, "app", "subject");
    let subject_desc = descriptor(OCI_MANIFEST, &subject_bytes);

    // One SBOM, one signature, one without artifactType (whose type is
    // then its config's media type).
    let empty = b"{}".to_vec();
    c.push_blob(repo, &empty);
    let mut referrers = Vec::new();
    for (artifact_type, payload) in [
        (Some("application/vnd.example.sbom.v1"), "sbom"),
        (Some("application/vnd.example.sig.v1"), "sig"),
        (None, "plain"),
    ] {
        let layer = payload.as_bytes().to_vec();
        c.push_blob(repo, &layer);
        let mut manifest: serde_json::Value = serde_json::from_slice(&image_manifest(
            &empty,
            &[&layer],
            artifact_type,
            Some(subject_desc.clone()),
        ))
        .unwrap();
        manifest["annotations"] = json!({ "org.example.payload": payload });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let d = digest(&bytes);
        let put = c.put_manifest(repo, &d, OCI_MANIFEST, &bytes);
        assert_eq!(put.status, 201, "{put:?}");
        assert_eq!(
            put.must("oci-subject"),
            subject,
            "the subject was processed"
        );
        referrers.push((d, bytes.len(), artifact_type.unwrap_or(OCI_CONFIG), payload));
    }

    let all = c.get(&format!("/v2/{repo}/referrers/{subject}"), &[]);
    assert_eq!(all.status, 200);
    assert_eq!(all.content_type(), OCI_INDEX);
    assert!(!all.has("oci-filters-applied"));
    let index = all.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed = index["manifests"].as_array().unwrap().clone();
    listed.sort_by_key(|m| m["digest"].as_str().unwrap().to_owned());
    let mut expected: Vec<_> = referrers
        .iter()
        .map(|(d, size, artifact_type, payload)| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": d,
                "size": size,
                "artifactType": artifact_type,
                "annotations": { "org.example.payload": payload },
            })
        })
        .collect();
    expected.sort_by_key(|m| m["digest"].as_str().unwrap().to_owned());
    assert_eq!(listed, expected);

    // The filter, its value percent-encoded or not.
    for filter in [
        "artifactType=application/vnd.example.sbom.v1",
        "artifactType=application%2Fvnd.example.sbom.v1",
    ] {
        let sboms = c.get(&format!("/v2/{repo}/referrers/{subject}?{filter}"), &[]);
        assert_eq!(sboms.status, 200);
        assert_eq!(sboms.must("oci-filters-applied"), "artifactType");
        assert_eq!(
            sboms.json()["manifests"],
            json!([expected_of(&expected, &referrers[0].0)])
        );
    }

    // In pages of one: each referrer once, in digest order; a filter goes
    // with every link.
    for (query, want) in [
        ("n=1", None),
        (
            "n=1&artifactType=application/vnd.example.sig.v1",
            Some("application/vnd.example.sig.v1"),
        ),
    ] {
        let mut url = Some(format!("/v2/{repo}/referrers/{subject}?{query}"));
        let (mut seen, mut pages) = (Vec::new(), 0);
        while let Some(u) = url {
            let page = c.get(&u, &[]);
            assert_eq!(page.status, 200, "{u}");
            assert_eq!(page.has("oci-filters-applied"), want.is_some());
            let manifests = page.json()["manifests"].as_array().unwrap().clone();
            assert!(manifests.len() <= 1);
            seen.extend(manifests.into_iter().map(|m| m["digest"].clone()));
            url = page.next_link();
            pages += 1;
        }
        assert_eq!(
            pages,
            expected.len(),
            "{query}: one referrer examined per page"
        );
        let wanted: Vec<_> = expected
            .iter()
            .filter(|m| want.is_none_or(|t| m["artifactType"] == t))
            .map(|m| m["digest"].clone())
            .collect();
        assert_eq!(seen, wanted, "{query}");
    }

    // No referrers, or no such repository: an empty index, never a 404.
    for url in [
        format!("/v2/{repo}/referrers/{}", digest(b"nothing refers to me")),
        format!("/v2/no/such/repo/referrers/{subject}"),
    ] {
        let r = c.get(&url, &[]);
        assert_eq!(r.status, 200, "{url}: {r:?}");
        assert_eq!(
            r.json(),
            json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] })
        );
    }
}

fn expected_of<'a>(expected: &'a [serde_json::Value], d: &str) -> &'a serde_json::Value {
    expected.iter().find(|m| m["digest"] == d).unwrap()
}

/// A referrer pushed before its subject is accepted and listed.
pub fn referrer_before_its_subject<T: Transport>(c: &Client<T>) {
    let repo = "discover/early";
    let empty = b"{}".to_vec();
    c.push_blob(repo, &empty);
    let later = digest(b"later");
    let absent = json!({ "mediaType": OCI_MANIFEST, "digest": later, "size": 5 });
    let bytes = image_manifest(
        &empty,
        &[],
        Some("application/vnd.example.sig.v1"),
        Some(absent),
    );
    let put = c.put_manifest(repo, &digest(&bytes), OCI_MANIFEST, &bytes);
    assert_eq!(
        put.status, 201,
        "a missing subject must be accepted: {put:?}"
    );
    assert_eq!(put.must("oci-subject"), later);
    let list = c.get(&format!("/v2/{repo}/referrers/{later}"), &[]);
    assert_eq!(list.json()["manifests"].as_array().unwrap().len(), 1);
}
