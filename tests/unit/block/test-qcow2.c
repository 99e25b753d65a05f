/*
 * test-qcow2.c - the qcow2 driver against images made by `qemu-img create`:
 * seeded workloads compared with a raw reference, then `qemu-img check`
 * (clean) and `qemu-img compare`; concurrent allocating writes; the zero
 * copy-on-write of a reused cluster; refcount-table growth; every header
 * refusal naming its field; the option spellings.  Skips without qemu-img.
 */
#include "qcow2-test-util.h"
#include "util/bswap.h"

#include <string.h>
#include <sys/stat.h>

/* An image made by qemu-img in a temporary folder, with the reference for what the guest wrote. */
typedef struct Img {
    char *dir, *path, *raw;
    uint8_t *ref;
    uint64_t size;
} Img;

/* A new image made by qemu-img (cluster size, compat), and an all-zero reference. */
static void img_new(Img *im, const char *cs, const char *compat, uint64_t size)
{
    im->dir = g_dir_make_tmp("vdisk-qcow2-XXXXXX", NULL);
    assert_non_null(im->dir);
    im->path = g_build_filename(im->dir, "disk.qcow2", NULL);
    im->raw = g_build_filename(im->dir, "ref.raw", NULL);
    im->size = size;
    im->ref = g_malloc0(size);
    g_autofree char *sz = g_strdup_printf("%" G_GUINT64_FORMAT, size);
    qimg_create(im->path, cs, compat, sz);
}

/* Remove the image's folder and free the reference. */
static void img_free(Img *im)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", im->dir);
    assert_int_equal(system(cmd), 0);
    g_free(im->dir);
    g_free(im->path);
    g_free(im->raw);
    g_free(im->ref);
}

/* Open the image with format=qcow2 and extra options. */
static VdBlockBackend *img_open(Img *im, const char *extra)
{
    g_autofree char *o = g_strdup_printf("file=%s,format=qcow2%s%s", im->path, extra ? "," : "", extra ? extra : "");
    return open_ok(o);
}

/* Every byte of the disk reads back as the reference. */
static void verify(VdBlockBackend *blk, Img *im)
{
    const size_t chunk = 1 << 20;
    g_autofree uint8_t *buf = g_malloc(chunk);
    for (uint64_t off = 0; off < im->size; off += chunk) {
        size_t n = MIN(chunk, im->size - off);
        assert_int_equal(vd_blk_pread_sync(blk, off, buf, n), 0);
        if (memcmp(buf, im->ref + off, n) != 0) {
            for (size_t i = 0; i < n; i++) {
                if (buf[i] != im->ref[off + i]) {
                    fail_msg("byte %" G_GUINT64_FORMAT " reads 0x%02x, expected 0x%02x", off + i, buf[i],
                             im->ref[off + i]);
                }
            }
        }
    }
}

/* Close, then qemu-img check must say clean and compare must find the reference. */
static void close_and_check(VdBlockBackend *blk, Img *im)
{
    vd_blk_close(blk);
    assert_int_equal(qimg_check(im->path), 0);
    write_file(im->raw, im->ref, im->size);
    assert_int_equal(qimg_compare(im->path, im->raw), 0);
}

/* A seeded mix of writes, write-zeroes (with and without unmap), cluster discards and flushes. */
static void workload(VdBlockBackend *blk, Img *im, uint32_t cs, unsigned ops, uint32_t seed)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    g_autofree uint8_t *buf = g_malloc(256 * 1024);
    uint64_t sectors = im->size / 512;
    for (unsigned i = 0; i < ops; i++) {
        unsigned kind = g_rand_int_range(r, 0, 20);
        uint64_t nsec = g_rand_int_range(r, 1, 129);
        uint64_t sec = g_rand_int_range(r, 0, (gint32)(sectors - nsec));
        uint64_t off = sec * 512, len = nsec * 512;
        if (kind < 13) {
            for (uint64_t b = 0; b < len; b++) {
                buf[b] = (uint8_t)(i * 7 + b / 512 + 1);
            }
            assert_int_equal(vd_blk_pwrite_sync(blk, off, buf, len, 0), 0);
            memcpy(im->ref + off, buf, len);
        } else if (kind < 16) {
            unsigned flags = kind == 15 ? VD_REQ_MAY_UNMAP : 0;
            assert_int_equal(vd_blk_write_zeroes_sync(blk, off, len, flags), 0);
            memset(im->ref + off, 0, len);
        } else if (kind < 18) {
            /* Whole clusters: they read back as zeroes afterwards. */
            uint64_t c0 = off / cs, nc = g_rand_int_range(r, 1, 4);
            if ((c0 + nc) * cs > im->size) {
                continue;
            }
            assert_int_equal(vd_blk_discard_sync(blk, c0 * cs, nc * cs), 0);
            memset(im->ref + c0 * cs, 0, nc * cs);
        } else {
            assert_int_equal(vd_blk_flush_sync(blk), 0);
        }
    }
}

