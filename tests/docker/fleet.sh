# shellcheck shell=bash
# part_fleet: a fleet of registry containers (the image of
# scripts/docker-image.sh) on one S3 server (a moto container,
# scripts/moto-image.sh), cut apart while clients use it.
#
# Two networks of this run: "front", where each registry publishes its port
# on 127.0.0.1 (the only way the test reaches a container), and "back"
# (internal: no way out), where the registries reach the S3 server and each
# other by name. Cutting a host off the store is `docker network disconnect`
# from back: it stays reachable on front. Each registry has its own cache
# volume, `--shutdown-delay 2s` (on SIGTERM it reports not ready and goes on
# serving that long), probes the store every second, and has every other
# registry as a peer (`--peers` by an alias on back, a shared secret file):
# whole-blob reads go to the digest's owner first (registry-peers).
#
# Scenarios, each checking what the client saw and what the store holds:
#   cut off   a host cut off from the store serves the blobs its cache holds,
#             answers an uncached blob with 503 UNAVAILABLE at once, reports
#             not ready; an upload begun on it is finished on another host;
#             reconnected, it is ready again and serves what it could not;
#   killed    a host killed (`docker kill`) in the middle of a PATCH of a
#             chunked push: the blob is never served under its digest until
#             the client, asking another host for the upload's offset, has
#             sent the rest there; then every host serves the right bytes;
#   rolling   every container restarted in turn (`docker restart`, SIGTERM)
#             under a steady pull load that sends each pull to a host whose
#             /readyz answered 200 in the last 200 ms: no pull fails;
#   peer cut  a host pulls a 64 MiB layer (slowly) that its owner streams
#             to it, and the owner is disconnected mid-transfer: the client
#             still gets every verified byte (the rest from the store); how
#             long the host takes to count the owner out is printed;
#   rollout   every host pulls the same uncached image at once: the S3
#             server's log gives the reads of each layer (goal with peers:
#             at most 1.25); then the same with the fleet recreated without
#             peers (one read per host), both printed.
# The client is tests/docker/fleet_client.py (Python's standard library).

FLEET_N=5
# The rollout image: 4 layers of 64 MiB (256 MiB, as issue 16 has it).
FLEET_LAYERS=4 FLEET_LAYER_MIB=64
FLEET_BUCKET=fleet-bucket

