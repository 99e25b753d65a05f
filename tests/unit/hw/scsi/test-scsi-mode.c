/*
 * test-scsi-mode.c - MODE SENSE(6/10) and MODE SELECT(6/10): every page with
 * every PC value, DBD/LLBAA/truncation, malformed parameter lists, the unit
 * attention for other I_T nexuses, and the exact byte sequence Linux's sd
 * driver sends for /sys/class/scsi_disk/.../cache_type in both directions,
 * with host counters proving what the host did.
 */
#include "scsi-test-util.h"

#include <errno.h>

static char *image;
static VdBlockBackend *blk;
static VdScsiDisk *disk;
static uint8_t wbuf[4096];

static uint64_t durable_ops(VdBlockStats s)
{
    return s.host_fdatasync + s.host_rwf_dsync_writes + s.host_dsync_writes;
}

static int setup_cache(const char *mode)
{
    image = make_image(4u << 20);
    g_autofree char *opts = g_strdup_printf("file=%s,cache=%s", image, mode);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    memset(wbuf, 0xa5, sizeof(wbuf));
    return 0;
}

static int setup(void **state)
{
    return setup_cache("writeback");
}

static int setup_wt(void **state)
{
    return setup_cache("writethrough");
}

static int teardown(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    unlink_image(image);
    return 0;
}

/* Run MODE SENSE(6 or 10) with byte1 flags, PC/page, subpage and allocation length. */
static uint8_t mode_sense(TCmd *t, bool ten, uint8_t byte1, uint8_t pc, uint8_t page, uint8_t sub,
                          uint16_t alloc, uint8_t *data, size_t len)
{
    uint8_t cdb[10] = { 0 };
    cdb[1] = byte1;
    cdb[2] = (uint8_t)(pc << 6 | page);
    cdb[3] = sub;
    if (ten) {
        cdb[0] = 0x5a;
        vd_st_be16(cdb + 7, alloc);
        return run_nx(disk, t, 0, cdb, 10, NULL, 0, data, len);
    }
    cdb[0] = 0x1a;
    cdb[4] = (uint8_t)alloc;
    return run_nx(disk, t, 0, cdb, 6, NULL, 0, data, len);
}

/* Expected bytes 2.. of each page for a PC value and WCE values. */
static void check_page(const uint8_t *p, unsigned pc, bool wce_cur, bool wce_def)
{
    assert_int_equal(p[0] & 0x80, 0);                         /* PS=0: not savable */
    assert_int_equal(p[0] & 0x40, 0);                         /* SPF=0 */
    switch (p[0] & 0x3f) {
    case 0x01:
        assert_int_equal(p[1], 0x0a);
        for (int i = 2; i < 12; i++) {
            assert_int_equal(p[i], 0);
        }
        break;
    case 0x08:
        assert_int_equal(p[1], 0x12);
        if (pc == 1) {
            assert_int_equal(p[2], 0x04);                     /* only WCE is changeable */
        } else {
            assert_int_equal(p[2], (pc == 0 ? wce_cur : wce_def) ? 0x04 : 0x00);
        }
        for (int i = 3; i < 20; i++) {
            assert_int_equal(p[i], 0);
        }
        break;
    case 0x0a:
        assert_int_equal(p[1], 0x0a);
        if (pc == 1) {
            for (int i = 2; i < 12; i++) {
                assert_int_equal(p[i], 0);
            }
        } else {
            assert_int_equal(p[2], 0x02);                     /* GLTSD, TST=0, D_SENSE=0 */
            assert_int_equal(p[3], 0x10);                     /* unrestricted reordering */
        }
        break;
    default:
        fail_msg("unexpected page %#x", p[0]);
    }
}

