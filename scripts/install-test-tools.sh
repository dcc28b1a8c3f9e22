#!/usr/bin/env bash
# Install the tools the interoperability tests (tests/interop/) need:
#   - apt: skopeo, umoci, docker-registry (CNCF distribution, the reference
#     server and peer), jq, curl, python3-venv; spin and gcc (the model
#     checker of docs/models/gc.pml); for the docker suite (tests/docker/):
#     podman, apache2-utils (htpasswd -B), libc6-dev (libc.a for the static
#     test program), openssl; prometheus (its `promtool check metrics` is the
#     real parser scripts/test.sh checks /metrics with)
#   - a Python venv at $REPO/.venv with the PyPI `oras` package (Python API)
#     and `moto[s3]` (moto_server, the S3 API server of the S3 and fleet tests)
#
# Idempotent: when everything is already present it does nothing but check
# (well under a second). Exits non-zero on any failure.
#
# The Debian docker-registry and prometheus packages ship an init script and
# a systemd unit and their postinst tries to start/enable them. The tests start their own
# instances, so this script makes sure no system service is left running or
# enabled (policy-rc.d guard during install, then disable + stop by PID).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
ORAS_VERSION="${ORAS_VERSION:-0.2.43}"   # PyPI `oras`; API checked against this version
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"    # honours S3 conditional writes under concurrency
SYS_PYTHON=/usr/bin/python3              # Debian's python (python3-venv applies to it)

log() { printf '[install-test-tools] %s\n' "$*"; }
die() { printf '[install-test-tools] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || command -v sudo >/dev/null || die "must run as root (apt-get)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# ---------------------------------------------------------------- apt part --
PACKAGES=(skopeo umoci docker-registry jq curl python3 python3-venv spin gcc
  podman apache2-utils libc6-dev openssl prometheus)
# More for the benchmarks (benches/e2e/run.sh asks for nginx-light).
# shellcheck disable=SC2206 # a list of package names, split on purpose
PACKAGES+=(${EXTRA_PACKAGES:-})

installed() { # true if the Debian package is installed
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

# Disable and stop a packaged service (never by name: the init script's
# pidfile is checked and the process killed by that PID only).
# Arguments: service name, its binary, its pidfile.
neutralize_service() {
  local name="$1" exe="$2" pidfile="$3" pid
  if [ -x "/etc/init.d/$name" ]; then
    $SUDO update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
  if command -v deb-systemd-helper >/dev/null; then
    $SUDO deb-systemd-helper disable "$name.service" >/dev/null 2>&1 || true
  fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now "$name.service" >/dev/null 2>&1 || true
  fi
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
      log "stopping packaged $name service (pid $pid)"
      $SUDO kill "$pid" || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || break
        sleep 0.5
      done
    fi
    $SUDO rm -f "$pidfile"
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Forbid maintainer scripts from starting services during this install,
  # unless the machine already has a policy in place (e.g. Docker images do).
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" >/dev/null
    $SUDO chmod 755 "$guard"
    trap '$SUDO rm -f "$guard"' EXIT
  fi
  # Refresh lists only if the candidates are unknown (saves ~10 s otherwise).
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
  fi
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    log "install failed, refreshing package lists and retrying"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if [ -n "$guard" ]; then $SUDO rm -f "$guard"; trap - EXIT; fi
fi
# Always (cheap): make sure the packaged services are neither enabled nor running.
if [ -x /usr/bin/docker-registry ]; then
  neutralize_service docker-registry /usr/bin/docker-registry /var/run/docker-registry.pid
fi
if [ -x /usr/bin/prometheus ]; then
  neutralize_service prometheus /usr/bin/prometheus /run/prometheus/prometheus.pid
fi
if [ -x /usr/sbin/nginx ]; then
  neutralize_service nginx /usr/sbin/nginx /run/nginx.pid
fi

for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || die "$pkg still missing after install"
done

# --------------------------------------------------------------- venv part --
venv_oras_version() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("oras"))' 2>/dev/null
}

if [ "$(venv_oras_version || true)" != "$ORAS_VERSION" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$SYS_PYTHON" -m venv "$VENV"
  fi
  log "pip install oras==$ORAS_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "oras==$ORAS_VERSION"
  [ "$(venv_oras_version || true)" = "$ORAS_VERSION" ] || die "oras $ORAS_VERSION not importable from $VENV"
fi

venv_moto_version() {
  [ -x "$VENV/bin/moto_server" ] || return 1
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null
}

if [ "$(venv_moto_version || true)" != "$MOTO_VERSION" ]; then
  log "pip install moto[s3]==$MOTO_VERSION flask flask-cors into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[s3]==$MOTO_VERSION" flask flask-cors
  [ "$(venv_moto_version || true)" = "$MOTO_VERSION" ] || die "moto $MOTO_VERSION not installed in $VENV"
fi

# ---------------------------------------------------------- cargo-fuzz part --
# scripts/fuzz.sh runs the fuzz targets with cargo-fuzz on the nightly
# toolchain (rustup); the toolchain itself cannot be downloaded here.
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked --quiet || die "installing cargo-fuzz failed"
fi
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  die "no nightly Rust toolchain (needed by scripts/fuzz.sh): rustup toolchain install nightly"
fi

# ----------------------------------------------------------------- summary --
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
log "skopeo $(ver skopeo), umoci $(ver umoci), docker-registry $(ver docker-registry), jq $(ver jq), curl $(ver curl)"
log "podman $(ver podman), apache2-utils $(ver apache2-utils), libc6-dev $(ver libc6-dev), openssl $(ver openssl)"
log "venv $VENV: $("$VENV/bin/python" --version 2>&1), oras $(venv_oras_version), moto $(venv_moto_version)"