typedef struct Shape {
    const char *cs;
    uint32_t cs_bytes;
    const char *compat;
    uint64_t size;
    unsigned ops;
} Shape;

static const Shape shapes[] = {
    { "512", 512, "1.1", 4 << 20, 300 },
    { "4096", 4096, "1.1", 16 << 20, 300 },
    { "65536", 65536, "1.1", 64 << 20, 300 },
    { "2M", 2 << 20, "1.1", 64 << 20, 80 },
    { "512", 512, "0.10", 4 << 20, 300 },
    { "65536", 65536, "0.10", 16 << 20, 300 },
};

/* Workloads on every cluster size and both versions: read back, reopen, qemu-img check and compare. */
static void test_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
        const Shape *sh = &shapes[i];
        Img im;
        img_new(&im, sh->cs, sh->compat, sh->size);
        VdBlockBackend *blk = img_open(&im, NULL);
        assert_int_equal(vd_blk_length(blk), (int64_t)sh->size);
        workload(blk, &im, sh->cs_bytes, sh->ops, 2026 + i);
        verify(blk, &im);
        close_and_check(blk, &im);
        blk = img_open(&im, "read-only=on");
        verify(blk, &im);
        vd_blk_close(blk);
        img_free(&im);
    }
}

/* Tiny caches: every L2 table and refcount block goes through eviction, in order. */
static void test_small_caches(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "512", "1.1", 4 << 20);
    VdBlockBackend *blk = img_open(&im, "l2-cache-size=1k,refcount-cache-size=2k");
    workload(blk, &im, 512, 400, 7);
    verify(blk, &im);
    close_and_check(blk, &im);
    img_free(&im);
}

/* 512-byte clusters: 12 MiB of data outgrows the refcount table qemu-img made, which must grow. */
static void test_reftable_growth(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "512", "1.1", 16 << 20);
    VdBlockBackend *blk = img_open(&im, NULL);
    g_autofree uint8_t *buf = g_malloc(256 * 1024);
    for (uint64_t off = 0; off < (12u << 20); off += 256 * 1024) {
        memset(buf, (int)(off >> 18) + 1, 256 * 1024);
        assert_int_equal(vd_blk_pwrite_sync(blk, off, buf, 256 * 1024, 0), 0);
        memcpy(im.ref + off, buf, 256 * 1024);
    }
    verify(blk, &im);
    close_and_check(blk, &im);
    img_free(&im);
}

/* A freed cluster comes back for another guest cluster: the rest of it must read as zeroes, not old data. */
static void test_cow_zeroes_reused_cluster(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "65536", "1.1", 16 << 20);
    VdBlockBackend *blk = img_open(&im, NULL);
    g_autofree uint8_t *buf = g_malloc(65536);
    memset(buf, 0xaa, 65536);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 65536, 0), 0);
    assert_int_equal(vd_blk_discard_sync(blk, 0, 65536), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0); /* the free happens once the L2 entry is durable */
    memset(buf, 0x55, 4096);
    assert_int_equal(vd_blk_pwrite_sync(blk, 8 << 20, buf, 4096, 0), 0);
    memcpy(im.ref + (8 << 20), buf, 4096);
    verify(blk, &im);
    close_and_check(blk, &im);
    img_free(&im);
}

/* One async request's buffer and completion. */
typedef struct Io {
    Completion c;
    uint8_t *buf;
    struct iovec iov;
} Io;

