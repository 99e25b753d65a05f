#!/usr/bin/env bash
# build-initramfs.sh OUTDIR - build the guest kit into OUTDIR: vmlinuz (Debian's
# linux-image-6.1.0-*-amd64) and initrd.gz (busybox-static, the virtio/SCSI
# and ext4 modules, the static vdtest and crashload programs and the guest scripts).  Downloaded .debs
# are cached in OUTDIR/cache; a rebuild happens only when an input changed.
# Concurrent callers are serialised with flock.
set -euo pipefail
out=$(realpath -m "$1")
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/cache"
exec 9>"$out/.lock"
flock 9

stamp_inputs() { cat "$src/vdtest.c" "$src/crashload.c" "$src/init" "$src/guest-tests.sh" "$0" | sha256sum | cut -d' ' -f1; }
want=$(stamp_inputs)
if [ -f "$out/initrd.gz" ] && [ -f "$out/vmlinuz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

cd "$out/cache"
# The kernel package that linux-image-amd64 currently depends on (linux-image-6.1.0-NN-amd64).
if ! ls linux-image-6.1.0-*-amd64_*.deb >/dev/null 2>&1; then
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -1)
  if [ -z "$kpkg" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -1)
  fi
  [ -n "$kpkg" ] || { echo "build-initramfs: cannot find the linux-image-6.1.0-*-amd64 package" >&2; exit 1; }
  apt-get download "$kpkg" >/dev/null 2>&1 || apt-get download "$kpkg"
fi
if ! ls busybox-static_*.deb >/dev/null 2>&1; then
  apt-get download busybox-static >/dev/null 2>&1 || apt-get download busybox-static
fi
kdeb=$(ls linux-image-6.1.0-*-amd64_*.deb | head -1)
if [ ! -d kernel ]; then
  dpkg-deb -x "$kdeb" kernel.tmp && mv kernel.tmp kernel
fi
if [ ! -d busybox ]; then
  dpkg-deb -x busybox-static_*.deb busybox.tmp && mv busybox.tmp busybox
fi
kver=$(ls kernel/lib/modules | head -1)
moddir=kernel/lib/modules/$kver/kernel

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules}
cp busybox/bin/busybox "$root/bin/busybox"
gcc -static -O2 -Wall -Werror -o "$root/bin/vdtest" "$src/vdtest.c"
gcc -static -O2 -Wall -Werror -o "$root/bin/crashload" "$src/crashload.c"
# Load order matters (no modprobe/depmod in the guest): dependencies first.
mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
      drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
      drivers/scsi/scsi_common drivers/scsi/scsi_mod crypto/crct10dif_common lib/crc-t10dif
      lib/crc64 lib/crc64-rocksoft block/t10-pi drivers/scsi/sd_mod drivers/scsi/virtio_scsi
      lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4"
: > "$root/lib/modules/order"
for m in $mods; do
  f=$(ls "$moddir/$m".ko* | head -1)
  case "$f" in
    *.ko) cp "$f" "$root/lib/modules/" ;;
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
  esac
  echo "$(basename "$m").ko" >> "$root/lib/modules/order"
done
install -m 0755 "$src/init" "$root/init"
install -m 0755 "$src/guest-tests.sh" "$root/bin/guest-tests.sh"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.gz.tmp"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
cp "kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "$want" > "$out/stamp"
echo "build-initramfs: kernel $kver, initrd $(du -h "$out/initrd.gz" | cut -f1)"
