#!/usr/bin/env python3
"""Write a store in CNCF distribution's layout for the collection benchmark.

    populate.py fs DIR REPOS MANIFESTS_PER_REPO
    populate.py s3 ENDPOINT BUCKET PREFIX REPOS MANIFESTS_PER_REPO

Each manifest is an OCI image manifest with its own config and three layers
of its own, so the store holds 5 blobs per manifest (the manifest's bytes,
its config, three layers). Four manifests in five are tagged; the fifth is
untagged, so `--delete-untagged` has work: each untagged manifest and its
four blobs go. The blobs are small: the benchmark measures the mark and the
sweep (listings, reads, deletes), not bytes moved.
"""

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

PREFIX = "docker/registry/v2/"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def objects(repos, per_repo):
    """Every (key, bytes) of the store, in distribution's layout."""
    for r in range(repos):
        name = f"bench/repo{r:04d}"
        base = f"{PREFIX}repositories/{name}/"
        for m in range(per_repo):
            blobs = [f"{kind} {r} {m}".encode() for kind in ("config", "layer a", "layer b", "layer c")]
            descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b), "size": len(b)} for b in blobs]
            manifest = json.dumps({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": dict(descs[0], mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": descs[1:],
            }, separators=(",", ":")).encode()
            md = sha(manifest)
            for data in blobs + [manifest]:
                d = sha(data)
                hexd = d.split(":")[1]
                yield f"{PREFIX}blobs/sha256/{hexd[:2]}/{hexd}/data", data
                if data is not manifest:
                    yield f"{base}_layers/sha256/{hexd}/link", d.encode()
            mhex = md.split(":")[1]
            yield f"{base}_manifests/revisions/sha256/{mhex}/link", md.encode()
            if m % 5 != 4:
                tag = f"t{m}"
                yield f"{base}_manifests/tags/{tag}/current/link", md.encode()
                yield f"{base}_manifests/tags/{tag}/index/sha256/{mhex}/link", md.encode()


def to_fs(root, repos, per_repo):
    n = 0
    for key, data in objects(repos, per_repo):
        path = os.path.join(root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        n += 1
    return n


def to_s3(endpoint, bucket, prefix, repos, per_repo):
    import boto3  # in the venv, with moto

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    items = list(objects(repos, per_repo))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=f"{prefix}/{kv[0]}", Body=kv[1]), items))
    return len(items)


def main():
    started = time.time()
    if sys.argv[1] == "fs":
        n = to_fs(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        n = to_s3(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    print(f"populate: {n} objects in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
