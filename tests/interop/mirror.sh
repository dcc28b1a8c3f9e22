#!/usr/bin/env bash
# The pull-through mirror (issue 15) with real clients: our registry with a
# [[mirrors]] table in front of Debian's distribution 2.8.2 behind htpasswd
# (start_distribution_htpasswd), everything on 127.0.0.1.
#
#   REGISTRY_BIN=target/debug/registry tests/interop/mirror.sh
#   MIRROR_S3_URL='s3://bucket/mirror?endpoint=...&region=us-east-1' ...   # also the S3 round
#
# In order (the upstream is stopped last):
#   1. skopeo copies an image through the mirror by prefix (up/<name>): the
#      manifest digest and every blob equal the upstream's; ?ns= answers the
#      same name and echoes OCI-Namespace;
#   1b. a tag moved upstream is served moved once revalidate_after has passed;
#      an image index copies with `skopeo copy --all`, digests equal;
#   1c. the same copy from a second upstream, our registry with the token
#      issuer (Bearer challenge, /token): one token for the repository's scope;
#   2. a corrupt upstream (one blob's data file overwritten with other bytes of
#      the same length): the client does not get the full verified blob,
#      nothing is stored, no lease is left; restored, the next pull fetches
#      again and gets the right bytes;
#   3. three of our processes on one store (a directory; also the S3 bucket of
#      MIRROR_S3_URL when set) get the same uncached 128 MiB blob at the same
#      moment, one curl each: the upstream's access log shows how many times it
#      sent the blob (goal 1, tolerance 2), all three clients get its sha256;
#      then the process holding a fetch lease is killed mid-fetch: its lease
#      expires, another process fetches, the upstream sends the blob at most
#      twice and both waiting clients get its sha256;
#   4. the upstream stopped: the cached tag and digest still pull (skopeo, the
#      tag revalidation failing, so served stale); an uncached tag, digest and
#      blob fail at once with 503 and the spec's JSON error body.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -n "${REGISTRY_BIN:-}" ] || die "REGISTRY_BIN must name our registry binary"
require_tools skopeo umoci jq curl cmp sha256sum htpasswd timeout "$DISTRIBUTION_BIN"
interop_init
: "${MIRROR_BIG_MIB:=128}"     # the blob three clients get at once
: "${MIRROR_HOLDER_MIB:=64}"   # the blob whose fetching process is killed

# ------------------------------------------------------------ helpers --
# start_mirror NAME STORAGE_URL: our registry serving $MIRROR_CONF on STORAGE_URL.
# Sets M_ADDR, M_PID, M_LOG.
start_mirror() {
  local name="$1" url="$2" port
  port="$(free_port)"
  M_ADDR="127.0.0.1:$port" M_LOG="$RUN_DIR/servers/$name.log"
  start_bg "$M_LOG" "$REGISTRY_BIN" serve --listen "$M_ADDR" --storage "$url" --config "$MIRROR_CONF"
  M_PID="$BG_PID"
  if ! wait_http "http://$M_ADDR/v2/" "$INTEROP_TIMEOUT" "$M_PID"; then
    show_server_logs
    die "mirror '$name' did not come up on $M_ADDR"
  fi
  log "started mirror $name pid $M_PID on $M_ADDR, storage $url"
}

# metric ADDR NAME: the value of counter NAME (NAME or NAME_total) on ADDR's /metrics, or "absent".
metric() {
  curl -s --max-time 10 "http://$1/metrics" |
    awk -v n="$2" '$1 == n || $1 == n "_total" { v = $2 } END { print (v == "" ? "absent" : v) }'
}

# mirror_counts ADDR...: the mirror counters blob_fetches, lease_waits,
# adopted and passthrough, each summed over the processes at ADDR...
mirror_counts() {
  local name a v sum sums=()
  for name in blob_fetches lease_waits adopted passthrough; do
    sum=0
    for a in "$@"; do v="$(metric "$a" "registry_mirror_$name")"; sum=$((sum + ${v/absent/0})); done
    sums+=("$sum")
  done
  echo "${sums[*]}"
}

# served_at_least N ADDR...: whether the processes at ADDR... count N
# clients served in all (a fetch, a wait for one, stored bytes, a
# passthrough). A fetch is counted once the store committed it, which may
# be just after its client has the last byte.
served_at_least() {
  local n="$1" f w a p; shift
  read -r f w a p < <(mirror_counts "$@")
  [ $((f + w + a + p)) -ge "$n" ]
}

