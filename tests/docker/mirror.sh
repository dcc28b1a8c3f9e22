# shellcheck shell=bash
# containerd pulls through the pull-through mirror (issue 15) with a
# hosts.toml mirror entry, which makes it send `?ns=<upstream host:port>`:
# an upstream (a plain registry of ours) holds an image built offline with
# umoci and pushed with skopeo; a second registry of ours mirrors it under the
# prefix `up`, its `namespaces` holding the upstream's host:port as
# containerd sends it. `ctr images pull --hosts-dir DIR` of the upstream's
# reference must end with the upstream's digest, and the mirror must have
# answered (its access log, `registry_mirror_manifest_fetches`, its catalog);
# then, the upstream stopped and containerd's copy removed, the same pull
# again, which only the mirror can answer. The containerd namespace of the
# part is removed by docker_cleanup, also on failure. Sourced by run.sh.

# ctr_ns and containerd_cleanup (which docker_cleanup calls) are containerd.sh's.
# shellcheck source=tests/docker/containerd.sh
declare -F containerd_cleanup >/dev/null || source "$DOCKER_SUITE_DIR/containerd.sh"

# mirror_metric PORT NAME: counter NAME (or NAME_total) on 127.0.0.1:PORT/metrics, or "absent".
mirror_metric() {
  curl -s --max-time 10 "http://127.0.0.1:$1/metrics" |
    awk -v n="$2" '$1 == n || $1 == n "_total" { v = $2 } END { print (v == "" ? "absent" : v) }'
}

# mirror_pull DUMP HOSTS_DIR REF: ctr images pull through HOSTS_DIR, its HTTP
# exchanges (--http-dump) also written to DUMP.
mirror_pull() {
  ctr_ns images pull --http-dump --hosts-dir "$2" "$3" 2>&1 | tee "$1"
  return "${PIPESTATUS[0]}"
}

