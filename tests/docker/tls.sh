# shellcheck shell=bash
# TLS the way users set it up: a private CA signs the registry's
# certificate, and the engine trusts it through
# /etc/docker/certs.d/<host:port>/ca.crt, which it reads per connection (the
# daemon is not restarted). The registry runs on a test host of the run's
# own: a network namespace joined to this host by a veth pair on a random
# /30 of 10.213.0.0/16 (test_host in lib.sh). Not on loopback: the engine
# treats 127.0.0.0/8 as an insecure registry and would not check the
# certificate there. Sourced by run.sh.

part_tls() {
  local host port r ca out certs
  log "---- TLS with a private CA in /etc/docker/certs.d"
  if ! command -v ip >/dev/null || [ "$(id -u)" != 0 ]; then
    skip "tls" "a test host in a network namespace needs iproute2's ip and root"; return
  fi
  # The engine must connect from this host's network namespace, where the
  # veth pair's host end is; a daemon elsewhere cannot reach the test host.
  if [ -r /var/run/docker.pid ] &&
      [ "$(readlink "/proc/$(cat /var/run/docker.pid)/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ]; then
    skip "tls" "the Docker daemon runs in another network namespace: it cannot reach a test host joined to this one"; return
  fi
  if ! test_host tls 2>"$RUN_DIR/test-host.err"; then
    fail "a test host: network namespace $DK_PREFIX-tls and a veth pair" "$(cat "$RUN_DIR/test-host.err")"; return
  fi
  host="$TEST_ADDR"
  pass "a test host: network namespace $TEST_NS, $host/30 (this host's end $TEST_PEER)"
  if docker info -f '{{range .RegistryConfig.InsecureRegistryCIDRs}}{{.}} {{end}}' | tr ' ' '\n' |
      python3 -c 'import ipaddress, sys; h = ipaddress.ip_address(sys.argv[1]); sys.exit(0 if any(l.strip() and h in ipaddress.ip_network(l.strip()) for l in sys.stdin) else 1)' "$host"; then
    skip "tls" "$host is an insecure registry address for this engine: it would not check certificates"; return
  fi
  ca="$RUN_DIR/tls"
  if ! make_certs "$ca" "$host" >"$ca.log" 2>&1; then fail "make a CA and a server certificate" "$(tail -n 5 "$ca.log")"; return; fi
  pass "a private CA and a certificate for IP $host (openssl)"

  REG_HOST="$host" REG_TLS_WAIT=1 REG_NETNS="$TEST_NS"
  if ! start_registry tls --tls-cert "$ca/server.crt" --tls-key "$ca/server.key"; then
    unset REG_HOST REG_TLS_WAIT REG_NETNS; fail "start the registry with TLS on $host in $TEST_NS"; return
  fi
  unset REG_HOST REG_TLS_WAIT REG_NETNS
  port="$REG_PORT" r="$host:$port/$DK_PREFIX"
  check_eq "curl trusts the server with the CA (GET /v2/ 200)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca/ca.crt" "https://$host:$port/v2/")"
  if ! make_image "$r/tls:v1" "message tls of $DK_PREFIX" 1; then fail "build the TLS test image"; return; fi

  if out="$(dk push "$r/tls:v1" 2>&1)"; then
    fail "push before the CA is trusted is refused" "$out"
  elif ! grep -q x509 <<<"$out" && grep -Eq 'i/o timeout|connection refused|no route to host|network is unreachable' <<<"$out"; then
    # curl reached the test host from here, the engine did not.
    skip "tls" "the Docker daemon cannot reach the test host $host:$port ($(grep -Eo '[^:]*(i/o timeout|connection refused|no route to host|network is unreachable)' <<<"$out" | head -n 1))"
    stop_pid "$REG_PID"; return
  else
    check_contains "push before the CA is trusted: the engine refuses the certificate" "$out" "x509"
  fi

  certs="/etc/docker/certs.d/$host:$port"
  [ -d /etc/docker/certs.d ] || DK_CERTS_DIRS+=(/etc/docker/certs.d)
  DK_CERTS_DIRS+=("$certs")
  mkdir -p "$certs"
  cp "$ca/ca.crt" "$certs/ca.crt"
  check "push with the CA in $certs (no daemon restart)" dk push "$r/tls:v1"
  forget_image "$r/tls:v1"
  check "pull over TLS" dk pull "$r/tls:v1"
  check_eq "the image pulled over TLS runs" \
    "$(printf 'hello from the docker suite\nmessage tls of %s' "$DK_PREFIX")" "$(run_output "$r/tls:v1")"

  rm -rf "$certs"
  forget_image "$r/tls:v1"
  out="$(dk pull "$r/tls:v1" 2>&1)" && fail "pull after the CA is removed is refused" "$out" ||
    check_contains "pull after the CA is removed: refused again (read per connection)" "$out" "x509"
  stop_pid "$REG_PID"
}

# make_certs DIR IP: DIR/ca.{key,crt} and DIR/server.{key,crt} for IP.
make_certs() {
  local dir="$1" ip="$2"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=docker suite CA $DK_PREFIX" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$ip" -keyout "$dir/server.key" -out "$dir/server.csr"
  printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$ip" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt"
}
