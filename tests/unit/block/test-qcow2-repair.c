/*
 * test-qcow2-repair.c - repair=leaks (docs/qcow2.md "Dirty images") on
 * images made by `qemu-img create`, written by the driver and then edited:
 * leaked refcounts (a refcount above its references, one past the end of the
 * file) plus the dirty bit are refused without the option and repaired with
 * it, durably (a power cut right after the open leaves one state, clean by
 * qemu-img check); a refcount below its references is refused, naming the
 * cluster, and the file is left byte for byte as it was.  Skips without
 * qemu-img.
 */
#include "qcow2-test-util.h"
#include "block/crashsim.h"
#include "util/bswap.h"

#include <string.h>

#define CS 65536u
#define QCOW2_TEST_OFFSET_MASK 0x00fffffffffffe00ull /* bits 9..55 of an L1 or L2 entry */
/* Guest clusters the image has data in. */
static const uint64_t data_clusters[] = { 0, 3, 17, 100 };

/* A qemu-img image in a temporary folder. */
typedef struct Rep {
    char *dir, *path;
} Rep;

/* The byte written at guest offset off. */
static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off / 512 * 13 + 1);
}

/* Write (or check) 4 KiB of the pattern at the start of every data cluster. */
static void data_io(VdBlockBackend *blk, bool write)
{
    uint8_t buf[4096];
    for (size_t i = 0; i < G_N_ELEMENTS(data_clusters); i++) {
        uint64_t off = data_clusters[i] * CS;
        if (write) {
            for (size_t b = 0; b < sizeof(buf); b++) {
                buf[b] = pattern(off + b);
            }
            assert_int_equal(vd_blk_pwrite_sync(blk, off, buf, sizeof(buf), 0), 0);
            continue;
        }
        assert_int_equal(vd_blk_pread_sync(blk, off, buf, sizeof(buf)), 0);
        for (size_t b = 0; b < sizeof(buf); b++) {
            assert_int_equal(buf[b], pattern(off + b));
        }
    }
}

/* A new 64 KiB-cluster image with the data written by the driver and closed cleanly. */
static void rep_new(Rep *r)
{
    r->dir = g_dir_make_tmp("vdisk-qcow2-repair-XXXXXX", NULL);
    assert_non_null(r->dir);
    r->path = g_build_filename(r->dir, "disk.qcow2", NULL);
    qimg_create(r->path, "65536", "1.1", "16M");
    g_autofree char *o = g_strdup_printf("file=%s,format=qcow2", r->path);
    VdBlockBackend *blk = open_ok(o);
    data_io(blk, true);
    vd_blk_close(blk);
    assert_int_equal(qimg_check(r->path), 0);
}

/* Remove the folder. */
static void rep_free(Rep *r)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
    g_free(r->dir);
    g_free(r->path);
}

/* The whole file. */
static GBytes *file_bytes(const char *path)
{
    gchar *data;
    gsize len;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_bytes_new_take(data, len);
}

/* Edit the image: refcount of host cluster c (first refcount block) := v, and the dirty bit on. */
static void set_refcount_dirty(const char *path, uint64_t c, uint16_t v)
{
    g_autoptr(GBytes) b = file_bytes(path);
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    uint8_t *p = g_memdup2(data, len);
    uint64_t rb = vd_ld_be64(p + vd_ld_be64(p + 48));
    vd_st_be16(p + rb + c * 2, v);
    vd_st_be64(p + 72, vd_ld_be64(p + 72) | 1);
    write_file(path, p, len);
    g_free(p);
}

/* The host cluster index of guest cluster g (in the first L2 table). */
static uint64_t host_cluster_of(const char *path, uint64_t g)
{
    g_autoptr(GBytes) b = file_bytes(path);
    const uint8_t *p = g_bytes_get_data(b, NULL);
    uint64_t l2 = vd_ld_be64(p + vd_ld_be64(p + 40)) & QCOW2_TEST_OFFSET_MASK;
    return (vd_ld_be64(p + l2 + g * 8) & QCOW2_TEST_OFFSET_MASK) / CS;
}

