# shellcheck shell=bash
# An interrupted push: the registry is killed (SIGKILL) while the engine
# streams a 64 MiB layer, the push fails, the registry is restarted on the
# same port and storage, and pushing again completes the image, which then
# pulls and runs. Sourced by run.sh.

part_interrupt() {
  local r out pid i rc=0 port store partial
  log "---- interrupted push: registry killed mid-layer, restarted, pushed again"
  if ! start_registry interrupt; then fail "start the registry"; return; fi
  port="$REG_PORT" store="$REG_STORE"
  r="localhost:$port/$DK_PREFIX"
  if ! make_image "$r/big:v1" "message big of $DK_PREFIX" 64; then
    fail "build the image with a 64 MiB layer"; return
  fi

  # Not through dk (a function: $! would be a subshell, not the client).
  timeout -k 10 "$DOCKER_TIMEOUT" docker push "$r/big:v1" >"$RUN_DIR/push1.out" 2>&1 &
  pid=$!
  partial=""
  for i in $(seq 1 600); do
    partial="$(find "$store" -path '*/_uploads/*' -type f -size +4M 2>/dev/null | head -n 1 || true)"
    [ -n "$partial" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$partial" ]; then
    fail "saw the layer arrive in an upload before killing the registry" "$(tail -n 5 "$RUN_DIR/push1.out")"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return
  fi
  kill -KILL "$REG_PID"
  wait "$REG_PID" 2>/dev/null || true
  pass "registry killed with $(( $(stat -c %s "$partial") / 1048576 )) MiB of the layer received"
  # The engine would retry for about a minute; stop its client instead
  # (timeout passes the TERM on to docker, and the engine cancels the push).
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  check_eq "the first push did not complete" "no" "$( [ "$rc" -eq 0 ] && echo yes || echo no)"
  check_fails "the manifest is not in the registry's store" \
    test -e "$store/docker/registry/v2/repositories/$DK_PREFIX/big/_manifests/tags/v1"

  REG_PORT_WANTED="$port"
  if ! start_registry interrupt; then unset REG_PORT_WANTED; fail "restart the registry on port $port"; return; fi
  unset REG_PORT_WANTED
  pass "registry restarted on the same port and storage"
  out="$(dk push "$r/big:v1" 2>&1)"
  check_contains "pushing again completes the image" "$out" "v1: digest: sha256:"
  forget_image "$r/big:v1"
  check "docker pull $r/big:v1" dk pull "$r/big:v1"
  check_eq "the image pushed after the interruption runs" \
    "$(printf 'hello from the docker suite\nmessage big of %s' "$DK_PREFIX")" "$(run_output "$r/big:v1")"
  check_eq "its 64 MiB layer arrived whole" "$((64 * 1024 * 1024))" \
    "$(dk run --rm --name "$DK_PREFIX-size-$RANDOM" --network none --entrypoint /hello "$r/big:v1" /data/big.bin | tail -c +29 | wc -c)"
  stop_pid "$REG_PID"
}
