/*
 * test-virtio-blk.c - virtio-blk on a real image file, driven in-process by
 * the test guest over virtio-mmio: requests, statuses, the writeback byte
 * and the host operations each guest action causes, merging, multiqueue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hw/virtio-blk.h"
#include "mock-driver.h"
#include "vguest.h"

#define RAM     (4u << 20)
#define BASE    0xfeb00000ull
#define IRQ     16
#define QSIZE   64
#define DISK    (4u << 20)

#define F(b) VD_VIRTIO_BIT(b)
/* What a modern driver that wants everything negotiates. */
#define ALL_FEATURES (VD_VIRTIO_CORE_FEATURES | F(VD_VIRTIO_BLK_F_FLUSH) | F(VD_VIRTIO_BLK_F_CONFIG_WCE) | \
                      F(VD_VIRTIO_BLK_F_MQ) | F(VD_VIRTIO_BLK_F_DISCARD) | F(VD_VIRTIO_BLK_F_WRITE_ZEROES) | \
                      F(VD_VIRTIO_BLK_F_BLK_SIZE) | F(VD_VIRTIO_BLK_F_SEG_MAX) | F(VD_VIRTIO_BLK_F_SIZE_MAX) | \
                      F(VD_VIRTIO_BLK_F_TOPOLOGY))

typedef struct Fix {
    char path[64];
    VdBus *bus;
    VdBlockBackend *blk;
    VdVirtioBlk *dev;
    VdVirtioMmio *mmio;
    VGuest g;
} Fix;

/* Create a DISK-byte image, open it with extra options, attach the device. */
static Fix *fix_new(const char *opts, const VdVirtioBlkConf *conf)
{
    Fix *f = g_new0(Fix, 1);
    g_strlcpy(f->path, "/tmp/vd-vblk-XXXXXX", sizeof(f->path));
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, DISK), 0);
    close(fd);
    /* "driver=..." options open that driver instead of the image file */
    g_autofree char *o = opts && g_str_has_prefix(opts, "driver=")
                             ? g_strdup(opts)
                             : g_strdup_printf("file=%s%s%s", f->path, opts ? "," : "", opts ? opts : "");
    GError *err = NULL;
    f->blk = vd_blk_open(o, NULL, &err);
    if (!f->blk) {
        fail_msg("open %s: %s", o, err->message);
    }
    f->bus = vd_bus_new(RAM, NULL, NULL);
    f->dev = vd_virtio_blk_new(f->blk, conf, f->bus, NULL);
    assert_non_null(f->dev);
    f->mmio = vd_virtio_mmio_new(f->bus, BASE, 0x200, IRQ, vd_virtio_blk_device(f->dev), NULL);
    assert_non_null(f->mmio);
    vg_init(&f->g, f->bus, BASE, IRQ);
    return f;
}

/* Tear down in reverse order and delete the image. */
static void fix_free(Fix *f)
{
    vd_virtio_mmio_free(f->mmio);
    vd_virtio_blk_free(f->dev);
    vd_blk_close(f->blk);
    vd_bus_free(f->bus);
    unlink(f->path);
    g_free(f);
}

/* Negotiate features, set up nq queues, DRIVER_OK. */
static void start(Fix *f, uint64_t features, unsigned nq)
{
    assert_true(vg_negotiate(&f->g, features));
    for (unsigned q = 0; q < nq; q++) {
        assert_true(vg_setup_queue(&f->g, q, QSIZE));
    }
    vg_driver_ok(&f->g);
}

/* Backend counters. */
static VdBlockStats bstats(Fix *f)
{
    VdBlockStats s;
    vd_blk_get_stats(f->blk, &s);
    return s;
}

/* Device counters. */
static VdVirtioBlkStats dstats(Fix *f)
{
    VdVirtioBlkStats s;
    vd_virtio_blk_get_stats(f->dev, &s);
    return s;
}

/* A request in guest memory: header, optional data, status byte. */
typedef struct Req {
    unsigned head;
    uint64_t hdr, status;
} Req;

/* Build (but do not publish) a request; data device-writable for IN and GET_ID. */
static Req build(Fix *f, unsigned q, uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
    Req r;
    r.hdr = vg_alloc(&f->g, 16);
    r.status = vg_alloc(&f->g, 1);
    uint32_t t = GUINT32_TO_LE(type);
    uint64_t s = GUINT64_TO_LE(sector);
    memcpy(vg_ptr(&f->g, r.hdr), &t, 4);
    memcpy(vg_ptr(&f->g, r.hdr + 8), &s, 8);
    *(uint8_t *)vg_ptr(&f->g, r.status) = 0xee;
    bool din = type == VD_VIRTIO_BLK_T_IN || type == VD_VIRTIO_BLK_T_GET_ID;
    VgBuf b[3] = { { r.hdr, 16, false } };
    unsigned n = 1;
    if (len) {
        b[n++] = (VgBuf){ data, len, din };
    }
    b[n++] = (VgBuf){ r.status, 1, true };
    r.head = vg_chain(&f->g, q, b, n);
    return r;
}