/* The error of opening with opts; fails the test if it opens. */
static char *open_error(const char *opts)
{
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (blk) {
        fail_msg("'%s' opened", opts);
    }
    char *msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* Leaks and the dirty bit: refused without the option, repaired durably with it, then clean. */
static void test_repair_leaks(void **state)
{
    (void)state;
    Rep r;
    rep_new(&r);
    /* A free cluster inside the file: written, then discarded. */
    g_autofree char *plain = g_strdup_printf("file=%s,format=qcow2", r.path);
    VdBlockBackend *blk = open_ok(plain);
    uint8_t buf[512];
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(vd_blk_pwrite_sync(blk, 40 * CS, buf, sizeof(buf), 0), 0);
    vd_blk_close(blk);
    uint64_t freed = host_cluster_of(r.path, 40);
    blk = open_ok(plain);
    assert_int_equal(vd_blk_discard_sync(blk, 40 * CS, CS), 0);
    vd_blk_close(blk);
    g_autoptr(GBytes) clean = file_bytes(r.path);
    uint64_t file_clusters = (g_bytes_get_size(clean) + CS - 1) / CS;
    assert_true(freed < file_clusters);
    set_refcount_dirty(r.path, freed, 1);             /* a leak inside the file */
    set_refcount_dirty(r.path, file_clusters + 2, 1); /* and one past its end */
    assert_int_equal(qimg_check(r.path), 3);

    g_autofree char *msg = open_error(plain);
    assert_non_null(strstr(msg, "dirty"));
    assert_non_null(strstr(msg, "repair=leaks"));

    /* Under crashsim: once the open returns, the repair is durable (a cut leaves exactly one state). */
    g_autoptr(GBytes) base = file_bytes(r.path);
    g_autofree char *opts = g_strdup_printf("driver=qcow2,child=crashsim,child.child=file,file=%s,repair=leaks", r.path);
    blk = open_ok(opts);
    gsize base_len;
    const uint8_t *base_p = g_bytes_get_data(base, &base_len);
    g_autoptr(GError) err = NULL;
    VdCrashStates *st = vd_blk_crash_states(blk, base_p, base_len, 1, &err);
    assert_non_null(st);
    assert_int_equal(vd_crash_states_count(st), 1);
    const GByteArray *after = vd_crash_states_image(st, 0);
    assert_false(vd_ld_be64(after->data + 72) & 1); /* the dirty bit is cleared, durably */
    g_autofree char *copy = g_build_filename(r.dir, "cut.qcow2", NULL);
    write_file(copy, after->data, after->len);
    assert_int_equal(qimg_check(copy), 0);
    vd_crash_states_free(st);

    data_io(blk, false);
    assert_int_equal(vd_blk_pwrite_sync(blk, 40 * CS, buf, sizeof(buf), 0), 0); /* allocates after the repair */
    vd_blk_close(blk);
    assert_int_equal(qimg_check(r.path), 0);
    blk = open_ok(plain);
    data_io(blk, false);
    vd_blk_close(blk);
    rep_free(&r);
}

/* A refcount below its references (with a leak before it): refused naming the cluster, nothing written. */
static void test_repair_refuses_low_refcount(void **state)
{
    (void)state;
    Rep r;
    rep_new(&r);
    uint64_t c = host_cluster_of(r.path, 0);
    set_refcount_dirty(r.path, 0, 2); /* a leak of the header cluster, compared first */
    set_refcount_dirty(r.path, c, 0);
    assert_int_equal(qimg_check(r.path), 2);
    g_autoptr(GBytes) before = file_bytes(r.path);

    g_autofree char *opts = g_strdup_printf("file=%s,format=qcow2,repair=leaks", r.path);
    g_autofree char *msg = open_error(opts);
    g_autofree char *want = g_strdup_printf("cluster 0x%" G_GINT64_MODIFIER "x has refcount 0 but 1 references",
                                            c * CS);
    if (!strstr(msg, want)) {
        fail_msg("'%s' does not say '%s'", msg, want);
    }
    g_autoptr(GBytes) after = file_bytes(r.path);
    assert_true(g_bytes_equal(before, after));
    rep_free(&r);
}

/* The option's spellings: only for a writable qcow2 image; a clean image opens unchanged. */
static void test_repair_options(void **state)
{
    (void)state;
    Rep r;
    rep_new(&r);
    static const struct {
        const char *opts, *error;
    } cases[] = {
        { "file=%s,format=qcow2,repair=leaks", NULL },
        { "file=%s,format=qcow2,repair=off", NULL },
        { "file=%s,format=qcow2,repair=all", "invalid repair 'all'; accepted values: off, leaks" },
        { "file=%s,repair=leaks", "repair= is only for a qcow2 image (format=qcow2)" },
        { "file=%s,format=qcow2,repair=leaks,read-only=on", "cannot go with read-only=on" },
    };
    g_autoptr(GBytes) before = file_bytes(r.path);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *o = g_strdup_printf(cases[i].opts, r.path);
        if (!cases[i].error) {
            vd_blk_close(open_ok(o));
            continue;
        }
        g_autofree char *msg = open_error(o);
        if (!strstr(msg, cases[i].error)) {
            fail_msg("'%s': '%s' does not say '%s'", o, msg, cases[i].error);
        }
    }
    g_autoptr(GBytes) after = file_bytes(r.path);
    assert_true(g_bytes_equal(before, after)); /* clean and leak-free: the repair writes nothing */
    rep_free(&r);
}

int main(void)
{
    if (!have_qemu_img()) {
        printf("SKIP qcow2-repair: qemu-img not found (apt-get install qemu-utils)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repair_leaks),
        cmocka_unit_test(test_repair_refuses_low_refcount),
        cmocka_unit_test(test_repair_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
