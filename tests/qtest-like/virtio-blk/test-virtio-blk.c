/*
 * test-virtio-blk.c - virtio-blk through vdisk-vmm's qtest-like protocol,
 * driven by the reference guest driver (virtio-blk-driver.h).  Host-side
 * effects are read back with `blockstats`: every guest write-cache action
 * is checked against the host operations it caused.
 */
#include "virtio-blk-driver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define QSIZE    64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull
#define F(b) (1ull << (b))

typedef struct H {
    VdQtest *q;
    VdGuestAlloc alloc;
    VdVblk b;
    char path[64];
} H;

/* A fresh sparse image file. */
static void make_image(char *path, size_t size)
{
    g_strlcpy(path, "/tmp/vd-hvblk-XXXXXX", 64);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
    close(fd);
}

/* Start the VMM with one virtio drive (extra drive options after the file). */
static H *h_start(const char *opts)
{
    H *h = g_new0(H, 1);
    make_image(h->path, 64);
    g_autofree char *args = g_strdup_printf("--drive file=%s,if=virtio,id=drive0%s%s", h->path,
                                            opts && *opts ? "," : "", opts ? opts : "");
    h->q = vd_qtest_start(args);
    vd_guest_alloc_init(&h->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    return h;
}

/* Find drive0's device and initialise it with these features and nq queues. */
static bool h_init(H *h, uint64_t features, bool exact, unsigned nq)
{
    VdVmmio dev;
    assert_true(vd_vmmio_find(h->q, 2, "drive0", &dev));
    return vd_vblk_init(&h->b, &dev, features, exact, nq, QSIZE, &h->alloc);
}

/* The VMM must exit cleanly: ASan/UBSan findings would make the status non-zero. */
static void h_stop(H *h)
{
    assert_int_equal(vd_qtest_quit(h->q), 0);
    unlink(h->path);
    g_free(h);
}

/* One backend counter, after the I/O in flight has finished. */
static uint64_t stat_of(H *h, const char *key)
{
    vd_qtest_drain(h->q);
    return vd_qtest_blockstat(h->q, "drive0", key);
}

/* Host operations that made a write durable on their own. */
static uint64_t durable_ops(H *h)
{
    return stat_of(h, "host_rwf_dsync_writes") + stat_of(h, "host_dsync_writes");
}

/* A recognisable byte pattern. */
static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = seed + i * 13;
    }
}

