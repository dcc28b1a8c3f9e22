#!/usr/bin/env python3
"""Grow a directory store for benches/scale.sh, in distribution's layout.

    populate.py DIR TAGS BLOBS

Writes one image (config, one layer, manifest) into `scale/app`, tagged
`t000000` ... up to TAGS tags (each tag folder as distribution writes it:
`current/link` and `index/<alg>/<hex>/link`), and BLOBS more blobs of 64
bytes each under `blobs/`, linked from `scale/filler`, so that the store's
blob tree is that large. Referrers are pushed over HTTP by drive.py (their
links carry what a push records). Prints the manifest's digest.

`objects` is the store as (key, bytes) pairs (`image`, then `bulk`);
moto_store.py writes the same pairs into moto's in-memory S3 backend.
"""

import hashlib
import json
import os
import sys

PREFIX = "docker/registry/v2/"
REPO = "scale/app"
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"the one layer"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest():
    """The image's manifest, as stored."""
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(LAYER), "size": len(LAYER)}],
    }, separators=(",", ":")).encode()


def blob(repo, data):
    """A blob's data and its layer link in `repo`."""
    d = sha(data)
    hexd = d.split(":")[1]
    yield f"{PREFIX}blobs/sha256/{hexd[:2]}/{hexd}/data", data
    yield f"{PREFIX}repositories/{repo}/_layers/sha256/{hexd}/link", d.encode()


def image():
    """The image of `scale/app`: its config, layer and manifest."""
    yield from blob(REPO, CONFIG)
    yield from blob(REPO, LAYER)
    m = manifest()
    md = sha(m)
    hexd = md.split(":")[1]
    yield f"{PREFIX}blobs/sha256/{hexd[:2]}/{hexd}/data", m
    yield f"{PREFIX}repositories/{REPO}/_manifests/revisions/sha256/{hexd}/link", md.encode()


def bulk(tags, blobs):
    """The tags of the image, then the other blobs."""
    md = sha(manifest())
    hexd = md.split(":")[1]
    for i in range(tags):
        base = f"{PREFIX}repositories/{REPO}/_manifests/tags/t{i:06d}/"
        yield base + "current/link", md.encode()
        yield base + f"index/sha256/{hexd}/link", md.encode()
    for i in range(blobs):
        yield from blob("scale/filler", f"filler blob {i:09d} ".encode().ljust(64, b"."))


def objects(tags, blobs):
    """Every object of the store: (key below the store's root, bytes)."""
    yield from image()
    yield from bulk(tags, blobs)


def main():
    root, tags, blobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for key, data in objects(tags, blobs):
        path = os.path.join(root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    print(sha(manifest()))


if __name__ == "__main__":
    main()
