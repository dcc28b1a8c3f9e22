# shellcheck shell=bash
# docker login against our registry: HTTP basic (--auth htpasswd) and the
# built-in token issuer (--auth token: the engine follows the Bearer
# challenge of GET /v2/ to /token). Push, pull back, run; a wrong password
# gets the engine's "unauthorized", no credential is saved and nothing is
# stored. Sourced by run.sh.

part_auth() {
  log "---- docker login: htpasswd and the built-in token issuer"
  if ! htpasswd -B -b -c "$RUN_DIR/htpasswd" alice "right-$DK_PREFIX" 2>/dev/null; then
    fail "htpasswd -B (apache2-utils)"; return
  fi
  auth_mode htpasswd --auth htpasswd --htpasswd "$RUN_DIR/htpasswd"
  auth_mode token --auth token --htpasswd "$RUN_DIR/htpasswd"
}

# auth_mode NAME ARGS...: one registry with ARGS; login, push, pull, run,
# then a wrong password.
auth_mode() {
  local mode="$1"; shift
  local host r out
  if ! start_registry "auth-$mode" "$@"; then fail "[$mode] start the registry"; return; fi
  host="localhost:$REG_PORT" r="localhost:$REG_PORT/$DK_PREFIX"
  if ! make_image "$r/private:v1" "message auth of $DK_PREFIX" 1; then
    fail "[$mode] build the test image"; return
  fi

  # Without credentials: the engine's own words for each mode.
  out="$(dk pull "$r/private:v1" 2>&1)" && fail "[$mode] pull without login is refused" "$out" ||
    check_contains "[$mode] pull without login is refused" "$out" "$(no_login_message "$mode")"
  out="$(printf 'wrong-%s' "$DK_PREFIX" | dk login -u alice --password-stdin "$host" 2>&1)" &&
    fail "[$mode] docker login with a wrong password fails" "$out" ||
    check_contains "[$mode] docker login with a wrong password: unauthorized" "${out,,}" "unauthorized"
  check_eq "[$mode] no credential saved for $host" "null" \
    "$(jq -c --arg h "$host" '.auths[$h]' "$DOCKER_CONFIG/config.json")"

  # A wrong password saved by hand: the engine sends it and is refused.
  jq --arg h "$host" --arg a "$(printf 'alice:wrong-%s' "$DK_PREFIX" | base64 -w0)" \
    '.auths[$h] = {auth: $a}' "$DOCKER_CONFIG/config.json" >"$RUN_DIR/config.tmp" &&
    mv "$RUN_DIR/config.tmp" "$DOCKER_CONFIG/config.json"
  out="$(dk pull "$r/private:v1" 2>&1)" && fail "[$mode] pull with a wrong password is refused" "$out" ||
    check_contains "[$mode] pull with a wrong password: the engine's unauthorized" "$out" \
      "unauthorized"
  push_refused "$mode" "$r/private:v1"
  check_eq "[$mode] nothing was stored (no repository, no blob)" "" \
    "$(find "$REG_STORE" -path '*/repositories/*' -o -path '*/blobs/sha256/*/data' 2>/dev/null | head -n 3)"
  jq --arg h "$host" 'del(.auths[$h])' "$DOCKER_CONFIG/config.json" >"$RUN_DIR/config.tmp" &&
    mv "$RUN_DIR/config.tmp" "$DOCKER_CONFIG/config.json"

  out="$(printf 'right-%s' "$DK_PREFIX" | dk login -u alice --password-stdin "$host" 2>&1)"
  check_contains "[$mode] docker login" "$out" "Login Succeeded"
  check_eq "[$mode] the login is saved for $host" \
    "$(printf 'alice:right-%s' "$DK_PREFIX" | base64 -w0)" \
    "$(jq -r --arg h "$host" '.auths[$h].auth' "$DOCKER_CONFIG/config.json")"
  check "[$mode] docker push after login" dk push "$r/private:v1"
  forget_image "$r/private:v1"
  check "[$mode] docker pull after login" dk pull "$r/private:v1"
  check_eq "[$mode] the pulled image runs" \
    "$(printf 'hello from the docker suite\nmessage auth of %s' "$DK_PREFIX")" "$(run_output "$r/private:v1")"
  if [ "$mode" = token ]; then
    check_contains "[$mode] the engine fetched tokens from /token" \
      "$(grep -F 'path=/token ' "$REG_LOG" | grep -F 'status=200' | head -n 1)" "path=/token"
    check_contains "[$mode] the registry challenged with Bearer (401 on /v2/)" \
      "$(curl -sI "http://127.0.0.1:$REG_PORT/v2/" | tr -d '\r' | grep -i '^www-authenticate')" \
      "Bearer realm=\"http://127.0.0.1:$REG_PORT/token\""
  fi
  check "[$mode] docker logout" dk logout "$host"
  check_eq "[$mode] logout removed the credential" "null" \
    "$(jq -c --arg h "$host" '.auths[$h]' "$DOCKER_CONFIG/config.json")"
  forget_image "$r/private:v1"
  out="$(dk pull "$r/private:v1" 2>&1)" && fail "[$mode] pull after logout is refused" "$out" ||
    check_contains "[$mode] pull after logout is refused" "$out" "$(no_login_message "$mode")"
  stop_pid "$REG_PID"
}

# no_login_message MODE: what the engine says when it has no credentials:
# basic needs some; a token without them is anonymous and lacks the scope.
no_login_message() {
  case "$1" in
    htpasswd) echo "no basic auth credentials" ;;
    *) echo "denied: requested access to the resource is denied" ;;
  esac
}

# push_refused MODE REF: a push with the wrong password. The engine retries
# refused uploads for about a minute, so the test waits for the registry's
# 401 on the upload and the engine's "Retrying", then stops the client (by
# PID; the engine cancels the push when its client goes).
push_refused() {
  local mode="$1" ref="$2" out="$RUN_DIR/push-refused.out" pid i
  # Not through dk (a function: $! would be a subshell, not the client);
  # timeout passes the TERM below on to docker.
  timeout -k 10 "$DOCKER_TIMEOUT" docker push "$ref" >"$out" 2>&1 &
  pid=$!
  for i in $(seq 1 100); do
    grep -q 'Retrying in' "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  check_contains "[$mode] push with a wrong password: the engine is refused and retries" \
    "$(cat "$out")" "Retrying in"
  # Basic: the upload is refused; token: the token service refuses the
  # password, so the engine never gets a token to upload with.
  local refused='blobs/uploads/ status=401'
  [ "$mode" = htpasswd ] || refused='path=/token status=401'
  check_contains "[$mode] the registry refused the push ($refused)" \
    "$(grep -F "$refused" "$REG_LOG" | head -n 1)" "status=401"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 1
}