/*
 * 32 allocating writes at once, into the same clusters and into different L2 tables, with reads of the
 * unwritten sectors of the clusters being allocated racing them.  The host clusters are reused ones full
 * of 0xee (written, discarded, freed), so a read that saw a cluster before its zero copy-on-write landed
 * would see 0xee.
 */
static void test_concurrent_allocation(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "4096", "1.1", 128 << 20);
    VdBlockBackend *blk = img_open(&im, "aio=threads");
    g_autofree uint8_t *old = g_malloc(8 << 20);
    memset(old, 0xee, 8 << 20);
    assert_int_equal(vd_blk_pwrite_sync(blk, 100 << 20, old, 8 << 20, 0), 0);
    assert_int_equal(vd_blk_discard_sync(blk, 100 << 20, 8 << 20), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    g_autoptr(GRand) r = g_rand_new_with_seed(99);
    for (unsigned round = 0; round < 20; round++) {
        Io w[32], rd[16];
        uint64_t base = (64u << 20) + (uint64_t)round * 3 * 65536;
        for (unsigned i = 0; i < 32; i++) {
            /* 16 share four clusters (sectors 0-3 of each); 16 go 4 MiB apart: a new L2 table each. */
            uint64_t off = i < 16 ? base + (i / 4) * 4096 + (i % 4) * 512
                                  : (uint64_t)(i - 16) * (4u << 20) + (1u << 20) + round * 65536;
            w[i].buf = g_malloc(512);
            memset(w[i].buf, (int)(round * 32 + i + 1), 512);
            memcpy(im.ref + off, w[i].buf, 512);
            w[i].iov = (struct iovec){ w[i].buf, 512 };
            w[i].c = (Completion){ 0 };
            vd_blk_pwritev(blk, off, &w[i].iov, 1, 0, completion_cb, &w[i].c);
        }
        for (unsigned i = 0; i < 16; i++) {
            /* Sectors 4-7 of the shared clusters: nobody writes them, so zeroes whatever the timing. */
            uint64_t off = base + (i % 4) * 4096 + (4 + g_rand_int_range(r, 0, 4)) * 512;
            rd[i].buf = g_malloc(512);
            rd[i].iov = (struct iovec){ rd[i].buf, 512 };
            rd[i].c = (Completion){ 0 };
            vd_blk_preadv(blk, off, &rd[i].iov, 1, completion_cb, &rd[i].c);
        }
        for (unsigned i = 0; i < 32; i++) {
            wait_completion(&w[i].c);
            assert_int_equal(w[i].c.ret, 0);
            g_free(w[i].buf);
        }
        for (unsigned i = 0; i < 16; i++) {
            wait_completion(&rd[i].c);
            assert_int_equal(rd[i].c.ret, 0);
            for (unsigned b = 0; b < 512; b++) {
                assert_int_equal(rd[i].buf[b], 0);
            }
            g_free(rd[i].buf);
        }
    }
    verify(blk, &im);
    close_and_check(blk, &im);
    img_free(&im);
}

/* cache=unsafe: a FLUSH runs stage 1 (metadata to the OS) without fdatasync; a copy taken then is clean. */
static void test_unsafe_flush_writes_metadata(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "65536", "1.1", 16 << 20);
    VdBlockBackend *blk = img_open(&im, "cache=unsafe");
    workload(blk, &im, 65536, 100, 3);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    VdBlockStats st = stats_of(blk);
    assert_int_equal(st.host_fdatasync, 0);
    /* What a killed process leaves: the file as the OS has it now, before any close. */
    g_autofree char *copy = g_build_filename(im.dir, "killed.qcow2", NULL);
    g_autofree char *cmd = g_strdup_printf("cp '%s' '%s'", im.path, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(qimg_check(copy), 0);
    write_file(im.raw, im.ref, im.size);
    assert_int_equal(qimg_compare(copy, im.raw), 0);
    vd_blk_close(blk);
    img_free(&im);
}

/* Clean close: the dirty bit set while writing is cleared again. */
static void test_dirty_bit(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "65536", "1.1", 16 << 20);
    VdBlockBackend *blk = img_open(&im, NULL);
    uint8_t buf[512];
    memset(buf, 1, sizeof(buf));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, sizeof(buf), 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    g_autofree char *data = NULL;
    gsize len;
    assert_true(g_file_get_contents(im.path, &data, &len, NULL));
    assert_true(vd_ld_be64(data + 72) & 1); /* dirty while open and written */
    vd_blk_close(blk);
    g_free(data);
    assert_true(g_file_get_contents(im.path, &data, &len, NULL));
    assert_false(vd_ld_be64(data + 72) & 1);
    img_free(&im);
}

