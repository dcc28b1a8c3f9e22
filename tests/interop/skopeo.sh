#!/usr/bin/env bash
# Interoperability test with skopeo against a running registry (plain HTTP).
#
#   tests/interop/skopeo.sh HOST:PORT
#
# Builds a fresh 3-layer OCI image offline with umoci, then checks that the
# registry round-trips it byte for byte through skopeo: push in OCI and in
# Docker v2 schema 2 format, inspect, list tags, pull back to an OCI layout
# and to a dir:, copy between repositories (cross-repository blob mount) and
# delete a tag. Every step prints a PASS/FAIL line; the last line is
# `N passed, M failed` and the exit status is non-zero if anything failed.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 HOST:PORT"
R="$1"
require_tools skopeo umoci jq curl cmp sha256sum
interop_init
wait_http "http://$R/v2/" 30 || die "no registry answering at http://$R/v2/"

# A fresh namespace per run, so re-running against the same server is fine.
NS="interop/skopeo-$(date +%s)-$$"
OCI_MT=application/vnd.oci.image.manifest.v1+json
V2S2_MT=application/vnd.docker.distribution.manifest.v2+json

# -------------------------------------------------------------- the image --
SRC="$RUN_DIR/src-layout"
build_test_image "$SRC" v1 >"$RUN_DIR/build.log" 2>&1 || { cat "$RUN_DIR/build.log"; die "umoci image build failed"; }
ORIG_DIGEST="$(layout_manifest_digest "$SRC" v1)"
ORIG_MANIFEST="$(layout_blob "$SRC" "$ORIG_DIGEST")"
ORIG_CONFIG="$(jq -r .config.digest "$ORIG_MANIFEST")"
ORIG_LAYERS="$(jq -c '[.layers[].digest]' "$ORIG_MANIFEST")"
log "built $SRC:v1 manifest $ORIG_DIGEST with $(jq '.layers | length' "$ORIG_MANIFEST") layers; repos under $R/$NS"

# ------------------------------------------------------------------ push --
test_push() {
  check "push OCI image (oci: layout -> $NS/oci:v1)" \
    sk copy --dest-tls-verify=false "oci:$SRC:v1" "docker://$R/$NS/oci:v1"
  check "push Docker v2s2 image (--format v2s2 -> $NS/v2s2:v1)" \
    sk copy --format v2s2 --dest-tls-verify=false "oci:$SRC:v1" "docker://$R/$NS/v2s2:v1"
}

# --------------------------------------------------------------- inspect --
test_inspect_oci() {
  local raw="$RUN_DIR/oci.raw" info
  if ! sk inspect --tls-verify=false --raw "docker://$R/$NS/oci:v1" >"$raw" 2>"$RUN_DIR/err"; then
    fail "inspect --raw $NS/oci:v1" "$(cat "$RUN_DIR/err")"; return
  fi
  check "OCI manifest served byte-identical to the pushed one" cmp "$ORIG_MANIFEST" "$raw"
  info="$(sk inspect --tls-verify=false "docker://$R/$NS/oci:v1" 2>&1)" || { fail "inspect $NS/oci:v1" "$info"; return; }
  check_eq "inspect digest of $NS/oci:v1" "$ORIG_DIGEST" "$(jq -r .Digest <<<"$info")"
  check_eq "inspect layers of $NS/oci:v1" "$ORIG_LAYERS" "$(jq -c .Layers <<<"$info")"
  check_eq "inspect label from the image config" "1" "$(jq -r '.Labels["org.example.interop"]' <<<"$info")"
  # The registry's own view: HEAD manifest returns the digest and length.
  local hdrs
  hdrs="$(curl -sS -I -H "Accept: $OCI_MT" "http://$R/v2/$NS/oci/manifests/v1" | tr -d '\r')"
  check_contains "HEAD manifest: Docker-Content-Digest" "${hdrs,,}" "docker-content-digest: $ORIG_DIGEST"
  check_contains "HEAD manifest: Content-Length" "${hdrs,,}" "content-length: $(stat -c %s "$ORIG_MANIFEST")"
  # umoci omits the optional mediaType field; the registry must still serve
  # the manifest with the OCI content type it was pushed with.
  check_contains "HEAD manifest: Content-Type is the OCI manifest type" "${hdrs,,}" "content-type: $OCI_MT"
}

