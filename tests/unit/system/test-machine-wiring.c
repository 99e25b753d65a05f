/*
 * test-machine-wiring.c - drive ids, IDE/SCSI index allocation, virtio-mmio
 * slots, failure rollback, and the FDT (checked with libfdt and with dtc).
 */
#include "fake-attach.h"

#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define RAM (64ull << 20)

/* Parse and add a drive; on failure return the error message (g_free) instead of NULL. */
static char *add(VdMachine *m, const char *spec)
{
    GError *err = NULL;
    VdDriveSpec *d = vd_drive_spec_parse(spec, &err);
    if (d && vd_machine_add_drive(m, d, &err)) {
        return NULL;
    }
    vd_drive_spec_free(d);
    char *msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* Add a drive that must succeed. */
static VdDriveSpec *add_ok(VdMachine *m, const char *spec)
{
    g_autofree char *msg = add(m, spec);
    if (msg) {
        fail_msg("adding '%s' failed: %s", spec, msg);
    }
    return g_ptr_array_index(m->drives, m->drives->len - 1);
}

static int setup(void **state)
{
    *state = vd_machine_new(RAM, NULL, NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    vd_machine_free(*state);
    return 0;
}

/* Default ids are drive<N> and skip ids already taken; duplicates are refused. */
static void test_ids(void **state)
{
    VdMachine *m = *state;
    assert_string_equal(add_ok(m, "driver=null,size=1M,if=none,id=drive1")->id, "drive1");
    assert_string_equal(add_ok(m, "driver=null,size=1M,if=none")->id, "drive2");
    assert_string_equal(add_ok(m, "driver=null,size=1M,if=none")->id, "drive3");
    g_autofree char *msg = add(m, "driver=null,size=1M,if=none,id=drive2");
    assert_non_null(strstr(msg, "id=drive2: a drive with this id already exists"));
    assert_int_equal(m->drives->len, 3);
    assert_non_null(vd_machine_find_drive(m, "drive3"));
    assert_null(vd_machine_find_drive(m, "drive0"));
}

/* A serial number names one disk: a second drive with it is refused, whatever its interface. */
static void test_serials(void **state)
{
    VdMachine *m = *state;
    add_ok(m, "driver=null,size=1M,if=ide,serial=SN1");
    add_ok(m, "driver=null,size=1M,if=virtio,serial=SN2");
    g_autofree char *msg = add(m, "driver=null,size=1M,if=virtio,serial=SN1,id=dup");
    assert_string_equal(msg, "serial=SN1: a drive with this serial already exists");
    assert_int_equal(m->drives->len, 2);
    assert_null(vd_machine_find_drive(m, "dup"));
}

/* IDE positions: lowest free first, explicit ones honoured, at most four. */
static void test_ide_index(void **state)
{
    VdMachine *m = *state;
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=ide")->index, 0);
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=ide,index=3")->index, 3);
    assert_int_equal(add_ok(m, "driver=null,size=1M")->index, 1); /* if=ide is the default */
    g_autofree char *taken = add(m, "driver=null,size=1M,if=ide,index=3,id=x");
    assert_string_equal(taken, "drive x: if=ide index=3 is already taken");
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=ide")->index, 2);
    g_autofree char *full = add(m, "driver=null,size=1M,if=ide,id=y");
    assert_string_equal(full, "drive y: all 4 if=ide positions are taken");
    assert_int_equal(m->drives->len, 4);
}

/* virtio-mmio slots follow command-line order: base + n*0x200, IRQ 16+n, eight of them. */
static void test_virtio_slots(void **state)
{
    VdMachine *m = *state;
    for (unsigned n = 0; n < VD_VIRTIO_MMIO_SLOTS; n++) {
        add_ok(m, "driver=null,size=1M,if=virtio");
        const VdDeviceInfo *info = &g_array_index(m->devices, VdDeviceInfo, m->devices->len - 1);
        assert_int_equal(info->base, 0xfeb00000 + n * 0x200);
        assert_int_equal(info->irq, 16 + n);
    }
    g_autofree char *msg = add(m, "driver=null,size=1M,if=virtio");
    assert_string_equal(msg, "all 8 virtio-mmio slots are in use");
    assert_int_equal(m->drives->len, VD_VIRTIO_MMIO_SLOTS);
}

/* One image as two drives is refused by the image lock; odd-sized images by the size rule, on every bus. */
static void test_image_lock_and_size(void **state)
{
    VdMachine *m = *state;
    g_autofree char *dir = g_dir_make_tmp("vdisk-wiring-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "disk.img", NULL);
    g_autofree char *odd = g_build_filename(dir, "odd.img", NULL);
    assert_int_equal(g_file_set_contents(img, "", 0, NULL), TRUE);
    assert_int_equal(truncate(img, 1 << 20), 0);
    assert_int_equal(g_file_set_contents(odd, "x", 1, NULL), TRUE);

    g_autofree char *ide = g_strdup_printf("file=%s,if=ide", img);
    add_ok(m, ide);
    static const char *const buses[] = { "virtio", "scsi", "ide" };
    for (size_t i = 0; i < G_N_ELEMENTS(buses); i++) {
        g_autofree char *spec = g_strdup_printf("file=%s,if=%s,id=x", img, buses[i]);
        g_autofree char *msg = add(m, spec);
        g_autofree char *want = g_strdup_printf("drive x: file=%s: in use by another process for writing "
                                                "(Failed to get \"write\" lock); use locking=off to override", img);
        assert_string_equal(msg, want);
        g_autofree char *odd_spec = g_strdup_printf("file=%s,if=%s,id=y", odd, buses[i]);
        g_autofree char *odd_msg = add(m, odd_spec);
        assert_non_null(strstr(odd_msg, "size 1 bytes is not a multiple of 512"));
    }
    g_autofree char *shared = g_strdup_printf("file=%s,if=virtio,locking=off", img);
    add_ok(m, shared);
    assert_int_equal(m->drives->len, 2);
    unlink(img);
    unlink(odd);
    rmdir(dir);
}

/* SCSI: the index is the LUN, allocated lowest-free; one controller slot for all of them. */
static void test_scsi_luns(void **state)
{
    VdMachine *m = *state;
    add_ok(m, "driver=null,size=1M,if=virtio");
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=scsi")->index, 0);
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=scsi,index=5")->index, 5);
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=scsi")->index, 1);
    assert_int_equal(m->next_virtio_slot, 2);
}

/* A failed attach or backend open leaves neither the drive nor its id behind. */
static void test_rollback(void **state)
{
    VdMachine *m = *state;
    GError *err = NULL;
    VdDriveSpec *d = vd_drive_spec_parse("driver=null,size=1M,if=ide", &err);
    fake_attach_fail = true;
    assert_false(vd_machine_add_drive(m, d, &err));
    assert_string_equal(err->message, "fake attach failure");
    g_clear_error(&err);
    assert_int_equal(m->drives->len, 0);
    assert_null(d->blk);
    assert_null(d->id);
    assert_int_equal(d->index, -1);
    vd_drive_spec_free(d);

    unsigned calls = fake_attach_calls;
    g_autofree char *msg = add(m, "file=/nonexistent/vdisk.img,if=ide,id=bad");
    assert_non_null(g_strstr_len(msg, -1, "drive bad: "));
    assert_int_equal(fake_attach_calls, calls); /* never reached the device */
    assert_int_equal(m->drives->len, 0);
    assert_int_equal(add_ok(m, "driver=null,size=1M,if=ide")->index, 0);
}

/* Read a reg property as 32-bit cells. */
static unsigned get_cells(const void *fdt, int node, const char *prop, uint32_t *out, unsigned max)
{
    int len;
    const fdt32_t *p = fdt_getprop(fdt, node, prop, &len);
    assert_non_null(p);
    unsigned n = len / 4;
    assert_true(n <= max);
    for (unsigned i = 0; i < n; i++) {
        out[i] = fdt32_to_cpu(p[i]);
    }
    return n;
}

/* Every device appears with its address and IRQ, and dtc decompiles the blob without a warning. */
static void test_fdt(void **state)
{
    VdMachine *m = *state;
    add_ok(m, "driver=null,size=1M,if=ide,id=hd0");
    add_ok(m, "driver=null,size=1M,if=ide,id=hd1");
    add_ok(m, "driver=null,size=1M,if=ide,index=2,id=hd2");
    add_ok(m, "driver=null,size=1M,if=virtio,id=vblk");
    add_ok(m, "driver=null,size=1M,if=scsi,id=sd0");
    add_ok(m, "driver=null,size=1M,if=scsi,id=sd1");
    size_t size;
    g_autofree void *fdt = vd_machine_build_fdt(m, &size, NULL);
    assert_non_null(fdt);
    assert_int_equal(fdt_check_header(fdt), 0);
    assert_int_equal(fdt_totalsize(fdt), size);

    uint32_t c[8];
    int mem = fdt_path_offset(fdt, "/memory@0");
    assert_int_equal(get_cells(fdt, mem, "reg", c, 8), 4);
    assert_int_equal(((uint64_t)c[2] << 32 | c[3]), RAM);

    int serial = fdt_path_offset(fdt, "/isa/serial@i3f8");
    assert_int_equal(get_cells(fdt, serial, "reg", c, 8), 3);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 0x3f8);
    assert_int_equal(c[2], 8);
    assert_int_equal(get_cells(fdt, serial, "interrupts", c, 8), 1);
    assert_int_equal(c[0], 4);

    int ide0 = fdt_path_offset(fdt, "/isa/ide@i1f0");
    assert_int_equal(get_cells(fdt, ide0, "reg", c, 8), 6);
    assert_memory_equal(c, ((uint32_t[]){ 1, 0x1f0, 8, 1, 0x3f6, 1 }), 24);
    assert_int_equal(fdt_stringlist_count(fdt, ide0, "vdisk,drives"), 2);
    assert_string_equal(fdt_stringlist_get(fdt, ide0, "vdisk,drives", 1, NULL), "hd1");
    int ide1 = fdt_path_offset(fdt, "/isa/ide@i170");
    get_cells(fdt, ide1, "interrupts", c, 8);
    assert_int_equal(c[0], 15);

    int vblk = fdt_path_offset(fdt, "/virtio_mmio@feb00000");
    assert_true(vblk >= 0);
    assert_int_equal(get_cells(fdt, vblk, "reg", c, 8), 4);
    assert_memory_equal(c, ((uint32_t[]){ 0, 0xfeb00000, 0, 0x200 }), 16);
    assert_int_equal(fdt_node_check_compatible(fdt, vblk, "virtio,mmio"), 0);
    int scsi = fdt_path_offset(fdt, "/virtio_mmio@feb00200");
    get_cells(fdt, scsi, "interrupts", c, 8);
    assert_int_equal(c[0], 17);
    assert_int_equal(fdt_stringlist_count(fdt, scsi, "vdisk,drives"), 2);
    assert_true(fdt_path_offset(fdt, "/isa/pci-host@icf8") >= 0);

    const char *dtc = g_getenv("DTC");
    if (!dtc || !*dtc) {
        g_free(g_steal_pointer(&fdt));
        skip(); /* meson sets DTC when dtc is installed */
    }
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("vdisk-fdt-XXXXXX.dtb", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, fdt, size, NULL));
    const char *argv[] = { dtc, "-I", "dtb", "-O", "dts", path, NULL };
    g_autofree char *out = NULL, *err = NULL;
    int status;
    assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, &err, &status, NULL));
    unlink(path);
    if (err[0]) {
        fail_msg("dtc warned: %s", err);
    }
    assert_true(g_spawn_check_wait_status(status, NULL));
    if (!strstr(out, "virtio_mmio@feb00200 {") || !strstr(out, "interrupts = <0x11>;") ||
        !strstr(out, "vdisk,drives = \"sd0\\0sd1\";")) {
        fail_msg("unexpected dtc output:\n%s", out);
    }
}

