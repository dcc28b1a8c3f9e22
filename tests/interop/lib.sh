# shellcheck shell=bash
# Shared helpers for the interoperability tests in tests/interop/.
#
# Source it from a bash script running with `set -euo pipefail`, then call
# `interop_init` once. It provides:
#   - a per-run scratch directory ($RUN_DIR, from mktemp -d) that is removed
#     on exit; TMPDIR is pointed inside it so that skopeo, umoci and python
#     leave nothing behind in /tmp (KEEP_TMP=1 keeps it for debugging);
#   - background processes started by PID and all stopped by the EXIT trap
#     (never by name);
#   - free port selection, bounded wait-for-http;
#   - starting Debian's docker-registry (CNCF distribution) or our `registry`
#     binary on a given storage root;
#   - building a small multi-layer OCI image layout offline with umoci;
#   - PASS/FAIL assertion helpers with counters and the final
#     `N passed, M failed` summary line.
#
# Environment knobs:
#   INTEROP_TIMEOUT       per-command timeout in seconds (default 120)
#   INTEROP_COUNTS_FILE   set by run.sh: sub-scripts append "name passed failed"
#                         there and print a non-final summary line instead
#   INTEROP_PIDS_FILE     set by run.sh: sub-scripts also record their server
#                         PIDs there, so run.sh can stop them if a sub-script
#                         was killed before its own cleanup ran
#   KEEP_TMP=1            keep $RUN_DIR (its path is printed)
#   DISTRIBUTION_BIN      distribution binary (default /usr/bin/docker-registry)

INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by run.sh
REPO_ROOT="$(cd "$INTEROP_DIR/../.." && pwd)"
: "${INTEROP_TIMEOUT:=120}"
: "${DISTRIBUTION_BIN:=/usr/bin/docker-registry}"

PASSED=0
FAILED=0
STARTED_PIDS=()   # every background process we started, in start order
RUN_DIR=""
SCRIPT_NAME="$(basename "$0")"

# --------------------------------------------------------------- logging --
log()  { printf '[%s] %s\n' "$SCRIPT_NAME" "$*"; }
die()  { printf '[%s] FATAL: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 2; }

# ----------------------------------------------------------- assertions --
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$1"; }

# fail DESCRIPTION [DETAIL...]: details are printed indented under the line
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL: %s\n' "$1"
  shift
  local d
  for d in "$@"; do printf '%s\n' "$d" | sed 's/^/      /'; done
}

# check DESCRIPTION CMD...: PASS when CMD exits 0; on failure show its output.
check() {
  local desc="$1"; shift
  local out="$RUN_DIR/last-check.out" shown="$*"
  shown="${shown/#sk /skopeo --insecure-policy }"
  if "$@" >"$out" 2>&1; then
    pass "$desc"
  else
    fail "$desc" "command failed (rc=$?): $shown" "$(tail -n 15 "$out")"
  fi
}

# check_fails DESCRIPTION CMD...: PASS when CMD exits non-zero.
check_fails() {
  local desc="$1"; shift
  local out="$RUN_DIR/last-check.out" shown="$*"
  shown="${shown/#sk /skopeo --insecure-policy }"
  if "$@" >"$out" 2>&1; then
    fail "$desc" "command unexpectedly succeeded: $shown" "$(head -n 8 "$out")"
  else
    pass "$desc"
  fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then
    pass "$1"
  else
    fail "$1" "expected: $2" "actual:   $3"
  fi
}

# check_contains DESCRIPTION HAYSTACK NEEDLE
check_contains() {
  case "$2" in
    *"$3"*) pass "$1" ;;
    *) fail "$1" "expected to contain: $3" "actual: $(printf '%s' "$2" | head -c 2000)" ;;
  esac
}

