/*
 * test-ide.c - the ATA disk through vdisk-vmm, driven by the reference guest
 * driver (ata-guest.c) over the qtest-like protocol.  Host behaviour is
 * proven with the backend counters (`blockstats`).
 */
#include "ata-guest.h"

#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define PRIMARY 0

typedef struct Fixture {
    VdQtest *q;
    char *image;
    AtaChannel ch[2];
    unsigned nch;
    AtaDisk disk;
} Fixture;

/* Create a sparse image file of size bytes; returns its path. */
static char *make_image(uint64_t size)
{
    GError *err = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("vdisk-ide-XXXXXX.img", &path, &err);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
    return path;
}

/* Start a VMM with one IDE drive (drive0, index 0) on a fresh image, and probe it. */
static Fixture *start(uint64_t size, const char *backend_opts)
{
    Fixture *f = g_new0(Fixture, 1);
    f->image = make_image(size);
    g_autofree char *args = g_strdup_printf("--drive file=%s,if=ide,index=0,id=drive0%s%s", f->image,
                                            backend_opts ? "," : "", backend_opts ? backend_opts : "");
    f->q = vd_qtest_start(args);
    f->nch = ata_discover(f->q, f->ch);
    assert_int_equal(f->nch, 1);
    assert_true(ata_probe(&f->disk, f->q, &f->ch[PRIMARY], 0));
    return f;
}

/* Quit the VMM (which must exit cleanly) and delete the image. */
static void stop(Fixture *f)
{
    assert_int_equal(vd_qtest_quit(f->q), 0);
    g_unlink(f->image);
    g_free(f->image);
    g_free(f);
}

/* Counter of drive0. */
static uint64_t blkstat(Fixture *f, const char *key)
{
    return vd_qtest_blockstat(f->q, "drive0", key);
}

/* Host operations that make data durable so far. */
static uint64_t durable(Fixture *f)
{
    return blkstat(f, "host_fdatasync") + blkstat(f, "host_dsync_writes") + blkstat(f, "host_rwf_dsync_writes");
}

/* The contents of the image at lba, read through the backend's own file (host view). */
static void host_read(Fixture *f, uint64_t lba, void *buf, size_t len)
{
    FILE *fp = fopen(f->image, "rb");
    assert_non_null(fp);
    assert_int_equal(fseeko(fp, lba * 512, SEEK_SET), 0);
    assert_int_equal(fread(buf, 1, len, fp), len);
    fclose(fp);
}

/* Deterministic test data. */
static void pattern(void *buf, size_t len, unsigned seed)
{
    uint8_t *p = buf;
    uint32_t x = seed * 2654435761u + 7;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = x >> 16;
    }
}

/* A command completed without error or timeout. */
static void assert_ok(AtaResult r)
{
    assert_false(r.timeout);
    assert_int_equal(r.status & (ATA_SR_BSY | ATA_SR_ERR | ATA_SR_DRQ | ATA_SR_DF), 0);
    assert_true(r.status & ATA_SR_DRDY);
}

/* A command failed with exactly these error bits. */
static void assert_error(AtaResult r, uint8_t error)
{
    assert_false(r.timeout);
    assert_true(r.status & ATA_SR_ERR);
    assert_int_equal(r.error, error);
}

/* ---- discovery ---- */

/* The FDT names the channel, PCI config space the engine; IDENTIFY tells the truth. */
static void test_discovery_identify(void **state)
{
    Fixture *f = start(64 << 20, "cache=writeback");
    assert_int_equal(f->ch[0].cmd, 0x1f0);
    assert_int_equal(f->ch[0].ctl, 0x3f6);
    assert_int_equal(f->ch[0].irq, 14);
    assert_int_equal(f->ch[0].bmdma, 0xc000);
    AtaDisk *d = &f->disk;
    assert_int_equal(d->sectors, (64 << 20) / 512);
    assert_true(d->lba48);
    assert_true(d->flush_ext);
    assert_true(d->fua);
    assert_true(d->wce);
    assert_int_equal(d->id[82] & (1 << 5), 1 << 5);
    assert_int_equal(d->id[255] & 0xff, 0xa5);
    uint8_t sum = 0;
    for (int i = 0; i < 256; i++) {
        sum += (d->id[i] & 0xff) + (d->id[i] >> 8);
    }
    assert_int_equal(sum, 0);
    /* No slave: probing unit 1 finds nothing (status reads 00h). */
    AtaDisk none;
    assert_false(ata_probe(&none, f->q, &f->ch[0], 1));
    /* The secondary channel is decoded but empty: it floats. */
    assert_int_equal(vd_qtest_inb(f->q, 0x177), 0x7f);
    stop(f);
}

