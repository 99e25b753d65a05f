#!/usr/bin/env bash
# demo.sh - install what is missing, build, and run vdisk-vmm on a temporary
# image, printing each guest command next to the host operations it caused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
meson compile -C build >/dev/null
export VDISK_VMM=$PWD/build/system/vdisk-vmm
exec ./build/tests/qtest-like/vdisk-seq --narrate tests/qtest-like/sequences/demo.seq