/* Every page (0x01, 0x08, 0x0A, 0x3F) x PC (0, 1, 2) x MODE SENSE(6/10) x DBD; PC=3 is 39/00. */
static void test_mode_sense_matrix(void **state)
{
    static const uint8_t pages[] = { 0x01, 0x08, 0x0a, 0x3f };
    static const uint8_t all[] = { 0x01, 0x08, 0x0a };
    uint8_t data[512];
    TCmd t;
    bool wce = vd_blk_write_cache(blk);
    bool wce_def = vd_blk_default_write_cache(blk);
    for (int ten = 0; ten <= 1; ten++) {
        for (int dbd = 0; dbd <= 1; dbd++) {
            for (size_t pi = 0; pi < sizeof(pages); pi++) {
                for (unsigned pc = 0; pc <= 2; pc++) {
                    memset(data, 0xee, sizeof(data));
                    mode_sense(&t, ten, dbd ? 0x08 : 0, pc, pages[pi], 0, 255, data, 255);
                    assert_good(&t);
                    size_t hdr = ten ? 8 : 4;
                    size_t total = ten ? (size_t)(data[0] << 8 | data[1]) + 2 : (size_t)data[0] + 1;
                    size_t bdl = ten ? (size_t)(data[6] << 8 | data[7]) : data[3];
                    uint8_t devspec = data[ten ? 3 : 2];
                    assert_int_equal(t.req.in_resid, 255 - total);
                    assert_int_equal(data[ten ? 2 : 1], 0);           /* medium type */
                    assert_int_equal(devspec, 0x10);                  /* DPOFUA, not WP */
                    assert_int_equal(bdl, dbd ? 0 : 8);
                    if (!dbd) {
                        assert_int_equal(vd_ld_be32(data + hdr), (4u << 20) / 512);
                        assert_int_equal(data[hdr + 4], 0);
                        assert_int_equal(data[hdr + 5] << 16 | data[hdr + 6] << 8 | data[hdr + 7], 512);
                    }
                    size_t o = hdr + bdl;
                    size_t seen = 0;
                    while (o < total) {
                        uint8_t code = data[o] & 0x3f;
                        if (pages[pi] == 0x3f) {
                            assert_int_equal(code, all[seen]);
                        } else {
                            assert_int_equal(code, pages[pi]);
                        }
                        check_page(data + o, pc, wce, wce_def);
                        o += 2 + data[o + 1];
                        seen++;
                    }
                    assert_int_equal(o, total);
                    assert_int_equal(seen, pages[pi] == 0x3f ? 3 : 1);
                    assert_int_equal(data[total], 0xee);
                }
                mode_sense(&t, ten, dbd ? 0x08 : 0, 3, pages[pi], 0, 255, data, 255);
                assert_sense(&t, 0x5, 0x39, 0x00);
                assert_field(&t, true, 2, 7);
            }
        }
    }
}

/* LLBAA gives a 16-byte descriptor; truncation keeps the full MODE DATA LENGTH; bad page/subpage. */
static void test_mode_sense_fields(void **state)
{
    uint8_t data[255];
    TCmd t;
    mode_sense(&t, true, 0x10, 0, 0x08, 0, 255, data, 255);
    assert_good(&t);
    assert_int_equal(data[4] & 1, 1);                          /* LONGLBA */
    assert_int_equal(data[6] << 8 | data[7], 16);
    assert_int_equal(vd_ld_be64(data + 8), (4u << 20) / 512);
    assert_int_equal(vd_ld_be32(data + 8 + 12), 512);
    assert_int_equal(data[24] & 0x3f, 0x08);
    /* Allocation length 4: just the header, which still says how much there is. */
    memset(data, 0xee, sizeof(data));
    mode_sense(&t, false, 0, 0, 0x08, 0, 4, data, 255);
    assert_good(&t);
    assert_int_equal(data[0], 4 + 8 + 20 - 1);
    assert_int_equal(data[4], 0xee);
    assert_int_equal(t.req.in_resid, 255 - 4);
    /* Subpage 0xFF (all subpages) is page 0 only; other subpages are invalid. */
    mode_sense(&t, false, 0x08, 0, 0x3f, 0xff, 255, data, 255);
    assert_good(&t);
    assert_int_equal(data[0], 3 + 12 + 20 + 12);
    mode_sense(&t, false, 0, 0, 0x08, 0x01, 255, data, 255);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 3, -1);
    static const uint8_t missing[] = { 0x00, 0x02, 0x03, 0x04, 0x07, 0x1c, 0x19, 0x3e };
    for (size_t i = 0; i < sizeof(missing); i++) {
        mode_sense(&t, i & 1, 0, 0, missing[i], 0, 255, data, 255);
        assert_sense(&t, 0x5, 0x24, 0x00);
        assert_field(&t, true, 2, 5);
    }
    /* Buffer smaller than the data: OVERRUN. */
    mode_sense(&t, false, 0, 0, 0x3f, 0, 255, data, 20);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
}

/*
 * The Linux sd driver, replicated.  scsi_mode_sense() builds the CDB with
 * cmd[1] = dbd & 0x18, cmd[2] = page, the allocation length in byte 4
 * (MODE SENSE(6)) or 7-8 (MODE SENSE(10)), and parses the header into
 * struct scsi_mode_data.
 */