# gets_with_status LOG DIGEST STATUS: GETs of blob DIGEST the upstream answered with STATUS.
gets_with_status() {
  grep -cE "\"GET /v2/[^ ]*/blobs/$2 HTTP/[0-9.]+\" $3 " "$1" || true
}

# push_blob REGISTRY REPO FILE: monolithic upload with the upstream's credentials; prints the status.
push_blob() {
  local up="$1" repo="$2" file="$3" digest loc
  digest="$(sha256_of "$file")"
  loc="$(curl -s -D - -o /dev/null --max-time 30 -u "$UP_CREDS" -X POST "$up/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')"
  case "$loc" in http*) ;; *) loc="$up$loc" ;; esac
  curl -s -o /dev/null -w '%{http_code}' --max-time 300 -u "$UP_CREDS" -X PUT \
    -H 'Content-Type: application/octet-stream' -T "$file" "$loc&digest=$digest"
}

# blob_data ROOT DIGEST: the data file of DIGEST in a store of distribution's layout.
blob_data() {
  local hex="${2#sha256:}"
  printf '%s/docker/registry/v2/blobs/sha256/%s/%s/data\n' "$1" "${hex:0:2}" "$hex"
}

# error_code FILE: the first error code of a spec error body, or "not an error body".
error_code() {
  jq -er 'if (.errors | type) == "array" and (.errors[0].code | type) == "string"
          and (.errors[0].message | type) == "string" then .errors[0].code else error end' "$1" 2>/dev/null ||
    echo "not an error body: $(head -c 300 "$1")"
}

# manifest_digest ADDR NAME REF [CURL ARGS]: Docker-Content-Digest of a manifest GET.
manifest_digest() {
  local addr="$1" name="$2" ref="$3"; shift 3
  curl -s -D - -o /dev/null --max-time 30 "$@" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$addr/v2/$name/manifests/$ref" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

# ----------------------------------------------------------- upstream --
UP_USER=alice UP_PASS="mirror-$RANDOM-$RANDOM"
UP_CREDS="$UP_USER:$UP_PASS"
UP_ROOT="$RUN_DIR/upstream"
start_distribution_htpasswd "$UP_ROOT" upstream "$UP_USER" "$UP_PASS"
UP_ADDR="$SERVER_ADDR" UP_PID="$SERVER_PID" UP_LOG="$SERVER_LOG"
UP="http://$UP_ADDR"

# The Docker Hub flow: a second upstream, our registry with the built-in
# token issuer (401 with a Bearer challenge, then GET /token with Basic).
TK_USER=bob TK_PASS="token-$RANDOM-$RANDOM"
htpasswd -Bbn "$TK_USER" "$TK_PASS" >"$RUN_DIR/servers/token-upstream.htpasswd"
TK_ADDR="127.0.0.1:$(free_port)" TK_LOG="$RUN_DIR/servers/token-upstream.log"
start_bg "$TK_LOG" "$REGISTRY_BIN" serve --listen "$TK_ADDR" --storage "fs://$RUN_DIR/token-upstream" \
  --auth token --htpasswd "$RUN_DIR/servers/token-upstream.htpasswd"
wait_http "http://$TK_ADDR/v2/" "$INTEROP_TIMEOUT" "$BG_PID" || die "the token upstream did not come up on $TK_ADDR"
log "started token-upstream (ours, --auth token) pid $BG_PID on $TK_ADDR"
printf '%s\n' "$TK_PASS" >"$RUN_DIR/servers/token-upstream.password"

printf '%s\n' "$UP_PASS" >"$RUN_DIR/servers/upstream.password"
MIRROR_CONF="$RUN_DIR/servers/mirror.toml"
# revalidate_after 1s: once the upstream is stopped, a pull of the cached
# tag tries its revalidation and fails, so "served stale" is what is tested.
cat >"$MIRROR_CONF" <<EOF
[[mirrors]]
prefix = "up"
namespaces = ["$UP_ADDR"]
revalidate_after = "1s"
not_found_ttl = "1s"
[[mirrors.upstreams]]
url = "$UP"
username = "$UP_USER"
password_file = "$RUN_DIR/servers/upstream.password"
timeout = "5s"

[[mirrors]]
prefix = "hub"
[[mirrors.upstreams]]
url = "http://$TK_ADDR"
username = "$TK_USER"
password_file = "$RUN_DIR/servers/token-upstream.password"
timeout = "5s"
EOF

build_test_image "$RUN_DIR/image" v1
build_test_image "$RUN_DIR/other" v1
build_test_image "$RUN_DIR/third" v1
build_test_image "$RUN_DIR/hubimg" v1
APP_DIGEST="$(layout_manifest_digest "$RUN_DIR/image" v1)"
OTHER_DIGEST="$(layout_manifest_digest "$RUN_DIR/other" v1)"
THIRD_DIGEST="$(layout_manifest_digest "$RUN_DIR/third" v1)"
HUB_DIGEST="$(layout_manifest_digest "$RUN_DIR/hubimg" v1)"
check "skopeo push of the test image to the upstream (library/app:v1)" \
  sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/image:v1" "docker://$UP_ADDR/library/app:v1"
check "skopeo push of a second image to the upstream (library/app:v2, a tag never pulled through the mirror)" \
  sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/other:v1" "docker://$UP_ADDR/library/app:v2"
check "skopeo push of a third image to the upstream (library/app:v3, its manifest and blobs never pulled through the mirror)" \
  sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/third:v1" "docker://$UP_ADDR/library/app:v3"
check_eq "the upstream serves library/app:v1 at the layout's digest" "$APP_DIGEST" \
  "$(manifest_digest "$UP_ADDR" library/app v1 -u "$UP_CREDS")"
check_eq "the upstream refuses anonymous pulls (so what the mirror gets, it gets with its credentials)" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$UP/v2/library/app/manifests/v1")"

M_STORE="$RUN_DIR/mirror-store"
start_mirror mirror "fs://$M_STORE"
M="$M_ADDR"

# ------------------------------------------- 1. skopeo through the prefix --
log "---- 1. skopeo copy through the mirror by prefix"
check "skopeo copy docker://$M/up/library/app:v1 -> oci: (anonymous client, the mirror has the credentials)" \
  sk copy --src-tls-verify=false "docker://$M/up/library/app:v1" "oci:$RUN_DIR/pulled:v1"
check_eq "the pulled manifest digest is the upstream's" "$APP_DIGEST" \
  "$(layout_manifest_digest "$RUN_DIR/pulled" v1 2>/dev/null || echo none)"
check "every blob pulled through the mirror is byte-identical to the upstream's" \
  same_blobs "$RUN_DIR/image" v1 "$RUN_DIR/pulled" oci
check_eq "skopeo inspect through the mirror: the upstream's digest" "$APP_DIGEST" \
  "$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$M/up/library/app:v1" 2>/dev/null || echo failed)"
