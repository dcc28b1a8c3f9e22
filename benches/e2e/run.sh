#!/usr/bin/env bash
# End-to-end benchmark: our `registry` (default, and with --no-fsync; for the
# manifest workload also with --metrics false, the cost of metrics) against
# Debian's docker-registry (CNCF distribution), same workloads, same client,
# alternating servers, with the two machine limits (SHA-256, fdatasync)
# measured in the same run, and, for the manifest GET and the pull, nginx
# serving the same bytes as static files (the practical ceiling). See
# BENCHMARKS.md for what each row means.
#
#   benches/e2e/run.sh                 # full run, RUNS=3 (15-25 minutes)
#   QUICK=1 benches/e2e/run.sh         # small sizes, 1 run: checks the script
#
# Environment:
#   RUNS=N         runs of every workload on every server (default 3; QUICK: 1)
#   QUICK=1        64 MiB instead of 1 GiB, 200 small blobs, 2 s rate tests
#   ONLY="W..."    only these workloads (push_mono push_chunked pull push_2x
#                  small manifest skopeo); the report leaves the others empty
#   INODE_SETTLE=S seconds between a server's deletions and the next
#                  small-blob run (default 61; QUICK: 0), see settle_inodes
#   NO_INSTALL=1   skip scripts/install-test-tools.sh and the wrk install
#   NO_BUILD=1     use the binaries already in target/release
#   REPORT_OUT=F   also copy the markdown report to F
#   BEFORE=BIN     also run every workload on BIN, an earlier build of
#                  `registry` (server `before`, started like `ours`): the
#                  report adds a before/after table, alternating in one run
#   BEFORE_NAME=S  what BIN was built from, for the report (e.g. a commit)
#   KEEP_TMP=1     keep the scratch directory (its path is printed)
#
# Everything (data, server roots, logs, TMPDIR) lives in one mktemp -d,
# removed at exit; every process is started here and stopped by its PID.
# Servers listen on 127.0.0.1 only.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
# Helpers: log, die, free_port, wait_http, start_bg, stop_pid, stop_all.
# shellcheck source-path=SCRIPTDIR source=../../tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
SCRIPT_NAME=e2e

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  RUNS="${RUNS:-1}"
  BIG_MIB=64 SMALL_COUNT=200 RATE_SECS=2 RATE_WARMUP=0.5 LAYER_KIB=16
  INODE_SETTLE="${INODE_SETTLE:-0}"
else
  RUNS="${RUNS:-3}"
  BIG_MIB=1024 SMALL_COUNT=2000 RATE_SECS=10 RATE_WARMUP=1 LAYER_KIB=256
  INODE_SETTLE="${INODE_SETTLE:-61}"
fi
CHUNK=16MiB
SMALL_SIZE=4096
CONCURRENCY=16
CONNECTIONS=64
LAYERS=20
ACCEPT="application/vnd.oci.image.manifest.v1+json"
CLIENT_TIMEOUT=900

# ------------------------------------------------------------- setup --
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/registry-e2e.XXXXXX")"
# shellcheck disable=SC2034 # read by lib.sh
RUN_DIR="$E2E_TMP"
mkdir -p "$E2E_TMP"/{tmp,bin,data,srv,logs}
export TMPDIR="$E2E_TMP/tmp"
RESULTS="$E2E_TMP/results.tsv"
: >"$RESULTS"

cleanup() {
  local rc=$?
  set +e
  stop_all
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    log "keeping $E2E_TMP"
  else
    rm -rf "$E2E_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${NO_INSTALL:-0}" != 1 ]; then
  log "installing tools (scripts/install-test-tools.sh, wrk)"
  EXTRA_PACKAGES=nginx-light bash "$ROOT/scripts/install-test-tools.sh" >"$E2E_TMP/logs/install.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/logs/install.log"; die "install-test-tools.sh failed"; }
  if ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >>"$E2E_TMP/logs/install.log" 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
  fi
fi
require_tools docker-registry skopeo umoci jq curl wrk python3 dd

