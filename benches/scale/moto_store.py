#!/usr/bin/env python3
"""A moto S3 server holding a store for benches/scale.sh (the venv's python).

    moto_store.py PORT BUCKET PREFIX TAGS BLOBS

Writes the objects populate.py writes for a directory (the same keys, under
PREFIX/, the root of `s3://BUCKET/PREFIX`) straight into moto's in-memory
backend, in two steps:

1. creates BUCKET, writes the image (`populate.image`), serves the backend
   over HTTP on 127.0.0.1:PORT from this process, and prints
   `manifest DIGEST SIZE` and `serving`;
2. on SIGUSR1, writes the tags and the other blobs (`populate.bulk`) and
   prints `ready`; serves until killed.

Between the two, the caller pushes the referrers over HTTP: moto lists by
scanning every key of the bucket (each push lists a few prefixes), so a
push costs about 2 s once the bucket holds 400,000 objects, and a few
tens of ms before. The store is the same either way: the same keys.

Written directly because moto takes about 170 PUTs a second over HTTP
(100,000 tags and blobs are 400,000 objects: ~40 minutes that way, ~15 s
this way). The objects are the ones a PUT makes (`put_object`, what moto's
PUT handler calls: ETag the MD5 of the bytes, modified now). Writes over
HTTP are made atomic as scripts/moto_server.py makes them; the bulk is
written under the same lock.
"""

import importlib.util
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import populate  # noqa: E402
from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.s3.models import s3_backends  # noqa: E402


def atomic_writes():
    """scripts/moto_server.py's patch (each write under one lock); its lock."""
    path = os.path.join(HERE, "..", "..", "scripts", "moto_server.py")
    spec = importlib.util.spec_from_file_location("registry_moto_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._WRITES


def main():
    port, bucket, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3].strip("/")
    tags, blobs = int(sys.argv[4]), int(sys.argv[5])
    writes = atomic_writes()
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    s3.create_bucket(bucket, "us-east-1")

    def put(objects):
        start, count = time.monotonic(), 0
        for key, data in objects:
            s3.put_object(bucket, f"{prefix}/{key}" if prefix else key, data,
                          disable_notification=True)
            count += 1
        return f"{count} objects in {time.monotonic() - start:.1f} s"

    go = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: go.set())
    put(populate.image())
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    m = populate.manifest()
    print(f"manifest {populate.sha(m)} {len(m)}")
    print("serving", flush=True)
    while not go.wait(0.5):
        pass
    with writes:
        print(put(populate.bulk(tags, blobs)))
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