missing=""
while read -r d; do
  [ -f "$(blob_data "$M_STORE" "$d")" ] || missing+=" $d"
done < <(printf '%s\n' "$APP_DIGEST"; image_blob_digests "$RUN_DIR/image" v1)
check_eq "the mirror's store holds the manifest and every blob (blobs/.../data)" "" "$missing"
check_contains "the catalog lists up/library/app" \
  "$(curl -s --max-time 10 "http://$M/v2/_catalog")" '"up/library/app"'
ns_headers="$(curl -s -D - -o /dev/null --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$M/v2/library/app/manifests/v1?ns=$UP_ADDR" | tr -d '\r')"
check_eq "?ns=$UP_ADDR answers library/app:v1 with the upstream's digest" "$APP_DIGEST" \
  "$(awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' <<<"$ns_headers")"
check_eq "... and echoes OCI-Namespace" "$UP_ADDR" \
  "$(awk -F': ' 'tolower($1) == "oci-namespace" { print $2 }' <<<"$ns_headers")"
check_eq "?ns= of no configured mirror is not mirrored (404)" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$M/v2/library/app/manifests/v1?ns=127.0.0.1:1")"
check_eq "a push under the prefix is refused (allow_push is off): 403 DENIED" "403 DENIED" \
  "$(curl -s -o "$RUN_DIR/push.body" -w '%{http_code}' --max-time 10 -X POST "http://$M/v2/up/library/pushed/blobs/uploads/") $(error_code "$RUN_DIR/push.body")"

# ------------------------------- 1b. a tag moved upstream; an image index --
log "---- 1b. a tag that moves upstream; an image index with skopeo copy --all"
check "upstream: library/moving:t is the first image" \
  sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/image:v1" "docker://$UP_ADDR/library/moving:t"