if [ "${NO_BUILD:-0}" != 1 ]; then
  log "cargo build --release (registry, e2e-client)"
  (cd "$ROOT" && cargo build --release -q -p registry -p e2e-client --bin registry --bin e2e-client)
fi
# Private copies: a rebuild in the work tree during the run changes nothing.
cp "$ROOT/target/release/registry" "$ROOT/target/release/e2e-client" "$E2E_TMP/bin/"
OURS="$E2E_TMP/bin/registry"
CLIENT="$E2E_TMP/bin/e2e-client"

SERVERS=(ours ours_nofsync dist)
HAVE_NOFSYNC=1
if ! "$OURS" serve --help 2>/dev/null | grep -q -- '--no-fsync'; then
  HAVE_NOFSYNC=0
  SERVERS=(ours dist)
  log "NOTE: 'registry serve --help' has no --no-fsync: that column is n/a"
fi
# An earlier build, run beside ours in the same rotation (before/after).
BEFORE_BIN=""
if [ -n "${BEFORE:-}" ]; then
  [ -x "$BEFORE" ] || die "BEFORE=$BEFORE is not an executable"
  cp "$BEFORE" "$E2E_TMP/bin/registry-before"
  BEFORE_BIN="$E2E_TMP/bin/registry-before"
  SERVERS+=(before)
fi
# The manifest workload also runs on `ours_nometrics` (--metrics false): the
# request-path cost of metrics is ours / ours_nometrics.
HAVE_METRICS=1
if ! "$OURS" serve --help 2>/dev/null | grep -q -- '--metrics '; then
  HAVE_METRICS=0
  log "NOTE: 'registry serve --help' has no --metrics: no metrics-off variant"
fi
# The manifest and pull workloads also run on nginx serving the same bytes
# as static files (its access log on): the practical ceiling of the machine.
HAVE_NGINX=0
command -v nginx >/dev/null && HAVE_NGINX=1
# servers_of WORKLOAD: the servers a workload runs on.
servers_of() {
  local extra=()
  if [ "$1" = w_manifest ] && [ "$HAVE_METRICS" = 1 ]; then extra+=(ours_nometrics); fi
  if { [ "$1" = w_manifest ] || [ "$1" = w_pull ]; } && [ "$HAVE_NGINX" = 1 ]; then extra+=(nginx); fi
  echo "${SERVERS[@]}" "${extra[@]}"
}

# write_nginx_config FILE ROOT ADDR ACCEPT.
# shellcheck source-path=SCRIPTDIR source=../nginx.sh
source "$E2E_DIR/../nginx.sh"

# ---------------------------------------------------------- servers --
# Distribution: Debian's packaged config (/etc/docker/registry/config.yml)
# without its htpasswd auth: in-memory blob descriptor cache, default log
# level (info) with its access log, like ours (info, access log).
write_dist_config() { # FILE ROOTDIR ADDR
  cat >"$1" <<EOF
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: $3
  secret: e2e-benchmark-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

# start_srv SERVER NAME: fresh root $E2E_TMP/srv/NAME; sets SRV_PID, SRV_ADDR.
start_srv() {
  local kind="$1" name="$2" root port
  root="$E2E_TMP/srv/$name"
  rm -rf "$root"
  mkdir -p "$root"
  port="$(free_port)"
  SRV_ADDR="127.0.0.1:$port"
  SRV_LOG="$E2E_TMP/logs/$name.log"
  case "$kind" in
    ours) start_bg "$SRV_LOG" "$OURS" serve --listen "$SRV_ADDR" --storage "fs://$root" ;;
    ours_nofsync) start_bg "$SRV_LOG" "$OURS" serve --listen "$SRV_ADDR" --storage "fs://$root" --no-fsync ;;
    ours_nometrics) start_bg "$SRV_LOG" "$OURS" serve --listen "$SRV_ADDR" --storage "fs://$root" --metrics false ;;
    before) start_bg "$SRV_LOG" "$BEFORE_BIN" serve --listen "$SRV_ADDR" --storage "fs://$root" ;;
    dist)
      write_dist_config "$E2E_TMP/srv/$name.yml" "$root" "$SRV_ADDR"
      start_bg "$SRV_LOG" docker-registry serve "$E2E_TMP/srv/$name.yml"
      ;;
    nginx)
      write_nginx_config "$E2E_TMP/srv/$name.conf" "$root" "$SRV_ADDR" "$ACCEPT"
      start_bg "$SRV_LOG" nginx -e "$SRV_LOG" -p "$root" -c "$E2E_TMP/srv/$name.conf"
      ;;
  esac
  SRV_PID="$BG_PID"
  SRV_ROOT="$root"
  wait_http "http://$SRV_ADDR/v2/" 60 "$SRV_PID" || { tail -n 20 "$SRV_LOG"; die "$name did not start"; }
}

