#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs every check. `.ci/run` calls exactly this.
#
#   scripts/test.sh
#
# Steps: install test tools (apt packages and a Python venv), rustfmt,
# clippy, every cargo test of the workspace (unit, behaviour suites on memory
# and fs, router tests, tests against the real server process, examples and
# benches built), the storage behaviour suite on a local S3 server (moto),
# and the interoperability tests with skopeo, oras and CNCF distribution.
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

s3_suite() {
  moto_start "$RUN_DIR" || return 1
  REGISTRY_TEST_S3_URL="s3://$MOTO_BUCKET/behavior?endpoint=$MOTO_ENDPOINT&region=us-east-1" \
    cargo test -p registry-storage --all-features --test behavior -- --ignored s3::
  local rc=$?
  moto_stop
  return $rc
}

export CARGO_TERM_COLOR=never
step "install test tools" bash scripts/install-test-tools.sh
step "rustfmt" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --all-targets
step "doc tests" cargo test --workspace --doc
step "storage suite on S3 (moto)" s3_suite
step "interop: skopeo, oras, distribution" env REGISTRY_BIN="$REPO/target/debug/registry" bash tests/interop/run.sh

printf '\n'
if [ "$FAILED" -gt 0 ]; then
  printf 'failed steps: %s\n' "${FAILED_STEPS[*]}"
fi
printf 'steps: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