/* Wait for the used entry of r and return the status byte. */
static uint8_t finish(Fix *f, unsigned q, Req r, uint32_t *used_len)
{
    assert_true(vg_wait_used(&f->g, q, 10000));
    uint32_t id, len;
    assert_true(vg_pop_used(&f->g, q, &id, &len));
    assert_int_equal(id, r.head);
    if (used_len) {
        *used_len = len;
    }
    return *(uint8_t *)vg_ptr(&f->g, r.status);
}

/* Submit one request on queue q and wait for its status. */
static uint8_t request(Fix *f, unsigned q, uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
    Req r = build(f, q, type, sector, data, len);
    vg_publish(&f->g, q, r.head);
    vg_kick(&f->g, q);
    return finish(f, q, r, NULL);
}

/* Fill len bytes of guest RAM with a pattern derived from seed. */
static uint64_t pattern(Fix *f, uint32_t len, uint8_t seed)
{
    uint64_t a = vg_alloc(&f->g, len);
    uint8_t *p = vg_ptr(&f->g, a);
    for (uint32_t i = 0; i < len; i++) {
        p[i] = seed + i * 7;
    }
    return a;
}

/* Write the writeback config byte. */
static void set_writeback(Fix *f, uint8_t v)
{
    vg_config_write(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, v, 1);
    vd_blk_drain(f->blk);
}

/* Features and config space of a writable drive. */
static void test_features_and_config(void **state)
{
    VdVirtioBlkConf conf = { .num_queues = 2, .queue_size = QSIZE };
    Fix *f = fix_new(NULL, &conf);
    uint64_t feat = vg_device_features(&f->g);
    static const unsigned must[] = {
        VD_VIRTIO_BLK_F_FLUSH, VD_VIRTIO_BLK_F_CONFIG_WCE, VD_VIRTIO_BLK_F_BLK_SIZE, VD_VIRTIO_BLK_F_SEG_MAX,
        VD_VIRTIO_BLK_F_SIZE_MAX, VD_VIRTIO_BLK_F_TOPOLOGY, VD_VIRTIO_BLK_F_MQ, VD_VIRTIO_BLK_F_DISCARD,
        VD_VIRTIO_BLK_F_WRITE_ZEROES, VD_VIRTIO_F_VERSION_1, VD_VIRTIO_F_RING_INDIRECT_DESC,
        VD_VIRTIO_F_RING_EVENT_IDX,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(must); i++) {
        assert_true(feat & F(must[i]));
    }
    assert_false(feat & F(VD_VIRTIO_BLK_F_RO));
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_DEVICE_ID), VD_VIRTIO_ID_BLOCK);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_CAPACITY, 8), DISK / 512);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_SEG_MAX, 4), QSIZE - 2);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_SIZE_MAX, 4), VD_VIRTIO_BLK_SIZE_MAX);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_NUM_QUEUES, 2), 2);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 1);   /* cache=writeback */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 4), VD_VIRTIO_BLK_MAX_DWZ_SEG);
    fix_free(f);
}

/* The writeback byte starts at each cache mode's default. */
static void test_writeback_default_per_cache_mode(void **state)
{
    static const struct { const char *opts; int wb; } modes[] = {
        { "cache=writeback", 1 }, { "cache=writethrough", 0 }, { "cache=unsafe", 1 },
        { "cache=directsync", 0 }, { "cache=none", 1 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        Fix *f = fix_new(modes[i].opts, NULL);
        assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), modes[i].wb);
        /* and a write/read round trip works in every mode (cache=none: O_DIRECT) */
        start(f, ALL_FEATURES, 1);
        uint64_t w = pattern(f, 4096, i), r = vg_alloc(&f->g, 4096);
        assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 16, w, 4096), VD_VIRTIO_BLK_S_OK);
        assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 16, r, 4096), VD_VIRTIO_BLK_S_OK);
        assert_memory_equal(vg_ptr(&f->g, r), vg_ptr(&f->g, w), 4096);
        assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_OK);
        fix_free(f);
    }
}

/* Reads and writes reach the image; bad ranges and lengths get IOERR. */
static void test_read_write(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 8192, 3), r = vg_alloc(&f->g, 8192);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 100, w, 8192), VD_VIRTIO_BLK_S_OK);
    uint8_t buf[8192];
    assert_int_equal(vd_blk_pread_sync(f->blk, 100 * 512, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, vg_ptr(&f->g, w), 8192);
    Req rq = build(f, 0, VD_VIRTIO_BLK_T_IN, 100, r, 8192);
    vg_publish(&f->g, 0, rq.head);
    vg_kick(&f->g, 0);
    uint32_t used;
    assert_int_equal(finish(f, 0, rq, &used), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(used, 8192 + 1);
    assert_memory_equal(vg_ptr(&f->g, r), vg_ptr(&f->g, w), 8192);
    /* past the end, straddling the end, huge sector, odd length */
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, DISK / 512, r, 512), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, DISK / 512 - 1, w, 1024), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, UINT64_MAX / 256, w, 512), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 100), VD_VIRTIO_BLK_S_IOERR);
    /* a segment larger than size_max */
    uint64_t big = vg_alloc(&f->g, VD_VIRTIO_BLK_SIZE_MAX + 512);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, big, VD_VIRTIO_BLK_SIZE_MAX + 512), VD_VIRTIO_BLK_S_IOERR);
    /* the image past the end is untouched */
    assert_int_equal(vd_blk_length(f->blk), DISK);
    /* unknown request type */
    assert_int_equal(request(f, 0, 99, 0, 0, 0), VD_VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_SECURE_ERASE, 0, 0, 0), VD_VIRTIO_BLK_S_UNSUPP);
    assert_false(vd_virtio_broken(vd_virtio_blk_device(f->dev)));
    fix_free(f);
}

