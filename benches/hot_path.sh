#!/usr/bin/env bash
# The manifest GET by tag against nginx, in short alternating runs: a
# quicker and steadier reading of "ours / nginx" than benches/e2e/run.sh's
# three 10 s runs, for working on the request path.
#
#   benches/hot_path.sh                    # this tree's release build and nginx
#   benches/hot_path.sh OLD_BIN NEW_BIN    # builds side by side, and nginx
#
# Every server is started once (each `registry` on its own directory, the
# same manifest pushed to it; nginx serving the bytes the first one answers
# as a static file, its access log on, as in run.sh). Then ROUNDS times,
# each server in turn gets SECS seconds of `wrk -t$WRK_THREADS -c64`. The
# machine's load changes between rounds (another process, the host), much
# less within one, so each round's ratio to nginx is taken, and the report
# gives per server the medians and ranges over the rounds of: requests per
# second, the server's CPU time per request (user+sys from /proc, all its
# threads; nginx's workers summed), and requests per second / nginx's in
# the same round.
#
# Environment:
#   ROUNDS=N        alternations (default 10)
#   SECS=S          seconds per run (default 2)
#   WRK_THREADS=T   wrk threads (default 1, as run.sh; the issue's figure used 2)
#   NO_INSTALL=1    do not install nginx-light and wrk
#   NO_BUILD=1      with no BIN given, use target/release/registry as it is
#
# Everything lives in one mktemp -d removed at exit; every process is
# started here, on 127.0.0.1, and stopped by its PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"
# write_nginx_config FILE ROOT ADDR ACCEPT.
# shellcheck source-path=SCRIPTDIR source=nginx.sh
source "$ROOT/benches/nginx.sh"
# shellcheck disable=SC2034 # read by lib.sh
SCRIPT_NAME=hot_path
ROUNDS="${ROUNDS:-10}"
SECS="${SECS:-2}"
WRK_THREADS="${WRK_THREADS:-1}"
ACCEPT="application/vnd.oci.image.manifest.v1+json"
MANIFEST=/v2/bench/manifest/manifests/latest

TMP="$(mktemp -d "${TMPDIR:-/tmp}/registry-hot-path.XXXXXX")"
# shellcheck disable=SC2034 # read by lib.sh
RUN_DIR="$TMP"
STARTED_PIDS=()
cleanup() {
  local rc=$?
  set +e
  stop_all
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

if [ "${NO_INSTALL:-0}" != 1 ] && ! { command -v nginx && command -v wrk; } >/dev/null; then
  log "installing nginx-light and wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >"$TMP/install.log" 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >>"$TMP/install.log" 2>&1; } ||
    { tail -n 20 "$TMP/install.log"; die "cannot install nginx-light and wrk"; }
fi
require_tools nginx wrk curl python3

BINS=("$@")
if [ "${#BINS[@]}" = 0 ]; then
  if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release (registry, e2e-client)"
    (cd "$ROOT" && cargo build --release -q -p registry -p e2e-client --bin registry --bin e2e-client)
  fi
  BINS=("$ROOT/target/release/registry")
elif [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -q -p e2e-client --bin e2e-client)
fi
CLIENT="$ROOT/target/release/e2e-client"

# Servers: names, ports, the PIDs whose CPU time counts.
NAMES=() PORTS=() CPU_PIDS=()
i=0
for bin in "${BINS[@]}"; do
  i=$((i + 1))
  cp "$bin" "$TMP/registry-$i"
  port="$(free_port)"
  start_bg "$TMP/registry-$i.log" "$TMP/registry-$i" serve --listen "127.0.0.1:$port" --storage "fs://$TMP/data-$i"
  wait_http "http://127.0.0.1:$port/v2/" 30 "$BG_PID" || die "registry $bin did not start"
  "$CLIENT" put-manifest --registry "127.0.0.1:$port" --repo bench/manifest --tag latest >/dev/null
  NAMES+=("$i:$(basename "$bin")") PORTS+=("$port") CPU_PIDS+=("$BG_PID")
done

# nginx: the first server's answer as a static file, its access log on.
mkdir -p "$TMP/nginx/v2/bench/manifest/manifests"
curl -fsS -H "Accept: $ACCEPT" -o "$TMP/nginx$MANIFEST" "http://127.0.0.1:${PORTS[0]}$MANIFEST"
port="$(free_port)"
write_nginx_config "$TMP/nginx.conf" "$TMP/nginx" "127.0.0.1:$port" "$ACCEPT"
start_bg "$TMP/nginx.log" nginx -e "$TMP/nginx.err" -p "$TMP/nginx" -c "$TMP/nginx.conf"
wait_http "http://127.0.0.1:$port/v2/" 30 "$BG_PID" || die "nginx did not start"
NAMES+=(nginx) PORTS+=("$port") CPU_PIDS+=("$(pgrep -P "$BG_PID" | tr '\n' ' ')")

# cpu_ticks "PID...": user+sys clock ticks of those processes so far.
cpu_ticks() {
  local pid total=0
  for pid in $1; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

log "$ROUNDS rounds of ${SECS}s per server, wrk -t$WRK_THREADS -c64, load average $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS="$TMP/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
  for j in "${!NAMES[@]}"; do
    c0="$(cpu_ticks "${CPU_PIDS[$j]}")"
    out="$(timeout -k 5 60 wrk -t"$WRK_THREADS" -c64 -d"${SECS}s" -s "$ROOT/benches/e2e/wrk-manifest.lua" \
      "http://127.0.0.1:${PORTS[$j]}$MANIFEST" | tail -n 1)"
    c1="$(cpu_ticks "${CPU_PIDS[$j]}")"
    printf '%s\t%s\t%s\t%s\n' "$round" "${NAMES[$j]}" "$((c1 - c0))" "$out" >>"$RESULTS"
  done
done

python3 - "$RESULTS" "$(getconf CLK_TCK)" <<'EOF'
import collections, json, statistics, sys

ticks_per_s = int(sys.argv[2])
rounds = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, ticks, out = line.rstrip("\n").split("\t", 3)
    o = json.loads(out)
    rounds[rnd][name] = (o["rps"], int(ticks) / ticks_per_s / o["requests"] * 1e6, o["errors"])

def cell(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"

names = list(next(iter(rounds.values())))
print("| server | req/s | server CPU per request (us) | ours / nginx, same round | errors |")
print("|---|---|---|---|---|")
for n in names:
    rps = [r[n][0] for r in rounds.values()]
    cpu = [r[n][1] for r in rounds.values()]
    ratio = [r[n][0] / r["nginx"][0] for r in rounds.values()]
    errors = sum(r[n][2] for r in rounds.values())
    print(f"| {n} | {cell(rps, '{:.0f}')} | {cell(cpu, '{:.1f}')} | {cell(ratio, '{:.2f}')} | {errors} |")
EOF
