#!/usr/bin/env bash
# nbd-bench.sh - write-through 4 KiB write IOPS over one NBD export, at QD1 and QD32:
# vdisk's nbd driver (bench/nbd-bench, cache=writethrough: every write a FUA write, or
# write + flush) against QEMU's NBD client (qemu-img bench -t writethrough) on the same
# export, and the ratio.  The export is nbdkit's file plugin on a file in $TMPDIR (a flush
# is an fdatasync there), or SERVER="nbdkit plugin args" (the socket option is added).
# nbdkit 1.32 (Debian 12) has no flush delay in its delay filter: SERVER='--filter=delay
# memory size=256M delay-write=1ms' makes every write (and so every FUA write) cost 1 ms.
#
#   bash bench/nbd-bench.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=${1:?usage: nbd-bench.sh BUILD_DIR [SECONDS]}
secs=${2:-5}
for p in nbdkit qemu-img; do
  command -v $p >/dev/null || { echo "SKIP: $p is not installed (scripts/install-deps.sh)"; exit 77; }
done
dir=$(mktemp -d /tmp/vd-nbd-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
fallocate -l 256M "$dir/disk" 2>/dev/null || dd if=/dev/zero of="$dir/disk" bs=1M count=256 status=none
# shellcheck disable=SC2086
nbdkit -U "$dir/sock" -f --exit-with-parent ${SERVER:-file "$dir/disk"} &
pid=$!
for _ in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.1; done
uri="nbd+unix:///?socket=$dir/sock"
echo "| QD | vdisk IOPS | QEMU IOPS | vdisk / QEMU | vdisk host flushes | vdisk FUA writes |"
echo "|---|---|---|---|---|---|"
for qd in 1 32; do
  out=$("$build/bench/nbd-bench" "driver=nbd,uri=$uri,cache=writethrough" $qd "$secs")
  v=$(sed -n 's/^iops=\([0-9]*\).*/\1/p' <<< "$out")
  flushes=$(sed -n 's/.*host_flushes=\([0-9]*\).*/\1/p' <<< "$out")
  fua=$(sed -n 's/.*fua_writes=\([0-9]*\).*/\1/p' <<< "$out")
  count=$(( v * secs > 100 ? v * secs : 100 ))
  count=$(( count < 60000 ? count : 60000 ))   # 4 KiB steps inside the 256M image
  t=$(qemu-img bench -f raw -t writethrough -w -c $count -d $qd -s 4k -S 4k "$uri" |
      sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
  q=$(awk -v c=$count -v t="$t" 'BEGIN { printf "%.0f", c / t }')
  r=$(awk -v v="$v" -v q="$q" 'BEGIN { printf "%.2f", v / q }')
  echo "| $qd | $v | $q | $r | $flushes | $fua |"
done