check_eq "through the mirror: the first image's digest" "$APP_DIGEST" \
  "$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$M/up/library/moving:t" 2>/dev/null || echo failed)"
check "upstream: library/moving:t moved to the second image" \
  sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/other:v1" "docker://$UP_ADDR/library/moving:t"
reval_before="$(metric "$M" registry_mirror_revalidations)"
sleep 1.5   # past revalidate_after
check_eq "past revalidate_after, the mirror serves the moved tag (the second image's digest)" "$OTHER_DIGEST" \
  "$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$M/up/library/moving:t" 2>/dev/null || echo failed)"
reval_after="$(metric "$M" registry_mirror_revalidations)"
check_eq "registry_mirror_revalidations counted the revalidation" 1 \
  "$([ "$reval_after" != absent ] && [ "$reval_before" != absent ] && [ "$reval_after" -gt "$reval_before" ] && echo 1 || echo "$reval_before -> $reval_after")"

for pair in "image:a" "other:b"; do
  check "upstream: library/multi:${pair#*:} (a child of the index)" \
    sk copy --dest-tls-verify=false --dest-creds "$UP_CREDS" "oci:$RUN_DIR/${pair%%:*}:v1" "docker://$UP_ADDR/library/multi:${pair#*:}"
done
INDEX="$RUN_DIR/index.json"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
  "$(jq -nc --arg d "$APP_DIGEST" --argjson s "$(stat -c %s "$(layout_blob "$RUN_DIR/image" "$APP_DIGEST")")" \
     '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s, platform: {architecture: "amd64", os: "linux"}}')" \
  "$(jq -nc --arg d "$OTHER_DIGEST" --argjson s "$(stat -c %s "$(layout_blob "$RUN_DIR/other" "$OTHER_DIGEST")")" \
     '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s, platform: {architecture: "arm64", os: "linux"}}')" \
  >"$INDEX"
INDEX_DIGEST="$(sha256_of "$INDEX")"
check_eq "upstream: the index pushed as library/multi:idx" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -u "$UP_CREDS" -X PUT \
     -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$INDEX" "$UP/v2/library/multi/manifests/idx")"
check "skopeo copy --all of the index through the mirror" \
  sk copy --all --src-tls-verify=false "docker://$M/up/library/multi:idx" "oci:$RUN_DIR/pulled-index:idx"
check_eq "the pulled index is the upstream's (digest)" "$INDEX_DIGEST" \
  "$(layout_manifest_digest "$RUN_DIR/pulled-index" idx 2>/dev/null || echo none)"
check "the first child's blobs came through byte-identical" same_blobs "$RUN_DIR/image" v1 "$RUN_DIR/pulled-index" oci
check "the second child's blobs came through byte-identical" same_blobs "$RUN_DIR/other" v1 "$RUN_DIR/pulled-index" oci

# ------------------------------------------ 1c. a bearer-token upstream --
log "---- 1c. an upstream with a token issuer (the Docker Hub flow)"
check "skopeo push of a fourth image to the token upstream (library/app:v1, skopeo follows the Bearer challenge)" \
  sk copy --dest-tls-verify=false --dest-creds "$TK_USER:$TK_PASS" "oci:$RUN_DIR/hubimg:v1" "docker://$TK_ADDR/library/app:v1"
check_contains "the token upstream refuses anonymous pulls with a Bearer challenge" \
  "$(curl -s -D - -o /dev/null --max-time 10 "http://$TK_ADDR/v2/library/app/manifests/v1" | tr -d '\r' | grep -i '^www-authenticate:')" \
  "Bearer realm="
tokens_before="$(grep -F 'path=/token ' "$TK_LOG" | grep -cF 'status=200 ' || true)"
check "skopeo copy docker://$M/hub/library/app:v1 -> oci: (the mirror gets a token with its credentials)" \
  sk copy --src-tls-verify=false "docker://$M/hub/library/app:v1" "oci:$RUN_DIR/pulled-hub:v1"
