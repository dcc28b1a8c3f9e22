#!/usr/bin/env python3
"""Interoperability test with the ORAS Python client (PyPI `oras`).

    .venv/bin/python tests/interop/oras.py HOST:PORT

Against a running registry (plain HTTP):
  1. push a multi-file artifact (text, random binary, empty file, a directory
     that oras tars up), check the manifest, the tag list, pull it back to a
     fresh directory and compare every file byte for byte;
  2. push a random file of several chunks with the chunked upload
     (POST, PATCH per chunk, PUT ?digest=), check that it really went in
     chunks, pull it back and compare;
  3. delete the artifact's tag through oras and check it is gone.

Prints PASS/FAIL lines and a final summary; exits non-zero if anything failed.
Under run.sh (INTEROP_COUNTS_FILE set) the counts go to that file and the
final `N passed, M failed` line is left to run.sh.

oras-py quirks this script deals with:
  * Registry.do_request is wrapped in a retry decorator that sleeps
    3, 5, 11, 29, 83 s on a connection error or a 500 and retries; for a
    test that hides failures and takes minutes, so it is unwrapped here.
  * push() only accepts file paths inside the current directory unless
    disable_path_validation=True: we chdir into the source directory.
  * upload_blob() HEADs the blob first and skips the upload if it exists,
    so each run uses fresh random content to really exercise uploads.
  * an empty blob whose upload fails is silently treated as a success, and
    pull() silently skips it if the download fails; the byte comparison
    after the pull catches both.
"""

import filecmp
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

# This file is itself named oras.py: drop its directory from the import path
# so that `import oras` finds the installed package, not this script.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import oras.client  # noqa: E402
import oras.provider  # noqa: E402
import oras.version  # noqa: E402

CHUNK = 1024 * 1024  # bytes per PATCH in the chunked push
CHUNKED_SIZE = 5 * CHUNK + 123_457  # 6 PATCHes, the last one partial

# Fail fast instead of oras' sleep-and-retry loop (see the docstring).
if hasattr(oras.provider.Registry.do_request, "__wrapped__"):
    oras.provider.Registry.do_request = oras.provider.Registry.do_request.__wrapped__


class Results:
    """PASS/FAIL bookkeeping with the same output format as lib.sh."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, desc):
        self.passed += 1
        print(f"PASS: {desc}", flush=True)

    def bad(self, desc, *details):
        self.failed += 1
        print(f"FAIL: {desc}", flush=True)
        for d in details:
            for line in str(d).splitlines():
                print(f"      {line}", flush=True)

    def check(self, desc, cond, *details):
        if cond:
            self.ok(desc)
        else:
            self.bad(desc, *details)
        return cond

    def eq(self, desc, expected, actual):
        return self.check(desc, expected == actual, f"expected: {expected!r}", f"actual:   {actual!r}")

    def step(self, desc, fn, *args, **kwargs):
        """Run fn; PASS if it does not raise. Returns its result or None."""
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any error is a failure here
            self.bad(desc, f"{type(e).__name__}: {e}", traceback.format_exc(limit=3))
            return None
        self.ok(desc)
        return result

    def summary(self):
        counts = os.environ.get("INTEROP_COUNTS_FILE")
        if counts:
            with open(counts, "a") as f:
                f.write(f"oras.py {self.passed} {self.failed}\n")
            print(f"-- oras.py totals: {self.passed} pass, {self.failed} fail")
        else:
            print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


class CountingSession:
    """Counts requests per HTTP method on the client's requests.Session."""

    def __init__(self, client):
        self.counts = {}
        self._orig = client.session.request

        def request(method, url, *args, **kwargs):
            self.counts[method.upper()] = self.counts.get(method.upper(), 0) + 1
            return self._orig(method, url, *args, **kwargs)

        client.session.request = request

    def reset(self):
        self.counts = {}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))


