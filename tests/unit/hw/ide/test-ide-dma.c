/*
 * test-ide-dma.c - SFF-8038i bus-master DMA: scatter/gather through PRD
 * tables, tables too long and too short, byte count 0 = 64 KiB, tables
 * without EOT, addresses outside RAM, direction mismatch, stopping the
 * engine, and I/O errors on both the DMA and the PIO paths.
 */
#include "ide-test.h"
#include "mock-driver.h"
#include "util/bswap.h"

#include <errno.h>
#include <string.h>

#define BM_ACTIVE 0x01
#define BM_ERROR  0x02
#define BM_INTR   0x04

#define PRD 0x2000

static const MockConfig mock_native = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };

/* Issue a 48-bit DMA command against an already written PRD table and start the engine. */
static void dma_go(Rig *r, uint8_t cmd, uint64_t lba, uint16_t n)
{
    bool to_mem = cmd == 0x25;
    bm_setup(r, 0, PRD, to_mem);
    ata_tf48(r, 0, 0, lba, n);
    ata_command(r, 0, cmd);
    bm_start(r, 0, to_mem);
}

/* Gather from three uneven regions, scatter back into three others. */
static void test_scatter_gather(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t *ram = vd_bus_ram(r->bus);
    const uint32_t wa[3] = { 0x10000, 0x30000, 0x50000 }, wc[3] = { 512, 1024, 2560 };
    fill_pattern(ram + 0x10000, 512, 1);
    fill_pattern(ram + 0x30000, 1024, 2);
    fill_pattern(ram + 0x50000, 2560, 3);
    prd_write(r, PRD, wa, wc, 3, true);
    dma_go(r, 0x35, 1000, 8);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_INTR);
    bm_stop(r, 0);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    uint8_t disk[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 1000 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, ram + 0x10000, 512);
    assert_memory_equal(disk + 512, ram + 0x30000, 1024);
    assert_memory_equal(disk + 1536, ram + 0x50000, 2560);

    const uint32_t ra[3] = { 0x200000, 0x210000, 0x220000 }, rc[3] = { 2048, 1024, 1024 };
    prd_write(r, PRD, ra, rc, 3, true);
    dma_go(r, 0x25, 1000, 8);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_INTR);
    bm_stop(r, 0);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_memory_equal(ram + 0x200000, disk, 2048);
    assert_memory_equal(ram + 0x210000, disk + 2048, 1024);
    assert_memory_equal(ram + 0x220000, disk + 3072, 1024);
    /* 28-bit READ DMA / WRITE DMA too. */
    fill_pattern(ram + 0x300000, 4096, 4);
    assert_int_equal(ata_dma(r, 0, 0, 0xca, 77, 8, 0x300000), ST_DRDY | ST_DSC);
    memset(ram + 0x400000, 0, 4096);
    assert_int_equal(ata_dma(r, 0, 0, 0xc8, 77, 8, 0x400000), ST_DRDY | ST_DSC);
    assert_memory_equal(ram + 0x400000, ram + 0x300000, 4096);
    rig_free(r);
}

/* A table longer than the transfer: the transfer completes, INTR=1 and ACTIVE stays 1. */
static void test_prd_long(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "file=%F");
    const uint32_t a[2] = { 0x10000, 0x20000 }, c[2] = { 4096, 4096 };
    prd_write(r, PRD, a, c, 2, true);
    dma_go(r, 0x25, 0, 8);                  /* 4 KiB of an 8 KiB table */
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ACTIVE | BM_INTR);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    bm_stop(r, 0);
    assert_int_equal(bm_status(r, 0) & BM_ACTIVE, 0);
    /* One entry bigger than the transfer, and a table without EOT that covers it: same. */
    const uint32_t one[1] = { 0x10000 }, big[1] = { 8192 };
    prd_write(r, PRD, one, big, 1, true);
    dma_go(r, 0x25, 0, 8);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ACTIVE | BM_INTR);
    inb(r, cmd_port(0) + 7);
    prd_write(r, PRD, a, c, 1, false);     /* exactly 4 KiB, but no EOT */
    dma_go(r, 0x25, 0, 8);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ACTIVE | BM_INTR);
    rig_free(r);
}

/*
 * A table shorter than the transfer: INTR=0, ACTIVE=0, ERROR=0, no interrupt,
 * no data, no backend I/O; the drive keeps waiting, and a corrected table finishes it.
 */
