#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for a bounded time; any crash (or a
# target that fails to build or run) fails the script.
#
#   scripts/fuzz.sh [SECONDS]     # per target, default 30
#
# Needs the nightly toolchain (rustup) and cargo-fuzz
# (scripts/install-test-tools.sh installs cargo-fuzz). Each target starts
# from its corpus in fuzz/corpus/<target> (new inputs found are added there,
# in the work tree only); a crash leaves its input in fuzz/artifacts/<target>/
# and its output in the log printed below.
set -uo pipefail

SECONDS_PER_TARGET="${1:-30}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO/fuzz" || exit 1

die() { printf '[fuzz] ERROR: %s\n' "$*" >&2; exit 1; }

case "$SECONDS_PER_TARGET" in
  ''|*[!0-9]*|0) die "SECONDS must be a positive integer, got '$SECONDS_PER_TARGET'" ;;
esac
command -v rustup >/dev/null || die "rustup not found: the fuzz targets need a nightly toolchain"
rustup toolchain list | grep -q '^nightly' \
  || die "no nightly toolchain (rustup toolchain list); install it with: rustup toolchain install nightly"
cargo +nightly fuzz --version >/dev/null 2>&1 \
  || die "cargo-fuzz not found: run scripts/install-test-tools.sh (cargo install cargo-fuzz --locked)"

mapfile -t TARGETS < <(cargo +nightly fuzz list)
[ "${#TARGETS[@]}" -gt 0 ] || die "no fuzz targets found in fuzz/"

printf '[fuzz] building %d targets\n' "${#TARGETS[@]}"
cargo +nightly fuzz build || die "building the fuzz targets failed"

LOG_DIR="$(mktemp -d -t registry-fuzz.XXXXXX)"
trap 'rm -rf "$LOG_DIR"' EXIT
failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="$LOG_DIR/$target.log"
  start=$SECONDS
  # -max_total_time bounds the run; `timeout` is a backstop should a target
  # hang in a single input past libFuzzer's own -timeout.
  timeout --kill-after=10 $((SECONDS_PER_TARGET + 60)) \
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  if [ "$rc" -eq 0 ]; then
    printf '[fuzz] %-20s ok      %6ss  %s runs\n' "$target" $((SECONDS - start)) "${runs:-?}"
  else
    printf '[fuzz] %-20s FAILED  %6ss  exit %s\n' "$target" $((SECONDS - start)) "$rc"
    tail -n 60 "$log" | sed 's/^/    /'
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  printf '[fuzz] %d of %d targets failed: %s\n' "${#failed[@]}" "${#TARGETS[@]}" "${failed[*]}"
  exit 1
fi
printf '[fuzz] all %d targets ran %ss without a crash\n' "${#TARGETS[@]}" "$SECONDS_PER_TARGET"