/* Devices are found in the FDT, with the right registers, features and config. */
static void test_discovery_and_features(void **state)
{
    char ro_path[64];
    make_image(ro_path, sizeof(ro_path));
    char rw_path[64];
    make_image(rw_path, sizeof(rw_path));
    g_autofree char *args = g_strdup_printf("--drive file=%s,if=virtio,id=drive0,num-queues=2 "
                                            "--drive file=%s,if=virtio,id=drive1,read-only=on", rw_path, ro_path);
    VdQtest *q = vd_qtest_start(args);
    VdVmmio devs[8];
    assert_int_equal(vd_vmmio_discover(q, devs, 8), 2);
    assert_int_equal(devs[0].base, 0xfeb00000ull);
    assert_int_equal(devs[0].irq, 16);
    assert_string_equal(devs[0].drive, "drive0");
    assert_int_equal(devs[1].base, 0xfeb00200ull);
    assert_int_equal(devs[1].irq, 17);
    assert_string_equal(devs[1].drive, "drive1");
    assert_int_equal(devs[0].device_id, 2);
    assert_int_equal(vd_vmmio_read(&devs[0], VMMIO_VENDOR_ID), 0x4b534456);

    uint64_t f0 = vd_vmmio_device_features(&devs[0]), f1 = vd_vmmio_device_features(&devs[1]);
    uint64_t want = vd_vblk_all_features() & ~F(VBLK_F_RO);
    assert_int_equal(f0 & want, want);
    assert_false(f0 & F(VBLK_F_RO));
    assert_true(f1 & F(VBLK_F_RO));
    assert_false(f1 & (F(VBLK_F_DISCARD) | F(VBLK_F_WRITE_ZEROES)));

    /* an unoffered bit or a legacy (no VERSION_1) driver is refused */
    assert_false(vd_vmmio_negotiate(&devs[0], F(VF_VERSION_1) | F(VBLK_F_RO)));
    assert_true(vd_vmmio_status(&devs[0]) & VSTAT_FAILED);
    assert_false(vd_vmmio_negotiate(&devs[0], F(VBLK_F_FLUSH)));
    /* everything offered is accepted */
    VdGuestAlloc alloc;
    vd_guest_alloc_init(&alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    VdVblk b;
    assert_true(vd_vblk_init(&b, &devs[0], vd_vblk_all_features(), false, 2, QSIZE, &alloc));
    assert_int_equal(b.capacity, IMG_SIZE / 512);
    assert_int_equal(vd_vmmio_config_read(&b.dev, VBLK_CFG_NUM_QUEUES, 2), 2);
    assert_int_equal(vd_vmmio_config_read(&b.dev, VBLK_CFG_BLK_SIZE, 4), 512);
    assert_int_equal(vd_vblk_writeback(&b), 1);
    assert_true(vd_vmmio_status(&b.dev) & VSTAT_DRIVER_OK);
    assert_int_equal(vd_qtest_quit(q), 0);
    unlink(ro_path);
    unlink(rw_path);
}

/* A guest that negotiates neither FLUSH nor CONFIG_WCE gets writethrough; one with FLUSH gets writeback. */
static void test_guest_without_flush(void **state)
{
    H *h = h_start("cache=writeback");
    assert_true(h_init(h, F(VF_VERSION_1), true, 1));
    assert_int_equal(stat_of(h, "write_cache"), 0);
    assert_int_equal(vd_vblk_writeback(&h->b), 0);
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 1);
    uint64_t d0 = durable_ops(h), s0 = stat_of(h, "host_fdatasync");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vd_vblk_write(&h->b, 8 * i, buf, sizeof(buf)), VBLK_S_OK);
    }
    /* each write was durable at completion (RWF_DSYNC, O_DSYNC, or write + fdatasync) */
    assert_int_equal(durable_ops(h) + stat_of(h, "host_fdatasync"), d0 + s0 + 3);
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_UNSUPP);

    /* FLUSH without CONFIG_WCE: the driver assumes writeback and the drive keeps its mode */
    assert_true(h_init(h, F(VF_VERSION_1) | F(VBLK_F_FLUSH), true, 1));
    assert_int_equal(stat_of(h, "write_cache"), 1);
    d0 = durable_ops(h);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(durable_ops(h), d0);
    s0 = stat_of(h, "host_fdatasync");
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
    assert_int_equal(stat_of(h, "host_fdatasync"), s0 + 1);
    h_stop(h);
}