static void test_prd_short(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t *ram = vd_bus_ram(r->bus);
    uint8_t pattern[4096];
    fill_pattern(pattern, sizeof(pattern), 5);
    assert_int_equal(vd_blk_pwrite_sync(blk, 64 * 512, pattern, sizeof(pattern), 0), 0);
    memset(ram + 0x10000, 0xee, 8192);
    const uint32_t a[2] = { 0x10000, 0x10800 }, c[2] = { 1024, 1024 };
    prd_write(r, PRD, a, c, 2, true);
    VdBlockStats s0 = rig_stats(blk);
    dma_go(r, 0x25, 64, 8);
    rig_settle(r);
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), 0);
    assert_false(vd_irq_level(r->bus, 14));
    assert_int_equal(inb(r, ctl_port(0)), ST_DRDY | ST_DSC | ST_DRQ);
    assert_int_equal(rig_stats(blk).reads, s0.reads);
    assert_int_equal(ram[0x10000], 0xee);
    /* Fix the table and start again. */
    const uint32_t a2[1] = { 0x10000 }, c2[1] = { 4096 };
    prd_write(r, PRD, a2, c2, 1, true);
    bm_stop(r, 0);
    bm_start(r, 0, true);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_INTR);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_memory_equal(ram + 0x10000, pattern, sizeof(pattern));
    assert_int_equal(ram[0x10000 + 4096], 0xee);

    /* A short table on a write writes nothing; SRST ends the command. */
    prd_write(r, PRD, a, c, 1, true);
    VdBlockStats s1 = rig_stats(blk);
    dma_go(r, 0x35, 64, 8);
    rig_settle(r);
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), 0);
    assert_int_equal(rig_stats(blk).writes, s1.writes);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    bm_stop(r, 0);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    uint8_t disk[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 64 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, pattern, sizeof(pattern));
    rig_free(r);
}

/* A byte count of 0 means 64 KiB. */
static void test_prd_zero_count(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t *ram = vd_bus_ram(r->bus);
    g_autofree uint8_t *pattern = g_malloc(128 * 1024);
    fill_pattern(pattern, 128 * 1024, 6);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, pattern, 128 * 1024, 0), 0);
    const uint32_t a[2] = { 0x100000, 0x300000 }, c[2] = { 0, 0 };
    prd_write(r, PRD, a, c, 2, true);
    dma_go(r, 0x25, 0, 256);
    assert_true(rig_wait_irq(r, 0));
    /* Exactly covered: ACTIVE clear. */
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_INTR);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_memory_equal(ram + 0x100000, pattern, 65536);
    assert_memory_equal(ram + 0x300000, pattern + 65536, 65536);
    rig_free(r);
}

/* A table with no EOT that never covers the transfer stops after one 64 KiB table: ERROR, no hang. */
static void test_prd_no_eot(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    unsigned n = VD_IDE_PRD_MAX_ENTRIES + 16;
    g_autofree uint32_t *a = g_new(uint32_t, n), *c = g_new(uint32_t, n);
    for (unsigned i = 0; i < n; i++) {
        a[i] = 0x400000;
        c[i] = 2;                          /* 2 bytes each: 16 KiB for the whole table */
    }
    prd_write(r, PRD, a, c, n, false);
    VdBlockStats s0 = rig_stats(blk);
    dma_go(r, 0x25, 0, 64);                 /* 32 KiB */
    rig_settle(r);
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ERROR);
    assert_int_equal(rig_stats(blk).reads, s0.reads);
    /* The guest recovers with SRST and a clean engine. */
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(ata_dma(r, 0, 0, 0x25, 0, 8, 0x500000), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* PRD tables and regions outside guest RAM are bus errors; nothing is read or written. */
static void test_prd_outside_ram(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    VdBlockStats s0 = rig_stats(blk);
    /* The table itself beyond RAM. */
    bm_setup(r, 0, 0xfffff000, true);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x25);
    bm_start(r, 0, true);
    rig_settle(r);
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ERROR);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    /* A region straddling the end of RAM, and one wholly above it. */
    const uint32_t edge[1] = { RIG_RAM - 2048 }, above[1] = { 0xf0000000 }, c[1] = { 4096 };
    const uint32_t *where[2] = { edge, above };
    for (int i = 0; i < 2; i++) {
        prd_write(r, PRD, where[i], c, 1, true);
        dma_go(r, i ? 0x35 : 0x25, 0, 8);
        rig_settle(r);
        assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_ERROR);
        assert_false(vd_irq_level(r->bus, 14));
        outb(r, ctl_port(0), 0x04);
        outb(r, ctl_port(0), 0x00);
    }
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.reads + s1.writes, s0.reads + s0.writes);
    rig_free(r);
}

/* The engine's direction must match the command: a mismatch is a bus error and ABRT. */
static void test_direction_mismatch(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    VdBlockStats s0 = rig_stats(blk);
    bm_setup(r, 0, PRD, false);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x25);               /* a read, but the engine is set to read memory */
    bm_start(r, 0, false);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR), BM_ERROR);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(rig_stats(blk).reads, s0.reads);
    rig_free(r);
}