check_eq "... the upstream's manifest digest" "$HUB_DIGEST" "$(layout_manifest_digest "$RUN_DIR/pulled-hub" v1 2>/dev/null || echo none)"
check "... every blob byte-identical" same_blobs "$RUN_DIR/hubimg" v1 "$RUN_DIR/pulled-hub" oci
tokens="$(($(grep -F 'path=/token ' "$TK_LOG" | grep -cF 'status=200 ' || true) - tokens_before))"
check_eq "the mirror asked the token issuer once for the repository's pull scope and reused the token (GET /token 200)" 1 "$tokens"
check_eq "the token upstream sent the manifest and each blob once, with 200 (access log)" \
  "$(($(image_blob_digests "$RUN_DIR/hubimg" v1 | wc -l) + 1))" \
  "$(grep -F 'registry::access' "$TK_LOG" | grep -F 'method=GET ' | grep -E 'path=/v2/library/app/(manifests|blobs)/' | grep -cF 'status=200 ' || true)"

# ------------------------------------------------ 2. a corrupt upstream --
log "---- 2. an upstream that serves wrong bytes under a digest"
BLOB="$RUN_DIR/corrupt.bin"
head -c $((3 * 1024 * 1024 + RANDOM)) /dev/urandom >"$BLOB"
C_DIGEST="$(sha256_of "$BLOB")"
C_SIZE="$(stat -c %s "$BLOB")"
check_eq "blob pushed to the upstream (library/corrupt)" 201 "$(push_blob "$UP" library/corrupt "$BLOB")"
C_DATA="$(blob_data "$UP_ROOT" "$C_DIGEST")"
if [ -f "$C_DATA" ]; then
  cp "$C_DATA" "$RUN_DIR/corrupt.saved"
  head -c "$C_SIZE" /dev/urandom >"$C_DATA"
  curl -s -o "$RUN_DIR/corrupt.direct" --max-time 30 -u "$UP_CREDS" "$UP/v2/library/corrupt/blobs/$C_DIGEST" || true
  check_eq "the corruption took effect: the upstream sends $C_SIZE bytes that do not hash to the digest" \
    "$C_SIZE other" "$(stat -c %s "$RUN_DIR/corrupt.direct") $([ "$(sha256_of "$RUN_DIR/corrupt.direct")" = "$C_DIGEST" ] && echo same || echo other)"

  C_URL="http://$M/v2/up/library/corrupt/blobs/$C_DIGEST"
  c_before="$(gets_with_status "$UP_LOG" "$C_DIGEST" 200)"
  rc=0
  got="$(curl -s -o "$RUN_DIR/corrupt.got" -w '%{http_code} %{size_download}' --max-time 60 "$C_URL")" || rc=$?
  got_sha="$(sha256_of "$RUN_DIR/corrupt.got" 2>/dev/null || echo none)"
  log "GET through the mirror of the corrupt blob: curl rc=$rc, status and bytes received: $got (of $C_SIZE), sha256 $([ "$got_sha" = "$C_DIGEST" ] && echo matches || echo differs)"
  check_eq "the client did not get the full verified blob" 1 \
    "$([ "$rc" -ne 0 ] || [ "$got_sha" != "$C_DIGEST" ] && echo 1 || echo "curl rc=0 and the right sha256")"
  check_eq "the client's response ended with an error (curl exit status not 0), not a complete wrong body" 1 \
    "$([ "$rc" -ne 0 ] && echo 1 || echo "curl rc=0, $got")"
  check_eq "the upstream did send it (one GET answered 200)" $((c_before + 1)) "$(gets_with_status "$UP_LOG" "$C_DIGEST" 200)"
  sleep 0.5
  check_eq "the mirror's store has no blobs/.../data for the digest" absent \
    "$([ -e "$(blob_data "$M_STORE" "$C_DIGEST")" ] && echo present || echo absent)"
  check_eq "no fetch lease is left (no generation under _registry/mirror/fetch/sha256/<hex>/)" 0 \
    "$(find "$M_STORE/_registry/mirror/fetch/sha256/${C_DIGEST#sha256:}" -type f 2>/dev/null | wc -l)"
  check_eq "no data file of the digest anywhere in the mirror's store" "" \
    "$(find "$M_STORE" -path "*${C_DIGEST#sha256:}*" -name data 2>/dev/null)"
  rejected="$(metric "$M" registry_mirror_rejected)"
  check_eq "registry_mirror_rejected counts it" 1 "$([ "$rejected" != absent ] && [ "$rejected" -ge 1 ] && echo 1 || echo "$rejected")"

  cp "$RUN_DIR/corrupt.saved" "$C_DATA"
  rc=0
  curl -s -f -o "$RUN_DIR/corrupt.again" --max-time 60 "$C_URL" || rc=$?
  check_eq "restored upstream: the next GET through the mirror succeeds" 0 "$rc"
  check_eq "... with the right bytes" "$C_DIGEST" "$(sha256_of "$RUN_DIR/corrupt.again")"
  check_eq "... fetched from the upstream again (a second GET answered 200)" $((c_before + 2)) \
    "$(gets_with_status "$UP_LOG" "$C_DIGEST" 200)"
  # Stored (and counted) just after the client has its last byte: the
  # store tells the mirror the bytes verified before it commits them.
  wait_until 10 test -f "$(blob_data "$M_STORE" "$C_DIGEST")" || true
  check_eq "... and stored now (within 10 s)" present "$([ -f "$(blob_data "$M_STORE" "$C_DIGEST")" ] && echo present || echo absent)"
  check "a third GET is served from the store, same bytes" \
    cmp "$BLOB" <(curl -s -f --max-time 60 "$C_URL")
  check_eq "... without asking the upstream" $((c_before + 2)) "$(gets_with_status "$UP_LOG" "$C_DIGEST" 200)"
else
  fail "the pushed blob's data file is in the upstream's storage directory" "missing: $C_DATA"
fi

# -------------------------- 3. three processes, one store, one 128 MiB blob --
log "---- 3. three processes on one store, one uncached ${MIRROR_BIG_MIB} MiB blob, three clients at once"
BIG="$RUN_DIR/big.bin"
head -c $((MIRROR_BIG_MIB * 1024 * 1024)) /dev/urandom >"$BIG"
BIG_DIGEST="$(sha256_of "$BIG")"
check_eq "${MIRROR_BIG_MIB} MiB blob pushed to the upstream (library/big)" 201 "$(push_blob "$UP" library/big "$BIG")"
rm -f "$BIG"   # its digest is all the clients are checked against

# concurrent_round LABEL STORAGE_URL
concurrent_round() {
  local label="$1" url="$2" i before after total_before total_after
  local -a addrs=() mpids=() cpids=() rcs=()
  for i in 1 2 3; do
    start_mirror "$label-$i" "$url"
    addrs+=("$M_ADDR") mpids+=("$M_PID")
  done
  before="$(gets_with_status "$UP_LOG" "$BIG_DIGEST" 200)"
  total_before="$(count_blob_gets "$UP_LOG" "$BIG_DIGEST")"
  local start=$SECONDS
  for i in 0 1 2; do
    curl -s -o "$RUN_DIR/$label-big.$i" --max-time 600 \
      "http://${addrs[$i]}/v2/up/library/big/blobs/$BIG_DIGEST" &
    cpids+=("$!")
  done
  STARTED_PIDS+=("${cpids[@]}")
  for i in 0 1 2; do
    rcs[i]=0
    wait "${cpids[$i]}" || rcs[i]=$?
  done
  forget_pids "${cpids[@]}"
  log "$label: three clients done in $((SECONDS - start))s, curl exit statuses ${rcs[*]}"
  for i in 0 1 2; do
    check_eq "$label: client $((i + 1)) (process $((i + 1))) got the blob's sha256" "0 $BIG_DIGEST" \
      "${rcs[$i]} $(sha256_of "$RUN_DIR/$label-big.$i")"
    rm -f "$RUN_DIR/$label-big.$i"
  done
  after="$(gets_with_status "$UP_LOG" "$BIG_DIGEST" 200)"
  total_after="$(count_blob_gets "$UP_LOG" "$BIG_DIGEST")"
  local sent=$((after - before))
  log "$label: the upstream's access log: the blob sent (GET 200) $sent time(s), GETs of any status $((total_after - total_before)); goal (once) $([ "$sent" -eq 1 ] && echo met || echo NOT met)"
  check_eq "$label: the upstream sent the blob at least once and at most twice (goal once; it was $sent)" 1 \
    "$([ "$sent" -ge 1 ] && [ "$sent" -le 2 ] && echo 1 || echo "$sent times")"
  local fetches waits adopted pass
  wait_until 30 served_at_least 3 "${addrs[@]}" || true
  read -r fetches waits adopted pass < <(mirror_counts "${addrs[@]}")
  log "$label: metrics summed over the three: blob_fetches $fetches, lease_waits $waits, adopted $adopted, passthrough $pass"
  check_eq "$label: the three processes' metrics agree with the upstream's log (blob_fetches + passthrough = times sent)" \
    "$sent" "$((fetches + pass))"
  check_eq "$label: every client was served by a fetch, a wait for one, or the stored bytes (sum 3)" 3 \
    "$((fetches + waits + adopted + pass))"
  for i in 2 1 0; do stop_pid "${mpids[$i]}"; done
}

# forget_pids PID...: reap PIDs of ours that ended and drop them from
# STARTED_PIDS (so a recycled PID is never signalled by the cleanup).
forget_pids() {
  local -a keep=()
  local p
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for p in "${STARTED_PIDS[@]}"; do
    case " $* " in *" $p "*) ;; *) keep+=("$p") ;; esac
  done
  STARTED_PIDS=("${keep[@]}")
}