/* Patch a big-endian field of the image's header (or anywhere) in place. */
static void patch(const char *path, uint64_t off, uint64_t v, unsigned width)
{
    g_autofree char *data = NULL;
    gsize len;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    if (width == 8) {
        vd_st_be64(data + off, v);
    } else {
        vd_st_be32(data + off, (uint32_t)v);
    }
    write_file(path, data, len);
}

typedef struct BadHeader {
    uint64_t off;
    uint64_t value;
    unsigned width;
    bool read_only;
    const char *error;          /* NULL: the open succeeds */
} BadHeader;

/* qemu-img's 64 MiB image with 64 KiB clusters: L1 at 0x30000, refcount table at 0x10000. */
static const BadHeader bad_headers[] = {
    { 0, 0x12345678, 4, false, "not a qcow2 image: magic is 0x12345678" },
    { 4, 4, 4, false, "qcow2 version 4 is not supported" },
    { 20, 8, 4, false, "qcow2 cluster_bits 8 is out of range" },
    { 20, 22, 4, false, "qcow2 cluster_bits 22 is out of range" },
    { 8, 0x50000, 8, false, "qcow2 backing files are not supported (backing_file_offset is set)" },
    { 32, 1, 4, false, "qcow2 encryption is not supported (crypt_method 1)" },
    { 36, 0, 4, false, "qcow2 l1_size 0 does not fit size" },
    { 36, 0x1000000, 4, false, "qcow2 l1_size 16777216 does not fit size" },
    { 40, 0x30200, 8, false, "qcow2 l1_table_offset 0x30200 is invalid" },
    { 48, 0x7fff0000, 8, false, "qcow2 refcount_table_offset 0x7fff0000 is invalid" },
    { 56, 0, 4, false, "qcow2 refcount_table_clusters 0 is out of range" },
    { 40, 0x10000, 8, false, "qcow2 L1 table (l1_table_offset) overlaps the refcount table" },
    { 60, 1, 4, false, "qcow2 internal snapshots (nb_snapshots 1) are supported read-only" },
    { 72, 1ull << 5, 8, false, "qcow2 unknown incompatible feature bit 5 is set" },
    { 72, 1ull << 2, 8, false, "qcow2 incompatible feature 'external data file' (bit 2) is not supported" },
    { 72, 1ull << 4, 8, true, "qcow2 incompatible feature 'extended L2 entries' (bit 4) is not supported" },
    { 72, 1, 8, false, "qcow2 image is dirty (incompatible feature bit 0" },
    { 72, 1, 8, true, NULL },
    { 72, 2, 8, false, "qcow2 image is marked corrupt" },
    { 72, 2, 8, true, NULL },
    { 80, 1, 8, false, "qcow2 compatible feature 'lazy refcounts' is supported read-only" },
    { 80, 1, 8, true, NULL },
    { 96, 3, 4, false, "qcow2 refcount_order 3 (8-bit refcounts) is supported read-only" },
    { 96, 3, 4, true, NULL },
    { 96, 7, 4, true, "qcow2 refcount_order 7 is invalid" },
    { 100, 100, 4, false, "qcow2 header_length 100 is invalid" },
    { 0x30000, 0x40200, 8, false, "qcow2 L1 entry 0: offset 0x40200 is not cluster-aligned" },
    { 0x30000, 0x7000000, 8, false, "qcow2 L1 entry 0: offset 0x7000000 is beyond the end of the file" },
    { 0x30000, 0x10000, 8, false, "qcow2 L1 entry 0: offset 0x10000 overlaps the header" },
    { 0x30000, 0x40001, 8, false, "qcow2 L1 entry 0: reserved bits are set" },
    { 0x10008, 0x30000, 8, false, "qcow2 refcount table entry 1: offset 0x30000 overlaps the header" },
    { 0x74, 0x10000, 4, false, "qcow2 header extension 0x6803f857 at byte 112 is 65536 bytes long" },
};