/* Toggling writeback: the backend follows, 1->0 flushes, writes become durable, bad values are ignored. */
static void test_writeback_toggle(void **state)
{
    Fix *f = fix_new("cache=writeback", NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 4096, 1);
    assert_true(vd_blk_write_cache(f->blk));
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096), VD_VIRTIO_BLK_S_OK);
    VdBlockStats a = bstats(f);
    assert_int_equal(a.host_rwf_dsync_writes + a.host_dsync_writes, 0);   /* writeback: plain write */

    set_writeback(f, 0);                                   /* 1 -> 0: flush first */
    VdBlockStats b = bstats(f);
    assert_false(vd_blk_write_cache(f->blk));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_equal(b.host_fdatasync, a.host_fdatasync + 1);
    assert_int_equal(b.wce_toggles, a.wce_toggles + 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 8, w, 4096), VD_VIRTIO_BLK_S_OK);
    VdBlockStats c = bstats(f);
    /* the write was made durable by the host: RWF_DSYNC, O_DSYNC or write+fdatasync */
    assert_int_equal(c.host_rwf_dsync_writes + c.host_dsync_writes + c.host_fdatasync,
                     b.host_rwf_dsync_writes + b.host_dsync_writes + b.host_fdatasync + 1);

    set_writeback(f, 2);                                   /* not 0/1: ignored */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    set_writeback(f, 0xff);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_equal(dstats(f).wce_writes_ignored, 2);

    set_writeback(f, 1);                                   /* 0 -> 1 */
    assert_true(vd_blk_write_cache(f->blk));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 1);
    VdBlockStats d = bstats(f);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 16, w, 4096), VD_VIRTIO_BLK_S_OK);
    VdBlockStats e = bstats(f);
    assert_int_equal(e.host_rwf_dsync_writes + e.host_dsync_writes + e.host_fdatasync,
                     d.host_rwf_dsync_writes + d.host_dsync_writes + d.host_fdatasync);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(bstats(f).host_fdatasync, e.host_fdatasync + 1);
    /* a flush with nothing new written is skipped by the host */
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(bstats(f).host_fdatasync, e.host_fdatasync + 1);
    assert_int_equal(bstats(f).flushes_skipped, e.flushes_skipped + 1);
    assert_int_equal(dstats(f).wce_changes, 2);

    /* a reset restores the configured mode (writeback) after the guest chose writethrough */
    set_writeback(f, 0);
    assert_false(vd_blk_write_cache(f->blk));
    vg_wr(&f->g, VD_VMMIO_STATUS, 0);
    vd_blk_drain(f->blk);
    assert_true(vd_blk_write_cache(f->blk));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 1);
    fix_free(f);
}

/* Writes to writeback without CONFIG_WCE are ignored. */
static void test_writeback_needs_config_wce(void **state)
{
    Fix *f = fix_new("cache=writeback", NULL);
    start(f, ALL_FEATURES & ~F(VD_VIRTIO_BLK_F_CONFIG_WCE), 1);
    set_writeback(f, 0);
    assert_true(vd_blk_write_cache(f->blk));             /* FLUSH only: stays writeback */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 1);
    assert_int_equal(dstats(f).wce_writes_ignored, 1);
    fix_free(f);
}

/* A write-through-only disk: writeback reads 0, and the guest's 1 is ignored (counted so), not a change. */
static void test_writeback_write_through_only(void **state)
{
    static const MockConfig mock = { .fua = VD_FUA_NATIVE, .write_through = true };
    mock_reset(&mock);
    Fix *f = fix_new("driver=mock,size=4M,cache=writeback", NULL);
    start(f, ALL_FEATURES, 1);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    set_writeback(f, 1);
    assert_false(vd_blk_write_cache(f->blk));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_equal(dstats(f).wce_writes_ignored, 1);
    assert_int_equal(dstats(f).wce_changes, 0);
    set_writeback(f, 0);                                   /* 0 is what it is: accepted, no change */
    assert_int_equal(dstats(f).wce_writes_ignored, 1);
    assert_int_equal(dstats(f).wce_changes, 0);
    fix_free(f);
}

