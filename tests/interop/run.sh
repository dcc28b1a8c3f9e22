#!/usr/bin/env bash
# Run all interoperability tests against a registry started here.
#
#   tests/interop/run.sh                 # server under test: Debian's docker-registry
#   REGISTRY_BIN=target/debug/registry tests/interop/run.sh    # our registry
#
# With REGISTRY_BIN set the server under test is
#   $REGISTRY_BIN serve --listen 127.0.0.1:PORT --storage fs://$RUN_DIR/store
# otherwise it is CNCF distribution (/usr/bin/docker-registry).
# Runs skopeo.sh and oras.py against it, then peer.sh (which starts its own
# pair of servers on one shared directory) and upstream.sh (the htpasswd
# distribution upstream the mirror tests use), with our binary also fleet.sh,
# gc.sh (our collector and distribution's on one directory) and mirror.sh (the
# pull-through mirror in front of that upstream) and redirect.sh (skopeo and
# containerd following --redirect's presigned URLs, on REDIRECT_S3_URL), stops everything it started by
# PID, removes its temporary directory and prints the combined
# `N passed, M failed` line. Exits non-zero if anything failed.
#
# Tools come from scripts/install-test-tools.sh (apt packages + .venv).
# Knobs: INTEROP_TIMEOUT (per command, default 120 s),
#        INTEROP_SUITE_TIMEOUT (per sub-script, default 600 s), KEEP_TMP=1.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${INTEROP_SUITE_TIMEOUT:=600}"
VENV_PY="$REPO_ROOT/.venv/bin/python"

require_tools skopeo umoci jq curl cmp sha256sum timeout "$DISTRIBUTION_BIN"
[ -x "$VENV_PY" ] || die "missing $VENV_PY (run scripts/install-test-tools.sh)"
if [ -n "${REGISTRY_BIN:-}" ]; then
  [ -x "$REGISTRY_BIN" ] || die "REGISTRY_BIN is not executable: $REGISTRY_BIN"
  REGISTRY_BIN="$(cd "$(dirname "$REGISTRY_BIN")" && pwd)/$(basename "$REGISTRY_BIN")"
  export REGISTRY_BIN
fi

START=$SECONDS
interop_init
export INTEROP_COUNTS_FILE="$RUN_DIR/counts"
export INTEROP_PIDS_FILE="$RUN_DIR/pids"
: >"$INTEROP_COUNTS_FILE"

# Also stop anything a killed sub-script left behind (its cmdline names a
# path under our RUN_DIR), then the usual cleanup.
run_cleanup() {
  local rc=$?
  set +e
  stop_recorded_pids "$INTEROP_PIDS_FILE" "$RUN_DIR"
  interop_cleanup "$rc"
}
trap run_cleanup EXIT

# run_suite NAME CMD...: run one sub-suite with a bounded time. A suite that
# crashes or times out before recording its counts counts as one failure.
run_suite() {
  local name="$1" rc=0; shift
  log "==== $name"
  timeout -k 15 "$INTEROP_SUITE_TIMEOUT" "$@" || rc=$?
  if ! grep -q "^$name " "$INTEROP_COUNTS_FILE"; then
    if [ "$rc" -eq 124 ]; then
      log "$name timed out after ${INTEROP_SUITE_TIMEOUT}s"
    else
      log "$name exited with $rc before its summary"
    fi
    printf '%s 0 1\n' "$name" >>"$INTEROP_COUNTS_FILE"
  fi
}

if [ -n "${REGISTRY_BIN:-}" ]; then
  start_server "$REGISTRY_BIN" "$RUN_DIR/store" ours
else
  start_server distribution "$RUN_DIR/store" distribution
fi
ADDR="$SERVER_ADDR"

run_suite skopeo.sh bash "$INTEROP_DIR/skopeo.sh" "$ADDR"
run_suite oras.py "$VENV_PY" "$INTEROP_DIR/oras.py" "$ADDR"
run_suite peer.sh bash "$INTEROP_DIR/peer.sh"
run_suite upstream.sh bash "$INTEROP_DIR/upstream.sh"
if [ -n "${REGISTRY_BIN:-}" ]; then
  run_suite fleet.sh bash "$INTEROP_DIR/fleet.sh"
  run_suite gc.sh bash "$INTEROP_DIR/gc.sh"
  run_suite mirror.sh bash "$INTEROP_DIR/mirror.sh"
  run_suite redirect.sh bash "$INTEROP_DIR/redirect.sh"
fi

stop_all
TOTAL_PASSED="$(awk '{ s += $2 } END { print s + 0 }' "$INTEROP_COUNTS_FILE")"
TOTAL_FAILED="$(awk '{ s += $3 } END { print s + 0 }' "$INTEROP_COUNTS_FILE")"
log "per suite (name passed failed):"
sed 's/^/    /' "$INTEROP_COUNTS_FILE"
log "server under test: ${REGISTRY_BIN:-distribution ($DISTRIBUTION_BIN)}; took $((SECONDS - START))s"
# The combined line, last and alone (the format CI reads).
unset INTEROP_COUNTS_FILE
PASSED="$TOTAL_PASSED" FAILED="$TOTAL_FAILED"
interop_summary
