#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs every check. `.ci/run` calls exactly this.
#
#   scripts/test.sh
#
# Steps: install test tools (apt packages and a Python venv), rustfmt,
# clippy, the model check of the garbage collector's handshake (spin), every cargo test of the workspace (unit, behaviour suites on memory
# and fs, router tests, tests against the real server process, a fleet of
# three processes on one directory and races across it, examples and benches
# built), the /metrics output checked by Prometheus' own parser (promtool),
# then on a local S3 server (moto): the storage behaviour suite, the
# fleet tests and the fleet races, an S3 outage under a running registry
# (the test's own moto, stopped and restarted: readiness, fail-fast, cache),
# blob GETs redirected to presigned URLs (--redirect), the
# interoperability tests with skopeo, oras and CNCF distribution
# (including skopeo through a fleet on one directory and on one bucket,
# and skopeo and containerd following --redirect to the bucket),
# and the docker suite (the Docker engine, containerd and podman as clients,
# the registry's own container image, deploy/; it says so and passes where
# there is no engine).
# Every process it starts is stopped by PID; temporary data lives under one
# directory removed at the end.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
RUN_DIR="$(mktemp -d -t registry-test.XXXXXX)"
# shellcheck source=scripts/moto.sh
source "$REPO/scripts/moto.sh"

cleanup() {
  moto_stop
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0
FAILED=0
FAILED_STEPS=()
step() {
  local name="$1"; shift
  local start=$SECONDS
  printf '\n==== %s\n' "$name"
  if "$@"; then
    PASSED=$((PASSED + 1))
    printf '==== %s: ok (%ss)\n' "$name" $((SECONDS - start))
  else
    FAILED=$((FAILED + 1))
    FAILED_STEPS+=("$name")
    printf '==== %s: FAILED (%ss)\n' "$name" $((SECONDS - start))
  fi
}

# One S3 server (moto) for every S3 step; stopped by the EXIT trap.
s3_url() { printf 's3://%s/%s?endpoint=%s&region=us-east-1' "$MOTO_BUCKET" "$1" "$MOTO_ENDPOINT"; }
s3_behaviour() {
  REGISTRY_TEST_S3_URL="$(s3_url behavior)" \
    cargo test -p registry-storage --all-features --test behavior -- --ignored s3::
}
s3_fleet() {
  REGISTRY_TEST_S3_URL="$(s3_url fleet)" cargo test --test fleet -- --ignored s3_
}
s3_fleet_gc() {
  REGISTRY_TEST_S3_URL="$(s3_url fleet-gc)" cargo test --test fleet_gc -- --ignored s3_
}
s3_fleet_races() {
  REGISTRY_TEST_S3_URL="$(s3_url fleet-races)" cargo test --test fleet_races -- --ignored s3_
}
# Starts and stops a moto of its own (it kills it mid-test), with the venv's python.
s3_outage() {
  REGISTRY_TEST_MOTO_PYTHON="$REPO/.venv/bin/python" cargo test --test server_outage -- --ignored s3_
}
s3_redirect() {
  REGISTRY_TEST_S3_URL="$(s3_url redirect)" cargo test --test server_redirect -- --ignored s3_
}
s3_fleet_notify() {
  REGISTRY_TEST_S3_URL="$(s3_url fleet-notify)" cargo test --test fleet_notify -- --ignored s3_
}

export CARGO_TERM_COLOR=never
step "install test tools" bash scripts/install-test-tools.sh
step "rustfmt" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --all-targets
step "OTLP trace export" cargo test --features otlp --test server_otlp
step "doc tests" cargo test --workspace --doc
step "fuzz (30 s per target)" bash scripts/fuzz.sh 30
step "GC handshake model (spin)" bash scripts/gc-model.sh
step "metrics output through Prometheus' parser (promtool check metrics)" \
  cargo test --test server_metrics -- --ignored promtool_
step "start S3 server (moto)" moto_start "$RUN_DIR"
step "storage behaviour suite on S3" s3_behaviour
step "fleet of three processes on one S3 bucket" s3_fleet
step "races across a fleet on one S3 bucket" s3_fleet_races
step "garbage collection racing a fleet on one S3 bucket" s3_fleet_gc
step "S3 outage: readiness, fail-fast, the cache serves, recovery" s3_outage
step "webhooks at least once across a fleet on one S3 bucket (receiver down, a host killed)" s3_fleet_notify
step "blob GETs redirected to presigned S3 URLs (--redirect)" s3_redirect
step "interop: skopeo, oras, distribution, fleet, redirects" env REGISTRY_BIN="$REPO/target/debug/registry" \
  FLEET_S3_URL="$(s3_url fleet-skopeo)" MIRROR_S3_URL="$(s3_url mirror)" \
  REDIRECT_S3_URL="$(s3_url redirect-interop)" bash tests/interop/run.sh
step "docker: engine, containerd, podman, the registry's image, deploy/" \
  env REGISTRY_BIN="$REPO/target/debug/registry" bash tests/docker/run.sh

printf '\n'
if [ "$FAILED" -gt 0 ]; then
  printf 'failed steps: %s\n' "${FAILED_STEPS[*]}"
fi
printf 'steps: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