# stop_srv: stop it, count WARN/ERROR lines of its log, delete its data.
stop_srv() {
  stop_pid "$SRV_PID"
  grep -aE ' (WARN|ERROR) |level=(warn|error)' "$SRV_LOG" | sed "s|^|$(basename "$SRV_LOG" .log): |" \
    >>"$E2E_TMP/logs/warnings.txt" || true
  rm -rf "$SRV_ROOT" "$SRV_ROOT.yml" "$SRV_ROOT.conf" "$SRV_ROOT.conf.pid" "$SRV_ROOT.access.log"
  sync   # start the next server with no dirty pages of this one pending
  LAST_DELETE=$SECONDS
}
LAST_DELETE=0

# settle_inodes: wait until the inodes the previous servers freed are no
# longer "recently deleted". On ext4 without a journal (this machine's root
# file system), the inode allocator skips every inode freed in the last 60 s
# (once its table block is clean), one buffer lookup each: a server that
# creates thousands of files right after another one deleted thousands pays
# for its predecessor's deletions. Measured on this machine (2,000 blobs,
# RUNS=2): with INODE_SETTLE=0 our server used 2.3 to 6.2 CPU-s and pushed
# 537 to 1261 blobs/s depending on what ran before it; with 61 s, 1.7 CPU-s
# and 1783 blobs/s.
settle_inodes() {
  local wait=$((INODE_SETTLE - (SECONDS - LAST_DELETE)))
  if [ "$wait" -gt 0 ]; then
    log "waiting ${wait}s for freed inodes to age (INODE_SETTLE=$INODE_SETTLE)"
    sleep "$wait"
  fi
}

# Peak RSS (VmHWM) of the server so far, MiB; reset_hwm starts a new peak.
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SRV_PID/status"; }
reset_hwm() { echo 5 >"/proc/$SRV_PID/clear_refs"; }
# CPU time (user + system) of the server so far, seconds.
CLK_TCK="$(getconf CLK_TCK)"
cpu_s() { awk -v t="$CLK_TCK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$SRV_PID/stat"; }

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; } # METRIC SERVER RUN VALUE

client() { timeout -k 10 "$CLIENT_TIMEOUT" "$CLIENT" "$@"; }

# ------------------------------------------------------------- data --
BIG="$E2E_TMP/data/blob.bin"
log "writing ${BIG_MIB} MiB of random data"
head -c "$((BIG_MIB << 20))" /dev/urandom >"$BIG"
BIG_DIGEST="sha256:$(sha256sum "$BIG" | cut -d' ' -f1)"
BIG2_DIGEST="sha256:$(cat "$BIG" "$BIG" | sha256sum | cut -d' ' -f1)"
BIG_BYTES=$((BIG_MIB << 20))

# A 20-layer OCI image: layer i holds i * LAYER_KIB KiB of random data
# (1 GiB run: 256 KiB to 5 MiB, 52.5 MiB in all), appended with
# `umoci raw add-layer` (no unpack/repack of the growing rootfs).
IMAGE="$E2E_TMP/data/image"
log "building a $LAYERS-layer image with umoci"
umoci init --layout "$IMAGE"
umoci new --image "$IMAGE:bench"
for i in $(seq 1 "$LAYERS"); do
  d="$E2E_TMP/tmp/layer$i"
  mkdir -p "$d/data/layer$i"
  head -c $((i * LAYER_KIB * 1024)) /dev/urandom >"$d/data/layer$i/random.bin"
  tar -C "$d" -cf "$d.tar" data
  umoci raw add-layer --image "$IMAGE:bench" "$d.tar"
  rm -rf "$d" "$d.tar"
