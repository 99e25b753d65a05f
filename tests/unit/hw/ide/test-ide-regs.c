/*
 * test-ide-regs.c - the PIIX3 function and the task-file registers:
 * PCI identity and BARs, signatures, absent devices and empty channels,
 * LBA48 FIFOs with HOB, nIEN, SRST, IDENTIFY contents.
 */
#include "ide-test.h"

#include <unistd.h>

#include <string.h>

/* PCI identity, BAR4 preassigned and decoding, IDETIM decode bits. */
static void test_pci_function(void **state)
{
    Rig *r = rig_new();
    VdPciDevice *dev = vd_ide_pci_device(r->ide);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_VENDOR_ID, 2), 0x8086);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_DEVICE_ID, 2), 0x7010);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_CLASS, 1), 0x01);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_SUBCLASS, 1), 0x01);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_PROG_IF, 1), 0x80);
    assert_int_equal(vd_pci_config_read(dev, VD_PCI_BAR0 + 16, 4), VD_IDE_BMDMA_BASE | 1);
    assert_true(vd_pci_config_read(dev, VD_PCI_COMMAND, 2) & VD_PCI_COMMAND_IO);
    assert_int_equal(vd_pci_config_read(dev, 0x40, 2) & 0x8000, 0x8000);
    assert_int_equal(vd_pci_config_read(dev, 0x42, 2) & 0x8000, 0x8000);
    /* Through the host bridge too: 00:01.1 = devfn 9. */
    outl(r, 0xcf8, 0x80000000u | (9 << 8));
    assert_int_equal(inl(r, 0xcfc), 0x70108086);

    /* BAR4 decodes: the PRD pointer register holds a dword-aligned value. */
    outl(r, VD_IDE_BMDMA_BASE + 4, 0x12345677);
    assert_int_equal(inl(r, VD_IDE_BMDMA_BASE + 4), 0x12345674);
    /* Moving BAR4 moves the registers. */
    vd_pci_config_write(dev, VD_PCI_BAR0 + 16, 0xd000, 4);
    assert_int_equal(inl(r, 0xd004), 0x12345674);
    assert_int_equal(inl(r, VD_IDE_BMDMA_BASE + 4), 0xffffffff);

    /* Clearing IDETIM decode for the secondary channel makes its ports unclaimed. */
    uint64_t v;
    assert_true(vd_bus_read(r->bus, VD_SPACE_PIO, 0x177, 1, &v));
    vd_pci_config_write(dev, 0x42, 0x0000, 2);
    assert_false(vd_bus_read(r->bus, VD_SPACE_PIO, 0x177, 1, &v));
    vd_pci_config_write(dev, 0x42, 0x8000, 2);
    assert_true(vd_bus_read(r->bus, VD_SPACE_PIO, 0x177, 1, &v));
    rig_free(r);
}

/* Power-on: ready status, ATA signature, diagnostic code 01h. */
static void test_signature(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 1), 0x01);
    assert_int_equal(inb(r, p + 2), 1);
    assert_int_equal(inb(r, p + 3), 1);
    assert_int_equal(inb(r, p + 4), 0);
    assert_int_equal(inb(r, p + 5), 0);
    /* Bus-master status: drive 0 DMA capable, as firmware leaves it; nothing on the secondary. */
    assert_int_equal(bm_status(r, 0), 0x20);
    assert_int_equal(bm_status(r, 1), 0x00);
    rig_attach(r, 1, "driver=null,size=16M");
    assert_int_equal(bm_status(r, 0), 0x60);
    rig_free(r);
}

/*
 * Absent slave with a present master: status and alternate status read 00h,
 * the master answers the other registers with what was written, and commands
 * to the slave are not executed (no interrupt).  An empty channel floats (7Fh).
 */
static void test_absent_devices(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    ata_select(r, 0, 1);
    assert_int_equal(inb(r, p + 7), 0x00);
    assert_int_equal(inb(r, ctl_port(0)), 0x00);
    outb(r, p + 2, 0x55);
    outb(r, p + 3, 0xaa);
    assert_int_equal(inb(r, p + 2), 0x55);
    assert_int_equal(inb(r, p + 3), 0xaa);
    unsigned before = r->raises[14];
    ata_command(r, 0, 0xec);
    rig_settle(r);
    assert_int_equal(r->raises[14], before);
    assert_false(vd_irq_level(r->bus, 14));
    assert_int_equal(inb(r, p + 7), 0x00);
    /* The master did not execute it either. */
    ata_select(r, 0, 0);
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);

    /* Secondary channel: nothing on the cable. */
    uint16_t s = cmd_port(1);
    for (unsigned reg = 1; reg < 8; reg++) {
        assert_int_equal(inb(r, s + reg), 0x7f);
    }
    assert_int_equal(inb(r, ctl_port(1)), 0x7f);
    outb(r, s + 2, 0x55);
    assert_int_equal(inb(r, s + 2), 0x7f);
    ata_command(r, 1, 0xec);
    rig_settle(r);
    assert_int_equal(r->raises[15], 0);
    rig_free(r);
}

