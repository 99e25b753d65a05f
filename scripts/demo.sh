#!/usr/bin/env bash
# demo.sh - install what is missing, build, and drive each emulated disk the
# way a guest driver does, on temporary images, printing every guest command
# next to the host operations (syscalls) it caused:
#   1. the IDE disk: write cache on, WRITE DMA, FLUSH, WRITE DMA FUA EXT, cache off
#   2. virtio-blk: the writeback byte on and off, FLUSH
#   3. the SCSI disk behind virtio-scsi: MODE SELECT WCE, WRITE(10) FUA, SYNCHRONIZE CACHE
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
meson compile -C build >/dev/null
export VDISK_VMM=$PWD/build/system/vdisk-vmm
seq=./build/tests/qtest-like/vdisk-seq
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
truncate -s 64M "$tmp/virtio.img" "$tmp/scsi.img"

banner() { printf '\n==================== %s ====================\n' "$1"; }
banner "IDE (ATA) disk behind PIIX3 — vdisk-vmm's default temporary image"
"$seq" --narrate tests/qtest-like/sequences/demo.seq
banner "virtio-blk (virtio-mmio) — $tmp/virtio.img, cache=writeback"
"$seq" --narrate tests/qtest-like/sequences/virtio-blk-writeback.seq \
  --drive "file=$tmp/virtio.img,if=virtio,id=vd0,cache=writeback"
banner "SCSI disk behind virtio-scsi — $tmp/scsi.img, cache=writeback"
"$seq" --narrate tests/qtest-like/scsi/demo-scsi.seq \
  --drive "file=$tmp/scsi.img,if=scsi,id=demo-scsi,cache=writeback"
