#!/usr/bin/env bash
# test-install.sh - install libvdisk into a staging directory and build
# examples/tiny-vmm against it exactly as a VMM author would: through
# `pkg-config --cflags --libs vdisk` (and `--static`) and nothing else.
#
# Fails when: a public header is missing, a private one is installed, an
# installed header does not compile on its own, libvdisk.so exports a symbol
# outside the vd_ namespace, the pc file lacks -luring
# for static linking, the example does not build (shared or static), or the
# example's own guest/host checks fail (its exit code and output).  The
# freestanding guest program (guest.bin) is built too, on x86-64, so that it
# always compiles and links.
#
# With MODE kvm (the embed-kvm test) it runs `tiny-vmm --kvm guest.bin`
# instead: the guest program in a KVM VM.  Where /dev/kvm is missing, it runs it
# nested: in a Linux guest under QEMU TCG with an emulated SVM CPU, whose
# kvm-amd provides /dev/kvm (run-kvm-nested.sh).  It skips (77) only when
# neither works here.
#
# Usage: test-install.sh MESON BUILD_DIR SOURCE_DIR PREFIX LIBDIR INCLUDEDIR SANITIZE CC [kvm]
#   LIBDIR and INCLUDEDIR are absolute; SANITIZE is meson's b_sanitize value.
set -euo pipefail

meson=$1 build=$2 src=$3 prefix=$4 libdir=$5 includedir=$6 sanitize=$7 cc=$8 mode=${9:-hosted}

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

kvm=direct
if [ "$mode" = kvm ]; then
    [ "$(uname -m)" = x86_64 ] || { echo "test-install: SKIP: the guest program is x86; this is $(uname -m)"; exit 77; }
    # (test, never open with <>: that would create a file where the device is missing)
    if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
        echo "test-install: no /dev/kvm here (no such device, or not readable and writable): KVM nested under QEMU TCG"
        kvm=nested
    fi
fi

case $prefix in
    /usr) echo "test-install: SKIP: prefix /usr cannot be staged next to the system's glib (set up with the default /usr/local)"
          exit 77 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/root

# 1. Install the build tree, as `meson install --destdir` does for a package.
$meson install -C "$build" --no-rebuild --destdir "$stage" --quiet >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "meson install failed"; }
echo "installed files:"
(cd "$stage" && find . -type f -o -type l | sort | sed 's/^\./  /')

# The staging directory is the sysroot of the pc file.  Its /usr/include and
# /usr/lib are the system's, where glib and liburing live.
for d in include lib; do
    [ -e "$stage/usr/$d" ] || ln -s "/usr/$d" "$stage/usr/$d"
done
export PKG_CONFIG_PATH=$stage$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage

# 2. The public API, and only it (docs/embedding.md, "What is installed").
hdr=$stage$includedir/vdisk
for h in block/block-backend.h hw/bus.h hw/pci.h hw/serial.h hw/ide.h hw/scsi.h hw/virtio.h \
         hw/virtio-mmio.h hw/virtio-blk.h hw/virtio-scsi.h; do
    [ -f "$hdr/$h" ] || fail "public header $h is not installed in $hdr"
done
for h in block/block-driver.h system; do
    [ ! -e "$hdr/$h" ] || fail "private $h is installed in $hdr"
done
for f in libvdisk.a libvdisk.so vdisk.pc; do
    [ -n "$(find "$stage$libdir" -name "$f")" ] || fail "$f is not installed under $libdir"
done

# The shared library exports the vd_ namespace only (libvdisk.map).
so=$(find "$stage$libdir" -name 'libvdisk.so.*.*.*' | head -n1)
leaked=$(nm -D --defined-only "$so" | awk '$3 !~ /^vd_/ { print $3 }' | head -n5)
[ -z "$leaked" ] || fail "libvdisk.so exports symbols outside vd_: $leaked"

# 3. Every installed header compiles on its own with the pc file's flags.
cflags=$(pkg-config --cflags vdisk) || fail "pkg-config --cflags vdisk failed"
(cd "$hdr" && find . -name '*.h' | sed 's|^\./||' | sort) | while read -r h; do
    echo "#include \"$h\"" | "$cc" $cflags -Wall -Werror -fsyntax-only -x c - ||
        fail "installed header $h does not compile on its own"
done

# 4. Static linking needs liburing from the pc file, not from a doc.
static_libs=$(pkg-config --static --libs vdisk) || fail "pkg-config --static --libs vdisk failed"
echo "pkg-config --static --libs vdisk: $static_libs"
grep -qw -- -luring <<<"$static_libs" || fail "pkg-config --static --libs vdisk has no -luring"

# 5. Build the example with its own Makefile, shared and static.  A sanitized
#    libvdisk needs the sanitizer runtime in the program, so pass the build's
#    -fsanitize flags (a pc file must not carry them).
san=
[ "$sanitize" = none ] || san=-fsanitize=$sanitize
cp -r "$src/examples/tiny-vmm" "$work/tiny-vmm"
make -s -C "$work/tiny-vmm" CC="$cc" CFLAGS="-O1 -g -Werror $san" LDFLAGS="$san" tiny-vmm tiny-vmm-static ||
    fail "examples/tiny-vmm does not build against the installed library"
