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
# ROUNDS=N (default 1) runs the pair N times, alternating, and then prints each row's ratio per
# round and its median: the TCG guest's speed drifts between runs by as much as the ratios differ.
set -euo pipefail
cd "$(dirname "$0")/.."
# An optimised build without sanitizers: qemu-storage-daemon is an optimised binary too.
builddir=${BUILDDIR:-build-bench}
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" --buildtype=release -Dtests=false >/dev/null
meson compile -C "$builddir" vdisk-vhost >/dev/null
case=bench
[ "${2:-none}" = nbd ] && case=bench-nbd
rounds=${ROUNDS:-1}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  VDISK_BENCH_SECONDS=${1:-5} VDISK_BENCH_CACHE=${2:-none} \
    python3 tests/guest/run-guest.py --build-dir "$builddir" --vhost "$builddir/tools/vdisk-vhost" $case | tee -a "$out"
done
[ "$rounds" -gt 1 ] || exit 0
# Each table row (its first two columns): its ratio (the column headed "vdisk/qsd" or "vdisk / qsd")
# in every round, and the median.
grep '^| ' "$out" | grep -v -e '^|---' -e 'median' | awk -F'|' '
  /qsd/ && !/[0-9]\.[0-9]/ { for (i = 2; i < NF; i++) if ($i ~ /vdisk ?\/ ?qsd/) col = i; next }
  col { key = $2 "|" $3; gsub(/ /, "", key); r[key] = r[key] " " $col + 0
        if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  END { for (i = 1; i <= n; i++) {
          k = order[i]; m = split(r[k], v, " ")
          for (a = 2; a <= m; a++) { x = v[a]; for (b = a - 1; b >= 1 && v[b] > x; b--) v[b + 1] = v[b]; v[b + 1] = x }
          med = m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
          printf "| %s |%s | median %.2f |\n", k, r[k], med } }'
