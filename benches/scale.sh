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
#   S3=1 benches/scale.sh                      # and the S3 rows after them
#   S3_ONLY=1 benches/scale.sh                 # only the S3 rows
#
# The S3 rows: ours on moto (the local S3 server, from .venv), small (as
# above) and large (100,000 tags, 1,000 referrers, 100,000 blobs). moto
# takes about 170 PUTs a second over HTTP, so benches/scale/moto_store.py
# writes populate.py's objects straight into moto's in-memory backend and
# serves it over HTTP from the same process. The referrers are pushed over
# HTTP through ours first, before the tags and blobs are written: moto
# lists by scanning every key of the bucket and a push lists a few
# prefixes, so a push into the full bucket takes ~2 s (and 10,000 of them
# hours). One connection per row (moto answers one request at a time: 16
# connections would measure its queue), 10 s per row, 50 pushes.
# distribution is not run on S3.
#
# Environment: TAGS, REFERRERS, BLOBS (the large store), RATE_SECS (5),
# CONNECTIONS (16), PUSHES (200), NO_BUILD=1 (use target/release as it is),
# BIN_DIR (take registry and e2e-client from there, build nothing),
# NO_INSTALL=1; S3=1 or S3_ONLY=1, TAGS_S3, REFERRERS_S3, BLOBS_S3 (the
# large S3 store), CONNECTIONS_S3 (1), RATE_SECS_S3 (10), PUSHES_S3 (50).
# Everything lives in one mktemp -d, removed at exit; every server is
# started here and stopped by its PID, on 127.0.0.1.
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
TAGS_S3="${TAGS_S3:-100000}" REFERRERS_S3="${REFERRERS_S3:-1000}" BLOBS_S3="${BLOBS_S3:-100000}"
CONNECTIONS_S3="${CONNECTIONS_S3:-1}" RATE_SECS_S3="${RATE_SECS_S3:-10}" PUSHES_S3="${PUSHES_S3:-50}"
S3_ONLY="${S3_ONLY:-0}" S3="${S3:-0}"
[ "$S3_ONLY" != 1 ] || S3=1
VENV_PYTHON="$ROOT/.venv/bin/python"

[ "${NO_INSTALL:-0}" = 1 ] || bash "$ROOT/scripts/install-test-tools.sh" >"$WORK/install.log" 2>&1 ||
  { tail -n 20 "$WORK/install.log"; die "install-test-tools.sh failed"; }
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${BIN_DIR:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p registry -p e2e-client --bin registry --bin e2e-client)
fi
BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
cp "$BIN_DIR/registry" "$BIN_DIR/e2e-client" "$WORK/"
require_tools python3 jq
[ "$S3_ONLY" = 1 ] || require_tools docker-registry
[ "$S3" != 1 ] || [ -x "$VENV_PYTHON" ] || die "no $VENV_PYTHON (run scripts/install-test-tools.sh)"

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
# The pass being measured (fs, s3), recorded by rate() and measure(), and
# its connections, seconds per row and pushes.
STORE=fs CONNS="$CONNECTIONS" SECS="$RATE_SECS" NPUSH="$PUSHES"

# serve KIND WHERE: start ours or distribution on directory WHERE, or ours
# on the storage URL WHERE (ours-url); sets ADDR, PID.
serve() {
  local port
  port="$(free_port)"
  ADDR="127.0.0.1:$port"
  case "$1" in
    ours) start_bg "$WORK/$1.log" "$WORK/registry" serve --listen "$ADDR" --storage "fs://$2" ;;
    ours-url)
      start_bg "$WORK/$1.log" env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        "$WORK/registry" serve --listen "$ADDR" --storage "$2"
      ;;
    dist)
      printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
        "$2" "$ADDR" >"$WORK/dist.yml"
      start_bg "$WORK/$1.log" docker-registry serve "$WORK/dist.yml"
      ;;
  esac
  PID="$BG_PID"
  wait_http "http://$ADDR/v2/" 60 "$PID" || die "$1 did not start"
}

# rate SIZE SERVER ROW PATH: p50/p99 of GETs of PATH for SECS seconds.
rate() {
  local out
  out="$("$WORK/e2e-client" rate --url "http://$ADDR$4" --method GET \
    --header "Accept: application/vnd.oci.image.manifest.v1+json" \
    --connections "$CONNS" --duration "$SECS" --warmup 1)"
  [ "$(jq -r .errors <<<"$out")" = 0 ] || die "$2 $3: errors: $out"
  [ "$(jq -r .requests <<<"$out")" != 0 ] || die "$2 $3: no request answered within $SECS s: $out"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$STORE" "$2" "$3" "$(jq -r .p50_ms <<<"$out")" "$(jq -r .p99_ms <<<"$out")" >>"$RESULTS"
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
  out="$(python3 "$ROOT/benches/scale/drive.py" pushes "$ADDR" "$NPUSH")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$STORE" "$2" "push (blob + manifest, sequential)" \
    "$(jq -r .p50_ms <<<"$out")" "$(jq -r .p99_ms <<<"$out")" >>"$RESULTS"
}

LAYER="sha256:$(printf 'the one layer' | sha256sum | cut -d' ' -f1)"

