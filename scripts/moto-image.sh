#!/usr/bin/env bash
# Build a container image of moto's S3 server offline (no base image is
# pulled): Debian's python3 with its standard library, the project venv's
# site-packages (moto and its dependencies, from scripts/install-test-tools.sh)
# and scripts/moto_server.py (moto_server with atomic conditional writes),
# imported with `docker import`.
#
#   scripts/moto-image.sh TAG
#
#   VENV   the venv to take site-packages from (default $REPO/.venv); its
#          interpreter must be a system python outside the venv (/usr/bin)
#
# The image's root filesystem:
#   /usr/bin/python3 (and python3.X)   the venv's base interpreter
#   /usr/lib/python3.X/                its standard library (no test suite)
#   /usr/local/lib/python3.X/dist-packages/   the venv's site-packages
#                                    (Debian's python reads it as a site dir)
#   /lib*/..., /usr/lib*/...         every shared library `ldd` names for the
#                                    interpreter and each extension module
#   /opt/moto/moto_server.py         the entry point
#   /etc/passwd, /etc/group, /etc/nsswitch.conf, /tmp (1777)
# Entrypoint `python3 /opt/moto/moto_server.py`, default arguments
# `-H 0.0.0.0 -p 5000` (port 5000 exposed); give other arguments to
# `docker run IMAGE ...` to change them. The image runs as root (moto keeps
# everything in memory). Checks that the image imports moto, then prints
# the image id last.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 TAG" >&2; exit 2; }
TAG="$1"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV: run scripts/install-test-tools.sh" >&2; exit 1; }
"$VENV/bin/python" -c 'import moto' 2>/dev/null || { echo "moto is not installed in $VENV: run scripts/install-test-tools.sh" >&2; exit 1; }

PY="$(readlink -f "$VENV/bin/python")"
case "$PY" in
  "$VENV"/*) echo "the venv's python is a copy ($PY), not a link to a system python" >&2; exit 1 ;;
esac
# The interpreter's own layout, asked of the interpreter outside the venv.
read -r STDLIB DYNLOAD VERSION < <("$PY" -I -c 'import sys, sysconfig
p = sysconfig.get_paths()
print(p["stdlib"], sysconfig.get_config_var("DESTSHARED"), "%d.%d" % sys.version_info[:2])')
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ -d "$STDLIB" ] && [ -d "$SITE" ] || { echo "no standard library ($STDLIB) or site-packages ($SITE)" >&2; exit 1; }

CTX="$(mktemp -d "${TMPDIR:-/tmp}/moto-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT/usr/bin" "$ROOT/opt/moto" "$ROOT/etc" "$ROOT/tmp" "$ROOT/usr/local/lib/python$VERSION"
chmod 1777 "$ROOT/tmp"

cp -L "$PY" "$ROOT/usr/bin/python$VERSION"
ln -s "python$VERSION" "$ROOT/usr/bin/python3"
# The standard library, without its own test suite (a third of its size).
mkdir -p "$ROOT$STDLIB"
tar -C "$STDLIB" --exclude=./test --exclude=./idlelib --exclude=./tkinter -cf - . | tar -C "$ROOT$STDLIB" -xf -
# Extension modules may live outside the standard library's folder.
case "$DYNLOAD" in
  "$STDLIB"/*) ;;
  *) mkdir -p "$ROOT$DYNLOAD" && cp -a "$DYNLOAD/." "$ROOT$DYNLOAD/" ;;
esac
cp -a "$SITE" "$ROOT/usr/local/lib/python$VERSION/dist-packages"
cp "$REPO/scripts/moto_server.py" "$ROOT/opt/moto/moto_server.py"

# Every shared library the interpreter or an extension module loads, at the
# absolute path ldd shows. Libraries a wheel bundles (found through its
# rpath inside site-packages) came along with site-packages already.
{
  ldd "$PY"
  find "$ROOT" -name '*.so*' -type f -print0 | xargs -0 -r -n 50 ldd 2>/dev/null
} | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u >"$CTX/libs"
missing="$(find "$ROOT" -name '*.so*' -type f -print0 | xargs -0 -r -n 50 ldd 2>/dev/null | grep -F 'not found' | sort -u || true)"
[ -z "$missing" ] || echo "note: libraries ldd cannot find (their modules will not import): $missing" >&2
while read -r lib; do
  case "$lib" in "$VENV"/*|"$SITE"/*|"$ROOT"/*) continue ;; esac
  [ -e "$ROOT$lib" ] && continue
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done <"$CTX/libs"

cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
EOF
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf 'hosts: files dns\n' >"$ROOT/etc/nsswitch.conf"

tar --numeric-owner --owner=0 --group=0 -C "$ROOT" -cf "$CTX/rootfs.tar" .
docker import \
  --change "ENTRYPOINT [\"/usr/bin/python3\", \"/opt/moto/moto_server.py\"]" \
  --change 'CMD ["-H", "0.0.0.0", "-p", "5000"]' \
  --change 'EXPOSE 5000' \
  --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
  "$CTX/rootfs.tar" "$TAG" >"$CTX/id"
# The image works offline: the interpreter starts and imports moto's server.
if ! out="$(docker run --rm --network none --entrypoint /usr/bin/python3 "$TAG" \
    -c 'import moto.server, moto.s3.responses' 2>&1)"; then
  echo "the image cannot import moto: $out" >&2
  docker rmi "$TAG" >/dev/null 2>&1 || true
  exit 1
fi
cat "$CTX/id"
