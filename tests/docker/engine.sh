# shellcheck shell=bash
# The Docker engine against our registry at localhost:PORT (plain HTTP: the
# engine allows that for 127.0.0.0/8): push a multi-layer image, pull it
# back into an empty engine and run it, push it to a second repository
# (the engine mounts the layers instead of uploading them), and an image
# index made with `docker manifest`, pulled by digest.
# Sourced by run.sh; uses $MAIN_PORT, $MAIN_LOG, $MAIN_STORE.

part_engine() {
  local r="localhost:$MAIN_PORT/$DK_PREFIX" out layers
  log "---- docker engine: push, pull, run, mount, index"
  if ! make_image "$r/app:v1" "message v1 of $DK_PREFIX" 2; then
    fail "build the three-layer test image"; return
  fi
  pass "built $r/app:v1 (docker import of a static program + docker build)"
  layers="$(docker image inspect -f '{{len .RootFS.Layers}}' "$r/app:v1")"
  check_eq "the test image has three layers" 3 "$layers"

  check "docker push $r/app:v1" dk push "$r/app:v1"
  ENGINE_DIGEST="$(docker image inspect -f '{{index .RepoDigests 0}}' "$r/app:v1" | sed 's/.*@//')"
  check_contains "the engine recorded the pushed manifest digest" "$ENGINE_DIGEST" "sha256:"
  check_eq "the registry serves that manifest under the tag" "$ENGINE_DIGEST" \
    "$(curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$MAIN_PORT/v2/$DK_PREFIX/app/manifests/v1" | tr -d '\r' \
        | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')"

  forget_image "$r/app:v1"
  check_fails "the image is gone from the engine" docker image inspect "$r/app:v1"
  out="$(dk pull "$r/app:v1" 2>&1)"
  check_contains "docker pull $r/app:v1" "$out" "Downloaded newer image"
  check_eq "pull fetched all three layers" 3 "$(grep -c 'Pull complete' <<<"$out")"
  check_eq "docker run of the pulled image prints its layers' content" \
    "$(printf 'hello from the docker suite\nmessage v1 of %s' "$DK_PREFIX")" "$(run_output "$r/app:v1")"

  # Second repository, same layers: the engine knows they are in app and
  # asks the registry to mount them (POST ...?mount=&from=, answered 201).
  docker tag "$r/app:v1" "$r/copy:v1"
  out="$(dk push "$r/copy:v1" 2>&1)"
  check_contains "docker push $r/copy:v1" "$out" "digest: $ENGINE_DIGEST"
  check_eq "the engine says all three layers were mounted from app" 3 \
    "$(grep -c "Mounted from $DK_PREFIX/app" <<<"$out")"
  check_eq "access log: three mounts (POST .../copy/blobs/uploads/ 201)" 3 \
    "$(access_count "$MAIN_LOG" POST "/v2/$DK_PREFIX/copy/blobs/uploads/" 201)"
  # The config blob is small and always sent (HEAD 404, then POST, PATCH,
  # PUT): one upload session, none for the layers.
  check_eq "access log: one upload session to copy (the config), none for layers" 1 \
    "$(access_count "$MAIN_LOG" POST "/v2/$DK_PREFIX/copy/blobs/uploads/" 202)"

  engine_index "$r"
}

# engine_index R: an index of two images (the second annotated arm64),
# pushed with `docker manifest`, pulled by digest: the engine picks the
# linux/amd64 entry.
engine_index() {
  local r="$1" out list_digest body
  if ! make_image "$r/app:v2" "message v2 of $DK_PREFIX" 1 || ! dk push "$r/app:v2" >/dev/null; then
    fail "build and push $r/app:v2"; return
  fi
  check "docker manifest create $r/multi:v1" \
    dk manifest create --insecure "$r/multi:v1" "$r/app:v1" "$r/app:v2"
  check "docker manifest annotate (second entry: linux/arm64)" \
    dk manifest annotate --os linux --arch arm64 "$r/multi:v1" "$r/app:v2"
  out="$(dk manifest push --insecure "$r/multi:v1" 2>&1)"
  list_digest="$(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$out" | tail -n 1)"
  check_contains "docker manifest push prints the index digest" "$list_digest" "sha256:"
  body="$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://127.0.0.1:$MAIN_PORT/v2/$DK_PREFIX/multi/manifests/$list_digest")"
  check_eq "the registry serves the index by digest, two entries" "2 linux/amd64 linux/arm64" \
    "$(jq -r '"\(.manifests | length) \([.manifests[].platform | "\(.os)/\(.architecture)"] | join(" "))"' <<<"$body" 2>/dev/null)"
  check_eq "the amd64 entry is the v1 image" "$ENGINE_DIGEST" \
    "$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$body" 2>/dev/null)"
  forget_image "$r/app:v1" "$r/app:v2" "$r/copy:v1"
  check "docker pull $r/multi@$list_digest" dk pull "$r/multi@$list_digest"
  check_eq "the image pulled through the index runs (the amd64 entry: v1)" \
    "$(printf 'hello from the docker suite\nmessage v1 of %s' "$DK_PREFIX")" "$(run_output "$r/multi@$list_digest")"
}