typedef struct LinuxModeData {
    unsigned length, header_length, block_descriptor_length;
    uint8_t medium_type, device_specific;
    bool longlba;
} LinuxModeData;

static int linux_mode_sense(bool use10, uint8_t dbd, uint8_t page, uint8_t *buf, unsigned len, LinuxModeData *d)
{
    uint8_t cdb[10] = { 0 };
    TCmd t;
    memset(d, 0, sizeof(*d));
    cdb[1] = dbd & 0x18;
    cdb[2] = page;
    memset(buf, 0, len);
    if (use10) {
        cdb[0] = 0x5a;
        vd_st_be16(cdb + 7, len);
        run_nx(disk, &t, 0, cdb, 10, NULL, 0, buf, len);
        d->header_length = 8;
    } else {
        cdb[0] = 0x1a;
        cdb[4] = len;
        run_nx(disk, &t, 0, cdb, 6, NULL, 0, buf, len);
        d->header_length = 4;
    }
    if (t.req.response != VD_SCSI_RESP_OK || t.req.status != VD_SCSI_GOOD) {
        return -EIO;
    }
    if (use10) {
        d->length = (buf[0] << 8 | buf[1]) + 2;
        d->medium_type = buf[2];
        d->device_specific = buf[3];
        d->longlba = buf[4] & 1;
        d->block_descriptor_length = buf[6] << 8 | buf[7];
    } else {
        d->length = buf[0] + 1;
        d->medium_type = buf[1];
        d->device_specific = buf[2];
        d->block_descriptor_length = buf[3];
    }
    return 0;
}

/* sd_read_cache_type(): page 8, DBD=0, first 4 bytes then the real length; finds WCE/RCD and DPOFUA. */
static void linux_read_cache_type(bool use10, bool *wce, bool *rcd, bool *dpofua)
{
    uint8_t buf[512];
    LinuxModeData d;
    unsigned first_len = use10 ? 8 : 4;
    assert_int_equal(linux_mode_sense(use10, 0, 0x08, buf, first_len, &d), 0);
    unsigned len = d.length;
    assert_true(len >= 3 && len <= 512);
    if (len > first_len) {
        assert_int_equal(linux_mode_sense(use10, 0, 0x08, buf, len, &d), 0);
    }
    unsigned offset = d.header_length + d.block_descriptor_length;
    /* Walk pages as sd does until page 8 is found. */
    while (offset < len && (buf[offset] & 0x3f) != 0x08) {
        offset += 2 + buf[offset + 1];
    }
    assert_true(offset + 2 < len);
    *wce = buf[offset + 2] & 0x04;
    *rcd = buf[offset + 2] & 0x01;
    *dpofua = d.device_specific & 0x10;
}

/* sd_read_write_protect_flag(): page 0x3F, 4 bytes. */
static bool linux_read_wp(void)
{
    uint8_t buf[4];
    LinuxModeData d;
    assert_int_equal(linux_mode_sense(false, 0, 0x3f, buf, 4, &d), 0);
    return d.device_specific & 0x80;
}

/*
 * cache_type_store() + scsi_mode_select(): MODE SENSE page 8 with DBD (len
 * 64), edit WCE/RCD in byte 2, clear PS, set the device-specific byte to 0,
 * MODE SELECT PF=1 SP=PS with a header of {0, medium type, 0, bdl}.  Returns
 * the parameter list it sent in *sent for byte-exact checks.
 */
