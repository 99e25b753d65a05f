#!/usr/bin/env bash
# nbd-bench.sh - write-through 4 KiB write IOPS over one NBD export whose flushes cost, at
# QD1 and QD32: vdisk's nbd driver (bench/nbd-bench, cache=writethrough: every write durable,
# as a FUA write or, under group commit, a plain write covered by a shared NBD_CMD_FLUSH)
# against QEMU's NBD client (qemu-img bench -t writethrough: one FUA write per write) on the
# same export.  Interleaved rounds, every round printed, medians and ratios at the end, the
# load (uptime) before and after.  What the server saw is counted on the server side: nbdkit's
# stats filter (write and flush requests, a fresh server per run), for dm-delay the flush
# count of /sys/block/dm-N/stat, and for delay the filter's own count of delayed FUA requests.
#
#   bash bench/nbd-bench.sh BUILD_DIR [SECONDS] [ROUNDS]      (a release build: see remote-storage.md)
#
# EXPORT= chooses the export (every one serves 256 MiB):
#   dm-delay  (default where the kernel has it) a loop device over a file, behind a device-mapper delay target whose
#             flushes wait FLUSH_MS (2) ms (reads and writes: 0 ms); nbdkit's file plugin
#             serves the mapped device, so an NBD flush or FUA write is an fdatasync on it,
#             i.e. one delayed flush.  Needs root, losetup, dmsetup and the kernel's dm-delay.
#   delay     (default otherwise) nbdkit's memory plugin behind bench/nbdkit-flush-delay.c
#             (BUILD_DIR/bench/nbdkit-flush-delay-filter.so): every flush and every FUA write
#             waits FLUSH_MS (2) ms, nothing else does; behind the noparallel filter
#             (serialize=requests, one request at a time, like a disk flushing its cache)
#             unless SERIAL=0 (then flushes are delayed in parallel).
#   serial    nbdkit's file plugin on a file, behind the noparallel filter (serialize=requests):
#             a server that runs one request at a time, so every fdatasync (FUA write or
#             flush) is a barrier that costs what this machine's disk charges for it.
#   file      the same without noparallel: nbdkit's threads run fdatasyncs concurrently, and
#             ext4 (jbd2) and the block layer merge them.
#   qemu-nbd  qemu-nbd (cache=writeback) on the file: QEMU's server runs one flush at a time
#             and skips a flush when nothing was written since the last one.
# SERIAL=1 puts the noparallel filter in front of the dm-delay export too.
set -euo pipefail
build=${1:?usage: nbd-bench.sh BUILD_DIR [SECONDS] [ROUNDS]}
secs=${2:-3}
rounds=${3:-3}
flush_ms=${FLUSH_MS:-2}
bench=${VDISK_NBD_BENCH:-$build/bench/nbd-bench}
delay_filter=$(realpath -m "$build/bench/nbdkit-flush-delay-filter.so")
skip() { echo "SKIP: $*"; exit 77; }
for p in nbdkit qemu-img; do
  command -v $p >/dev/null || skip "$p is not installed (scripts/install-deps.sh)"
done
[ -x "$bench" ] || skip "$bench is not built"
# Without EXPORT=: dm-delay where this machine can make one, else the delay filter.
if [ -z "${EXPORT:-}" ]; then
  EXPORT=delay
  if [ "$(id -u)" = 0 ] && command -v dmsetup >/dev/null && { modprobe dm-delay 2>/dev/null || true; } &&
     dmsetup targets 2>/dev/null | grep -q '^delay'; then
    EXPORT=dm-delay
  fi