/* Three drives: both units of the primary channel and the secondary slave alone. */
static void test_discovery_three_drives(void **state)
{
    VdQtest *q = vd_qtest_start("--drive driver=null,size=1M,if=ide,index=0,id=a "
                                "--drive driver=null,size=2M,if=ide,index=1,id=b "
                                "--drive driver=null,size=3M,if=ide,index=3,id=c,serial=SECONDSLAVE");
    AtaChannel ch[2];
    assert_int_equal(ata_discover(q, ch), 2);
    unsigned sec = ch[0].cmd == 0x170 ? 0 : 1;
    assert_int_equal(ch[1 - sec].cmd, 0x1f0);
    assert_int_equal(ch[sec].cmd, 0x170);
    assert_int_equal(ch[sec].ctl, 0x376);
    assert_int_equal(ch[sec].irq, 15);
    assert_int_equal(ch[sec].bmdma, 0xc008);
    AtaDisk d;
    assert_true(ata_probe(&d, q, &ch[1 - sec], 0));
    assert_int_equal(d.sectors, 2048);
    assert_true(ata_probe(&d, q, &ch[1 - sec], 1));
    assert_int_equal(d.sectors, 4096);
    assert_true(ata_probe(&d, q, &ch[sec], 1));
    assert_int_equal(d.sectors, 6144);
    char serial[21] = { 0 };
    for (int i = 0; i < 10; i++) {
        serial[2 * i] = d.id[10 + i] >> 8;
        serial[2 * i + 1] = d.id[10 + i];
    }
    assert_memory_equal(serial, "SECONDSLAVE ", 12);
    /* The secondary master is absent: the slave answers for it with status 00h. */
    assert_false(ata_probe(&d, q, &ch[sec], 0));
    /* Both disks of a channel share its interrupt; each has its own data. */
    uint8_t buf[512];
    AtaDisk b;
    assert_true(ata_probe(&b, q, &ch[1 - sec], 1));
    assert_ok(ata_dma_read(&b, 0, 1, buf, true));
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* cache=writethrough: the disk powers on with its write cache off. */
static void test_power_on_writethrough(void **state)
{
    Fixture *f = start(8 << 20, "cache=writethrough");
    assert_false(f->disk.wce);
    assert_int_equal(f->disk.id[85] & (1 << 5), 0);
    stop(f);
}

/* ---- every command in the table ---- */

typedef enum Kind {
    K_PIO_READ, K_PIO_WRITE, K_DMA_READ, K_DMA_WRITE, K_NODATA, K_ABORTS, K_NATIVE_MAX, K_VERIFY,
    K_IDENTIFY, K_SET_FEATURES, K_SLEEP, K_DIAG, K_TRIM,
} Kind;

typedef struct CmdCase {
    uint8_t op;
    Kind kind;
    bool ext, multiple, fua;
} CmdCase;

static const CmdCase table[] = {
    { 0x00, K_ABORTS, false, false, false }, { 0x06, K_TRIM, true, false, false }, { 0x20, K_PIO_READ, false, false, false }, { 0x21, K_PIO_READ, false, false, false }, { 0x24, K_PIO_READ, true, false, false },
    { 0x25, K_DMA_READ, true, false, false }, { 0x27, K_NATIVE_MAX, true, false, false }, { 0x29, K_PIO_READ, true, true, false },
    { 0x30, K_PIO_WRITE, false, false, false }, { 0x31, K_PIO_WRITE, false, false, false }, { 0x34, K_PIO_WRITE, true, false, false },
    { 0x35, K_DMA_WRITE, true, false, false }, { 0x39, K_PIO_WRITE, true, true, false }, { 0x3d, K_DMA_WRITE, true, false, true },
    { 0x40, K_VERIFY, false, false, false }, { 0x41, K_VERIFY, false, false, false }, { 0x42, K_VERIFY, true, false, false }, { 0x70, K_NODATA, false, false, false },
    { 0x90, K_DIAG, false, false, false }, { 0x91, K_NODATA, false, false, false }, { 0xa1, K_ABORTS, false, false, false }, { 0xc4, K_PIO_READ, false, true, false },
    { 0xc5, K_PIO_WRITE, false, true, false }, { 0xc6, K_NODATA, false, false, false }, { 0xc8, K_DMA_READ, false, false, false }, { 0xca, K_DMA_WRITE, false, false, false },
    { 0xce, K_PIO_WRITE, true, true, true }, { 0xe0, K_NODATA, false, false, false }, { 0xe1, K_NODATA, false, false, false }, { 0xe2, K_NODATA, false, false, false },
    { 0xe3, K_NODATA, false, false, false }, { 0xe5, K_NODATA, false, false, false }, { 0xe6, K_SLEEP, false, false, false }, { 0xe7, K_NODATA, false, false, false }, { 0xea, K_NODATA, true, false, false },
    { 0xec, K_IDENTIFY, false, false, false }, { 0xef, K_SET_FEATURES, false, false, false }, { 0xf8, K_NATIVE_MAX, false, false, false },
};

/* Whether op is one of the table's opcodes. */
static bool in_table(unsigned op)
{
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        if (table[i].op == op) {
            return true;
        }
    }
    return false;
}

