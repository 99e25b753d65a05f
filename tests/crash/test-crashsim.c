/*
 * test-crashsim.c - the crashsim filter and its oracle, on the backend alone:
 * what is promised when, what a cut checks, that a broken host stack is
 * caught, the option errors, and the dm-log-writes export.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "block/crashsim.h"
#include "broken-drivers.h"

#define SIZE "16M"

/* Open a backend or fail the test. */
static VdBlockBackend *open_ok(const char *opts)
{
    g_autoptr(GError) err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        fail_msg("open %s: %s", opts, err->message);
    }
    return blk;
}

/* Write nsect sectors of a pattern byte at lba. */
static void write_pat(VdBlockBackend *blk, uint64_t lba, unsigned nsect, uint8_t pat, unsigned flags)
{
    g_autofree uint8_t *buf = g_malloc(nsect * 512);
    memset(buf, pat, nsect * 512);
    assert_int_equal(vd_blk_pwrite_sync(blk, lba * 512, buf, nsect * 512, flags), 0);
}

/* Cut now and return the report. */
static VdCrashReport cut(VdBlockBackend *blk, uint64_t seed)
{
    VdCrashReport r;
    g_autoptr(GError) err = NULL;
    assert_true(vd_blk_crash_check(blk, seed, &r, &err));
    return r;
}

/* A FUA write is promised at completion; a cached one only after a flush. */
static void test_promises(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE);
    assert_true(vd_blk_has_crashsim(blk));
    write_pat(blk, 0, 8, 0x11, 0);
    VdCrashReport r = cut(blk, 1);
    assert_int_equal(r.promised, 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.cuts, 2); /* one pending write: kept or dropped */
    write_pat(blk, 16, 4, 0x22, VD_REQ_FUA);
    r = cut(blk, 1);
    assert_int_equal(r.promised, 4);
    assert_int_equal(r.failures, 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    r = cut(blk, 1);
    assert_int_equal(r.promised, 12);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.cuts, 1);
    vd_blk_close(blk);
}

/* With the write cache off every completed write is promised. */
static void test_wce_off(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE ",cache=writethrough");
    assert_false(vd_blk_write_cache(blk));
    write_pat(blk, 0, 8, 0x33, 0);
    VdCrashReport r = cut(blk, 1);
    assert_int_equal(r.promised, 8);
    assert_int_equal(r.failures, 0);
    vd_blk_close(blk);
}

/* A cached write completed, then WCE 1->0: the switch's drain-and-flush promises it. */
static void test_wce_switch(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE);
    write_pat(blk, 0, 8, 0x44, 0);
    assert_int_equal(cut(blk, 1).promised, 0);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    VdCrashReport r = cut(blk, 1);
    assert_int_equal(r.promised, 8);
    assert_int_equal(r.failures, 0);
    vd_blk_close(blk);
}

/* The oracle bites: FUA ignored below the backend, and a flush that flushes nothing. */
static void test_broken_stacks(void **state)
{
    broken_drivers_register();
    VdBlockBackend *blk = open_ok("driver=broken-fua,child=null,size=" SIZE);
    write_pat(blk, 0, 8, 0x55, VD_REQ_FUA);
    VdCrashReport r = cut(blk, 7);
    assert_int_equal(r.promised, 8);
    assert_int_equal(r.failures, 1);   /* the state that drops the volatile write */
    assert_int_equal(r.first_lba, 0);
    vd_blk_close(blk);

    blk = open_ok("driver=broken-flush,child=null,size=" SIZE);
    write_pat(blk, 32, 2, 0x66, 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    r = cut(blk, 7);
    assert_int_equal(r.promised, 2);
    assert_int_equal(r.failures, 1);
    assert_int_equal(r.first_lba, 32);
    g_autoptr(GString) s = g_string_new(NULL);
    vd_crash_report_format(&r, s);
    assert_string_equal(s->str, "cuts=2 promised=2 failures=1 first failure: seed=7 cut=0 lba=32");
    vd_blk_close(blk);
}

/* A later write to a promised sector may win or lose: both are legal. */
static void test_later_write(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE ",tear=512");
    write_pat(blk, 0, 8, 0x77, VD_REQ_FUA);
    write_pat(blk, 0, 8, 0x78, 0);
    VdCrashReport r = cut(blk, 3);
    assert_int_equal(r.pending, 8);    /* torn into 8 units of 512 bytes */
    assert_int_equal(r.cuts, 256);
    assert_int_equal(r.failures, 0);
    vd_blk_close(blk);
}