part_fleet() {
  local img="$DK_PREFIX-registry:test" moto="$DK_PREFIX-moto:test" i out
  log "---- a fleet of $FLEET_N registry containers on one S3 server, cut apart"
  if [ ! -x "$REPO_ROOT/.venv/bin/python" ]; then
    skip "fleet" "no venv with moto to build the S3 server's image from (scripts/install-test-tools.sh)"; return
  fi
  if ! docker image inspect "$moto" >/dev/null 2>&1 &&
      ! bash "$REPO_ROOT/scripts/moto-image.sh" "$moto" >"$RUN_DIR/fleet-moto-image.log" 2>&1; then
    fail "build the moto image (scripts/moto-image.sh)" "$(tail -n 5 "$RUN_DIR/fleet-moto-image.log")"; return
  fi
  if ! docker image inspect "$img" >/dev/null 2>&1 &&
      ! REGISTRY_BIN="${IMAGE_BIN:-$REGISTRY_BIN}" bash "$REPO_ROOT/scripts/docker-image.sh" "$img" >/dev/null 2>&1; then
    fail "build the registry image"; return
  fi
  FLEET_FRONT="$DK_PREFIX-fleet-front" FLEET_BACK="$DK_PREFIX-fleet-back" FLEET_S3="$DK_PREFIX-fleet-s3"
  if ! dk network create "$FLEET_FRONT" >/dev/null || ! dk network create --internal "$FLEET_BACK" >/dev/null; then
    fail "create the fleet's networks"; return
  fi
  if ! dk run -d --name "$FLEET_S3" --network "$FLEET_BACK" "$moto" -H 0.0.0.0 -p 5000 >/dev/null ||
      ! out="$(fleet_make_bucket "$moto" 2>&1)"; then
    fail "the S3 server (moto) up on the back network, bucket made by name" "${out:-}"; return
  fi
  pass "S3 server $FLEET_S3 on the internal network, bucket $FLEET_BUCKET made through it by name"
  FLEET_PORTS=()
  FLEET_SECRET="$RUN_DIR/fleet-peer-secret"
  head -c 24 /dev/urandom | base64 >"$FLEET_SECRET"
  chmod 644 "$FLEET_SECRET" # read by the image's user (10001)
  FLEET_MEMBERS=()
  # Peers by an alias on back only: a host cut off back is cut off its
  # peers too (by its container name it would still be found on front).
  for i in $(seq 1 "$FLEET_N"); do FLEET_MEMBERS+=("http://$DK_PREFIX-peer-$i:5000"); done
  # A first-byte deadline of 1 s, not the default 200 ms: five debug-built
  # registries and moto share two cores here, and an owner's first answer
  # includes a HEAD on moto.
  FLEET_PEER_ARGS=(--peers "$(IFS=,; echo "${FLEET_MEMBERS[*]}")" --peer-secret-file /run/peer-secret
    --peer-timeout 1s)
  for i in $(seq 1 "$FLEET_N"); do
    FLEET_PORTS[i]="$(free_port)"
    if ! fleet_create "$i" || ! dk start "$(fleet_name "$i")" >/dev/null; then
      fail "start registry container $i"; return
    fi
  done
  for i in $(seq 1 "$FLEET_N"); do
    if ! fleet_wait_ready "$i" 200 30; then
      fail "registry container $i is ready on 127.0.0.1:${FLEET_PORTS[i]}" "$(docker logs --tail 5 "$(fleet_name "$i")" 2>&1)"; return
    fi
  done
  pass "$FLEET_N registry containers ready, each on 127.0.0.1:port only (${FLEET_PORTS[*]})"
  fleet_cut_off
  fleet_peer_cut
  fleet_killed
  fleet_rolling
  fleet_rollout with
  fleet_recreate_without_peers && fleet_rollout without
}

fleet_name() { printf '%s-fleet-%s' "$DK_PREFIX" "$1"; }
fleet_base() { printf 'http://127.0.0.1:%s' "${FLEET_PORTS[$1]}"; }
fc() { python3 "$DOCKER_SUITE_DIR/fleet_client.py" "$@"; }
# jf JSON FIELD: one field of fleet_client.py's answer.
jf() { jq -r ".$2" <<<"$1"; }

# fleet_make_bucket IMAGE: PUT the bucket from a one-off container on back.
fleet_make_bucket() {
  dk run --rm --name "$DK_PREFIX-fleet-mkbucket" --network "$FLEET_BACK" --entrypoint /usr/bin/python3 "$1" -c '
import sys, time, urllib.request
for attempt in range(150):
    try:
        req = urllib.request.Request(sys.argv[1], method="PUT")
        urllib.request.urlopen(req, timeout=5).close()
        sys.exit(0)
    except OSError as err:
        last = err
        time.sleep(0.2)
sys.exit("no bucket: %s" % last)' "http://$FLEET_S3:5000/$FLEET_BUCKET"
}

# fleet_create I [ARGS...]: registry container I (created, not started) on
# front with its port published on 127.0.0.1, then joined to back.
fleet_create() {
  local i="$1"; shift
  dk create --name "$(fleet_name "$i")" --network "$FLEET_FRONT" \
    -p "127.0.0.1:${FLEET_PORTS[i]}:5000" \
    -v "$DK_PREFIX-fleet-cache-$i:/var/cache/registry" \
    -v "$FLEET_SECRET:/run/peer-secret:ro" \
    -e AWS_ACCESS_KEY_ID=test -e AWS_SECRET_ACCESS_KEY=test \
    "$DK_PREFIX-registry:test" \
    --storage "s3://$FLEET_BUCKET/fleet?endpoint=http://$FLEET_S3:5000&region=us-east-1" \
    --cache-dir /var/cache/registry --cache-size 1G \
    --shutdown-delay 2s --store-probe-interval 1s --store-failure-threshold 2 \
    "${FLEET_PEER_ARGS[@]}" "$@" >/dev/null &&
    fleet_connect "$i"
}

