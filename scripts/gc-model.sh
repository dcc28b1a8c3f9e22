#!/usr/bin/env bash
# Check the garbage collector's handshake with writers (docs/GC.md) with the
# spin model checker: the model docs/models/gc.pml must satisfy its safety
# claim (an accepted manifest never loses its blob), and each variant with
# one part of the handshake removed must violate it (spin finds the
# interleaving that loses the blob). Needs `spin` and `gcc`.
# To see an interleaving: cd to a copy of docs/models, then
#   spin -a -DNO_RECORDS gc.pml && gcc -o pan pan.c && ./pan -a; spin -t -p -DNO_RECORDS gc.pml
#
#   scripts/gc-model.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="$REPO/docs/models/gc.pml"
command -v spin >/dev/null || { echo "gc-model: spin is not installed (scripts/install-test-tools.sh)" >&2; exit 1; }
WORK="$(mktemp -d -t gc-model.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp "$MODEL" "$WORK/gc.pml"
cd "$WORK"

# errors VARIANT: how many violations spin finds (exhaustive search).
errors() {
  spin -a $1 gc.pml >/dev/null
  gcc -O2 -o pan pan.c
  ./pan -a -N safe >out.txt 2>&1 || true
  local n
  n="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' out.txt)"
  [ -n "$n" ] || { cat out.txt >&2; echo "gc-model: no verdict from spin" >&2; exit 1; }
  if grep -q "search not completed\|max search depth too small" out.txt && [ "$n" = 0 ]; then
    cat out.txt >&2; echo "gc-model: search incomplete" >&2; exit 1
  fi
  printf '%s' "$n"
}

passed=0 failed=0
expect() { # expect WANT VARIANT
  local want="$1" variant="$2" n
  n="$(errors "$variant")"
  # A violation must be of the safety claim, not a deadlock or another error.
  if { [ "$want" = holds ] && [ "$n" = 0 ]; } ||
     { [ "$want" = violated ] && [ "$n" != 0 ] && grep -q "assertion violated" out.txt; }; then
    passed=$((passed + 1)); echo "ok: ${variant:-full handshake}: safety $want (errors: $n)"
  else
    failed=$((failed + 1)); echo "FAIL: ${variant:-full handshake}: expected safety $want, spin found $n errors"
  fi
}

expect holds ""
expect holds -DNEEDS_ALONE
for v in -DNO_WRITER_CHECK -DNO_RECORDS -DEAGER_CLEANUP -DSNAPSHOT_AT_START -DNO_ANNOUNCE -DLEASE_IGNORED; do
  expect violated "$v"
done
echo "gc-model: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
