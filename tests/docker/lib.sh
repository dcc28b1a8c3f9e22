# shellcheck shell=bash
# Helpers of the docker suite (tests/docker/), on top of tests/interop/lib.sh
# (run directory, processes by PID, ports, PASS/FAIL counters, summary).
#
# Everything the suite gives the engine, containerd or podman carries the
# prefix $DK_PREFIX (images, containers, volumes, networks, the containerd
# namespace, the network namespaces of test hosts) or is listed in
# $DK_CERTS_DIRS, and docker_cleanup removes all of it, also on failure. The daemon is never restarted or reconfigured; the
# CLI's own configuration (logins, manifest lists) lives in $DOCKER_CONFIG
# inside the run directory.
#
# Knobs: DOCKER_TIMEOUT (seconds per docker command, default 180).

# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../interop/lib.sh"
DOCKER_SUITE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${DOCKER_TIMEOUT:=180}"
DK_RAND=$RANDOM
DK_PREFIX="regtest-$$-$DK_RAND"
# Interface names have at most 15 characters: the prefix, shortened (hex).
DK_IFPREFIX="$(printf 'rt%x-%x' "$$" "$DK_RAND")"
DK_NETNS=()                # network namespaces of test hosts we made
DK_NETNS_PIDS=()           # processes we started inside them
DK_NAMESPACE=""            # containerd namespace, once created
CONTAINERD_SOCK="${CONTAINERD_SOCK:-/var/run/docker/containerd/containerd.sock}"
DK_CERTS_DIRS=()           # /etc/docker/certs.d/<host:port> folders we made
SKIPPED=0
export DOCKER_BUILDKIT=0   # the legacy builder: no buildx here

# skip PART WHY: a part that cannot run here says why (not counted as a pass).
skip() {
  SKIPPED=$((SKIPPED + 1))
  printf 'skipped: %s: %s\n' "$1" "$2"
}

# dk ARGS...: docker with a bounded run time.
dk() { timeout -k 10 "$DOCKER_TIMEOUT" docker "$@"; }

# docker_init: the run directory, the CLI's private config, the cleanup trap.
docker_init() {
  interop_init
  export DOCKER_CONFIG="$RUN_DIR/docker-config"
  mkdir -p "$DOCKER_CONFIG"
  printf '{}\n' >"$DOCKER_CONFIG/config.json"
  trap docker_suite_cleanup EXIT
}

docker_suite_cleanup() {
  local rc=$?
  set +e
  docker_cleanup
  interop_cleanup "$rc"
}

