/*
 * test-machine.c - the machine as a guest sees it through the qtest-like
 * protocol: RAM, port I/O, the PCI host bridge, the serial port's IRQ, and
 * the extension commands on an if=none drive.
 */
#include "fdt-discover.h"
#include "qtest-client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define NULL_DRIVE "--drive driver=null,size=64M,if=none,id=drive0"

/* cmocka setup: one VMM per test. */
static int start_vmm(void **state)
{
    *state = vd_qtest_start(NULL_DRIVE " -m 64M");
    return 0;
}

/* cmocka teardown: the VMM must exit cleanly (ASan/UBSan make it non-zero otherwise). */
static int stop_vmm(void **state)
{
    assert_int_equal(vd_qtest_quit(*state), 0);
    return 0;
}

/* RAM written with each access size reads back, little-endian, and bulk transfers agree. */
static void test_ram(void **state)
{
    VdQtest *q = *state;
    vd_qtest_writeq(q, 0x1000, 0x1122334455667788ull);
    assert_int_equal(vd_qtest_readq(q, 0x1000), 0x1122334455667788ull);
    assert_int_equal(vd_qtest_readl(q, 0x1000), 0x55667788);
    assert_int_equal(vd_qtest_readw(q, 0x1006), 0x1122);
    assert_int_equal(vd_qtest_readb(q, 0x1001), 0x77);
    vd_qtest_writeb(q, 0x1000, 0xaa);
    vd_qtest_writew(q, 0x1002, 0xbbcc);
    vd_qtest_writel(q, 0x1004, 0xdeadbeef);
    assert_int_equal(vd_qtest_readq(q, 0x1000), 0xdeadbeefbbcc77aaull);

    uint8_t out[3000], in[3000];
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = i * 7 + 3;
    }
    vd_qtest_memwrite(q, 0x20001, out, sizeof(out));
    vd_qtest_memread(q, 0x20001, in, sizeof(in));
    assert_memory_equal(in, out, sizeof(in));
    vd_qtest_memset(q, 0x20010, 0x5a, 16);
    vd_qtest_memread(q, 0x20000, in, 32);
    assert_int_equal(in[0x0f], out[0x0e]);
    assert_int_equal(in[0x10], 0x5a);
    assert_int_equal(in[0x1f], 0x5a);

    /* The last byte of RAM is reachable, the first byte past it is not RAM. */
    vd_qtest_writeb(q, (64 << 20) - 1, 0x42);
    assert_int_equal(vd_qtest_readb(q, (64 << 20) - 1), 0x42);
    vd_qtest_writeb(q, 64 << 20, 0x42);
    assert_int_equal(vd_qtest_readb(q, 64 << 20), 0xff);
}

/* The host bridge answers configuration mechanism #1; absent functions read all ones. */
static void test_pci_host(void **state)
{
    VdQtest *q = *state;
    vd_qtest_outl(q, 0xcf8, 0x80000000);
    assert_int_equal(vd_qtest_inl(q, 0xcf8), 0x80000000);
    assert_int_equal(vd_qtest_inl(q, 0xcfc), 0x12378086);
    assert_int_equal(vd_qtest_inw(q, 0xcfe), 0x1237);
    vd_qtest_outl(q, 0xcf8, 0x80000000 | (31 << 11));
    assert_int_equal(vd_qtest_inl(q, 0xcfc), 0xffffffff);
    /* An unclaimed port reads as all ones. */
    assert_int_equal(vd_qtest_inb(q, 0x80), 0xff);
}

/* The 16550A raises IRQ 4 for THR empty once OUT2 and ETBEI are set; reading IIR acknowledges it. */
static void test_serial_irq(void **state)
{
    VdQtest *q = *state;
    assert_int_equal(vd_qtest_inb(q, 0x3fd) & 0x60, 0x60); /* THRE | TEMT */
    vd_qtest_outb(q, 0x3f9, 0x02);                         /* ETBEI, but OUT2 still clear */
    assert_false(vd_qtest_irq_level(q, 4));
    vd_qtest_outb(q, 0x3fc, 0x08);                         /* OUT2 */
    assert_true(vd_qtest_wait_irq(q, 4, true, 0));
    assert_int_equal(vd_qtest_inb(q, 0x3fa), 0x02);        /* THR empty */
    assert_true(vd_qtest_wait_irq(q, 4, false, 0));
    assert_int_equal(vd_qtest_inb(q, 0x3fa), 0x01);        /* nothing pending */
    vd_qtest_outb(q, 0x3f8, 'x');                          /* transmitting empties THR again */
    assert_true(vd_qtest_wait_irq(q, 4, true, 0));
    assert_int_equal(vd_qtest_irq_raises(q, 4), 2);
}

/* Extensions on a drive without a device: counters, trace switch, fault injection, drain. */
static void test_extensions(void **state)
{
    VdQtest *q = *state;
    assert_true(vd_qtest_drain(q));
    assert_int_equal(vd_qtest_blockstat(q, "drive0", "reads"), 0);
    assert_int_equal(vd_qtest_blockstat(q, "drive0", "host_fdatasync"), 0);
    vd_qtest_trace(q, "drive0", true);
    vd_qtest_trace(q, "drive0", false);
    vd_qtest_inject(q, "drive0", "flush", 5, 1);
    g_autofree char *r = vd_qtest_cmd(q, "blockstats nosuch");
    assert_string_equal(r, "FAIL no drive with id 'nosuch'");

    g_autoptr(GPtrArray) info = vd_qtest_info(q);
    bool serial = false, drive = false;
    for (guint i = 0; i < info->len; i++) {
        const char *line = g_ptr_array_index(info, i);
        serial |= g_str_has_prefix(line, "device serial pio=0x3f8+0x8 irq=4 ");
        drive |= g_str_has_prefix(line, "drive drive0 if=none ") && strstr(line, " size=67108864 ");
    }
    assert_true(serial);
    assert_true(drive);
}

