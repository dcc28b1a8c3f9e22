#!/usr/bin/env bash
# "Drop-in on distribution's data": our registry and CNCF distribution
# (Debian's docker-registry) serve the SAME storage directory.
#
#   tests/interop/peer.sh [PATH_TO_REGISTRY_BIN]     (or env REGISTRY_BIN)
#
# Distribution's filesystem `rootdirectory` is the same directory as our
# `--storage fs://DIR`; both keep their data under DIR/docker/registry/v2/.
# Without a registry binary the peer is a second distribution instance, which
# validates this script's logic (and distribution against itself).
#
# Checks, in both directions (push through one, read through the other):
#   inspect (digest, raw manifest bytes), list-tags, catalog, pull to an OCI
#   layout / dir: and compare bytes, the on-disk layout (tag link, blob data),
#   delete through one and gone through the other; then each server alone,
#   restarted on the data the other one wrote.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER_BIN="${1:-${REGISTRY_BIN:-}}"
if [ -n "$PEER_BIN" ]; then
  [ -x "$PEER_BIN" ] || die "registry binary not executable: $PEER_BIN"
  PEER_BIN="$(cd "$(dirname "$PEER_BIN")" && pwd)/$(basename "$PEER_BIN")"
  PEER_KIND="$PEER_BIN"; PEER_NAME=ours
else
  PEER_KIND=distribution; PEER_NAME=dist-peer
fi
require_tools skopeo umoci jq curl cmp sha256sum "$DISTRIBUTION_BIN"
interop_init

ROOT="$RUN_DIR/shared-root"          # the one storage directory
V2="$ROOT/docker/registry/v2"         # distribution's on-disk layout
NS="interop/peer-$(date +%s)-$$"
OCI_MT=application/vnd.oci.image.manifest.v1+json

SRC="$RUN_DIR/src-layout"
build_test_image "$SRC" v1 >"$RUN_DIR/build.log" 2>&1 || { cat "$RUN_DIR/build.log"; die "umoci image build failed"; }
ORIG_DIGEST="$(layout_manifest_digest "$SRC" v1)"
ORIG_MANIFEST="$(layout_blob "$SRC" "$ORIG_DIGEST")"

start_server distribution "$ROOT" dist
DIST_ADDR="$SERVER_ADDR"; DIST_PID="$SERVER_PID"
start_server "$PEER_KIND" "$ROOT" "$PEER_NAME"
PEER_ADDR="$SERVER_ADDR"; PEER_PID="$SERVER_PID"
log "peer is $PEER_NAME; image $ORIG_DIGEST; repos under $NS"

# check_on_disk REPO TAG DIGEST: the tag and its blobs are stored in
# distribution's layout, whichever server wrote them.
check_on_disk() {
  local repo="$1" tag="$2" digest="$3" link d bad=""
  link="$V2/repositories/$repo/_manifests/tags/$tag/current/link"
  check_eq "on disk: $repo tag $tag link" "$digest" "$(cat "$link" 2>/dev/null || echo "missing $link")"
  check "on disk: $repo manifest revision link" \
    test -f "$V2/repositories/$repo/_manifests/revisions/sha256/${digest#sha256:}/link"
  while read -r d; do
    cmp -s "$(layout_blob "$SRC" "$d")" "$V2/blobs/sha256/${d:7:2}/${d#sha256:}/data" || bad+=" $d"
    [ -f "$V2/repositories/$repo/_layers/sha256/${d#sha256:}/link" ] || bad+=" layer-link:$d"
  done < <(image_blob_digests "$SRC" v1)
  check_eq "on disk: $repo blobs in blobs/sha256/XX/HEX/data with layer links" "" "$bad"
}

