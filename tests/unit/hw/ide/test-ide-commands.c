/*
 * test-ide-commands.c - the ATA command table through the PIO path: every
 * implemented opcode, unknown opcodes, LBA28/LBA48/CHS addressing and their
 * boundaries, sector counts of 0, READ/WRITE MULTIPLE, power commands.
 */
#include "ide-test.h"

#include <string.h>

#define SECTORS_8M ((8u << 20) / 512)

/* The opcodes the disk implements (NOP and IDENTIFY PACKET DEVICE abort by definition). */
static const uint8_t implemented[] = {
    0x00, 0x06, 0x20, 0x21, 0x24, 0x25, 0x27, 0x29, 0x30, 0x31, 0x34, 0x35, 0x39, 0x3d, 0x40, 0x41, 0x42,
    0x70, 0x90, 0x91, 0xa1, 0xc4, 0xc5, 0xc6, 0xc8, 0xca, 0xce, 0xe0, 0xe1, 0xe2, 0xe3, 0xe5, 0xe6,
    0xe7, 0xea, 0xec, 0xef, 0xf8,
};

/* True if op is in implemented[]. */
static bool is_implemented(unsigned op)
{
    for (size_t i = 0; i < sizeof(implemented); i++) {
        if (implemented[i] == op) {
            return true;
        }
    }
    return false;
}