/* Reads, writes and flushes in every host cache mode, with the host operations each causes. */
static void test_every_cache_mode(void **state)
{
    static const struct {
        const char *mode;
        int wce;             /* the writeback byte at power-on */
        int flush_syncs;     /* fdatasync caused by a FLUSH after a write */
        int stage1_only;     /* flushes that stopped before fdatasync (unsafe) */
    } modes[] = {
        { "writeback", 1, 1, 0 }, { "none", 1, 1, 0 }, { "unsafe", 1, 0, 1 },
        { "writethrough", 0, 0, 0 }, { "directsync", 0, 0, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        g_autofree char *opts = g_strdup_printf("cache=%s", modes[i].mode);
        H *h = h_start(opts);
        assert_true(h_init(h, vd_vblk_all_features(), false, 1));
        assert_int_equal(vd_vblk_writeback(&h->b), modes[i].wce);
        uint8_t out[8192], in[8192];
        fill(out, sizeof(out), i);
        uint64_t d0 = durable_ops(h) + stat_of(h, "host_fdatasync");
        assert_int_equal(vd_vblk_write(&h->b, 40, out, sizeof(out)), VBLK_S_OK);
        uint64_t d1 = durable_ops(h) + stat_of(h, "host_fdatasync");
        /* writethrough modes make the write itself durable; writeback modes do not */
        assert_int_equal(d1 - d0, modes[i].wce ? 0 : 1);
        assert_int_equal(vd_vblk_read(&h->b, 40, in, sizeof(in)), VBLK_S_OK);
        assert_memory_equal(in, out, sizeof(in));
        uint64_t s0 = stat_of(h, "host_fdatasync"), st0 = stat_of(h, "flushes_stage1_only");
        assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
        assert_int_equal(stat_of(h, "host_fdatasync") - s0, modes[i].flush_syncs);
        assert_int_equal(stat_of(h, "flushes_stage1_only") - st0, modes[i].stage1_only);
        assert_int_equal(stat_of(h, "flushes"), 1);
        h_stop(h);
    }
}

/* Toggling writeback both ways; blockstats shows each host-side effect. */
static void toggle_with_policy(const char *policy, const char *durable_counter)
{
    g_autofree char *opts = g_strdup_printf("cache=writeback,wt-policy=%s", policy);
    H *h = h_start(opts);
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 7);
    assert_int_equal(vd_vblk_writeback(&h->b), 1);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(stat_of(h, durable_counter), 0);

    /* 1 -> 0: the backend flushes what the cache holds before it reports writethrough */
    uint64_t s0 = stat_of(h, "host_fdatasync"), t0 = stat_of(h, "wce_toggles");
    assert_int_equal(vd_vblk_set_writeback(&h->b, 0), 0);
    assert_int_equal(stat_of(h, "write_cache"), 0);
    assert_int_equal(stat_of(h, "host_fdatasync"), s0 + 1);
    assert_int_equal(stat_of(h, "wce_toggles"), t0 + 1);
    /* writethrough: each write is durable by itself */
    assert_int_equal(vd_vblk_write(&h->b, 8, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(vd_vblk_write(&h->b, 16, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(stat_of(h, durable_counter), 2);

    /* a value other than 0/1 is ignored: the byte still reads 0 */
    assert_int_equal(vd_vblk_set_writeback(&h->b, 2), 0);
    assert_int_equal(vd_vblk_set_writeback(&h->b, 0x80), 0);
    assert_int_equal(stat_of(h, "wce_toggles"), t0 + 1);

    /* 0 -> 1: plain writes again, made stable by FLUSH */
    assert_int_equal(vd_vblk_set_writeback(&h->b, 1), 1);
    assert_int_equal(stat_of(h, "write_cache"), 1);
    assert_int_equal(vd_vblk_write(&h->b, 24, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(stat_of(h, durable_counter), 2);
    s0 = stat_of(h, "host_fdatasync");
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
    assert_int_equal(stat_of(h, "host_fdatasync"), s0 + 1);
    /* nothing written since: the next flush is skipped on the host */
    uint64_t k0 = stat_of(h, "flushes_skipped");
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
    assert_int_equal(stat_of(h, "host_fdatasync"), s0 + 1);
    assert_int_equal(stat_of(h, "flushes_skipped"), k0 + 1);

    /* the guest chose writethrough, then reset the device: the drive's mode comes back */
    assert_int_equal(vd_vblk_set_writeback(&h->b, 0), 0);
    assert_int_equal(stat_of(h, "write_cache"), 0);
    vd_vmmio_reset(&h->b.dev);
    assert_int_equal(stat_of(h, "write_cache"), 1);
    assert_int_equal(vd_vmmio_config_read(&h->b.dev, VBLK_CFG_WRITEBACK, 1), 1);
    h_stop(h);
}

/* Writethrough by RWF_DSYNC writes. */
static void test_writeback_toggle_fua_policy(void **state)
{
    toggle_with_policy("fua", "host_rwf_dsync_writes");
}

/* Writethrough by writes on an O_DSYNC descriptor. */
static void test_writeback_toggle_dsync_policy(void **state)
{
    toggle_with_policy("dsync", "host_dsync_writes");
}

/* GET_ID, DISCARD and WRITE_ZEROES. */
static void test_get_id_discard_write_zeroes(void **state)
{
    H *h = h_start("serial=VDISK-SN-0042");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    char id[20];
    memset(id, 0x55, sizeof(id));
    assert_int_equal(vd_vblk_get_id(&h->b, id), VBLK_S_OK);
    static const char expect[20] = "VDISK-SN-0042";
    assert_memory_equal(id, expect, 20);

    uint8_t data[8192], back[8192];
    static const uint8_t zero[4096];
    fill(data, sizeof(data), 3);
    assert_int_equal(vd_vblk_write(&h->b, 0, data, sizeof(data)), VBLK_S_OK);
    uint64_t z0 = stat_of(h, "write_zeroes");
    assert_int_equal(vd_vblk_dwz(&h->b, VBLK_T_WRITE_ZEROES, 0, 8, 1), VBLK_S_OK);  /* unmap allowed */
    assert_int_equal(stat_of(h, "write_zeroes"), z0 + 1);
    assert_int_equal(vd_vblk_read(&h->b, 0, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, zero, 4096);
    assert_memory_equal(back + 4096, data + 4096, 4096);
    assert_true(stat_of(h, "host_zero_ranges") + stat_of(h, "host_discards") >= 1);

    uint64_t c0 = stat_of(h, "discards");
    assert_int_equal(vd_vblk_dwz(&h->b, VBLK_T_DISCARD, 8, 8, 0), VBLK_S_OK);
    assert_int_equal(stat_of(h, "discards"), c0 + 1);
    /* unmap on DISCARD and unknown flags are UNSUPP; a range past the end is IOERR */
    assert_int_equal(vd_vblk_dwz(&h->b, VBLK_T_DISCARD, 8, 8, 1), VBLK_S_UNSUPP);
    assert_int_equal(vd_vblk_dwz(&h->b, VBLK_T_WRITE_ZEROES, 8, 8, 0x10), VBLK_S_UNSUPP);
    assert_int_equal(vd_vblk_dwz(&h->b, VBLK_T_WRITE_ZEROES, IMG_SIZE / 512 - 1, 8, 0), VBLK_S_IOERR);
    assert_int_equal(stat_of(h, "discards"), c0 + 1);
    h_stop(h);
}

/* A read-only drive: RO offered, writes IOERR with nothing written, reads fine. */
static void test_read_only(void **state)
{
    H *h = h_start("read-only=on");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    assert_true(h->b.dev.features & F(VBLK_F_RO));
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 9);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, sizeof(buf)), VBLK_S_IOERR);
    assert_int_equal(stat_of(h, "host_writes"), 0);
    assert_int_equal(vd_vblk_read(&h->b, 0, buf, sizeof(buf)), VBLK_S_OK);
    static const uint8_t zero[4096];
    assert_memory_equal(buf, zero, sizeof(buf));
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
    h_stop(h);
}

/* Four request queues, with requests outstanding on all of them at once. */
static void test_multiqueue(void **state)
{
    H *h = h_start("num-queues=4");
    assert_true(h_init(h, vd_vblk_all_features(), false, 4));
    uint8_t out[4][4096], in[4096];
    VdVblkReq r[4];
    for (unsigned q = 0; q < 4; q++) {
        fill(out[q], sizeof(out[q]), 40 + q);
        r[q] = vd_vblk_submit(&h->b, q, VBLK_T_OUT, 64 * q, out[q], sizeof(out[q]));
    }
    for (unsigned q = 0; q < 4; q++) {
        vd_vq_kick(&h->b.vq[q]);
    }
    for (unsigned q = 0; q < 4; q++) {
        assert_int_equal(vd_vblk_complete(&h->b, &r[q], NULL), VBLK_S_OK);
    }
    for (unsigned q = 0; q < 4; q++) {
        assert_int_equal(vd_vblk_request(&h->b, q, VBLK_T_IN, 64 * q, in, sizeof(in)), VBLK_S_OK);
        assert_memory_equal(in, out[q], sizeof(in));
    }
    /* a fifth queue does not exist */
    vd_vmmio_write(&h->b.dev, VMMIO_QUEUE_SEL, 4);
    assert_int_equal(vd_vmmio_read(&h->b.dev, VMMIO_QUEUE_NUM_MAX), 0);
    h_stop(h);
}

/* Sequential writes made available together become one host write; indirect chains work too. */
static void test_merge_and_indirect(void **state)
{
    H *h = h_start("");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    h->b.indirect = true;
    uint8_t out[8][4096], in[8 * 4096];
    VdVblkReq r[8];
    uint64_t w0 = stat_of(h, "host_writes");
    for (int i = 0; i < 8; i++) {
        fill(out[i], sizeof(out[i]), 100 + i);
        r[i] = vd_vblk_submit(&h->b, 0, VBLK_T_OUT, 1000 + 8 * i, out[i], sizeof(out[i]));
    }
    vd_vq_kick(&h->b.vq[0]);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(vd_vblk_complete(&h->b, &r[i], NULL), VBLK_S_OK);
    }
    assert_int_equal(stat_of(h, "host_writes"), w0 + 1);
    assert_int_equal(stat_of(h, "writes"), 1);
    assert_int_equal(vd_vblk_read(&h->b, 1000, in, sizeof(in)), VBLK_S_OK);
    assert_memory_equal(in, out, sizeof(in));
    h_stop(h);
}

/* What a malformed chain did: the device must answer with NEEDS_RESET and stay usable. */
static void expect_needs_reset_and_recover(H *h)
{
    VdVmmio *d = &h->b.dev;
    assert_true(vd_qtest_wait_irq(h->q, d->irq, true, 0));
    uint32_t isr = vd_vmmio_ack(d);
    assert_true(isr & VISR_CONFIG);
    assert_true(vd_vmmio_status(d) & VSTAT_NEEDS_RESET);
    /* the device ignores kicks until the driver resets it */
    vd_vq_kick(&h->b.vq[0]);
    /* reset, initialise again, and do real I/O */
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[512];
    fill(buf, sizeof(buf), 1);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(vd_vblk_flush(&h->b), VBLK_S_OK);
}

/* Publish a hand-built head and kick queue 0. */
static void submit_raw(H *h, uint16_t head)
{
    vd_vq_publish(&h->b.vq[0], head);
    vd_vq_kick(&h->b.vq[0]);
}

/* Malformed chains: loop, outside RAM, too long, nested indirect, avail idx too far ahead. */
static void test_malformed_chains(void **state)
{
    H *h = h_start("");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    VdVmmio *d = &h->b.dev;
    VdVq *vq = &h->b.vq[0];
    uint64_t hdr = vd_guest_alloc(&h->alloc, 16, 16), st = vd_guest_alloc(&h->alloc, 1, 1);
    uint64_t table = vd_guest_alloc(&h->alloc, 16 * (QSIZE + 2), 16);
    vd_qtest_memset(h->q, hdr, 0, 16);

    /* a loop: 0 -> 1 -> 0 */
    vd_vq_write_desc(d, vq->desc, 0, hdr, 16, VDESC_F_NEXT, 1);
    vd_vq_write_desc(d, vq->desc, 1, st, 1, VDESC_F_WRITE | VDESC_F_NEXT, 0);
    submit_raw(h, 0);
    expect_needs_reset_and_recover(h);

    /* a buffer outside guest RAM (the device's own registers, then past the end of RAM) */
    static const uint64_t bad_addr[] = { 0xfeb00000ull, (128ull << 20) - 8, UINT64_MAX - 15 };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_addr); i++) {
        vd_vq_write_desc(d, vq->desc, 0, hdr, 16, VDESC_F_NEXT, 1);
        vd_vq_write_desc(d, vq->desc, 1, bad_addr[i], 512, VDESC_F_WRITE | VDESC_F_NEXT, 2);
        vd_vq_write_desc(d, vq->desc, 2, st, 1, VDESC_F_WRITE, 0);
        submit_raw(h, 0);
        expect_needs_reset_and_recover(h);
    }
    assert_int_equal(vd_qtest_readl(h->q, 0xfeb00000ull), 0x74726976);   /* registers untouched */

    /* too long: an indirect table with more entries than the queue has */
    for (unsigned i = 0; i <= QSIZE; i++) {
        vd_vq_write_desc(d, table, i, hdr, 16, i < QSIZE ? VDESC_F_NEXT : 0, i + 1);
    }
    vd_vq_write_desc(d, vq->desc, 0, table, 16 * (QSIZE + 1), VDESC_F_INDIRECT, 0);
    submit_raw(h, 0);
    expect_needs_reset_and_recover(h);

    /* nested indirect: an INDIRECT descriptor inside an indirect table */
    vd_vq_write_desc(d, table, 0, hdr, 16, VDESC_F_NEXT, 1);
    vd_vq_write_desc(d, table, 1, table, 32, VDESC_F_INDIRECT, 0);
    vd_vq_write_desc(d, vq->desc, 0, table, 32, VDESC_F_INDIRECT, 0);
    submit_raw(h, 0);
    expect_needs_reset_and_recover(h);

    /* an indirect table whose length is not a multiple of 16 */
    vd_vq_write_desc(d, vq->desc, 0, table, 24, VDESC_F_INDIRECT, 0);
    submit_raw(h, 0);
    expect_needs_reset_and_recover(h);

    /* the avail idx running more than a queue ahead */
    vd_qtest_writew(h->q, vq->avail + 2, QSIZE + 5);
    vd_vq_kick(vq);
    expect_needs_reset_and_recover(h);

    /* a request without a status byte */
    vd_vq_write_desc(d, vq->desc, 0, hdr, 16, 0, 0);
    submit_raw(h, 0);
    expect_needs_reset_and_recover(h);
    h_stop(h);
}

/* Bad requests inside well-formed chains get a status, not a reset. */
static void test_bad_requests(void **state)
{
    H *h = h_start("");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[1024];
    assert_int_equal(vd_vblk_read(&h->b, IMG_SIZE / 512, buf, 512), VBLK_S_IOERR);
    assert_int_equal(vd_vblk_read(&h->b, IMG_SIZE / 512 - 1, buf, 1024), VBLK_S_IOERR);
    assert_int_equal(vd_vblk_read(&h->b, 0, buf, 100), VBLK_S_IOERR);
    assert_int_equal(vd_vblk_request(&h->b, 0, 77, 0, NULL, 0), VBLK_S_UNSUPP);
    vd_qtest_inject(h->q, "drive0", "write", 5, 1);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, 512), VBLK_S_IOERR);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, 512), VBLK_S_OK);
    assert_false(vd_vmmio_status(&h->b.dev) & VSTAT_NEEDS_RESET);
    h_stop(h);
}

