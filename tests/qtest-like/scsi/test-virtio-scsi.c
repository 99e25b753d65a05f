/*
 * test-virtio-scsi.c - the SCSI disk behind virtio-scsi, through vdisk-vmm's
 * qtest-like protocol, driven by the reference guest driver
 * (virtio-scsi-driver.h).  Host-side effects are read back with
 * `blockstats`: every write-cache action is checked against the host
 * operations it caused.
 */
#include "virtio-scsi-driver.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define IMG_BLOCKS (IMG_SIZE / 512)
#define QSIZE 64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull
#define F(b) (1ull << (b))

typedef struct H {
    VdQtest *q;
    VdGuestAlloc alloc;
    VdVscsi s;
    VdVmmio dev;
    char path[64];
} H;

/* Start the VMM: drive0 = LUN 0 on an image file (extra options), drive1 = LUN 1 on a null disk. */
static H *h_start(const char *opts)
{
    H *h = g_new0(H, 1);
    g_strlcpy(h->path, "/tmp/vd-hscsi-XXXXXX", sizeof(h->path));
    int fd = mkstemp(h->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
    close(fd);
    g_autofree char *args = g_strdup_printf("--drive file=%s,if=scsi,id=drive0%s%s "
                                            "--drive driver=null,size=1M,if=scsi,id=drive1",
                                            h->path, opts && *opts ? "," : "", opts ? opts : "");
    h->q = vd_qtest_start(args);
    vd_guest_alloc_init(&h->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    assert_true(vd_vmmio_find(h->q, 8, "drive0", &h->dev));
    return h;
}

/* Initialise the adapter and clear both LUNs' power-on unit attentions. */
static void h_init(H *h)
{
    vd_guest_alloc_reset(&h->alloc);
    assert_true(vd_vscsi_init(&h->s, &h->dev, F(VF_VERSION_1) | F(VSCSI_F_HOTPLUG), QSIZE, &h->alloc));
    assert_true(vd_vscsi_wait_ready(&h->s, 0));
    assert_true(vd_vscsi_wait_ready(&h->s, 1));
}

/* The VMM must exit cleanly: ASan/UBSan findings would make the status non-zero. */
static void h_stop(H *h)
{
    assert_int_equal(vd_qtest_quit(h->q), 0);
    unlink(h->path);
    g_free(h);
}

/* One backend counter of drive0, after draining. */
static uint64_t stat_of(H *h, const char *key)
{
    vd_qtest_drain(h->q);
    return vd_qtest_blockstat(h->q, "drive0", key);
}

/* Host operations that made a write durable on their own. */
static uint64_t durable_ops(H *h)
{
    return stat_of(h, "host_rwf_dsync_writes") + stat_of(h, "host_dsync_writes") + stat_of(h, "host_fdatasync");
}

#define assert_check(res, key, ascq) do { \
        assert_int_equal((res).response, VSCSI_S_OK); \
        assert_int_equal((res).status, 2); \
        assert_int_equal((res).sense_len, 18); \
        assert_int_equal((res).sense[0] & 0x7f, 0x70); \
        assert_int_equal(vd_vscsi_sense_key(&(res)), (key)); \
        assert_int_equal(vd_vscsi_asc(&(res)), (ascq)); \
    } while (0)

/* Discovery from the FDT, offered features, config space, INQUIRY, REPORT LUNS, power-on UA. */
static void test_discovery(void **state)
{
    H *h = h_start("");
    assert_int_equal(h->dev.device_id, 8);
    uint64_t f = vd_vmmio_device_features(&h->dev);
    assert_true(f & F(VF_VERSION_1));
    assert_true(f & F(VSCSI_F_HOTPLUG));
    assert_true(f & F(VSCSI_F_CHANGE));
    assert_false(f & (F(VSCSI_F_INOUT) | F(VSCSI_F_T10_PI)));
    vd_guest_alloc_reset(&h->alloc);
    assert_true(vd_vscsi_init(&h->s, &h->dev, F(VF_VERSION_1) | F(VSCSI_F_HOTPLUG), QSIZE, &h->alloc));
    VdVmmio *d = &h->s.dev;
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_NUM_QUEUES, 4), 1);
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_MAX_SECTORS, 4), 65536);
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_EVENT_INFO_SIZE, 4), 16);
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_MAX_CHANNEL, 2), 0);
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_MAX_TARGET, 2), 0);
    assert_int_equal(vd_vmmio_config_read(d, VSCSI_CFG_MAX_LUN, 4), 16383);

    /* INQUIRY is answered despite the pending unit attention. */
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    uint8_t data[64];
    VdVscsiResult r;
    assert_int_equal(vd_vscsi_cmd(&h->s, 1, inq, 6, NULL, 0, data, 36, &r), 0);
    assert_int_equal(data[0], 0);
    assert_memory_equal(data + 8, "VDISK   ", 8);
    /* REPORT LUNS through LUN 0 lists both drives. */
    uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, rl, 12, NULL, 0, data, 64, &r), 0);
    assert_int_equal(data[3], 16);
    assert_int_equal(data[8 + 1], 0);
    assert_int_equal(data[16 + 1], 1);
    assert_int_equal(r.resid, 64 - 24);
    /* First TEST UNIT READY: UNIT ATTENTION 29/00, then GOOD. */
    uint8_t tur[6] = { 0 };
    vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r);
    assert_check(r, 0x6, 0x2900);
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r), 0);
    /* VPD 0x80 without serial=: each image's own id ("VD" + 16 hex digits), one per drive. */
    uint8_t vpd[6] = { 0x12, 1, 0x80, 0, 64, 0 };
    uint8_t data0[64];
    assert_int_equal(vd_vscsi_cmd(&h->s, 1, vpd, 6, NULL, 0, data, 64, &r), 0);
    assert_int_equal(data[3], 18);
    assert_memory_equal(data + 4, "VD", 2);
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, vpd, 6, NULL, 0, data0, 64, &r), 0);
    assert_int_equal(data0[3], 18);
    assert_memory_not_equal(data0 + 4, data + 4, 18);
    h_stop(h);
}