/* Every opcode outside the table completes at once with ERR + ABRT and an interrupt. */
static void test_unknown_opcodes_abort(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    unsigned checked = 0;
    for (unsigned op = 0; op < 256; op++) {
        if (is_implemented(op)) {
            continue;
        }
        ata_select(r, 0, 0);
        unsigned before = r->raises[14];
        uint8_t st = ata_nodata(r, 0, op);
        assert_int_equal(r->raises[14], before + 1);
        assert_int_equal(st, ST_DRDY | ST_DSC | ST_ERR);
        assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
        checked++;
    }
    assert_int_equal(checked, 256 - sizeof(implemented));
    /* NOP and IDENTIFY PACKET DEVICE: ABRT too, as ATA defines for a disk. */
    assert_int_equal(ata_nodata(r, 0, 0x00), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ata_nodata(r, 0, 0xa1), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    /* The disk still works afterwards. */
    uint16_t id[256];
    assert_int_equal(ata_identify_dev(r, 0, 0, id), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* WRITE SECTORS then READ SECTORS (28-bit), checked against the image through the backend. */
static void test_pio_lba28_roundtrip(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    uint8_t out[4 * 512], in[4 * 512], disk[4 * 512];
    fill_pattern(out, sizeof(out), 1);
    VdBlockStats s0 = rig_stats(blk);
    ata_tf28(r, 0, 0, 100, 4, 0);
    ata_command(r, 0, 0x30);
    unsigned before = r->raises[14];
    assert_int_equal(ata_pio_out(r, 0, out, 4, 1), ST_DRDY | ST_DSC);
    /* Writes: one interrupt per block after the first, plus completion. */
    assert_int_equal(r->raises[14] - before, 4);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.writes - s0.writes, 1);      /* one backend request for the chunk */
    assert_int_equal(s1.bytes_written - s0.bytes_written, sizeof(out));
    assert_int_equal(vd_blk_pread_sync(blk, 100 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, out, sizeof(out));

    ata_tf28(r, 0, 0, 100, 4, 0);
    ata_command(r, 0, 0x20);
    before = r->raises[14];
    assert_int_equal(ata_pio_in(r, 0, in, 4, 1), ST_DRDY | ST_DSC);
    assert_int_equal(r->raises[14] - before, 4);     /* one per block, none after the last */
    assert_memory_equal(in, out, sizeof(in));
    /* 32-bit data port accesses move two words at a time. */
    ata_tf28(r, 0, 0, 101, 1, 0);
    ata_command(r, 0, 0x21);
    assert_true(rig_wait_irq(r, 0));
    assert_true(inb(r, cmd_port(0) + 7) & ST_DRQ);
    for (int i = 0; i < 128; i++) {
        uint32_t v = inl(r, cmd_port(0));
        memcpy(in + 4 * i, &v, 4);
    }
    assert_memory_equal(in, out + 512, 512);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* A sector count of 0 means 256 sectors (28-bit) and 65536 (48-bit). */
static void test_count_zero(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=null,size=64M");
    static uint8_t buf[65536 * 512];
    VdBlockStats s0 = rig_stats(blk);
    ata_tf28(r, 0, 0, 0, 0, 0);
    ata_command(r, 0, 0x20);
    assert_int_equal(ata_pio_in(r, 0, buf, 256, 1), ST_DRDY | ST_DSC);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.bytes_read - s0.bytes_read, 256 * 512);
    ata_tf48(r, 0, 0, 0, 0);
    ata_command(r, 0, 0x24);
    assert_int_equal(ata_pio_in(r, 0, buf, 65536, 1), ST_DRDY | ST_DSC);
    VdBlockStats s2 = rig_stats(blk);
    assert_int_equal(s2.bytes_read - s1.bytes_read, 65536ull * 512);
    /* The data port is quiet afterwards. */
    assert_int_equal(inw(r, cmd_port(0)), 0xffff);
    rig_free(r);
}

/* LBA28: the last addressable sectors work, one past the end is IDNF; 28-bit caps at 0FFFFFFFh. */
static void test_lba28_boundaries(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t buf[2 * 512], out[512];
    fill_pattern(out, 512, 7);
    ata_tf28(r, 0, 0, SECTORS_8M - 1, 1, 0);
    ata_command(r, 0, 0x30);
    assert_int_equal(ata_pio_out(r, 0, out, 1, 1), ST_DRDY | ST_DSC);
    assert_int_equal(vd_blk_pread_sync(blk, (uint64_t)(SECTORS_8M - 1) * 512, buf, 512), 0);
    assert_memory_equal(buf, out, 512);
    /* Ending one sector past the end: IDNF, nothing moves, nothing reaches the backend. */
    VdBlockStats s0 = rig_stats(blk);
    ata_tf28(r, 0, 0, SECTORS_8M - 1, 2, 0);
    assert_int_equal(ata_nodata(r, 0, 0x20), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    ata_tf28(r, 0, 0, SECTORS_8M, 1, 0);
    assert_int_equal(ata_nodata(r, 0, 0x30), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    assert_int_equal(inw(r, cmd_port(0)), 0xffff);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.reads + s1.writes, s0.reads + s0.writes);
    rig_free(r);

    /* A disk beyond 2^28 sectors: READ NATIVE MAX caps, the EXT form does not. */
    r = rig_new();
    rig_attach(r, 0, "driver=null,size=200G");
    uint64_t n = 200ull * (1 << 30) / 512;
    ata_tf28(r, 0, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xf8), ST_DRDY | ST_DSC);
    assert_int_equal(ata_read_lba28(r, 0), 0x0fffffff);
    ata_tf48(r, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0x27), ST_DRDY | ST_DSC);
    assert_int_equal(ata_read_lba48(r, 0), n - 1);
    /* 28-bit commands address the 0FFFFFFFh sectors of words 60-61: 0FFFFFFEh is the last. */
    ata_tf28(r, 0, 0, 0x0ffffffe, 1, 0);
    ata_command(r, 0, 0x20);
    assert_int_equal(ata_pio_in(r, 0, buf, 1, 1), ST_DRDY | ST_DSC);
    ata_tf28(r, 0, 0, 0x0fffffff, 1, 0);
    assert_int_equal(ata_nodata(r, 0, 0x20), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    ata_tf28(r, 0, 0, 0x0ffffffe, 2, 0);
    assert_int_equal(ata_nodata(r, 0, 0x30), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    /* The same sector through a 48-bit command is fine. */
    ata_tf48(r, 0, 0, 0x0fffffff, 2);
    ata_command(r, 0, 0x24);
    assert_int_equal(ata_pio_in(r, 0, buf, 2, 1), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* LBA48 beyond 2^28 and 2^32 sectors: data lands where the 48-bit address says. */
static void test_lba48_boundaries(void **state)
{
    const uint64_t sectors = (1ull << 32) + 64;            /* 2 TiB + 32 KiB, sparse */
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach_sized(r, 0, "file=%F", sectors * 512);
    uint8_t out[2 * 512], disk[2 * 512];
    const uint64_t lbas[] = { (1ull << 28) - 1, 1ull << 28, (1ull << 32) - 1, sectors - 2 };
    for (size_t i = 0; i < G_N_ELEMENTS(lbas); i++) {
        fill_pattern(out, sizeof(out), 100 + i);
        ata_tf48(r, 0, 0, lbas[i], 2);
        ata_command(r, 0, 0x34);
        assert_int_equal(ata_pio_out(r, 0, out, 2, 1), ST_DRDY | ST_DSC);
        assert_int_equal(vd_blk_pread_sync(blk, lbas[i] * 512, disk, sizeof(disk)), 0);
        assert_memory_equal(disk, out, sizeof(out));
        uint8_t in[2 * 512];
        ata_tf48(r, 0, 0, lbas[i], 2);
        ata_command(r, 0, 0x24);
        assert_int_equal(ata_pio_in(r, 0, in, 2, 1), ST_DRDY | ST_DSC);
        assert_memory_equal(in, out, sizeof(out));
    }
    /* Past the end: IDNF. */
    ata_tf48(r, 0, 0, sectors - 1, 2);
    assert_int_equal(ata_nodata(r, 0, 0x24), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    ata_tf48(r, 0, 0, 0xffffffffffffull, 1);
    assert_int_equal(ata_nodata(r, 0, 0x34), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    rig_free(r);
}

/* SET MULTIPLE MODE and READ/WRITE MULTIPLE (EXT): DRQ blocks of the multiple count. */
static void test_multiple(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t out[10 * 512], in[10 * 512];
    fill_pattern(out, sizeof(out), 3);
    /* Disabled at power-on: READ MULTIPLE aborts. */
    ata_tf28(r, 0, 0, 0, 1, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc4), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    /* Not a power of two, or above the maximum: ABRT. */
    ata_tf28(r, 0, 0, 0, 3, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC | ST_ERR);
    ata_tf28(r, 0, 0, 0, 32, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC | ST_ERR);
    ata_tf28(r, 0, 0, 0, 4, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC);

    ata_tf28(r, 0, 0, 20, 10, 0);
    ata_command(r, 0, 0xc5);
    unsigned before = r->raises[14];
    assert_int_equal(ata_pio_out(r, 0, out, 10, 4), ST_DRDY | ST_DSC);
    assert_int_equal(r->raises[14] - before, 3);     /* blocks 4+4+2: two DRQ interrupts + completion */
    ata_tf28(r, 0, 0, 20, 10, 0);
    ata_command(r, 0, 0xc4);
    before = r->raises[14];
    assert_int_equal(ata_pio_in(r, 0, in, 10, 4), ST_DRDY | ST_DSC);
    assert_int_equal(r->raises[14] - before, 3);
    assert_memory_equal(in, out, sizeof(in));

    /* The EXT forms. */
    fill_pattern(out, sizeof(out), 4);
    ata_tf48(r, 0, 0, 40, 10);
    ata_command(r, 0, 0x39);
    assert_int_equal(ata_pio_out(r, 0, out, 10, 4), ST_DRDY | ST_DSC);
    ata_tf48(r, 0, 0, 40, 10);
    ata_command(r, 0, 0x29);
    assert_int_equal(ata_pio_in(r, 0, in, 10, 4), ST_DRDY | ST_DSC);
    assert_memory_equal(in, out, sizeof(in));
    uint8_t disk[10 * 512];
    assert_int_equal(vd_blk_pread_sync(blk, 40 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, out, sizeof(out));
    /* SET MULTIPLE 0 disables it again. */
    ata_tf28(r, 0, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC);
    ata_tf28(r, 0, 0, 0, 1, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc5), ST_DRDY | ST_DSC | ST_ERR);
    rig_free(r);
}

/* READ VERIFY reads through the backend and moves no data; SEEK checks the address. */
static void test_verify_and_seek(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    VdBlockStats s0 = rig_stats(blk);
    ata_tf28(r, 0, 0, 10, 8, 0);
    assert_int_equal(ata_nodata(r, 0, 0x40), ST_DRDY | ST_DSC);
    ata_tf28(r, 0, 0, 10, 8, 0);
    assert_int_equal(ata_nodata(r, 0, 0x41), ST_DRDY | ST_DSC);
    ata_tf48(r, 0, 0, 10, 300);
    assert_int_equal(ata_nodata(r, 0, 0x42), ST_DRDY | ST_DSC);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.bytes_read - s0.bytes_read, (8 + 8 + 300) * 512);
    assert_int_equal(inw(r, cmd_port(0)), 0xffff);
    ata_tf48(r, 0, 0, SECTORS_8M - 1, 2);
    assert_int_equal(ata_nodata(r, 0, 0x42), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    /* A read error during verify is UNC with the failing LBA. */
    vd_blk_inject_error(blk, VD_FAULT_READ, 5, 1);
    ata_tf28(r, 0, 0, 77, 4, 0);
    assert_int_equal(ata_nodata(r, 0, 0x40), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_UNC);
    assert_int_equal(ata_read_lba28(r, 0), 77);

    ata_tf28(r, 0, 0, SECTORS_8M - 1, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0x70), ST_DRDY | ST_DSC);
    ata_tf28(r, 0, 0, SECTORS_8M, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0x70), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    rig_free(r);
}

/* CHS addressing with the default and an INITIALIZE DEVICE PARAMETERS geometry. */
static void test_chs(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint16_t p = cmd_port(0);
    uint8_t out[512], disk[512];
    /* Default 16 heads x 63 sectors: C/H/S 2/3/4 = (2*16+3)*63+3. */
    fill_pattern(out, 512, 9);
    outb(r, p + 6, 0xa0 | 3);
    outb(r, p + 2, 1);
    outb(r, p + 3, 4);
    outb(r, p + 4, 2);
    outb(r, p + 5, 0);
    ata_command(r, 0, 0x30);
    assert_int_equal(ata_pio_out(r, 0, out, 1, 1), ST_DRDY | ST_DSC);
    assert_int_equal(vd_blk_pread_sync(blk, ((2 * 16 + 3) * 63 + 3) * 512ull, disk, 512), 0);
    assert_memory_equal(disk, out, 512);
    /* Sector 0 and a head beyond the geometry are IDNF. */
    outb(r, p + 6, 0xa0);
    outb(r, p + 3, 0);
    assert_int_equal(ata_nodata(r, 0, 0x20), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, p + 1), ER_IDNF);
    /* 4 heads, 17 sectors per track. */
    outb(r, p + 6, 0xa0 | 3);
    outb(r, p + 2, 17);
    assert_int_equal(ata_nodata(r, 0, 0x91), ST_DRDY | ST_DSC);
    outb(r, p + 6, 0xa0 | 1);
    outb(r, p + 2, 1);
    outb(r, p + 3, 5);
    outb(r, p + 4, 7);
    outb(r, p + 5, 0);
    fill_pattern(out, 512, 10);
    ata_command(r, 0, 0x30);
    assert_int_equal(ata_pio_out(r, 0, out, 1, 1), ST_DRDY | ST_DSC);
    assert_int_equal(vd_blk_pread_sync(blk, ((7 * 4 + 1) * 17 + 4) * 512ull, disk, 512), 0);
    assert_memory_equal(disk, out, 512);
    outb(r, p + 6, 0xa0 | 4);              /* head 4 of 4 */
    assert_int_equal(ata_nodata(r, 0, 0x20), ST_DRDY | ST_DSC | ST_ERR);
    /* 0 sectors per track is refused. */
    outb(r, p + 2, 0);
    assert_int_equal(ata_nodata(r, 0, 0x91), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, p + 1), ER_ABRT);
    rig_free(r);
}

/* Power commands: CHECK POWER MODE follows STANDBY/IDLE; SLEEP aborts everything until SRST. */
static void test_power(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    ata_select(r, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 2), 0xff);
    assert_int_equal(ata_nodata(r, 0, 0xe0), ST_DRDY | ST_DSC);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 2), 0x00);
    assert_int_equal(ata_nodata(r, 0, 0xe1), ST_DRDY | ST_DSC);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 2), 0xff);
    assert_int_equal(ata_nodata(r, 0, 0xe2), ST_DRDY | ST_DSC);
    /* A media access leaves standby. */
    uint8_t buf[512];
    ata_tf28(r, 0, 0, 0, 1, 0);
    ata_command(r, 0, 0x20);
    ata_pio_in(r, 0, buf, 1, 1);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 2), 0xff);
    assert_int_equal(ata_nodata(r, 0, 0xe3), ST_DRDY | ST_DSC);
    assert_int_equal(ata_nodata(r, 0, 0xe6), ST_DRDY | ST_DSC);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, p + 1), ER_ABRT);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* EXECUTE DEVICE DIAGNOSTIC: signature on both, device 0 interrupts, even when device 1 is selected and absent. */