/* A guest without FLUSH and CONFIG_WCE gets writethrough: every write durable, FLUSH unsupported. */
static void test_guest_without_flush(void **state)
{
    Fix *f = fix_new("cache=writeback", NULL);
    uint64_t w = pattern(f, 4096, 9);
    start(f, VD_VIRTIO_CORE_FEATURES, 1);
    vd_blk_drain(f->blk);
    assert_false(vd_blk_write_cache(f->blk));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    VdBlockStats a = bstats(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 8 * i, w, 4096), VD_VIRTIO_BLK_S_OK);
    }
    VdBlockStats b = bstats(f);
    assert_int_equal(b.host_rwf_dsync_writes + b.host_dsync_writes + b.host_fdatasync,
                     a.host_rwf_dsync_writes + a.host_dsync_writes + a.host_fdatasync + 3);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_UNSUPP);
    /* and DISCARD / WRITE_ZEROES were not negotiated either */
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, 0, 0), VD_VIRTIO_BLK_S_UNSUPP);
    /* renegotiating with FLUSH after a reset gives the configured writeback back */
    start(f, VD_VIRTIO_CORE_FEATURES | F(VD_VIRTIO_BLK_F_FLUSH), 1);
    vd_blk_drain(f->blk);
    assert_true(vd_blk_write_cache(f->blk));
    fix_free(f);
}

/* Issue GET_ID and return the 20 bytes in a NUL-terminated string. */
static char *get_id(Fix *f)
{
    uint64_t id = vg_alloc(&f->g, 20);
    memset(vg_ptr(&f->g, id), 0x55, 20);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_GET_ID, 0, id, 20), VD_VIRTIO_BLK_S_OK);
    return g_strndup(vg_ptr(&f->g, id), 20);
}

/* GET_ID returns the serial, NUL padded to 20 bytes. */
static void test_get_id(void **state)
{
    VdVirtioBlkConf conf = { .serial = "SERIAL-0123456789-ABCDEF" };
    Fix *f = fix_new(NULL, &conf);
    start(f, ALL_FEATURES, 1);
    uint64_t id = vg_alloc(&f->g, 32);
    memset(vg_ptr(&f->g, id), 0x55, 32);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_GET_ID, 0, id, 20), VD_VIRTIO_BLK_S_OK);
    assert_memory_equal(vg_ptr(&f->g, id), "SERIAL-0123456789-AB", 20);
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, id + 20), 0x55);     /* nothing beyond 20 bytes */
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_GET_ID, 0, id, 8), VD_VIRTIO_BLK_S_IOERR);
    fix_free(f);
}

/*
 * Without serial= the ID is the image's own (vd_blk_unique_id): two images
 * give two IDs, the same image opened again later gives the same one.
 */
static void test_default_id_per_image(void **state)
{
    Fix *a = fix_new(NULL, NULL);
    Fix *b = fix_new(NULL, NULL);
    start(a, ALL_FEATURES, 1);
    start(b, ALL_FEATURES, 1);
    g_autofree char *ida = get_id(a);
    g_autofree char *idb = get_id(b);
    assert_int_equal(strlen(ida), VD_BLK_UNIQUE_ID_LEN);
    assert_string_equal(ida, vd_blk_unique_id(a->blk));
    assert_string_not_equal(ida, idb);
    fix_free(b);

    /* Close the first image and open the same file again. */
    g_autofree char *o = g_strdup_printf("file=%s", a->path);
    vd_virtio_mmio_free(a->mmio);
    vd_virtio_blk_free(a->dev);
    vd_blk_close(a->blk);
    a->blk = vd_blk_open(o, NULL, NULL);
    assert_non_null(a->blk);
    a->dev = vd_virtio_blk_new(a->blk, NULL, a->bus, NULL);
    a->mmio = vd_virtio_mmio_new(a->bus, BASE, 0x200, IRQ, vd_virtio_blk_device(a->dev), NULL);
    vg_init(&a->g, a->bus, BASE, IRQ);
    start(a, ALL_FEATURES, 1);
    g_autofree char *again = get_id(a);
    assert_string_equal(ida, again);
    fix_free(a);
}

/*
 * Issue 1/8 finding 1: the guest turns the cache off, the HOST turns the
 * backend's cache on.  The guest must read writeback=1, with a new config
 * generation and a configuration-change interrupt; its own changes raise none.
 */
