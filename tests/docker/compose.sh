# shellcheck shell=bash
# part_compose: deploy/compose.yaml's three registries run for real, with
# the registry's image, published on 127.0.0.1 at free ports as the file
# does, on one S3 bucket: the file's `s3` service is a moto container of
# this run (scripts/moto-image.sh; MinIO has no image here) on the compose
# project's own network, reached by name (http://s3:5000), and its `bucket`
# service creates the bucket with the same image; an override file says so.
# Push through the first, pull and run through the second, list through
# the third, and find the blobs in the second one's cache volume. The test
# talks to the registries only through their ports on 127.0.0.1.
part_compose() {
  local img="$DK_PREFIX-registry:test" moto="$DK_PREFIX-moto:test" n out vol
  log "---- deploy/compose.yaml: three registries on one S3 bucket"
  if ! command -v docker-compose >/dev/null; then skip "compose run" "no docker-compose command"; return; fi
  if [ ! -x "$REPO_ROOT/.venv/bin/python" ]; then
    skip "compose run" "no venv with moto to build the S3 server's image from (scripts/install-test-tools.sh)"; return
  fi
  if ! bash "$REPO_ROOT/scripts/moto-image.sh" "$moto" >"$RUN_DIR/moto-image.log" 2>&1; then
    fail "build the moto image (scripts/moto-image.sh)" "$(tail -n 5 "$RUN_DIR/moto-image.log")"; return
  fi
  pass "the moto image built offline (scripts/moto-image.sh $moto)"
  if ! docker image inspect "$img" >/dev/null 2>&1 &&
      ! REGISTRY_BIN="${IMAGE_BIN:-$REGISTRY_BIN}" bash "$REPO_ROOT/scripts/docker-image.sh" "$img" >/dev/null 2>&1; then
    fail "build the registry image"; return
  fi
  COMPOSE_PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
  compose_override "$moto" "$DK_PREFIX" >"$RUN_DIR/compose.override.yaml"
  DK_COMPOSE_PROJECT="$DK_PREFIX-compose"
  if ! out="$(dk_compose up -d --no-deps s3 2>&1)"; then
    fail "docker-compose up the S3 server (moto)" "$out"; return
  fi
  if ! out="$(dk_compose run --rm -T --no-deps bucket 2>&1)"; then
    fail "docker-compose run bucket: the bucket made on s3:5000" "$out" "$(dk_compose logs --tail 5 s3 2>&1)"; return
  fi
  pass "docker-compose: s3 (moto) up on the project's network, the bucket made through it by name"
  if ! out="$(dk_compose up -d --no-deps registry-1 registry-2 registry-3 2>&1)"; then
    fail "docker-compose up the three registries" "$out"; return
  fi
  pass "docker-compose up: registry-1, -2, -3 on one bucket (ports ${COMPOSE_PORTS[*]})"
  for n in "${COMPOSE_PORTS[@]}"; do
    wait_http "http://127.0.0.1:$n/v2/" 30 || { fail "the registry on port $n answers" "$(dk_compose logs --tail 5 2>&1)"; return; }
  done
  local r1="localhost:${COMPOSE_PORTS[0]}/$DK_PREFIX/fleet:v1" r2="localhost:${COMPOSE_PORTS[1]}/$DK_PREFIX/fleet:v1"
  if ! make_image "$r1" "message fleet of $DK_PREFIX" 2; then fail "build the test image"; return; fi
  check "docker push through registry-1" dk push "$r1"
  image_pull_run "through registry-2" "$r2" fleet "$r1"
  check_eq "registry-3 lists the tag" '{"name":"'"$DK_PREFIX"'/fleet","tags":["v1"]}' \
    "$(curl -s "http://127.0.0.1:${COMPOSE_PORTS[2]}/v2/$DK_PREFIX/fleet/tags/list")"
  vol="$(docker volume inspect -f '{{.Mountpoint}}' "${DK_COMPOSE_PROJECT//-/}_cache-2" "${DK_COMPOSE_PROJECT}_cache-2" 2>/dev/null | head -n 1)"
  n="$(cache_blobs "$vol")"
  if [ "$n" = 4 ]; then
    pass "registry-2's cache volume holds the blobs it served (config and three layers)"
  else
    fail "registry-2's cache volume holds the blobs it served (config and three layers)" "found $n in $vol:" \
      "$(find "$vol" | head -n 10)" "$(dk_compose logs --no-color registry-2 2>&1 | grep -v 'registry::access' | tail -n 5)"
  fi
  vol="$(docker volume inspect -f '{{.Mountpoint}}' "${DK_COMPOSE_PROJECT//-/}_cache-3" "${DK_COMPOSE_PROJECT}_cache-3" 2>/dev/null | head -n 1)"
  check_eq "registry-3's cache volume holds none (it served no blob)" 0 "$(cache_blobs "$vol")"
  check "docker-compose down -v" dk_compose down -v
}

# compose_override IMAGE BUCKET: the override file: s3 and bucket run the
# moto image, the registries store in s3://BUCKET/compose on http://s3:5000.
compose_override() {
  local n
  cat <<EOF
version: "3.8"
services:
  s3:
    image: $1
    command: ["-H", "0.0.0.0", "-p", "5000"]
  bucket:
    image: $1
    entrypoint:
      - /usr/bin/python3
      - -c
      - |
        import sys, time, urllib.request
        for attempt in range(150):
            try:
                req = urllib.request.Request("http://s3:5000/$2", method="PUT")
                urllib.request.urlopen(req, timeout=5).close()
                print("bucket $2 made")
                sys.exit(0)
            except OSError as err:
                last = err
                time.sleep(0.2)
        sys.exit("no bucket: %s" % last)
EOF
  for n in 1 2 3; do
    printf '  registry-%s:\n    environment:\n      REGISTRY_STORAGE: "s3://%s/compose?endpoint=http://s3:5000&region=us-east-1"\n' "$n" "$2"
  done
}

# cache_blobs DIR: how many non-empty files named by a sha256 hex digest.
cache_blobs() {
  [ -n "$1" ] && [ -d "$1" ] || { echo "no such volume"; return; }
  find "$1" -type f -size +0 | grep -c '[0-9a-f]\{64\}' || true
}

# dk_compose ARGS...: docker-compose on deploy/compose.yaml and the override.
dk_compose() {
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test REGISTRY_IMAGE="$DK_PREFIX-registry:test" \
    REGISTRY_1_PORT="${COMPOSE_PORTS[0]}" REGISTRY_2_PORT="${COMPOSE_PORTS[1]}" REGISTRY_3_PORT="${COMPOSE_PORTS[2]}" timeout -k 10 "$DOCKER_TIMEOUT" \
    docker-compose -p "$DK_COMPOSE_PROJECT" -f "$REPO_ROOT/deploy/compose.yaml" -f "$RUN_DIR/compose.override.yaml" "$@"
}
