#!/usr/bin/env bash
# Three `registry` processes on one store, as on three hosts of a pool:
# an image pushed with skopeo through one is pulled, byte-identical, through
# another and inspected through the third. Runs on one shared directory, and
# on one S3 bucket when FLEET_S3_URL is set (scripts/test.sh starts moto).
#
#   REGISTRY_BIN=target/debug/registry tests/interop/fleet.sh
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -n "${REGISTRY_BIN:-}" ] || die "REGISTRY_BIN must name our registry binary"
require_tools skopeo umoci jq curl cmp
interop_init

# start_fleet STORAGE_URL: three servers; sets FLEET (their addresses).
start_fleet() {
  local url="$1" i port
  FLEET=()
  for i in 1 2 3; do
    port="$(free_port)"
    start_bg "$RUN_DIR/servers/fleet-$i.log" "$REGISTRY_BIN" serve --listen "127.0.0.1:$port" --storage "$url"
    wait_http "http://127.0.0.1:$port/v2/" "$INTEROP_TIMEOUT" "$BG_PID" || die "fleet server $i did not start"
    FLEET+=("127.0.0.1:$port")
  done
  log "fleet on $url: ${FLEET[*]}"
}

mkdir -p "$RUN_DIR/servers"
build_test_image "$RUN_DIR/image" v1
want="$(layout_manifest_digest "$RUN_DIR/image" v1)"

fleet_round() {
  local label="$1" url="$2" out="$RUN_DIR/out-$1"
  start_fleet "$url"
  local a="${FLEET[0]}" b="${FLEET[1]}" c="${FLEET[2]}"
  check "$label: skopeo push through server 1" \
    sk copy --dest-tls-verify=false "oci:$RUN_DIR/image:v1" "docker://$a/fleet/app:v1"
  check "$label: skopeo pull through server 2" \
    sk copy --src-tls-verify=false "docker://$b/fleet/app:v1" "oci:$out:v1"
  check "$label: pulled blobs byte-identical" same_blobs "$RUN_DIR/image" v1 "$out" oci
  local got
  got="$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$c/fleet/app:v1" 2>/dev/null || true)"
  check_eq "$label: server 3 serves the pushed manifest digest" "$want" "$got"
  check "$label: copy between repositories through server 3" \
    sk copy --src-tls-verify=false --dest-tls-verify=false "docker://$c/fleet/app:v1" "docker://$c/fleet/copy:v1"
  got="$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$a/fleet/copy:v1" 2>/dev/null || true)"
  check_eq "$label: server 1 sees the copy at once" "$want" "$got"
  stop_all
}

fleet_round fs "fs://$RUN_DIR/shared-store"
if [ -n "${FLEET_S3_URL:-}" ]; then
  fleet_round s3 "$FLEET_S3_URL"
else
  log "FLEET_S3_URL not set: the S3 round did not run (scripts/test.sh runs it against moto)"
fi
interop_summary
