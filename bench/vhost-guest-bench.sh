#!/usr/bin/env bash
# vhost-guest-bench.sh [SECONDS] [CACHE] - the same QD1 O_DIRECT workload in a
# Linux 6.1 guest (QEMU, TCG) against vdisk-vhost and against
# qemu-storage-daemon's vhost-user-blk export, both in one boot (vda and vdb), each on its own 64 MiB raw
# image with the same host cache mode (none = O_DIRECT on the host for both, or writeback).
# The guest side is tests/guest/vdtest.c ("vdtest bench"), a dd-like loop:
# 4K random writes, 1M sequential writes, 4K random reads, 1M sequential reads; each run goes on one disk
# and then at once on the other, ROUNDS=N times (default 1; odd rounds start with vdisk-vhost, even rounds
# with qsd). Prints each row's ratio vdisk/qsd per round and its median (also in BUILD/guest/results/bench.md),
# and each back end's host CPU per guest I/O. PIN=CPUS runs both back ends on those host CPUs only (taskset),
# which keeps them off the guest's CPU: on a 2-core host PIN=1 makes the rounds far steadier.
# CACHE=nbd runs the case bench-nbd instead: both back ends on the same NBD export (nbdkit's file
# plugin, one request at a time), 4K random writes at QD1 and QD32, host write cache off and on, one boot
# each; ROUNDS=N alternates the pair N times and prints each row's ratio per round and its median.
set -euo pipefail
cd "$(dirname "$0")/.."
# An optimised build without sanitizers: qemu-storage-daemon is an optimised binary too.
builddir=${BUILDDIR:-build-bench}
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" --buildtype=release -Dtests=false >/dev/null
meson compile -C "$builddir" vdisk-vhost >/dev/null
rounds=${ROUNDS:-1}
if [ "${2:-none}" != nbd ]; then
  exec env VDISK_BENCH_SECONDS=${1:-5} VDISK_BENCH_CACHE=${2:-none} VDISK_BENCH_ROUNDS="$rounds" \
    VDISK_BENCH_PIN="${PIN:-}" \
    python3 tests/guest/run-guest.py --build-dir "$builddir" --vhost "$builddir/tools/vdisk-vhost" bench
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  VDISK_BENCH_SECONDS=${1:-5} \
    python3 tests/guest/run-guest.py --build-dir "$builddir" --vhost "$builddir/tools/vdisk-vhost" bench-nbd | tee -a "$out"
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