static TCmd linux_cache_type_store(bool use10, int ct, uint8_t *sent, size_t *sent_len)
{
    uint8_t buffer[64];
    LinuxModeData d;
    int rcd = ct & 0x01 ? 1 : 0;
    int wce = ct & 0x02 ? 1 : 0;
    assert_int_equal(linux_mode_sense(use10, 0x08, 0x08, buffer, sizeof(buffer), &d), 0);
    unsigned len = MIN(sizeof(buffer), d.length - d.header_length - d.block_descriptor_length);
    uint8_t *buffer_data = buffer + d.header_length + d.block_descriptor_length;
    buffer_data[2] &= ~0x05;
    buffer_data[2] |= wce << 2 | rcd;
    int sp = buffer_data[0] & 0x80 ? 1 : 0;
    buffer_data[0] &= ~0x80;
    d.device_specific = 0;

    uint8_t cdb[10] = { 0 };
    cdb[1] = 0x10 | (sp ? 0x01 : 0);
    uint8_t *real = sent;
    size_t n;
    TCmd t;
    if (use10 || len + 4 > 255) {
        memcpy(real + 8, buffer_data, len);
        n = len + 8;
        real[0] = 0;
        real[1] = 0;
        real[2] = d.medium_type;
        real[3] = d.device_specific;
        real[4] = d.longlba ? 0x01 : 0;
        real[5] = 0;
        vd_st_be16(real + 6, d.block_descriptor_length);
        cdb[0] = 0x55;
        vd_st_be16(cdb + 7, n);
        run_nx(disk, &t, 0, cdb, 10, real, n, NULL, 0);
    } else {
        memcpy(real + 4, buffer_data, len);
        n = len + 4;
        real[0] = 0;
        real[1] = d.medium_type;
        real[2] = d.device_specific;
        real[3] = d.block_descriptor_length;
        cdb[0] = 0x15;
        cdb[4] = n;
        run_nx(disk, &t, 0, cdb, 6, real, n, NULL, 0);
    }
    *sent_len = n;
    return t;
}

enum { CT_WRITE_THROUGH = 0, CT_NONE = 1, CT_WRITE_BACK = 2 };

/* One WRITE(10) of one block at lba. */
static void write_block(uint32_t lba, uint8_t flags)
{
    TCmd t;
    uint8_t cdb[10] = { 0x2a, flags };
    vd_st_be32(cdb + 2, lba);
    vd_st_be16(cdb + 7, 1);
    run_nx(disk, &t, 0, cdb, 10, wbuf, 512, NULL, 0);
    assert_good(&t);
}

