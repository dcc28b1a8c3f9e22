# shellcheck shell=bash
# The registry shipped as a container: the image scripts/docker-image.sh
# builds (the Dockerfile's runtime stage), run with a named volume and its
# port published on 127.0.0.1; push and pull through it, restart it, replace
# the container on the same volume, and stop it with SIGTERM.
#   IMAGE_BIN   the binary put in the image (default $REGISTRY_BIN)
# Sourced by run.sh.

part_image() {
  local img="$DK_PREFIX-registry:test" vol="$DK_PREFIX-data" c="$DK_PREFIX-registry" port r out files
  log "---- the registry as a container (scripts/docker-image.sh)"
  if ! REGISTRY_BIN="${IMAGE_BIN:-$REGISTRY_BIN}" bash "$REPO_ROOT/scripts/docker-image.sh" "$img" \
      >"$RUN_DIR/image-build.log" 2>&1; then
    fail "scripts/docker-image.sh $img" "$(tail -n 10 "$RUN_DIR/image-build.log")"; return
  fi
  pass "scripts/docker-image.sh built $img from ${IMAGE_BIN:-$REGISTRY_BIN}"
  check_eq "image: user, entrypoint, no cmd, volume, port, environment" \
    '10001:10001 ["registry","serve"] null {"/var/lib/registry":{}} {"5000/tcp":{}} REGISTRY_LISTEN=0.0.0.0:5000 REGISTRY_STORAGE=fs:///var/lib/registry' \
    "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Volumes}} {{json .Config.ExposedPorts}}' "$img") $(
      docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$img" | grep '^REGISTRY_' | tr '\n' ' ' | sed 's/ $//')"
  files="$(image_files "$img")"
  check_contains "image: the binary" "$files" "root/root usr/local/bin/registry"
  check_contains "image: the C library ldd named" "$files" "root/root lib/x86_64-linux-gnu/libc.so.6"
  check_contains "image: the CA bundle" "$files" "root/root etc/ssl/certs/ca-certificates.crt"
  check_contains "image: the storage folder, owned by the user" "$files" "10001/10001 var/lib/registry/"
  check_contains "image: the cache folder, owned by the user" "$files" "10001/10001 var/cache/registry/"

  docker volume create "$vol" >/dev/null
  if ! port="$(image_start "$c" "$img" "$vol")"; then fail "docker run $img with no arguments"; return; fi
  pass "docker run -p 127.0.0.1::5000 -v $vol:/var/lib/registry $img (no arguments): port $port"
  out="$(docker logs "$c" 2>&1)"
  check_contains "it listens on 0.0.0.0:5000" "$out" "listening on http://0.0.0.0:5000"
  check_contains "it stores in /var/lib/registry" "$out" "storage=fs:///var/lib/registry"
  check_eq "image: HEALTHCHECK runs registry probe on /livez" \
    '["CMD","registry","probe","--timeout=5s","http://127.0.0.1:5000/livez"]' \
    "$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$img")"
  check_eq "the container turns healthy (registry probe in it)" healthy "$(image_health "$c" 40)"
  check_eq "it runs as the user 10001" 10001 \
    "$(docker top "$c" -o uid,pid 2>/dev/null | awk 'NR == 2 { print $1 }')"
  r="localhost:$port/$DK_PREFIX"
  if ! make_image "$r/inside:v1" "message inside of $DK_PREFIX" 1; then fail "build the test image"; return; fi
  check "docker push to the registry in a container" dk push "$r/inside:v1"

  check "docker restart" dk restart -t 35 "$c"
  port="$(image_port "$c")" && wait_http "http://127.0.0.1:$port/v2/" 30 || true
  image_pull_run "after a restart" "localhost:$port/$DK_PREFIX/inside:v1" inside "$r/inside:v1"

  docker rm -f "$c" >/dev/null
  if ! port="$(image_start "$c" "$img" "$vol")"; then fail "a new container on the same volume"; return; fi
  image_pull_run "from a new container on the same volume" "localhost:$port/$DK_PREFIX/inside:v1" inside "$r/inside:v1"

  check "docker stop (SIGTERM)" dk stop -t 35 "$c"
  out="$(docker logs "$c" 2>&1)"
  check_contains "the log shows the graceful shutdown on SIGTERM" "$out" 'shutting down: no new connections'
  check_contains "the shutdown names SIGTERM" "$out" 'signal="SIGTERM"'
  check_contains "the server says it stopped" "$(tail -n 1 <<<"$out")" "stopped"
  check_eq "exit code 0 (stopped by itself, not killed)" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$c")"
}

# image_health CONTAINER SECS: its health status once healthy, or the last
# one seen after SECS seconds.
image_health() {
  local status i
  for i in $(seq 1 "$2"); do
    status="$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>&1)"
    [ "$status" = healthy ] && break
    sleep 1
  done
  printf '%s' "$status"
}

# image_files IMAGE: "owner path" of every file in the image's layers (from
# `docker save`: `docker export` would leave out the volume's folder).
image_files() {
  local dir="$RUN_DIR/image-save" layer
  rm -rf "$dir" && mkdir -p "$dir"
  docker save "$1" | tar -xf - -C "$dir"
  for layer in $(jq -r '.[0].Layers[]' "$dir/manifest.json"); do
    tar -tvf "$dir/$layer" | awk '{ print $2, $NF }'
  done
  rm -rf "$dir"
}

# image_start NAME IMAGE VOLUME: run the registry image; print the host port.
image_start() {
  local port
  dk run -d --name "$1" -p 127.0.0.1::5000 -v "$3:/var/lib/registry" "$2" >/dev/null || return 1
  port="$(image_port "$1")" || return 1
  wait_http "http://127.0.0.1:$port/v2/" 30 >&2 || { docker logs "$1" >&2; return 1; }
  echo "$port"
}

# image_port NAME: the host port published for the container's 5000/tcp.
image_port() { docker port "$1" 5000/tcp | awk -F: 'NR == 1 { print $NF }'; }
