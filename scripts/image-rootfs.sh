#!/usr/bin/env bash
# Lays out the operator image's root filesystem in a directory: the one file list that both image
# recipes use (scripts/image.sh without a daemon, the Dockerfile with Docker), so they cannot drift.
#
#   scripts/image-rootfs.sh <rekognition-operator binary> <empty directory>
#
# Contents:
#   /rekognition-operator                    the binary (the entrypoint)
#   the shared libraries `ldd` lists         glibc's loader, libc, libm, libgcc_s: exactly what the
#                                            dynamically linked binary loads, from the build machine
#   /usr/share/doc/<package>/copyright       the licence of each Debian package those come from
#   /etc/ssl/certs/ca-certificates.crt       Debian's CA bundle: the AWS SDK verifies AWS endpoints
#                                            against the system roots (rustls-native-certs); the
#                                            Kubernetes API server is verified with the in-cluster CA
#   /etc/passwd, /etc/group                  root and nonroot (65532), the user the image runs as
#   /etc/nsswitch.conf                       host names from /etc/hosts, then DNS (glibc >= 2.34
#                                            resolves without loading NSS modules)
#   /usr/share/doc/rekognition-operator/LICENSE
set -euo pipefail

binary=${1:?usage: image-rootfs.sh <binary> <directory>}
rootfs=${2:?usage: image-rootfs.sh <binary> <directory>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ca_bundle=/etc/ssl/certs/ca-certificates.crt

fail() { echo "image-rootfs.sh: $*" >&2; exit 1; }
[ -x "$binary" ] || fail "$binary is not an executable"
[ -f "$ca_bundle" ] || fail "$ca_bundle is missing: apt-get install ca-certificates"
command -v ldd >/dev/null || fail "ldd is missing (it comes with glibc)"
command -v dpkg-query >/dev/null || fail "dpkg-query is missing: the image's libraries are taken from a Debian system"
if [ -e "$rootfs" ] && [ -n "$(ls -A "$rootfs")" ]; then fail "$rootfs is not empty"; fi

mkdir -p "$rootfs"
install -m 0755 "$binary" "$rootfs/rekognition-operator"

# Every absolute path in ldd's output is a library the loader maps (the vDSO has none).
libraries=$(ldd "$binary" | grep -o '/[^ ]*' | sort -u)
[ -n "$libraries" ] || fail "ldd lists no libraries for $binary"
packages=()
for library in $libraries; do
  install -D -m 0755 "$(readlink -f "$library")" "$rootfs$library"
  # The Debian package that owns it, under the path ldd prints or its canonical one (/usr merge).
  owner=$(dpkg-query -S "$library" 2>/dev/null || dpkg-query -S "$(readlink -f "$library")" 2>/dev/null) \
    || fail "no Debian package owns $library"
  package=${owner%%:*}
  packages+=("$package")
done
for package in $(printf '%s\n' "${packages[@]}" | sort -u); do
  install -D -m 0644 "/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/copyright"
done

install -D -m 0644 "$ca_bundle" "$rootfs$ca_bundle"
install -D -m 0644 "$here/LICENSE" "$rootfs/usr/share/doc/rekognition-operator/LICENSE"
install -d -m 0755 "$rootfs/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
  >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
