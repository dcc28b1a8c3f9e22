#!/usr/bin/env python3
"""The client side of tests/docker/fleet.sh: pushes, verified pulls,
uploads continued on another host, and a steady pull load.

Only the standard library; every request goes to a registry's port
published on 127.0.0.1. Each command prints one JSON object on stdout and
exits 0 when everything it checked held, 1 otherwise.

  push BASE REPO TAG LAYERS KIB OUT     push an image of LAYERS random layers
                                        of KIB KiB each; OUT gets its digests
  pull BASE REPO TAG IMAGE              pull it, every byte checked
  blob BASE REPO DIGEST                 status of one blob GET (and, on 200,
                                        whether its bytes hash to DIGEST)
  start BASE REPO                       POST: a new upload's location
  chunk BASE LOCATION FILE START END    PATCH bytes [START, END) of FILE
  offset BASE LOCATION                  GET: the upload's offset (Range end + 1)
  finish BASE LOCATION FILE START       PUT ?digest= with the rest from START
  cut BASE LOCATION FILE START END CMD  PATCH [START, END) but run CMD (a
                                        shell command: the docker kill) after
                                        half the body: the PATCH must fail
  load IMAGE REPO TAG STOP BASE...      pull the image over and over from the
                                        ready hosts until the file STOP exists
"""

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TIMEOUT = 30


def conn(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)


def request(base, method, path, body=None, headers=None):
    """One request; returns (status, headers dict lowercased, body bytes)."""
    c = conn(base)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def path_of(location):
    u = urllib.parse.urlsplit(location)
    return u.path + (("?" + u.query) if u.query else "")


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_query(location, query):
    return location + ("&" if "?" in location else "?") + query


def push_blob(base, repo, data):
    d = digest_of(data)
    st, h, _ = request(base, "POST", f"/v2/{repo}/blobs/uploads/")
    if st != 202:
        raise RuntimeError(f"POST upload: {st}")
    loc = with_query(path_of(h["location"]), "digest=" + d)
    st, _, body = request(base, "PUT", loc, body=data,
                          headers={"Content-Type": "application/octet-stream"})
    if st != 201:
        raise RuntimeError(f"PUT blob: {st} {body[:200]!r}")
    return {"digest": d, "size": len(data)}


def cmd_push(base, repo, tag, layers, kib, out):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []},
                         "nonce": os.urandom(8).hex()}).encode()
    cfg = push_blob(base, repo, config)
    descs = [push_blob(base, repo, os.urandom(int(kib) * 1024)) for _ in range(int(layers))]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **d} for d in descs],
    }).encode()
    st, h, body = request(base, "PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    if st != 201:
        raise RuntimeError(f"PUT manifest: {st} {body[:200]!r}")
    image = {"manifest": digest_of(manifest), "blobs": [cfg] + descs}
    with open(out, "w") as f:
        json.dump(image, f)
    return image, True


def get_blob(base, repo, digest):
    """(status, bytes read, whether they hash to digest), streaming."""
    c = conn(base)
    try:
        c.request("GET", f"/v2/{repo}/blobs/{digest}")
        r = c.getresponse()
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        return r.status, n, "sha256:" + h.hexdigest() == digest
    finally:
        c.close()


def pull(base, repo, tag, image):
    """None if the whole image pulled right, else what went wrong."""
    st, _, body = request(base, "GET", f"/v2/{repo}/manifests/{tag}",
                          headers={"Accept": OCI_MANIFEST})
    if st != 200:
        return f"manifest: {st}"
    if digest_of(body) != image["manifest"]:
        return "manifest: wrong digest"
    for b in image["blobs"]:
        st, n, ok = get_blob(base, repo, b["digest"])
        if st != 200 or n != b["size"] or not ok:
            return f"blob {b['digest'][:19]}: status {st}, {n} bytes, verified {ok}"
    return None


def cmd_pull(base, repo, tag, image_file):
    with open(image_file) as f:
        image = json.load(f)
    t = time.monotonic()
    err = pull(base, repo, tag, image)
    return {"error": err, "seconds": round(time.monotonic() - t, 3)}, err is None


def cmd_blob(base, repo, digest):
    t = time.monotonic()
    st, n, ok = get_blob(base, repo, digest)
    return {"status": st, "bytes": n, "verified": ok,
            "seconds": round(time.monotonic() - t, 3)}, True


def cmd_start(base, repo):
    st, h, _ = request(base, "POST", f"/v2/{repo}/blobs/uploads/")
    return {"status": st, "location": path_of(h.get("location", ""))}, st == 202


def read_range(path, start, end):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def cmd_chunk(base, location, path, start, end):
    start, end = int(start), int(end)
    st, h, body = request(base, "PATCH", location, body=read_range(path, start, end), headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{end - 1}",
    })
    return {"status": st, "location": path_of(h.get("location", location)),
            "range": h.get("range"), "body": body[:200].decode(errors="replace")}, st == 202


