#!/usr/bin/env bash
# Build the registry's container image offline, from a local release binary,
# with the same runtime stage as the Dockerfile (no base image is pulled: the
# Dockerfile's build stage needs a Rust image, this script does not).
#
#   scripts/docker-image.sh [TAG]          # default tag: rs-registry:dev
#
#   REGISTRY_BIN   the binary to ship (default target/release/registry,
#                  built with `cargo build --release --bin registry` if absent)
#
# It assembles the root filesystem with scripts/container-rootfs.sh, as the
# Dockerfile's build stage does, and builds the Dockerfile's text from
# `FROM scratch AS runtime` on with each `COPY --from=build /out/...` read
# from that local folder instead; everything else (user, volume, port,
# environment, entrypoint) is the Dockerfile's own lines. Uses the engine's
# legacy builder (DOCKER_BUILDKIT=0), which builds FROM scratch offline.
# Prints the image id last.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${1:-rs-registry:dev}"
BIN="${REGISTRY_BIN:-$REPO/target/release/registry}"

if [ ! -x "$BIN" ] && [ -z "${REGISTRY_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --locked --bin registry)
fi
[ -x "$BIN" ] || { echo "not an executable: $BIN" >&2; exit 1; }

CTX="$(mktemp -d "${TMPDIR:-/tmp}/registry-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
bash "$REPO/scripts/container-rootfs.sh" "$BIN" "$CTX/out/rootfs"
mkdir "$CTX/out/empty"

# The runtime stage, its build-stage copies pointed at the local folder.
awk '/^FROM scratch AS runtime$/ { on = 1 } on' "$REPO/Dockerfile" \
  | sed 's#^COPY --from=build \(.*\)/out/#COPY \1out/#' >"$CTX/Dockerfile"
grep -q '^FROM scratch AS runtime$' "$CTX/Dockerfile" || { echo "no runtime stage in Dockerfile" >&2; exit 1; }
if grep -q -- '--from=' "$CTX/Dockerfile"; then
  echo "Dockerfile's runtime stage copies from elsewhere than /out of the build stage:" >&2
  grep -- '--from=' "$CTX/Dockerfile" >&2
  exit 1
fi

DOCKER_BUILDKIT=0 docker build --quiet -t "$TAG" "$CTX"