# killed_holder_round LABEL STORAGE_URL: three processes on one store; the
# first one's client (slowed to 1 MiB/s, which slows its fetch) starts first,
# so that process holds the fetch lease; the other two clients then wait for
# it, and the first process is killed (SIGKILL) mid-fetch. Its lease (30 s)
# expires, one of the others takes it over and fetches again: the upstream
# sends the blob at most twice, and both waiting clients get its sha256.
killed_holder_round() {
  local label="$1" url="$2" i digest file hex t0 sent before
  local -a addrs=() mpids=() rcs=()
  file="$RUN_DIR/holder.bin"
  head -c $((MIRROR_HOLDER_MIB * 1024 * 1024)) /dev/urandom >"$file"
  digest="$(sha256_of "$file")" hex="${digest#sha256:}"
  check_eq "$label: ${MIRROR_HOLDER_MIB} MiB blob pushed to the upstream (library/holder)" 201 \
    "$(push_blob "$UP" library/holder "$file")"
  rm -f "$file"
  for i in 1 2 3; do
    start_mirror "$label-holder-$i" "$url"
    addrs+=("$M_ADDR") mpids+=("$M_PID")
  done
  before="$(gets_with_status "$UP_LOG" "$digest" 200)"
  t0=$SECONDS
  curl -s -o "$RUN_DIR/holder.0" --limit-rate 1M --max-time 300 \
    "http://${addrs[0]}/v2/up/library/holder/blobs/$digest" &
  local c0=$!
  STARTED_PIDS+=("$c0")
  sleep 1.5
  curl -s -o "$RUN_DIR/holder.1" --max-time 300 "http://${addrs[1]}/v2/up/library/holder/blobs/$digest" &
  local c1=$!
  curl -s -o "$RUN_DIR/holder.2" --max-time 300 "http://${addrs[2]}/v2/up/library/holder/blobs/$digest" &
  local c2=$!
  STARTED_PIDS+=("$c1" "$c2")
  sleep 1.5
  case "$url" in
    fs://*) log "$label: fetch lease before the kill: $(find "${url#fs://}/_registry/mirror/fetch/sha256/$hex" -type f 2>/dev/null | wc -l) generation(s) for the digest" ;;
  esac
  kill -KILL "${mpids[0]}"
  forget_pids "${mpids[0]}"
  rcs=(0 0 0)
  wait "$c0" || rcs[0]=$?
  wait "$c1" || rcs[1]=$?
  wait "$c2" || rcs[2]=$?
  forget_pids "$c0" "$c1" "$c2"
  sent=$(($(gets_with_status "$UP_LOG" "$digest" 200) - before))
  log "$label: process 1 killed; clients done after $((SECONDS - t0))s, curl exit statuses ${rcs[*]}; the upstream sent the blob (GET 200, the killed transfer included) $sent time(s)"
  check_eq "$label: the killed process's client did not get a whole blob (curl exit status not 0)" 1 \
    "$([ "${rcs[0]}" -ne 0 ] && echo 1 || echo "curl rc=0")"
  for i in 1 2; do
    check_eq "$label: client $((i + 1)), waiting on process $((i + 1)), got the blob's sha256 after the holder died" \
      "0 $digest" "${rcs[$i]} $(sha256_of "$RUN_DIR/holder.$i")"
  done
  rm -f "$RUN_DIR"/holder.[012]
  check_eq "$label: the upstream sent the blob at most twice (the killed fetch and one other; it was $sent)" 1 \
    "$([ "$sent" -ge 1 ] && [ "$sent" -le 2 ] && echo 1 || echo "$sent times")"
  local fetches waits _
  wait_until 30 served_at_least 2 "${addrs[1]}" "${addrs[2]}" || true
  read -r fetches waits _ _ < <(mirror_counts "${addrs[1]}" "${addrs[2]}")
  check_eq "$label: of the two survivors one took the expired lease over and fetched, the other waited for it (blob_fetches lease_waits)" \
    "1 1" "$fetches $waits"
  stop_pid "${mpids[2]}"
  stop_pid "${mpids[1]}"
}

