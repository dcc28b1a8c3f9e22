#!/usr/bin/env bash
# `--redirect` on S3: skopeo, and containerd's client (`ctr images pull`,
# against a containerd of this run), pull through a registry that answers
# blob GETs with 307 to presigned URLs of the bucket, following them to the
# S3 server; the pulled blobs must be the pushed ones. The URLs are signed
# for `localhost` (--redirect-endpoint): the registry listens on 127.0.0.1,
# and a URL on the registry's own host is refused.
#
#   REGISTRY_BIN=target/debug/registry REDIRECT_S3_URL=s3://... tests/interop/redirect.sh
#
# Without REDIRECT_S3_URL (scripts/test.sh passes one on its moto) it says
# so and passes; without containerd (or root) it skips that part.
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -n "${REGISTRY_BIN:-}" ] || die "REGISTRY_BIN must name our registry binary"
require_tools skopeo umoci jq curl cmp
interop_init

if [ -z "${REDIRECT_S3_URL:-}" ]; then
  log "REDIRECT_S3_URL not set: nothing ran (scripts/test.sh runs it against moto)"
  interop_summary
  exit 0
fi

endpoint="${REDIRECT_S3_URL#*endpoint=}"
endpoint="${endpoint%%&*}"
public="${endpoint/127.0.0.1/localhost}"
mkdir -p "$RUN_DIR/servers"
port="$(free_port)"
R="127.0.0.1:$port"
LOGFILE="$RUN_DIR/servers/redirect.log"
start_bg "$LOGFILE" "$REGISTRY_BIN" serve --listen "$R" --storage "$REDIRECT_S3_URL" \
  --redirect true --redirect-endpoint "$public"
wait_http "http://$R/v2/" "$INTEROP_TIMEOUT" "$BG_PID" || { cat "$LOGFILE"; die "the redirecting registry did not start"; }
log "registry on $R, storage $REDIRECT_S3_URL, redirects to $public"

build_test_image "$RUN_DIR/image" v1 >"$RUN_DIR/build.log" 2>&1 || { cat "$RUN_DIR/build.log"; die "umoci image build failed"; }
want="$(layout_manifest_digest "$RUN_DIR/image" v1)"
layer="$(jq -r '.layers[0].digest' "$(layout_blob "$RUN_DIR/image" "$want")")"

redirected_gets() { grep -c 'status=307' "$LOGFILE" || true; }

check "skopeo push to $R/redirect/app:v1" \
  sk copy --dest-tls-verify=false "oci:$RUN_DIR/image:v1" "docker://$R/redirect/app:v1"
hdrs="$(curl -sS -D - -o /dev/null "http://$R/v2/redirect/app/blobs/$layer" | tr -d '\r')"
check_contains "blob GET: 307" "$hdrs" "HTTP/1.1 307"
check_contains "blob GET: Docker-Content-Digest on the redirect" "${hdrs,,}" "docker-content-digest: $layer"
check_contains "blob GET: Location on $public" "${hdrs,,}" "location: ${public,,}/"
hdrs="$(curl -sS -I "http://$R/v2/redirect/app/blobs/$layer" | tr -d '\r')"
check_contains "blob HEAD: 200 here" "$hdrs" "HTTP/1.1 200"

before="$(redirected_gets)"
check "skopeo pull from $R/redirect/app:v1 (following the redirects)" \
  sk copy --src-tls-verify=false "docker://$R/redirect/app:v1" "oci:$RUN_DIR/pulled:v1"
check "skopeo: pulled blobs byte-identical" same_blobs "$RUN_DIR/image" v1 "$RUN_DIR/pulled" oci
after="$(redirected_gets)"
check "skopeo's blob GETs were redirected ($before -> $after 307s)" test "$after" -gt "$before"
got="$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$R/redirect/app:v1" 2>/dev/null || true)"
check_eq "manifest digest" "$want" "$got"

# containerd's client: a containerd of this run, its content and the
# native snapshotter (plain directories, no mounts) under RUN_DIR.
if command -v containerd >/dev/null && command -v ctr >/dev/null && [ "$(id -u)" = 0 ]; then
  C="$RUN_DIR/containerd"
  mkdir -p "$C"
  cat >"$C/config.toml" <<CONF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/c.sock"
[ttrpc]
  address = "$C/c.sock.ttrpc"
CONF
  start_bg "$C/log" containerd --config "$C/config.toml"
  for _ in $(seq 1 100); do [ -S "$C/c.sock" ] && break; sleep 0.1; done
  [ -S "$C/c.sock" ] || fail "containerd of this run started" "$(tail -5 "$C/log")"
  ctr_r() { timeout -k 10 "$INTEROP_TIMEOUT" ctr --address "$C/c.sock" -n redirect "$@"; }
  before="$(redirected_gets)"
  check "ctr images pull --plain-http --snapshotter native $R/redirect/app:v1" \
    ctr_r images pull --plain-http --snapshotter native "$R/redirect/app:v1"
  after="$(redirected_gets)"
  check "containerd's blob GETs were redirected ($before -> $after 307s)" test "$after" -gt "$before"
  check_eq "containerd has the manifest digest" "$want" \
    "$(ctr_r images ls | awk -v ref="$R/redirect/app:v1" '$1 == ref { print $3 }')"
  # containerd verifies each blob against its digest; compare them too.
  ctr_same() {
    local d
    for d in $(image_blob_digests "$RUN_DIR/image" v1); do
      cmp -s "$(layout_blob "$RUN_DIR/image" "$d")" <(ctr_r content get "$d") || { echo "blob $d differs"; return 1; }
    done
  }
  check "containerd: fetched blobs byte-identical" ctr_same
else
  log "no containerd or ctr, or not root: the containerd part did not run"
fi

stop_all
interop_summary