def cmd_offset(base, location):
    st, h, _ = request(base, "GET", location)
    rng = h.get("range", "")
    offset = int(rng.split("-")[1]) + 1 if "-" in rng else 0
    return {"status": st, "range": rng, "offset": offset}, st == 204


def cmd_finish(base, location, path, start):
    start = int(start)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        d = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
    rest = read_range(path, start, size)
    headers = {"Content-Type": "application/octet-stream"}
    if rest:
        headers["Content-Range"] = f"{start}-{size - 1}"
    st, h, body = request(base, "PUT", with_query(location, "digest=" + d), body=rest,
                          headers=headers)
    return {"status": st, "digest": d, "docker-content-digest": h.get("docker-content-digest"),
            "body": body[:200].decode(errors="replace")}, st == 201


def cmd_cut(base, location, path, start, end, command):
    """Send half of a PATCH's body, run COMMAND, try to send the rest."""
    start, end = int(start), int(end)
    data = read_range(path, start, end)
    c = conn(base)
    c.putrequest("PATCH", location)
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Range", f"{start}-{end - 1}")
    c.putheader("Content-Length", str(len(data)))
    c.endheaders()
    half = len(data) // 2
    c.send(data[:half])
    time.sleep(0.3)
    subprocess.run(command, shell=True, check=False)
    try:
        c.send(data[half:])
        r = c.getresponse()
        status = r.status
        r.read()
    except OSError as e:
        status = f"failed: {type(e).__name__}"
    finally:
        c.close()
    return {"status": status, "sent_before_cut": half}, status != 202


def cmd_load(image_file, repo, tag, stop, *bases):
    """Pulls from whichever hosts answered /readyz within the last 200 ms
    probe: a host being restarted says it is not ready (its shutdown delay)
    before it stops serving, so no pull should fail."""
    with open(image_file) as f:
        image = json.load(f)
    ready = {b: False for b in bases}
    lock = threading.Lock()
    stats = {"ok": 0, "failed": 0, "errors": [], "per_host": {b: 0 for b in bases},
             "no_ready_host_waits": 0}

    def probe(b):
        while not os.path.exists(stop):
            try:
                st, _, _ = request(b, "GET", "/readyz")
                ok = st == 200
            except OSError:
                ok = False
            ready[b] = ok
            time.sleep(0.2)

    def worker(k):
        i = k
        while not os.path.exists(stop):
            live = [b for b in bases if ready[b]]
            if not live:
                with lock:
                    stats["no_ready_host_waits"] += 1
                time.sleep(0.05)
                continue
            b = live[i % len(live)]
            i += 1
            try:
                err = pull(b, repo, tag, image)
            except OSError as e:
                err = f"{type(e).__name__}: {e}"
            with lock:
                if err is None:
                    stats["ok"] += 1
                    stats["per_host"][b] += 1
                else:
                    stats["failed"] += 1
                    if len(stats["errors"]) < 10:
                        stats["errors"].append(f"{b}: {err}")

    threads = [threading.Thread(target=probe, args=(b,), daemon=True) for b in bases]
    threads += [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats, stats["failed"] == 0 and stats["ok"] > 0


COMMANDS = {
    "push": cmd_push, "pull": cmd_pull, "blob": cmd_blob, "start": cmd_start,
    "chunk": cmd_chunk, "offset": cmd_offset, "finish": cmd_finish, "cut": cmd_cut,
    "load": cmd_load,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        result, ok = COMMANDS[argv[1]](*argv[2:])
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        result, ok = {"error": f"{type(e).__name__}: {e}"}, False
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