done
umoci config --image "$IMAGE:bench" --config.cmd /bin/true
umoci gc --layout "$IMAGE"
IMAGE_MIB="$(du -sm "$IMAGE" | cut -f1)"

# ----------------------------------------------------------- limits --
# SHA-256 with OpenSSL (Python's hashlib) over the file, in memory, 1 MiB
# updates; fdatasync: dd of the file to the same disk as the servers' roots.
limit_sha256() {
  python3 - "$BIG" <<'EOF'
import hashlib, sys, time
data = open(sys.argv[1], "rb").read()
view, step = memoryview(data), 1 << 20
h = hashlib.sha256()
t = time.perf_counter()
for i in range(0, len(data), step):
    h.update(view[i:i + step])
h.hexdigest()
print(len(data) / (time.perf_counter() - t) / 2**20)
EOF
}
limit_fdatasync() {
  local out="$E2E_TMP/srv/dd.out" t0 t1
  t0=$EPOCHREALTIME
  dd if="$BIG" of="$out" bs=16M conv=fdatasync status=none
  t1=$EPOCHREALTIME
  rm -f "$out"
  sync
  python3 -c "print($BIG_BYTES / ($t1 - $t0) / 2**20)"
}

# -------------------------------------------------------- workloads --
# Each: W SERVER RUN. Returns non-zero on failure (the run goes on).
w_push_mono() {
  local out
  start_srv "$1" "$1-push-mono-r$2"
  out="$(client push --registry "$SRV_ADDR" --repo bench/blob --file "$BIG" --digest "$BIG_DIGEST")" || { stop_srv; return 1; }
  record push_mono "$1" "$2" "$(jq -r .mib_per_s <<<"$out")"
  record rss_push_mono "$1" "$2" "$(hwm_mib)"
  record cpu_push_mono "$1" "$2" "$(cpu_s)"
  stop_srv
}

w_push_chunked() {
  local out
  start_srv "$1" "$1-push-chunked-r$2"
  out="$(client push --registry "$SRV_ADDR" --repo bench/blob --file "$BIG" --digest "$BIG_DIGEST" --chunk-size "$CHUNK")" || { stop_srv; return 1; }
  record push_chunked "$1" "$2" "$(jq -r .mib_per_s <<<"$out")"
  record rss_push_chunked "$1" "$2" "$(hwm_mib)"
  record cpu_push_chunked "$1" "$2" "$(cpu_s)"
  stop_srv
}

w_pull() {
  local out cpu0
  start_srv "$1" "$1-pull-r$2"
  if [ "$1" = nginx ]; then
    mkdir -p "$SRV_ROOT/v2/bench/blob/blobs"
    ln -s "$BIG" "$SRV_ROOT/v2/bench/blob/blobs/$BIG_DIGEST"
  else
    client push --registry "$SRV_ADDR" --repo bench/blob --file "$BIG" --digest "$BIG_DIGEST" >/dev/null || { stop_srv; return 1; }
  fi
  sync
  reset_hwm
  cpu0="$(cpu_s)"
  out="$(client pull --registry "$SRV_ADDR" --repo bench/blob --digest "$BIG_DIGEST" --size "$BIG_BYTES")" || { stop_srv; return 1; }
  record pull "$1" "$2" "$(jq -r .mib_per_s <<<"$out")"
  if [ "$1" != nginx ]; then # nginx works in its workers, not its master's PID
    record rss_pull "$1" "$2" "$(hwm_mib)"
    record cpu_pull "$1" "$2" "$(python3 -c "print($(cpu_s) - $cpu0)")"
  fi
  if [ "$2" = 1 ]; then # content check, once per server, untimed
    client pull --registry "$SRV_ADDR" --repo bench/blob --digest "$BIG_DIGEST" --size "$BIG_BYTES" --verify >/dev/null ||
      { stop_srv; return 1; }
  fi
  stop_srv
}

