/*
 * test-options.c - every accepted option value opens, and every bad option
 * string fails with a message that names the culprit and what is accepted.
 */
#include "block-test-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static TempImage scratch;

/* The image name has a comma: it needs ",," escaping. */
static int setup(void **state)
{
    temp_image_create(&scratch, "a,b.img", 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    temp_image_remove(&scratch);
    return 0;
}

/* The image path with commas doubled, as the option syntax wants. */
static char *escaped_image(void)
{
    g_auto(GStrv) parts = g_strsplit(scratch.path, ",", -1);
    return g_strjoinv(",,", parts);
}

/* Every accepted value of every enumerated key opens and is reported back. */
static void test_every_accepted_value(void **state)
{
    g_autofree char *img = escaped_image();
    static const struct {
        const char *opt;
        VdCacheMode cache;
        VdWritethroughPolicy policy;
        int read_only;
    } rows[] = {
        { "cache=writeback", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "cache=none", VD_CACHE_NONE, VD_WT_FUA, 0 },
        { "cache=writethrough", VD_CACHE_WRITETHROUGH, VD_WT_FUA, 0 },
        { "cache=directsync", VD_CACHE_DIRECTSYNC, VD_WT_FUA, 0 },
        { "cache=unsafe", VD_CACHE_UNSAFE, VD_WT_FUA, 0 },
        { "wt-policy=fua", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "wt-policy=dsync", VD_CACHE_WRITEBACK, VD_WT_DSYNC, 0 },
        { "read-only=on", VD_CACHE_WRITEBACK, VD_WT_FUA, 1 },
        { "read-only=true", VD_CACHE_WRITEBACK, VD_WT_FUA, 1 },
        { "read-only=yes", VD_CACHE_WRITEBACK, VD_WT_FUA, 1 },
        { "read-only=off", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "read-only=false", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "read-only=no", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "aio=threads", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "aio=io_uring", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "format=raw", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "driver=file", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "discard=unmap", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "discard=on", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "discard=ignore", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "discard=off", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "locking=auto", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "locking=on", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "locking=off", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "active=on", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
        { "active=off", VD_CACHE_WRITEBACK, VD_WT_FUA, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autofree char *opts = g_strdup_printf("file=%s,%s", img, rows[i].opt);
        VdBlockBackend *blk = open_ok(opts);
        assert_int_equal(vd_blk_cache_mode(blk), rows[i].cache);
        assert_int_equal(vd_blk_wt_policy(blk), rows[i].policy);
        assert_int_equal(vd_blk_is_read_only(blk), rows[i].read_only);
        /* io_uring is the default (this machine has it); aio=threads selects the pool. */
        assert_int_equal(vd_blk_aio(blk), strstr(rows[i].opt, "threads") ? VD_AIO_THREADS : VD_AIO_IO_URING);
        assert_string_equal(vd_blk_filename(blk), scratch.path);
        assert_string_equal(vd_cache_mode_name(rows[i].cache), i < 5 ? rows[i].opt + 6 : vd_cache_mode_name(rows[i].cache));
        bool discard = strstr(rows[i].opt, "discard=ignore") || strstr(rows[i].opt, "discard=off");
        assert_int_equal(vd_blk_can_discard(blk), !discard && !rows[i].read_only);
        vd_blk_close(blk);
    }
    static const struct {
        const char *size;
        int64_t bytes;
    } sizes[] = { { "4096", 4096 }, { "1K", 1024 }, { "2k", 2048 }, { "3M", 3 << 20 }, { "1G", 1ll << 30 },
                  { "2T", 2ll << 40 }, { "512B", 512 }, { "9223372036854775296", 9223372036854775296ll } };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree char *opts = g_strdup_printf("driver=null,size=%s", sizes[i].size);
        VdBlockBackend *blk = open_ok(opts);
        assert_int_equal(vd_blk_length(blk), sizes[i].bytes);
        assert_string_equal(vd_blk_driver_name(blk), "null");
        vd_blk_close(blk);
    }
}

/* Each bad option string and a fragment its error message must contain. */
static void test_bad_options(void **state)
{
    g_autofree char *img = escaped_image();
    struct {
        char *opts;
        const char *expect;
    } rows[] = {
        { g_strdup_printf("file=%s,cache=fast", img),
          "invalid cache 'fast'; accepted values: writeback, none, writethrough, directsync, unsafe" },
        { g_strdup_printf("file=%s,wt-policy=sometimes", img), "invalid wt-policy 'sometimes'; accepted values: fua, dsync" },
        { g_strdup_printf("file=%s,read-only=maybe", img), "invalid read-only 'maybe'; accepted values: on, off, true, false, yes, no" },
        { g_strdup_printf("file=%s,aio=native", img), "invalid aio 'native'; accepted values: threads, io_uring" },
        { g_strdup_printf("file=%s,format=vmdk", img), "invalid format 'vmdk'; accepted values: raw, qcow2" },
        { g_strdup_printf("file=%s,format=qcow2", img), "not a qcow2 image: magic is 0x00000000, expected 0x514649fb" },
        { g_strdup_printf("file=%s,discard=maybe", img), "invalid discard 'maybe'; accepted values: unmap, on, ignore, off" },
        { g_strdup_printf("file=%s,driver=vvfat", img), "invalid driver 'vvfat'; accepted values: file, null" },
        { g_strdup_printf("file=%s,colour=blue", img),
          "unknown option 'colour'; accepted options: file, driver, format, cache, aio, read-only, wt-policy, size, discard, "
          "locking, active" },
        { g_strdup_printf("file=%s,active=maybe", img), "invalid active 'maybe'; accepted values: on, off, true, false" },
        { g_strdup_printf("file=%s,locking=maybe", img), "invalid locking 'maybe'; accepted values: auto, on, off" },
        { g_strdup_printf("file=%s,cache=none,cache=unsafe", img), "option 'cache' is given twice" },
        { g_strdup_printf("file=%s,,,cache", img), "option 'cache' is not of the form key=value" },
        { g_strdup(",cache=none"), "empty option in ',cache=none'" },
        { g_strdup_printf("file=%s,cache=none,", img), "empty option in 'file=" },   /* trailing comma */
        { g_strdup("cache=none"), "driver 'file' needs file=PATH" },
        { g_strdup("file="), "file= needs a path" },
        { g_strdup_printf("file=%s/missing.img", scratch.dir), "missing.img: No such file or directory" },
        { g_strdup_printf("file=%s", scratch.dir), "is a directory, not a disk image" },
        { g_strdup("file=/dev/null"), "/dev/null is a special file, not a regular file or block device" },
        { g_strdup("driver=null"), "driver 'null' needs size=BYTES" },
        { g_strdup("driver=null,size=12Q"), "size=12Q: not a size" },
        { g_strdup("driver=null,size=-1"), "size=-1: not a size" },
        { g_strdup("driver=null,size=99999999999T"), "size=99999999999T: too large" },
        /* The backend addresses INT64_MAX bytes, rounded down to a sector; the rest is refused by name. */
        { g_strdup("driver=null,size=9223372036854775808"),
          "size=9223372036854775808 is too large; the largest disk is 9223372036854775296 bytes (2^63 - 512)" },
        { g_strdup("driver=null,size=9223372036854775807"),
          "size=9223372036854775807 is too large; the largest disk is 9223372036854775296 bytes (2^63 - 512)" },
        { g_strdup("driver=null,size=18446744073709551615"), "size=18446744073709551615 is too large" },
        { g_strdup("driver=null,size=8388608T"), "size=8388608T is too large" },
        /* Every image is whole 512-byte sectors, at least one (the file driver's rows are in test-file-driver.c). */
        { g_strdup("driver=null,size=0"), "size=0 is empty; driver=null needs at least one 512-byte sector" },
        { g_strdup("driver=null,size=1000"), "size=1000 is not a multiple of 512 bytes; use e.g. size=1024" },
        { g_strdup("driver=null,size=9223372036854775295"), "size=9223372036854775295 is not a multiple of 512 bytes" },
        { g_strdup_printf("driver=null,size=1M,file=%s", img), "driver 'null' takes no file= option" },
        { g_strdup_printf("file=%s,size=1M", img), "size= is only for driver=null" },
        { g_strdup(""), "driver 'file' needs file=PATH" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        GError *err = NULL;
        VdBlockBackend *blk = vd_blk_open(rows[i].opts, NULL, &err);
        if (blk) {
            fail_msg("'%s' was accepted", rows[i].opts);
        }
        assert_non_null(err);
        if (!strstr(err->message, rows[i].expect)) {
            fail_msg("'%s': message '%s' lacks '%s'", rows[i].opts, err->message, rows[i].expect);
        }
        g_error_free(err);
        g_free(rows[i].opts);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_accepted_value),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests_name("block-options", tests, setup, teardown);
}
