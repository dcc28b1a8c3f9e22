#!/usr/bin/env bash
# Pull-through mirror, measured (issue 15, "Performance"): a cold pull of one
# large blob through the mirror vs a direct pull from the same local upstream
# (goal >= 0.8), and a warm pull through the mirror vs an ordinary pull of the
# same blob from this registry (goal ~1.0). The upstream is Debian's
# distribution 2.8.2 behind htpasswd (start_distribution_htpasswd in
# tests/interop/lib.sh), on 127.0.0.1.
#
#   benches/mirror.sh                    # SIZE_MIB=1024, release binary
#   SIZE_MIB=64 BIN_DIR=target/debug benches/mirror.sh
#
# Environment: SIZE_MIB (1024), BIN_DIR (take `registry` from there, build
# nothing; default: cargo build --release, then target/release), COLD_RUNS
# (3: cold pulls, each through a new mirror on a new store), BEFORE (another
# build's `registry`: its cold pulls too, alternating, same rounds).
# Everything lives in one mktemp -d, removed at exit; every server is started
# here and stopped by its PID.
#
# With a binary that has no `--mirror` (an older one) the mirror rows print
# "n/a" and the script exits 3, so nothing is reported as measured that was
# not. The mirror is configured as docs/MIRROR.md says ([[mirrors]] with the
# upstream's credentials in a password file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"
: "${SIZE_MIB:=1024}"
require_tools curl htpasswd sha256sum "$DISTRIBUTION_BIN"
if [ -z "${BIN_DIR:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin registry)
  BIN_DIR="$ROOT/target/release"
fi
REGISTRY="$(cd "$BIN_DIR" && pwd)/registry"
[ -x "$REGISTRY" ] || die "no registry binary in $BIN_DIR"
interop_init

USER_NAME=bench PASSWORD=bench-secret
BLOB="$RUN_DIR/blob"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$BLOB"
DIGEST="$(sha256_of "$BLOB")"
log "blob $DIGEST, $SIZE_MIB MiB"

# push_blob BASE_URL REPO [CURL_AUTH...]: monolithic streamed PUT (curl -T
# streams the file; --data-binary would read it into memory).
push_blob() {
  local base="$1" repo="$2" loc; shift 2
  loc="$(curl -sf -D - -o /dev/null "$@" -X POST "$base/v2/$repo/blobs/uploads/" \
    | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')"
  case "$loc" in http*) ;; *) loc="$base$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$DIGEST" ;; *) loc="$loc?digest=$DIGEST" ;; esac
  curl -sf -o /dev/null "$@" -T "$BLOB" -H 'Content-Type: application/octet-stream' "$loc"
}

# pull_secs URL [CURL_AUTH...]: seconds for one GET of the blob into
# /dev/null (a 1 GiB file written to disk would measure the disk, and
# sha256sum here is slower than the network path).
pull_secs() {
  local url="$1"; shift
  curl -sf "$@" "$url" -o /dev/null -w '%{time_total}'
}

# best_secs URL [CURL_AUTH...]: the fastest of three pulls.
best_secs() {
  local times=() i
  for i in 1 2 3; do times+=("$(pull_secs "$@")"); done
  min_of "${times[@]}"
}

# check_bytes URL [CURL_AUTH...]: one more pull, hashed (Python's hashlib:
# OpenSSL, SHA extensions), must be the blob.
check_bytes() {
  local url="$1" got; shift
  got="$(curl -sf "$@" "$url" | python3 -c '
import hashlib, sys
h = hashlib.sha256()
for b in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
    h.update(b)
print("sha256:" + h.hexdigest())')"
  [ "$got" = "$DIGEST" ] || die "pulled bytes of $url do not match $DIGEST"
}

# cpu_secs PID: user + system CPU seconds the process has used so far.
cpu_secs() {
  python3 -c "import os, sys; f = open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')', 1)[1].split(); print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))" "$1"
}

# min_of X...: the smallest; since A B: B - A, two decimals.
min_of() { python3 -c "import sys; print(min(float(a) for a in sys.argv[1:]))" "$@"; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
mibps() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.0f}')" "$SIZE_MIB" "$1"; }

start_distribution_htpasswd "$RUN_DIR/upstream" upstream "$USER_NAME" "$PASSWORD"
UP="http://$SERVER_ADDR"
push_blob "$UP" bench/big -u "$USER_NAME:$PASSWORD"
check_bytes "$UP/v2/bench/big/blobs/$DIGEST" -u "$USER_NAME:$PASSWORD"
DIRECT="$(best_secs "$UP/v2/bench/big/blobs/$DIGEST" -u "$USER_NAME:$PASSWORD")"

start_server "$REGISTRY" "$RUN_DIR/ours" ours
OURS="http://$SERVER_ADDR"
push_blob "$OURS" local/big
check_bytes "$OURS/v2/local/big/blobs/$DIGEST"
ORDINARY="$(best_secs "$OURS/v2/local/big/blobs/$DIGEST")"

printf '\n| %-40s | %8s | %7s |\n' "pull of one $SIZE_MIB MiB blob (best of 3; cold: of ${COLD_RUNS:-3})" seconds "MiB/s"
printf '| %-40s | %8s | %7s |\n' "direct from upstream (distribution)" "$DIRECT" "$(mibps "$DIRECT")"
printf '| %-40s | %8s | %7s |\n' "ordinary from this registry" "$ORDINARY" "$(mibps "$ORDINARY")"