w_push_2x() { # memory only: one blob twice the file's size
  local out
  start_srv "$1" "$1-push-2x-r$2"
  out="$(client push --registry "$SRV_ADDR" --repo bench/blob --file "$BIG" --digest "$BIG2_DIGEST" --repeat 2)" || { stop_srv; return 1; }
  record rss_push_2x "$1" "$2" "$(hwm_mib)"
  stop_srv
}

w_small() {
  local out
  settle_inodes
  start_srv "$1" "$1-small-r$2"
  out="$(client small-blobs --registry "$SRV_ADDR" --repo bench/small --count "$SMALL_COUNT" --size "$SMALL_SIZE" --concurrency "$CONCURRENCY")" || { stop_srv; return 1; }
  record small "$1" "$2" "$(jq -r .blobs_per_s <<<"$out")"
  record cpu_small "$1" "$2" "$(cpu_s)"
  stop_srv
}

# rate_record PREFIX SERVER RUN JSON
rate_record() {
  record "$1_rps" "$2" "$3" "$(jq -r .rps <<<"$4")"
  record "$1_p99" "$2" "$3" "$(jq -r .p99_ms <<<"$4")"
  record "$1_errors" "$2" "$3" "$(jq -r .errors <<<"$4")"
}

w_manifest() {
  local url out bytes
  if [ "$1" = nginx ]; then
    # The bytes our registry serves for such a manifest, as a static file.
    bytes="$E2E_TMP/srv/manifest-r$2.json"
    start_srv ours "nginx-manifest-source-r$2"
    client put-manifest --registry "$SRV_ADDR" --repo bench/manifest --tag latest >/dev/null || { stop_srv; return 1; }
    curl -fsS -H "Accept: $ACCEPT" -o "$bytes" "http://$SRV_ADDR/v2/bench/manifest/manifests/latest" || { stop_srv; return 1; }
    stop_srv
    start_srv nginx "$1-manifest-r$2"
    mkdir -p "$SRV_ROOT/v2/bench/manifest/manifests"
    mv "$bytes" "$SRV_ROOT/v2/bench/manifest/manifests/latest"
  else
    start_srv "$1" "$1-manifest-r$2"
    client put-manifest --registry "$SRV_ADDR" --repo bench/manifest --tag latest >/dev/null || { stop_srv; return 1; }
  fi
  url="http://$SRV_ADDR/v2/bench/manifest/manifests/latest"
  out="$(timeout -k 5 120 wrk -t1 -c"$CONNECTIONS" -d"${RATE_SECS}s" -s "$E2E_DIR/wrk-manifest.lua" "$url" | tail -n 1)" || { stop_srv; return 1; }
  rate_record mget_wrk "$1" "$2" "$out"
  out="$(client rate --url "$url" --method GET --header "Accept: $ACCEPT" --connections "$CONNECTIONS" --duration "$RATE_SECS" --warmup "$RATE_WARMUP")" || { stop_srv; return 1; }
  rate_record mget "$1" "$2" "$out"
  out="$(client rate --url "$url" --method HEAD --header "Accept: $ACCEPT" --connections "$CONNECTIONS" --duration "$RATE_SECS" --warmup "$RATE_WARMUP")" || { stop_srv; return 1; }
  rate_record mhead "$1" "$2" "$out"
  # Server CPU per request: a load-independent figure of the request
  # path's cost (other processes on the machine change the rate, not this).
  if [ "$1" != nginx ]; then
    local c0 c1
    c0="$(cpu_s)"
    out="$(client rate --url "$url" --method GET --header "Accept: $ACCEPT" --connections "$CONNECTIONS" --duration "$RATE_SECS" --warmup 0)" || { stop_srv; return 1; }
    c1="$(cpu_s)"
    record mget_cpu_us "$1" "$2" "$(jq -r --arg c0 "$c0" --arg c1 "$c1" '(($c1 | tonumber) - ($c0 | tonumber)) * 1e6 / .requests' <<<"$out")"
  fi
  stop_srv
}

