/*
 * test-scsi-io.c - the SCSI disk's data path on a real image file: READ and
 * WRITE in every CDB size, FUA, SYNCHRONIZE CACHE (with IMMED and deferred
 * errors), VERIFY, WRITE AND VERIFY, UNMAP, WRITE SAME, I/O error sense and
 * read-only disks.  Host counters prove what reached the host.
 */
#include "scsi-test-util.h"

#include <errno.h>

#define IMG_SIZE (8u << 20)
#define IMG_BLOCKS (IMG_SIZE / 512)

static char *image;
static VdBlockBackend *blk;
static VdScsiDisk *disk;
static uint8_t wbuf[256 * 512], rbuf[256 * 512];

/* Host operations that make a write durable. */
static uint64_t durable_ops(VdBlockStats s)
{
    return s.host_fdatasync + s.host_rwf_dsync_writes + s.host_dsync_writes;
}

static int setup_opts(const char *extra)
{
    image = make_image(IMG_SIZE);
    g_autofree char *opts = g_strdup_printf("file=%s,cache=writeback%s", image, extra);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    for (size_t i = 0; i < sizeof(wbuf); i++) {
        wbuf[i] = (uint8_t)(i * 7 + i / 512);
    }
    return 0;
}

static int setup(void **state)
{
    return setup_opts("");
}

/* werror=report: the guest sees every write error (the default, enospc, would hold an ENOSPC write). */
static int setup_report(void **state)
{
    return setup_opts(",werror=report");
}

static int setup_ro(void **state)
{
    return setup_opts(",read-only=on");
}

static int teardown(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    unlink_image(image);
    return 0;
}

/* Build a READ/WRITE CDB of the given size for (lba, n) with byte-1 flags. */
static size_t rw_cdb(uint8_t *cdb, unsigned size, bool write, uint64_t lba, uint32_t n, uint8_t flags)
{
    memset(cdb, 0, 16);
    switch (size) {
    case 6:
        cdb[0] = write ? 0x0a : 0x08;
        cdb[1] = (lba >> 16) & 0x1f;
        cdb[2] = lba >> 8;
        cdb[3] = lba;
        cdb[4] = n == 256 ? 0 : n;
        break;
    case 10:
        cdb[0] = write ? 0x2a : 0x28;
        cdb[1] = flags;
        vd_st_be32(cdb + 2, (uint32_t)lba);
        vd_st_be16(cdb + 7, n);
        break;
    case 12:
        cdb[0] = write ? 0xaa : 0xa8;
        cdb[1] = flags;
        vd_st_be32(cdb + 2, (uint32_t)lba);
        vd_st_be32(cdb + 6, n);
        break;
    default:
        cdb[0] = write ? 0x8a : 0x88;
        cdb[1] = flags;
        vd_st_be64(cdb + 2, lba);
        vd_st_be32(cdb + 10, n);
        break;
    }
    return size;
}

static uint8_t rw(TCmd *t, unsigned size, bool write, uint64_t lba, uint32_t n, uint8_t flags, size_t buflen)
{
    uint8_t cdb[16];
    size_t len = rw_cdb(cdb, size, write, lba, n, flags);
    if (write) {
        return run_nx(disk, t, 0, cdb, len, wbuf, buflen, NULL, 0);
    }
    return run_nx(disk, t, 0, cdb, len, NULL, 0, rbuf, buflen);
}

