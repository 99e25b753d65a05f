/*
 * test-fault.c - host faults (block/fault.c): fault.OP= and delay.OP= from the
 * option string, taken at the driver-boundary checkpoint on both engines.
 */
#include "block-test-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static TempImage scratch;
static uint8_t *buf;

static const char *const setups[] = {
    "cache=none,aio=threads", "cache=none", "cache=writeback,aio=threads", "cache=writeback",
};

static int setup(void **state)
{
    temp_image_create(&scratch, "disk.img", 4 << 20);
    assert_int_equal(posix_memalign((void **)&buf, 4096, 4096), 0);
    memset(buf, 0x3c, 4096);
    return 0;
}

static int teardown(void **state)
{
    temp_image_remove(&scratch);
    free(buf);
    return 0;
}

/* Open the scratch image with werror=report and the given options. */
static VdBlockBackend *open_image(const char *setup_opts, const char *extra)
{
    g_autofree char *opts = g_strdup_printf("file=%s,werror=report,%s,%s", scratch.path, setup_opts, extra);
    return open_ok(opts);
}

/* fault.write=ENOSPC@3: only the third write fails, once. */
static void test_nth_once(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "fault.write=ENOSPC@3");
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -ENOSPC);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 4096), 0);
        vd_blk_close(blk);
    }
}

/* fault.write=EDQUOT@2+: the second write and every later one fail. */
static void test_nth_always(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "fault.write=EDQUOT@2+");
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EDQUOT);
        }
        vd_blk_close(blk);
    }
}

/* fault.read=EIO/1M-2M: reads touching the range fail, every time; others do not. */
static void test_range(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "fault.read=EIO/1M-2M");
        assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 4096), 0);
        assert_int_equal(vd_blk_pread_sync(blk, (1 << 20) - 4096, buf, 4096), 0);
        assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf, 4096), -EIO);
        assert_int_equal(vd_blk_pread_sync(blk, (2 << 20) - 4096, buf, 4096), -EIO);
        assert_int_equal(vd_blk_pread_sync(blk, 2 << 20, buf, 4096), 0);
        vd_blk_close(blk);
    }
}

/* fault.flush=EIO: every host flush fails (and the error sticks). */
static void test_flush_always(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "fault.flush=EIO");
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_flush_sync(blk), -EIO);
        vd_blk_close(blk);
    }
}

/*
 * delay.flush=30ms: each host flush takes at least that long, on both
 * engines, and so does a durable (FUA) write, a flush too on a real device;
 * plain writes do not.
 */
static void test_delay_flush(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "delay.flush=30ms");
        gint64 t0 = g_get_monotonic_time();
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        gint64 t1 = g_get_monotonic_time();
        assert_int_equal(vd_blk_flush_sync(blk), 0);
        gint64 t2 = g_get_monotonic_time();
        assert_true(t1 - t0 < 30000);
        assert_true(t2 - t1 >= 30000);
        assert_int_equal(stats_of(blk).host_fdatasync, 1);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, VD_REQ_FUA), 0);
        assert_true(g_get_monotonic_time() - t2 >= 30000);
        vd_blk_close(blk);
    }
}

/* The API sets the same rule table: an injected fault replaces the option's rule. */
static void test_inject_replaces_rule(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback", "fault.write=EIO");
    vd_blk_inject_error(blk, VD_FAULT_WRITE, ENOSPC, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -ENOSPC);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    VdFaultRule rule = { .err = EIO, .count = 2, .after = 1 };
    vd_blk_set_fault(blk, VD_FAULT_WRITE, &rule);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    vd_blk_close(blk);
}

/* Every bad value is one line naming it and what is accepted. */
static void test_bad_values(void **state)
{
    static const struct { const char *opt, *msg; } cases[] = {
        { "fault.write=EFOO", "invalid fault.write 'EFOO': unknown errno; expected ERRNO[@N[+]][/START-END] with "
                              "ERRNO one of EIO, ENOSPC, EDQUOT, EROFS, EPERM, EINVAL, ENOMEM, ENOTSUP" },
        { "fault.flush=EIO@0", "invalid fault.flush 'EIO@0': @N needs an op number from 1; expected "
                               "ERRNO[@N[+]][/START-END] with ERRNO one of EIO, ENOSPC, EDQUOT, EROFS, EPERM, "
                               "EINVAL, ENOMEM, ENOTSUP" },
        { "fault.read=EIO/2M-1M", "invalid fault.read 'EIO/2M-1M': the range must be START-END with START < END "
                                  "(sizes, e.g. 1M-2M); expected ERRNO[@N[+]][/START-END] with ERRNO one of EIO, "
                                  "ENOSPC, EDQUOT, EROFS, EPERM, EINVAL, ENOMEM, ENOTSUP" },
        { "delay.flush=2", "invalid delay.flush '2'; expected a time with a unit (us, ms, s) of at most 10s, e.g. 2ms" },
        { "delay.write=11s", "invalid delay.write '11s'; expected a time with a unit (us, ms, s) of at most 10s, e.g. 2ms" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *opts = g_strdup_printf("driver=null,size=1M,%s", cases[i].opt);
        GError *err = NULL;
        assert_false(vd_blk_check_options(opts, &err));
        assert_string_equal(err->message, cases[i].msg);
        g_error_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nth_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nth_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inject_replaces_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