/*
 * werror=stop: a write that fails with EIO is held (no used element); the
 * drive is stopped and a second write submitted meanwhile is queued, not
 * issued; `cont` retries the first and issues the second, the guest gets OK
 * for both, and both read back.  werror=report on the same fault gives IOERR.
 */
static void test_werror_stop_cont(void **state)
{
    H *h = h_start("werror=stop");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[4096], buf2[4096], back[4096];
    fill(buf, sizeof(buf), 7);
    fill(buf2, sizeof(buf2), 9);
    vd_qtest_inject(h->q, "drive0", "write", 5, 1);
    VdVblkReq w = vd_vblk_submit(&h->b, 0, VBLK_T_OUT, 8, buf, sizeof(buf));
    vd_vq_kick(&h->b.vq[0]);
    vd_qtest_poll(h->q, 100);
    assert_true(vd_qtest_drain(h->q));
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "stopped"), 1);
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "parked"), 1);
    VdVblkReq w2 = vd_vblk_submit(&h->b, 0, VBLK_T_OUT, 16, buf2, sizeof(buf2));
    vd_vq_kick(&h->b.vq[0]);
    vd_qtest_poll(h->q, 100);
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "parked"), 2);
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "host_writes"), 0);
    assert_int_equal(vd_qtest_readw(h->q, h->b.vq[0].used + 2), h->b.vq[0].last_used); /* nothing completed */
    g_free(vd_qtest_ok(h->q, "cont drive0"));
    assert_int_equal(vd_vblk_complete(&h->b, &w, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_complete(&h->b, &w2, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_read(&h->b, 8, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, buf, sizeof(buf));
    assert_int_equal(vd_vblk_read(&h->b, 16, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, buf2, sizeof(buf2));
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "stopped"), 0);
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "errors"), 0);
    h_stop(h);

    h = h_start("werror=report");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    vd_qtest_inject(h->q, "drive0", "write", 5, 1);
    assert_int_equal(vd_vblk_write(&h->b, 8, buf, sizeof(buf)), VBLK_S_IOERR);
    h_stop(h);
}