# show_server_logs: print the tail of every server log, once. On failure the
# servers' view is usually what explains a client-side failure.
LOGS_SHOWN=0
show_server_logs() {
  local f
  [ "$LOGS_SHOWN" = 0 ] && [ -n "$RUN_DIR" ] || return 0
  LOGS_SHOWN=1
  for f in "$RUN_DIR"/servers/*.log; do
    [ -f "$f" ] || continue
    printf -- '---- last lines of %s ----\n' "${f#"$RUN_DIR"/}"
    tail -n 12 "$f"
  done
}

# Print the summary. Standalone: the final `N passed, M failed` line.
# Under run.sh (INTEROP_COUNTS_FILE set): record counts for the combined line.
# Returns non-zero when anything failed.
interop_summary() {
  if [ "$FAILED" -gt 0 ]; then show_server_logs; fi
  if [ -n "${INTEROP_COUNTS_FILE:-}" ]; then
    printf '%s %d %d\n' "$SCRIPT_NAME" "$PASSED" "$FAILED" >>"$INTEROP_COUNTS_FILE"
    printf -- '-- %s totals: %d pass, %d fail\n' "$SCRIPT_NAME" "$PASSED" "$FAILED"
  else
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  fi
  [ "$FAILED" -eq 0 ]
}

# ------------------------------------------------- run dir and cleanup --
interop_init() {
  RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/registry-interop.XXXXXX")"
  mkdir -p "$RUN_DIR/tmp"
  export TMPDIR="$RUN_DIR/tmp"
  trap interop_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# interop_cleanup [RC]: EXIT trap; RC defaults to the exit status.
interop_cleanup() {
  local rc=$?
  [ $# -gt 0 ] && rc="$1"
  set +e   # a failing command in here must not abort the cleanup
  if [ "$rc" -ne 0 ]; then show_server_logs; fi
  stop_all
  if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then
      log "keeping $RUN_DIR" >&2
    else
      rm -rf "$RUN_DIR"
    fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------- processes --
# start_bg LOGFILE CMD...: start CMD in the background, output to LOGFILE.
# Sets BG_PID and records it for cleanup.
start_bg() {
  local logfile="$1"; shift
  "$@" >"$logfile" 2>&1 </dev/null &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
  if [ -n "${INTEROP_PIDS_FILE:-}" ]; then echo "$BG_PID" >>"$INTEROP_PIDS_FILE"; fi
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only our own PIDs.
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# stop_all: stop everything we started, most recent first.
stop_all() {
  local i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${STARTED_PIDS[$i]}"
  done
  STARTED_PIDS=()
}

# stop_recorded_pids FILE DIR: stop PIDs listed in FILE (by sub-scripts) that
# are still alive, but only if their command line mentions DIR (our run
# directory), so a recycled PID is never touched.
stop_recorded_pids() {
  local file="$1" dir="$2" pid
  [ -f "$file" ] || return 0
  while read -r pid; do
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then continue; fi
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir"; then
      log "stopping leftover pid $pid"
      stop_pid "$pid"
    fi
  done <"$file"
}

# free_port: print a currently free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_until TIMEOUT_S CMD...: run CMD every 0.1 s until it succeeds (0)
# or TIMEOUT_S seconds have passed (1).
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# wait_http URL [TIMEOUT_S] [PID]: wait until URL answers 200 or 401
# (a registry that wants auth is still "up"). If PID is given and the process
# dies meanwhile, give up at once.
wait_http() {
  local url="$1" timeout_s="${2:-$INTEROP_TIMEOUT}" pid="${3:-}"
  local deadline=$((SECONDS + timeout_s)) code
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited while waiting for $url"
      return 1
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
    case "$code" in 200|401) return 0 ;; esac
    sleep 0.2
  done
  log "timed out after ${timeout_s}s waiting for $url"
  return 1
}

# ------------------------------------------------------------ servers --
# start_server KIND ROOTDIR NAME
#   KIND: "distribution" (Debian's docker-registry) or a path to our
#         `registry` binary.
#   ROOTDIR: absolute storage root; both servers keep their data under
#         ROOTDIR/docker/registry/v2/...
#   NAME: label for the log file ($RUN_DIR/servers/NAME.log).
# Sets SERVER_ADDR (HOST:PORT) and SERVER_PID. Fails if it does not come up.
start_server() {
  local kind="$1" root="$2" name="$3" port conf
  mkdir -p "$root" "$RUN_DIR/servers"
  port="$(free_port)"
  SERVER_ADDR="127.0.0.1:$port"
  SERVER_LOG="$RUN_DIR/servers/$name.log"
  if [ "$kind" = distribution ]; then
    conf="$RUN_DIR/servers/$name.yml"
    write_distribution_config "$conf" "$root" "$SERVER_ADDR"
    start_bg "$SERVER_LOG" "$DISTRIBUTION_BIN" serve "$conf"
  else
    start_bg "$SERVER_LOG" "$kind" serve --listen "$SERVER_ADDR" --storage "fs://$root"
  fi
  SERVER_PID="$BG_PID"
  if ! wait_http "http://$SERVER_ADDR/v2/" "$INTEROP_TIMEOUT" "$SERVER_PID"; then
    show_server_logs
    die "server '$name' ($kind) did not come up on $SERVER_ADDR"
  fi
  log "started $name ($(basename "$kind")) pid $SERVER_PID on $SERVER_ADDR, root $root"
}

# start_distribution_htpasswd ROOTDIR NAME USER PASSWORD: Debian's
# distribution behind htpasswd (bcrypt file from `htpasswd -B`, apache2-utils),
# with its access log on in $SERVER_LOG so a test can count what it served
# (see count_blob_gets). The upstream for the mirror tests. Sets SERVER_ADDR,
# SERVER_PID and SERVER_LOG like start_server.
start_distribution_htpasswd() {
  local root="$1" name="$2" user="$3" password="$4" port conf htpasswd_file
  mkdir -p "$root" "$RUN_DIR/servers"
  htpasswd_file="$RUN_DIR/servers/$name.htpasswd"
  htpasswd -Bbn "$user" "$password" >"$htpasswd_file"
  port="$(free_port)"
  SERVER_ADDR="127.0.0.1:$port"
  SERVER_LOG="$RUN_DIR/servers/$name.log"
  conf="$RUN_DIR/servers/$name.yml"
  write_distribution_config "$conf" "$root" "$SERVER_ADDR" "$htpasswd_file"
  start_bg "$SERVER_LOG" "$DISTRIBUTION_BIN" serve "$conf"
  SERVER_PID="$BG_PID"
  if ! wait_http "http://$SERVER_ADDR/v2/" "$INTEROP_TIMEOUT" "$SERVER_PID"; then
    show_server_logs
    die "server '$name' (distribution, htpasswd) did not come up on $SERVER_ADDR"
  fi
  log "started $name (distribution, htpasswd user $user) pid $SERVER_PID on $SERVER_ADDR, root $root"
}

# count_blob_gets LOGFILE DIGEST: how many GETs of blob DIGEST (any
# repository, any status) the access log of start_distribution_htpasswd shows.
count_blob_gets() {
  grep -cE "\"GET /v2/[^ ]*/blobs/$2 HTTP" "$1" || true
}

