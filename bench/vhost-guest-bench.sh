#!/usr/bin/env bash
# vhost-guest-bench.sh [SECONDS] [CACHE] - the same QD1 O_DIRECT workload in a
# Linux 6.1 guest (QEMU, TCG) against vdisk-vhost and against
# qemu-storage-daemon's vhost-user-blk export, one after the other on the same 64 MiB raw image with
# the same host cache mode (none = O_DIRECT on the host for both, or writeback).
# Prints a table of IOPS and the vdisk/qsd ratio (also in BUILD/guest/results/bench.md).
# The guest side is tests/guest/vdtest.c ("vdtest bench"), a dd-like loop:
# 4K random writes, 1M sequential writes, 4K random reads, 1M sequential reads.
# CACHE=nbd runs the case bench-nbd instead: both back ends on the same NBD export (nbdkit's file
# plugin, one request at a time), 4K random writes at QD1 and QD32, host write cache off and on.
set -euo pipefail
cd "$(dirname "$0")/.."
# An optimised build without sanitizers: qemu-storage-daemon is an optimised binary too.
builddir=${BUILDDIR:-build-bench}
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" --buildtype=release -Dtests=false >/dev/null
meson compile -C "$builddir" vdisk-vhost >/dev/null
case=bench
[ "${2:-none}" = nbd ] && case=bench-nbd
VDISK_BENCH_SECONDS=${1:-5} VDISK_BENCH_CACHE=${2:-none} \
  python3 tests/guest/run-guest.py --build-dir "$builddir" --vhost "$builddir/tools/vdisk-vhost" $case