/* The whole Linux cache_type round trip, write back -> write through -> write back. */
static void linux_cache_type_roundtrip(bool use10)
{
    bool wce, rcd, dpofua;
    uint8_t sent[80];
    size_t n;

    /* Probe as sd_revalidate_disk does: WCE=1 (cache=writeback), DPOFUA=1, WP=0. */
    linux_read_cache_type(use10, &wce, &rcd, &dpofua);
    assert_true(wce);
    assert_false(rcd);
    assert_true(dpofua);
    assert_false(linux_read_wp());

    /* Dirty the cache, then echo "write through" > cache_type. */
    write_block(1, 0);
    VdBlockStats a = blk_stats(blk);
    TCmd t = linux_cache_type_store(use10, CT_WRITE_THROUGH, sent, &n);
    assert_good(&t);
    /* Exactly what Linux sent: header with device-specific 0 and no block descriptor, then page 8. */
    size_t hdr = use10 ? 8 : 4;
    assert_int_equal(n, hdr + 20);
    static const uint8_t hdr6[4] = { 0, 0, 0, 0 };
    static const uint8_t hdr10[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_memory_equal(sent, use10 ? hdr10 : hdr6, hdr);
    uint8_t page_wt[20] = { 0x08, 0x12, 0x00 };
    assert_memory_equal(sent + hdr, page_wt, 20);
    VdBlockStats b = blk_stats(blk);
    /* The host: WCE now off, one toggle, and the dirty data flushed before MODE SELECT completed. */
    assert_false(vd_blk_write_cache(blk));
    assert_int_equal(b.wce_toggles, a.wce_toggles + 1);
    assert_int_equal(b.host_fdatasync, a.host_fdatasync + 1);
    /* sd_revalidate_disk re-reads the page: WCE=0. */
    linux_read_cache_type(use10, &wce, &rcd, &dpofua);
    assert_false(wce);
    /* Now a plain WRITE is durable at completion. */
    a = blk_stats(blk);
    write_block(2, 0);
    b = blk_stats(blk);
    assert_true(durable_ops(b) > durable_ops(a));

    /* echo "write back" > cache_type. */
    a = blk_stats(blk);
    t = linux_cache_type_store(use10, CT_WRITE_BACK, sent, &n);
    assert_good(&t);
    uint8_t page_wb[20] = { 0x08, 0x12, 0x04 };
    assert_memory_equal(sent + hdr, page_wb, 20);
    b = blk_stats(blk);
    assert_true(vd_blk_write_cache(blk));
    assert_int_equal(b.wce_toggles, a.wce_toggles + 1);
    assert_int_equal(durable_ops(b), durable_ops(a));         /* turning the cache on syncs nothing */
    linux_read_cache_type(use10, &wce, &rcd, &dpofua);
    assert_true(wce);
    /* Writes are cached again; SYNCHRONIZE CACHE(10) with every field 0 makes them durable. */
    a = blk_stats(blk);
    write_block(3, 0);
    b = blk_stats(blk);
    assert_int_equal(durable_ops(b), durable_ops(a));
    TCmd s;
    uint8_t sc[10] = { 0x35 };
    RUN(disk, &s, sc, NULL, 0, NULL, 0);
    assert_good(&s);
    assert_int_equal(blk_stats(blk).host_fdatasync, b.host_fdatasync + 1);
    /* dd oflag=direct,dsync: WRITE(10) FUA=1 is a FUA write. */
    a = blk_stats(blk);
    write_block(4, 0x08);
    b = blk_stats(blk);
    assert_int_equal(b.fua_writes, a.fua_writes + 1);
    assert_true(durable_ops(b) > durable_ops(a));

    /* Writing the same value again changes nothing and needs no flush. */
    a = blk_stats(blk);
    t = linux_cache_type_store(use10, CT_WRITE_BACK, sent, &n);
    assert_good(&t);
    assert_int_equal(blk_stats(blk).wce_toggles, a.wce_toggles);
    /* "none" asks for RCD=1, which is not changeable: refused, nothing changes. */
    t = linux_cache_type_store(use10, CT_NONE, sent, &n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, hdr + 2, 0);
    assert_true(vd_blk_write_cache(blk));
}

static void test_linux_cache_type_mode6(void **state)
{
    linux_cache_type_roundtrip(false);
}

static void test_linux_cache_type_mode10(void **state)
{
    linux_cache_type_roundtrip(true);
}

/* cache=writethrough: WCE starts 0 (default and current), Linux sees write through; it can be turned on. */
static void test_writethrough_default(void **state)
{
    bool wce, rcd, dpofua;
    uint8_t sent[80];
    size_t n;
    linux_read_cache_type(false, &wce, &rcd, &dpofua);
    assert_false(wce);
    TCmd t = linux_cache_type_store(false, CT_WRITE_BACK, sent, &n);
    assert_good(&t);
    assert_true(vd_blk_write_cache(blk));
    uint8_t data[64];
    mode_sense(&t, false, 0x08, 2, 0x08, 0, 64, data, 64);   /* default still WCE=0 */
    assert_good(&t);
    assert_int_equal(data[4 + 2] & 0x04, 0);
    mode_sense(&t, false, 0x08, 0, 0x08, 0, 64, data, 64);   /* current WCE=1 */
    assert_int_equal(data[4 + 2] & 0x04, 0x04);
}

/* Build a MODE SELECT(6) list: header {0, mt, ds, bdl}, optional descriptor, then page bytes. */
static size_t ms6_list(uint8_t *p, uint8_t mt, uint8_t ds, const uint8_t *bd, const uint8_t *pages, size_t plen)
{
    p[0] = 0;
    p[1] = mt;
    p[2] = ds;
    p[3] = bd ? 8 : 0;
    size_t o = 4;
    if (bd) {
        memcpy(p + o, bd, 8);
        o += 8;
    }
    memcpy(p + o, pages, plen);
    return o + plen;
}

static uint8_t mode_select6(TCmd *t, uint8_t byte1, const uint8_t *list, size_t pll, size_t out_len)
{
    uint8_t cdb[6] = { 0x15, byte1, 0, 0, (uint8_t)pll, 0 };
    return run_nx(disk, t, 0, cdb, 6, list, out_len, NULL, 0);
}

/* Malformed MODE SELECT CDBs and parameter lists, each with its exact sense; nothing changes. */
static void test_mode_select_errors(void **state)
{
    uint8_t list[128];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };             /* WCE=0: a change */
    TCmd t;
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    uint64_t toggles = blk_stats(blk).wce_toggles;

    mode_select6(&t, 0x11, list, n, n);                     /* SP=1 */
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 0);
    mode_select6(&t, 0x00, list, n, n);                     /* PF=0 */
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 4);
    mode_select6(&t, 0x10, list, 3, 3);                     /* shorter than the header */
    assert_sense(&t, 0x5, 0x1a, 0x00);
    mode_select6(&t, 0x10, list, n - 1, n - 1);             /* page cut short */
    assert_sense(&t, 0x5, 0x1a, 0x00);
    mode_select6(&t, 0x10, list, 5, 5);                     /* one byte of page header */
    assert_sense(&t, 0x5, 0x1a, 0x00);
    mode_select6(&t, 0x10, list, n, n - 5);                 /* data-out shorter than the list */
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);

    n = ms6_list(list, 0x05, 0, NULL, caching, 20);         /* medium type */
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 1, -1);
    n = ms6_list(list, 0, 0x01, NULL, caching, 20);         /* reserved device-specific bit */
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 2, 0);

    uint8_t badlen[20] = { 0x08, 0x10 };                    /* wrong page length */
    n = ms6_list(list, 0, 0, NULL, badlen, 18);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 5, -1);
    uint8_t unknown[12] = { 0x02, 0x0a };                   /* unsupported page */
    n = ms6_list(list, 0, 0, NULL, unknown, 12);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 4, 5);
    uint8_t spf[20] = { 0x48, 0x12 };                       /* subpage format */
    n = ms6_list(list, 0, 0, NULL, spf, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 4, 6);

    uint8_t rcd[20] = { 0x08, 0x12, 0x01 };                 /* RCD: not changeable */
    n = ms6_list(list, 0, 0, NULL, rcd, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 6, 0);
    uint8_t dra[20] = { 0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20 };   /* caching byte 12 */
    n = ms6_list(list, 0, 0, NULL, dra, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 16, 5);
    uint8_t ctl[12] = { 0x0a, 0x0a, 0x06, 0x10 };           /* control: D_SENSE */
    n = ms6_list(list, 0, 0, NULL, ctl, 12);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 6, 2);

    /* Block descriptor: wrong block length, density, count; bad descriptor length. */
    uint8_t bd[8] = { 0, 0, 0, 0, 0, 0, 0x10, 0 };          /* 4096-byte blocks */
    n = ms6_list(list, 0, 0, bd, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 9, -1);
    uint8_t bd2[8] = { 0, 0, 0, 0, 0x01, 0, 0x02, 0 };
    n = ms6_list(list, 0, 0, bd2, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 8, -1);
    uint8_t bd3[8] = { 0, 0, 0x10, 0, 0, 0, 0x02, 0 };      /* 4096 blocks: not the capacity */
    n = ms6_list(list, 0, 0, bd3, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 4, -1);
    n = ms6_list(list, 0, 0, NULL, caching, 20);
    list[3] = 4;
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 3, -1);
    list[3] = 8;                                            /* descriptor longer than the list */
    mode_select6(&t, 0x10, list, 10, 10);
    assert_sense(&t, 0x5, 0x1a, 0x00);

    /* A valid first page and an invalid second one: all-or-nothing. */
    uint8_t two[32] = { 0x08, 0x12, 0x00 };
    two[20] = 0x0a;
    two[21] = 0x0a;
    two[22] = 0xff;
    n = ms6_list(list, 0, 0, NULL, two, 32);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_int_equal(blk_stats(blk).wce_toggles, toggles);
    assert_true(vd_blk_write_cache(blk));

    /* Parameter list length 0 is no data and no error. */
    mode_select6(&t, 0x10, NULL, 0, 0);
    assert_good(&t);
}

