#!/usr/bin/env python3
"""Summarise the WARN/ERROR lines of the servers' logs (benches/e2e/run.sh).

usage: log_summary.py WARNINGS.txt

Input lines: "<server>-<workload>-r<run>.log: <log line>". Output: one line
per kind (server, level and message, without time stamps, request ids,
ports and digests; for distribution's logfmt its level, msg and err.code),
most frequent first.
"""

import collections
import re
import sys

kinds = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    server, _, msg = line.rstrip("\n").partition(": ")
    server = re.sub(r"-(push|pull|small|manifest|skopeo).*", "", server)
    if "msg=" in msg:
        msg = " ".join(re.findall(r'(?:level|msg|err\.code)=(?:"[^"]*"|\S+)', msg))
    else:
        msg = re.sub(r"^\S*\d{4}-\d\d-\d\dT\S+\s*", "", msg)
    msg = re.sub(r"sha256:[0-9a-f]{64}", "sha256:...", msg)
    msg = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", msg)
    kinds[f"{server}: {msg[:300]}"] += 1
print(f"\nServer log lines at WARN/ERROR: {sum(kinds.values())}, in {len(kinds)} kinds:")
for kind, n in kinds.most_common(15):
    print(f"{n:7d}  {kind}")