/* One CDB per opcode of the disk, through the transport, with the status each must give. */
static void test_every_opcode(void **state)
{
    H *h = h_start("");
    h_init(h);
    static uint8_t zeros[4096];
    uint8_t unmap[24] = { 0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
    uint8_t ms_list[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x04 };
    static const struct {
        uint8_t cdb[16];
        uint8_t len;
        uint32_t out, in;
        uint8_t status;
        uint16_t asc;           /* for CHECK CONDITION */
    } ops[] = {
        { { 0x00 }, 6, 0, 0, 0, 0 },                                    /* TEST UNIT READY */
        { { 0x03, 0, 0, 0, 18 }, 6, 0, 18, 0, 0 },                      /* REQUEST SENSE */
        { { 0x08, 0, 0, 1, 1 }, 6, 0, 512, 0, 0 },                      /* READ(6) */
        { { 0x0a, 0, 0, 1, 1 }, 6, 512, 0, 0, 0 },                      /* WRITE(6) */
        { { 0x12, 0, 0, 0, 36 }, 6, 0, 36, 0, 0 },                      /* INQUIRY */
        { { 0x15, 0x10, 0, 0, 24 }, 6, 24, 0, 0, 0 },                   /* MODE SELECT(6) */
        { { 0x1a, 0, 0x3f, 0, 255 }, 6, 0, 255, 0, 0 },                 /* MODE SENSE(6) */
        { { 0x1b, 0, 0, 0, 1 }, 6, 0, 0, 0, 0 },                        /* START STOP UNIT */
        { { 0x1e }, 6, 0, 0, 0, 0 },                                    /* PREVENT ALLOW */
        { { 0x25 }, 10, 0, 8, 0, 0 },                                   /* READ CAPACITY(10) */
        { { 0x28, 0, 0, 0, 0, 2, 0, 0, 1 }, 10, 0, 512, 0, 0 },         /* READ(10) */
        { { 0x2a, 0, 0, 0, 0, 2, 0, 0, 1 }, 10, 512, 0, 0, 0 },         /* WRITE(10) */
        { { 0x2e, 0, 0, 0, 0, 3, 0, 0, 1 }, 10, 512, 0, 0, 0 },         /* WRITE AND VERIFY(10) */
        { { 0x2f, 0, 0, 0, 0, 3, 0, 0, 1 }, 10, 0, 0, 0, 0 },           /* VERIFY(10) */
        { { 0x35 }, 10, 0, 0, 0, 0 },                                   /* SYNCHRONIZE CACHE(10) */
        { { 0x41, 0, 0, 0, 0, 4, 0, 0, 2 }, 10, 512, 0, 0, 0 },         /* WRITE SAME(10) */
        { { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, 10, 24, 0, 0, 0 },         /* UNMAP */
        { { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 0 }, 10, 0, 0, 0, 0 },        /* MODE SELECT(10), no data */
        { { 0x5a, 0, 0x08, 0, 0, 0, 0, 0, 64 }, 10, 0, 64, 0, 0 },      /* MODE SENSE(10) */
        { { 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1 }, 16, 0, 512, 0, 0 },    /* READ(16) */
        { { 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1 }, 16, 512, 0, 0, 0 },    /* WRITE(16) */
        { { 0x8e, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1 }, 16, 512, 0, 0, 0 },    /* WRITE AND VERIFY(16) */
        { { 0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1 }, 16, 0, 0, 0, 0 },      /* VERIFY(16) */
        { { 0x91 }, 16, 0, 0, 0, 0 },                                   /* SYNCHRONIZE CACHE(16) */
        { { 0x93, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2 }, 16, 512, 0, 0, 0 },    /* WRITE SAME(16) */
        { { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 }, 16, 0, 32, 0, 0 }, /* READ CAPACITY(16) */
        { { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64 }, 12, 0, 64, 0, 0 },      /* REPORT LUNS */
        { { 0xa8, 0, 0, 0, 0, 8, 0, 0, 0, 1 }, 12, 0, 512, 0, 0 },      /* READ(12) */
        { { 0xaa, 0, 0, 0, 0, 8, 0, 0, 0, 1 }, 12, 512, 0, 0, 0 },      /* WRITE(12) */
        { { 0xa3, 0x0c, 0x01, 0x93, 0, 0, 0, 0, 2, 0 }, 12, 0, 512, 0, 0 },  /* REPORT SUPPORTED OPCODES */
        { { 0xa3, 0x0a }, 12, 0, 0, 2, 0x2400 },                        /* other MAINTENANCE IN */
        /* Empty slots of the opcode table. */
        { { 0x01 }, 6, 0, 0, 2, 0x2000 },
        { { 0x3b }, 10, 0, 0, 2, 0x2000 },
        { { 0xff }, 16, 0, 0, 2, 0x2000 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        VdVscsiResult r;
        uint8_t in[512];
        const void *out = ops[i].cdb[0] == 0x42 ? (const void *)unmap : ops[i].cdb[0] == 0x15 ? ms_list : zeros;
        uint8_t st = vd_vscsi_cmd(&h->s, 0, ops[i].cdb, ops[i].len, ops[i].out ? out : NULL, ops[i].out, in,
                                  ops[i].in, &r);
        if (st != ops[i].status) {
            fail_msg("opcode %#x: status %#x response %u sense %x/%04x", ops[i].cdb[0], st, r.response,
                     vd_vscsi_sense_key(&r), vd_vscsi_asc(&r));
        }
        if (st == 2) {
            assert_check(r, 0x5, ops[i].asc);
        }
    }
    h_stop(h);
}

/* Data written with every WRITE size reads back through every READ size and lands in the image. */
static void test_data_roundtrip(void **state)
{
    H *h = h_start("");
    h_init(h);
    uint8_t w[4096], r[4096];
    for (size_t i = 0; i < sizeof(w); i++) {
        w[i] = (uint8_t)(i * 13 + 5);
    }
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 100, w, 8, false), 0);
    uint8_t rd16[16] = { 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 8 };
    VdVscsiResult res;
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, rd16, 16, NULL, 0, r, 4096, &res), 0);
    assert_int_equal(res.resid, 0);
    assert_memory_equal(r, w, 4096);
    /* The host sees the same bytes. */
    vd_qtest_drain(h->q);
    FILE *f = fopen(h->path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 100 * 512, SEEK_SET), 0);
    uint8_t host[4096];
    assert_int_equal(fread(host, 1, sizeof(host), f), sizeof(host));
    fclose(f);
    assert_memory_equal(host, w, 4096);
    /* A larger data-in buffer than the transfer: the residual says so. */
    uint8_t rd10[10] = { 0x28, 0, 0, 0, 0, 100, 0, 0, 1, 0 };
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, rd10, 10, NULL, 0, r, 1024, &res), 0);
    assert_int_equal(res.resid, 512);
    h_stop(h);
}