/* Both devices answer for themselves; IDENTIFY reaches the one selected. */
static void test_master_and_slave(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 2, "driver=null,size=16M");
    rig_attach(r, 3, "driver=null,size=32M");
    uint16_t id[256];
    assert_int_equal(ata_identify_dev(r, 1, 0, id) & (ST_ERR | ST_BSY | ST_DRQ), 0);
    assert_int_equal(id[60] | id[61] << 16, (16 << 20) / 512);
    assert_int_equal(ata_identify_dev(r, 1, 1, id) & (ST_ERR | ST_BSY | ST_DRQ), 0);
    assert_int_equal(id[60] | id[61] << 16, (32 << 20) / 512);
    /* index -1 takes the first free position. */
    int idx = -1;
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open("driver=null,size=1M", NULL, &err);
    assert_true(vd_ide_attach(r->ide, -1, blk, "SER", &idx, &err));
    assert_int_equal(idx, 0);
    r->blk[0] = blk;
    assert_false(vd_ide_attach(r->ide, 3, blk, NULL, NULL, &err));
    g_clear_error(&err);
    assert_false(vd_ide_attach(r->ide, 4, blk, NULL, NULL, &err));
    g_clear_error(&err);
    rig_free(r);
}

/* LBA48 registers are two-deep FIFOs; HOB selects the previous byte; a write clears HOB. */
static void test_hob_fifo(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    ata_select(r, 0, 0);
    const uint8_t first[4] = { 0x11, 0x22, 0x33, 0x44 }, second[4] = { 0x55, 0x66, 0x77, 0x88 };
    for (int i = 0; i < 4; i++) {
        outb(r, p + 2 + i, first[i]);
    }
    for (int i = 0; i < 4; i++) {
        outb(r, p + 2 + i, second[i]);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(inb(r, p + 2 + i), second[i]);
    }
    outb(r, ctl_port(0), 0x80);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(inb(r, p + 2 + i), first[i]);
    }
    outb(r, p + 1, 0);          /* any command-block write clears HOB */
    assert_int_equal(inb(r, p + 2), second[0]);
    rig_free(r);
}

/* nIEN keeps the line low (and the BMDMA INTR bit clear) while status still reports. */
static void test_nien(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    bm_clear_status(r, 0);
    outb(r, ctl_port(0), 0x02);
    ata_select(r, 0, 0);
    ata_command(r, 0, 0xe5);            /* CHECK POWER MODE */
    rig_settle(r);
    assert_false(vd_irq_level(r->bus, 14));
    assert_int_equal(r->raises[14], 0);
    assert_int_equal(bm_status(r, 0) & 0x04, 0);
    assert_int_equal(inb(r, ctl_port(0)), ST_DRDY | ST_DSC);
    /* The interrupt is pending: clearing nIEN shows it, reading status acknowledges it. */
    outb(r, ctl_port(0), 0x00);
    assert_true(vd_irq_level(r->bus, 14));
    assert_true(bm_status(r, 0) & 0x04);
    inb(r, cmd_port(0) + 7);
    assert_false(vd_irq_level(r->bus, 14));
    /* Alternate status does not acknowledge. */
    ata_command(r, 0, 0xe5);
    assert_true(rig_wait_irq(r, 0));
    inb(r, ctl_port(0));
    assert_true(vd_irq_level(r->bus, 14));
    inb(r, cmd_port(0) + 7);
    assert_false(vd_irq_level(r->bus, 14));
    rig_free(r);
}

/* SRST: BSY while asserted, signature and ready after; an unfinished PIO transfer is dropped. */
static void test_srst(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    rig_attach(r, 1, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    ata_select(r, 0, 1);
    ata_command(r, 0, 0xec);
    assert_true(rig_wait_irq(r, 0));
    assert_true(inb(r, p + 7) & ST_DRQ);
    inw(r, p);                           /* take one word of 256 */
    outb(r, ctl_port(0), 0x04);
    assert_true(inb(r, ctl_port(0)) & ST_BSY);
    outb(r, ctl_port(0), 0x00);
    /* Reset selects device 0 and both show the signature. */
    assert_int_equal(inb(r, ctl_port(0)), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 6) & 0x10, 0);
    assert_int_equal(inb(r, p + 2), 1);
    assert_int_equal(inb(r, p + 1), 0x01);
    ata_select(r, 0, 1);
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 3), 1);
    /* The data port no longer delivers anything. */
    assert_int_equal(inw(r, p), 0xffff);
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* Sum of the 512 IDENTIFY bytes, which must be 0 mod 256. */
static uint8_t identify_sum(const uint16_t id[256])
{
    uint8_t s = 0;
    for (int i = 0; i < 256; i++) {
        s += (id[i] & 0xff) + (id[i] >> 8);
    }
    return s;
}