# fleet_connect I: join host I to back, under its peer alias.
fleet_connect() {
  dk network connect --alias "$DK_PREFIX-peer-$1" "$FLEET_BACK" "$(fleet_name "$1")"
}

# fleet_wait_ready I STATUS SECONDS: wait until host I's /readyz answers STATUS.
fleet_wait_ready() {
  local i="$1" want="$2" n
  for n in $(seq 1 $(($3 * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(fleet_base "$i")/readyz")" = "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

# fleet_metric I NAME: an unlabelled metric of host I (0 when absent).
fleet_metric() {
  curl -s --max-time 5 "$(fleet_base "$1")/metrics" |
    awk -v n="$2" '$1 == n || $1 == n "_total" { v = $2 } END { print (v == "" ? 0 : v) + 0 }'
}

# fleet_host_of URL: the index of the member with that peer URL.
fleet_host_of() {
  local i
  for i in $(seq 1 "$FLEET_N"); do [ "${FLEET_MEMBERS[i - 1]}" = "$1" ] && echo "$i" && return; done
}

fleet_peer_cut() {
  local d ranked owner asker out pid t0 noticed="" r i live
  log "---- fleet: an owner disconnected while it streams a layer to a peer"
  if ! out="$(fc push "$(fleet_base 1)" fleet/peercut v1 1 65536 "$RUN_DIR/peercut.json")"; then
    fail "push a 64 MiB layer" "$out"; return
  fi
  d="$(jq -r '.blobs[1].digest' "$RUN_DIR/peercut.json")"
  ranked="$(fc owners "$d" "${FLEET_MEMBERS[@]}")"
  owner="$(fleet_host_of "$(jq -r '.ranked[0]' <<<"$ranked")")"
  # The last in the ranking: it owns nothing of this digest, so it asks.
  asker="$(fleet_host_of "$(jq -r '.ranked[-1]' <<<"$ranked")")"
  for i in $(seq 1 50); do
    [ "$(fleet_metric "$asker" registry_peer_live_members)" = "$FLEET_N" ] && break
    sleep 0.2
  done
  check_eq "host $asker sees all $FLEET_N members live" "$FLEET_N" "$(fleet_metric "$asker" registry_peer_live_members)"
  local before_bytes
  before_bytes="$(fleet_metric "$asker" registry_peer_received_bytes)"
  fc blob "$(fleet_base "$asker")" fleet/peercut "$d" 8 >"$RUN_DIR/peercut.out" 2>&1 &
  pid=$!
  sleep 2
  dk network disconnect "$FLEET_BACK" "$(fleet_name "$owner")"
  t0=$(date +%s.%N)
  for i in $(seq 1 150); do
    live="$(fleet_metric "$asker" registry_peer_live_members)"
    if [ "$live" -lt "$FLEET_N" ]; then noticed="$(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0")"; break; fi
    sleep 0.1
  done
  wait "$pid" || true
  r="$(tail -n 1 "$RUN_DIR/peercut.out")"
  check_eq "host $asker's client got all 64 MiB, verified, though owner host $owner was cut off mid-transfer" \
    "200 $((64 * 1024 * 1024)) true" "$(jf "$r" status) $(jf "$r" bytes) $(jf "$r" verified)"
  check "... part of it came from the owner ($(($(fleet_metric "$asker" registry_peer_received_bytes) - before_bytes)) bytes)" \
    test "$(fleet_metric "$asker" registry_peer_received_bytes)" -gt "$before_bytes"
  FLEET_NOTICE_SECS="${noticed:-not within 15 s}"
  log "host $asker counted the cut-off owner out after $FLEET_NOTICE_SECS s (pings every 2 s, out after 2 failures)"
  check "host $asker counts the cut-off owner out within 15 s ($FLEET_NOTICE_SECS)" test -n "$noticed"
  fleet_connect "$owner"
  check "host $owner reconnected, ready again" fleet_wait_ready "$owner" 200 20
}

# fleet_recreate_without_peers: every registry container again, same ports
# and cache volumes, no --peers.
fleet_recreate_without_peers() {
  local i
  FLEET_PEER_ARGS=()
  for i in $(seq 1 "$FLEET_N"); do
    docker rm -f -v "$(fleet_name "$i")" >/dev/null 2>&1
    if ! fleet_create "$i" || ! dk start "$(fleet_name "$i")" >/dev/null || ! fleet_wait_ready "$i" 200 30; then
      fail "recreate registry container $i without peers"; return 1
    fi
  done
}

fleet_cut_off() {
  local b1 b2 b3 r out other loc file half t0
  b1="$(fleet_base 1)" b2="$(fleet_base 2)" b3="$(fleet_base 3)"
  log "---- fleet: host 2 cut off from the store"
  if ! out="$(fc push "$b1" fleet/cut v1 2 2048 "$RUN_DIR/cut.json")" ||
      ! fc push "$b1" fleet/other v1 1 1024 "$RUN_DIR/other.json" >/dev/null; then
    fail "push two images through host 1" "$out"; return
  fi
  check "host 2 pulls fleet/cut:v1 (its cache fills)" fc pull "$b2" fleet/cut v1 "$RUN_DIR/cut.json"
  file="$RUN_DIR/cut-upload.bin"
  head -c $((4 * 1024 * 1024)) /dev/urandom >"$file"
  half=$((2 * 1024 * 1024))
  loc="$(jf "$(fc start "$b2" fleet/cut)" location)"
  out="$(fc chunk "$b2" "$loc" "$file" 0 "$half")"
  check_eq "an upload begun on host 2: its first half PATCHed there" 202 "$(jf "$out" status)"

  dk network disconnect "$FLEET_BACK" "$(fleet_name 2)"
  local ok=0 d
  for d in $(jq -r '.blobs[].digest' "$RUN_DIR/cut.json"); do
    r="$(fc blob "$b2" fleet/cut "$d")"
    [ "$(jf "$r" status)" = 200 ] && [ "$(jf "$r" verified)" = true ] && ok=$((ok + 1))
  done
  check_eq "cut off, host 2 still serves every blob its cache holds, verified" \
    "$(jq '.blobs | length' "$RUN_DIR/cut.json")" "$ok"
  other="$(jq -r '.blobs[1].digest' "$RUN_DIR/other.json")"
  t0=$SECONDS
  out="$(curl -s -w ' %{http_code}' --max-time 30 "$b2/v2/fleet/other/blobs/$other")"
  check_eq "an uncached blob on host 2: 503 UNAVAILABLE in the spec's error body" \
    "UNAVAILABLE 503" "$(jq -r '.errors[0].code' <<<"${out% *}" 2>/dev/null) ${out##* }"
  check "... answered quickly (under 10 s: $((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 10
  check "host 2 reports not ready (/readyz 503) within 10 s" fleet_wait_ready 2 503 10
  out="$(fc offset "$b3" "$loc")"
  check_eq "host 3 reports the upload begun on host 2 at its offset" "$half" "$(jf "$out" offset)"
  out="$(fc finish "$b3" "$loc" "$file" "$half")"
  check_eq "... and finishes it (PUT with the second half: 201)" 201 "$(jf "$out" status)"
  r="$(fc blob "$b1" fleet/cut "$(jf "$out" digest)")"
  check_eq "host 1 serves the finished blob, verified" "200 true" "$(jf "$r" status) $(jf "$r" verified)"

  fleet_connect 2
  check "reconnected, host 2 is ready again within 20 s" fleet_wait_ready 2 200 20
  r="$(fc blob "$b2" fleet/other "$other")"
  check_eq "... and serves the blob it could not, verified" "200 true" "$(jf "$r" status) $(jf "$r" verified)"
}

fleet_killed() {
  local b1 b3 b4 loc file mib=$((1024 * 1024)) out r d
  b1="$(fleet_base 1)" b3="$(fleet_base 3)" b4="$(fleet_base 4)"
  log "---- fleet: host 3 killed in the middle of a chunked push"
  file="$RUN_DIR/killed-upload.bin"
  head -c $((12 * mib)) /dev/urandom >"$file"
  d="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  loc="$(jf "$(fc start "$b3" fleet/killed)" location)"
  out="$(fc chunk "$b3" "$loc" "$file" 0 $((4 * mib)))"
  out="$out $(fc chunk "$b3" "$loc" "$file" $((4 * mib)) $((8 * mib)))"
  check_eq "two 4 MiB chunks PATCHed to host 3" "202 202" "$(jq -r .status <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
  out="$(fc cut "$b3" "$loc" "$file" $((8 * mib)) $((12 * mib)) "docker kill $(fleet_name 3) >/dev/null")"
  check "the third PATCH, host 3 killed after half its body, did not succeed ($(jf "$out" status))" \
    test "$(jf "$out" status)" != 202
  check_eq "host 3's container is not running" false \
    "$(docker inspect -f '{{.State.Running}}' "$(fleet_name 3)" 2>/dev/null)"
  r="$(fc blob "$b1" fleet/killed "$d")"
  check_eq "nothing is served under the digest meanwhile (host 1: 404)" 404 "$(jf "$r" status)"
  r="$(fc blob "$b4" fleet/killed "$d")"
  check_eq "... nor by host 4 (404)" 404 "$(jf "$r" status)"
  out="$(fc offset "$b4" "$loc")"
  check_eq "host 4 reports the upload at the end of the last whole chunk" $((8 * mib)) "$(jf "$out" offset)"
  out="$(fc finish "$b4" "$loc" "$file" "$(jf "$(fc offset "$b4" "$loc")" offset)")"
  check_eq "the client finishes the push through host 4 (201, its digest)" "201 $d" \
    "$(jf "$out" status) $(jf "$out" '["docker-content-digest"]')"
  r="$(fc blob "$b1" fleet/killed "$d")"
  check_eq "host 1 serves the whole blob, verified" "200 $((12 * mib)) true" \
    "$(jf "$r" status) $(jf "$r" bytes) $(jf "$r" verified)"
  dk start "$(fleet_name 3)" >/dev/null
  check "host 3 started again, ready within 30 s" fleet_wait_ready 3 200 30
}

fleet_rolling() {
  local i bases=() pid out
  log "---- fleet: rolling restart of every container under a steady pull load"
  if ! out="$(fc push "$(fleet_base 1)" fleet/roll v1 2 256 "$RUN_DIR/roll.json")"; then
    fail "push the image pulled under load" "$out"; return
  fi
  for i in $(seq 1 "$FLEET_N"); do bases+=("$(fleet_base "$i")"); done
  rm -f "$RUN_DIR/roll.stop"
  fc load "$RUN_DIR/roll.json" fleet/roll v1 "$RUN_DIR/roll.stop" "${bases[@]}" >"$RUN_DIR/roll.out" 2>&1 &
  pid=$!
  sleep 2
  local started restarted=0
  for i in $(seq 1 "$FLEET_N"); do
    started="$(docker inspect -f '{{.State.StartedAt}}' "$(fleet_name "$i")")"
    dk restart -t 30 "$(fleet_name "$i")" >/dev/null
    fleet_wait_ready "$i" 200 30 || log "host $i not ready 30 s after its restart"
    [ "$(docker inspect -f '{{.State.StartedAt}}' "$(fleet_name "$i")")" != "$started" ] &&
      restarted=$((restarted + 1))
    sleep 1
  done
  touch "$RUN_DIR/roll.stop"
  wait "$pid" || true
  out="$(tail -n 1 "$RUN_DIR/roll.out")"
  log "load: $out"
  check_eq "every container was restarted (a new start time each)" "$FLEET_N" "$restarted"
  check_eq "no pull failed while every container restarted in turn" 0 "$(jf "$out" failed)"
  check "... and pulls went on: $(jf "$out" ok) whole-image pulls, verified" test "$(jf "$out" ok)" -gt 20
  check_eq "... through every host" 0 "$(jq '[.per_host[] | select(. == 0)] | length' <<<"$out")"
}

# s3_gets LOG_BEFORE LOG_AFTER DIGEST: the S3 server's GETs of the blob's
# data object logged between the two copies of its log.
s3_gets() {
  local hex="${3#sha256:}"
  tail -n +"$(($(wc -l <"$1") + 1))" "$2" |
    grep -c "GET /$FLEET_BUCKET/fleet/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data" || true
}

# fleet_rollout with|without: every host pulls one uncached image at once.
fleet_rollout() {
  local how="$1" i pids=() out d per_read total=0 n=0 failed=0 t0 secs
  log "---- fleet: every host pulls one uncached image at once ($how peers)"
  # One read of a layer by one host alone: how many GETs it takes
  # (the store reads a blob in ranged parts).
  if ! out="$(fc push "$(fleet_base 1)" fleet/one-$how v1 1 $((FLEET_LAYER_MIB * 1024)) "$RUN_DIR/one-$how.json")" ||
      ! out="$(fc push "$(fleet_base 1)" fleet/rollout-$how v1 "$FLEET_LAYERS" $((FLEET_LAYER_MIB * 1024)) "$RUN_DIR/rollout-$how.json")"; then
    fail "push the rollout images" "$out"; return
  fi
  docker logs "$FLEET_S3" >"$RUN_DIR/s3-0.log" 2>&1
  check "host 2 alone pulls an image of one $FLEET_LAYER_MIB MiB layer" fc pull "$(fleet_base 2)" fleet/one-$how v1 "$RUN_DIR/one-$how.json"
  docker logs "$FLEET_S3" >"$RUN_DIR/s3-1.log" 2>&1
  per_read="$(s3_gets "$RUN_DIR/s3-0.log" "$RUN_DIR/s3-1.log" "$(jq -r '.blobs[1].digest' "$RUN_DIR/one-$how.json")")"
  check "... which the S3 log shows as GETs of its data object ($per_read)" test "$per_read" -ge 1
  [ "$per_read" -ge 1 ] || return
  t0=$(date +%s.%N)
  for i in $(seq 1 "$FLEET_N"); do
    fc pull "$(fleet_base "$i")" fleet/rollout-$how v1 "$RUN_DIR/rollout-$how.json" >"$RUN_DIR/rollout-$i.out" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
  secs="$(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$t0")"
  check_eq "every host pulled the image, every byte verified ($how peers)" 0 "$failed"
  docker logs "$FLEET_S3" >"$RUN_DIR/s3-2.log" 2>&1
  for d in $(jq -r '.blobs[1:][].digest' "$RUN_DIR/rollout-$how.json"); do
    total=$((total + $(s3_gets "$RUN_DIR/s3-1.log" "$RUN_DIR/s3-2.log" "$d"))) n=$((n + 1))
  done
  local reads fallbacks=0
  for i in $(seq 1 "$FLEET_N"); do
    fallbacks=$((fallbacks + $(fleet_metric "$i" registry_peer_fallbacks)))
  done
  log "peer fallbacks to the store over the fleet (since the last restarts): $fallbacks"
  reads="$(python3 -c "print(f'{$total / ($n * $per_read):.2f}')")"
  log "rollout to $FLEET_N hosts, $how peers: $total S3 GETs of $n layers of $FLEET_LAYER_MIB MiB, $per_read GETs a read: $reads reads per layer; $secs s, $(python3 -c "print(f'{$FLEET_N * $n * $FLEET_LAYER_MIB / $secs:.0f}')") MiB/s pulled in all"
  check "the S3 log shows every layer read at least once ($how peers: $reads reads per layer)" \
    test "$total" -ge $((n * per_read))
  if [ "$how" = with ]; then
    check "with peers, at most 1.25 store reads per layer ($reads)" \
      python3 -c "import sys; sys.exit(0 if $total <= 1.25 * $n * $per_read else 1)"
  fi
}