/* Many pending units: seeded sampling, reproducible. */
static void test_sampling(void **state)
{
    broken_drivers_register();
    VdBlockBackend *blk = open_ok("driver=broken-fua,child=null,size=" SIZE ",samples=100");
    for (unsigned i = 0; i < 20; i++) {
        write_pat(blk, i * 8, 8, i, VD_REQ_FUA);
    }
    VdCrashReport a = cut(blk, 42), b = cut(blk, 42);
    assert_true(a.sampled);
    assert_int_equal(a.cuts, 100);
    assert_true(a.failures > 90);      /* 20 lost FUA writes: nearly every state loses one */
    assert_int_equal(a.first_cut, b.first_cut);
    assert_int_equal(a.first_lba, b.first_lba);
    vd_blk_close(blk);
}

/* cache=unsafe promises nothing; the report says what would be lost. */
static void test_unsafe(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE ",cache=unsafe");
    write_pat(blk, 0, 8, 0x99, VD_REQ_FUA);
    VdCrashReport r = cut(blk, 1);
    assert_true(r.unsafe);
    assert_int_equal(r.failures, 1);
    g_autoptr(GString) s = g_string_new(NULL);
    vd_crash_report_format(&r, s);
    assert_non_null(strstr(s->str, "promised=0 failures=0 unsafe"));
    vd_blk_close(blk);
}

/* Every bad option gets one clear line. */
static void test_options(void **state)
{
    static const struct { const char *opts, *msg; } bad[] = {
        { "driver=crashsim,size=1M", "driver 'crashsim' needs a child: child=file,file=PATH or child=null,size=BYTES" },
        { "driver=null,child=null,size=1M", "child= is only for a driver with a child (crashsim, qcow2), not driver 'null'" },
        { "driver=crashsim,child=crashsim,size=1M", "child 'crashsim' needs a child: child.child=file,file=PATH or child.child=null,size=BYTES" },
        { "driver=crashsim,child=crashsim,child.child=crashsim,size=1M", "invalid child.child 'crashsim': the bottom of the chain must be a protocol driver (file, null)" },
        { "driver=crashsim,child=nosuch,size=1M", "invalid child 'nosuch'; accepted values: *" },
        { "driver=crashsim,child=null,size=1M,tear=3", "invalid tear '3'; accepted values: off, 512, 4k, 4096" },
        { "driver=crashsim,child=null,size=1M,samples=0", "invalid samples '0'; expected a number from 1 to 1000000" },
        { "driver=null,size=1M,tear=512", "tear=, samples= and log= are only for driver=crashsim" },
        { "driver=crashsim,child=null", "driver 'null' needs size=BYTES" },
        { "driver=crashsim,child=file,size=1M", "driver 'file' needs file=PATH" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        assert_null(vd_blk_open(bad[i].opts, NULL, &err));
        assert_non_null(err);
        if (!g_pattern_match_simple(bad[i].msg, err->message)) {
            fail_msg("%s: got '%s'", bad[i].opts, err->message);
        }
    }
    VdBlockBackend *blk = open_ok("driver=null,size=1M");
    VdCrashReport r;
    g_autoptr(GError) err = NULL;
    assert_false(vd_blk_crash_check(blk, 1, &r, &err));
    assert_string_equal(err->message, "drive has no crashsim filter (open it with driver=crashsim,child=...)");
    vd_blk_close(blk);
}

/* file= alone gives crashsim a file child; data goes through to the file. */
static void test_file_child(void **state)
{
    char path[] = "/tmp/vd-crash-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    g_autofree char *o = g_strdup_printf("driver=crashsim,file=%s", path);
    VdBlockBackend *blk = open_ok(o);
    assert_string_equal(vd_blk_driver_name(blk), "crashsim");
    write_pat(blk, 3, 1, 0xab, VD_REQ_FUA);
    uint8_t buf[512];
    assert_int_equal(vd_blk_pread_sync(blk, 3 * 512, buf, 512), 0);
    assert_int_equal(buf[0], 0xab);
    assert_int_equal(cut(blk, 1).failures, 0);
    vd_blk_close(blk);
    unlink(path);
}

/* A guest's own view catches a device that drops FUA before the backend; the backend's view cannot. */
static void test_guest_view(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE);
    VdCrashGuest *g = vd_crash_guest_new();
    uint8_t buf[4096];
    memset(buf, 0x5a, sizeof(buf));
    VdCrashGuestWrite *w = vd_crash_guest_write(g, 0, buf, sizeof(buf), true);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, sizeof(buf), 0), 0); /* the "device" lost the FUA bit */
    vd_crash_guest_write_done(g, w, true, false);
    VdCrashReport r;
    g_autoptr(GError) err = NULL;
    assert_true(vd_blk_crash_check_guest(blk, g, 5, &r, &err));
    assert_int_equal(r.promised, 8);
    assert_int_equal(r.failures, 1);
    assert_int_equal(cut(blk, 5).promised, 0);
    /* A flush the guest submitted and the device did perform makes it hold. */
    uint64_t f = vd_crash_guest_flush(g);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    vd_crash_guest_flush_done(g, f, true);
    assert_true(vd_blk_crash_check_guest(blk, g, 5, &r, &err));
    assert_int_equal(r.failures, 0);
    /* A write in flight at a draining switch is promised once the switch is acknowledged. */
    memset(buf, 0x5b, sizeof(buf));
    w = vd_crash_guest_write(g, 8192, buf, sizeof(buf), false);
    assert_int_equal(vd_blk_pwrite_sync(blk, 8192, buf, sizeof(buf), 0), 0);
    uint64_t sw = vd_crash_guest_cache_off(g);
    vd_crash_guest_write_done(g, w, true, true);
    assert_true(vd_blk_crash_check_guest(blk, g, 5, &r, &err));
    assert_int_equal(r.promised, 8);               /* not yet: the switch has not been acknowledged */
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    vd_crash_guest_cache_off_done(g, sw, true);
    assert_true(vd_blk_crash_check_guest(blk, g, 5, &r, &err));
    assert_int_equal(r.promised, 16);
    assert_int_equal(r.failures, 0);
    vd_crash_guest_free(g);
    vd_blk_close(blk);
}