/*
 * echo "write through" / "write back" > /sys/class/scsi_disk/0:0:0:0/cache_type,
 * byte for byte as Linux's sd sends it, with the host operations each caused.
 */
static void test_linux_cache_type(void **state)
{
    H *h = h_start("cache=writeback");
    h_init(h);
    bool wce, dpofua;
    uint8_t sent[80];
    size_t n;
    VdVscsiResult res;
    uint8_t data[512] = { 1, 2, 3 };

    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_true(wce);
    assert_true(dpofua);

    /* Dirty the cache, then write through. */
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 10, data, 1, false), 0);
    uint64_t fsync0 = stat_of(h, "host_fdatasync"), tog0 = stat_of(h, "wce_toggles");
    assert_int_equal(vd_vscsi_set_cache_type(&h->s, 0, false, sent, &n, &res), 0);
    static const uint8_t wt[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x00 };
    assert_int_equal(n, sizeof(wt));
    assert_memory_equal(sent, wt, sizeof(wt));
    assert_int_equal(stat_of(h, "wce_toggles"), tog0 + 1);
    assert_int_equal(stat_of(h, "host_fdatasync"), fsync0 + 1);    /* the cached write was synced */
    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_false(wce);
    /* Write-through: every WRITE is durable by itself. */
    uint64_t d0 = durable_ops(h);
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 11, data, 1, false), 0);
    assert_true(durable_ops(h) > d0);

    /* Back to write back: no host sync for the switch, writes are cached again. */
    d0 = durable_ops(h);
    assert_int_equal(vd_vscsi_set_cache_type(&h->s, 0, true, sent, &n, &res), 0);
    static const uint8_t wb[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x04 };
    assert_memory_equal(sent, wb, sizeof(wb));
    assert_int_equal(stat_of(h, "wce_toggles"), tog0 + 2);
    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_true(wce);
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 12, data, 1, false), 0);
    assert_int_equal(durable_ops(h), d0);
    h_stop(h);
}