/* MODE SELECT accepts a correct block descriptor, old-Linux echoes of WP/DPOFUA, and all three pages. */
static void test_mode_select_accepts(void **state)
{
    uint8_t list[128];
    TCmd t;
    uint8_t bd[8];
    vd_st_be32(bd, (4u << 20) / 512);
    bd[4] = 0;
    bd[5] = 0;
    bd[6] = 0x02;
    bd[7] = 0;
    uint8_t pages[52] = { 0x01, 0x0a };
    pages[12] = 0x88;                                      /* PS echoed: ignored in MODE SELECT */
    pages[13] = 0x12;
    pages[14] = 0x00;                                      /* WCE=0 */
    pages[32] = 0x0a;
    pages[33] = 0x0a;
    pages[34] = 0x02;
    pages[35] = 0x10;
    size_t n = ms6_list(list, 0, 0x10, bd, pages, 44);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    assert_false(vd_blk_write_cache(blk));
    /* A zero block count in the descriptor means "unchanged". */
    memset(bd, 0, 4);
    pages[14] = 0x04;
    n = ms6_list(list, 0, 0x90, bd, pages, 44);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    assert_true(vd_blk_write_cache(blk));
    /* MODE SELECT(10) with a long LBA block descriptor. */
    uint8_t l10[8 + 16 + 20] = { 0 };
    l10[4] = 0x01;
    vd_st_be16(l10 + 6, 16);
    vd_st_be64(l10 + 8, (4u << 20) / 512);
    vd_st_be32(l10 + 8 + 12, 512);
    l10[24] = 0x08;
    l10[25] = 0x12;
    uint8_t cdb[10] = { 0x55, 0x10 };
    vd_st_be16(cdb + 7, sizeof(l10));
    RUN(disk, &t, cdb, l10, sizeof(l10), NULL, 0);
    assert_good(&t);
    assert_false(vd_blk_write_cache(blk));
}