/* Quitting while a drive is stopped with a held write: teardown reports it and the VMM exits cleanly. */
static void test_quit_while_stopped(void **state)
{
    H *h = h_start("werror=stop");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 3);
    vd_qtest_inject(h->q, "drive0", "write", 5, 1);
    vd_vblk_submit(&h->b, 0, VBLK_T_OUT, 8, buf, sizeof(buf));
    vd_vq_kick(&h->b.vq[0]);
    vd_qtest_poll(h->q, 100);
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "parked"), 1);
    h_stop(h);
}

/* A reset with requests in flight drains them before it completes; the device then works. */
static void test_reset_with_io_in_flight(void **state)
{
    H *h = h_start("");
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    for (int i = 0; i < 8; i++) {
        vd_vblk_submit(&h->b, 0, VBLK_T_IN, 128 * i, NULL, 65536);
    }
    vd_vq_kick(&h->b.vq[0]);
    vd_vmmio_reset(&h->b.dev);
    /* no drain command in between: the reset itself waited for the backend */
    assert_int_equal(vd_qtest_blockstat(h->q, "drive0", "in_flight"), 0);
    assert_true(h_init(h, vd_vblk_all_features(), false, 1));
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 2);
    assert_int_equal(vd_vblk_write(&h->b, 0, buf, sizeof(buf)), VBLK_S_OK);
    uint8_t back[4096];
    assert_int_equal(vd_vblk_read(&h->b, 0, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, buf, sizeof(buf));
    h_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_and_features),
        cmocka_unit_test(test_guest_without_flush),
        cmocka_unit_test(test_every_cache_mode),
        cmocka_unit_test(test_writeback_toggle_fua_policy),
        cmocka_unit_test(test_writeback_toggle_dsync_policy),
        cmocka_unit_test(test_get_id_discard_write_zeroes),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_multiqueue),
        cmocka_unit_test(test_merge_and_indirect),
        cmocka_unit_test(test_malformed_chains),
        cmocka_unit_test(test_werror_stop_cont),
        cmocka_unit_test(test_quit_while_stopped),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_reset_with_io_in_flight),
    };
    return cmocka_run_group_tests_name("harness-virtio-blk", tests, NULL, NULL);
}