/* FUA writes and SYNCHRONIZE CACHE (with and without IMMED) on the host. */
static void test_fua_and_sync_cache(void **state)
{
    H *h = h_start("cache=writeback");
    h_init(h);
    uint8_t data[512] = { 9 };
    uint64_t fua0 = stat_of(h, "fua_writes"), d0 = durable_ops(h);
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 20, data, 1, true), 0);
    assert_int_equal(stat_of(h, "fua_writes"), fua0 + 1);
    assert_true(durable_ops(h) > d0);

    assert_int_equal(vd_vscsi_write10(&h->s, 0, 21, data, 1, false), 0);
    uint64_t f0 = stat_of(h, "host_fdatasync"), fl0 = stat_of(h, "flushes");
    assert_int_equal(vd_vscsi_sync_cache(&h->s, 0), 0);
    assert_int_equal(stat_of(h, "host_fdatasync"), f0 + 1);
    assert_int_equal(stat_of(h, "flushes"), fl0 + 1);

    /* IMMED: GOOD at once; the flush still reaches the host. */
    assert_int_equal(vd_vscsi_write10(&h->s, 0, 22, data, 1, false), 0);
    uint8_t immed[16] = { 0x91, 0x02 };
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, immed, 16, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(stat_of(h, "host_fdatasync"), f0 + 2);
    h_stop(h);
}