static void test_diagnostic(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t p = cmd_port(0);
    ata_tf28(r, 0, 0, 0x123456, 9, 0);
    ata_select(r, 0, 1);
    assert_int_equal(ata_nodata(r, 0, 0x90), ST_DRDY | ST_DSC);
    assert_int_equal(inb(r, p + 6) & 0x10, 0);   /* device 0 selected again */
    assert_int_equal(inb(r, p + 1), 0x01);
    assert_int_equal(inb(r, p + 2), 1);
    assert_int_equal(inb(r, p + 3), 1);
    assert_int_equal(inb(r, p + 4), 0);
    assert_int_equal(inb(r, p + 5), 0);
    rig_free(r);
}

/* SET FEATURES: transfer modes and look-ahead are accepted and shown; unknown subcommands abort. */
static void test_set_features_misc(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=null,size=16M");
    uint16_t id[256];
    ata_tf28(r, 0, 0, 0, 0x45, 0x03);
    assert_int_equal(ata_nodata(r, 0, 0xef), ST_DRDY | ST_DSC);
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[88] & 0xff00, 0x2000);
    ata_tf28(r, 0, 0, 0, 0x46, 0x03);            /* UDMA 6 is not offered */
    assert_int_equal(ata_nodata(r, 0, 0xef), ST_DRDY | ST_DSC | ST_ERR);
    ata_tf28(r, 0, 0, 0, 0, 0x55);
    assert_int_equal(ata_nodata(r, 0, 0xef), ST_DRDY | ST_DSC);
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[85] & (1 << 6), 0);
    ata_tf28(r, 0, 0, 0, 0, 0xaa);
    assert_int_equal(ata_nodata(r, 0, 0xef), ST_DRDY | ST_DSC);
    ata_identify_dev(r, 0, 0, id);
    assert_true(id[85] & (1 << 6));
    ata_tf28(r, 0, 0, 0, 0, 0x99);
    assert_int_equal(ata_nodata(r, 0, 0xef), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_opcodes_abort),
        cmocka_unit_test(test_pio_lba28_roundtrip),
        cmocka_unit_test(test_count_zero),
        cmocka_unit_test(test_lba28_boundaries),
        cmocka_unit_test(test_lba48_boundaries),
        cmocka_unit_test(test_multiple),
        cmocka_unit_test(test_verify_and_seek),
        cmocka_unit_test(test_chs),
        cmocka_unit_test(test_power),
        cmocka_unit_test(test_diagnostic),
        cmocka_unit_test(test_set_features_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