/* A device whose answers reach guest memory from an idle source, as virtio-scsi's do. */
typedef struct SlowDevice {
    VdDrainFunc *cb;
    void *cb_opaque;
    bool delivered;         /* its answer reached guest memory */
    bool freed_after;       /* its cleanup ran after the delivery */
} SlowDevice;

/* Idle source: deliver the answer, then tell the drain. */
static gboolean slow_deliver(gpointer opaque)
{
    SlowDevice *d = opaque;
    d->delivered = true;
    d->cb(d->cb_opaque);
    return G_SOURCE_REMOVE;
}

/* The device's drain: calls back once its queued answer is delivered. */
static void slow_drain(void *dev, VdDrainFunc *cb, void *opaque)
{
    SlowDevice *d = dev;
    d->cb = cb;
    d->cb_opaque = opaque;
    g_idle_add(slow_deliver, d);
}

/* The device's cleanup: records whether its answer was delivered first. */
static void slow_free(void *opaque)
{
    SlowDevice *d = opaque;
    d->freed_after = d->delivered;
}

/* Teardown waits for every device's drain (not only the backends) before any cleanup runs. */
static void test_teardown_drains_devices(void **state)
{
    VdMachine *m = vd_machine_new(RAM, NULL, NULL);
    assert_non_null(m);
    SlowDevice d = { 0 };
    vd_machine_on_free(m, slow_free, &d);
    vd_machine_on_drain(m, slow_drain, &d);
    vd_machine_free(m);
    assert_true(d.delivered);
    assert_true(d.freed_after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ide_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtio_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scsi_luns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_lock_and_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fdt, setup, teardown),
        cmocka_unit_test(test_teardown_drains_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