/* The sense data of each kind of error, through the transport. */
static void test_sense_errors(void **state)
{
    H *h = h_start("");
    h_init(h);
    VdVscsiResult r;
    uint8_t buf[512];
    uint8_t oor[10] = { 0x28, 0, 0, 0, (IMG_BLOCKS >> 8) & 0xff, IMG_BLOCKS & 0xff, 0, 0, 1, 0 };
    vd_vscsi_cmd(&h->s, 0, oor, 10, NULL, 0, buf, 512, &r);
    assert_check(r, 0x5, 0x2100);
    uint8_t rdprot[10] = { 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
    vd_vscsi_cmd(&h->s, 0, rdprot, 10, NULL, 0, buf, 512, &r);
    assert_check(r, 0x5, 0x2400);
    assert_int_equal(r.sense[15], 0xc0 | 0x08 | 7);         /* SKSV, C/D, BPV, bit 7 */
    assert_int_equal(r.sense[17], 1);                        /* byte 1 */
    uint8_t saved[6] = { 0x1a, 0, 0xc8, 0, 64, 0 };
    vd_vscsi_cmd(&h->s, 0, saved, 6, NULL, 0, buf, 64, &r);
    assert_check(r, 0x5, 0x3900);
    uint8_t bad_page[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x05 };   /* RCD: not changeable */
    uint8_t ms[6] = { 0x15, 0x10, 0, 0, 24, 0 };
    vd_vscsi_cmd(&h->s, 0, ms, 6, bad_page, 24, NULL, 0, &r);
    assert_check(r, 0x5, 0x2600);
    uint8_t ms_short[6] = { 0x15, 0x10, 0, 0, 10, 0 };
    vd_vscsi_cmd(&h->s, 0, ms_short, 6, bad_page, 10, NULL, 0, &r);
    assert_check(r, 0x5, 0x1a00);
    vd_qtest_inject(h->q, "drive0", "read", EIO, 1);
    uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    vd_vscsi_cmd(&h->s, 0, rd, 10, NULL, 0, buf, 512, &r);
    assert_check(r, 0x3, 0x1100);
    assert_int_equal(r.resid, 512);
    vd_qtest_inject(h->q, "drive0", "write", EIO, 1);
    uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    vd_vscsi_cmd(&h->s, 0, wr, 10, buf, 512, NULL, 0, &r);
    assert_check(r, 0x3, 0x0c00);
    h_stop(h);
}

/* Every mode page x every PC value x MODE SENSE(6/10), through the transport. */
static void test_mode_pages(void **state)
{
    H *h = h_start("cache=writethrough");
    h_init(h);
    static const uint8_t pages[] = { 0x01, 0x08, 0x0a, 0x3f };
    static const uint8_t lens[] = { 0x0a, 0x12, 0x0a };
    uint8_t data[255];
    VdVscsiResult r;
    for (int ten = 0; ten <= 1; ten++) {
        for (size_t pi = 0; pi < sizeof(pages); pi++) {
            for (uint8_t pc = 0; pc <= 3; pc++) {
                uint8_t cdb[10] = { 0 };
                cdb[0] = ten ? 0x5a : 0x1a;
                cdb[1] = 0x08;                                  /* DBD */
                cdb[2] = (uint8_t)(pc << 6 | pages[pi]);
                if (ten) {
                    cdb[8] = 255;
                } else {
                    cdb[4] = 255;
                }
                uint8_t st = vd_vscsi_cmd(&h->s, 0, cdb, ten ? 10 : 6, NULL, 0, data, 255, &r);
                if (pc == 3) {
                    assert_check(r, 0x5, 0x3900);
                    continue;
                }
                assert_int_equal(st, 0);
                size_t hdr = ten ? 8 : 4;
                size_t total = ten ? (size_t)(data[0] << 8 | data[1]) + 2 : (size_t)data[0] + 1;
                assert_int_equal(r.resid, 255 - total);
                assert_int_equal(data[ten ? 3 : 2], 0x10);         /* DPOFUA */
                size_t o = hdr, n = 0;
                while (o < total) {
                    uint8_t code = data[o] & 0x3f;
                    assert_int_equal(data[o] & 0xc0, 0);           /* PS=0, SPF=0 */
                    static const uint8_t all[3] = { 0x01, 0x08, 0x0a };
                    assert_int_equal(code, pages[pi] == 0x3f ? all[n] : pages[pi]);
                    assert_int_equal(data[o + 1], lens[code == 1 ? 0 : code == 8 ? 1 : 2]);
                    if (code == 0x08) {
                        /* cache=writethrough: WCE current 0, changeable 1, default 0. */
                        assert_int_equal(data[o + 2] & 0x04, pc == 1 ? 0x04 : 0);
                    }
                    o += 2 + data[o + 1];
                    n++;
                }
                assert_int_equal(n, pages[pi] == 0x3f ? 3 : 1);
            }
        }
    }
    h_stop(h);
}

/* Malformed CDBs and parameter lists through the transport: exact sense, nothing changes. */
static void test_malformed_cdbs_and_lists(void **state)
{
    H *h = h_start("");
    h_init(h);
    VdVscsiResult r;
    uint8_t buf[512];
    static const struct {
        uint8_t cdb[16];
        uint8_t len;
        uint16_t asc;
    } bad_cdbs[] = {
        { { 0x00, 0, 0, 0, 0, 0x04 }, 6, 0x2400 },                   /* NACA */
        { { 0x12, 0x02, 0, 0, 36 }, 6, 0x2400 },                     /* CMDDT */
        { { 0x12, 0x01, 0x81, 0, 36 }, 6, 0x2400 },                  /* unsupported VPD page */
        { { 0x1a, 0, 0x02, 0, 36 }, 6, 0x2400 },                     /* unsupported mode page */
        { { 0x1a, 0, 0x08, 0x05, 36 }, 6, 0x2400 },                  /* subpage */
        { { 0x15, 0x11, 0, 0, 24 }, 6, 0x2400 },                     /* MODE SELECT SP=1 */
        { { 0x15, 0x00, 0, 0, 24 }, 6, 0x2400 },                     /* MODE SELECT PF=0 */
        { { 0x1b, 0, 0, 0, 0x02 }, 6, 0x2400 },                      /* LOEJ */
        { { 0x25, 0, 0, 0, 0, 1 }, 10, 0x2400 },                     /* RC10 LBA without PMI */
        { { 0x9e, 0x11 }, 16, 0x2400 },                              /* SERVICE ACTION IN, other SA */
        { { 0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1 }, 10, 0x2400 },         /* VERIFY BYTCHK=10b */
        { { 0x41, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, 0x2400 },            /* WRITE SAME of 0 blocks */
        { { 0x42, 0x01, 0, 0, 0, 0, 0, 0, 24 }, 10, 0x2400 },        /* UNMAP ANCHOR */
        { { 0xa0, 0, 0x07, 0, 0, 0, 0, 0, 0, 64 }, 12, 0x2400 },     /* SELECT REPORT */
        { { 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1 }, 16, 0x2100 },
        { { 0x35, 0, 0, 0, 0x80, 0, 0, 0, 1 }, 10, 0x2100 },         /* SYNC CACHE range */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cdbs); i++) {
        memset(buf, 0, sizeof(buf));
        vd_vscsi_cmd(&h->s, 0, bad_cdbs[i].cdb, bad_cdbs[i].len, buf, 24, buf, 64, &r);
        if (r.status != 2 || vd_vscsi_asc(&r) != bad_cdbs[i].asc) {
            fail_msg("CDB %zu (opcode %#x): status %u sense %x/%04x", i, bad_cdbs[i].cdb[0], r.status,
                     vd_vscsi_sense_key(&r), vd_vscsi_asc(&r));
        }
        assert_check(r, 0x5, bad_cdbs[i].asc);
    }
    /* Parameter lists. */
    uint64_t tog0 = stat_of(h, "wce_toggles"), disc0 = stat_of(h, "discards");
    static const struct {
        uint8_t cdb[10];
        uint8_t len;
        uint8_t list[40];
        uint8_t list_len;
        uint16_t asc;
    } bad_lists[] = {
        { { 0x15, 0x10, 0, 0, 3 }, 6, { 0 }, 3, 0x1a00 },                                   /* short header */
        { { 0x15, 0x10, 0, 0, 20 }, 6, { 0, 0, 0, 0, 0x08, 0x12 }, 20, 0x1a00 },             /* page cut */
        { { 0x15, 0x10, 0, 0, 24 }, 6, { 0, 0, 0, 0, 0x08, 0x10 }, 24, 0x2600 },             /* page length */
        { { 0x15, 0x10, 0, 0, 24 }, 6, { 0, 0, 0, 0, 0x07, 0x12 }, 24, 0x2600 },             /* unknown page */
        { { 0x15, 0x10, 0, 0, 24 }, 6, { 0, 3, 0, 0, 0x08, 0x12 }, 24, 0x2600 },             /* medium type */
        { { 0x15, 0x10, 0, 0, 24 }, 6, { 0, 0, 0, 0, 0x08, 0x12, 0x80 }, 24, 0x2600 },       /* IC bit */
        { { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 28 }, 10, { 0, 0, 0, 0, 0, 0, 0, 4 }, 28, 0x2600 }, /* bd length */
        { { 0x42, 0, 0, 0, 0, 0, 0, 0, 6 }, 10, { 0 }, 6, 0x1a00 },                         /* UNMAP < 8 */
        { { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, 10, { 0, 22, 0, 32 }, 24, 0x1a00 },            /* descriptors past end */
        { { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, 10, { 0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 1 },
          24, 0x2100 },                                                                      /* LBA range */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_lists); i++) {
        vd_vscsi_cmd(&h->s, 0, bad_lists[i].cdb, bad_lists[i].len, bad_lists[i].list, bad_lists[i].list_len, NULL,
                     0, &r);
        if (r.status != 2 || vd_vscsi_asc(&r) != bad_lists[i].asc) {
            fail_msg("list %zu: status %u sense %x/%04x", i, r.status, vd_vscsi_sense_key(&r), vd_vscsi_asc(&r));
        }
        assert_check(r, 0x5, bad_lists[i].asc);
    }
    assert_int_equal(stat_of(h, "wce_toggles"), tog0);
    assert_int_equal(stat_of(h, "discards"), disc0);
    h_stop(h);
}

/* Requests the adapter must refuse before any disk sees them. */
static void test_malformed_requests(void **state)
{
    H *h = h_start("");
    h_init(h);
    static const uint8_t tur[6] = { 0 };
    uint8_t lun[8];
    VdVscsiResult r;
    /* lun[0] != 1, target 1: BAD_TARGET. */
    vd_vscsi_lun(lun, 0, 0);
    lun[0] = 0;
    VdVscsiReq q = vd_vscsi_submit(&h->s, lun, tur, 6, NULL, 0, 0);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    vd_vscsi_collect(&h->s, &q, &r, NULL);
    assert_int_equal(r.response, VSCSI_S_BAD_TARGET);
    vd_vscsi_lun(lun, 1, 0);
    q = vd_vscsi_submit(&h->s, lun, tur, 6, NULL, 0, 0);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    vd_vscsi_collect(&h->s, &q, &r, NULL);
    assert_int_equal(r.response, VSCSI_S_BAD_TARGET);
    /* No such LUN, or a malformed LUN field: INCORRECT_LUN. */
    vd_vscsi_cmd(&h->s, 7, tur, 6, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.response, VSCSI_S_INCORRECT_LUN);
    vd_vscsi_lun(lun, 0, 0);
    lun[2] = 0x80;
    q = vd_vscsi_submit(&h->s, lun, tur, 6, NULL, 0, 0);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    vd_vscsi_collect(&h->s, &q, &r, NULL);
    assert_int_equal(r.response, VSCSI_S_INCORRECT_LUN);
    vd_vscsi_lun(lun, 0, 0);
    lun[5] = 1;
    q = vd_vscsi_submit(&h->s, lun, tur, 6, NULL, 0, 0);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    vd_vscsi_collect(&h->s, &q, &r, NULL);
    assert_int_equal(r.response, VSCSI_S_INCORRECT_LUN);
    /* Data-in buffer smaller than the transfer: OVERRUN. */
    uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0 };
    uint8_t buf[1024];
    vd_vscsi_cmd(&h->s, 0, rd, 10, NULL, 0, buf, 1000, &r);
    assert_int_equal(r.response, VSCSI_S_OVERRUN);
    /* A request header shorter than 19 + cdb_size: FAILURE. */
    uint64_t hdr = vd_guest_alloc(&h->alloc, 16, 8);
    uint64_t resp = vd_guest_alloc(&h->alloc, 108, 8);
    vd_qtest_memset(h->q, resp, 0xee, 108);
    VdVqBuf short_bufs[2] = { { hdr, 16, false }, { resp, 108, true } };
    uint16_t head = vd_vq_add(&h->s.vq[VSCSI_REQQ], short_bufs, 2, false, &h->alloc);
    vd_vq_publish(&h->s.vq[VSCSI_REQQ], head);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    uint32_t id, len;
    assert_true(vd_vq_wait_used(&h->s.vq[VSCSI_REQQ], &id, &len, NULL));
    assert_int_equal(id, head);
    assert_int_equal(vd_qtest_readb(h->q, resp + 11), VSCSI_S_FAILURE);
    /* Still working. */
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r), 0);
    /* No room for the response: the device gives the buffer back empty and asks for a reset. */
    uint64_t full = vd_guest_alloc(&h->alloc, 51, 8);
    uint64_t tiny = vd_guest_alloc(&h->alloc, 8, 8);
    VdVqBuf bad[2] = { { full, 51, false }, { tiny, 8, true } };
    head = vd_vq_add(&h->s.vq[VSCSI_REQQ], bad, 2, false, &h->alloc);
    vd_vq_publish(&h->s.vq[VSCSI_REQQ], head);
    vd_vq_kick(&h->s.vq[VSCSI_REQQ]);
    uint32_t isr = 0;
    vd_vq_wait_used(&h->s.vq[VSCSI_REQQ], &id, &len, &isr);
    assert_int_equal(len, 0);
    vd_qtest_poll(h->q, 20);
    assert_true(vd_vmmio_status(&h->s.dev) & VSTAT_NEEDS_RESET);
    /* The driver resets and starts over; everything works again (and WCE is back to power-on). */
    h_init(h);
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r), 0);
    h_stop(h);
}