/* Run one table entry and check its visible effect. */
static void run_case(Fixture *f, const CmdCase *c, unsigned seed)
{
    AtaDisk *d = &f->disk;
    uint8_t out[8 * 512], in[8 * 512], host[8 * 512];
    uint64_t lba = 64 + seed * 16;
    pattern(out, sizeof(out), seed);
    uint64_t fua0 = blkstat(f, "fua_writes");
    switch (c->kind) {
    case K_PIO_WRITE:
        assert_ok(c->fua ? ata_pio_write_fua(d, lba, 8, out) : ata_pio_write(d, lba, 8, out, c->ext, c->multiple));
        host_read(f, lba, host, sizeof(host));
        assert_memory_equal(host, out, sizeof(out));
        assert_int_equal(blkstat(f, "fua_writes"), fua0 + (c->fua ? 1 : 0));
        break;
    case K_DMA_WRITE:
        assert_ok(ata_dma_write(d, lba, 8, out, c->ext, c->fua));
        host_read(f, lba, host, sizeof(host));
        assert_memory_equal(host, out, sizeof(out));
        assert_int_equal(blkstat(f, "fua_writes"), fua0 + (c->fua ? 1 : 0));
        break;
    case K_PIO_READ:
    case K_DMA_READ:
        /* Put known data there first through the other path. */
        assert_ok(ata_pio_write(d, lba, 8, out, true, false));
        memset(in, 0, sizeof(in));
        if (c->kind == K_PIO_READ) {
            ata_load_taskfile(d, 0, 8, lba, c->ext);
            AtaResult r = ata_pio_read(d, lba, 8, in, c->ext, c->multiple);
            assert_ok(r);
        } else {
            assert_ok(ata_dma_read(d, lba, 8, in, c->ext));
        }
        assert_memory_equal(in, out, sizeof(out));
        break;
    case K_VERIFY: {
        uint64_t before = blkstat(f, "bytes_read");
        assert_ok(ata_nodata(d, c->op, 0, 8, lba, c->ext));
        assert_int_equal(blkstat(f, "bytes_read") - before, 8 * 512);
        break;
    }
    case K_NATIVE_MAX: {
        AtaResult r = ata_nodata(d, c->op, 0, 0, 0, c->ext);
        assert_ok(r);
        assert_int_equal(ata_read_lba(d, c->ext), d->sectors - 1);
        break;
    }
    case K_TRIM: {
        assert_true(d->trim);
        assert_ok(ata_pio_write(d, lba, 8, out, true, false));
        uint64_t discards = blkstat(f, "discards");
        assert_ok(ata_trim(d, lba, 8));
        assert_int_equal(blkstat(f, "discards"), discards + 1);
        host_read(f, lba, host, sizeof(host));
        for (size_t i = 0; i < sizeof(host); i++) {
            assert_int_equal(host[i], 0);           /* the hole reads as zeroes */
        }
        break;
    }
    case K_ABORTS:
        assert_error(ata_nodata(d, c->op, 0, 0, 0, false), ATA_ER_ABRT);
        break;
    case K_IDENTIFY:
        assert_ok(ata_identify(d));
        assert_int_equal(d->sectors, (8 << 20) / 512);
        break;
    case K_SET_FEATURES:
        assert_ok(ata_nodata(d, c->op, 0xaa, 0, 0, false));           /* look-ahead on */
        assert_error(ata_nodata(d, c->op, 0x77, 0, 0, false), ATA_ER_ABRT);
        break;
    case K_SLEEP:
        assert_ok(ata_nodata(d, c->op, 0, 0, 0, false));
        /* Asleep: only a reset wakes the disk. */
        assert_error(ata_nodata(d, 0xe5, 0, 0, 0, false), ATA_ER_ABRT);
        ata_soft_reset(f->q, &d->ch);
        assert_ok(ata_nodata(d, 0xe5, 0, 0, 0, false));
        break;
    case K_DIAG: {
        AtaResult r = ata_nodata(d, c->op, 0, 0, 0, false);
        assert_false(r.timeout);
        assert_int_equal(vd_qtest_inb(f->q, d->ch.cmd + 1), 0x01);   /* diagnostic code: passed */
        break;
    }
    case K_NODATA: {
        uint16_t count = c->op == 0xc6 ? 4 : c->op == 0x91 ? 63 : 1;
        uint8_t feature = 0;
        if (c->op == 0x91) {
            ata_load_taskfile(d, 0, 63, 0, false);
            vd_qtest_outb(f->q, d->ch.cmd + 6, 0xef);       /* 16 heads, LBA bit kept */
            vd_qtest_outb(f->q, d->ch.cmd + 7, 0x91);
            assert_ok(ata_wait_complete(d, false));
            break;
        }
        assert_ok(ata_nodata(d, c->op, feature, count, lba, c->ext));
        if (c->op == 0xc6) {
            d->multiple = 4;
        }
        if (c->op == 0xe5) {
            assert_int_equal(vd_qtest_inb(f->q, d->ch.cmd + 2), 0xff);
        }
        break;
    }
    }
}

