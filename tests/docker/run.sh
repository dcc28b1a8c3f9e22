#!/usr/bin/env bash
# The docker suite: real container clients against our registry, and our
# registry shipped as a container image.
#
#   tests/docker/run.sh                        # REGISTRY_BIN=target/debug/registry
#   REGISTRY_BIN=target/release/registry tests/docker/run.sh
#   DOCKER_PARTS="engine tls" tests/docker/run.sh   # only some parts
#
# Parts (one file each, in this folder):
#   engine.sh      docker push / pull / run, cross-repository mount, an image
#                  index with `docker manifest`, pulled by digest
#   auth.sh        docker login with --auth htpasswd and with the built-in
#                  token issuer; a wrong password is refused, nothing stored
#   interrupt.sh   the registry killed mid-layer, restarted, the push repeated
#   tls.sh         a private CA trusted through /etc/docker/certs.d/<host:port>,
#                  the registry on a test host in a network namespace of the run
#   containerd.sh  ctr pull and push, in a namespace of its own
#   mirror.sh      ctr pull --hosts-dir through our pull-through mirror (?ns=),
#                  also with the upstream stopped
#   podman.sh      podman push and pull (skipped, with the reason, where it
#                  cannot run)
#   image.sh       the registry's own image (scripts/docker-image.sh): volume,
#                  restart, SIGTERM
#   deploy.sh      deploy/: compose config, systemd unit, Kubernetes manifest
#   compose.sh     deploy/compose.yaml run: three registries (the image above) on
#                  one S3 bucket (a moto container, scripts/moto-image.sh), each
#                  with its cache volume
#   fleet.sh       five registry containers, peers of each other, on one S3
#                  server (moto), on networks of the run: a host cut off from
#                  the store, an owner cut off mid-transfer, a host killed
#                  mid-push, a rolling restart under load, a rollout's S3
#                  reads per layer with and without peers (fleet_client.py is
#                  the client)
#
# Without a reachable Docker engine it prints why, `0 passed, 0 failed` and
# exits 0. Otherwise the last line is `N passed, M failed` (skipped parts
# say `skipped: why` above it) and the exit status is non-zero on any
# failure. Everything given to the engine is removed at the end, also on
# failure; the daemon is never restarted or reconfigured.
set -euo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${REGISTRY_BIN:=$REPO_ROOT/target/debug/registry}"
: "${DOCKER_PARTS:=engine auth interrupt tls containerd mirror podman image deploy compose fleet}"

if ! command -v docker >/dev/null 2>&1; then
  printf 'skipped: docker suite: no docker command on this machine\n0 passed, 0 failed\n'
  exit 0
fi
if ! timeout 20 docker info >/dev/null 2>&1; then
  printf 'skipped: docker suite: the Docker engine does not answer (docker info failed)\n0 passed, 0 failed\n'
  exit 0
fi
[ -x "$REGISTRY_BIN" ] || die "REGISTRY_BIN is not executable: $REGISTRY_BIN (cargo build --bin registry)"
REGISTRY_BIN="$(cd "$(dirname "$REGISTRY_BIN")" && pwd)/$(basename "$REGISTRY_BIN")"
require_tools gcc jq curl openssl timeout tar htpasswd

START=$SECONDS
docker_init
log "prefix $DK_PREFIX; registry $REGISTRY_BIN; engine $(docker version -f '{{.Server.Version}}'), CLI $(docker version -f '{{.Client.Version}}')"

# One plain registry for the engine, containerd and podman parts.
start_registry main || die "the registry did not start"
MAIN_PORT="$REG_PORT" MAIN_LOG="$REG_LOG" MAIN_STORE="$REG_STORE"

# The parts are lists of checks: a failing command is reported by the check
# that looks at it, and must not end the suite (nor skip the cleanup).
set +e
for part in $DOCKER_PARTS; do
  # shellcheck source=/dev/null
  declare -F "part_$part" >/dev/null || source "$DOCKER_SUITE_DIR/$part.sh" ||
    { fail "no part named $part"; continue; }
  "part_$part"
done

# Nothing left behind: the cleanup that also runs on failure, checked here.
docker_cleanup
check_eq "nothing of this run is left (images, containers, volumes, networks, certs.d, containerd namespace, netns, veth)" \
  "" "$(docker_leftovers)"
log "took $((SECONDS - START))s; $SKIPPED part(s) skipped"
interop_summary