/* Task management and AN on the control queue; the unit attentions the resets leave. */
static void test_tmf(void **state)
{
    H *h = h_start("");
    h_init(h);
    uint8_t lun0[8], lun1[8], bad[8], nolun[8];
    vd_vscsi_lun(lun0, 0, 0);
    vd_vscsi_lun(lun1, 0, 1);
    vd_vscsi_lun(bad, 3, 0);
    vd_vscsi_lun(nolun, 0, 9);
    static const uint8_t tur[6] = { 0 };
    VdVscsiResult r;

    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_ABORT_TASK, lun0, 12345), 0);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_ABORT_TASK_SET, lun0, 0), 0);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_CLEAR_TASK_SET, lun0, 0), 0);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_QUERY_TASK, lun0, 1), 0);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_QUERY_TASK_SET, lun0, 0), 0);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_CLEAR_ACA, lun0, 0), VSCSI_S_FUNCTION_REJECTED);
    assert_int_equal(vd_vscsi_tmf(&h->s, 99, lun0, 0), VSCSI_S_FUNCTION_REJECTED);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_LOGICAL_UNIT_RESET, bad, 0), VSCSI_S_BAD_TARGET);
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_LOGICAL_UNIT_RESET, nolun, 0), VSCSI_S_INCORRECT_LUN);
    /* None of those left a unit attention. */
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r), 0);

    /* LOGICAL UNIT RESET of LUN 1: 29/03 there only. */
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_LOGICAL_UNIT_RESET, lun1, 0), 0);
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r), 0);
    vd_vscsi_cmd(&h->s, 1, tur, 6, NULL, 0, NULL, 0, &r);
    assert_check(r, 0x6, 0x2903);
    /* I_T NEXUS RESET: 29/07 on every LUN of the target. */
    assert_int_equal(vd_vscsi_tmf(&h->s, VSCSI_TMF_I_T_NEXUS_RESET, lun0, 0), 0);
    vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r);
    assert_check(r, 0x6, 0x2907);
    vd_vscsi_cmd(&h->s, 1, tur, 6, NULL, 0, NULL, 0, &r);
    assert_check(r, 0x6, 0x2907);

    /* AN: no notification class is supported. */
    uint32_t actual = 0xffffffff;
    assert_int_equal(vd_vscsi_an(&h->s, VSCSI_T_AN_QUERY, lun0, 0x16, &actual), 0);
    assert_int_equal(actual, 0);
    actual = 0xffffffff;
    assert_int_equal(vd_vscsi_an(&h->s, VSCSI_T_AN_SUBSCRIBE, lun0, 0x16, &actual), 0);
    assert_int_equal(actual, 0);
    assert_int_equal(vd_vscsi_an(&h->s, VSCSI_T_AN_QUERY, bad, 0x16, &actual), VSCSI_S_BAD_TARGET);

    /* A TMF request cut short: FAILURE, device still fine. */
    uint8_t req[8] = { 0 };
    uint64_t a = vd_guest_alloc(&h->alloc, 8, 8), b = vd_guest_alloc(&h->alloc, 1, 1);
    vd_qtest_memwrite(h->q, a, req, 8);
    VdVqBuf bufs[2] = { { a, 8, false }, { b, 1, true } };
    uint16_t head = vd_vq_add(&h->s.vq[VSCSI_CTRLQ], bufs, 2, false, &h->alloc);
    vd_vq_publish(&h->s.vq[VSCSI_CTRLQ], head);
    vd_vq_kick(&h->s.vq[VSCSI_CTRLQ]);
    uint32_t id, len;
    assert_true(vd_vq_wait_used(&h->s.vq[VSCSI_CTRLQ], &id, &len, NULL));
    assert_int_equal(vd_qtest_readb(h->q, b), VSCSI_S_FAILURE);
    /* An unknown control type has no response layout: NEEDS_RESET. */
    req[0] = 7;
    vd_qtest_memwrite(h->q, a, req, 8);
    head = vd_vq_add(&h->s.vq[VSCSI_CTRLQ], bufs, 2, false, &h->alloc);
    vd_vq_publish(&h->s.vq[VSCSI_CTRLQ], head);
    vd_vq_kick(&h->s.vq[VSCSI_CTRLQ]);
    vd_vq_wait_used(&h->s.vq[VSCSI_CTRLQ], &id, &len, NULL);
    assert_int_equal(len, 0);
    vd_qtest_poll(h->q, 20);
    assert_true(vd_vmmio_status(&h->s.dev) & VSTAT_NEEDS_RESET);
    h_stop(h);
}

