/*
 * test-migration.c - live migration between two vdisk-vmm processes
 * (docs/migration.md): a guest driver starts on the source, the source
 * migrates to a destination started with --incoming, and the same driver
 * state carries on against the destination.  Checked: data, the write
 * cache the guest chose, I/O in flight, requests held by werror=stop
 * re-issued on the destination, and every refused stream leaving the
 * source running.
 */
#include "ata-guest.h"
#include "nbd-server.h"
#include "virtio-blk-driver.h"
#include "virtio-scsi-driver.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define QSIZE    64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x1000000ull
#define F(b) (1ull << (b))

/* A source and a destination on one image, and the socket between them. */
typedef struct Pair {
    char img[64];
    char sock[80];
    VdQtest *src, *dst;
    VdGuestAlloc alloc;
} Pair;

/* A fresh sparse image of size bytes. */
static void make_image(char *path, size_t size)
{
    g_strlcpy(path, "/tmp/vd-mig-XXXXXX", 64);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

/* Start the source with drive options (after file=) and extra VMM arguments. */
static Pair *pair_new(const char *drive_opts, const char *src_extra)
{
    Pair *p = g_new0(Pair, 1);
    make_image(p->img, IMG_SIZE);
    g_snprintf(p->sock, sizeof(p->sock), "%s.sock", p->img);
    g_autofree char *args = g_strdup_printf("-m 32M --drive file=%s,id=drive0,%s %s", p->img, drive_opts,
                                            src_extra ? src_extra : "");
    p->src = vd_qtest_start(args);
    vd_guest_alloc_init(&p->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    return p;
}

/* Start the destination: the same drive, waiting on the socket (extra: its own differences). */
static void pair_dst(Pair *p, const char *drive_opts, const char *extra)
{
    g_autofree char *args = g_strdup_printf("%s --drive file=%s,id=drive0,%s --incoming unix:%s",
                                            extra ? extra : "-m 32M", p->img, drive_opts, p->sock);
    p->dst = vd_qtest_start(args);
    g_free(vd_qtest_ok(p->dst, "info"));   /* listening by now */
}

/* Both VMMs must exit cleanly (ASan and UBSan findings make the status non-zero). */
static void pair_free(Pair *p, int dst_status)
{
    assert_int_equal(vd_qtest_quit(p->src), 0);
    if (p->dst) {
        assert_int_equal(vd_qtest_quit(p->dst), dst_status);
    }
    unlink(p->img);
    unlink(p->sock);
    g_free(p);
}

/* A recognisable byte pattern. */
static void fill(uint8_t *buf, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        buf[i] = seed + i * 7;
    }
}

/* The `info` line of drive0 on a VMM contains what. */
static bool drive_info_has(VdQtest *q, const char *what)
{
    g_autoptr(GPtrArray) lines = vd_qtest_info(q);
    for (guint i = 0; i < lines->len; i++) {
        const char *l = g_ptr_array_index(lines, i);
        if (g_str_has_prefix(l, "drive drive0 ")) {
            return strstr(l, what) != NULL;
        }
    }
    return false;
}

/* Start virtio-blk on the source with every feature, writeback as asked. */
static void vblk_start(Pair *p, VdVblk *b, int writeback)
{
    VdVmmio dev;
    assert_true(vd_vmmio_find(p->src, 2, "drive0", &dev));
    assert_true(vd_vblk_init(b, &dev, vd_vblk_all_features(), false, 1, QSIZE, &p->alloc));
    assert_int_equal(vd_vblk_set_writeback(b, writeback), writeback);
}

/*
 * virtio-blk with the guest write cache on and off, and a write in flight
 * at the moment of migration: the data, the writeback byte and the
 * backend's state are the destination's afterwards.
 */
static void vblk_migrate_wce(int writeback)
{
    Pair *p = pair_new("if=virtio,cache=writeback", NULL);
    VdVblk b;
    vblk_start(p, &b, writeback);
    uint8_t out[8192], in[8192];
    fill(out, sizeof(out), 3 + writeback);
    assert_int_equal(vd_vblk_write(&b, 0, out, 4096), VBLK_S_OK);
    g_free(vd_qtest_ok(p->src, "delay drive0 write 300000"));   /* still in flight when migrate starts */
    VdVblkReq inflight = vd_vblk_submit(&b, 0, VBLK_T_OUT, 8, out + 4096, 4096);
    vd_vq_kick(&b.vq[0]);
    assert_int_equal(vd_qtest_blockstat(p->src, "drive0", "host_writes"), 1);

    pair_dst(p, "if=virtio,cache=writeback", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    g_autofree char *st = vd_qtest_ok(p->src, "query-migrate");
    assert_string_equal(st, "completed");
    /* the source gave the image up: cont cannot take it back while the destination holds it */
    g_autofree char *c = vd_qtest_cmd(p->src, "cont drive0");
    assert_non_null(strstr(c, "FAIL drive0: "));
    b.dev.qt = p->dst;
    assert_int_equal(vd_vblk_complete(&b, &inflight, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_writeback(&b), writeback);
    assert_true(drive_info_has(p->dst, writeback ? "wce=1" : "wce=0"));
    assert_int_equal(vd_vblk_read(&b, 0, in, sizeof(in)), VBLK_S_OK);
    assert_memory_equal(in, out, sizeof(in));
    fill(out, 4096, 99);
    assert_int_equal(vd_vblk_write(&b, 16, out, 4096), VBLK_S_OK);
    assert_int_equal(vd_vblk_flush(&b), VBLK_S_OK);
    pair_free(p, 0);
}

/*
 * To a write-through-only disk (an NBD export without flush, cache-modes.md
 * rule 29): the guest turned its write cache on at the source; the stream's
 * WCE=1 goes through the destination's backend, which keeps it off (there
 * is no cache), so the guest reads writeback 0 there and no flush is sent.
 */
static void test_vblk_to_write_through_only(void **state)
{
    g_autofree char *nbdkit = g_find_program_in_path("nbdkit");
    if (!nbdkit) {
        skip();
    }
    NbdServer srv = { 0 };
    nbd_server_eval(&srv, false);
    Pair *p = pair_new("if=virtio,cache=writeback", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    g_autofree char *args = g_strdup_printf("-m 32M --drive driver=nbd,uri=%s,id=drive0,if=virtio,cache=writeback "
                                            "--incoming unix:%s", srv.uri, p->sock);
    p->dst = vd_qtest_start(args);
    g_free(vd_qtest_ok(p->dst, "info"));   /* listening by now */
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    b.dev.qt = p->dst;
    assert_true(drive_info_has(p->dst, "wce=0"));
    assert_int_equal(vd_vblk_writeback(&b), 0);
    uint8_t out[4096];
    fill(out, sizeof(out), 11);
    assert_int_equal(vd_vblk_write(&b, 0, out, sizeof(out)), VBLK_S_OK);
    assert_int_equal(vd_vblk_flush(&b), VBLK_S_OK);
    vd_qtest_drain(p->dst);
    assert_int_equal(nbd_log_count(&srv, "Flush"), 0);
    pair_free(p, 0);
    nbd_server_stop(&srv);
}

/* virtio-blk, guest write cache on. */
static void test_vblk_wce_on(void **state)
{
    vblk_migrate_wce(1);
}

/* virtio-blk, guest write cache off: still write-through after migration (QEMU reverts it). */
static void test_vblk_wce_off(void **state)
{
    vblk_migrate_wce(0);
}

/* A write held by werror=stop travels in the stream and is re-issued on the destination. */
static void test_vblk_held_request(void **state)
{
    Pair *p = pair_new("if=virtio,cache=writeback,werror=stop", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    uint8_t out[4096], in[4096];
    fill(out, sizeof(out), 42);
    vd_qtest_inject(p->src, "drive0", "write", EIO, 1);
    VdVblkReq held = vd_vblk_submit(&b, 0, VBLK_T_OUT, 24, out, sizeof(out));
    vd_vq_kick(&b.vq[0]);
    vd_qtest_drain(p->src);
    assert_int_equal(vd_qtest_blockstat(p->src, "drive0", "parked"), 1);

    pair_dst(p, "if=virtio,cache=writeback,werror=stop", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    b.dev.qt = p->dst;
    assert_int_equal(vd_vblk_complete(&b, &held, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_read(&b, 24, in, sizeof(in)), VBLK_S_OK);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(vd_qtest_blockstat(p->dst, "drive0", "parked"), 0);
    pair_free(p, 0);
}

/*
 * IDE with the guest write cache on and off: WCE, the multiple count and
 * the keep-settings-over-reset choice (SET FEATURES 66h) are the
 * destination's after migration, as the reset there shows; data written
 * before and after is intact.
 */
static void ide_migrate_wce(bool wce)
{
    Pair *p = pair_new("if=ide,cache=writeback", NULL);
    AtaChannel ch[2];
    AtaDisk d;
    assert_int_equal(ata_discover(p->src, ch), 1);
    assert_true(ata_probe(&d, p->src, &ch[0], 0));
    assert_int_equal(ata_set_write_cache(&d, wce).status & ATA_SR_ERR, 0);
    assert_int_equal(ata_nodata(&d, 0xef, 0x66, 0, 0, false).status & ATA_SR_ERR, 0);   /* keep settings over reset */
    assert_int_equal(ata_set_multiple(&d, 8).status & ATA_SR_ERR, 0);
    uint8_t out[8192], in[8192];
    fill(out, sizeof(out), 11 + wce);
    assert_int_equal(ata_dma_write(&d, 0, 8, out, true, false).status & ATA_SR_ERR, 0);
    assert_int_equal(ata_pio_write(&d, 8, 8, out + 4096, true, true).status & ATA_SR_ERR, 0);

    pair_dst(p, "if=ide,cache=writeback", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    d.q = p->dst;
    assert_int_equal(ata_identify(&d).status & ATA_SR_ERR, 0);
    assert_int_equal(d.wce, wce);
    assert_int_equal(d.id[59] & 0x1ff, 0x100 | 8);            /* multiple count 8, valid */
    assert_true(drive_info_has(p->dst, wce ? "wce=1" : "wce=0"));
    assert_int_equal(ata_dma_read(&d, 0, 16, in, true).status & ATA_SR_ERR, 0);
    assert_memory_equal(in, out, sizeof(in));
    ata_soft_reset(p->dst, &d.ch);                           /* 66h migrated: the settings survive */
    assert_int_equal(ata_identify(&d).status & ATA_SR_ERR, 0);
    assert_int_equal(d.wce, wce);
    assert_int_equal(ata_pio_read(&d, 0, 16, in, true, false).status & ATA_SR_ERR, 0);
    assert_memory_equal(in, out, sizeof(in));
    pair_free(p, 0);
}

/* IDE, write cache on. */
static void test_ide_wce_on(void **state)
{
    ide_migrate_wce(true);
}

/* IDE, write cache off. */
static void test_ide_wce_off(void **state)
{
    ide_migrate_wce(false);
}

/*
 * An IDE WRITE DMA EXT held by werror=stop travels and is restarted from
 * its PRD table on the destination: its interrupt comes there, and the
 * data is on the disk.
 */
static void test_ide_held_dma(void **state)
{
    Pair *p = pair_new("if=ide,cache=writeback,werror=stop", NULL);
    AtaChannel ch[2];
    AtaDisk d;
    assert_int_equal(ata_discover(p->src, ch), 1);
    assert_true(ata_probe(&d, p->src, &ch[0], 0));
    uint8_t out[4096], in[4096];
    fill(out, sizeof(out), 55);
    uint64_t buf = 0x200000, prd = 0x300000;
    vd_qtest_memwrite(p->src, buf, out, sizeof(out));
    vd_qtest_writel(p->src, prd, buf);
    vd_qtest_writel(p->src, prd + 4, sizeof(out) | 0x80000000u);
    vd_qtest_inject(p->src, "drive0", "write", EIO, 1);
    uint16_t bm = d.ch.bmdma;
    vd_qtest_outb(p->src, bm, 0);
    vd_qtest_outl(p->src, bm + 4, prd);
    ata_load_taskfile(&d, 0, 8, 96, true);
    vd_qtest_outb(p->src, d.ch.cmd + 7, 0x35);          /* WRITE DMA EXT */
    vd_qtest_outb(p->src, bm, 0x01);                     /* START, host to device */
    vd_qtest_drain(p->src);
    assert_int_equal(vd_qtest_blockstat(p->src, "drive0", "parked"), 1);
    assert_false(vd_qtest_irq_level(p->src, d.ch.irq));

    pair_dst(p, "if=ide,cache=writeback,werror=stop", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    d.q = p->dst;
    assert_true(vd_qtest_wait_irq(p->dst, d.ch.irq, true, 5000));
    vd_qtest_outb(p->dst, bm, 0);
    uint8_t st = vd_qtest_inb(p->dst, d.ch.cmd + 7);     /* acknowledges INTRQ */
    assert_int_equal(st & (ATA_SR_ERR | ATA_SR_DRQ | 0x80), 0);
    assert_int_equal(ata_dma_read(&d, 96, 8, in, true).status & ATA_SR_ERR, 0);
    assert_memory_equal(in, out, sizeof(in));
    pair_free(p, 0);
}

/*
 * virtio-scsi with the caching page's WCE on and off, and a WRITE(10) in
 * flight: WCE is the destination's, the data is there, and loading the
 * write cache raised no unit attention (the first command is GOOD).
 */
static void scsi_migrate_wce(bool wce)
{
    Pair *p = pair_new("if=scsi,cache=writeback", NULL);
    VdVmmio dev;
    VdVscsi sc;
    assert_true(vd_vmmio_find(p->src, 8, "drive0", &dev));
    assert_true(vd_vscsi_init(&sc, &dev, F(VF_VERSION_1), QSIZE, &p->alloc));
    assert_true(vd_vscsi_wait_ready(&sc, 0));
    uint8_t sent[64];
    size_t sent_len;
    assert_int_equal(vd_vscsi_set_cache_type(&sc, 0, wce, sent, &sent_len, NULL), 0);
    assert_true(vd_vscsi_wait_ready(&sc, 0));
    uint8_t out[8192], in[8192];
    fill(out, sizeof(out), 21 + wce);
    assert_int_equal(vd_vscsi_write10(&sc, 0, 0, out, 8, false), 0);
    uint8_t lun[8];
    vd_vscsi_lun(lun, 0, 0);
    uint8_t cdb[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 8, 0 };
    g_free(vd_qtest_ok(p->src, "delay drive0 write 300000"));   /* still in flight when migrate starts */
    VdVscsiReq inflight = vd_vscsi_submit(&sc, lun, cdb, 10, out + 4096, 4096, 0);
    vd_vq_kick(&sc.vq[VSCSI_REQQ]);

    pair_dst(p, "if=scsi,cache=writeback", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    sc.dev.qt = p->dst;
    VdVscsiResult res;
    vd_vscsi_collect(&sc, &inflight, &res, NULL);
    assert_int_equal(res.response, 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(vd_vscsi_read10(&sc, 0, 0, in, 16), 0);   /* GOOD at once: no unit attention */
    assert_memory_equal(in, out, sizeof(in));
    bool now, dpofua;
    assert_true(vd_vscsi_read_cache_type(&sc, 0, &now, &dpofua));
    assert_int_equal(now, wce);
    assert_true(drive_info_has(p->dst, wce ? "wce=1" : "wce=0"));
    assert_int_equal(vd_vscsi_sync_cache(&sc, 0), 0);
    pair_free(p, 0);
}

/* virtio-scsi, write cache on. */
static void test_scsi_wce_on(void **state)
{
    scsi_migrate_wce(true);
}

/* virtio-scsi, write cache off: still write-through after migration (QEMU reverts it). */
static void test_scsi_wce_off(void **state)
{
    scsi_migrate_wce(false);
}

/*
 * A write held by werror=stop on a source whose migration fails: the held
 * write is still held afterwards, and `cont` completes it there.
 */
static void test_held_request_survives_failure(void **state)
{
    Pair *p = pair_new("if=virtio,cache=writeback,werror=stop", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    uint8_t out[4096], in[4096];
    fill(out, sizeof(out), 77);
    vd_qtest_inject(p->src, "drive0", "write", EIO, 1);
    VdVblkReq held = vd_vblk_submit(&b, 0, VBLK_T_OUT, 40, out, sizeof(out));
    vd_vq_kick(&b.vq[0]);
    vd_qtest_drain(p->src);
    pair_dst(p, "if=virtio,cache=writeback,werror=stop", "-m 64M");
    g_autofree char *r = vd_qtest_cmd(p->src, "migrate unix:%s", p->sock);
    assert_true(g_str_has_prefix(r, "FAIL migrate: the destination refused the stream"));
    assert_int_equal(vd_qtest_blockstat(p->src, "drive0", "parked"), 1);
    g_autofree char *c = vd_qtest_ok(p->src, "cont drive0");
    assert_string_equal(c, "1");
    assert_int_equal(vd_vblk_complete(&b, &held, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_read(&b, 40, in, sizeof(in)), VBLK_S_OK);
    assert_memory_equal(in, out, sizeof(in));
    pair_free(p, 1);
}

/* A WRITE(10) held by werror=stop travels with virtio-scsi and is submitted again on the destination. */
static void test_scsi_held_command(void **state)
{
    Pair *p = pair_new("if=scsi,cache=writeback,werror=stop", NULL);
    VdVmmio dev;
    VdVscsi sc;
    assert_true(vd_vmmio_find(p->src, 8, "drive0", &dev));
    assert_true(vd_vscsi_init(&sc, &dev, F(VF_VERSION_1), QSIZE, &p->alloc));
    assert_true(vd_vscsi_wait_ready(&sc, 0));
    uint8_t out[4096], in[4096];
    fill(out, sizeof(out), 66);
    vd_qtest_inject(p->src, "drive0", "write", EIO, 1);
    uint8_t lun[8];
    vd_vscsi_lun(lun, 0, 0);
    uint8_t cdb[10] = { 0x2a, 0, 0, 0, 0, 48, 0, 0, 8, 0 };
    VdVscsiReq held = vd_vscsi_submit(&sc, lun, cdb, 10, out, sizeof(out), 0);
    vd_vq_kick(&sc.vq[VSCSI_REQQ]);
    vd_qtest_drain(p->src);
    assert_int_equal(vd_qtest_blockstat(p->src, "drive0", "parked"), 1);

    pair_dst(p, "if=scsi,cache=writeback,werror=stop", NULL);
    g_free(vd_qtest_ok(p->src, "migrate unix:%s", p->sock));
    sc.dev.qt = p->dst;
    VdVscsiResult res;
    vd_vscsi_collect(&sc, &held, &res, NULL);
    assert_int_equal(res.response, 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(vd_vscsi_read10(&sc, 0, 48, in, 8), 0);
    assert_memory_equal(in, out, sizeof(in));
    pair_free(p, 0);
}

/* A destination that does not match (RAM, image size): the source is told why and keeps running. */
static void test_mismatch_refused(void **state)
{
    static const struct {
        const char *dst_extra;
        const char *why;
    } cases[] = {
        { "-m 64M", "RAM size: 33554432 bytes on the source, 67108864 here" },
        { "-m 32M --drive driver=null,size=1M,if=none,id=extra", "no section 'drive/extra'" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        Pair *p = pair_new("if=virtio,cache=writeback", NULL);
        VdVblk b;
        vblk_start(p, &b, 0);
        pair_dst(p, "if=virtio,cache=writeback", cases[i].dst_extra);
        g_autofree char *r = vd_qtest_cmd(p->src, "migrate unix:%s", p->sock);
        assert_non_null(strstr(r, "FAIL migrate: the destination refused the stream"));
        assert_non_null(strstr(r, cases[i].why));
        g_autofree char *st = vd_qtest_ok(p->src, "query-migrate");
        assert_true(g_str_has_prefix(st, "failed "));
        /* the source resumed with its image: writes go on, the write cache as the guest left it */
        uint8_t out[4096];
        fill(out, sizeof(out), 7);
        assert_int_equal(vd_vblk_write(&b, 0, out, sizeof(out)), VBLK_S_OK);
        assert_int_equal(vd_vblk_writeback(&b), 0);
        pair_free(p, 1);
    }
}

/*
 * The hand-over flush fails on the source: the migration fails at step 4,
 * the destination gets no stream (and gives up), and the source runs on
 * with its image, active and not stopped.
 */
static void test_flush_failure_rolls_back(void **state)
{
    Pair *p = pair_new("if=virtio,cache=writeback", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    uint8_t out[4096];
    fill(out, sizeof(out), 5);
    assert_int_equal(vd_vblk_write(&b, 0, out, sizeof(out)), VBLK_S_OK);
    pair_dst(p, "if=virtio,cache=writeback", "-m 32M --incoming-timeout 1");
    vd_qtest_inject(p->src, "drive0", "flush", EIO, 1);
    g_autofree char *r = vd_qtest_cmd(p->src, "migrate unix:%s", p->sock);
    assert_non_null(strstr(r, "FAIL migrate: drive drive0: file="));
    assert_non_null(strstr(r, "cannot hand the image over: the flush failed: Input/output error"));
    g_autofree char *stats = vd_qtest_ok(p->src, "blockstats drive0");
    assert_non_null(strstr(stats, " stopped=0 parked=0"));
    assert_true(drive_info_has(p->src, "wce=1"));
    assert_int_equal(vd_vblk_write(&b, 8, out, sizeof(out)), VBLK_S_OK);   /* active: writes go on */
    pair_free(p, 1);   /* the destination received no stream */
}

/* A destination image of another size is refused by name. */
static void test_image_size_differs(void **state)
{
    Pair *p = pair_new("if=virtio,cache=writeback", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    char other[64];
    make_image(other, IMG_SIZE / 2);
    g_autofree char *args = g_strdup_printf("-m 32M --drive file=%s,id=drive0,if=virtio --incoming unix:%s", other,
                                            p->sock);
    p->dst = vd_qtest_start(args);
    g_free(vd_qtest_ok(p->dst, "info"));
    g_autofree char *r = vd_qtest_cmd(p->src, "migrate unix:%s", p->sock);
    assert_non_null(strstr(r, "section 'drive/drive0' (version 1): image length: 16777216 bytes on the source, "
                              "8388608 bytes here"));
    uint8_t out[4096];
    fill(out, sizeof(out), 8);
    assert_int_equal(vd_vblk_write(&b, 0, out, sizeof(out)), VBLK_S_OK);
    unlink(other);
    pair_free(p, 1);
}

/* Listen on path; the test plays the destination. */
static int listen_at(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    return fd;
}

/* Receive a source's whole stream, answer it with reply. */
static GByteArray *capture_stream(VdQtest *src, const char *path, const char *reply)
{
    int lfd = listen_at(path);
    vd_qtest_send(src, "migrate unix:", 13);
    vd_qtest_send(src, path, strlen(path));
    vd_qtest_send(src, "\n", 1);
    int c = accept(lfd, NULL, NULL);
    assert_true(c >= 0);
    GByteArray *buf = g_byte_array_new();
    uint8_t chunk[65536];
    ssize_t n;
    while ((n = read(c, chunk, sizeof(chunk))) > 0) {
        g_byte_array_append(buf, chunk, n);
    }
    assert_int_equal(write(c, reply, strlen(reply)), (ssize_t)strlen(reply));
    close(c);
    close(lfd);
    unlink(path);
    return buf;
}

/* Connect to a destination, send bytes, return its one-line verdict. */
static char *feed_stream(const char *path, const uint8_t *data, size_t len)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    while (len) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= n;
    }
    shutdown(fd, SHUT_WR);
    char line[4096] = { 0 };
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(line) - 1 && (n = read(fd, line + got, sizeof(line) - 1 - got)) > 0) {
        got += n;
    }
    close(fd);
    return g_strdup(line);
}

/*
 * Truncated, corrupted and wrong-version streams: the destination refuses
 * each with a line naming what was wrong, and exits unstarted; a source
 * whose destination answers FAIL resumes.
 */
static void test_bad_streams(void **state)
{
    Pair *p = pair_new("if=virtio,cache=writeback", NULL);
    VdVblk b;
    vblk_start(p, &b, 1);
    uint8_t out[4096];
    fill(out, sizeof(out), 9);
    assert_int_equal(vd_vblk_write(&b, 0, out, sizeof(out)), VBLK_S_OK);
    g_autofree char *capture = g_strdup_printf("%s.capture", p->img);
    g_autoptr(GByteArray) s = capture_stream(p->src, capture, "FAIL the test keeps it\n");
    g_autofree char *r = vd_qtest_raw(p->src, "", 0);   /* the reply to migrate */
    assert_string_equal(r, "FAIL migrate: the destination refused the stream: the test keeps it");
    assert_int_equal(vd_vblk_write(&b, 8, out, sizeof(out)), VBLK_S_OK);   /* resumed */
    assert_true(s->len > 100);

    g_autofree uint8_t *bad = g_memdup2(s->data, s->len);
    static const struct {
        const char *what;
        size_t cut;        /* bytes sent (0: all) */
        size_t flip;       /* byte to corrupt (0: none) */
        const char *why;
    } cases[] = {
        { "truncated", 100, 0, "section 'ram' is truncated" },
        { "corrupted", 0, 200, "section 'ram' is corrupt: its CRC-32 does not match" },
        { "wrong version", 0, 8, "stream version 3 is not supported (this vdisk reads version 1)" },
        { "foreign", 0, 1, "not a vdisk migration stream" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        memcpy(bad, s->data, s->len);
        if (cases[i].flip == 8) {
            bad[8] = 3;
        } else if (cases[i].flip) {
            bad[cases[i].flip] ^= 0x20;
        }
        g_autofree char *sock = g_strdup_printf("%s.%zu", p->img, i);
        g_autofree char *args = g_strdup_printf("-m 32M --drive file=%s,id=drive0,if=virtio --incoming unix:%s",
                                                p->img, sock);
        VdQtest *dst = vd_qtest_start(args);
        g_free(vd_qtest_ok(dst, "info"));
        g_autofree char *verdict = feed_stream(sock, bad, cases[i].cut ? cases[i].cut : s->len);
        if (!strstr(verdict, cases[i].why)) {
            fail_msg("%s: verdict '%s'", cases[i].what, verdict);
        }
        assert_true(g_str_has_prefix(verdict, "FAIL migration stream: "));
        assert_int_equal(vd_qtest_quit(dst), 1);
        unlink(sock);
    }
    pair_free(p, 0);
}

/* An --incoming that never receives anything gives up after its timeout, exit status 1. */
static void test_incoming_timeout(void **state)
{
    char img[64];
    make_image(img, IMG_SIZE);
    g_autofree char *args = g_strdup_printf("-m 32M --drive file=%s,if=virtio --incoming unix:%s.sock "
                                            "--incoming-timeout 1", img, img);
    VdQtest *dst = vd_qtest_start(args);
    vd_qtest_poll(dst, 4000);   /* the 1 s timer starts once the machine is built; the VMM exits then */
    assert_int_equal(vd_qtest_quit(dst), 1);
    unlink(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vblk_wce_on),
        cmocka_unit_test(test_vblk_wce_off),
        cmocka_unit_test(test_vblk_to_write_through_only),
        cmocka_unit_test(test_vblk_held_request),
        cmocka_unit_test(test_held_request_survives_failure),
        cmocka_unit_test(test_ide_wce_on),
        cmocka_unit_test(test_ide_wce_off),
        cmocka_unit_test(test_ide_held_dma),
        cmocka_unit_test(test_scsi_wce_on),
        cmocka_unit_test(test_scsi_wce_off),
        cmocka_unit_test(test_scsi_held_command),
        cmocka_unit_test(test_mismatch_refused),
        cmocka_unit_test(test_flush_failure_rolls_back),
        cmocka_unit_test(test_image_size_differs),
        cmocka_unit_test(test_bad_streams),
        cmocka_unit_test(test_incoming_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