test_inspect_v2s2() {
  local raw="$RUN_DIR/v2s2.raw" info
  if ! sk inspect --tls-verify=false --raw "docker://$R/$NS/v2s2:v1" >"$raw" 2>"$RUN_DIR/err"; then
    fail "inspect --raw $NS/v2s2:v1" "$(cat "$RUN_DIR/err")"; return
  fi
  check_eq "v2s2 manifest mediaType" "$V2S2_MT" "$(jq -r .mediaType "$raw")"
  check_eq "v2s2 manifest keeps the config blob" "$ORIG_CONFIG" "$(jq -r .config.digest "$raw")"
  check_eq "v2s2 manifest keeps the layer blobs" "$ORIG_LAYERS" "$(jq -c '[.layers[].digest]' "$raw")"
  info="$(sk inspect --tls-verify=false "docker://$R/$NS/v2s2:v1" 2>&1)" || { fail "inspect $NS/v2s2:v1" "$info"; return; }
  V2S2_DIGEST="$(sha256_of "$raw")"
  check_eq "inspect digest of $NS/v2s2:v1 = sha256 of its raw manifest" "$V2S2_DIGEST" "$(jq -r .Digest <<<"$info")"
}

# ------------------------------------------------------------- list-tags --
test_list_tags() {
  # v2 = same manifest as v1; other = a different manifest (the v2s2 one).
  check "tag $NS/oci:v2 (registry-to-registry copy, same repo)" \
    sk copy --src-tls-verify=false --dest-tls-verify=false "docker://$R/$NS/oci:v1" "docker://$R/$NS/oci:v2"
  check "tag $NS/oci:other (v2s2 manifest)" \
    sk copy --format v2s2 --dest-tls-verify=false "oci:$SRC:v1" "docker://$R/$NS/oci:other"
  local out
  out="$(sk list-tags --tls-verify=false "docker://$R/$NS/oci" 2>&1)" || { fail "list-tags $NS/oci" "$out"; return; }
  check_eq "list-tags $NS/oci" '["other","v1","v2"]' "$(jq -c '.Tags | sort' <<<"$out")"
  check_eq "v2 resolves to the same digest as v1" "$ORIG_DIGEST" \
    "$(sk inspect --tls-verify=false "docker://$R/$NS/oci:v2" 2>/dev/null | jq -r .Digest)"
}

# ------------------------------------------------------------- copy back --
test_pull_back() {
  local out="$RUN_DIR/pulled-layout" dir="$RUN_DIR/pulled-dir"
  check "pull $NS/oci:v1 into a new OCI layout" \
    sk copy --src-tls-verify=false "docker://$R/$NS/oci:v1" "oci:$out:v1"
  check_eq "pulled OCI layout has the original manifest digest" "$ORIG_DIGEST" \
    "$(layout_manifest_digest "$out" v1 2>/dev/null || echo none)"
  check "pulled OCI layout: config and layers byte-identical" same_blobs "$SRC" v1 "$out" oci

  check "pull $NS/v2s2:v1 into a dir:" \
    sk copy --src-tls-verify=false "docker://$R/$NS/v2s2:v1" "dir:$dir"
  check_eq "pulled v2s2 manifest digest" "${V2S2_DIGEST:-unknown}" \
    "$(sha256_of "$dir/manifest.json" 2>/dev/null || echo none)"
  check "pulled v2s2 dir: config and layers byte-identical" same_blobs "$SRC" v1 "$dir" dir
}