/* IDENTIFY words 10-19 of a drive as a string. */
static char *identify_serial(Rig *r, unsigned unit)
{
    uint16_t id[256];
    assert_int_equal(ata_identify_dev(r, 0, unit, id), ST_DRDY | ST_DSC);
    char *serial = g_malloc0(21);
    for (int i = 0; i < 10; i++) {
        serial[2 * i] = id[10 + i] >> 8;
        serial[2 * i + 1] = id[10 + i];
    }
    return serial;
}

/* Without serial=: two images, two serials; the same image opened again later, the same serial. */
static void test_default_serial_per_image(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "file=%F");
    rig_attach(r, 1, "file=%F");
    g_autofree char *s0 = identify_serial(r, 0);
    g_autofree char *s1 = identify_serial(r, 1);
    assert_string_not_equal(s0, s1);
    g_autofree char *path = g_steal_pointer(&r->path[0]);   /* keep the image past rig_free */
    rig_free(r);
    Rig *r2 = rig_new();
    g_autofree char *o = g_strdup_printf("file=%s", path);
    rig_attach(r2, 0, o);
    g_autofree char *s2 = identify_serial(r2, 0);
    assert_string_equal(s0, s2);
    rig_free(r2);
    unlink(path);
}

/* IDENTIFY: capacity, feature words, strings, checksum. */
static void test_identify(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=300G");   /* more than 2^28 sectors */
    uint16_t id[256];
    assert_int_equal(ata_identify_dev(r, 0, 0, id), ST_DRDY | ST_DSC);
    uint64_t n = 300ull * (1 << 30) / 512;
    assert_int_equal(id[0], 0x0040);
    assert_int_equal(id[60] | (uint32_t)id[61] << 16, 0x0fffffff);
    assert_int_equal(id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48, n);
    assert_int_equal(id[47] & 0xff00, 0x8000);
    assert_true((id[47] & 0xff) >= 1);
    assert_true(id[49] & (1 << 9));
    assert_true(id[49] & (1 << 8));
    assert_true(id[82] & (1 << 5));
    assert_true(id[82] & (1 << 14));
    assert_int_equal(id[83] & 0xc000, 0x4000);
    assert_true(id[83] & (1 << 10));
    assert_true(id[83] & (1 << 12));
    assert_true(id[83] & (1 << 13));
    assert_int_equal(id[84] & 0xc000, 0x4000);
    assert_true(id[84] & (1 << 6));
    assert_true(id[85] & (1 << 5));        /* null driver: writeback default */
    assert_true(id[86] & (1 << 10));
    assert_true(id[86] & (1 << 12));
    assert_true(id[86] & (1 << 13));
    assert_int_equal(id[87] & 0xc000, 0x4000);
    assert_true(id[87] & (1 << 6));
    assert_int_equal(id[255] & 0xff, 0xa5);
    assert_int_equal(identify_sum(id), 0);
    char model[41];
    for (int i = 0; i < 20; i++) {
        model[2 * i] = id[27 + i] >> 8;
        model[2 * i + 1] = id[27 + i];
    }
    model[40] = 0;
    assert_memory_equal(model, "VDISK HARDDISK ", 15);
    char serial[21];
    for (int i = 0; i < 10; i++) {
        serial[2 * i] = id[10 + i] >> 8;
        serial[2 * i + 1] = id[10 + i];
    }
    serial[20] = 0;
    /* No serial=: the image's own id, space padded. */
    g_autofree char *want = g_strdup_printf("%-20s", vd_blk_unique_id(r->blk[0]));
    assert_string_equal(serial, want);
    /* The checksum stays right when settings change the data. */
    ata_tf28(r, 0, 0, 0, 8, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6) & ST_ERR, 0);
    ata_tf28(r, 0, 0, 0, 0x22, 0x03);
    assert_int_equal(ata_nodata(r, 0, 0xef) & ST_ERR, 0);
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[59], 0x0108);
    assert_true(id[63] & 0x0400);
    assert_int_equal(identify_sum(id), 0);
    rig_free(r);
}

/* A small disk reports its exact capacity in both the 28- and 48-bit words. */
static void test_identify_small(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=1000448");   /* 1954 sectors */
    uint16_t id[256];
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[60] | (uint32_t)id[61] << 16, 1954);
    assert_int_equal(id[100] | (uint32_t)id[101] << 16, 1954);
    assert_int_equal(id[102] | id[103], 0);
    assert_int_equal(identify_sum(id), 0);
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pci_function),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_absent_devices),
        cmocka_unit_test(test_master_and_slave),
        cmocka_unit_test(test_hob_fifo),
        cmocka_unit_test(test_nien),
        cmocka_unit_test(test_srst),
        cmocka_unit_test(test_identify),
        cmocka_unit_test(test_identify_small),
        cmocka_unit_test(test_default_serial_per_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