/* ---- a child whose flush waits for the test: a write can complete while it runs ---- */

static int gate_started, gate_release; /* atomics: the flush began; the test lets it finish */

/* flush_to_disk of the gate driver: hold the flush open until the test releases it. */
static int gate_flush(VdBlockDriverState *bs, VdDriverReq *req)
{
    g_atomic_int_set(&gate_started, 1);
    while (!g_atomic_int_get(&gate_release)) {
        g_usleep(100);
    }
    return 0;
}

/* The rest of the gate driver: a disk of size= bytes that stores nothing. */
static bool gate_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    *(uint64_t *)bs->opaque = o->size;
    return true;
}
static void gate_close(VdBlockDriverState *bs) {}
static int64_t gate_length(VdBlockDriverState *bs) { return *(uint64_t *)bs->opaque; }
static VdFuaSupport gate_can_fua(VdBlockDriverState *bs) { return VD_FUA_NATIVE; }
static int gate_ok(VdBlockDriverState *bs, VdDriverReq *req) { return 0; }

static const VdBlockDriver gate_driver = {
    .name = "gate", .instance_size = sizeof(uint64_t), .open = gate_open, .close = gate_close,
    .get_length = gate_length, .can_fua = gate_can_fua, .preadv = gate_ok, .pwritev = gate_ok,
    .flush_to_disk = gate_flush,
};

/* Completion of the held flush. */
static void flush_cb(void *opaque, int ret)
{
    *(int *)opaque = ret + 1;
}

/* A write that completes while a flush runs belongs to the next epoch (the CrashMonkey rule). */
static void test_flush_epoch(void **state)
{
    vd_block_register_driver(&gate_driver);
    VdBlockBackend *blk = open_ok("driver=crashsim,child=gate,size=" SIZE ",aio=threads");
    write_pat(blk, 0, 1, 0x10, 0);
    int flushed = 0;
    g_atomic_int_set(&gate_started, 0);
    g_atomic_int_set(&gate_release, 0);
    vd_blk_flush(blk, flush_cb, &flushed);
    while (!g_atomic_int_get(&gate_started)) {
        g_usleep(100);
    }
    write_pat(blk, 8, 1, 0x20, 0);          /* completes while the flush is held */
    g_atomic_int_set(&gate_release, 1);
    while (!flushed) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(flushed, 1);
    VdCrashReport r = cut(blk, 1);
    assert_int_equal(r.promised, 1);        /* the first write: done before the flush was submitted */
    assert_int_equal(r.pending, 1);         /* the second one is still volatile */
    assert_int_equal(r.failures, 0);
    vd_blk_close(blk);
}

/* Read a little-endian u64 at p. */
static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
}