part_mirror() {
  local up_port up_pid up_log m_port m_pid m_log conf hosts ref want got layers n
  log "---- mirror: containerd pulls through the mirror (hosts.toml, ?ns=)"
  if ! command -v ctr >/dev/null || [ ! -S "$CONTAINERD_SOCK" ]; then
    skip "mirror" "no ctr command or no containerd socket at $CONTAINERD_SOCK"; return
  fi
  if ! command -v skopeo >/dev/null || ! command -v umoci >/dev/null; then
    skip "mirror" "needs skopeo and umoci for the upstream's image (scripts/install-test-tools.sh)"; return
  fi
  [ -z "$DK_NAMESPACE" ] || containerd_cleanup

  start_registry mirror-upstream || { fail "the mirror's upstream registry started"; return; }
  up_port="$REG_PORT" up_pid="$REG_PID" up_log="$REG_LOG"
  build_test_image "$RUN_DIR/mirror-image" v1 >/dev/null 2>&1 || { fail "umoci built the test image"; return; }
  want="$(layout_manifest_digest "$RUN_DIR/mirror-image" v1)"
  check "skopeo push of the test image to the upstream 127.0.0.1:$up_port/$DK_PREFIX/app:v1" \
    sk copy --dest-tls-verify=false "oci:$RUN_DIR/mirror-image:v1" "docker://127.0.0.1:$up_port/$DK_PREFIX/app:v1"

  conf="$RUN_DIR/mirror.toml"
  cat >"$conf" <<EOF
[[mirrors]]
prefix = "up"
namespaces = ["127.0.0.1:$up_port"]
[[mirrors.upstreams]]
url = "http://127.0.0.1:$up_port"
timeout = "5s"
EOF
  start_registry mirror --config "$conf" || { fail "the mirror started"; stop_pid "$up_pid"; return; }
  m_port="$REG_PORT" m_pid="$REG_PID" m_log="$REG_LOG"

  hosts="$RUN_DIR/containerd-hosts"
  mkdir -p "$hosts/127.0.0.1:$up_port"
  cat >"$hosts/127.0.0.1:$up_port/hosts.toml" <<EOF
server = "http://127.0.0.1:$up_port"

[host."http://127.0.0.1:$m_port"]
  capabilities = ["pull", "resolve"]
EOF
  ref="127.0.0.1:$up_port/$DK_PREFIX/app:v1"
  DK_NAMESPACE="$DK_PREFIX-mirror"
  check "ctr images pull --hosts-dir (mirror 127.0.0.1:$m_port) $ref" \
    mirror_pull "$RUN_DIR/mirror-pull.dump" "$hosts" "$ref"
  check_eq "containerd has the image at the upstream's digest" "$want" \
    "$(ctr_ns images ls | awk -v ref="$ref" '$1 == ref { print $3 }')"
  layers="$(jq -r '.layers[].digest' "$(layout_blob "$RUN_DIR/mirror-image" "$want")" | sort)"
  check_eq "containerd fetched every layer" "$layers" \
    "$(while read -r n; do ctr_ns content ls -q | grep -xF "$n"; done <<<"$layers" | sort)"
  check_eq "the mirror answered containerd's manifest request (access log: GET /v2/$DK_PREFIX/app/manifests/... 200)" 1 \
    "$(n="$(access_count "$m_log" GET "/v2/$DK_PREFIX/app/manifests/" 200)"; [ "$n" -ge 1 ] && echo 1 || echo "$n lines")"
  # The access log has no query strings: containerd's own dump of its
  # exchanges, a request line followed by its Host header.
  check_eq "containerd asked the mirror (Host 127.0.0.1:$m_port) with ?ns=127.0.0.1:$up_port (ctr --http-dump)" 1 \
    "$(n="$(grep -A1 -E "msg=\"(GET|HEAD) /v2/$DK_PREFIX/app/manifests/v1\?ns=127\.0\.0\.1(:|%3A)$up_port HTTP/" \
         "$RUN_DIR/mirror-pull.dump" | grep -cF "msg=\"Host: 127.0.0.1:$m_port\"")"
       [ "$n" -ge 1 ] && echo 1 || echo "$n such requests in the dump")"
  check_eq "the mirror's answers echo OCI-Namespace: 127.0.0.1:$up_port (ctr --http-dump)" 1 \
    "$(n="$(grep -ciF "msg=\"Oci-Namespace: 127.0.0.1:$up_port\"" "$RUN_DIR/mirror-pull.dump")"
       [ "$n" -ge 1 ] && echo 1 || echo "$n such headers in the dump")"
  got="$(mirror_metric "$m_port" registry_mirror_manifest_fetches)"
  check_eq "registry_mirror_manifest_fetches > 0" 1 "$([ "$got" != absent ] && [ "$got" -gt 0 ] && echo 1 || echo "$got")"
  check_contains "the mirror's catalog lists up/$DK_PREFIX/app" \
    "$(curl -s --max-time 10 "http://127.0.0.1:$m_port/v2/_catalog")" "\"up/$DK_PREFIX/app\""
  check_eq "the mirror served containerd each layer and the config (access log: GET .../blobs/... 200)" \
    "$(($(wc -l <<<"$layers") + 1))" "$(access_count "$m_log" GET "/v2/$DK_PREFIX/app/blobs/" 200)"
  check_eq "the upstream sent each layer and the config once (the mirror's fetch, no second one)" \
    "$(($(wc -l <<<"$layers") + 1))" "$(access_count "$up_log" GET "/v2/$DK_PREFIX/app/blobs/" 200)"

  # Only the mirror can answer now.
  containerd_cleanup
  stop_pid "$up_pid"
  DK_NAMESPACE="$DK_PREFIX-mirror"
  check "the upstream stopped, containerd's copy removed: the same pull succeeds (from the mirror alone)" \
    mirror_pull "$RUN_DIR/mirror-pull-2.dump" "$hosts" "$ref"
  check_eq "... at the upstream's digest" "$want" "$(ctr_ns images ls | awk -v ref="$ref" '$1 == ref { print $3 }')"

  containerd_cleanup
  check_fails "the namespace $DK_PREFIX-mirror is gone" sh -c \
    "ctr --address '$CONTAINERD_SOCK' namespaces ls -q | grep -qxF '$DK_PREFIX-mirror'"
  stop_pid "$m_pid"
}
