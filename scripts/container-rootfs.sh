#!/usr/bin/env bash
# Assemble the root filesystem of the registry's container image: the one
# layout both the Dockerfile (in its build stage) and scripts/docker-image.sh
# (offline, from a local release binary) put into the `FROM scratch` stage.
#
#   scripts/container-rootfs.sh BINARY DEST
#
# DEST (created, must not exist yet) receives:
#   /usr/local/bin/registry          the binary, its debug info stripped
#   /lib*/..., /usr/lib*/...         the shared libraries `ldd` names (glibc,
#                                    libgcc_s), at the paths the binary asks for
#   /etc/passwd, /etc/group          root and the user `registry` (10001:10001)
#   /etc/nsswitch.conf               files, then DNS (S3 endpoints by name)
#   /etc/ssl/certs/ca-certificates.crt   the build machine's CA bundle (S3 over TLS)
#   /tmp                             mode 1777
# Everything is owned by whoever runs the script (root in the build stage);
# the Dockerfile's runtime stage then adds /var/lib/registry (the storage
# volume) and /var/cache/registry (for --cache-dir) owned by 10001.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BINARY DEST" >&2; exit 2; }
BIN="$1"
DEST="$2"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -x "$BIN" ] || { echo "not an executable: $BIN" >&2; exit 1; }
[ ! -e "$DEST" ] || { echo "already exists: $DEST" >&2; exit 1; }
[ -f "$CA_BUNDLE" ] || { echo "no CA bundle at $CA_BUNDLE (install ca-certificates)" >&2; exit 1; }

mkdir -p "$DEST/usr/local/bin" "$DEST/etc/ssl/certs" "$DEST/tmp"
chmod 1777 "$DEST/tmp"
command -v strip >/dev/null || { echo "strip not found (install binutils)" >&2; exit 1; }
strip --strip-debug -o "$DEST/usr/local/bin/registry" "$BIN"
chmod 0755 "$DEST/usr/local/bin/registry"

# Every library the dynamic linker will load, at the absolute path ldd shows
# (`libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6`, and the loader itself on
# a line of its own). A statically linked binary has none.
libs="$(ldd "$BIN" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)"
for lib in $libs; do
  mkdir -p "$DEST$(dirname "$lib")"
  cp -L "$lib" "$DEST$lib"
done

cat >"$DEST/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
registry:x:10001:10001:registry:/var/lib/registry:/sbin/nologin
EOF
cat >"$DEST/etc/group" <<'EOF'
root:x:0:
registry:x:10001:
EOF
printf 'hosts: files dns\n' >"$DEST/etc/nsswitch.conf"
cp -L "$CA_BUNDLE" "$DEST/etc/ssl/certs/ca-certificates.crt"