/* A device reset is a power-on for the disks: WCE returns to its default and 29/00 is reported. */
static void test_device_reset(void **state)
{
    H *h = h_start("cache=writeback");
    h_init(h);
    uint8_t sent[80];
    size_t n;
    VdVscsiResult r;
    bool wce, dpofua;
    assert_int_equal(vd_vscsi_set_cache_type(&h->s, 0, false, sent, &n, &r), 0);
    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_false(wce);
    vd_vmmio_reset(&h->s.dev);
    vd_guest_alloc_reset(&h->alloc);
    assert_true(vd_vscsi_init(&h->s, &h->dev, F(VF_VERSION_1), QSIZE, &h->alloc));
    static const uint8_t tur[6] = { 0 };
    vd_vscsi_cmd(&h->s, 0, tur, 6, NULL, 0, NULL, 0, &r);
    assert_check(r, 0x6, 0x2900);
    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_true(wce);
    h_stop(h);
}

/* cache=writethrough: the guest sees write through at power-on; a read-only drive shows WP. */
static void test_writethrough_and_read_only(void **state)
{
    H *h = h_start("cache=writethrough");
    h_init(h);
    bool wce, dpofua;
    assert_true(vd_vscsi_read_cache_type(&h->s, 0, &wce, &dpofua));
    assert_false(wce);
    h_stop(h);
    h = h_start("read-only=on");
    h_init(h);
    uint8_t buf[4];
    uint8_t ms[6] = { 0x1a, 0, 0x3f, 0, 4, 0 };
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, ms, 6, NULL, 0, buf, 4, NULL), 0);
    assert_int_equal(buf[2] & 0x80, 0x80);
    VdVscsiResult r;
    uint8_t data[512] = { 0 };
    uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    vd_vscsi_cmd(&h->s, 0, wr, 10, data, 512, NULL, 0, &r);
    assert_check(r, 0x7, 0x2700);
    h_stop(h);
}