if [ "$(uname -m)" = x86_64 ]; then
    make -s -C "$work/tiny-vmm" CC="$cc" GUEST_CFLAGS="-O2 -g -Werror" guest.bin || fail "the freestanding guest program does not build"
    echo "guest.bin: $(stat -c %s "$work/tiny-vmm/guest.bin") bytes"
fi

# The guest's lines and the host's checks both runs must print.
expected=("guest: step ide-cache-off: " "guest: step ide-write-dma: " "guest: step virtio-flush: "
          "host: write with the write cache off was durable on the host" "host: FLUSH reached fdatasync"
          "host: 6 of 6 guest steps ok and confirmed by the block counters: ok" "tiny-vmm: all checks passed")

# 6k. --kvm: the guest program in a KVM VM (77 from tiny-vmm: KVM cannot run here).
if [ "$mode" = kvm ]; then
    rc=0
    if [ $kvm = direct ]; then
        LD_LIBRARY_PATH=$stage$libdir "$work/tiny-vmm/tiny-vmm" --kvm "$work/tiny-vmm/guest.bin" >"$work/kvm.out" 2>&1 ||
            rc=$?
    else
        "$src/tests/embed/run-kvm-nested.sh" "$build/guest" "$work/tiny-vmm/tiny-vmm" "$work/tiny-vmm/guest.bin" \
            "$stage$libdir" >"$work/kvm.out" 2>&1 || rc=$?
    fi
    sed "s/^/  tiny-vmm --kvm ($kvm): /" "$work/kvm.out"
    [ $rc -ne 77 ] || { echo "test-install: SKIP: $(tail -n1 "$work/kvm.out")"; exit 77; }
    [ $rc -eq 0 ] || fail "tiny-vmm --kvm exited with $rc"
    for want in "${expected[@]}" "host: the guest program ended with 0 failed step(s)"; do
        grep -qF -- "$want" "$work/kvm.out" || fail "tiny-vmm --kvm did not print '$want'"
    done
    echo "test-install: ok (--kvm, $kvm)"
    exit 0
fi

# 6. Run both; each must pass its own checks and say so.
for exe in tiny-vmm tiny-vmm-static; do
    rc=0
    LD_LIBRARY_PATH=$stage$libdir "$work/tiny-vmm/$exe" >"$work/$exe.out" 2>&1 || rc=$?
    sed "s/^/  $exe: /" "$work/$exe.out"
    [ $rc -eq 0 ] || fail "$exe exited with $rc"
    for want in "${expected[@]}"; do
        grep -qF -- "$want" "$work/$exe.out" || fail "$exe did not print '$want'"
    done
done
# 7. guest.bin itself without KVM: tiny-vmm's objects with tests/embed/tiny-emu.c (the Unicorn
#    CPU emulator) in place of tiny-kvm.o.  Only the KVM ioctls are then not what --kvm runs.
if [ "$(uname -m)" = x86_64 ] && pkg-config --exists unicorn; then
    objs=$(find "$work/tiny-vmm" -maxdepth 1 -name '*.o' ! -name tiny-kvm.o | sort)
    # shellcheck disable=SC2046,SC2086 # word splitting of flags and objects is wanted
    "$cc" -O1 -g -Werror $san $(pkg-config --cflags vdisk unicorn) -I"$work/tiny-vmm" -o "$work/tiny-vmm-emu" \
        $objs "$src/tests/embed/tiny-emu.c" $(pkg-config --libs vdisk unicorn) -lfdt ||
        fail "tests/embed/tiny-emu.c does not build with tiny-vmm's objects"
    rc=0
    LD_LIBRARY_PATH=$stage$libdir "$work/tiny-vmm-emu" --kvm "$work/tiny-vmm/guest.bin" >"$work/emu.out" 2>&1 || rc=$?
    sed "s/^/  tiny-vmm-emu: /" "$work/emu.out"
    [ $rc -eq 0 ] || fail "guest.bin under the emulator: tiny-vmm exited with $rc"
    for want in "${expected[@]}" "host: the guest program ended with 0 failed step(s)"; do
        grep -qF -- "$want" "$work/emu.out" || fail "guest.bin under the emulator did not print '$want'"
    done
else
    echo "test-install: note: no libunicorn-dev (or not x86-64): guest.bin was built but not run"
fi

# The shared one really used libvdisk.so from the staging directory.
deps=$(LD_LIBRARY_PATH=$stage$libdir ldd "$work/tiny-vmm/tiny-vmm")   # no pipe: grep -q would SIGPIPE ldd
grep -q "$stage$libdir/libvdisk.so" <<<"$deps" || fail "tiny-vmm is not linked with the installed libvdisk.so"
echo "test-install: ok"