fi
export_kind=$EXPORT
[ "$export_kind" = delay ] && serial=${SERIAL:-1} || serial=${SERIAL:-0}
case $export_kind in
  dm-delay)
    [ "$(id -u)" = 0 ] || skip "EXPORT=dm-delay needs root (losetup, dmsetup)"
    command -v losetup >/dev/null && command -v dmsetup >/dev/null || skip "EXPORT=dm-delay needs losetup and dmsetup"
    modprobe dm-delay 2>/dev/null || true
    dmsetup targets 2>/dev/null | grep -q '^delay' ||
      skip "EXPORT=dm-delay: the kernel has no device-mapper delay target (CONFIG_DM_DELAY; modprobe dm-delay)" ;;
  delay) [ -f "$delay_filter" ] || skip "EXPORT=delay: $delay_filter is not built (nbdkit-plugin-dev: nbdkit-filter.h)" ;;
  serial|file) ;;
  qemu-nbd) command -v qemu-nbd >/dev/null || skip "qemu-nbd is not installed (qemu-utils)" ;;
  *) echo "nbd-bench.sh: EXPORT=$export_kind is not one of dm-delay, delay, serial, file, qemu-nbd" >&2; exit 2 ;;
esac

dir=$(mktemp -d /tmp/vd-nbd-bench.XXXXXX)
pid= loop= dm=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$dm" ] && dmsetup remove "$dm" 2>/dev/null
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
# Written, not fallocated: a first write to an unwritten extent makes fdatasync commit metadata too,
# which only the first run would pay.
[ "$export_kind" = delay ] || dd if=/dev/zero of="$dir/disk" bs=1M count=256 conv=fsync status=none
target=$dir/disk
if [ "$export_kind" = dm-delay ]; then
  loop=$(losetup -f --show "$dir/disk") || skip "EXPORT=dm-delay: no free loop device"
  dm=vd-nbd-bench-$$
  sectors=$(blockdev --getsz "$loop")
  # delay DEV OFF READ_MS  WRITE_DEV OFF WRITE_MS  FLUSH_DEV OFF FLUSH_MS (kernel's device-mapper/delay.rst)
  dmsetup create "$dm" --table "0 $sectors delay $loop 0 0 $loop 0 0 $loop 0 $flush_ms" ||
    skip "EXPORT=dm-delay: dmsetup create failed (a kernel before 4.17 has no separate flush delay)"
  target=/dev/mapper/$dm
  dmstat=/sys/block/$(basename "$(readlink -f "$target")")/stat
fi
sock=$dir/sock
uri="nbd+unix:///?socket=$sock"

# Start the export (a fresh server, so its stats file covers exactly one run).
start_server() {
  rm -f "$sock" "$dir/stats" "$dir/counts"
  local filters=(--filter=stats) args=("statsfile=$dir/stats")
  if [ "$export_kind" = serial ] || [ "$serial" = 1 ]; then
    filters+=(--filter=noparallel) args+=(serialize=requests)
  fi
  if [ "$export_kind" = qemu-nbd ]; then
    qemu-nbd -f raw --cache=writeback --persistent -k "$sock" "$target" &
  elif [ "$export_kind" = delay ]; then
    filters+=(--filter="$delay_filter") args+=("flush-delay=$flush_ms" "flush-delay-counts=$dir/counts")
    nbdkit -U "$sock" -f --exit-with-parent "${filters[@]}" memory 256M "${args[@]}" &
  else
    nbdkit -U "$sock" -f --exit-with-parent "${filters[@]}" file "$target" "${args[@]}" &
  fi
  pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
}

# Stop it; sets sw, sf and sfua to the writes, flushes and FUA requests the server counted (stats
# filter; the delay filter's counts for FUA; "?" where nothing counts them).
stop_server() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
  sw=$(sed -n 's/^write: \([0-9]*\) ops.*/\1/p' "$dir/stats" 2>/dev/null || true); sw=${sw:-?}
  sf=$(sed -n 's/^flush: \([0-9]*\) ops.*/\1/p' "$dir/stats" 2>/dev/null || true); sf=${sf:-0}
  sfua=$(sed -n 's/.* fua=\([0-9]*\).*/\1/p' "$dir/counts" 2>/dev/null || true); sfua=${sfua:-?}
  if [ "$export_kind" = qemu-nbd ]; then sw=? sf=?; fi
}