/* START before the command works too (the transfer begins when both are there). */
static void test_start_before_command(void **state)
{
    Rig *r = rig_new();
    rig_attach(r, 0, "file=%F");
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    bm_setup(r, 0, PRD, true);
    bm_start(r, 0, true);
    assert_int_equal(bm_status(r, 0) & BM_ACTIVE, BM_ACTIVE);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x25);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(bm_status(r, 0) & (BM_ACTIVE | BM_ERROR | BM_INTR), BM_INTR);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    rig_free(r);
}

/* Clearing START while a read is in flight discards its data and ends the command with ABRT. */
static void test_stop_during_read(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=mock,size=8M");
    memset(mock_data(), 0x5a, 4096);
    uint8_t *ram = vd_bus_ram(r->bus);
    memset(ram + 0x10000, 0, 4096);
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    mock_hold(MOCK_READ);
    dma_go(r, 0x25, 0, 8);
    mock_wait_held(MOCK_READ, 1);
    assert_true(inb(r, ctl_port(0)) & ST_BSY);
    bm_stop(r, 0);
    assert_int_equal(bm_status(r, 0) & BM_ACTIVE, 0);
    mock_release(MOCK_READ);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ram[0x10000], 0);
    rig_free(r);
}

/* DMA: a read error is UNC, a write error ABRT, both with the failing LBA (48-bit). */
static void test_dma_io_errors(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
    assert_int_equal(ata_dma(r, 0, 0, 0x25, 4321, 8, 0x10000), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_UNC);
    assert_int_equal(ata_read_lba48(r, 0), 4321);
    assert_int_equal(bm_status(r, 0) & BM_ACTIVE, 0);
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    assert_int_equal(ata_dma(r, 0, 0, 0x35, 9876, 8, 0x10000), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ata_read_lba48(r, 0), 9876);
    /* 28-bit READ DMA reports in the 28-bit registers. */
    vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
    assert_int_equal(ata_dma(r, 0, 0, 0xc8, 555, 8, 0x10000), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_UNC);
    assert_int_equal(ata_read_lba28(r, 0), 555);
    /* Out of range: IDNF before any DMA. */
    assert_int_equal(ata_dma(r, 0, 0, 0x25, (8 << 20) / 512 - 4, 8, 0x10000), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_IDNF);
    /* And the next command works. */
    assert_int_equal(ata_dma(r, 0, 0, 0x25, 0, 8, 0x10000), ST_DRDY | ST_DSC);
    assert_true(rig_stats(blk).errors >= 3);
    rig_free(r);
}

/* PIO: a read error is UNC (no data offered), a write error ABRT; the LBA is reported. */
static void test_pio_io_errors(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint8_t buf[4 * 512];
    vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
    ata_tf28(r, 0, 0, 300, 4, 0);
    ata_command(r, 0, 0x20);
    assert_int_equal(ata_pio_in(r, 0, buf, 4, 1), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_UNC);
    assert_int_equal(ata_read_lba28(r, 0), 300);
    assert_int_equal(inw(r, cmd_port(0)), 0xffff);
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    ata_tf48(r, 0, 0, 700, 4);
    ata_command(r, 0, 0x34);
    assert_int_equal(ata_pio_out(r, 0, buf, 4, 1), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ata_read_lba48(r, 0), 700);
    rig_free(r);
}

/* Sector count 0: 65536 sectors for READ DMA EXT, 256 for READ DMA. */
static void test_dma_count_zero(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=null,size=64M");
    VdBlockStats s0 = rig_stats(blk);
    assert_int_equal(ata_dma(r, 0, 0, 0x25, 0, 0, 0x100000), ST_DRDY | ST_DSC);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.bytes_read - s0.bytes_read, 65536ull * 512);
    assert_int_equal(ata_dma(r, 0, 0, 0xc8, 0, 0, 0x100000), ST_DRDY | ST_DSC);
    assert_int_equal(rig_stats(blk).bytes_read - s1.bytes_read, 256 * 512);
    rig_free(r);
}

/* The secondary channel has its own engine at BAR4+8 and its own IRQ. */
static void test_secondary_channel(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 3, "file=%F");
    uint8_t *ram = vd_bus_ram(r->bus);
    fill_pattern(ram + 0x10000, 4096, 12);
    assert_int_equal(ata_dma(r, 1, 1, 0x35, 8, 8, 0x10000), ST_DRDY | ST_DSC);
    assert_true(r->raises[15] >= 1);
    assert_int_equal(r->raises[14], 0);
    uint8_t disk[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 8 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, ram + 0x10000, sizeof(disk));
    assert_int_equal(bm_status(r, 0) & BM_INTR, 0);
    rig_free(r);
}