w_skopeo() {
  local t0 t1
  start_srv "$1" "$1-skopeo-r$2"
  t0=$EPOCHREALTIME
  timeout -k 10 600 skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$IMAGE:bench" "docker://$SRV_ADDR/bench/image:bench" >>"$E2E_TMP/logs/skopeo.log" 2>&1 ||
    { tail -n 5 "$E2E_TMP/logs/skopeo.log"; stop_srv; return 1; }
  t1=$EPOCHREALTIME
  record skopeo "$1" "$2" "$(python3 -c "print($t1 - $t0)")"
  stop_srv
}

# ------------------------------------------------------------- runs --
WORKLOADS=(w_push_mono w_push_chunked w_pull w_push_2x w_small w_manifest w_skopeo)
if [ -n "${ONLY:-}" ]; then
  # A subset, for working on one figure: ONLY="small push_chunked".
  WORKLOADS=()
  for w in $ONLY; do WORKLOADS+=("w_$w"); done
fi
FAILURES=0
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$SECONDS
for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS: limits"
  record limit_sha256 limit "$run" "$(limit_sha256)"
  record limit_fdatasync limit "$run" "$(limit_fdatasync)"
  for w in "${WORKLOADS[@]}"; do
    # Rotate the server order each run, so none is always first.
    read -r -a servers <<<"$(servers_of "$w")"
    order=("${servers[@]:$(((run - 1) % ${#servers[@]}))}" "${servers[@]:0:$(((run - 1) % ${#servers[@]}))}")
    for s in "${order[@]}"; do
      log "run $run/$RUNS: ${w#w_} on $s"
      if ! "$w" "$s" "$run"; then
        FAILURES=$((FAILURES + 1))
        log "FAILED: ${w#w_} on $s (run $run); last lines of its log:"
        tail -n 5 "$SRV_LOG" || true
      fi
    done
  done
done

# ----------------------------------------------------------- report --
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit + uncommitted changes"; fi
disk_dev="$(df --output=source "$E2E_TMP" | tail -n 1)"
cat >"$E2E_TMP/meta.json" <<EOF
{
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "commit": "$commit",
  "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(grep -m1 -o -w sha_ni /proc/cpuinfo || echo no sha_ni))",
  "nproc": "$(nproc)",
  "memory": "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)",
  "disk": "$disk_dev, $(df --output=fstype "$E2E_TMP" | tail -n 1), $(df -h --output=size "$E2E_TMP" | tail -n 1 | tr -d ' ')",
  "kernel": "$(uname -sr)",
  "distribution": "$(dpkg-query -W -f='${Version}' docker-registry)",
  "skopeo": "$(dpkg-query -W -f='${Version}' skopeo)",
  "wrk": "$(dpkg-query -W -f='${Version}' wrk)",
  "nginx": "$(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null || echo none)",
  "runs": $RUNS,
  "quick": $QUICK,
  "big_mib": $BIG_MIB,
  "small_count": $SMALL_COUNT,
  "rate_secs": $RATE_SECS,
  "image_mib": $IMAGE_MIB,
  "have_nofsync": $HAVE_NOFSYNC,
  "before": "$(if [ -n "$BEFORE_BIN" ]; then echo "${BEFORE_NAME:-$BEFORE}"; fi)",
  "failures": $FAILURES,
  "load": "load average $LOAD_START before the run, $(cut -d' ' -f1-3 /proc/loadavg) at its end (its own servers and clients count); $(((SECONDS - T_START) / 60)) min"
}
EOF
python3 "$E2E_DIR/report.py" "$RESULTS" "$E2E_TMP/meta.json" "$E2E_TMP/report.md"
if [ -s "$E2E_TMP/logs/warnings.txt" ]; then
  python3 "$E2E_DIR/log_summary.py" "$E2E_TMP/logs/warnings.txt"
fi
printf '\n---- markdown copy (%s) ----\n' "$E2E_TMP/report.md"
cat "$E2E_TMP/report.md"
if [ -n "${REPORT_OUT:-}" ]; then cp "$E2E_TMP/report.md" "$REPORT_OUT"; fi
[ "$FAILURES" -eq 0 ] || { log "$FAILURES workload runs failed"; exit 1; }
