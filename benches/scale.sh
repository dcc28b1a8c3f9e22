#!/usr/bin/env bash
# Scale, measured (issue "Bounded cost per request", "Scale"): p50 and p99
# of the requests whose cost could grow with a repository or a store,
# on a small store (100 tags, 10 referrers, no other blobs) and a large one
# (100,000 tags, 10,000 referrers, 1,000,000 blobs), ours and CNCF
# distribution 2.8.2 on the same directory (distribution has no referrers
# API: n/a). The goal: no p99 more than 2x from small to large, except
# where the storage forces it (BENCHMARKS.md says which and why).
#
#   benches/scale.sh                           # the sizes above (long: the
#                                              # large store is written first)
#   TAGS=10000 REFERRERS=1000 BLOBS=100000 benches/scale.sh
#
# Environment: TAGS, REFERRERS, BLOBS (the large store), RATE_SECS (5),
# CONNECTIONS (16), PUSHES (200), NO_BUILD=1 (use target/release as it is),
# BIN_DIR (take registry and e2e-client from there, build nothing),
# NO_INSTALL=1. Everything lives in one mktemp -d, removed at exit; every
# server is started here and stopped by its PID, on 127.0.0.1.
# Not yet: the S3 rows (moto takes about 170 objects/s, so a store of
# 100,000 blobs and tags takes ~20 minutes to write).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
SCRIPT_NAME=scale
interop_init
WORK="$RUN_DIR"

TAGS="${TAGS:-100000}" REFERRERS="${REFERRERS:-10000}" BLOBS="${BLOBS:-1000000}"
RATE_SECS="${RATE_SECS:-5}" CONNECTIONS="${CONNECTIONS:-16}" PUSHES="${PUSHES:-200}"

[ "${NO_INSTALL:-0}" = 1 ] || bash "$ROOT/scripts/install-test-tools.sh" >"$WORK/install.log" 2>&1 ||
  { tail -n 20 "$WORK/install.log"; die "install-test-tools.sh failed"; }
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${BIN_DIR:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p registry -p e2e-client --bin registry --bin e2e-client)
fi
BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
cp "$BIN_DIR/registry" "$BIN_DIR/e2e-client" "$WORK/"
require_tools docker-registry python3 jq

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# serve KIND DIR: start ours or distribution on DIR; sets ADDR, PID.
serve() {
  local port
  port="$(free_port)"
  ADDR="127.0.0.1:$port"
  case "$1" in
    ours) start_bg "$WORK/$1.log" "$WORK/registry" serve --listen "$ADDR" --storage "fs://$2" ;;
    dist)
      printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
        "$2" "$ADDR" >"$WORK/dist.yml"
      start_bg "$WORK/$1.log" docker-registry serve "$WORK/dist.yml"
      ;;
  esac
  PID="$BG_PID"
  wait_http "http://$ADDR/v2/" 60 "$PID" || die "$1 did not start"
}

# rate SIZE SERVER ROW PATH: p50/p99 of GETs of PATH for RATE_SECS.
rate() {
  local out
  out="$("$WORK/e2e-client" rate --url "http://$ADDR$4" --method GET \
    --header "Accept: application/vnd.oci.image.manifest.v1+json" \
    --connections "$CONNECTIONS" --duration "$RATE_SECS" --warmup 1)"
  [ "$(jq -r .errors <<<"$out")" = 0 ] || die "$2 $3: errors: $out"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(jq -r .p50_ms <<<"$out")" "$(jq -r .p99_ms <<<"$out")" >>"$RESULTS"
}

measure() { # SIZE SERVER TAGS MANIFEST LAYER
  local late
  late="$(printf 't%06d' $(( $3 * 9 / 10 )))"
  rate "$1" "$2" "tags/list?n=100 (first page)" "/v2/scale/app/tags/list?n=100"
  rate "$1" "$2" "tags/list?n=100 (a late page)" "/v2/scale/app/tags/list?n=100&last=$late"
  if [ "$2" = ours ]; then
    rate "$1" "$2" "referrers (first page)" "/v2/scale/app/referrers/$4"
  fi
  rate "$1" "$2" "manifest GET by tag" "/v2/scale/app/manifests/t000000"
  rate "$1" "$2" "blob HEAD" "/v2/scale/app/blobs/$5"
  local out
  out="$(python3 "$ROOT/benches/scale/drive.py" pushes "$ADDR" "$PUSHES")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "push (blob + manifest, sequential)" \
    "$(jq -r .p50_ms <<<"$out")" "$(jq -r .p99_ms <<<"$out")" >>"$RESULTS"
}

for size in small large; do
  if [ "$size" = small ]; then t=100 r=10 b=0; else t="$TAGS" r="$REFERRERS" b="$BLOBS"; fi
  store="$WORK/$size"
  log "$size: writing $t tags and $b blobs"
  manifest="$(python3 "$ROOT/benches/scale/populate.py" "$store" "$t" "$b")"
  msize="$(stat -c %s "$store/docker/registry/v2/blobs/sha256/${manifest:7:2}/${manifest:7}/data")"
  layer="sha256:$(printf 'the one layer' | sha256sum | cut -d' ' -f1)"
  serve ours "$store"
  log "$size: pushing $r referrers"
  python3 "$ROOT/benches/scale/drive.py" referrers "$ADDR" "$manifest" "$msize" "$r"
  sync
  measure "$size" ours "$t" "$manifest" "$layer"
  stop_pid "$PID"
  serve dist "$store"
  measure "$size" dist "$t" "$manifest" "$layer"
  stop_pid "$PID"
  rm -rf "$store"
done

python3 - "$RESULTS" "$TAGS" "$REFERRERS" "$BLOBS" <<'PY'
import sys
from collections import defaultdict
rows, tags, refs, blobs = sys.argv[1], *sys.argv[2:]
d = defaultdict(dict)
order = []
for line in open(rows):
    size, server, row, p50, p99 = line.rstrip("\n").split("\t")
    if row not in order:
        order.append(row)
    d[(server, row)][size] = (float(p50), float(p99))
print(f"\nsmall: 100 tags, 10 referrers; large: {int(tags):,} tags, {int(refs):,} referrers, {int(blobs):,} more blobs (fs)\n")
print("| request | server | small p50 / p99 (ms) | large p50 / p99 (ms) | p99 large / small |")
print("| --- | --- | --- | --- | --- |")
for row in order:
    for server in ("ours", "dist"):
        v = d.get((server, row))
        if not v or "small" not in v or "large" not in v:
            continue
        (s50, s99), (l50, l99) = v["small"], v["large"]
        ratio = l99 / s99 if s99 else float("nan")
        flag = "" if ratio <= 2 or server != "ours" else " (over 2x)"
        print(f"| {row} | {'ours' if server == 'ours' else 'distribution'} | {s50:.2f} / {s99:.2f} | {l50:.2f} / {l99:.2f} | {ratio:.2f}{flag} |")
PY