# write_distribution_config FILE ROOTDIR ADDR [HTPASSWD]: filesystem storage,
# deletes enabled, no caches (two instances may share ROOTDIR), no upload
# purging (it would touch other servers' uploads in a shared ROOTDIR).
# With HTPASSWD: `auth: htpasswd:` with that file and the access log on.
write_distribution_config() {
  local accesslog_disabled=true
  [ -n "${4:-}" ] && accesslog_disabled=false
  cat >"$1" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: $accesslog_disabled
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $3
  secret: interop-test-secret
EOF
  if [ -n "${4:-}" ]; then
    cat >>"$1" <<EOF
auth:
  htpasswd:
    realm: interop-upstream
    path: $4
EOF
  fi
}

# ------------------------------------------------------- image building --
# build_test_image LAYOUT TAG: an OCI image layout at LAYOUT with image TAG:
# three layers of random content (so every run has fresh digests), one of
# them ~1.5 MiB, plus a label and a cmd in the config. Unreferenced blobs
# are garbage collected so the layout holds exactly one image.
build_test_image() {
  local layout="$1" tag="$2" bundle="$RUN_DIR/umoci-bundle" i
  local -a rootless=()
  [ "$(id -u)" = 0 ] || rootless=(--rootless)
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  for i in 1 2 3; do
    umoci unpack "${rootless[@]}" --image "$layout:$tag" "$bundle" >/dev/null
    mkdir -p "$bundle/rootfs/data/layer$i"
    head -c $((i * 48 * 1024 + RANDOM)) /dev/urandom >"$bundle/rootfs/data/layer$i/random.bin"
    printf 'layer %d of the interop test image, run %s\n' "$i" "$RUN_DIR" >"$bundle/rootfs/data/layer$i/README"
    if [ "$i" = 3 ]; then
      head -c $((1536 * 1024)) /dev/urandom >"$bundle/rootfs/data/layer$i/big.bin"
    fi
    umoci repack --image "$layout:$tag" "$bundle" >/dev/null
    rm -rf "$bundle"
  done
  umoci config --image "$layout:$tag" --config.label org.example.interop=1 --config.cmd /bin/true
  umoci gc --layout "$layout"
}

# layout_manifest_digest LAYOUT TAG: manifest digest for TAG in index.json
layout_manifest_digest() {
  jq -er --arg t "$2" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
    "$1/index.json"
}

# layout_blob LAYOUT DIGEST: path of a blob in an OCI layout
layout_blob() { printf '%s/blobs/%s/%s\n' "$1" "${2%%:*}" "${2#*:}"; }

# image_blob_digests LAYOUT TAG: config digest then layer digests, one a line
image_blob_digests() {
  local m
  m="$(layout_blob "$1" "$(layout_manifest_digest "$1" "$2")")"
  jq -r '.config.digest, .layers[].digest' "$m"
}

# same_blobs SRC_LAYOUT SRC_TAG DIR_OF_BLOBS NAMING: cmp the config and layer
# blobs of SRC_LAYOUT:SRC_TAG with the copies in another location.
# NAMING: "oci" (DIR is an OCI layout) or "dir" (skopeo dir: transport, where
# blobs are named by their bare hex digest).
same_blobs() {
  local src="$1" tag="$2" dst="$3" naming="$4" d other n=0
  while read -r d; do
    if [ "$naming" = oci ]; then other="$(layout_blob "$dst" "$d")"; else other="$dst/${d#*:}"; fi
    if ! cmp -s "$(layout_blob "$src" "$d")" "$other"; then
      echo "blob $d differs or is missing at $other"
      return 1
    fi
    n=$((n + 1))
  done < <(image_blob_digests "$src" "$tag")
  echo "$n blobs identical"
}

# sha256_of FILE: "sha256:<hex>"
sha256_of() { printf 'sha256:%s\n' "$(sha256sum "$1" | cut -d' ' -f1)"; }

# ------------------------------------------------------------- skopeo --
# skopeo with a bounded run time and no dependency on the host's trust policy.
# Plain-HTTP registries need --tls-verify=false (or --src/--dest-tls-verify).
sk() { timeout -k 10 "$INTEROP_TIMEOUT" skopeo --insecure-policy "$@"; }

require_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ "${#missing[@]}" -eq 0 ] || die "missing tools: ${missing[*]} (run scripts/install-test-tools.sh)"
}