/* Every opcode of the command table does what it should; every other opcode aborts. */
static void test_every_command(void **state)
{
    Fixture *f = start(8 << 20, "cache=writeback");
    AtaDisk *d = &f->disk;
    assert_int_equal(G_N_ELEMENTS(table), 38);
    assert_ok(ata_set_multiple(d, 4));
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        print_message("opcode %02x\n", table[i].op);
        run_case(f, &table[i], i);
    }
    for (unsigned op = 0; op < 256; op++) {
        if (!in_table(op)) {
            assert_error(ata_nodata(d, op, 0, 0, 0, false), ATA_ER_ABRT);
        }
    }
    assert_ok(ata_identify(d));
    stop(f);
}

/* ---- addressing ---- */

/* LBA28 and LBA48 boundaries on a disk a little larger than 2^28 sectors (sparse image). */
static void test_lba_boundaries(void **state)
{
    const uint64_t sectors = (1ull << 28) + 16;
    Fixture *f = start(sectors * 512, "cache=writeback");
    AtaDisk *d = &f->disk;
    assert_int_equal(d->sectors, sectors);
    assert_int_equal(d->id[60] | (uint32_t)d->id[61] << 16, 0x0fffffff);
    uint8_t out[2 * 512], in[2 * 512], host[2 * 512];

    /* 28-bit: the last reachable sector is 0FFFFFFEh. */
    pattern(out, 512, 1);
    assert_ok(ata_pio_write(d, 0x0ffffffe, 1, out, false, false));
    host_read(f, 0x0ffffffe, host, 512);
    assert_memory_equal(host, out, 512);
    assert_error(ata_pio_write(d, 0x0fffffff, 1, out, false, false), ATA_ER_IDNF);
    assert_error(ata_dma_read(d, 0x0ffffffe, 2, in, false), ATA_ER_IDNF);

    /* 48-bit: across 2^28 and up to the last sector; one past is IDNF. */
    pattern(out, sizeof(out), 2);
    assert_ok(ata_dma_write(d, 0x0fffffff, 2, out, true, false));
    host_read(f, 0x0fffffff, host, sizeof(host));
    assert_memory_equal(host, out, sizeof(out));
    assert_ok(ata_pio_read(d, 0x0fffffff, 2, in, true, false));
    assert_memory_equal(in, out, sizeof(out));
    pattern(out, sizeof(out), 3);
    assert_ok(ata_pio_write(d, sectors - 2, 2, out, true, false));
    assert_ok(ata_dma_read(d, sectors - 2, 2, in, true));
    assert_memory_equal(in, out, sizeof(out));
    assert_error(ata_dma_read(d, sectors - 1, 2, in, true), ATA_ER_IDNF);
    assert_error(ata_pio_write(d, sectors, 1, out, true, false), ATA_ER_IDNF);
    /* Sector count 0 = 65536 sectors for a 48-bit command: past the end here. */
    assert_error(ata_nodata(d, 0x42, 0, 0, sectors - 100, true), ATA_ER_IDNF);
    assert_ok(ata_nodata(d, 0x42, 0, 0, sectors - 65536, true));
    stop(f);
}

