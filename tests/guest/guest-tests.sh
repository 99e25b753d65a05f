#!/bin/sh
# guest-tests.sh SCENARIO SEED - what the Linux guest does with its disks.
# The same script runs against vdisk-vhost and against QEMU's own devices;
# SCSI disks are found by LUN and reported as lun0 / lun1;
# every observation is printed as a "VDT ..." line that run-guest.py parses.
# Regions (each 256 KiB, pattern seeded by SEED+n, see vdtest.c):
#   R1 @1M O_DIRECT   R2 @2M O_DIRECT|O_DSYNC   R3 @3M buffered + fsync per 64K
#   R4 @4M O_DIRECT after switching the write cache off
scenario=$1
seed=${2:-1}
rc=0

# Wait up to 10 s for a block device node.
wait_dev() {
  i=0
  while [ ! -b "/dev/$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -b "/dev/$1" ] || { echo "VDT missing dev=$1 FAIL"; rc=1; return 1; }
}

# The writable cache_type file of a disk (virtio-blk: block dir; SCSI: scsi_disk class).
cache_file() {
  case "$1" in
    vd*) echo "/sys/block/$1/cache_type" ;;
    sd*) echo /sys/block/$1/device/scsi_disk/*/cache_type ;;
  esac
}

# Print cache_type, queue/write_cache and queue/fua of a disk (named $label: vda, lun0, lun1).
report() {
  ct=$(cat "$(cache_file "$1")" 2>/dev/null)
  wc=$(cat /sys/block/$1/queue/write_cache 2>/dev/null)
  fua=$(cat /sys/block/$1/queue/fua 2>/dev/null)
  echo "VDT state dev=${label:-$1} name=$1 tag=$2 cache_type=\"$ct\" write_cache=\"$wc\" fua=$fua"
}

# The sdX name of SCSI LUN $1 (Linux names disks in scan order, which is not LUN order).
scsi_lun() {
  i=0
  while [ $i -lt 100 ]; do
    for d in /sys/block/sd*; do
      [ -e "$d/device" ] || continue
      case "$(basename "$(readlink -f "$d/device")")" in
        *:*:*:$1) basename "$d"; return 0 ;;
      esac
    done
    sleep 0.1
    i=$((i + 1))
  done
  echo "VDT missing lun=$1 FAIL" >&2
  return 1
}

# Switch the write cache from inside the guest and show what the device says now.
toggle() {
  f=$(cache_file "$1")
  if echo "$2" > "$f" 2>/dev/null; then r=0; else r=1; fi
  echo "VDT toggle dev=${label:-$1} to=\"$2\" rc=$r"
  report "$1" "after-$3"
}

run() { "$@" || rc=1; }

# Pin a command to CPU n when the guest has it (so each CPU's queue is used).
on_cpu() {
  n=$1
  shift
  if [ -d /sys/devices/system/cpu/cpu$n ]; then taskset $((1 << n)) "$@"; else "$@"; fi
}

# Write R1..R3 with the three durability methods and read them back.
write_regions() {
  run on_cpu 0 vdtest write /dev/$1 1M 256K 64K $((seed + 1)) direct
  run on_cpu 1 vdtest write /dev/$1 2M 256K 64K $((seed + 2)) dsync
  run vdtest write /dev/$1 3M 256K 64K $((seed + 3)) fsync
  run vdtest verify /dev/$1 1M 256K $((seed + 1))
  run vdtest verify /dev/$1 2M 256K $((seed + 2))
  run vdtest verify /dev/$1 3M 256K $((seed + 3))
}

# One disk, write cache as configured: methods, then toggle off and on.
scenario_wb() {
  wait_dev "$1" || return
  report "$1" initial
  write_regions "$1"
  toggle "$1" "write through" wt
  run vdtest write /dev/$1 4M 256K 64K $((seed + 4)) direct
  run vdtest verify /dev/$1 4M 256K $((seed + 4))
  toggle "$1" "write back" wb
}

# One disk, write cache switched off before any write; back on at the end (no writes after).
scenario_wt() {
  wait_dev "$1" || return
  report "$1" initial
  toggle "$1" "write through" wt
  write_regions "$1"
  run vdtest write /dev/$1 4M 256K 64K $((seed + 4)) direct
  run vdtest verify /dev/$1 4M 256K $((seed + 4))
  toggle "$1" "write back" wb
}

# One disk: a 256 KiB O_DIRECT write in one request (a 66-descriptor chain), a buffered write + fsync, both read back.
scenario_rw() {
  wait_dev "$1" || return
  report "$1" initial
  run vdtest write /dev/$1 1M 256K 256K $((seed + 1)) direct
  run vdtest write /dev/$1 3M 256K 64K $((seed + 3)) fsync
  run vdtest verify /dev/$1 1M 256K $((seed + 1))
  run vdtest verify /dev/$1 3M 256K $((seed + 3))
}

# A later boot: the data of an earlier one must still be there.
scenario_verify() {
  wait_dev "$1" || return
  report "$1" initial
  for n in 1 2 3 4; do run vdtest verify /dev/$1 ${n}M 256K $((seed + n)); done
}

# The real-guest crash test: ext4 (made on the host) mounted with its defaults
# (data=ordered, barriers), crashload's fsynced files recorded on the console.
# No umount: the power goes with whatever the page cache still holds.
# SEED is crashload's seed; the number of steps is fixed.
scenario_ext4_crash() {
  wait_dev "$1" || return
  mkdir -p /mnt
  if ! mount -t ext4 /dev/$1 /mnt; then echo "VDT mount dev=$1 FAIL"; rc=1; return; fi
  run crashload /mnt "$seed" 80
}

# Live migration (run-guest.py case vhost-migrate): ext4 made on the host, the write cache switched
# off (write through), then crashload's fsynced files while the host migrates the VM to another
# QEMU.  Phase 2 starts once the host types "go" on the (destination's) console, in /mnt/after.
# SEED is crashload's seed; OPS of phase 1 is the number after the seed's dot (migrate:SEED.OPS).
scenario_migrate() {
  wait_dev "$1" || return
  toggle "$1" "write through" wt
  mkdir -p /mnt
  if ! mount -t ext4 /dev/$1 /mnt; then echo "VDT mount dev=$1 FAIL"; rc=1; return; fi
  run crashload /mnt "${seed%.*}" "${seed#*.}"
  echo "VDT waiting for go"
  read -r go < /dev/console
  echo "VDT phase after ($go)"
  mkdir -p /mnt/after
  run crashload /mnt/after "$((${seed%.*} + 1))" 30
  umount /mnt || { echo "VDT umount FAIL"; rc=1; }
  report "$1" final
}

# QD1 O_DIRECT throughput (the benchmark); SEED is the seconds per run (0: 3).
scenario_bench() {
  wait_dev "$1" || return
  secs=$seed
  [ "$secs" -gt 0 ] 2>/dev/null || secs=3
  run vdtest bench /dev/$1 0 32M 4K $secs randwrite
  run vdtest bench /dev/$1 0 32M 1M $secs seqwrite
  run vdtest bench /dev/$1 0 32M 4K $secs randread
  run vdtest bench /dev/$1 0 32M 1M $secs seqread
}

# The same four runs on disk $1 and on disk $2 in turn, ROUNDS times in one boot (SEED = SECONDS:ROUNDS):
# each run on one disk is followed at once by the same run on the other, and odd rounds start with $1,
# even rounds with $2, so both back ends see the same guest speed (TCG drifts between boots).
scenario_bench_pair() {
  wait_dev "$1" && wait_dev "$2" || return
  secs=${seed%%:*}
  rounds=${seed#*:}
  [ "$secs" -gt 0 ] 2>/dev/null || secs=3
  [ "$rounds" -gt 0 ] 2>/dev/null || rounds=1
  for d in $1 $2; do   # how the guest will cut a 1M request for each back end
    q=/sys/block/$d/queue
    echo "VDT limits dev=$d max_segments=$(cat $q/max_segments) max_segment_size=$(cat $q/max_segment_size)" \
         "max_sectors_kb=$(cat $q/max_sectors_kb)"
  done
  r=1
  while [ $r -le $rounds ]; do
    if [ $((r % 2)) = 1 ]; then order="$1 $2"; else order="$2 $1"; fi
    for job in 4K:randwrite 1M:seqwrite 4K:randread 1M:seqread; do
      for d in $order; do
        run vdtest bench /dev/$d 0 32M ${job%%:*} $secs ${job#*:}
      done
    done
    r=$((r + 1))
  done
}

# 4K random O_DIRECT writes at QD1 (one vdtest), then at QD32 (32 vdtests at once, 1 MiB each).
scenario_bench_qd() {
  wait_dev "$1" || return
  secs=$seed
  [ "$secs" -gt 0 ] 2>/dev/null || secs=3
  run vdtest bench /dev/$1 0 32M 4K $secs randwrite
  echo "VDT qd32 begin"
  i=0
  while [ $i -lt 32 ]; do
    vdtest bench /dev/$1 ${i}M 1M 4K $secs randwrite &
    i=$((i + 1))
  done
  wait
}

case "$scenario" in
  blk-wb) scenario_wb vda ;;
  blk-wt) scenario_wt vda ;;
  blk-verify) scenario_verify vda ;;
  blk-rw) scenario_rw vda ;;
  blk-bench) scenario_bench vda ;;
  blk-bench-qd) scenario_bench_qd vda ;;
  blk-bench-pair) scenario_bench_pair vda vdb ;;
  ext4-crash) scenario_ext4_crash vda ;;
  migrate) scenario_migrate vda ;;
  scsi-wb|scsi-wt)
    d0=$(scsi_lun 0) && d1=$(scsi_lun 1) || { echo "VDT scsi disks missing FAIL"; exit 1; }
    label=lun0
    if [ "$scenario" = scsi-wb ]; then scenario_wb "$d0"; else scenario_wt "$d0"; fi
    label=lun1
    seed=$((seed + 100))
    report "$d1" initial
    write_regions "$d1" ;;
  *) echo "VDT unknown scenario=$scenario FAIL"; rc=1 ;;
esac
exit $rc
