# shellcheck shell=bash
# podman (Debian's package) with its storage under the run directory (vfs,
# nothing in /var/lib/containers): pull what the engine pushed, push it to
# another repository, and let the engine pull and run what podman pushed.
# Skipped, with the reason, where podman is missing or cannot work here.
# Needs $ENGINE_DIGEST (engine.sh). Sourced by run.sh.

pm() {
  timeout -k 10 "$DOCKER_TIMEOUT" podman --root "$RUN_DIR/podman/root" --runroot "$RUN_DIR/podman/run" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend none "$@"
}

part_podman() {
  local r="localhost:$MAIN_PORT/$DK_PREFIX" out
  log "---- podman: pull and push"
  if ! command -v podman >/dev/null; then
    skip "podman" "podman is not installed (scripts/install-test-tools.sh installs Debian's)"; return
  fi
  if [ -z "${ENGINE_DIGEST:-}" ]; then
    skip "podman" "needs the image the engine part pushed (DOCKER_PARTS without engine)"; return
  fi
  if ! out="$(pm images 2>&1)"; then
    skip "podman" "podman cannot run here: $(tail -n 1 <<<"$out")"; return
  fi
  log "podman $(pm version -f '{{.Client.Version}}' 2>/dev/null)"
  check "podman pull $r/app:v1" pm pull --tls-verify=false "$r/app:v1"
  check_eq "podman has the digest the engine pushed" "$ENGINE_DIGEST" \
    "$(pm image inspect -f '{{.Digest}}' "$r/app:v1" 2>/dev/null)"
  check "podman tag -> $r/podman:v1" pm tag "$r/app:v1" "$r/podman:v1"
  check "podman push $r/podman:v1" pm push --tls-verify=false "$r/podman:v1"
  check_eq "the registry has the tag podman pushed" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$MAIN_PORT/v2/$DK_PREFIX/podman/manifests/v1")"
  forget_image "$r/podman:v1"
  check "docker pull of the image podman pushed" dk pull "$r/podman:v1"
  check_eq "it runs" "$(printf 'hello from the docker suite\nmessage v1 of %s' "$DK_PREFIX")" \
    "$(run_output "$r/podman:v1")"
  # Running containers is not what a registry needs of podman; it is tried
  # to report it, and skipped where the sandbox refuses it.
  if out="$(pm run --rm --network none --ulimit host "$r/app:v1" 2>&1)"; then
    check_eq "podman run of the pulled image" \
      "$(printf 'hello from the docker suite\nmessage v1 of %s' "$DK_PREFIX")" "$out"
  else
    skip "podman run" "podman cannot start containers here: $(tail -n 1 <<<"$out")"
  fi
  pm rmi -a -f >/dev/null 2>&1 || true
}