/* A change made on nexus 0 raises MODE PARAMETERS CHANGED on nexus 1 only; no change, no UA. */
static void test_mode_select_unit_attention(void **state)
{
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };
    uint8_t tur[6] = { 0 };
    TCmd t;
    clear_power_on_ua(disk, 1);
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    run_nx(disk, &t, 0, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
    run_nx(disk, &t, 1, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&t, 0x6, 0x2a, 0x01);
    run_nx(disk, &t, 1, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
    /* Same value again: no change, no unit attention. */
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    run_nx(disk, &t, 1, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
    /* INQUIRY does not consume the unit attention; REQUEST SENSE does. */
    caching[2] = 0x04;
    n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    uint8_t data[36];
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    run_nx(disk, &t, 1, inq, 6, NULL, 0, data, 36);
    assert_good(&t);
    assert_true(vd_scsi_disk_has_unit_attention(disk, 1));
    uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
    uint8_t sense[18];
    run_nx(disk, &t, 1, rs, 6, NULL, 0, sense, 18);
    assert_good(&t);
    assert_int_equal(sense[2], 0x6);
    assert_int_equal(sense[12], 0x2a);
    assert_int_equal(sense[13], 0x01);
    assert_false(vd_scsi_disk_has_unit_attention(disk, 1));
}

/* The flush before write-through fails: MODE SELECT reports WRITE ERROR. */
static void test_mode_select_flush_failure(void **state)
{
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };
    TCmd t;
    write_block(7, 0);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_sense(&t, 0x3, 0x0c, 0x00);
}

/* WCE of the current caching page, read with MODE SENSE(6) on nexus. */
static bool sense_wce(unsigned nexus)
{
    uint8_t data[64];
    uint8_t cdb[6] = { 0x1a, 0x08, 0x08, 0, 64, 0 };
    TCmd t;
    run_nx(disk, &t, nexus, cdb, 6, NULL, 0, data, 64);
    assert_good(&t);
    assert_int_equal(data[4], 0x08);
    return data[6] & 0x04;
}

/* TEST UNIT READY on nexus: the next unit attention must be 2A/01, then none. */
static void expect_params_changed(unsigned nexus)
{
    uint8_t tur[6] = { 0 };
    TCmd t;
    run_nx(disk, &t, nexus, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&t, 0x6, 0x2a, 0x01);
    run_nx(disk, &t, nexus, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
}

/* TEST UNIT READY on nexus finds no unit attention. */
static void expect_no_ua(unsigned nexus)
{
    uint8_t tur[6] = { 0 };
    TCmd t;
    run_nx(disk, &t, nexus, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
}

/*
 * Issue 1/8 finding 1 for SCSI: the guest turns the cache off, the HOST turns
 * the backend's cache on.  Every nexus (the one that changed it included) gets
 * MODE PARAMETERS CHANGED, then MODE SENSE shows WCE=1.  A freed disk stops listening.
 */
static void test_host_wce_change_unit_attention(void **state)
{
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };
    TCmd t;
    clear_power_on_ua(disk, 1);                           /* disk_new_ok cleared nexus 0's */
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);                   /* the guest's own change, on nexus 0 */
    assert_good(&t);
    expect_no_ua(0);
    expect_params_changed(1);
    assert_false(sense_wce(0));

    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);   /* the host's */
    expect_params_changed(0);
    expect_params_changed(1);
    assert_true(sense_wce(0));
    assert_true(sense_wce(1));

    /* Free the disk: a host change must not reach it any more (ASan). */
    vd_scsi_disk_free(disk);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    disk = disk_new_ok(blk, 0);
}

/* Run a MODE SELECT CDB with no parameter list on nexus 0. */
static void mode_select_cdb(TCmd *t, const uint8_t *cdb, size_t len)
{
    run_nx(disk, t, 0, cdb, len, NULL, 0, NULL, 0);
}