concurrent_round fs "fs://$RUN_DIR/fleet-store"
killed_holder_round fs "fs://$RUN_DIR/holder-store"
if [ -n "${MIRROR_S3_URL:-}" ]; then
  concurrent_round s3 "$MIRROR_S3_URL"
  killed_holder_round s3 "$MIRROR_S3_URL"
else
  log "MIRROR_S3_URL not set: the S3 round did not run (scripts/test.sh runs it against moto)"
fi

# ------------------------------------------------- 4. upstream stopped --
log "---- 4. the upstream stopped"
stop_pid "$UP_PID"
check_eq "the upstream is down" 000 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$UP/v2/" || true)"
sleep 1.5   # past revalidate_after: the next pull of the tag revalidates, and that fails
stale_before="$(metric "$M" registry_mirror_stale_served)"
check "the cached tag still pulls (skopeo copy up/library/app:v1)" \
  sk copy --src-tls-verify=false "docker://$M/up/library/app:v1" "oci:$RUN_DIR/offline-tag:v1"
check "... byte-identical" same_blobs "$RUN_DIR/image" v1 "$RUN_DIR/offline-tag" oci
check_eq "... at the upstream's digest" "$APP_DIGEST" "$(layout_manifest_digest "$RUN_DIR/offline-tag" v1 2>/dev/null || echo none)"
stale_after="$(metric "$M" registry_mirror_stale_served)"
check_eq "registry_mirror_stale_served counted the stale tag" 1 \
  "$([ "$stale_after" != absent ] && [ "$stale_before" != absent ] && [ "$stale_after" -gt "$stale_before" ] && echo 1 || echo "$stale_before -> $stale_after")"
