/*
 * test-guest-fdt.c - the tiny guest's device-tree walker
 * (examples/tiny-vmm/guest-fdt.c), which runs without libc inside guest.bin:
 * it finds what libfdt and vdisk-vmm put in a tree, and a broken tree yields
 * "not found" without reading outside the blob (each blob is a heap copy of
 * exactly its size, so ASan sees any overrun).
 *
 * argv[1]: vdisk-vmm, whose --dump-dtb gives the machine's real tree.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "guest.h"

static const char *vdisk_vmm;

/* A tree in tiny-vmm's layout plus decoys: a node without reg, a two-entry compatible list, NOPs. */
static void *make_tree(size_t *size)
{
    static uint8_t buf[4096];
    const fdt32_t vio[] = { 0, cpu_to_fdt32(0xd0000000), 0, cpu_to_fdt32(0x200) };
    const fdt32_t ide[] = { cpu_to_fdt32(1), cpu_to_fdt32(0x1f0), cpu_to_fdt32(8),
                            cpu_to_fdt32(1), cpu_to_fdt32(0x3f6), cpu_to_fdt32(1) };
    const char two[] = "vendor,thing\0virtio,mmio";
    assert_int_equal(fdt_create(buf, sizeof(buf)), 0);
    assert_int_equal(fdt_finish_reservemap(buf), 0);
    assert_int_equal(fdt_begin_node(buf, ""), 0);
    assert_int_equal(fdt_property_u32(buf, "#address-cells", 2), 0);
    assert_int_equal(fdt_property_u32(buf, "#size-cells", 2), 0);
    assert_int_equal(fdt_begin_node(buf, "decoy"), 0);          /* compatible, but no reg */
    assert_int_equal(fdt_property_string(buf, "compatible", "virtio,mmio"), 0);
    assert_int_equal(fdt_property_u32(buf, "interrupts", 9), 0);
    assert_int_equal(fdt_end_node(buf), 0);
    assert_int_equal(fdt_begin_node(buf, "virtio_mmio@d0000000"), 0);
    assert_int_equal(fdt_property_u32(buf, "interrupts", 5), 0);  /* before compatible: order is free */
    assert_int_equal(fdt_property(buf, "compatible", two, sizeof(two)), 0);
    assert_int_equal(fdt_property(buf, "reg", vio, sizeof(vio)), 0);
    assert_int_equal(fdt_end_node(buf), 0);
    assert_int_equal(fdt_begin_node(buf, "isa"), 0);
    assert_int_equal(fdt_property_string(buf, "device_type", "isa"), 0);
    assert_int_equal(fdt_property_u32(buf, "#address-cells", 2), 0);
    assert_int_equal(fdt_property_u32(buf, "#size-cells", 1), 0);
    assert_int_equal(fdt_begin_node(buf, "ide@1f0"), 0);
    assert_int_equal(fdt_property_string(buf, "compatible", "vdisk,piix3-ide"), 0);
    assert_int_equal(fdt_property_string(buf, "nop-me", "x"), 0);
    assert_int_equal(fdt_property(buf, "reg", ide, sizeof(ide)), 0);
    assert_int_equal(fdt_property_u32(buf, "interrupts", 14), 0);
    assert_int_equal(fdt_end_node(buf), 0);
    assert_int_equal(fdt_end_node(buf), 0);
    assert_int_equal(fdt_end_node(buf), 0);
    assert_int_equal(fdt_finish(buf), 0);
    int ide_node = fdt_path_offset(buf, "/isa/ide@1f0");
    assert_true(ide_node >= 0);
    assert_int_equal(fdt_nop_property(buf, ide_node, "nop-me"), 0);   /* FDT_NOP tokens in the middle */
    *size = fdt_totalsize(buf);
    return g_memdup2(buf, *size);
}

/* tiny-vmm's devices are found with their windows, port/MMIO kind and interrupt. */
static void test_finds_devices(void **state)
{
    size_t size;
    g_autofree uint8_t *fdt = make_tree(&size);
    GuestDev d;
    guest_fdt_find(fdt, "virtio,mmio", &d);
    assert_true(d.found && !d.pio);
    assert_int_equal(d.nwin, 1);
    assert_int_equal(d.base[0], 0xd0000000);
    assert_int_equal(d.size[0], 0x200);
    assert_int_equal(d.irq, 5);
    guest_fdt_find(fdt, "vdisk,piix3-ide", &d);
    assert_true(d.found && d.pio);
    assert_int_equal(d.nwin, 2);
    assert_int_equal(d.base[0], 0x1f0);
    assert_int_equal(d.size[0], 8);
    assert_int_equal(d.base[1], 0x3f6);
    assert_int_equal(d.size[1], 1);
    assert_int_equal(d.irq, 14);
    guest_fdt_find(fdt, "ns16550a", &d);
    assert_false(d.found);
    guest_fdt_find(fdt, "virtio", &d);          /* a prefix of an entry is no match */
    assert_false(d.found);
}

