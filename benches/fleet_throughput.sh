#!/usr/bin/env bash
# Push and pull throughput of one `registry` process, and of three processes
# on one shared store (as on three hosts), on the filesystem and on S3
# (moto_server on loopback). One command:
#
#   benches/fleet_throughput.sh
#
# For each store: "1 process" pushes one blob through one process and pulls
# it back; "3 processes" pushes three different blobs at once, one through
# each process, and pulls each through another process than the one that
# pushed it. Figures are aggregate MiB/s (total bytes / wall time), median
# of RUNS runs. The client is benches/e2e/client (streaming, Rust).
#
# Environment: RUNS (default 3), FS_MIB (default 256), S3_MIB (default 64,
# moto is a Python server), NO_BUILD=1, KEEP_TMP=1.
# Everything lives in one mktemp -d removed at exit; every process is
# stopped by its PID; servers listen on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"
# shellcheck source=../scripts/moto.sh
source "$ROOT/scripts/moto.sh"
SCRIPT_NAME=fleet-throughput
RUNS="${RUNS:-3}" FS_MIB="${FS_MIB:-256}" S3_MIB="${S3_MIB:-64}"

interop_init
trap 'moto_stop; interop_cleanup' EXIT
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -q -p registry --bin registry && cargo build --release -q -p e2e-client)
fi
BIN="$ROOT/target/release/registry" CLIENT="$ROOT/target/release/e2e-client"
[ -x "$BIN" ] && [ -x "$CLIENT" ] || die "build first (cargo build --release --bin registry -p e2e-client)"
mkdir -p "$RUN_DIR/servers"
moto_start "$RUN_DIR"

# start_procs N URL: N servers on one store; sets ADDRS.
start_procs() {
  local n="$1" url="$2" i port
  ADDRS=()
  for i in $(seq 1 "$n"); do
    port="$(free_port)"
    start_bg "$RUN_DIR/servers/p$i.log" "$BIN" serve --listen "127.0.0.1:$port" --storage "$url" --log-level warn
    wait_http "http://127.0.0.1:$port/v2/" 30 "$BG_PID" || die "server $i did not start"
    ADDRS+=("127.0.0.1:$port")
  done
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure STORE_LABEL URL_PREFIX MIB N: prints "push_mibs pull_mibs"
measure() {
  local url="$1" mib="$2" n="$3" i start end
  local files=() digests=()
  for i in $(seq 1 "$n"); do
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$RUN_DIR/blob$i"
    files+=("$RUN_DIR/blob$i")
    digests+=("sha256:$(sha256sum "$RUN_DIR/blob$i" | cut -d' ' -f1)")
  done
  start_procs "$n" "$url"
  local pids=()
  start=$(date +%s.%N)
  for i in $(seq 0 $((n - 1))); do
    "$CLIENT" --registry "${ADDRS[$i]}" --repo "fleet/b$i" push --file "${files[$i]}" --digest "${digests[$i]}" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  local push
  push=$(echo "$n * $mib / ($end - $start)" | bc -l)
  pids=()
  start=$(date +%s.%N)
  for i in $(seq 0 $((n - 1))); do
    # Pull through another process than the one that pushed.
    "$CLIENT" --registry "${ADDRS[$(((i + 1) % n))]}" --repo "fleet/b$i" pull --digest "${digests[$i]}" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  local pull
  pull=$(echo "$n * $mib / ($end - $start)" | bc -l)
  stop_all
  rm -f "${files[@]}"
  echo "$push $pull"
}

command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
printf '| store | processes | blob size | push MiB/s (median, min-max) | pull MiB/s (median, min-max) |\n'
printf '| --- | --- | --- | --- | --- |\n'
for store in fs s3; do
  for n in 1 3; do
    pushes=() pulls=()
    for r in $(seq 1 "$RUNS"); do
      if [ "$store" = fs ]; then
        url="fs://$RUN_DIR/store-$n-$r" mib="$FS_MIB"
      else
        url="s3://$MOTO_BUCKET/run-$n-$r?endpoint=$MOTO_ENDPOINT&region=us-east-1" mib="$S3_MIB"
      fi
      measure "$url" "$mib" "$n" >"$RUN_DIR/result"
      read -r p q <"$RUN_DIR/result"
      pushes+=("$p") pulls+=("$q")
      rm -rf "$RUN_DIR/store-$n-$r"
    done
    printf '| %s | %d | %d MiB | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) |\n' "$store" "$n" "$mib" \
      "$(median "${pushes[@]}")" "$(printf '%s\n' "${pushes[@]}" | sort -g | head -1)" "$(printf '%s\n' "${pushes[@]}" | sort -g | tail -1)" \
      "$(median "${pulls[@]}")" "$(printf '%s\n' "${pulls[@]}" | sort -g | head -1)" "$(printf '%s\n' "${pulls[@]}" | sort -g | tail -1)"
  done
done