# docker_cleanup: remove every object of this run, by prefix.
docker_cleanup() {
  local ids d
  if [ -n "${DK_COMPOSE_PROJECT:-}" ]; then dk_compose down -v --remove-orphans >/dev/null 2>&1; fi
  ids="$(docker ps -aq --filter "name=^$DK_PREFIX" 2>/dev/null)"
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1
  # Several passes: an image with children (a base) goes once they are gone.
  for d in 1 2 3; do
    ids="$(docker images --format '{{.Repository}} {{.ID}}' 2>/dev/null | awk -v p="$DK_PREFIX" 'index($1, p) { print $2 }' | sort -u)"
    [ -z "$ids" ] || docker rmi -f $ids >/dev/null 2>&1
  done
  ids="$(docker volume ls -q --filter "name=^$DK_PREFIX" 2>/dev/null)"
  [ -z "$ids" ] || docker volume rm -f $ids >/dev/null 2>&1
  ids="$(docker network ls -q --filter "name=^$DK_PREFIX" 2>/dev/null)"
  [ -z "$ids" ] || docker network rm $ids >/dev/null 2>&1
  # Most recent first: a certs.d folder we had to create goes last, and
  # only if empty (someone else may have added to it meanwhile).
  local i
  for ((i = ${#DK_CERTS_DIRS[@]} - 1; i >= 0; i--)); do
    d="${DK_CERTS_DIRS[$i]}"
    if [ "$d" = /etc/docker/certs.d ]; then rmdir "$d" 2>/dev/null; else rm -rf "$d"; fi
  done
  [ -z "$DK_NAMESPACE" ] || containerd_cleanup
  netns_cleanup
}

# docker_leftovers: objects of this run still known to the engine, one a line.
docker_leftovers() {
  docker ps -a --format '{{.Names}}' | grep -F "$DK_PREFIX"
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "$DK_PREFIX"
  docker volume ls -q | grep -F "$DK_PREFIX"
  docker network ls --format '{{.Name}}' | grep -F "$DK_PREFIX"
  local d
  for d in "${DK_CERTS_DIRS[@]}"; do [ ! -e "$d" ] || echo "$d"; done
  ctr --address "$CONTAINERD_SOCK" namespaces ls -q 2>/dev/null | grep -F "$DK_PREFIX"
  ip netns list 2>/dev/null | grep -F "$DK_PREFIX"
  dk_veths
  return 0
}

# start_registry NAME ARGS...: our registry as a host process on 127.0.0.1
# (a free port), storage fs://$RUN_DIR/NAME unless ARGS give --storage.
# Sets REG_PORT, REG_PID, REG_LOG, REG_STORE.
start_registry() {
  local name="$1"; shift
  REG_PORT="${REG_PORT_WANTED:-$(free_port)}"
  REG_STORE="$RUN_DIR/$name"
  REG_LOG="$RUN_DIR/servers/$name.log"
  mkdir -p "$RUN_DIR/servers" "$REG_STORE"
  start_bg "$REG_LOG" ${REG_NETNS:+ip netns exec "$REG_NETNS"} "$REGISTRY_BIN" serve --listen "${REG_HOST:-127.0.0.1}:$REG_PORT" \
    --storage "fs://$REG_STORE" "$@"
  REG_PID="$BG_PID"
  [ -z "${REG_NETNS:-}" ] || DK_NETNS_PIDS+=("$REG_PID")
  if [ -n "${REG_TLS_WAIT:-}" ]; then
    # HTTPS: wait for the port (the certificate is checked by the test).
    local i
    for i in $(seq 1 150); do
      curl -sk -o /dev/null --max-time 2 "https://${REG_HOST:-127.0.0.1}:$REG_PORT/v2/" && break
      kill -0 "$REG_PID" 2>/dev/null || break
      sleep 0.2
    done
  fi
  if ! kill -0 "$REG_PID" 2>/dev/null || { [ -z "${REG_TLS_WAIT:-}" ] && ! wait_http "http://127.0.0.1:$REG_PORT/v2/" 30 "$REG_PID"; }; then
    tail -n 20 "$REG_LOG"
    return 1
  fi
  log "registry $name pid $REG_PID on ${REG_HOST:-127.0.0.1}:$REG_PORT"
}

# test_host NAME: a test host of this run: the network namespace
# $DK_PREFIX-NAME, joined to this host by a veth pair on a /30 picked at
# random in 10.213.0.0/16 (one not routed here yet). Sets TEST_NS, TEST_ADDR
# (the namespace's end) and TEST_PEER (this host's end). Removed by
# docker_cleanup (netns_cleanup), also on failure.
test_host() {
  local ns="$DK_PREFIX-$1" hostif="$DK_IFPREFIX-${#DK_NETNS[@]}h" nsif="$DK_IFPREFIX-${#DK_NETNS[@]}n" net try
  for try in 1 2 3 4 5 6 7 8; do
    net="10.213.$((RANDOM % 256)).$((RANDOM % 64 * 4))"
    # Taken if any route but the default one covers it.
    [ -z "$(ip -4 route show match "$net/30" | grep -v '^default')" ] && break
    net=""
  done
  [ -n "$net" ] || { echo "no free /30 in 10.213.0.0/16" >&2; return 1; }
  TEST_PEER="${net%.*}.$((${net##*.} + 1))" TEST_ADDR="${net%.*}.$((${net##*.} + 2))" TEST_NS="$ns"
  ip netns add "$ns" || return 1
  DK_NETNS+=("$ns")
  ip link add "$hostif" type veth peer name "$nsif" netns "$ns" &&
    ip addr add "$TEST_PEER/30" dev "$hostif" && ip link set "$hostif" up &&
    ip -n "$ns" addr add "$TEST_ADDR/30" dev "$nsif" && ip -n "$ns" link set "$nsif" up &&
    ip -n "$ns" link set lo up
}

# dk_veths: this host's network interfaces of this run (veth ends), by name.
dk_veths() {
  ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -F "$DK_IFPREFIX"
}

# netns_cleanup: stop what runs in our namespaces (by PID), remove them and
# the host ends of their veth pairs.
netns_cleanup() {
  local pid ns ifname
  for pid in "${DK_NETNS_PIDS[@]}"; do stop_pid "$pid"; done
  DK_NETNS_PIDS=()
  for ns in "${DK_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  # Deleting a namespace deletes its veth ends and so their peers; any left:
  for ifname in $(dk_veths); do
    ip link del "$ifname" 2>/dev/null
  done
}

# access_count LOG METHOD PATH_PREFIX STATUS: access-log lines of that request.
access_count() {
  grep -F 'registry::access' "$1" | grep -F "method=$2 " | grep -F "path=$3" | grep -c "status=$4 " || true
}

# ---------------------------------------------------------- test images --
# build_hello: the static test program, once per run ($RUN_DIR/hello/hello).
build_hello() {
  [ -x "$RUN_DIR/hello/hello" ] && return 0
  mkdir -p "$RUN_DIR/hello"
  gcc -static -Os -o "$RUN_DIR/hello/hello" "$DOCKER_SUITE_DIR/hello.c"
}

# make_image TAG MESSAGE BIG_MIB: a three-layer image built offline: the
# static program imported as the base layer (`docker import`), then
# `docker build` adds /data/message (MESSAGE) and /data/big.bin (BIG_MIB MiB
# of random bytes, so every run has fresh digests). `docker run TAG` prints
# "hello from the docker suite" and MESSAGE.
make_image() {
  local tag="$1" message="$2" mib="$3" ctx
  build_hello || return 1
  ctx="$(mktemp -d "$RUN_DIR/ctx.XXXXXX")"
  mkdir -p "$ctx/root"
  cp "$RUN_DIR/hello/hello" "$ctx/root/hello"
  tar -C "$ctx/root" -cf "$ctx/base.tar" hello
  dk import --change 'CMD ["/hello"]' "$ctx/base.tar" "$DK_PREFIX-base-$RANDOM:1" >"$ctx/base.id" || return 1
  printf '%s\n' "$message" >"$ctx/message"
  head -c $((mib * 1024 * 1024)) /dev/urandom >"$ctx/big.bin"
  cat >"$ctx/Dockerfile" <<EOF
FROM $(cat "$ctx/base.id")
COPY message /data/message
COPY big.bin /data/big.bin
CMD ["/hello", "/data/message"]
EOF
  dk build -q -t "$tag" -f "$ctx/Dockerfile" "$ctx" >/dev/null 2>"$ctx/build.err" || { cat "$ctx/build.err"; return 1; }
  rm -rf "$ctx"
}

# forget_image REF...: remove the local tags and, once untagged, the layers,
# so that the next pull has to fetch every layer.
forget_image() {
  local ref id ids=()
  for ref in "$@"; do
    id="$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null)" && ids+=("$id")
  done
  [ "${#ids[@]}" -eq 0 ] || docker rmi -f "${ids[@]}" >/dev/null 2>&1
  # The imported bases of this run, which the built images were made from.
  ids=()
  while read -r id; do ids+=("$id"); done < <(docker images --format '{{.Repository}} {{.ID}}' | awk -v p="$DK_PREFIX-base-" 'index($1, p) == 1 { print $2 }')
  [ "${#ids[@]}" -eq 0 ] || docker rmi -f "${ids[@]}" >/dev/null 2>&1
  return 0
}

# run_output REF: what the image prints (container removed afterwards).
run_output() {
  dk run --rm --name "$DK_PREFIX-run-$RANDOM" --network none "$1" 2>&1
}

# image_pull_run WHEN REF WHAT LOCAL_REFS...: forget the local copies, pull
# REF, run it: it prints the message of make_image with WHAT in it.
image_pull_run() {
  local when="$1" ref="$2" what="$3"; shift 3
  forget_image "$ref" "$@"
  check "docker pull $when" dk pull "$ref"
  check_eq "the image pulled $when runs" \
    "$(printf 'hello from the docker suite\nmessage %s of %s' "$what" "$DK_PREFIX")" "$(run_output "$ref")"
}