/* Each malformed header is refused with one line naming the field; the read-only exceptions open. */
static void test_bad_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_headers); i++) {
        const BadHeader *b = &bad_headers[i];
        Img im;
        img_new(&im, "65536", "1.1", 64 << 20);
        patch(im.path, b->off, b->value, b->width);
        g_autofree char *o = g_strdup_printf("file=%s,format=qcow2%s", im.path, b->read_only ? ",read-only=on" : "");
        GError *err = NULL;
        VdBlockBackend *blk = vd_blk_open(o, NULL, &err);
        if (!b->error) {
            if (!blk) {
                fail_msg("case %zu: %s", i, err->message);
            }
            vd_blk_close(blk);
        } else {
            assert_null(blk);
            if (!strstr(err->message, b->error)) {
                fail_msg("case %zu: '%s' does not say '%s'", i, err->message, b->error);
            }
            assert_null(strchr(err->message, '\n'));
            g_error_free(err);
        }
        img_free(&im);
    }
}

typedef struct OptCase {
    const char *opts;           /* %s: the image */
    const char *error;          /* NULL: opens */
} OptCase;

static const OptCase opt_cases[] = {
    { "file=%s,format=qcow2", NULL },
    { "driver=qcow2,file=%s", NULL },
    { "driver=qcow2,child=file,file=%s", NULL },
    { "driver=qcow2,child=crashsim,file=%s", NULL },
    { "driver=qcow2,child=crashsim,child.child=file,file=%s,tear=512", NULL },
    { "driver=crashsim,format=qcow2,file=%s", NULL },
    { "file=%s,format=qcow2,l2-cache-size=1M,refcount-cache-size=256k", NULL },
    { "file=%s,format=qcow2,l2-cache-size=64k", "l2-cache-size=65536 must hold 2 to" },
    { "file=%s,format=qcow2,refcount-cache-size=128k", "refcount-cache-size=131072 must hold 4 to" },
    { "file=%s,l2-cache-size=1M", "l2-cache-size= and refcount-cache-size= are only for a qcow2 image" },
    { "file=%s,format=raw,driver=qcow2", "format=raw contradicts the qcow2 driver in the chain" },
    { "file=%s,format=qcow2,driver=qcow2", "format=qcow2 puts qcow2 above driver=qcow2" },
    { "file=%s,driver=qcow2,child=crashsim,child.child=crashsim", "invalid child.child 'crashsim'" },
    { "file=%s,child.child=file", "child.child= is only for a child with a child" },
    { "driver=qcow2,child=null,size=1M%s", "not a qcow2 image: magic is 0x00000000" },
    { "file=%s,format=vmdk", "invalid format 'vmdk'; accepted values: raw, qcow2" },
};

/* The spellings of a qcow2 chain, and one error line for each bad one. */
static void test_options(void **state)
{
    (void)state;
    Img im;
    img_new(&im, "65536", "1.1", 64 << 20);
    for (size_t i = 0; i < G_N_ELEMENTS(opt_cases); i++) {
        const OptCase *c = &opt_cases[i];
        g_autofree char *o = g_strdup_printf(c->opts, strstr(c->opts, "null") ? "" : im.path);
        GError *err = NULL;
        VdBlockBackend *blk = vd_blk_open(o, NULL, &err);
        if (!c->error) {
            if (!blk) {
                fail_msg("'%s': %s", o, err->message);
            }
            vd_blk_close(blk);
        } else {
            if (blk) {
                fail_msg("'%s' opened", o);
            }
            if (!strstr(err->message, c->error)) {
                fail_msg("'%s': '%s' does not say '%s'", o, err->message, c->error);
            }
            g_error_free(err);
        }
    }
    img_free(&im);
}

int main(void)
{
    if (!have_qemu_img()) {
        printf("SKIP qcow2: qemu-img not found (apt-get install qemu-utils)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_small_caches),
        cmocka_unit_test(test_reftable_growth),
        cmocka_unit_test(test_cow_zeroes_reused_cluster),
        cmocka_unit_test(test_concurrent_allocation),
        cmocka_unit_test(test_unsafe_flush_writes_metadata),
        cmocka_unit_test(test_dirty_bit),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