/* Write one 512-byte block of DSM range entries at gpa. */
static void dsm_block(Rig *r, uint32_t gpa, const uint64_t *lba, const uint16_t *count, unsigned n)
{
    uint8_t *e = vd_bus_ram(r->bus) + gpa;
    memset(e, 0, 512);
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = (lba[i] & 0xffffffffffffull) | (uint64_t)count[i] << 48;
        vd_st_le64(e + 8 * i, v);
    }
}

/* Issue DATA SET MANAGEMENT with the given features and block count over a one-entry PRD. */
static uint8_t dsm(Rig *r, uint8_t feature, uint16_t blocks, uint32_t gpa)
{
    const uint32_t a[1] = { gpa }, c[1] = { blocks * 512u };
    prd_write(r, PRD, a, c, 1, true);
    bm_setup(r, 0, PRD, false);
    ata_tf48(r, 0, 0, 0, blocks);
    outb(r, cmd_port(0) + 1, 0);
    outb(r, cmd_port(0) + 1, feature);
    ata_command(r, 0, 0x06);
    bm_start(r, 0, false);
    if (!rig_wait_irq(r, 0)) {
        fail_msg("no DSM completion");
    }
    bm_stop(r, 0);
    return inb(r, cmd_port(0) + 7);
}

/* DATA SET MANAGEMENT / TRIM: ranges become host discards; bad ranges and fields abort. */
static void test_dsm_trim(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint16_t id[256];
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[169] & 1, 1);
    assert_int_equal(id[105], 8);
    uint8_t data[32 * 512], back[32 * 512];
    fill_pattern(data, sizeof(data), 13);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, data, sizeof(data), 0), 0);

    const uint64_t lba[3] = { 8, 0, 24 };
    const uint16_t cnt[3] = { 8, 0, 8 };          /* the middle entry is unused */
    dsm_block(r, 0x30000, lba, cnt, 3);
    VdBlockStats s0 = rig_stats(blk);
    assert_int_equal(dsm(r, 0x01, 1, 0x30000), ST_DRDY | ST_DSC);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.discards - s0.discards, 2);
    assert_true(s1.host_discards > s0.host_discards);
    assert_int_equal(vd_blk_pread_sync(blk, 0, back, sizeof(back)), 0);
    assert_memory_equal(back, data, 8 * 512);
    for (size_t i = 8 * 512; i < 16 * 512; i++) {
        assert_int_equal(back[i], 0);
    }
    assert_memory_equal(back + 16 * 512, data + 16 * 512, 8 * 512);

    /* A range past the end aborts before anything is discarded. */
    const uint64_t bad[2] = { 40, (8 << 20) / 512 - 4 };
    const uint16_t badc[2] = { 8, 8 };
    dsm_block(r, 0x30000, bad, badc, 2);
    assert_int_equal(dsm(r, 0x01, 1, 0x30000), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(rig_stats(blk).discards, s1.discards);
    /* No TRIM bit, no blocks, too many blocks: abort. */
    ata_tf48(r, 0, 0, 0, 1);
    outb(r, cmd_port(0) + 1, 0);
    assert_int_equal(ata_nodata(r, 0, 0x06), ST_DRDY | ST_DSC | ST_ERR);
    ata_tf48(r, 0, 0, 0, 0);
    outb(r, cmd_port(0) + 1, 1);
    assert_int_equal(ata_nodata(r, 0, 0x06), ST_DRDY | ST_DSC | ST_ERR);
    ata_tf48(r, 0, 0, 0, 9);
    outb(r, cmd_port(0) + 1, 1);
    assert_int_equal(ata_nodata(r, 0, 0x06), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    rig_free(r);

    /* discard=ignore: TRIM is not offered and the command aborts. */
    r = rig_new();
    rig_attach(r, 0, "file=%F,discard=ignore");
    ata_identify_dev(r, 0, 0, id);
    assert_int_equal(id[169] & 1, 0);
    ata_tf48(r, 0, 0, 0, 1);
    outb(r, cmd_port(0) + 1, 1);
    assert_int_equal(ata_nodata(r, 0, 0x06), ST_DRDY | ST_DSC | ST_ERR);
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scatter_gather),
        cmocka_unit_test(test_prd_long),
        cmocka_unit_test(test_prd_short),
        cmocka_unit_test(test_prd_zero_count),
        cmocka_unit_test(test_prd_no_eot),
        cmocka_unit_test(test_prd_outside_ram),
        cmocka_unit_test(test_direction_mismatch),
        cmocka_unit_test(test_start_before_command),
        cmocka_unit_test(test_stop_during_read),
        cmocka_unit_test(test_dma_io_errors),
        cmocka_unit_test(test_pio_io_errors),
        cmocka_unit_test(test_dma_count_zero),
        cmocka_unit_test(test_secondary_channel),
        cmocka_unit_test(test_dsm_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