check "the cached digest still pulls (skopeo copy up/library/app@digest)" \
  sk copy --src-tls-verify=false "docker://$M/up/library/app@$APP_DIGEST" "oci:$RUN_DIR/offline-digest:v1"
check "... byte-identical" same_blobs "$RUN_DIR/image" v1 "$RUN_DIR/offline-digest" oci

# uncached REF_DESC URL_PATH: a GET that must fail fast with 503 and the spec's error body.
uncached() {
  local desc="$1" path="$2" out="$RUN_DIR/uncached.body" t0 t1 status rc=0
  t0="$(date +%s%N)"
  status="$(curl -s -o "$out" -w '%{http_code}' --max-time 20 \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$M$path")" || rc=$?
  t1="$(date +%s%N)"
  local ms=$(((t1 - t0) / 1000000))
  log "$desc: rc=$rc status $status in ${ms} ms, body $(head -c 300 "$out")"
  check_eq "$desc: answered (no hang) within 10 s" 1 "$([ "$rc" -eq 0 ] && [ "$ms" -lt 10000 ] && echo 1 || echo "curl rc=$rc after ${ms} ms")"
  check_eq "$desc: 503 with the error code UNAVAILABLE in the spec's error body" "503 UNAVAILABLE" \
    "$status $(error_code "$out")"
}
uncached "uncached tag up/library/app:v2" /v2/up/library/app/manifests/v2
uncached "uncached digest up/library/app@$THIRD_DIGEST" "/v2/up/library/app/manifests/$THIRD_DIGEST"
uncached "uncached blob of up/library/app" \
  "/v2/up/library/app/blobs/$(image_blob_digests "$RUN_DIR/third" v1 | tail -n 1)"
uncached "uncached tag by ?ns= (library/app:v2?ns=$UP_ADDR)" "/v2/library/app/manifests/v2?ns=$UP_ADDR"
t0=$SECONDS
check_fails "skopeo copy of the uncached tag fails" \
  sk copy --retry-times 0 --src-tls-verify=false "docker://$M/up/library/app:v2" "oci:$RUN_DIR/never:v2"
check_eq "... within 30 s" 1 "$([ $((SECONDS - t0)) -lt 30 ] && echo 1 || echo "$((SECONDS - t0)) s")"

stop_all
interop_summary