/* ---- data paths ---- */

/* PIO and DMA move the same bytes: write by one, read by the other, 28- and 48-bit, multi-entry PRD. */
static void test_pio_and_dma(void **state)
{
    Fixture *f = start(16 << 20, "cache=writeback");
    AtaDisk *d = &f->disk;
    enum { N = 400 };                        /* 200 KiB: four PRD entries */
    g_autofree uint8_t *out = g_malloc(N * 512), *in = g_malloc(N * 512);
    pattern(out, N * 512, 4);
    assert_ok(ata_dma_write(d, 1000, N, out, true, false));
    assert_ok(ata_pio_read(d, 1000, 16, in, false, false));
    assert_memory_equal(in, out, 16 * 512);
    assert_ok(ata_dma_read(d, 1000, N, in, true));
    assert_memory_equal(in, out, N * 512);
    pattern(out, 32 * 512, 5);
    assert_ok(ata_set_multiple(d, 16));
    assert_ok(ata_pio_write(d, 5000, 32, out, true, true));
    assert_ok(ata_dma_read(d, 5000, 32, in, false));
    assert_memory_equal(in, out, 32 * 512);
    /* 28-bit DMA with count 0: 256 sectors. */
    pattern(out, 256 * 512, 6);
    assert_ok(ata_dma_write(d, 8000, 0, out, false, false));
    assert_ok(ata_pio_read(d, 8000, 256, in, true, true));
    assert_memory_equal(in, out, 256 * 512);
    stop(f);
}

/* ---- the write cache ---- */

/* SET FEATURES 82h flushes before completing and makes writes durable; 02h makes them cached again. */
static void test_write_cache_toggle(void **state)
{
    Fixture *f = start(16 << 20, "cache=writeback");
    AtaDisk *d = &f->disk;
    uint8_t buf[64 * 512];
    pattern(buf, sizeof(buf), 7);

    /* Cache on: writes complete without any host durability operation. */
    uint64_t d0 = durable(f);
    assert_ok(ata_dma_write(d, 0, 64, buf, true, false));
    assert_ok(ata_pio_write(d, 100, 4, buf, false, false));
    assert_int_equal(durable(f), d0);

    /* 82h: the cached writes reach stable storage before the command completes. */
    uint64_t sync0 = blkstat(f, "host_fdatasync"), toggles0 = blkstat(f, "wce_toggles");
    assert_ok(ata_set_write_cache(d, false));
    assert_true(blkstat(f, "host_fdatasync") > sync0);
    assert_int_equal(blkstat(f, "wce_toggles"), toggles0 + 1);
    assert_false(d->wce);                                /* IDENTIFY after the toggle */
    assert_int_equal(d->id[85] & (1 << 5), 0);
    assert_int_equal(d->id[82] & (1 << 5), 1 << 5);      /* still supported */

    /* Cache off: each write is durable by the time it completes. */
    for (int i = 0; i < 3; i++) {
        uint64_t before = durable(f);
        assert_ok(i == 0 ? ata_pio_write(d, 200 + i, 1, buf, false, false)
                         : ata_dma_write(d, 200 + i, 1, buf, i == 2, false));
        assert_true(durable(f) > before);
    }
    /* With nothing cached, FLUSH CACHE costs the host nothing. */
    uint64_t sync1 = blkstat(f, "host_fdatasync");
    assert_ok(ata_flush(d, false));
    assert_int_equal(blkstat(f, "host_fdatasync"), sync1);

    /* 02h: cached again. */
    assert_ok(ata_set_write_cache(d, true));
    assert_true(d->wce);
    uint64_t d1 = durable(f);
    assert_ok(ata_dma_write(d, 300, 8, buf, true, false));
    assert_int_equal(durable(f), d1);
    /* ...until FLUSH CACHE EXT. */
    assert_ok(ata_flush(d, true));
    assert_int_equal(durable(f), d1 + 1);
    assert_int_equal(blkstat(f, "wce_toggles"), toggles0 + 2);
    stop(f);
}