if ! "$REGISTRY" serve --help 2>/dev/null | grep -q -- '--mirror'; then
  printf '| %-40s | %8s | %7s |\n' "cold through the mirror" n/a n/a "warm through the mirror" n/a n/a
  log "this registry has no --mirror: mirror rows not measured"
  exit 3
fi

printf '%s' "$PASSWORD" >"$RUN_DIR/upstream.password"
cat >"$RUN_DIR/mirror.toml" <<EOF
[[mirrors]]
prefix = "up.test"
upstreams = [{ url = "$UP", username = "$USER_NAME", password_file = "$RUN_DIR/upstream.password" }]
EOF
# The page cache: a cold pull writes the blob into it. On a machine that
# booted lately, the first write into memory never touched since costs far
# more than later ones (a VM's guest pages are backed on first touch);
# the cold pulls below come after two scratch writes of the same size
# (printed), as on a host that has been running.
scratch_secs() {
  local t0 t1
  t0="$(date +%s.%N)"
  dd if=/dev/zero of="$RUN_DIR/scratch" bs=1M count="$SIZE_MIB" status=none
  t1="$(date +%s.%N)"
  rm -f "$RUN_DIR/scratch"
  since "$t0" "$t1"
}
PAGE1="$(scratch_secs)" PAGE2="$(scratch_secs)"

# cold_pull BIN KEEP: one pull through a new mirror process of BIN on a new
# store; sets COLD_T (seconds) and COLD_C (the mirror's CPU seconds). KEEP=1 leaves the
# process running (MIRROR_PID, MIRROR_URL) for the warm pulls, else it is
# stopped and its store removed.
cold_pull() {
  local port pid url cpu0 cpu1 t
  port="$(free_port)"
  COLD_N=$((COLD_N + 1))
  start_bg "$RUN_DIR/servers/mirror-$COLD_N.log" "$1" serve --listen "127.0.0.1:$port" \
    --storage "fs://$RUN_DIR/mirror-store-$COLD_N" --config "$RUN_DIR/mirror.toml"
  pid="$BG_PID"
  wait_http "http://127.0.0.1:$port/v2/" "$INTEROP_TIMEOUT" "$pid" || die "mirror did not come up"
  url="http://127.0.0.1:$port/v2/up.test/bench/big/blobs/$DIGEST"
  cpu0="$(cpu_secs "$pid")"
  t="$(pull_secs "$url")"
  cpu1="$(cpu_secs "$pid")"
  if [ "$2" = 1 ]; then
    MIRROR_PID="$pid" MIRROR_URL="$url"
  else
    stop_pid "$pid"
    rm -rf "$RUN_DIR/mirror-store-$COLD_N"
  fi
  COLD_T="$t"
  COLD_C="$(since "$cpu0" "$cpu1")"
}

# COLD_RUNS rounds, each a cold pull of this build (and of BEFORE's, if
# set, in the same round): the best of them is the row, all are printed.
COLD=() COLD_CPU=() BEFORE_COLD=() BEFORE_CPU=() COLD_N=0
for round in $(seq 1 "${COLD_RUNS:-3}"); do
  if [ -n "${BEFORE:-}" ]; then
    cold_pull "$BEFORE" 0
    BEFORE_COLD+=("$COLD_T") BEFORE_CPU+=("$COLD_C")
  fi
  cold_pull "$REGISTRY" "$([ "$round" = 1 ] && echo 1 || echo 0)"
  COLD+=("$COLD_T") COLD_CPU+=("$COLD_C")
done
# The first cold pull of this build filled the kept mirror: its bytes are
# checked by the pull after it (the mirror verifies before it stores, and a
# cut-short cold body would have failed curl -f).
check_bytes "$MIRROR_URL"
CPU2="$(cpu_secs "$MIRROR_PID")"
WARM="$(pull_secs "$MIRROR_URL")"
CPU3="$(cpu_secs "$MIRROR_PID")"
WARM="$(min_of "$(best_secs "$MIRROR_URL")" "$WARM")"
COLD_BEST="$(min_of "${COLD[@]}")"
printf '| %-40s | %8s | %7s |\n' "cold through the mirror" "$COLD_BEST" "$(mibps "$COLD_BEST")"
if [ -n "${BEFORE:-}" ]; then
  B="$(min_of "${BEFORE_COLD[@]}")"
  printf '| %-40s | %8s | %7s |\n' "cold through the mirror, BEFORE build" "$B" "$(mibps "$B")"
fi
printf '| %-40s | %8s | %7s |\n' "warm through the mirror" "$WARM" "$(mibps "$WARM")"
printf '\ncold/direct throughput ratio: %s (goal >= 0.8)\n' "$(ratio "$DIRECT" "$COLD_BEST")"
printf 'warm/ordinary throughput ratio: %s (goal ~1.0)\n' "$(ratio "$ORDINARY" "$WARM")"
printf 'cold pulls (s): %s; the mirror process'"'"'s CPU (s): %s\n' "${COLD[*]}" "${COLD_CPU[*]}"
if [ -n "${BEFORE:-}" ]; then
  printf 'BEFORE build cold pulls (s): %s; CPU (s): %s\n' "${BEFORE_COLD[*]}" "${BEFORE_CPU[*]}"
fi
printf "one warm pull's CPU: %s s\n" \
  "$(since "$CPU2" "$CPU3")"
printf 'writing %s MiB into the page cache here (dd, twice, before the cold pulls): %s s, %s s\n' "$SIZE_MIB" "$PAGE1" "$PAGE2"
