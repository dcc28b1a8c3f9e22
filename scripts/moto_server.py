"""moto's S3 server with conditional writes made atomic, as on S3.

moto checks `If-None-Match` / `If-Match` and then writes, with no lock
between the two, and serves requests on many threads: two racing
create-if-absent writes can both succeed. S3 itself decides each
conditional write atomically, and the registry's fleet protocol relies on
that. So that the tests exercise the registry's protocol and not this race
of the test server, every object write, copy, multipart completion and
delete here runs under one lock (reads stay concurrent). Used by
scripts/moto.sh; run it like `moto_server`.
"""

import functools
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_WRITES = threading.Lock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)

    return locked


for _name in ("_key_response_put", "_key_response_delete", "_key_response_post"):
    setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    sys.exit(main())
