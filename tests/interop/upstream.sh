#!/usr/bin/env bash
# The htpasswd upstream the mirror tests pull from (start_distribution_htpasswd
# in lib.sh): Debian's distribution refuses anonymous and wrong credentials,
# accepts the right ones, serves a pushed blob intact, and its access log
# counts each blob GET (count_blob_gets), which the mirror tests rely on to
# show one upstream fetch per blob.
#
#   tests/interop/upstream.sh            # standalone; prints `N passed, M failed`
set -euo pipefail
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools htpasswd curl cmp sha256sum "$DISTRIBUTION_BIN"
interop_init

start_distribution_htpasswd "$RUN_DIR/upstream" upstream alice s3cret
UP="http://$SERVER_ADDR"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }

check_eq "anonymous /v2/ is refused" 401 "$(code "$UP/v2/")"
check_eq "wrong password is refused" 401 "$(code -u alice:wrong "$UP/v2/")"
check_eq "right password is accepted" 200 "$(code -u alice:s3cret "$UP/v2/")"

BLOB="$RUN_DIR/blob"
head -c 300000 /dev/urandom >"$BLOB"
DIGEST="$(sha256_of "$BLOB")"
LOC="$(curl -s -D - -o /dev/null --max-time 10 -u alice:s3cret -X POST "$UP/v2/up/repo/blobs/uploads/" \
  | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')"
case "$LOC" in http*) ;; *) LOC="$UP$LOC" ;; esac
check_eq "monolithic blob push" 201 "$(code -u alice:s3cret -X PUT \
  -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB" "$LOC&digest=$DIGEST")"
check_eq "access log: no blob GET yet" 0 "$(count_blob_gets "$SERVER_LOG" "$DIGEST")"
check "blob pulled back intact" cmp "$BLOB" <(curl -s --max-time 10 -u alice:s3cret "$UP/v2/up/repo/blobs/$DIGEST")
code -u alice:s3cret -I "$UP/v2/up/repo/blobs/$DIGEST" >/dev/null
code -u alice:s3cret "$UP/v2/up/repo/blobs/$DIGEST" >/dev/null
check_eq "access log: two blob GETs counted (HEAD not)" 2 "$(count_blob_gets "$SERVER_LOG" "$DIGEST")"

interop_summary
