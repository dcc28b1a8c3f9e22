#!/usr/bin/env python3
"""Grow a directory store for benches/scale.sh, in distribution's layout.

    populate.py DIR TAGS BLOBS

Writes one image (config, one layer, manifest) into `scale/app`, tagged
`t000000` ... up to TAGS tags (each tag folder as distribution writes it:
`current/link` and `index/<alg>/<hex>/link`), and BLOBS more blobs of 64
bytes each under `blobs/`, linked from `scale/filler`, so that the store's
blob tree is that large. Referrers are pushed over HTTP by drive.py (their
links carry what a push records). Prints the manifest's digest.
"""

import hashlib
import json
import os
import sys

PREFIX = "docker/registry/v2/"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(root, key, data):
    path = os.path.join(root, PREFIX, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def blob(root, repo, data):
    d = sha(data)
    hexd = d.split(":")[1]
    put(root, f"blobs/sha256/{hexd[:2]}/{hexd}/data", data)
    put(root, f"repositories/{repo}/_layers/sha256/{hexd}/link", d.encode())
    return d


def main():
    root, tags, blobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    repo = "scale/app"
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"the one layer"
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(root, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": blob(root, repo, layer), "size": len(layer)}],
    }, separators=(",", ":")).encode()
    md = sha(manifest)
    hexd = md.split(":")[1]
    put(root, f"blobs/sha256/{hexd[:2]}/{hexd}/data", manifest)
    put(root, f"repositories/{repo}/_manifests/revisions/sha256/{hexd}/link", md.encode())
    for i in range(tags):
        base = f"repositories/{repo}/_manifests/tags/t{i:06d}/"
        put(root, base + "current/link", md.encode())
        put(root, base + f"index/sha256/{hexd}/link", md.encode())
    for i in range(blobs):
        blob(root, "scale/filler", f"filler blob {i:09d} ".encode().ljust(64, b"."))
    print(md)


if __name__ == "__main__":
    main()