/* Every READ/WRITE size round-trips data, at distinct LBAs, and lands at the right offset. */
static void test_read_write_all_sizes(void **state)
{
    static const unsigned sizes[] = { 6, 10, 12, 16 };
    TCmd t;
    for (unsigned i = 0; i < 4; i++) {
        uint64_t lba = 100 + 40 * i;
        rw(&t, sizes[i], true, lba, 8, 0, 8 * 512);
        assert_good(&t);
        assert_int_equal(t.req.out_resid, 0);
        memset(rbuf, 0, sizeof(rbuf));
        rw(&t, sizes[i], false, lba, 8, 0, 8 * 512 + 100);
        assert_good(&t);
        assert_int_equal(t.req.in_resid, 100);
        assert_memory_equal(rbuf, wbuf, 8 * 512);
        /* Independent check through the backend. */
        uint8_t direct[512];
        assert_int_equal(vd_blk_pread_sync(blk, lba * 512 + 512, direct, 512), 0);
        assert_memory_equal(direct, wbuf + 512, 512);
    }
    /* READ(6) with transfer length 0 moves 256 blocks. */
    rw(&t, 6, false, 0, 256, 0, 256 * 512);
    assert_good(&t);
    assert_int_equal(t.req.in_resid, 0);
    /* READ(10) with 0 blocks is no transfer, not an error. */
    rw(&t, 10, false, 5, 0, 0, 512);
    assert_good(&t);
    assert_int_equal(t.req.in_resid, 512);
    /* A scattered data-in buffer. */
    TCmd s;
    uint8_t cdb[16];
    rw_cdb(cdb, 10, false, 100, 2, 0);
    struct iovec iov[3] = { { rbuf, 100 }, { rbuf + 1000, 824 }, { rbuf + 4000, 200 } };
    memset(&s, 0, sizeof(s));
    memcpy(s.req.cdb, cdb, 10);
    s.req.cdb_len = 10;
    s.req.in_iov = iov;
    s.req.in_niov = 3;
    s.req.complete = tcmd_complete;
    s.req.opaque = &s;
    vd_scsi_disk_submit(disk, &s.req);
    tcmd_wait(&s);
    assert_good(&s);
    assert_int_equal(s.req.in_resid, 100);
    assert_memory_equal(rbuf, wbuf, 100);
    assert_memory_equal(rbuf + 1000, wbuf + 100, 824);
    assert_memory_equal(rbuf + 4000, wbuf + 924, 100);
}

/* LBA out of range, overflow, protection fields, transfer limit, short buffers. */
static void test_rw_range_and_fields(void **state)
{
    TCmd t;
    static const unsigned sizes[] = { 10, 12, 16 };
    for (unsigned i = 0; i < 3; i++) {
        rw(&t, sizes[i], false, IMG_BLOCKS - 1, 2, 0, 1024);
        assert_sense(&t, 0x5, 0x21, 0x00);
        rw(&t, sizes[i], true, IMG_BLOCKS, 1, 0, 512);
        assert_sense(&t, 0x5, 0x21, 0x00);
        rw(&t, sizes[i], false, 0, 1, 0x20, 512);             /* RDPROTECT=1 */
        assert_sense(&t, 0x5, 0x24, 0x00);
        assert_field(&t, true, 1, 7);
    }
    rw(&t, 6, false, IMG_BLOCKS, 1, 0, 512);                  /* 21-bit LBA past the end */
    assert_sense(&t, 0x5, 0x21, 0x00);
    rw(&t, 16, false, UINT64_MAX, 2, 0, 1024);                /* lba + n overflows */
    assert_sense(&t, 0x5, 0x21, 0x00);
    rw(&t, 16, false, 0, VD_SCSI_MAX_XFER_BLOCKS + 1, 0, 512);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 10, -1);
    /* Buffers shorter than the transfer: OVERRUN, no I/O. */
    VdBlockStats before = blk_stats(blk);
    rw(&t, 10, false, 0, 2, 0, 1023);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
    rw(&t, 10, true, 0, 2, 0, 1023);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
    VdBlockStats after = blk_stats(blk);
    assert_int_equal(after.reads, before.reads);
    assert_int_equal(after.writes, before.writes);
}

/* WRITE with FUA=1 is a FUA write at the backend and reaches stable storage; FUA=0 does not. */
static void test_fua_write(void **state)
{
    TCmd t;
    static const unsigned sizes[] = { 10, 12, 16 };
    assert_true(vd_blk_write_cache(blk));
    for (unsigned i = 0; i < 3; i++) {
        VdBlockStats a = blk_stats(blk);
        rw(&t, sizes[i], true, 10, 4, 0x08, 4 * 512);
        assert_good(&t);
        VdBlockStats b = blk_stats(blk);
        assert_int_equal(b.fua_writes, a.fua_writes + 1);
        assert_true(durable_ops(b) > durable_ops(a));
        rw(&t, sizes[i], true, 10, 4, 0x00, 4 * 512);
        assert_good(&t);
        VdBlockStats c = blk_stats(blk);
        assert_int_equal(c.fua_writes, b.fua_writes);
        assert_int_equal(durable_ops(c), durable_ops(b));
        assert_int_equal(c.writes, b.writes + 1);
    }
    /* DPO alone changes nothing. */
    VdBlockStats a = blk_stats(blk);
    rw(&t, 10, true, 10, 1, 0x10, 512);
    assert_good(&t);
    assert_int_equal(blk_stats(blk).fua_writes, a.fua_writes);
}