/*
 * FLUSH CACHE holds BSY while the host flush runs; the interrupt comes after
 * it.  Every status sample after the command obeys: BSY=1 and no interrupt
 * yet, or BSY=0 with the interrupt raised and fdatasync done.  The flush of
 * 16 MiB of dirty data normally takes long enough to see BSY, but not on
 * tmpfs (fdatasync there has nothing to write), so each host flush also
 * waits 5 ms (delay.flush); a loaded host may still finish it first, so each
 * opcode gets a few attempts to show BSY.
 */
static void test_flush_holds_bsy(void **state)
{
    Fixture *f = start(64 << 20, "cache=writeback,delay.flush=5ms");
    AtaDisk *d = &f->disk;
    static uint8_t buf[32768 * 512];
    static const uint8_t ops[] = { 0xe7, 0xea };
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        bool saw_busy = false;
        for (unsigned attempt = 0; attempt < 4 && !saw_busy; attempt++) {
            pattern(buf, sizeof(buf), 8 + attempt);
            assert_ok(ata_dma_write(d, 0, 32768, buf, true, false));
            uint64_t sync0 = blkstat(f, "host_fdatasync");
            unsigned raises0 = vd_qtest_irq_raises(f->q, d->ch.irq);
            ata_select(d);
            vd_qtest_outb(f->q, d->ch.cmd + 7, ops[i]);
            bool wrote_while_busy = false, wrote = false;
            while (vd_qtest_inb(f->q, d->ch.ctl) & ATA_SR_BSY) {
                saw_busy = true;
                assert_int_equal(vd_qtest_irq_raises(f->q, d->ch.irq), raises0);
                if (wrote) {
                    wrote_while_busy = true;    /* BSY before and after the write */
                } else {
                    /* While BSY, the command block ignores writes. */
                    vd_qtest_outb(f->q, d->ch.cmd + 2, 0x5a);
                    wrote = true;
                }
            }
            assert_int_equal(vd_qtest_irq_raises(f->q, d->ch.irq), raises0 + 1);
            assert_int_equal(blkstat(f, "host_fdatasync"), sync0 + 1);
            assert_ok(ata_wait_complete(d, ops[i] == 0xea));
            if (wrote_while_busy) {
                assert_int_not_equal(vd_qtest_inb(f->q, d->ch.cmd + 2), 0x5a);
            }
        }
        assert_true(saw_busy);
    }
    stop(f);
}

/* FUA writes are durable when they complete, with the cache on; plain writes are not. */
static void test_fua_durable(void **state)
{
    Fixture *f = start(16 << 20, "cache=writeback");
    AtaDisk *d = &f->disk;
    uint8_t buf[16 * 512], host[16 * 512];
    pattern(buf, sizeof(buf), 9);
    assert_true(d->wce);
    assert_ok(ata_set_multiple(d, 16));

    uint64_t before = durable(f), fua0 = blkstat(f, "fua_writes");
    assert_ok(ata_dma_write(d, 10, 16, buf, true, false));
    assert_ok(ata_pio_write(d, 40, 16, buf, true, true));
    assert_int_equal(durable(f), before);
    assert_int_equal(blkstat(f, "fua_writes"), fua0);

    before = durable(f);
    assert_ok(ata_dma_write(d, 70, 16, buf, true, true));        /* WRITE DMA FUA EXT */
    assert_true(durable(f) > before);
    before = durable(f);
    assert_ok(ata_pio_write_fua(d, 100, 16, buf));               /* WRITE MULTIPLE FUA EXT */
    assert_true(durable(f) > before);
    assert_int_equal(blkstat(f, "fua_writes"), fua0 + 2);
    host_read(f, 100, host, sizeof(host));
    assert_memory_equal(host, buf, sizeof(buf));
    stop(f);
}

/* ---- errors ---- */