/*
 * drain answers OK only once every answer is in guest memory: the IRQ of a
 * WRITE's response arrives before drain's OK, even when the backend I/O ended
 * and the response still waits in the disk's completion queue.
 */
static void test_drain_delivers(void **state)
{
    H *h = h_start("");
    h_init(h);
    uint8_t w[4096], lun[8];
    memset(w, 0x5a, sizeof(w));
    vd_vscsi_lun(lun, 0, 0);
    uint8_t wr10[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 8, 0 };
    for (int round = 0; round < 20; round++) {
        uint32_t isr = vd_qtest_readl(h->q, h->dev.base + VMMIO_INTERRUPT_STATUS);
        vd_qtest_writel(h->q, h->dev.base + VMMIO_INTERRUPT_ACK, isr);
        assert_false(vd_qtest_irq_level(h->q, h->dev.irq));
        VdVscsiReq r = vd_vscsi_submit(&h->s, lun, wr10, sizeof(wr10), w, sizeof(w), 0);
        /* Kick and drain in one write: the VMM handles both without running its loop in between. */
        g_autofree char *cmds = g_strdup_printf("writel 0x%" PRIx64 " %u\ndrain\n",
                                                h->dev.base + VMMIO_QUEUE_NOTIFY, h->s.vq[VSCSI_REQQ].index);
        g_autofree char *kicked = vd_qtest_raw(h->q, cmds, strlen(cmds));
        assert_string_equal(kicked, "OK");
        g_autofree char *drained = vd_qtest_raw(h->q, "", 0);
        assert_string_equal(drained, "OK");
        if (!vd_qtest_irq_level(h->q, h->dev.irq)) {
            fail_msg("round %d: drain answered OK before the response's IRQ", round);
        }
        VdVscsiResult res;
        vd_vscsi_collect(&h->s, &r, &res, NULL);
        assert_int_equal(res.status, 0);
    }
    h_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_every_opcode),
        cmocka_unit_test(test_data_roundtrip),
        cmocka_unit_test(test_linux_cache_type),
        cmocka_unit_test(test_fua_and_sync_cache),
        cmocka_unit_test(test_sense_errors),
        cmocka_unit_test(test_mode_pages),
        cmocka_unit_test(test_malformed_cdbs_and_lists),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_tmf),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_writethrough_and_read_only),
        cmocka_unit_test(test_drain_delivers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
