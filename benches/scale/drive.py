#!/usr/bin/env python3
"""HTTP work for benches/scale.sh, over one keep-alive connection.

    drive.py referrers ADDR SUBJECT_DIGEST SUBJECT_SIZE COUNT
        push COUNT signatures (an OCI artifact manifest with `subject`) of
        the manifest SUBJECT_DIGEST of scale/app
    drive.py pushes ADDR COUNT
        COUNT image pushes into scale/pushed (a monolithic blob upload, then
        the manifest by tag), timed one by one; prints p50 and p99 in ms as
        JSON
"""

import hashlib
import http.client
import json
import sys
import time

REPO = "scale/app"
EMPTY = b"{}"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.c = http.client.HTTPConnection(host, int(port))

    def call(self, method, path, body=b"", headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        self.location = r.getheader("Location")
        return r.status, data

    def blob(self, repo, data):
        """A monolithic upload: one POST, or (distribution) POST then PUT."""
        d = sha(data)
        octets = {"Content-Type": "application/octet-stream"}
        status, body = self.call("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data, octets)
        if status == 202:
            loc = self.location.split("://", 1)[-1]
            loc = loc[loc.index("/"):] if not loc.startswith("/") else loc
            sep = "&" if "?" in loc else "?"
            status, body = self.call("PUT", f"{loc}{sep}digest={d}", data, octets)
        assert status == 201, (status, body)
        return d

    def manifest(self, repo, ref, m):
        data = json.dumps(m, separators=(",", ":")).encode()
        status, body = self.call("PUT", f"/v2/{repo}/manifests/{ref}", data,
                                 {"Content-Type": m["mediaType"]})
        assert status == 201, (status, body)
        return sha(data)


def referrers(addr, subject, size, count):
    c = Conn(addr)
    empty = c.blob(REPO, EMPTY)
    for i in range(count):
        layer = f"signature {i}".encode()
        m = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": c.blob(REPO, layer),
                        "size": len(layer)}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": subject, "size": int(size)},
        }
        c.manifest(REPO, sha(json.dumps(m, separators=(",", ":")).encode()), m)


def pushes(addr, count):
    c = Conn(addr)
    times = []
    stamp = time.time_ns()
    for i in range(count):
        t = time.perf_counter()
        config = f'{{"push":"{stamp}-{i}"}}'.encode()
        layer = f"pushed layer {stamp}-{i}".encode()
        m = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": c.blob("scale/pushed", config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": c.blob("scale/pushed", layer), "size": len(layer)}],
        }
        c.manifest("scale/pushed", f"p{i}", m)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    pct = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(json.dumps({"p50_ms": pct(0.50), "p99_ms": pct(0.99)}))


if __name__ == "__main__":
    if sys.argv[1] == "referrers":
        referrers(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        pushes(sys.argv[2], int(sys.argv[3]))