/* Host errors become ATA errors with the failing LBA; out of range is IDNF. */
static void test_errors(void **state)
{
    Fixture *f = start(16 << 20, "cache=writeback");
    AtaDisk *d = &f->disk;
    uint8_t buf[8 * 512];
    pattern(buf, sizeof(buf), 10);
    vd_qtest_inject(f->q, "drive0", "read", 5, 1);
    AtaResult r = ata_dma_read(d, 4242, 8, buf, true);
    assert_error(r, ATA_ER_UNC);
    assert_int_equal(r.lba, 4242);
    vd_qtest_inject(f->q, "drive0", "read", 5, 1);
    r = ata_pio_read(d, 99, 8, buf, false, false);
    assert_error(r, ATA_ER_UNC);
    assert_int_equal(r.lba, 99);
    vd_qtest_inject(f->q, "drive0", "write", 5, 1);
    r = ata_dma_write(d, 777, 8, buf, true, false);
    assert_error(r, ATA_ER_ABRT);
    assert_int_equal(r.lba, 777);
    /* A failed flush names the first sector still in the cache. */
    assert_ok(ata_pio_write(d, 3000, 1, buf, true, false));
    assert_ok(ata_pio_write(d, 2500, 1, buf, true, false));
    vd_qtest_inject(f->q, "drive0", "flush", 5, 1);
    r = ata_flush(d, true);
    assert_error(r, ATA_ER_ABRT);
    assert_int_equal(r.lba, 2500);
    assert_error(ata_dma_read(d, (16 << 20) / 512, 1, buf, true), ATA_ER_IDNF);
    stop(f);
}

/* ---- PRD tables ---- */

/* Start a READ DMA EXT of count sectors against a hand-made PRD table at 0x2000. */
static void bad_prd_start(Fixture *f, const uint32_t *entries, unsigned n, uint16_t count)
{
    VdQtest *q = f->q;
    AtaDisk *d = &f->disk;
    for (unsigned i = 0; i < 2 * n; i++) {
        vd_qtest_writel(q, 0x2000 + 4 * i, entries[i]);
    }
    uint16_t bm = d->ch.bmdma;
    vd_qtest_outb(q, bm, 0);
    vd_qtest_outb(q, bm + 2, 0x06);
    vd_qtest_outl(q, bm + 4, 0x2000);
    vd_qtest_outb(q, bm, 0x08);
    ata_load_taskfile(d, 0, count, 0, true);
    vd_qtest_outb(q, d->ch.cmd + 7, 0x25);
    vd_qtest_outb(q, bm, 0x09);
}

/* Short, long, endless and out-of-RAM tables, each as SFF-8038i says; SRST recovers. */
static void test_bad_prd(void **state)
{
    Fixture *f = start(16 << 20, "cache=writeback");
    VdQtest *q = f->q;
    AtaDisk *d = &f->disk;
    uint16_t bm = d->ch.bmdma;
    uint64_t reads0 = blkstat(f, "reads");

    /* Short: 2 KiB of 4 KiB.  No interrupt, ACTIVE=0, INTR=0, ERROR=0; the drive waits with DRQ. */
    const uint32_t shorter[] = { 0x10000, 0x80000000u | 2048 };
    bad_prd_start(f, shorter, 1, 8);
    vd_qtest_poll(q, 50);
    assert_false(vd_qtest_irq_level(q, 14));
    assert_int_equal(vd_qtest_inb(q, bm + 2) & 0x07, 0);
    assert_int_equal(vd_qtest_inb(q, d->ch.ctl) & (ATA_SR_BSY | ATA_SR_DRQ), ATA_SR_DRQ);
    assert_int_equal(blkstat(f, "reads"), reads0);
    ata_soft_reset(q, &d->ch);

    /* Long: 8 KiB for 4 KiB.  The transfer completes with INTR=1 and ACTIVE still 1. */
    const uint32_t longer[] = { 0x10000, 4096, 0x20000, 0x80000000u | 4096 };
    bad_prd_start(f, longer, 2, 8);
    assert_true(vd_qtest_wait_irq(q, 14, true, 0));
    assert_int_equal(vd_qtest_inb(q, bm + 2) & 0x07, 0x05);
    vd_qtest_outb(q, bm, 0);
    assert_ok(ata_wait_complete(d, true));

    /* Byte count 0 = 64 KiB: one entry covers a 128-sector transfer exactly (INTR=1, ACTIVE=0). */
    const uint32_t zero[] = { 0x10000, 0x80000000u };
    bad_prd_start(f, zero, 1, 128);
    assert_true(vd_qtest_wait_irq(q, 14, true, 0));
    assert_int_equal(vd_qtest_inb(q, bm + 2) & 0x07, 0x04);
    vd_qtest_outb(q, bm, 0);
    assert_ok(ata_wait_complete(d, true));

    /*
     * No EOT anywhere and never enough: 8192 entries of 2 bytes (a whole 64 KiB
     * table) for a 32 KiB transfer.  The engine gives up with ERROR instead of looping.
     */
    const uint32_t tiny[] = { 0x40000, 2 };
    g_autofree uint8_t *prd_table = g_malloc(0x10000);
    for (unsigned i = 0; i < 0x10000 / 8; i++) {
        memcpy(prd_table + 8 * i, tiny, 8);
    }
    vd_qtest_memwrite(q, 0x2000, prd_table, 0x10000);
    bad_prd_start(f, tiny, 1, 64);
    vd_qtest_poll(q, 50);
    assert_int_equal(vd_qtest_inb(q, bm + 2) & 0x07, 0x02);
    assert_false(vd_qtest_irq_level(q, 14));
    ata_soft_reset(q, &d->ch);

    /* A region beyond RAM: ERROR, nothing transferred. */
    const uint32_t beyond[] = { 0xf0000000u, 0x80000000u | 4096 };
    bad_prd_start(f, beyond, 1, 8);
    vd_qtest_poll(q, 50);
    assert_int_equal(vd_qtest_inb(q, bm + 2) & 0x07, 0x02);
    ata_soft_reset(q, &d->ch);
    assert_int_equal(blkstat(f, "reads"), reads0 + 2);

    /* After all that, the disk works. */
    uint8_t buf[4096];
    assert_ok(ata_dma_read(d, 0, 8, buf, true));
    stop(f);
}