# ------------------------------------------------ cross-repository mount --
test_cross_repo() {
  local dbg="$RUN_DIR/mount-debug.log"
  if sk --debug copy --src-tls-verify=false --dest-tls-verify=false \
      "docker://$R/$NS/oci:v1" "docker://$R/$NS/mounted:v1" >"$dbg" 2>&1; then
    pass "copy $NS/oci:v1 -> $NS/mounted:v1 (same registry)"
  else
    fail "copy $NS/oci:v1 -> $NS/mounted:v1 (same registry)" "$(tail -n 15 "$dbg")"
  fi
  # skopeo knows (from its blob info cache) that the blobs are in this
  # registry and tries POST ...?mount=DIGEST&from=REPO; distribution answers
  # 201 and skopeo logs "... mount OK".
  if grep -q 'Trying to mount' "$dbg"; then
    pass "skopeo tried cross-repository blob mounts"
  else
    fail "skopeo tried cross-repository blob mounts" "no 'Trying to mount' in skopeo --debug output"
  fi
  if grep -q 'mount OK' "$dbg"; then
    pass "registry accepted the cross-repository mount ($(grep -c 'mount OK' "$dbg") blobs mounted)"
  else
    fail "registry accepted the cross-repository mount" "$(grep -i mount "$dbg" | tail -n 5)"
  fi
  check_eq "mounted copy has the same manifest digest" "$ORIG_DIGEST" \
    "$(sk inspect --tls-verify=false "docker://$R/$NS/mounted:v1" 2>/dev/null | jq -r .Digest)"

  # The same protocol step by hand, independent of skopeo's cache.
  local layer hdrs size
  layer="$(jq -r '.layers[0].digest' "$ORIG_MANIFEST")"
  size="$(jq -r '.layers[0].size' "$ORIG_MANIFEST")"
  hdrs="$(curl -sS -i -X POST "http://$R/v2/$NS/curl-mount/blobs/uploads/?mount=$layer&from=$NS/oci" | tr -d '\r')"
  check_contains "POST ?mount=&from= answers 201 Created" "$(head -n1 <<<"$hdrs")" " 201"
  check_contains "mount response has Docker-Content-Digest" "${hdrs,,}" "docker-content-digest: $layer"
  check_contains "mount response has Location" "${hdrs,,}" "location: "
  hdrs="$(curl -sS -I "http://$R/v2/$NS/curl-mount/blobs/$layer" | tr -d '\r')"
  check_contains "mounted blob visible in the target repo (HEAD 200)" "$(head -n1 <<<"$hdrs")" " 200"
  check_contains "mounted blob has the right size" "${hdrs,,}" "content-length: $size"
}

# ---------------------------------------------------------------- delete --
test_delete() {
  check "skopeo delete $NS/oci:v2" sk delete --tls-verify=false "docker://$R/$NS/oci:v2"
  check_fails "inspect $NS/oci:v2 fails after delete" \
    sk inspect --tls-verify=false "docker://$R/$NS/oci:v2"
  check_eq "GET manifest by digest after delete is 404" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MT" "http://$R/v2/$NS/oci/manifests/$ORIG_DIGEST")"
  # skopeo deletes by digest (DELETE /v2/<repo>/manifests/<digest>): the
  # manifest goes away, and distribution also removes every tag that pointed
  # at it, so v1 is gone too. A tag on another manifest is untouched.
  check_fails "inspect $NS/oci:v1 (same manifest) fails after delete" \
    sk inspect --tls-verify=false "docker://$R/$NS/oci:v1"
  check "tag $NS/oci:other (other manifest) survives" \
    sk inspect --tls-verify=false "docker://$R/$NS/oci:other"
  local out
  out="$(sk list-tags --tls-verify=false "docker://$R/$NS/oci" 2>&1)" || { fail "list-tags after delete" "$out"; return; }
  check_eq "list-tags after delete" '["other"]' "$(jq -c '.Tags | sort' <<<"$out")"
  check_eq "the same manifest in another repo is untouched" "$ORIG_DIGEST" \
    "$(sk inspect --tls-verify=false "docker://$R/$NS/mounted:v1" 2>/dev/null | jq -r .Digest)"
  local layer
  layer="$(jq -r '.layers[0].digest' "$ORIG_MANIFEST")"
  check_eq "layer blob still served after manifest delete (no GC)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/$NS/oci/blobs/$layer")"
}

test_push
test_inspect_oci
test_inspect_v2s2
test_list_tags
test_pull_back
test_cross_repo
test_delete
interop_summary