/*
 * A hostile guest's random walk over the serial port and the PCI host bridge:
 * every access is answered, the IRQ line reported asynchronously always
 * matches the machine's, and afterwards both devices still work.
 */
static void test_random_walk(void **state)
{
    VdQtest *q = *state;
    static const char *const ops[] = { "outb", "outw", "outl", "inb", "inw", "inl" };
    GRand *rand = g_rand_new_with_seed(0x16550a);
    for (unsigned i = 0; i < 5000; i++) {
        unsigned port = g_rand_boolean(rand) ? 0x3f8 + g_rand_int_range(rand, 0, 8)
                                             : 0xcf8 + g_rand_int_range(rand, 0, 8);
        const char *op = ops[g_rand_int_range(rand, 0, G_N_ELEMENTS(ops))];
        unsigned size = op[strlen(op) - 1] == 'b' ? 1 : op[strlen(op) - 1] == 'w' ? 2 : 4;
        uint32_t value = g_rand_int(rand) & (size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
        g_autofree char *reply = op[0] == 'o' ? vd_qtest_cmd(q, "%s 0x%x 0x%x", op, port, value)
                                              : vd_qtest_cmd(q, "%s 0x%x", op, port);
        if (!g_str_has_prefix(reply, "OK")) {
            fail_msg("step %u: %s 0x%x: %s", i, op, port, reply);
        }
        if (i % 50 == 0) {
            g_autofree char *level = vd_qtest_ok(q, "irq_level 4");
            assert_int_equal(atoi(level), vd_qtest_irq_level(q, 4));
        }
    }
    g_rand_free(rand);
    vd_qtest_outl(q, 0xcf8, 0x80000000);
    assert_int_equal(vd_qtest_inl(q, 0xcfc), 0x12378086);
    vd_qtest_outb(q, 0x3fb, 0x03);       /* DLAB off */
    vd_qtest_outb(q, 0x3fc, 0x10);       /* loopback, OUT2 off */
    vd_qtest_outb(q, 0x3fa, 0x07);       /* FIFOs on and cleared */
    vd_qtest_outb(q, 0x3f8, 0x42);
    assert_int_equal(vd_qtest_inb(q, 0x3f8), 0x42);
}

/* Guest-side discovery: every drive's device is found in the FDT at the machine's fixed addresses. */
static void test_discovery(void **state)
{
    static const char *const args[] = {
        "-m", "64M", "--drive", "driver=null,size=1M,if=virtio,id=vda", "--drive", "driver=null,size=1M,if=ide,index=3,id=hdd",
        "--drive", "driver=null,size=1M,if=scsi,id=sd0", "--drive", "driver=null,size=1M,if=none,id=bare", NULL,
    };
    VdQtest *q = vd_qtest_startv(args);
    VdFdtDevice dev;
    assert_true(vd_qtest_find_drive(q, "vda", &dev));
    assert_false(dev.pio);
    assert_int_equal(dev.base, 0xfeb00000);
    assert_int_equal(dev.size, 0x200);
    assert_int_equal(dev.irq, 16);
    assert_string_equal(dev.path, "/virtio_mmio@feb00000");
    assert_true(vd_qtest_find_drive(q, "hdd", &dev)); /* index 3: secondary channel, slave */
    assert_true(dev.pio);
    assert_int_equal(dev.nwindows, 2);
    assert_int_equal(dev.base, 0x170);
    assert_int_equal(dev.size, 8);
    assert_int_equal(dev.base2, 0x376);
    assert_int_equal(dev.size2, 1);
    assert_int_equal(dev.irq, 15);
    assert_true(vd_qtest_find_drive(q, "sd0", &dev));
    assert_int_equal(dev.base, 0xfeb00200);
    assert_int_equal(dev.irq, 17);
    assert_false(vd_qtest_find_drive(q, "bare", &dev)); /* no device */
    assert_false(vd_qtest_find_drive(q, "nosuch", &dev));

    size_t size;
    g_autofree void *fdt = vd_qtest_dtb(q, &size);
    assert_int_equal(vd_fdt_ram_size(fdt), 64 << 20);
    VdFdtDevice found[4];
    assert_int_equal(vd_fdt_find_compatible(fdt, "virtio,mmio", found, 4), 2);
    assert_int_equal(found[1].base, 0xfeb00200);
    assert_int_equal(vd_fdt_find_compatible(fdt, "ns16550a", found, 4), 1);
    assert_int_equal(found[0].base, 0x3f8);
    assert_int_equal(found[0].irq, 4);
    assert_int_equal(vd_fdt_find_compatible(fdt, "vdisk,pci-host-cam1", found, 4), 1);
    assert_int_equal(found[0].irq, -1);
    /* A damaged tree finds nothing rather than crashing. */
    memset(fdt, 0xff, 8);
    assert_int_equal(vd_fdt_find_compatible(fdt, "virtio,mmio", found, 4), 0);
    assert_false(vd_fdt_find_drive(fdt, "vda", &dev));
    assert_int_equal(vd_fdt_ram_size(fdt), 0);
    assert_int_equal(vd_qtest_quit(q), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ram, start_vmm, stop_vmm),
        cmocka_unit_test_setup_teardown(test_pci_host, start_vmm, stop_vmm),
        cmocka_unit_test_setup_teardown(test_serial_irq, start_vmm, stop_vmm),
        cmocka_unit_test_setup_teardown(test_extensions, start_vmm, stop_vmm),
        cmocka_unit_test_setup_teardown(test_random_walk, start_vmm, stop_vmm),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