/*
 * Issue 8/8 finding 8: MODE SELECT with RTD=1 (SPC-5) reverts every page to
 * its defaults, whatever PF says: sdparm --defaults --defaults sends
 * 55 02 00 ...; 55 12 00 ... and MODE SELECT(6) 15 02 00 ... do the same.
 * Here the default is write-back: WCE comes back on, other nexuses get 2A/01.
 */
static void test_revert_to_defaults(void **state)
{
    static const uint8_t sdparm10[10] = { 0x55, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t pf_rtd10[10] = { 0x55, 0x12, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t sdparm6[6] = { 0x15, 0x02, 0, 0, 0, 0 };
    const uint8_t *cdbs[] = { sdparm10, pf_rtd10, sdparm6 };
    const size_t lens[] = { 10, 10, 6 };
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };
    TCmd t;
    clear_power_on_ua(disk, 1);
    for (size_t i = 0; i < G_N_ELEMENTS(cdbs); i++) {
        size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
        mode_select6(&t, 0x10, list, n, n);
        assert_good(&t);
        assert_false(vd_blk_write_cache(blk));
        expect_params_changed(1);
        mode_select_cdb(&t, cdbs[i], lens[i]);
        assert_good(&t);
        assert_true(vd_blk_write_cache(blk));
        assert_true(sense_wce(0));
        expect_params_changed(1);
        /* Already at the defaults: nothing changes, no unit attention. */
        mode_select_cdb(&t, cdbs[i], lens[i]);
        assert_good(&t);
        expect_no_ua(1);
    }
}

/* RTD with write-through as the default: the revert flushes what the cache holds first; errors are reported. */
static void test_revert_to_defaults_flushes(void **state)
{
    static const uint8_t sdparm10[10] = { 0x55, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 };
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x04 };
    TCmd t;
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    assert_true(vd_blk_write_cache(blk));
    write_block(3, 0);
    VdBlockStats a = blk_stats(blk);
    mode_select_cdb(&t, sdparm10, 10);
    assert_good(&t);
    assert_false(vd_blk_write_cache(blk));
    assert_int_equal(blk_stats(blk).host_fdatasync, a.host_fdatasync + 1);

    /* The flush of the revert fails: WRITE ERROR, and the cache is off. */
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    write_block(4, 0);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    mode_select_cdb(&t, sdparm10, 10);
    assert_sense(&t, 0x3, 0x0c, 0x00);
    assert_false(vd_blk_write_cache(blk));
}

/* RTD takes no parameter list; SP=1 stays refused; both leave WCE alone. */
static void test_revert_to_defaults_errors(void **state)
{
    uint8_t list[64];
    uint8_t caching[20] = { 0x08, 0x12, 0x00 };
    TCmd t;
    size_t n = ms6_list(list, 0, 0, NULL, caching, 20);
    mode_select6(&t, 0x10, list, n, n);
    assert_good(&t);
    uint8_t cdb10[10] = { 0x55, 0x12, 0, 0, 0, 0, 0, 0, (uint8_t)n, 0 };
    run_nx(disk, &t, 0, cdb10, 10, list, n, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 7, -1);
    mode_select6(&t, 0x02, list, n, n);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 4, -1);
    uint8_t sp[10] = { 0x55, 0x03, 0, 0, 0, 0, 0, 0, 0, 0 };
    mode_select_cdb(&t, sp, 10);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 0);
    assert_false(vd_blk_write_cache(blk));
}

/* MODE SELECT on a read-only disk still switches WCE; MODE SENSE shows WP. */
static void test_mode_sense_wp(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    g_autofree char *opts = g_strdup_printf("file=%s,read-only=on", image);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    assert_true(linux_read_wp());
    uint8_t data[64];
    TCmd t;
    mode_sense(&t, true, 0, 0, 0x08, 0, 64, data, 64);
    assert_good(&t);
    assert_int_equal(data[3], 0x90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mode_sense_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_sense_matrix, setup_wt, teardown),
        cmocka_unit_test_setup_teardown(test_mode_sense_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_cache_type_mode6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_cache_type_mode10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writethrough_default, setup_wt, teardown),
        cmocka_unit_test_setup_teardown(test_mode_select_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_select_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_select_unit_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_select_flush_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_sense_wp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_wce_change_unit_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_to_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_to_defaults_flushes, setup_wt, teardown),
        cmocka_unit_test_setup_teardown(test_revert_to_defaults_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
