# shellcheck shell=bash
# containerd, the engine's own (its socket under the engine's run directory),
# with `ctr` in a namespace of this run: pull the image the engine pushed,
# check its layers, push it to another repository, and let the engine pull
# and run what containerd pushed. The namespace (images, content, leases,
# snapshots) is removed by docker_cleanup. Needs $ENGINE_DIGEST (engine.sh).
# Sourced by run.sh.

ctr_ns() { timeout -k 10 "$DOCKER_TIMEOUT" ctr --address "$CONTAINERD_SOCK" -n "$DK_NAMESPACE" "$@"; }

part_containerd() {
  local r="localhost:$MAIN_PORT/$DK_PREFIX" out manifest layer
  log "---- containerd: ctr pull and push"
  if ! command -v ctr >/dev/null || [ ! -S "$CONTAINERD_SOCK" ]; then
    skip "containerd" "no ctr command or no containerd socket at $CONTAINERD_SOCK"; return
  fi
  if [ -z "${ENGINE_DIGEST:-}" ]; then
    skip "containerd" "needs the image the engine part pushed (DOCKER_PARTS without engine)"; return
  fi
  DK_NAMESPACE="$DK_PREFIX"
  check "ctr images pull --plain-http $r/app:v1" ctr_ns images pull --plain-http "$r/app:v1"
  check_eq "containerd has the image at the digest the engine pushed" "$ENGINE_DIGEST" \
    "$(ctr_ns images ls | awk -v ref="$r/app:v1" '$1 == ref { print $3 }')"
  manifest="$(ctr_ns content get "$ENGINE_DIGEST" 2>/dev/null)"
  check_eq "containerd fetched every layer" "$(jq -r '.layers[].digest' <<<"$manifest" | sort)" \
    "$(jq -r '.layers[].digest' <<<"$manifest" | while read -r layer; do
        ctr_ns content ls -q | grep -xF "$layer"; done | sort)"

  check "ctr images tag -> $r/ctr:v1" ctr_ns images tag "$r/app:v1" "$r/ctr:v1"
  check "ctr images push --plain-http $r/ctr:v1" ctr_ns images push --plain-http "$r/ctr:v1"
  check_eq "the registry has what containerd pushed, same digest" "$ENGINE_DIGEST" \
    "$(curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$MAIN_PORT/v2/$DK_PREFIX/ctr/manifests/v1" | tr -d '\r' \
        | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')"
  forget_image "$r/ctr:v1"
  check "docker pull of the image containerd pushed" dk pull "$r/ctr:v1"
  check_eq "it runs" "$(printf 'hello from the docker suite\nmessage v1 of %s' "$DK_PREFIX")" \
    "$(run_output "$r/ctr:v1")"
  containerd_cleanup
  check_fails "the namespace $DK_PREFIX is gone" sh -c \
    "ctr --address '$CONTAINERD_SOCK' namespaces ls -q | grep -qxF '$DK_PREFIX'"
}

# containerd_cleanup: remove the namespace of this run and all it holds.
containerd_cleanup() {
  local x
  [ -n "$DK_NAMESPACE" ] || return 0
  ctr --address "$CONTAINERD_SOCK" namespaces ls -q 2>/dev/null | grep -xF "$DK_NAMESPACE" >/dev/null || { DK_NAMESPACE=""; return 0; }
  for x in $(ctr_ns images ls -q 2>/dev/null); do ctr_ns images rm --sync "$x" >/dev/null 2>&1; done
  for x in $(ctr_ns leases ls -q 2>/dev/null); do ctr_ns leases rm "$x" >/dev/null 2>&1; done
  for x in $(ctr_ns snapshots ls 2>/dev/null | awk 'NR > 1 { print $1 }'); do ctr_ns snapshots rm "$x" >/dev/null 2>&1; done
  for x in $(ctr_ns content ls -q 2>/dev/null); do ctr_ns content rm "$x" >/dev/null 2>&1; done
  ctr --address "$CONTAINERD_SOCK" namespaces rm "$DK_NAMESPACE" >/dev/null 2>&1 || true
  DK_NAMESPACE=""
}