def trees_equal(a, b):
    """True if directories a and b hold the same files with the same bytes."""
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(trees_equal(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def manifest_digest(client, container, tag):
    """Digest the registry reports for a tag, and sha256 of the bytes served."""
    url = f"{client.prefix}://{container.manifest_url(tag)}"
    r = client.do_request(url, "GET", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    r.raise_for_status()
    return r.headers.get("Docker-Content-Digest"), "sha256:" + hashlib.sha256(r.content).hexdigest()


def test_multi_file(res, client, host, work, repo):
    src = os.path.join(work, "multi-src")
    dst = os.path.join(work, "multi-dst")
    os.makedirs(os.path.join(src, "tree", "sub"))
    os.makedirs(dst)
    with open(os.path.join(src, "hello.txt"), "w") as f:
        f.write(f"hello from the interop test, {time.time()}\n")
    write_random(os.path.join(src, "random.bin"), 300_000 + random.randrange(10_000))
    open(os.path.join(src, "empty.dat"), "wb").close()
    write_random(os.path.join(src, "tree", "a.bin"), 4096)
    with open(os.path.join(src, "tree", "sub", "b.txt"), "w") as f:
        f.write("nested file\n")

    target = f"{host}/{repo}:v1"
    files = ["hello.txt", "random.bin:application/x-interop-test", "empty.dat", "tree"]
    cwd = os.getcwd()
    os.chdir(src)  # push() wants paths under the current directory
    try:
        resp = res.step(
            f"oras push multi-file artifact {target}",
            client.push,
            target=target,
            files=files,
            manifest_annotations={"org.example.interop": "multi"},
            quiet=True,
        )
    finally:
        os.chdir(cwd)
    if resp is None:
        return
    res.check("push answered 201 with a digest", resp.status_code == 201 and resp.headers.get("Docker-Content-Digest"),
              f"status {resp.status_code}, headers {dict(resp.headers)}")

    manifest = res.step("get manifest", client.get_manifest, target)
    if manifest is not None:
        titles = sorted(layer.get("annotations", {}).get("org.opencontainers.image.title", "") for layer in manifest["layers"])
        res.eq("manifest lists one layer per file", sorted(["hello.txt", "random.bin", "empty.dat", "tree"]), titles)
        mtypes = {layer["annotations"]["org.opencontainers.image.title"]: layer["mediaType"] for layer in manifest["layers"]}
        res.eq("custom layer media type kept", "application/x-interop-test", mtypes.get("random.bin"))
        res.eq("manifest annotation kept", "multi", manifest.get("annotations", {}).get("org.example.interop"))
        empty = [layer for layer in manifest["layers"] if layer["annotations"]["org.opencontainers.image.title"] == "empty.dat"]
        res.check("empty file stored as a zero-length blob", empty and empty[0]["size"] == 0, json.dumps(empty))
    header_digest, body_digest = manifest_digest(client, client.get_container(target), "v1")
    res.eq("Docker-Content-Digest matches the manifest bytes", body_digest, header_digest)

    tags = res.step("get tags", client.get_tags, f"{host}/{repo}")
    if tags is not None:
        res.eq("tag list", ["v1"], tags)

    pulled = res.step(f"oras pull {target}", client.pull, target=target, outdir=dst)
    if pulled is None:
        return
    for name in ["hello.txt", "random.bin", "empty.dat"]:
        a, b = os.path.join(src, name), os.path.join(dst, name)
        res.check(f"pulled {name} is byte-identical", os.path.isfile(b) and filecmp.cmp(a, b, shallow=False),
                  f"{b} missing or different")
    res.check("pulled directory tree is identical", os.path.isdir(os.path.join(dst, "tree"))
              and trees_equal(os.path.join(src, "tree"), os.path.join(dst, "tree")))

    deleted = res.step(f"oras delete tag {target}", client.delete_tags, f"{host}/{repo}", "v1")
    if deleted is not None:
        res.eq("delete reported the tag", ["v1"], deleted)
        container = client.get_container(target)
        r = client.do_request(f"{client.prefix}://{container.manifest_url('v1')}", "GET",
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        res.eq("manifest gone after tag delete (GET -> 404)", 404, r.status_code)


def test_chunked(res, client, host, work, repo, counter):
    src = os.path.join(work, "chunked-src")
    dst = os.path.join(work, "chunked-dst")
    os.makedirs(src)
    os.makedirs(dst)
    big = os.path.join(src, "big.bin")
    write_random(big, CHUNKED_SIZE)
    digest = sha256_file(big)
    target = f"{host}/{repo}:chunked"

    counter.reset()
    cwd = os.getcwd()
    os.chdir(src)
    try:
        resp = res.step(
            f"oras chunked push of {CHUNKED_SIZE} bytes in {CHUNK}-byte chunks to {target}",
            client.push,
            target=target,
            files=["big.bin"],
            do_chunked=True,
            chunk_size=CHUNK,
            quiet=True,
        )
    finally:
        os.chdir(cwd)
    if resp is None:
        return
    expected_patches = -(-CHUNKED_SIZE // CHUNK)  # ceil
    # The big blob takes one PATCH per chunk; the (tiny) config blob goes
    # through a monolithic POST + PUT.
    res.eq("one PATCH per chunk", expected_patches, counter.counts.get("PATCH", 0))

    container = client.get_container(target)
    head = client.get_blob(container, digest, head=True)
    res.eq("HEAD blob after chunked upload: status", 200, head.status_code)
    res.eq("HEAD blob after chunked upload: Content-Length", str(CHUNKED_SIZE), head.headers.get("Content-Length"))
    res.eq("HEAD blob after chunked upload: Docker-Content-Digest", digest, head.headers.get("Docker-Content-Digest"))

    pulled = res.step(f"oras pull {target}", client.pull, target=target, outdir=dst)
    if pulled is None:
        return
    out = os.path.join(dst, "big.bin")
    res.check("pulled chunked file is byte-identical", os.path.isfile(out) and filecmp.cmp(big, out, shallow=False),
              f"{out}: {sha256_file(out) if os.path.isfile(out) else 'missing'} vs {digest}")


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    host = sys.argv[1]
    res = Results()
    client = oras.client.OrasClient(hostname=host, insecure=True)
    counter = CountingSession(client)
    print(f"[oras.py] oras {oras.version.__version__} against http://{host}", flush=True)

    run = f"{int(time.time())}-{os.getpid()}"
    work = tempfile.mkdtemp(prefix="oras-interop.")  # under $TMPDIR
    # oras' own temporary files (tar.gz of pushed/pulled directories, the
    # empty config) go through tempfile; keep them inside `work` too, since
    # pull() does not remove its temporary tar.gz.
    os.makedirs(os.path.join(work, "tmp"))
    tempfile.tempdir = os.path.join(work, "tmp")
    try:
        test_multi_file(res, client, host, work, f"interop/oras-{run}/files")
        test_chunked(res, client, host, work, f"interop/oras-{run}/chunked", counter)
    except Exception as e:  # noqa: BLE001 - an unexpected crash is a failure, not a traceback exit
        res.bad("unexpected error", f"{type(e).__name__}: {e}", traceback.format_exc())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