# transfer FROM_NAME FROM_ADDR TO_NAME TO_ADDR REPO_PREFIX
# Push through FROM (OCI and v2s2 formats), read everything back through TO.
transfer() {
  local from="$1" fa="$2" to="$3" ta="$4" repo="$5" raw out dir v2s2_digest info
  log "---- push through $from, read through $to ($repo)"
  check "[$from->$to] push OCI image through $from" \
    sk copy --dest-tls-verify=false "oci:$SRC:v1" "docker://$fa/$repo/oci:v1"
  check "[$from->$to] push v2s2 image through $from" \
    sk copy --format v2s2 --dest-tls-verify=false "oci:$SRC:v1" "docker://$fa/$repo/v2s2:v1"

  raw="$RUN_DIR/raw-$from-$to"
  if sk inspect --tls-verify=false --raw "docker://$ta/$repo/oci:v1" >"$raw" 2>"$RUN_DIR/err"; then
    check "[$from->$to] raw manifest via $to is byte-identical" cmp "$ORIG_MANIFEST" "$raw"
  else
    fail "[$from->$to] raw manifest via $to" "$(cat "$RUN_DIR/err")"
  fi
  info="$(sk inspect --tls-verify=false "docker://$ta/$repo/oci:v1" 2>&1 || true)"
  check_eq "[$from->$to] inspect digest via $to" "$ORIG_DIGEST" "$(jq -r .Digest <<<"$info" 2>/dev/null || echo "$info")"
  check_eq "[$from->$to] list-tags via $to" '["v1"]' \
    "$(sk list-tags --tls-verify=false "docker://$ta/$repo/oci" 2>&1 | jq -c .Tags 2>/dev/null)"
  check_contains "[$from->$to] catalog via $to lists the repo" \
    "$(curl -s "http://$ta/v2/_catalog?n=1000")" "\"$repo/oci\""

  out="$RUN_DIR/pull-$from-$to"
  check "[$from->$to] pull OCI image via $to" sk copy --src-tls-verify=false "docker://$ta/$repo/oci:v1" "oci:$out:v1"
  check_eq "[$from->$to] pulled manifest digest" "$ORIG_DIGEST" "$(layout_manifest_digest "$out" v1 2>/dev/null || echo none)"
  check "[$from->$to] pulled blobs byte-identical" same_blobs "$SRC" v1 "$out" oci

  dir="$RUN_DIR/pull-v2s2-$from-$to"
  v2s2_digest="$(sk inspect --tls-verify=false --raw "docker://$fa/$repo/v2s2:v1" | sha256sum | cut -d' ' -f1)"
  check "[$from->$to] pull v2s2 image via $to" sk copy --src-tls-verify=false "docker://$ta/$repo/v2s2:v1" "dir:$dir"
  check_eq "[$from->$to] pulled v2s2 manifest = the one pushed via $from" "sha256:$v2s2_digest" \
    "$(sha256_of "$dir/manifest.json" 2>/dev/null || echo none)"
  check "[$from->$to] pulled v2s2 blobs byte-identical" same_blobs "$SRC" v1 "$dir" dir

  check_on_disk "$repo/oci" v1 "$ORIG_DIGEST"
  check_on_disk "$repo/v2s2" v1 "sha256:$v2s2_digest"
}

# delete_across FROM_NAME FROM_ADDR TO_NAME TO_ADDR REPO: delete through FROM
# an image that is visible through TO, then check TO no longer serves it.
delete_across() {
  local from="$1" fa="$2" to="$3" ta="$4" repo="$5"
  check "[delete via $from] skopeo delete $repo/oci:v1" sk delete --tls-verify=false "docker://$fa/$repo/oci:v1"
  check_fails "[delete via $from] $repo/oci:v1 gone via $to" sk inspect --tls-verify=false "docker://$ta/$repo/oci:v1"
  check_eq "[delete via $from] manifest by digest via $to is 404" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MT" "http://$ta/v2/$repo/oci/manifests/$ORIG_DIGEST")"
  check "[delete via $from] $repo/v2s2:v1 still there via $to" \
    sk inspect --tls-verify=false "docker://$ta/$repo/v2s2:v1"
}

# alone NAME KIND REPO: restart NAME alone on the shared root and read what
# the other server wrote.
alone() {
  local name="$1" kind="$2" repo="$3" dir
  start_server "$kind" "$ROOT" "$name-alone"
  dir="$RUN_DIR/alone-$name"
  check "[$name alone] pull $repo/v2s2:v1 written by the other server" \
    sk copy --src-tls-verify=false "docker://$SERVER_ADDR/$repo/v2s2:v1" "dir:$dir"
  check "[$name alone] blobs byte-identical" same_blobs "$SRC" v1 "$dir" dir
  check_fails "[$name alone] deleted $repo/oci:v1 stays deleted" \
    sk inspect --tls-verify=false "docker://$SERVER_ADDR/$repo/oci:v1"
  stop_pid "$SERVER_PID"
}

transfer dist "$DIST_ADDR" "$PEER_NAME" "$PEER_ADDR" "$NS/dist-to-peer"
transfer "$PEER_NAME" "$PEER_ADDR" dist "$DIST_ADDR" "$NS/peer-to-dist"
delete_across dist "$DIST_ADDR" "$PEER_NAME" "$PEER_ADDR" "$NS/peer-to-dist"
delete_across "$PEER_NAME" "$PEER_ADDR" dist "$DIST_ADDR" "$NS/dist-to-peer"

# Both stop; then each one alone on the data the other one wrote.
stop_pid "$PEER_PID"
stop_pid "$DIST_PID"
alone "$PEER_NAME" "$PEER_KIND" "$NS/dist-to-peer"
alone dist distribution "$NS/peer-to-dist"

interop_summary
