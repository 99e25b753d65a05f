#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages vdisk needs to build, test (clang: the fuzz
# targets of tests/fuzz) and demo.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev libcmocka-dev libfdt-dev device-tree-compiler liburing-dev
  nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin
  strace python3 socat
  clang libclang-rt-14-dev libunicorn-dev
  qemu-system-x86 qemu-system-common qemu-utils cpio busybox-static kmod e2fsprogs
  librbd-dev ceph-mon ceph-osd ceph-common
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
