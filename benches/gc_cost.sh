#!/usr/bin/env bash
# What a garbage collection costs (issue: "Cost"): `registry gc` over a
# store of MANIFESTS manifests and 5x as many blobs (benches/gc/populate.py:
# a fifth of the manifests untagged), on a directory and on the local S3
# server (moto), against Debian's CNCF distribution 2.8.2
# `garbage-collect --dry-run` on the same directory, in the same run.
# Reports wall time and peak memory (GNU time's maximum resident set), and,
# on S3, the requests the server answered.
#
#   benches/gc_cost.sh                   # 10,000 manifests, 50,000 blobs
#   MANIFESTS=1000 benches/gc_cost.sh    # quicker
#
# Environment: MANIFESTS (default 10000, in repositories of 100),
# NO_BUILD=1 (use target/release/registry as it is), REGISTRY_BIN (another
# binary; implies nothing is built), NO_S3=1, NO_INSTALL=1.
# Everything lives in one mktemp -d, removed at exit; moto is stopped by
# its PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFESTS="${MANIFESTS:-10000}"
PER_REPO=100
REPOS=$(( (MANIFESTS + PER_REPO - 1) / PER_REPO ))
WORK="$(mktemp -d -t registry-gc-bench.XXXXXX)"
# shellcheck source=scripts/moto.sh
source "$ROOT/scripts/moto.sh"
trap 'moto_stop; rm -rf "$WORK"' EXIT

[ "${NO_INSTALL:-0}" = 1 ] || bash "$ROOT/scripts/install-test-tools.sh" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log"; exit 1; }
[ "${NO_BUILD:-0}" = 1 ] || [ -n "${REGISTRY_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet --bin registry)
REGISTRY="${REGISTRY_BIN:-$ROOT/target/release/registry}"
command -v docker-registry >/dev/null || { echo "docker-registry missing" >&2; exit 1; }

# timed NAME CMD...: run CMD, record "NAME seconds peak_KiB", print its last line.
RESULTS="$WORK/results"
timed() {
  local name="$1"; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
    { cat "$WORK/$name.err" >&2; echo "$name failed" >&2; exit 1; }
  echo "$name $(cat "$WORK/time")" >>"$RESULTS"
  printf '%-28s %s\n' "$name" "$(tail -n 1 "$WORK/$name.out")"
}

echo "store: $MANIFESTS manifests in $REPOS repositories, $((MANIFESTS * 5)) blobs"
python3 "$ROOT/benches/gc/populate.py" fs "$WORK/store" "$REPOS" "$PER_REPO"
cat >"$WORK/dist.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/store
YML
sync
timed "fs: distribution dry run" docker-registry garbage-collect --dry-run --delete-untagged "$WORK/dist.yml"
grep -c "blob eligible for deletion" "$WORK/fs: distribution dry run.out" | sed 's/^/  distribution: blobs eligible: /'
timed "fs: ours, plan" "$REGISTRY" gc --storage "fs://$WORK/store" --grace 0s --delete-untagged
timed "fs: ours, commit" "$REGISTRY" gc --storage "fs://$WORK/store" --grace 0s --delete-untagged --commit

if [ "${NO_S3:-0}" != 1 ]; then
  moto_start "$WORK"
  "$ROOT/.venv/bin/python" "$ROOT/benches/gc/populate.py" s3 "$MOTO_ENDPOINT" "$MOTO_BUCKET" bench "$REPOS" "$PER_REPO"
  URL="s3://$MOTO_BUCKET/bench?endpoint=$MOTO_ENDPOINT&region=us-east-1"
  for mode in plan commit; do
    before="$(grep -c 'HTTP/1.1"' "$WORK/moto.log" || true)"
    flag=(); [ "$mode" = commit ] && flag=(--commit)
    timed "s3: ours, $mode" "$REGISTRY" gc --storage "$URL" --grace 0s --delete-untagged "${flag[@]}"
    after="$(grep -c 'HTTP/1.1"' "$WORK/moto.log" || true)"
    echo "  requests: $((after - before))"
    echo "s3-requests-$mode $((after - before))" >>"$RESULTS"
  done
fi

echo
echo "| run | wall time (s) | peak memory (MiB) |"
echo "| --- | --- | --- |"
grep -v '^s3-requests' "$RESULTS" | while read -r line; do
  kib="${line##* }"; rest="${line% *}"; secs="${rest##* }"; name="${rest% *}"
  printf '| %s | %s | %s |\n' "$name" "$secs" "$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')"
done
dist="$(awk '/^fs: distribution dry run/ { print $(NF-1) }' "$RESULTS")"
ours="$(awk '/^fs: ours, plan/ { print $(NF-1) }' "$RESULTS")"
awk -v d="$dist" -v o="$ours" 'BEGIN { printf "\nfs plan: ours takes %.2fx distribution'"'"'s dry-run time (goal: below 1)\n", o / d }'