/* ---- reset ---- */

/* SRST with a big read in flight: the disk is usable right after, and no stale interrupt arrives. */
static void test_reset(void **state)
{
    Fixture *f = start(64 << 20, "cache=writeback");
    VdQtest *q = f->q;
    AtaDisk *d = &f->disk;
    /* Start a 32 MiB read and reset while it runs. */
    for (unsigned i = 0; i < 512; i++) {
        vd_qtest_writel(q, 0x2000 + 8 * i, 0x1000000 + i * 0x10000);
        vd_qtest_writel(q, 0x2000 + 8 * i + 4, i == 511 ? 0x80000000u : 0);
    }
    uint16_t bm = d->ch.bmdma;
    vd_qtest_outb(q, bm, 0);
    vd_qtest_outb(q, bm + 2, 0x06);
    vd_qtest_outl(q, bm + 4, 0x2000);
    vd_qtest_outb(q, bm, 0x08);
    ata_load_taskfile(d, 0, 0, 0, true);
    vd_qtest_outb(q, d->ch.cmd + 7, 0x25);
    vd_qtest_outb(q, bm, 0x09);
    vd_qtest_outb(q, d->ch.ctl, 0x04);
    /* Whatever completed before SRST was legitimate; nothing may interrupt after it. */
    unsigned raised = vd_qtest_irq_raises(q, 14);
    vd_qtest_outb(q, d->ch.ctl, 0x00);
    vd_qtest_outb(q, bm, 0);
    /* BSY holds until the read in flight at SRST has finished on the host (on tmpfs it goes to the engine). */
    assert_int_equal(ata_wait_not_busy(q, &d->ch), ATA_SR_DRDY | ATA_SR_DSC);
    assert_int_equal(vd_qtest_inb(q, d->ch.cmd + 7), ATA_SR_DRDY | ATA_SR_DSC);
    assert_int_equal(vd_qtest_inb(q, d->ch.cmd + 2), 1);        /* the signature */
    assert_true(vd_qtest_drain(q));
    vd_qtest_poll(q, 20);
    assert_int_equal(vd_qtest_irq_raises(q, 14), raised);
    /* Settings survive SRST: the write cache stays off once turned off. */
    assert_ok(ata_set_write_cache(d, false));
    ata_soft_reset(q, &d->ch);
    assert_ok(ata_identify(d));
    assert_false(d->wce);
    uint8_t buf[4096];
    assert_ok(ata_dma_read(d, 0, 8, buf, true));
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_identify),
        cmocka_unit_test(test_discovery_three_drives),
        cmocka_unit_test(test_power_on_writethrough),
        cmocka_unit_test(test_every_command),
        cmocka_unit_test(test_lba_boundaries),
        cmocka_unit_test(test_pio_and_dma),
        cmocka_unit_test(test_write_cache_toggle),
        cmocka_unit_test(test_flush_holds_bsy),
        cmocka_unit_test(test_fua_durable),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bad_prd),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