/* The dm-log-writes export: super block, then entries in durability order. */
static void test_log(void **state)
{
    VdBlockBackend *blk = open_ok("driver=crashsim,child=null,size=" SIZE);
    write_pat(blk, 8, 2, 0xc1, 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    write_pat(blk, 4, 1, 0xc2, VD_REQ_FUA);
    assert_int_equal(vd_blk_discard_sync(blk, 0, 4096), 0);
    cut(blk, 1);
    char path[] = "/tmp/vd-crashlog-XXXXXX";
    close(mkstemp(path));
    g_autoptr(GError) err = NULL;
    assert_true(vd_blk_crash_write_log(blk, path, &err));
    vd_blk_close(blk);
    g_autofree uint8_t *log = NULL;
    gsize len;
    assert_true(g_file_get_contents(path, (char **)&log, &len, NULL));
    unlink(path);
    assert_int_equal(le64(log), 0x6a736677736872ull);
    assert_int_equal(le64(log + 8), 1);
    assert_int_equal(le64(log + 16), 5);  /* write, FLUSH, FUA write, MARK, volatile discard */
    assert_int_equal(log[24] | log[25] << 8, 512);
    static const struct { uint64_t sector, nsect, flags, data; } want[] = {
        { 8, 2, 0, 2 }, { 0, 0, 1, 0 }, { 4, 1, 2, 1 }, { 0, 0, 8, 0 }, { 0, 8, 4, 0 },
    };
    const uint8_t *e = log + 512;
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        assert_int_equal(le64(e), want[i].sector);
        assert_int_equal(le64(e + 8), want[i].nsect);
        assert_int_equal(le64(e + 16), want[i].flags);
        if (want[i].flags == 8) {
            assert_int_equal(le64(e + 24), 5);
            assert_memory_equal(e + 32, "cut-1", 5);
        }
        e += 512 + want[i].data * 512;
    }
    assert_int_equal(e - log, (ptrdiff_t)len);
}

/* log=PATH: the log is written at close, each FLUSH followed by its time stamp MARK; a bad path fails the open. */
static void test_log_option(void **state)
{
    char path[] = "/tmp/vd-crashlog-XXXXXX";
    close(mkstemp(path));
    g_autofree char *opts = g_strdup_printf("driver=crashsim,child=null,size=" SIZE ",log=%s", path);
    VdBlockBackend *blk = open_ok(opts);
    int64_t before = g_get_monotonic_time();
    write_pat(blk, 8, 2, 0xc1, 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    write_pat(blk, 4, 1, 0xc2, 0);
    int64_t after = g_get_monotonic_time();
    vd_blk_close(blk);
    g_autofree uint8_t *log = NULL;
    gsize len;
    assert_true(g_file_get_contents(path, (char **)&log, &len, NULL));
    unlink(path);
    assert_int_equal(le64(log + 16), 4);  /* write, FLUSH, MARK t=..., the volatile write */
    static const struct { uint64_t sector, nsect, flags, data; } want[] = {
        { 8, 2, 0, 2 }, { 0, 0, 1, 0 }, { 0, 0, 8, 0 }, { 4, 1, 0, 1 },
    };
    const uint8_t *e = log + 512;
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        assert_int_equal(le64(e), want[i].sector);
        assert_int_equal(le64(e + 16), want[i].flags);
        if (want[i].flags == 8) {
            g_autofree char *mark = g_strndup((const char *)e + 32, le64(e + 24));
            assert_true(g_str_has_prefix(mark, "t="));
            gint64 t = g_ascii_strtoll(mark + 2, NULL, 10);
            assert_true(t >= before && t <= after);
        }
        e += 512 + want[i].data * 512;
    }
    assert_int_equal(e - log, (ptrdiff_t)len);

    g_autoptr(GError) err = NULL;
    assert_null(vd_blk_open("driver=crashsim,child=null,size=1M,log=/nonexistent/dir/x.log", NULL, &err));
    assert_true(g_str_has_prefix(err->message, "log=/nonexistent/dir/x.log: "));
    g_clear_error(&err);
    assert_null(vd_blk_open("driver=crashsim,child=null,size=1M,log=", NULL, &err));
    assert_string_equal(err->message, "log= needs a path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promises),   cmocka_unit_test(test_wce_off),   cmocka_unit_test(test_wce_switch),
        cmocka_unit_test(test_broken_stacks), cmocka_unit_test(test_later_write), cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_unsafe),     cmocka_unit_test(test_options),   cmocka_unit_test(test_file_child),
        cmocka_unit_test(test_log),        cmocka_unit_test(test_guest_view), cmocka_unit_test(test_flush_epoch),
        cmocka_unit_test(test_log_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