static void test_host_write_cache_change(void **state)
{
    Fix *f = fix_new("cache=writeback", NULL);
    start(f, ALL_FEATURES, 1);
    vg_ack(&f->g);
    uint32_t gen0 = vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION);
    set_writeback(f, 0);                                   /* the guest's own change */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION), gen0);
    assert_int_equal(vg_ack(&f->g) & VD_VIRTIO_ISR_CONFIG, 0);

    assert_int_equal(vd_blk_set_write_cache_sync(f->blk, true), 0);   /* the host's */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 1);
    assert_true(vd_virtio_blk_writeback(f->dev));
    uint32_t gen1 = vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION);
    assert_int_not_equal(gen1, gen0);
    assert_int_equal(vg_ack(&f->g) & VD_VIRTIO_ISR_CONFIG, VD_VIRTIO_ISR_CONFIG);
    assert_int_equal(dstats(f).wce_host_changes, 1);

    assert_int_equal(vd_blk_set_write_cache_sync(f->blk, false), 0);  /* and back */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_not_equal(vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION), gen1);
    assert_int_equal(vg_ack(&f->g) & VD_VIRTIO_ISR_CONFIG, VD_VIRTIO_ISR_CONFIG);
    assert_int_equal(dstats(f).wce_host_changes, 2);

    /* A freed device no longer listens: a host change after it must not touch it (ASan). */
    vd_virtio_mmio_free(f->mmio);
    vd_virtio_blk_free(f->dev);                  /* its reset put the default (on) back */
    assert_true(vd_blk_write_cache(f->blk));
    assert_int_equal(vd_blk_set_write_cache_sync(f->blk, false), 0);
    vd_blk_close(f->blk);
    vd_bus_free(f->bus);
    unlink(f->path);
    g_free(f);
}

/*
 * The guest turns the cache off and the flush of that change fails: a config
 * write has no status, so the device counts it and every later FLUSH and
 * durable write reports IOERR (the backend's sticky error).
 */
static void test_writeback_off_flush_error(void **state)
{
    Fix *f = fix_new("cache=writeback", NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 4096, 3);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096), VD_VIRTIO_BLK_S_OK);
    vd_blk_inject_error(f->blk, VD_FAULT_FLUSH, EIO, 1);
    set_writeback(f, 0);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1), 0);
    assert_int_equal(dstats(f).wce_flush_errors, 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 8, w, 4096), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_IOERR);
    GString *str = g_string_new(NULL);
    vd_virtio_blk_format_stats(f->dev, str);
    assert_non_null(strstr(str->str, "wce_flush_errors=1"));
    g_string_free(str, TRUE);
    fix_free(f);
}

/* Fill one DISCARD/WRITE_ZEROES segment. */
static void dwz_seg(Fix *f, uint64_t at, unsigned i, uint64_t sector, uint32_t n, uint32_t flags)
{
    uint8_t *p = vg_ptr(&f->g, at + 16 * i);
    uint64_t s = GUINT64_TO_LE(sector);
    uint32_t nn = GUINT32_TO_LE(n), fl = GUINT32_TO_LE(flags);
    memcpy(p, &s, 8);
    memcpy(p + 8, &nn, 4);
    memcpy(p + 12, &fl, 4);
}

/* WRITE_ZEROES and DISCARD: validation of every segment, flags, host operations. */
static void test_discard_write_zeroes(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 16384, 5), r = vg_alloc(&f->g, 16384);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 16384), VD_VIRTIO_BLK_S_OK);
    uint64_t segs = vg_alloc(&f->g, 16 * 40);
    VdBlockStats a = bstats(f);
    /* two segments: sectors 0..7 (unmap) and 16..23 */
    dwz_seg(f, segs, 0, 0, 8, VD_VIRTIO_BLK_WZ_F_UNMAP);
    dwz_seg(f, segs, 1, 16, 8, 0);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_WRITE_ZEROES, 0, segs, 32), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 16384), VD_VIRTIO_BLK_S_OK);
    static const uint8_t zero[4096];
    uint8_t *got = vg_ptr(&f->g, r), *orig = vg_ptr(&f->g, w);
    assert_memory_equal(got, zero, 4096);
    assert_memory_equal(got + 4096, orig + 4096, 4096);
    assert_memory_equal(got + 8192, zero, 4096);
    assert_memory_equal(got + 12288, orig + 12288, 4096);
    VdBlockStats b = bstats(f);
    assert_int_equal(b.write_zeroes, a.write_zeroes + 2);
    /* unknown flag: UNSUPP; unmap on DISCARD: UNSUPP */
    dwz_seg(f, segs, 0, 0, 8, 4);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_WRITE_ZEROES, 0, segs, 16), VD_VIRTIO_BLK_S_UNSUPP);
    dwz_seg(f, segs, 0, 0, 8, VD_VIRTIO_BLK_WZ_F_UNMAP);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, segs, 16), VD_VIRTIO_BLK_S_UNSUPP);
    /* out of range, too many sectors, bad segment table length, too many segments */
    dwz_seg(f, segs, 0, DISK / 512 - 4, 8, 0);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, segs, 16), VD_VIRTIO_BLK_S_IOERR);
    dwz_seg(f, segs, 0, 0, VD_VIRTIO_BLK_MAX_DWZ_SECTORS + 1, 0);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_WRITE_ZEROES, 0, segs, 16), VD_VIRTIO_BLK_S_IOERR);
    dwz_seg(f, segs, 0, 0, 8, 0);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, segs, 20), VD_VIRTIO_BLK_S_IOERR);
    for (unsigned i = 0; i <= VD_VIRTIO_BLK_MAX_DWZ_SEG; i++) {
        dwz_seg(f, segs, i, i * 8, 8, 0);
    }
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, segs, 16 * (VD_VIRTIO_BLK_MAX_DWZ_SEG + 1)),
                     VD_VIRTIO_BLK_S_IOERR);
    /* nothing was discarded or zeroed by the rejected requests */
    VdBlockStats c = bstats(f);
    assert_int_equal(c.discards, b.discards);
    assert_int_equal(c.write_zeroes, b.write_zeroes);
    /* a good discard reaches the backend */
    dwz_seg(f, segs, 0, 8, 8, 0);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_DISCARD, 0, segs, 16), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(bstats(f).discards, c.discards + 1);
    fix_free(f);
}