/* SYNCHRONIZE CACHE(10/16): a host fdatasync after a write, range checks, IMMED. */
static void test_sync_cache(void **state)
{
    TCmd t;
    uint8_t sc10[10] = { 0x35 };
    uint8_t sc16[16] = { 0x91 };
    const uint8_t *cdbs[2] = { sc10, sc16 };
    size_t lens[2] = { 10, 16 };
    for (int i = 0; i < 2; i++) {
        rw(&t, 10, true, 0, 1, 0, 512);
        assert_good(&t);
        VdBlockStats a = blk_stats(blk);
        run_nx(disk, &t, 0, cdbs[i], lens[i], NULL, 0, NULL, 0);
        assert_good(&t);
        VdBlockStats b = blk_stats(blk);
        assert_int_equal(b.flushes, a.flushes + 1);
        assert_int_equal(b.host_fdatasync, a.host_fdatasync + 1);
    }
    /* Range: LBA + count past the end. */
    uint8_t sc10r[10] = { 0x35, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0 };
    RUN(disk, &t, sc10r, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x21, 0x00);
    uint8_t sc16r[16] = { 0x91, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    RUN(disk, &t, sc16r, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x21, 0x00);
    /* IMMED=1: GOOD at once; the flush still happens and is counted. */
    rw(&t, 10, true, 0, 1, 0, 512);
    VdBlockStats a = blk_stats(blk);
    uint8_t immed[10] = { 0x35, 0x02 };
    tcmd_submit(disk, &t, 0, immed, 10, NULL, 0, NULL, 0);
    tcmd_wait(&t);
    assert_good(&t);
    while (vd_scsi_disk_in_flight(disk)) {
        g_main_context_iteration(NULL, TRUE);
    }
    VdBlockStats b = blk_stats(blk);
    assert_int_equal(b.flushes, a.flushes + 1);
    assert_int_equal(b.host_fdatasync, a.host_fdatasync + 1);
}

/* A failed IMMED flush becomes a deferred error (0x71) on the next command of that nexus. */
static void test_sync_cache_immed_deferred_error(void **state)
{
    TCmd t;
    rw(&t, 10, true, 0, 1, 0, 512);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    uint8_t immed[10] = { 0x35, 0x02 };
    RUN(disk, &t, immed, NULL, 0, NULL, 0);
    assert_good(&t);
    while (vd_scsi_disk_in_flight(disk)) {
        g_main_context_iteration(NULL, TRUE);
    }
    uint8_t tur[6] = { 0 };
    RUN(disk, &t, tur, NULL, 0, NULL, 0);
    assert_sense(&t, 0x3, 0x0c, 0x00);
    assert_int_equal(t.req.sense[0], 0x71);
}

/* A failing synchronous SYNCHRONIZE CACHE reports WRITE ERROR. */
static void test_sync_cache_error(void **state)
{
    TCmd t;
    rw(&t, 10, true, 0, 1, 0, 512);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    uint8_t sc[10] = { 0x35 };
    RUN(disk, &t, sc, NULL, 0, NULL, 0);
    assert_sense(&t, 0x3, 0x0c, 0x00);
}

/* Read errors are MEDIUM ERROR 11/00, write errors 0C/00, ENOSPC is 27/07. */
static void test_io_error_sense(void **state)
{
    TCmd t;
    vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
    rw(&t, 10, false, 0, 1, 0, 512);
    assert_sense(&t, 0x3, 0x11, 0x00);
    assert_int_equal(t.req.in_resid, 512);
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    rw(&t, 10, true, 0, 1, 0, 512);
    assert_sense(&t, 0x3, 0x0c, 0x00);
    vd_blk_inject_error(blk, VD_FAULT_WRITE, ENOSPC, 1);
    rw(&t, 16, true, 0, 1, 0, 512);
    assert_sense(&t, 0x7, 0x27, 0x07);
    rw(&t, 10, true, 0, 1, 0, 512);
    assert_good(&t);
}

static uint8_t verify_cdb[16];

/* Build VERIFY(10) or (16). */
static size_t verify(unsigned size, uint64_t lba, uint32_t n, uint8_t byte1)
{
    memset(verify_cdb, 0, sizeof(verify_cdb));
    if (size == 10) {
        verify_cdb[0] = 0x2f;
        vd_st_be32(verify_cdb + 2, (uint32_t)lba);
        vd_st_be16(verify_cdb + 7, n);
    } else {
        verify_cdb[0] = 0x8f;
        vd_st_be64(verify_cdb + 2, lba);
        vd_st_be32(verify_cdb + 10, n);
    }
    verify_cdb[1] = byte1;
    return size;
}

/* VERIFY(10/16): medium check, byte compare, one-block compare, miscompare offset, bad BYTCHK. */
static void test_verify(void **state)
{
    TCmd t;
    rw(&t, 10, true, 50, 4, 0, 4 * 512);
    assert_good(&t);
    for (unsigned size = 10; size <= 16; size += 6) {
        size_t l = verify(size, 50, 4, 0x00);
        run_nx(disk, &t, 0, verify_cdb, l, NULL, 0, NULL, 0);
        assert_good(&t);
        l = verify(size, 50, 4, 0x02);                      /* BYTCHK=01 */
        run_nx(disk, &t, 0, verify_cdb, l, wbuf, 4 * 512, NULL, 0);
        assert_good(&t);
        uint8_t bad[4 * 512];
        memcpy(bad, wbuf, sizeof(bad));
        bad[1234] ^= 1;
        run_nx(disk, &t, 0, verify_cdb, l, bad, sizeof(bad), NULL, 0);
        assert_sense(&t, 0xe, 0x1d, 0x00);
        assert_int_equal(t.req.sense[0], 0xf0);             /* VALID: INFORMATION holds the offset */
        assert_int_equal(vd_ld_be32(t.req.sense + 3), 1234);
        /* Too little data-out. */
        run_nx(disk, &t, 0, verify_cdb, l, wbuf, 100, NULL, 0);
        assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
        l = verify(size, 50, 4, 0x04);                      /* BYTCHK=10: reserved */
        run_nx(disk, &t, 0, verify_cdb, l, wbuf, 512, NULL, 0);
        assert_sense(&t, 0x5, 0x24, 0x00);
        assert_field(&t, true, 1, 2);
        l = verify(size, IMG_BLOCKS - 1, 2, 0x00);
        run_nx(disk, &t, 0, verify_cdb, l, NULL, 0, NULL, 0);
        assert_sense(&t, 0x5, 0x21, 0x00);
        l = verify(size, 0, 1, 0x20);                       /* VRPROTECT */
        run_nx(disk, &t, 0, verify_cdb, l, NULL, 0, NULL, 0);
        assert_sense(&t, 0x5, 0x24, 0x00);
    }
    /* BYTCHK=11: one block compared with every block of the range. */
    uint8_t pattern[512];
    memset(pattern, 0x5a, sizeof(pattern));
    uint8_t ws[10] = { 0x41, 0, 0, 0, 0, 200, 0, 0, 8, 0 };
    RUN(disk, &t, ws, pattern, 512, NULL, 0);
    assert_good(&t);
    size_t l = verify(10, 200, 8, 0x06);
    run_nx(disk, &t, 0, verify_cdb, l, pattern, 512, NULL, 0);
    assert_good(&t);
    pattern[7] = 0;
    run_nx(disk, &t, 0, verify_cdb, l, pattern, 512, NULL, 0);
    assert_sense(&t, 0xe, 0x1d, 0x00);
    assert_int_equal(vd_ld_be32(t.req.sense + 3), 7);
    /* A read error during verification is a MEDIUM ERROR. */
    vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
    l = verify(10, 50, 1, 0x00);
    run_nx(disk, &t, 0, verify_cdb, l, NULL, 0, NULL, 0);
    assert_sense(&t, 0x3, 0x11, 0x00);
}

/* VERIFY longer than the 1 MiB verification chunk: compared chunk by chunk; a miscompare in the second chunk. */
static void test_verify_long(void **state)
{
    TCmd t;
    size_t len = 5000 * 512;
    uint8_t *big = g_malloc(len);
    for (size_t i = 0; i < len; i++) {
        big[i] = (uint8_t)(i * 31 + i / 4096);
    }
    uint8_t w16[16] = { 0x8a };
    vd_st_be64(w16 + 2, 1000);
    vd_st_be32(w16 + 10, 5000);
    RUN(disk, &t, w16, big, len, NULL, 0);
    assert_good(&t);
    size_t l = verify(16, 1000, 5000, 0x02);
    run_nx(disk, &t, 0, verify_cdb, l, big, len, NULL, 0);
    assert_good(&t);
    l = verify(16, 1000, 5000, 0x00);
    VdBlockStats a = blk_stats(blk);
    run_nx(disk, &t, 0, verify_cdb, l, NULL, 0, NULL, 0);
    assert_good(&t);
    assert_int_equal(blk_stats(blk).reads, a.reads + 3);      /* 1 MiB + 1 MiB + the rest */
    big[(1u << 20) + 4321] ^= 0x40;
    l = verify(16, 1000, 5000, 0x02);
    run_nx(disk, &t, 0, verify_cdb, l, big, len, NULL, 0);
    assert_sense(&t, 0xe, 0x1d, 0x00);
    assert_int_equal(vd_ld_be32(t.req.sense + 3), (1u << 20) + 4321);
    g_free(big);
}

/* WRITE AND VERIFY(10/16): the data is written durably (FUA), then verified. */
static void test_write_and_verify(void **state)
{
    TCmd t;
    for (unsigned size = 10; size <= 16; size += 6) {
        for (uint8_t bytchk = 0; bytchk <= 0x02; bytchk += 0x02) {
            uint8_t cdb[16] = { 0 };
            if (size == 10) {
                cdb[0] = 0x2e;
                vd_st_be32(cdb + 2, 300);
                vd_st_be16(cdb + 7, 3);
            } else {
                cdb[0] = 0x8e;
                vd_st_be64(cdb + 2, 300);
                vd_st_be32(cdb + 10, 3);
            }
            cdb[1] = bytchk;
            wbuf[0] = (uint8_t)(size + bytchk);
            VdBlockStats a = blk_stats(blk);
            run_nx(disk, &t, 0, cdb, size, wbuf, 3 * 512, NULL, 0);
            assert_good(&t);
            VdBlockStats b = blk_stats(blk);
            assert_int_equal(b.fua_writes, a.fua_writes + 1);
            assert_true(b.reads > a.reads);
            assert_true(durable_ops(b) > durable_ops(a));
            uint8_t direct[3 * 512];
            assert_int_equal(vd_blk_pread_sync(blk, 300 * 512, direct, sizeof(direct)), 0);
            assert_memory_equal(direct, wbuf, sizeof(direct));
            cdb[1] = 0x04;
            run_nx(disk, &t, 0, cdb, size, wbuf, 3 * 512, NULL, 0);
            assert_sense(&t, 0x5, 0x24, 0x00);
        }
    }
    uint8_t cdb[10] = { 0x2e, 0, 0, 0, 0, 0, 0, 0, 2, 0 };
    run_nx(disk, &t, 0, cdb, 10, wbuf, 512, NULL, 0);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    run_nx(disk, &t, 0, cdb, 10, wbuf, 1024, NULL, 0);
    assert_sense(&t, 0x3, 0x0c, 0x00);
}

/* An UNMAP parameter list with the given descriptors (lba, n). */
static size_t unmap_list(uint8_t *p, const uint64_t *lba, const uint32_t *n, unsigned count)
{
    memset(p, 0, 8 + 16 * count);
    vd_st_be16(p, 6 + 16 * count);
    vd_st_be16(p + 2, 16 * count);
    for (unsigned i = 0; i < count; i++) {
        vd_st_be64(p + 8 + 16 * i, lba[i]);
        vd_st_be32(p + 8 + 16 * i + 8, n[i]);
    }
    return 8 + 16 * count;
}

/* UNMAP: every range discarded on the host; every malformed list rejected before any discard. */
static void test_unmap(void **state)
{
    TCmd t;
    uint8_t list[8 + 16 * (VD_SCSI_MAX_UNMAP_DESCS + 1)];
    uint64_t lbas[3] = { 0, 1024, 4096 };
    uint32_t ns[3] = { 8, 0, 2048 };
    size_t len = unmap_list(list, lbas, ns, 3);
    uint8_t cdb[10] = { 0x42 };
    vd_st_be16(cdb + 7, len);
    VdBlockStats a = blk_stats(blk);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_good(&t);
    VdBlockStats b = blk_stats(blk);
    assert_int_equal(b.discards, a.discards + 2);              /* the empty descriptor is skipped */
    assert_int_equal(b.host_discards, a.host_discards + 2);

    /* Length 0: nothing to do. */
    uint8_t zero[10] = { 0x42 };
    RUN(disk, &t, zero, NULL, 0, NULL, 0);
    assert_good(&t);
    /* Length 1..7: PARAMETER LIST LENGTH ERROR. */
    uint8_t c7[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 7, 0 };
    RUN(disk, &t, c7, list, 7, NULL, 0);
    assert_sense(&t, 0x5, 0x1a, 0x00);
    /* Descriptor length beyond the list. */
    len = unmap_list(list, lbas, ns, 2);
    vd_st_be16(cdb + 7, len - 16);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_sense(&t, 0x5, 0x1a, 0x00);
    /* UNMAP DATA LENGTH too small for the descriptors. */
    vd_st_be16(cdb + 7, len);
    vd_st_be16(list, 6);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 0, -1);
    /* Too many descriptors. */
    uint64_t many_l[VD_SCSI_MAX_UNMAP_DESCS + 1] = { 0 };
    uint32_t many_n[VD_SCSI_MAX_UNMAP_DESCS + 1] = { 0 };
    len = unmap_list(list, many_l, many_n, VD_SCSI_MAX_UNMAP_DESCS + 1);
    vd_st_be16(cdb + 7, len);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 2, -1);
    /* A descriptor past the end, after a valid one: nothing is discarded. */
    uint64_t l2[2] = { 0, IMG_BLOCKS - 1 };
    uint32_t n2[2] = { 8, 2 };
    len = unmap_list(list, l2, n2, 2);
    vd_st_be16(cdb + 7, len);
    a = blk_stats(blk);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_sense(&t, 0x5, 0x21, 0x00);
    assert_int_equal(blk_stats(blk).discards, a.discards);
    /* More blocks than MAXIMUM UNMAP LBA COUNT. */
    uint64_t l3[1] = { 0 };
    uint32_t n3[1] = { VD_SCSI_MAX_UNMAP_BLOCKS + 1 };
    len = unmap_list(list, l3, n3, 1);
    vd_st_be16(cdb + 7, len);
    RUN(disk, &t, cdb, list, len, NULL, 0);
    assert_sense(&t, 0x5, 0x26, 0x00);
    assert_field(&t, false, 16, -1);
    /* ANCHOR is not supported. */
    uint8_t anchor[10] = { 0x42, 0x01, 0, 0, 0, 0, 0, 0, 24, 0 };
    RUN(disk, &t, anchor, list, 24, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 0);
    /* Data-out shorter than the parameter list length. */
    RUN(disk, &t, cdb, list, 8, NULL, 0);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
}