/* Every shortened copy of the tree, and bad headers, are "not found" and stay inside the blob. */
static void test_broken_trees(void **state)
{
    size_t size;
    g_autofree uint8_t *fdt = make_tree(&size);
    GuestDev d;
    for (size_t len = 40; len < size; len++) {
        g_autofree uint8_t *cut = g_memdup2(fdt, len);
        fdt_set_totalsize(cut, len);            /* the header tells the truth about the cut */
        guest_fdt_find(cut, "vdisk,piix3-ide", &d);
        assert_false(d.found);
    }
    /* Every word of the structure block replaced by each token value and by garbage. */
    static const uint32_t words[] = { 1, 2, 3, 4, 9, 0, 0xffffffffu, 0x7ffffff0u };
    uint32_t off = fdt_off_dt_struct(fdt), end = off + fdt_size_dt_struct(fdt);
    for (uint32_t w = off; w < end; w += 4) {
        for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
            g_autofree uint8_t *bent = g_memdup2(fdt, size);
            fdt32_st(bent + w, words[i]);
            guest_fdt_find(bent, "vdisk,piix3-ide", &d);    /* found or not: it must not overrun */
        }
    }
    g_autofree uint8_t *bad = g_memdup2(fdt, size);
    fdt_set_magic(bad, 0xdeadbeef);
    guest_fdt_find(bad, "virtio,mmio", &d);
    assert_false(d.found);
    fdt_set_magic(bad, FDT_MAGIC);
    fdt_set_totalsize(bad, GUEST_FDT_MAX + 1);   /* larger than the guest allows */
    guest_fdt_find(bad, "virtio,mmio", &d);
    assert_false(d.found);
    fdt_set_totalsize(bad, size);
    fdt_set_size_dt_strings(bad, (uint32_t)size);  /* strings block past the end */
    guest_fdt_find(bad, "virtio,mmio", &d);
    assert_false(d.found);
}

/* A property name running off the end of the blob (its NUL cut away) is "not found", not an overrun. */
static void test_unterminated_name(void **state)
{
    size_t size;
    g_autofree uint8_t *fdt = make_tree(&size);
    uint32_t strings = fdt_off_dt_strings(fdt), len = fdt_size_dt_strings(fdt);
    assert_int_equal(strings + len, size);                      /* the strings block ends the blob */
    /* libfdt's sequential writer puts the first name it was given last: the root's first property. */
    assert_string_equal((const char *)fdt + strings + len - sizeof("#address-cells"), "#address-cells");
    fdt_set_size_dt_strings(fdt, len - 2);                      /* "#address-cel", no NUL, then the end */
    fdt_set_totalsize(fdt, size - 2);
    g_autofree uint8_t *cut = g_memdup2(fdt, size - 2);
    GuestDev d;
    guest_fdt_find(cut, "vdisk,piix3-ide", &d);
    assert_false(d.found);
}

/* Nesting deeper than the walker's stack is "not found". */
static void test_too_deep(void **state)
{
    uint8_t buf[2048];
    assert_int_equal(fdt_create(buf, sizeof(buf)), 0);
    assert_int_equal(fdt_finish_reservemap(buf), 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(fdt_begin_node(buf, i ? "n" : ""), 0);
    }
    assert_int_equal(fdt_property_string(buf, "compatible", "deep"), 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(fdt_end_node(buf), 0);
    }
    assert_int_equal(fdt_finish(buf), 0);
    GuestDev d;
    guest_fdt_find(buf, "deep", &d);
    assert_false(d.found);
}

/* vdisk-vmm's own tree (the layout docs/vdisk-vmm.md describes): the same walker finds its disks. */
static void test_vdisk_vmm_tree(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("guest-fdt-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "vm.dtb", NULL);
    const char *argv[] = { vdisk_vmm, "--drive", "driver=null,size=1M,if=virtio", "--drive",
                           "driver=null,size=1M,if=ide", "--dump-dtb", path, NULL };
    int status;
    assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, NULL));
    assert_true(g_spawn_check_wait_status(status, NULL));
    g_autofree char *fdt = NULL;
    gsize len;
    assert_true(g_file_get_contents(path, &fdt, &len, NULL));
    g_unlink(path);
    g_rmdir(dir);
    GuestDev d;
    guest_fdt_find((const uint8_t *)fdt, "vdisk,piix3-ide", &d);
    assert_true(d.found && d.pio && d.nwin == 2);
    assert_int_equal(d.base[0], 0x1f0);
    assert_int_equal(d.base[1], 0x3f6);
    assert_int_equal(d.irq, 14);
    guest_fdt_find((const uint8_t *)fdt, "ns16550a", &d);
    assert_true(d.found && d.pio);
    assert_int_equal(d.base[0], 0x3f8);
    guest_fdt_find((const uint8_t *)fdt, "virtio,mmio", &d);
    assert_true(d.found && !d.pio);
    assert_int_equal(d.size[0], 0x200);
    assert_true(d.base[0] != 0 && d.irq != 0);
}

/* The walker's cases. */
int main(int argc, char **argv)
{
    vdisk_vmm = argc > 1 ? argv[1] : "vdisk-vmm";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_devices),
        cmocka_unit_test(test_broken_trees),
        cmocka_unit_test(test_unterminated_name),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_vdisk_vmm_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