# Field 17 of the block device's stat file: flush requests completed (Linux >= 5.5).
dev_flushes() { if [ -n "$dm" ]; then awk '{ print $17 }' "$dmstat"; else echo 0; fi; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print !NR ? "?" : (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

note=; par=; [ "$serial" = 1 ] && par=', noparallel'
case $export_kind in dm-delay|delay) note=" (flush delay ${flush_ms} ms$par)" ;; esac
echo "EXPORT=$export_kind$note, ${secs} s per run, $rounds rounds"
echo "load before: $(uptime)"
echo
echo "| round | QD | client | IOPS | writes | FUA writes | shared flushes (group commits) | server: writes | server: flushes | server: FUA writes | server: (flushes + FUA) / write |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# An untimed warm-up: the first run after the image was written was always the slowest (0.3 to 0.5x).
start_server
"$bench" "driver=nbd,uri=$uri,cache=writethrough" 1 "$secs" >/dev/null
stop_server
declare -A vd qm fpw_sum
qiops=(200 200)
for r in $(seq "$rounds"); do
  for qi in 0 1; do
    qd=$(( qi ? 32 : 1 ))
    order="vdisk qemu"; [ $(( r % 2 )) = 0 ] && order="qemu vdisk"
    for who in $order; do
      start_server
      d0=$(dev_flushes)
      if [ $who = vdisk ]; then
        out=$("$bench" "driver=nbd,uri=$uri,cache=writethrough" $qd "$secs")
        iops=$(sed -n 's/^iops=\([0-9]*\).*/\1/p' <<< "$out")
        n=$(sed -n 's/.* writes=\([0-9]*\).*/\1/p' <<< "$out")
        fua=$(sed -n 's/.*fua_writes=\([0-9]*\).*/\1/p' <<< "$out")
        gc=$(sed -n 's/.*group_commits=\([0-9]*\).*/\1/p' <<< "$out")
        vd[$qd]+=" $iops"
      else
        count=$(( qiops[qi] * secs > 100 ? qiops[qi] * secs : 100 ))
        count=$(( count < 60000 ? count : 60000 ))   # 4 KiB steps inside the 256 MiB image
        t=$(qemu-img bench -f raw -t writethrough -w -c $count -d $qd -s 4k -S 4k "$uri" |
            sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
        iops=$(awk -v c=$count -v t="$t" 'BEGIN { printf "%.0f", c / t }')
        qiops[qi]=$iops n=$count fua=$count gc=0
        qm[$qd]+=" $iops"
      fi
      stop_server
      if [ -n "$dm" ]; then sf=$(( $(dev_flushes) - d0 )); fi
      fpw=$(awk -v f="$sf" -v u="$sfua" -v w="$sw" 'BEGIN { if (w ~ /^[0-9]+$/ && w > 0 && u ~ /^[0-9]+$/) printf "%.3f", (f + u) / w; else print "?" }')
      fpw_sum[$who$qd]+=" $fpw"
      echo "| $r | $qd | $who | $iops | $n | $fua | $gc | $sw | $sf | $sfua | $fpw |"
    done
  done
done
echo
echo "load after: $(uptime)"
echo
echo "| QD | vdisk IOPS (median) | QEMU IOPS (median) | vdisk / QEMU | per round | server syncs / write: vdisk, QEMU (median) |"
echo "|---|---|---|---|---|---|"
for qd in 1 32; do
  v=$(median <<< "${vd[$qd]}") q=$(median <<< "${qm[$qd]}")
  read -ra va <<< "${vd[$qd]}"; read -ra qa <<< "${qm[$qd]}"
  per=$(for i in "${!va[@]}"; do awk -v v="${va[$i]}" -v q="${qa[$i]}" 'BEGIN { printf "%.2f ", v / q }'; done)
  sv=$(tr ' ' '\n' <<< "${fpw_sum[vdisk$qd]}" | grep -v '?' | median || true) sq=$(tr ' ' '\n' <<< "${fpw_sum[qemu$qd]}" | grep -v '?' | median || true)
  echo "| $qd | $v | $q | $(awk -v v="$v" -v q="$q" 'BEGIN { printf "%.2f", v / q }') | ${per% } | ${sv:-?}, ${sq:-?} |"
done