/* A read-only drive: RO offered, writes fail with IOERR and change nothing, reads work. */
static void test_read_only(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    uint8_t seed[4096];
    memset(seed, 0xa5, sizeof(seed));
    assert_int_equal(vd_blk_pwrite_sync(f->blk, 0, seed, sizeof(seed), 0), 0);
    assert_int_equal(vd_blk_flush_sync(f->blk), 0);
    vd_virtio_mmio_free(f->mmio);
    vd_virtio_blk_free(f->dev);
    vd_blk_close(f->blk);
    g_autofree char *o = g_strdup_printf("file=%s,read-only=on", f->path);
    f->blk = vd_blk_open(o, NULL, NULL);
    assert_non_null(f->blk);
    f->dev = vd_virtio_blk_new(f->blk, NULL, f->bus, NULL);
    f->mmio = vd_virtio_mmio_new(f->bus, BASE, 0x200, IRQ, vd_virtio_blk_device(f->dev), NULL);
    uint64_t feat = vg_device_features(&f->g);
    assert_true(feat & F(VD_VIRTIO_BLK_F_RO));
    assert_false(feat & F(VD_VIRTIO_BLK_F_DISCARD));
    assert_false(feat & F(VD_VIRTIO_BLK_F_WRITE_ZEROES));
    start(f, VD_VIRTIO_CORE_FEATURES | F(VD_VIRTIO_BLK_F_RO) | F(VD_VIRTIO_BLK_F_FLUSH), 1);
    uint64_t w = pattern(f, 4096, 0), r = vg_alloc(&f->g, 4096);
    VdBlockStats a = bstats(f);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(bstats(f).host_writes, a.host_writes);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 4096), VD_VIRTIO_BLK_S_OK);
    assert_memory_equal(vg_ptr(&f->g, r), seed, 4096);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_OK);
    fix_free(f);
}

/* Several queues work independently. */
static void test_multiqueue(void **state)
{
    VdVirtioBlkConf conf = { .num_queues = 4, .queue_size = QSIZE };
    Fix *f = fix_new(NULL, &conf);
    start(f, ALL_FEATURES, 4);
    for (unsigned q = 0; q < 4; q++) {
        uint64_t w = pattern(f, 4096, q * 11), r = vg_alloc(&f->g, 4096);
        assert_int_equal(request(f, q, VD_VIRTIO_BLK_T_OUT, 64 * q, w, 4096), VD_VIRTIO_BLK_S_OK);
        assert_int_equal(request(f, q, VD_VIRTIO_BLK_T_IN, 64 * q, r, 4096), VD_VIRTIO_BLK_S_OK);
        assert_memory_equal(vg_ptr(&f->g, r), vg_ptr(&f->g, w), 4096);
        assert_int_equal(vg_used_idx(&f->g, q), 2);
    }
    /* requests in flight on two queues at once */
    uint64_t r0 = vg_alloc(&f->g, 4096), r3 = vg_alloc(&f->g, 4096);
    Req a = build(f, 0, VD_VIRTIO_BLK_T_IN, 0, r0, 4096), b = build(f, 3, VD_VIRTIO_BLK_T_IN, 192, r3, 4096);
    vg_publish(&f->g, 0, a.head);
    vg_publish(&f->g, 3, b.head);
    vg_kick(&f->g, 0);
    vg_kick(&f->g, 3);
    assert_int_equal(finish(f, 0, a, NULL), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(finish(f, 3, b, NULL), VD_VIRTIO_BLK_S_OK);
    fix_free(f);
}

/* Sequential writes in one notification become one host write; a FLUSH splits the run. */
static void test_merge(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 4 * 4096, 2);
    Req rq[6];
    VdBlockStats a = bstats(f);
    for (int i = 0; i < 4; i++) {
        rq[i] = build(f, 0, VD_VIRTIO_BLK_T_OUT, 8 * i, w + 4096 * i, 4096);
        vg_publish(&f->g, 0, rq[i].head);
    }
    vg_kick(&f->g, 0);
    for (int i = 0; i < 4; i++) {
        assert_true(vg_wait_used(&f->g, 0, 10000));
        uint32_t id, len;
        assert_true(vg_pop_used(&f->g, 0, &id, &len));
        assert_int_equal(*(uint8_t *)vg_ptr(&f->g, rq[i].status), VD_VIRTIO_BLK_S_OK);
    }
    VdBlockStats b = bstats(f);
    assert_int_equal(b.host_writes, a.host_writes + 1);
    assert_int_equal(dstats(f).merged_requests, 3);
    assert_int_equal(dstats(f).merged_ios, 1);
    uint8_t buf[4 * 4096];
    assert_int_equal(vd_blk_pread_sync(f->blk, 0, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, vg_ptr(&f->g, w), sizeof(buf));
    /* write, FLUSH, write (adjacent): not merged across the flush */
    rq[0] = build(f, 0, VD_VIRTIO_BLK_T_OUT, 100, w, 4096);
    rq[1] = build(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0);
    rq[2] = build(f, 0, VD_VIRTIO_BLK_T_OUT, 108, w, 4096);
    /* and reads that are not adjacent stay separate */
    uint64_t r = vg_alloc(&f->g, 8192);
    rq[3] = build(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 4096);
    rq[4] = build(f, 0, VD_VIRTIO_BLK_T_IN, 16, r + 4096, 4096);
    for (int i = 0; i < 5; i++) {
        vg_publish(&f->g, 0, rq[i].head);
    }
    vg_kick(&f->g, 0);
    for (int i = 0; i < 5; i++) {
        assert_true(vg_wait_used(&f->g, 0, 10000));
        uint32_t id, len;
        assert_true(vg_pop_used(&f->g, 0, &id, &len));
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(*(uint8_t *)vg_ptr(&f->g, rq[i].status), VD_VIRTIO_BLK_S_OK);
    }
    VdBlockStats c = bstats(f);
    assert_int_equal(c.host_writes, b.host_writes + 2);
    assert_int_equal(dstats(f).merged_requests, 3);
    fix_free(f);
}

/* A backend failure is reported as IOERR. */
static void test_backend_error(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t w = pattern(f, 4096, 4);
    vd_blk_inject_error(f->blk, VD_FAULT_WRITE, EIO, 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096), VD_VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096), VD_VIRTIO_BLK_S_OK);
    vd_blk_inject_error(f->blk, VD_FAULT_READ, EIO, 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, w, 4096), VD_VIRTIO_BLK_S_IOERR);
    fix_free(f);
}

