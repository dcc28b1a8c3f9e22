#!/usr/bin/env bash
# Garbage collection, ours and CNCF distribution's, on one directory.
#
#   tests/interop/gc.sh [PATH_TO_REGISTRY_BIN]     (or env REGISTRY_BIN)
#
# 1. Our `registry gc --commit --grace 0s --delete-untagged` on a quiet
#    store; then distribution's own `garbage-collect --dry-run
#    --delete-untagged` on the same directory finds nothing to delete, and
#    distribution serves every live image.
# 2. Distribution's collector (`garbage-collect --delete-untagged`) on a
#    store we wrote; then ours serves every live image, `registry fsck`
#    finds nothing wrong, and our collector finds nothing left to remove.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OURS_BIN="${1:-${REGISTRY_BIN:-}}"
[ -n "$OURS_BIN" ] && [ -x "$OURS_BIN" ] || die "usage: gc.sh PATH_TO_REGISTRY_BIN (or REGISTRY_BIN)"
OURS_BIN="$(cd "$(dirname "$OURS_BIN")" && pwd)/$(basename "$OURS_BIN")"
require_tools skopeo umoci jq curl cmp sha256sum "$DISTRIBUTION_BIN"
interop_init

ROOT="$RUN_DIR/root"
NS="interop/gc-$(date +%s)-$$"
DIST_CONF="$RUN_DIR/dist-gc.yml"
write_distribution_config "$DIST_CONF" "$ROOT" 127.0.0.1:0

LIVE="$RUN_DIR/live-layout" DOOMED="$RUN_DIR/doomed-layout" LATER="$RUN_DIR/later-layout"
for layout in "$LIVE" "$DOOMED" "$LATER"; do
  build_test_image "$layout" v1 >"$RUN_DIR/build.log" 2>&1 || { cat "$RUN_DIR/build.log"; die "umoci image build failed"; }
done

# push_and_untag ADDR NAME LAYOUT: push LAYOUT as NAME:gone, then delete the tag
push_and_untag() {
  local addr="$1" name="$2" layout="$3"
  check "push $name:gone" sk copy --dest-tls-verify=false "oci:$layout:v1" "docker://$addr/$NS/$name:gone"
  check_eq "delete tag $name:gone" 202 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$addr/v2/$NS/$name/manifests/gone")"
}

# live_images_pull KIND_NAME ADDR: every live image pulls whole, byte for byte
live_images_pull() {
  local who="$1" addr="$2"
  check "[$who] pull app:live (OCI)" sk copy --src-tls-verify=false "docker://$addr/$NS/app:live" "dir:$RUN_DIR/$who-oci"
  check "[$who] app:live blobs byte-identical" same_blobs "$LIVE" v1 "$RUN_DIR/$who-oci" dir
  check "[$who] pull app:live-v2s2" sk copy --src-tls-verify=false "docker://$addr/$NS/app:live-v2s2" "dir:$RUN_DIR/$who-v2s2"
}

log "---- part 1: our collector, then distribution's dry run"
start_server "$OURS_BIN" "$ROOT" ours
check "push app:live (OCI)" sk copy --dest-tls-verify=false "oci:$LIVE:v1" "docker://$SERVER_ADDR/$NS/app:live"
check "push app:live-v2s2" sk copy --format v2s2 --dest-tls-verify=false "oci:$LIVE:v1" "docker://$SERVER_ADDR/$NS/app:live-v2s2"
push_and_untag "$SERVER_ADDR" app "$DOOMED"
stop_pid "$SERVER_PID"

out="$("$OURS_BIN" gc --storage "fs://$ROOT" --grace 0s --delete-untagged --commit 2>&1 || true)"
check_contains "our gc removed the untagged image" "$(tail -n 1 <<<"$out")" "gc: 1 manifests, "
dist_out="$("$DISTRIBUTION_BIN" garbage-collect --dry-run --delete-untagged "$DIST_CONF" 2>&1 || true)"
check_contains "distribution's dry run after ours finds nothing to delete" \
  "$dist_out" "0 blobs and 0 manifests eligible for deletion"
start_server distribution "$ROOT" dist
live_images_pull distribution "$SERVER_ADDR"
stop_pid "$SERVER_PID"

log "---- part 2: distribution's collector on a store we wrote, then ours"
start_server "$OURS_BIN" "$ROOT" ours-again
push_and_untag "$SERVER_ADDR" later "$LATER"
stop_pid "$SERVER_PID"
dist_out="$("$DISTRIBUTION_BIN" garbage-collect --delete-untagged "$DIST_CONF" 2>&1 || true)"
check_contains "distribution's collector removed the untagged image" "$dist_out" "1 manifests eligible for deletion"
start_server "$OURS_BIN" "$ROOT" ours-after
live_images_pull ours "$SERVER_ADDR"
check_eq "the image distribution collected is gone" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://$SERVER_ADDR/v2/$NS/later/manifests/gone")"
stop_pid "$SERVER_PID"
check "registry fsck finds nothing wrong after distribution's collector" \
  "$OURS_BIN" fsck --storage "fs://$ROOT"
out="$("$OURS_BIN" gc --storage "fs://$ROOT" --grace 0s --delete-untagged 2>&1 || true)"
check_eq "our collector finds nothing left" "gc: would remove 0 manifests, 0 blobs, 0 bytes" "$(tail -n 1 <<<"$out")"

interop_summary
