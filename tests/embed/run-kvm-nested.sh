#!/usr/bin/env bash
# run-kvm-nested.sh KIT TINY_VMM GUEST_BIN LIBDIR - run `tiny-vmm --kvm guest.bin` where the
# host has no /dev/kvm: inside a Linux guest (the guest kit's Debian 6.1 kernel) that QEMU runs
# with TCG and an emulated AMD SVM CPU (-cpu max), where kvm-amd loads and /dev/kvm appears.
# So the KVM code of tiny-vmm (tiny-kvm.c) runs against the real KVM of that kernel.
#
# KIT is the guest kit directory of tests/guest/build-initramfs.sh (built here if missing: it
# downloads the kernel .deb once).  TINY_VMM is linked dynamically: it is copied into an
# initramfs with every library ldd names (LIBDIR first: the staged libvdisk).
# Prints tiny-vmm's output; exits with tiny-vmm's status, or 77 (one line saying why) when
# this cannot run here: no qemu-system-x86_64, no kit, no kvm-amd in the guest.
set -euo pipefail
kit=$1 vmm=$2 guest=$3 libdir=$4
src=$(cd "$(dirname "$0")/../guest" && pwd)

skip() { echo "run-kvm-nested: SKIP: $*"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "no /dev/kvm, and no qemu-system-x86_64 to run KVM nested"
"$src/build-initramfs.sh" "$kit" >/dev/null 2>&1 || skip "the guest kit (a Debian kernel) cannot be built here"
kdir=$kit/cache/kernel
kver=$(ls "$kdir/lib/modules" | head -n1)
mods=$kdir/lib/modules/$kver/kernel

work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-kvm-nested-XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib,lib64,mods}
cp "$kit/cache/busybox/bin/busybox" "$root/bin/"
# kvm-amd and what it needs, in load order (the guest has no modprobe).
for m in virt/lib/irqbypass arch/x86/kvm/kvm drivers/crypto/ccp/ccp arch/x86/kvm/kvm-amd; do
    f=$(ls "$mods/$m".ko* | head -n1)
    case $f in
        *.ko) cp "$f" "$root/mods/" ;;
        *.ko.xz) xz -dc "$f" >"$root/mods/$(basename "$m").ko" ;;
        *.ko.zst) zstd -dcq "$f" >"$root/mods/$(basename "$m").ko" ;;
    esac
done
cp "$vmm" "$root/bin/tiny-vmm"
cp "$guest" "$root/bin/guest.bin"
LD_LIBRARY_PATH=$libdir ldd "$vmm" | grep -o '/[^ ]*' | while read -r lib; do
    cp -L "$lib" "$root/lib/"
done
mv "$root"/lib/ld-linux-x86-64.so.* "$root/lib64/"
cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
for m in irqbypass kvm ccp kvm-amd; do insmod /mods/\$m.ko || echo "NESTED: insmod \$m failed"; done
if [ -c /dev/kvm ]; then
    cd /tmp && ASAN_OPTIONS=${ASAN_OPTIONS:-} UBSAN_OPTIONS=${UBSAN_OPTIONS:-} LD_LIBRARY_PATH=/lib \
        /bin/tiny-vmm --kvm /bin/guest.bin
    echo "NESTED: tiny-vmm exit \$?"
else
    echo "NESTED: no /dev/kvm in the guest"
fi
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

timeout 300 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -nographic -no-reboot \
    -kernel "$kdir"/boot/vmlinuz-* -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
    </dev/null >"$work/console" 2>&1 || true
tr -d '\r' <"$work/console" | grep -E '^(guest|host|tiny-vmm|NESTED):|AddressSanitizer|runtime error' || true
rc=$(tr -d '\r' <"$work/console" | sed -n 's/^NESTED: tiny-vmm exit \([0-9]*\)$/\1/p')
if [ -z "$rc" ]; then
    reason=$(tr -d '\r' <"$work/console" | grep -m1 '^NESTED:' || true)
    [ -n "$reason" ] && skip "KVM does not run nested here (${reason#NESTED: })"
    echo "run-kvm-nested: the guest never ran tiny-vmm; its console ended with:"
    tail -n 20 "$work/console"
    exit 1
fi
exit "$rc"