/* WRITE SAME(10/16): pattern writes, zero writes, UNMAP bit, NDOB, field checks. */
static void test_write_same(void **state)
{
    TCmd t;
    uint8_t pattern[512];
    for (int i = 0; i < 512; i++) {
        pattern[i] = (uint8_t)(i ^ 0x3c);
    }
    /* WRITE SAME(16) of a pattern over more than one chunk (1 MiB = 2048 blocks). */
    uint8_t ws16[16] = { 0x93 };
    vd_st_be64(ws16 + 2, 100);
    vd_st_be32(ws16 + 10, 5000);
    RUN(disk, &t, ws16, pattern, 512, NULL, 0);
    assert_good(&t);
    uint8_t blkbuf[512];
    for (uint64_t lba = 100; lba < 5100; lba += 1237) {
        assert_int_equal(vd_blk_pread_sync(blk, lba * 512, blkbuf, 512), 0);
        assert_memory_equal(blkbuf, pattern, 512);
    }
    assert_int_equal(vd_blk_pread_sync(blk, 5099 * 512, blkbuf, 512), 0);
    assert_memory_equal(blkbuf, pattern, 512);
    assert_int_equal(vd_blk_pread_sync(blk, 5100 * 512, blkbuf, 512), 0);
    assert_memory_not_equal(blkbuf, pattern, 512);
    /* Zeros become write-zeroes; with UNMAP=1 the backend may deallocate. */
    uint8_t zeros[512] = { 0 };
    uint8_t ws10[10] = { 0x41, 0x08, 0, 0, 0, 100, 0, 0, 16, 0 };
    VdBlockStats a = blk_stats(blk);
    RUN(disk, &t, ws10, zeros, 512, NULL, 0);
    assert_good(&t);
    VdBlockStats b = blk_stats(blk);
    assert_int_equal(b.write_zeroes, a.write_zeroes + 1);
    assert_int_equal(vd_blk_pread_sync(blk, 100 * 512, blkbuf, 512), 0);
    assert_memory_equal(blkbuf, zeros, 512);
    /* NDOB (16 only): zeros without a data-out buffer. */
    uint8_t ndob[16] = { 0x93, 0x01 };
    vd_st_be64(ndob + 2, 200);
    vd_st_be32(ndob + 10, 4);
    RUN(disk, &t, ndob, NULL, 0, NULL, 0);
    assert_good(&t);
    assert_int_equal(blk_stats(blk).write_zeroes, b.write_zeroes + 1);
    assert_int_equal(vd_blk_pread_sync(blk, 200 * 512, blkbuf, 512), 0);
    assert_memory_equal(blkbuf, zeros, 512);
    /* Bad fields. */
    uint8_t n0[10] = { 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    RUN(disk, &t, n0, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 7, -1);
    uint8_t big[16] = { 0x93 };
    vd_st_be32(big + 10, VD_SCSI_MAX_WS_BLOCKS + 1);
    RUN(disk, &t, big, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    uint8_t ndob10[10] = { 0x41, 0x01, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, ndob10, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 0);
    uint8_t anchor[10] = { 0x41, 0x10, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, anchor, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    uint8_t lbdata[10] = { 0x41, 0x02, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, lbdata, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    uint8_t wrprot[10] = { 0x41, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, wrprot, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    uint8_t range[10] = { 0x41, 0, 0, 0, 0x3f, 0xff, 0, 0, 2, 0 };
    RUN(disk, &t, range, pattern, 512, NULL, 0);
    assert_sense(&t, 0x5, 0x21, 0x00);
    uint8_t ok[10] = { 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, ok, pattern, 100, NULL, 0);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
}

/* A read-only backend: writes are DATA PROTECT 27/00, WP is set, reads and flushes work. */
static void test_read_only(void **state)
{
    TCmd t;
    rw(&t, 10, true, 0, 1, 0, 512);
    assert_sense(&t, 0x7, 0x27, 0x00);
    rw(&t, 16, true, 0, 1, 0x08, 512);
    assert_sense(&t, 0x7, 0x27, 0x00);
    uint8_t wv[10] = { 0x2e, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, wv, wbuf, 512, NULL, 0);
    assert_sense(&t, 0x7, 0x27, 0x00);
    uint8_t ws[10] = { 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, ws, wbuf, 512, NULL, 0);
    assert_sense(&t, 0x7, 0x27, 0x00);
    /* No provisioning on a read-only disk: UNMAP is not offered. */
    uint8_t unmap[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
    RUN(disk, &t, unmap, wbuf, 24, NULL, 0);
    assert_sense(&t, 0x5, 0x20, 0x00);
    rw(&t, 10, false, 0, 1, 0, 512);
    assert_good(&t);
    uint8_t sc[10] = { 0x35 };
    RUN(disk, &t, sc, NULL, 0, NULL, 0);
    assert_good(&t);
    uint8_t ms[6] = { 0x1a, 0x08, 0x3f, 0, 255, 0 };
    uint8_t data[255];
    RUN(disk, &t, ms, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(data[2], 0x90);                            /* WP | DPOFUA */
}

/* With WCE off every WRITE is durable at completion without FUA. */
static void test_write_through_writes_durable(void **state)
{
    TCmd t;
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    VdBlockStats a = blk_stats(blk);
    rw(&t, 10, true, 0, 2, 0, 1024);
    assert_sense(&t, 0x6, 0x2a, 0x01);       /* the host changed WCE: MODE PARAMETERS CHANGED first */
    rw(&t, 10, true, 0, 2, 0, 1024);
    assert_good(&t);
    VdBlockStats b = blk_stats(blk);
    assert_true(durable_ops(b) > durable_ops(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_all_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rw_range_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fua_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_cache_immed_deferred_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_cache_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_sense, setup_report, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
        cmocka_unit_test_setup_teardown(test_write_through_writes_durable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