fs_pass() {
  local size t r b store manifest msize
  STORE=fs CONNS="$CONNECTIONS" SECS="$RATE_SECS" NPUSH="$PUSHES"
  for size in small large; do
    if [ "$size" = small ]; then t=100 r=10 b=0; else t="$TAGS" r="$REFERRERS" b="$BLOBS"; fi
    store="$WORK/$size"
    log "$size: writing $t tags and $b blobs"
    manifest="$(python3 "$ROOT/benches/scale/populate.py" "$store" "$t" "$b")"
    msize="$(stat -c %s "$store/docker/registry/v2/blobs/sha256/${manifest:7:2}/${manifest:7}/data")"
    serve ours "$store"
    log "$size: pushing $r referrers"
    python3 "$ROOT/benches/scale/drive.py" referrers "$ADDR" "$manifest" "$msize" "$r"
    sync
    measure "$size" ours "$t" "$manifest" "$LAYER"
    stop_pid "$PID"
    serve dist "$store"
    measure "$size" dist "$t" "$manifest" "$LAYER"
    stop_pid "$PID"
    rm -rf "$store"
  done
}

# wait_line FILE LINE PID: until FILE (PID's log) has LINE; at most 900 s.
wait_line() {
  local deadline=$((SECONDS + 900))
  until grep -qsx "$2" "$1"; do
    kill -0 "$3" 2>/dev/null || { tail -n 20 "$1"; die "$1: its process exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "$1: no '$2' after 900 s"
    sleep 0.5
  done
}

# moto_store SIZE TAGS BLOBS: moto on a free port serving the image under
# s3://scale/SIZE (moto_store.py), the tags and blobs written on SIGUSR1;
# sets MOTO_ADDR, MOTO, MOTO_LOG, MANIFEST, MSIZE, URL.
moto_store() {
  local port
  port="$(free_port)"
  MOTO_ADDR="127.0.0.1:$port" MOTO_LOG="$WORK/moto-$1.log"
  URL="s3://scale/$1?endpoint=http://$MOTO_ADDR&region=us-east-1"
  start_bg "$MOTO_LOG" "$VENV_PYTHON" "$ROOT/benches/scale/moto_store.py" "$port" scale "$1" "$2" "$3"
  MOTO="$BG_PID"
  wait_line "$MOTO_LOG" serving "$MOTO"
  read -r _ MANIFEST MSIZE < <(grep '^manifest ' "$MOTO_LOG")
}

# The referrers are pushed before the tags and blobs are written: moto lists
# by scanning the whole bucket, and a push lists (moto_store.py).
s3_pass() {
  local size t r b
  STORE=s3 CONNS="$CONNECTIONS_S3" SECS="$RATE_SECS_S3" NPUSH="$PUSHES_S3"
  for size in small large; do
    if [ "$size" = small ]; then t=100 r=10 b=0; else t="$TAGS_S3" r="$REFERRERS_S3" b="$BLOBS_S3"; fi
    moto_store "$size" "$t" "$b"
    serve ours-url "$URL"
    log "$size, S3 (moto): pushing $r referrers"
    python3 "$ROOT/benches/scale/drive.py" referrers "$ADDR" "$MANIFEST" "$MSIZE" "$r"
    stop_pid "$PID"
    log "$size, S3 (moto): writing $t tags and $b blobs"
    kill -USR1 "$MOTO"
    wait_line "$MOTO_LOG" ready "$MOTO"
    log "$size, S3 (moto): $(grep ' objects in ' "$MOTO_LOG" | tail -n 1)"
    serve ours-url "$URL"
    measure "$size" ours "$t" "$MANIFEST" "$LAYER"
    stop_pid "$PID"
    stop_pid "$MOTO"
  done
}

[ "$S3_ONLY" = 1 ] || fs_pass
[ "$S3" != 1 ] || s3_pass

python3 - "$RESULTS" "$TAGS" "$REFERRERS" "$BLOBS" "$TAGS_S3" "$REFERRERS_S3" "$BLOBS_S3" <<'PY'
import sys
from collections import defaultdict
rows, tags, refs, blobs, tags3, refs3, blobs3 = sys.argv[1], *map(int, sys.argv[2:])
d = defaultdict(dict)
order = []
for line in open(rows):
    size, store, server, row, p50, p99 = line.rstrip("\n").split("\t")
    if row not in order:
        order.append(row)
    d[(store, server, row)][size] = (float(p50), float(p99))
stores = {store for store, _, _ in d}
print()
if "fs" in stores:
    print(f"fs: small: 100 tags, 10 referrers; large: {tags:,} tags, {refs:,} referrers, {blobs:,} more blobs")
if "s3" in stores:
    print(f"S3 (moto): small: 100 tags, 10 referrers; large: {tags3:,} tags, {refs3:,} referrers, {blobs3:,} more blobs")
print()
print("| request | server | small p50 / p99 (ms) | large p50 / p99 (ms) | p99 large / small |")
print("| --- | --- | --- | --- | --- |")
names = {("fs", "ours"): "ours", ("fs", "dist"): "distribution", ("s3", "ours"): "ours, S3 (moto)"}
for row in order:
    for (store, server), name in names.items():
        v = d.get((store, server, row))
        if not v or "small" not in v or "large" not in v:
            continue
        (s50, s99), (l50, l99) = v["small"], v["large"]
        ratio = l99 / s99 if s99 else float("nan")
        flag = "" if ratio <= 2 or server != "ours" else " (over 2x)"
        print(f"| {row} | {name} | {s50:.2f} / {s99:.2f} | {l50:.2f} / {l99:.2f} | {ratio:.2f}{flag} |")
PY
