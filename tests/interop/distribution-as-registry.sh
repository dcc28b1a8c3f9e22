#!/usr/bin/env bash
# Self-test shim: Debian's docker-registry (CNCF distribution) behind OUR
# registry's command line, so the REGISTRY_BIN code paths of run.sh and
# peer.sh can be exercised before our binary exists:
#
#   REGISTRY_BIN=tests/interop/distribution-as-registry.sh tests/interop/run.sh
#
# Accepts: serve --listen HOST:PORT --storage fs:///abs/dir
# Writes a distribution config under $TMPDIR (inside the test run's
# directory) and execs the server, so the PID the tests record is the server.
set -euo pipefail
listen="" storage=""
[ "${1:-}" = serve ] || { echo "usage: $0 serve --listen HOST:PORT --storage fs:///DIR" >&2; exit 2; }
shift
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) listen="$2"; shift 2 ;;
    --storage) storage="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$storage" in
  fs:///*) root="${storage#fs://}" ;;
  *) echo "--storage must be fs:///absolute/dir, got '$storage'" >&2; exit 2 ;;
esac
[ -n "$listen" ] || { echo "--listen is required" >&2; exit 2; }
mkdir -p "$root"
conf="$(mktemp "${TMPDIR:-/tmp}/distribution-shim.XXXXXX.yml")"
cat >"$conf" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $listen
  secret: interop-test-secret
YML
exec "${DISTRIBUTION_BIN:-/usr/bin/docker-registry}" serve "$conf"