/* Chains without a header or status byte are answered and break the device; reset heals it. */
static void test_bad_layout(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t hdr = vg_alloc(&f->g, 16);
    VgBuf only_hdr[] = { { hdr, 16, false } };             /* no status byte */
    unsigned head = vg_chain(&f->g, 0, only_hdr, 1);
    vg_publish(&f->g, 0, head);
    vg_kick(&f->g, 0);
    uint32_t id, len;
    assert_true(vg_pop_used(&f->g, 0, &id, &len));
    assert_int_equal(id, head);
    assert_int_equal(len, 0);
    assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_NEEDS_RESET);
    start(f, ALL_FEATURES, 1);
    uint64_t st = vg_alloc(&f->g, 1);
    VgBuf short_hdr[] = { { hdr, 8, false }, { st, 1, true } };   /* header too short */
    head = vg_chain(&f->g, 0, short_hdr, 2);
    vg_publish(&f->g, 0, head);
    vg_kick(&f->g, 0);
    assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(dstats(f).bad_layout, 2);
    start(f, ALL_FEATURES, 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_FLUSH, 0, 0, 0), VD_VIRTIO_BLK_S_OK);
    fix_free(f);
}

/* Release the held calls of one kind after a pause, from another thread. */
static gpointer release_later(gpointer op)
{
    g_usleep(200 * 1000);
    mock_release(GPOINTER_TO_INT(op));
    return NULL;
}

/*
 * A reset with I/O in flight finishes from a callback: status keeps reading
 * non-zero until the old read ended (virtio 1.2, 2.4.1), the register write
 * does not wait, and nothing is written to the (old) rings afterwards.
 */
static void test_reset_in_flight(void **state)
{
    static const MockConfig mock = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };
    mock_reset(&mock);
    Fix *f = fix_new("driver=mock,size=4M", NULL);
    start(f, ALL_FEATURES, 1);
    uint64_t r = vg_alloc(&f->g, 65536);
    Req rq = build(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 65536);
    uint64_t used = f->g.q[0].used;
    mock_hold(MOCK_READ);
    vg_publish(&f->g, 0, rq.head);
    vg_kick(&f->g, 0);
    mock_wait_held(MOCK_READ, 1);
    GThread *t = g_thread_new("release", release_later, GINT_TO_POINTER(MOCK_READ));
    vg_wr(&f->g, VD_VMMIO_STATUS, 0);                    /* reset while the read is held */
    assert_int_not_equal(vg_rd(&f->g, VD_VMMIO_STATUS), 0);
    assert_int_equal(vd_virtio_blk_in_flight(f->dev), 1);
    assert_true(vg_reset(&f->g));                        /* reads 0 once the read has ended */
    g_thread_join(t);
    assert_int_equal(vd_blk_in_flight(f->blk), 0);
    assert_int_equal(vd_virtio_blk_in_flight(f->dev), 0);
    assert_int_equal(*(uint16_t *)vg_ptr(&f->g, used + 2), 0);
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, rq.status), 0xee);
    start(f, ALL_FEATURES, 1);
    assert_int_equal(request(f, 0, VD_VIRTIO_BLK_T_IN, 0, r, 4096), VD_VIRTIO_BLK_S_OK);
    fix_free(f);
}

