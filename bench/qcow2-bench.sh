#!/usr/bin/env bash
# qcow2-bench.sh [ROUNDS] [CACHE] - vdisk's qcow2 driver against QEMU's (`qemu-img bench -f qcow2`):
# the same image size (1 GiB), cluster size (64 KiB), cache mode (default writeback) and 4 KiB writes
# at the same offsets (qemu-img bench's -o OFFSET -S STEP), in interleaved rounds on fresh images:
#   unalloc-qd1   QD1,  every write into a new cluster (step = the cluster size): allocation
#   unalloc-qd32  QD32, the same
#   alloc-qd32    QD32, 4 KiB steps through clusters allocated beforehand (qemu-io writes them)
# Prints IOPS per round, then the median of each and the vdisk/QEMU ratio.  vdisk's side is
# bench/qcow2-writer.c, in an optimised build without sanitizers (BUILDDIR, default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} cache=${2:-writeback}
builddir=${BUILDDIR:-build-bench}
command -v qemu-img >/dev/null || { echo "qemu-img not found (apt-get install qemu-utils)"; exit 77; }
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" --buildtype=release -Dtests=false >/dev/null
ninja -C "$builddir" tools/qcow2-writer >/dev/null
writer=$builddir/tools/qcow2-writer
dir=$(mktemp -d /tmp/qcow2-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
size=1G cs=65536 count=8192
# name qd step prealloc
cases=("unalloc-qd1 1 $cs 0" "unalloc-qd32 32 $cs 0" "alloc-qd32 32 4096 1")

# A fresh image; prealloc=1 writes the first 32 MiB so that the 4 KiB steps land in allocated clusters.
fresh() {
  qemu-img create -q -f qcow2 -o cluster_size=$cs "$dir/img.qcow2" $size
  if [ "$2" = 1 ]; then qemu-io -f qcow2 -c "write 0 32M" "$dir/img.qcow2" >/dev/null; fi
}

declare -A results
for r in $(seq "$rounds"); do
  for c in "${cases[@]}"; do
    read -r name qd step pre <<<"$c"
    fresh "$name" "$pre"
    v=$("$writer" "$dir/img.qcow2" "$cache" "$qd" $count 0 "$step" | awk '/IOPS/ {print $2}')
    qemu-img check -q "$dir/img.qcow2" || { echo "vdisk left $name unclean"; exit 1; }
    fresh "$name" "$pre"
    q=$(qemu-img bench -w -f qcow2 -t "$cache" -d "$qd" -c $count -s 4096 -S "$step" "$dir/img.qcow2" |
        awk '/Run completed in/ {print '$count' / $4}')
    printf 'round %d %-13s vdisk %8.0f IOPS   qemu %8.0f IOPS\n' "$r" "$name" "$v" "$q"
    results[$name]+="$v $q;"
  done
done
echo
for c in "${cases[@]}"; do
  read -r name _ <<<"$c"
  python3 - "$name" "${results[$name]}" <<'PY'
import statistics, sys
pairs = [p.split() for p in sys.argv[2].split(';') if p.strip()]
v = statistics.median(float(a) for a, _ in pairs); q = statistics.median(float(b) for _, b in pairs)
print(f"{sys.argv[1]:13s} median vdisk {v:8.0f}  qemu {q:8.0f}  ratio {v / q:.2f}x")
PY
done