/* Two adjacent requests without data (header and status only) in one kick: both answered, never merged. */
static void test_merge_without_data(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    Req a = build(f, 0, VD_VIRTIO_BLK_T_OUT, 8, 0, 0);
    Req b = build(f, 0, VD_VIRTIO_BLK_T_OUT, 8, 0, 0);
    vg_publish(&f->g, 0, a.head);
    vg_publish(&f->g, 0, b.head);
    vg_kick(&f->g, 0);
    assert_int_equal(finish(f, 0, a, NULL), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(finish(f, 0, b, NULL), VD_VIRTIO_BLK_S_OK);
    assert_int_equal(dstats(f).merged_requests, 0);
    fix_free(f);
}

/* A driver that over-fills the ring is served queue-size requests at a time, and all get answered. */
static void test_overfilled_ring_resumes(void **state)
{
    VdVirtioBlkConf conf = { .queue_size = 4 };
    Fix *f = fix_new(NULL, &conf);
    assert_true(vg_negotiate(&f->g, ALL_FEATURES));
    assert_true(vg_setup_queue(&f->g, 0, 4));
    vg_driver_ok(&f->g);
    uint64_t w = pattern(f, 4096, 8);
    Req r = build(f, 0, VD_VIRTIO_BLK_T_OUT, 0, w, 4096);
    for (int i = 0; i < 4; i++) {
        vg_publish(&f->g, 0, r.head);
    }
    vg_kick(&f->g, 0);
    for (int i = 0; i < 2; i++) {            /* two more while four are in flight */
        vg_publish(&f->g, 0, r.head);
    }
    vg_kick(&f->g, 0);
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (vg_used_idx(&f->g, 0) != 6 && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(vg_used_idx(&f->g, 0), 6);
    assert_int_equal(dstats(f).out, 6);
    assert_false(vd_virtio_broken(vd_virtio_blk_device(f->dev)));
    fix_free(f);
}

/* Random headers, types, sectors, lengths and segment tables: every request gets a valid status. */
static void test_random_requests(void **state)
{
    Fix *f = fix_new(NULL, NULL);
    start(f, ALL_FEATURES, 1);
    GRand *rnd = g_rand_new_with_seed(4242);
    static const uint32_t types[] = { 0, 1, 4, 8, 11, 13, 14, 2, 99, 0xffffffff };
    uint64_t data = vg_alloc(&f->g, 65536);
    unsigned st_count[3] = { 0 };
    for (int iter = 0; iter < 300; iter++) {
        uint8_t *d = vg_ptr(&f->g, data);
        for (int i = 0; i < 512; i++) {
            d[i] = g_rand_int(rnd);
        }
        uint32_t type = types[g_rand_int_range(rnd, 0, G_N_ELEMENTS(types))];
        uint64_t sector = g_rand_boolean(rnd) ? (uint64_t)g_rand_int_range(rnd, 0, DISK / 512 + 16)
                                              : ((uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd));
        uint32_t len = g_rand_boolean(rnd) ? 512u * g_rand_int_range(rnd, 0, 128) : (uint32_t)g_rand_int_range(rnd, 0, 65536);
        Req r = build(f, 0, type, sector, data, len);
        vg_publish(&f->g, 0, r.head);
        vg_kick(&f->g, 0);
        uint8_t st = finish(f, 0, r, NULL);
        assert_true(st <= VD_VIRTIO_BLK_S_UNSUPP);
        st_count[st]++;
        assert_false(vd_virtio_broken(vd_virtio_blk_device(f->dev)));
    }
    assert_int_equal(vd_blk_length(f->blk), DISK);
    assert_true(st_count[0] > 0 && st_count[1] > 0 && st_count[2] > 0);
    g_rand_free(rnd);
    fix_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_and_config),
        cmocka_unit_test(test_writeback_default_per_cache_mode),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_writeback_toggle),
        cmocka_unit_test(test_writeback_needs_config_wce),
        cmocka_unit_test(test_writeback_write_through_only),
        cmocka_unit_test(test_guest_without_flush),
        cmocka_unit_test(test_get_id),
        cmocka_unit_test(test_default_id_per_image),
        cmocka_unit_test(test_host_write_cache_change),
        cmocka_unit_test(test_writeback_off_flush_error),
        cmocka_unit_test(test_discard_write_zeroes),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_multiqueue),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_backend_error),
        cmocka_unit_test(test_bad_layout),
        cmocka_unit_test(test_reset_in_flight),
        cmocka_unit_test(test_merge_without_data),
        cmocka_unit_test(test_overfilled_ring_resumes),
        cmocka_unit_test(test_random_requests),
    };
    return cmocka_run_group_tests_name("virtio-blk", tests, NULL, NULL);
}
