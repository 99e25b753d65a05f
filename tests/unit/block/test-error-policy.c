/*
 * test-error-policy.c - werror=/rerror= (docs/cache-modes.md, "Error policy"):
 * report, ignore, stop and enospc with injected EIO and ENOSPC into writes,
 * reads and flushes, on the file driver with both engines (aio=threads and
 * the default io_uring) and on the mock driver for ordering; and a real
 * host error (EFBIG past RLIMIT_FSIZE) in a write run inline.
 */
#include "block-test-util.h"
#include "mock-driver.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static TempImage scratch;
static uint8_t *buf_a, *buf_b, *buf_r;

/* Engines and cache modes every file-driver test runs with. */
static const char *const setups[] = {
    "cache=none,aio=threads", "cache=none", "cache=writeback,aio=threads", "cache=writeback",
};
static const int errs[] = { EIO, ENOSPC };

static int setup(void **state)
{
    temp_image_create(&scratch, "disk.img", 1 << 20);
    assert_int_equal(posix_memalign((void **)&buf_a, 4096, 4096), 0);
    assert_int_equal(posix_memalign((void **)&buf_b, 4096, 4096), 0);
    assert_int_equal(posix_memalign((void **)&buf_r, 4096, 4096), 0);
    memset(buf_a, 0xa5, 4096);
    memset(buf_b, 0x5b, 4096);
    return 0;
}

static int teardown(void **state)
{
    temp_image_remove(&scratch);
    free(buf_a);
    free(buf_b);
    free(buf_r);
    return 0;
}

/* Open the scratch image with "file=PATH,setup,extra". */
static VdBlockBackend *open_image(const char *setup_opts, const char *extra)
{
    g_autofree char *opts = g_strdup_printf("file=%s,%s,%s", scratch.path, setup_opts, extra);
    return open_ok(opts);
}

/* Submit an async write of 4096 bytes of b at off. */
static void write_async(VdBlockBackend *blk, uint64_t off, uint8_t *b, unsigned flags, Completion *c)
{
    static struct iovec iov[64];
    static unsigned next;
    struct iovec *v = &iov[next++ % 64];
    *v = (struct iovec){ .iov_base = b, .iov_len = 4096 };
    vd_blk_pwritev(blk, off, v, 1, flags, completion_cb, c);
}

/* Records stop notifications. */
typedef struct StopLog {
    int calls, err;
    bool is_read;
} StopLog;

static void on_stop(void *opaque, bool is_read, int err)
{
    StopLog *l = opaque;
    l->calls++;
    l->err = err;
    l->is_read = is_read;
}

/* True if the 4096 bytes at off read back as want. */
static bool reads_back(VdBlockBackend *blk, uint64_t off, const uint8_t *want)
{
    memset(buf_r, 0, 4096);
    return vd_blk_pread_sync(blk, off, buf_r, 4096) == 0 && memcmp(buf_r, want, 4096) == 0;
}

/* The defaults are QEMU's; bad values are named with the accepted ones. */
static void test_options(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback", "locking=off");
    assert_int_equal(vd_blk_werror(blk), VD_ERR_ENOSPC);
    assert_int_equal(vd_blk_rerror(blk), VD_ERR_REPORT);
    vd_blk_close(blk);
    blk = open_image("cache=writeback", "werror=stop,rerror=ignore");
    assert_int_equal(vd_blk_werror(blk), VD_ERR_STOP);
    assert_int_equal(vd_blk_rerror(blk), VD_ERR_IGNORE);
    vd_blk_close(blk);
    GError *err = NULL;
    assert_false(vd_blk_check_options("driver=null,size=1M,werror=pause", &err));
    assert_string_equal(err->message, "invalid werror 'pause'; accepted values: report, ignore, stop, enospc");
    g_clear_error(&err);
    assert_false(vd_blk_check_options("driver=null,size=1M,rerror=", &err));
    assert_string_equal(err->message, "invalid rerror ''; accepted values: report, ignore, stop, enospc");
    g_clear_error(&err);
}

/* report: the write and the flush complete with the injected error; nothing stops. */
static void test_report(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
            VdBlockBackend *blk = open_image(setups[s], "werror=report");
            vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, 0), -errs[i]);
            vd_blk_inject_error(blk, VD_FAULT_FLUSH, errs[i], 1);
            assert_int_equal(vd_blk_flush_sync(blk), -errs[i]);
            assert_false(vd_blk_is_stopped(blk));
            vd_blk_close(blk);
        }
    }
}

/*
 * ignore: a failed cached write completes as a success, but a failed flush
 * and a failed FUA write are reported (acknowledging them would lose
 * acknowledged data), and the flush error still sticks.
 */
static void test_ignore_never_for_flush(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
            VdBlockBackend *blk = open_image(setups[s], "werror=ignore,rerror=ignore");
            vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, 0), 0);
            vd_blk_inject_error(blk, VD_FAULT_READ, errs[i], 1);
            assert_int_equal(vd_blk_pread_sync(blk, 0, buf_r, 4096), 0);
            vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, VD_REQ_FUA), -errs[i]);
            vd_blk_inject_error(blk, VD_FAULT_FLUSH, errs[i], 1);
            assert_int_equal(vd_blk_flush_sync(blk), -errs[i]);
            assert_int_equal(vd_blk_flush_sync(blk), -errs[i]); /* sticky */
            vd_blk_close(blk);
        }
    }
}

/* enospc: ENOSPC stops, any other error is reported. */
static void test_enospc_reports_eio(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "werror=enospc");
        vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, 0), -EIO);
        assert_false(vd_blk_is_stopped(blk));
        vd_blk_close(blk);
    }
}

/* Iterate the loop until blk has stopped (fails after 10 s), then let anything else that is due run. */
static void wait_stopped(VdBlockBackend *blk)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!vd_blk_is_stopped(blk)) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
    settle();
}

/*
 * stop (and enospc for ENOSPC): the failed write is held, its callback does
 * not run; the backend stops and notifies once; requests submitted while
 * stopped are queued, not issued; resume retries the held write, then
 * issues the queued ones; everything acknowledged reads back, also after a
 * reopen.
 */
static void test_stop_then_resume(void **state)
{
    static const char *const policies[] = { "werror=stop", "werror=enospc" };
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        for (size_t p = 0; p < G_N_ELEMENTS(policies); p++) {
            for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
                if (p == 1 && errs[i] != ENOSPC) {
                    continue;
                }
                VdBlockBackend *blk = open_image(setups[s], policies[p]);
                StopLog log = { 0 };
                vd_blk_add_stop_notifier(blk, on_stop, &log);
                Completion w1 = { 0 }, w2 = { 0 }, f = { 0 };
                vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
                write_async(blk, 0, buf_a, 0, &w1);
                wait_stopped(blk);
                assert_int_equal(w1.calls, 0);
                assert_int_equal(log.calls, 1);
                assert_int_equal(log.err, -errs[i]);
                assert_false(log.is_read);
                VdBlockStats before = stats_of(blk);
                write_async(blk, 4096, buf_b, 0, &w2);
                vd_blk_flush(blk, completion_cb, &f);
                settle();
                assert_int_equal(w2.calls + f.calls, 0);
                assert_int_equal(stats_of(blk).host_writes, before.host_writes);
                assert_int_equal(vd_blk_parked(blk), 3);
                assert_int_equal(vd_blk_in_flight(blk), 3);
                vd_blk_resume(blk);
                wait_completion(&w1);
                wait_completion(&w2);
                wait_completion(&f);
                assert_int_equal(w1.calls, 1);
                assert_int_equal(w1.ret, 0);
                assert_int_equal(w2.ret, 0);
                assert_int_equal(f.ret, 0);
                assert_false(vd_blk_is_stopped(blk));
                assert_int_equal(log.calls, 1);
                assert_true(reads_back(blk, 0, buf_a));
                assert_true(reads_back(blk, 4096, buf_b));
                vd_blk_remove_stop_notifier(blk, on_stop, &log);
                vd_blk_close(blk);
                blk = open_image(setups[s], "werror=report");
                assert_true(reads_back(blk, 0, buf_a));
                assert_true(reads_back(blk, 4096, buf_b));
                memset(buf_r, 0, 4096);
                assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_r, 4096, 0), 0);
                assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf_r, 4096, 0), 0);
                vd_blk_close(blk);
            }
        }
    }
}

/*
 * A held flush whose sync step failed is retried by re-planning it: the
 * sticky error is set, so the retry completes with it (never a success),
 * without stopping again; a write queued meanwhile and a held FUA write
 * whose durable write failed likewise.
 */
static void test_stop_flush_error_sticks(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
            VdBlockBackend *blk = open_image(setups[s], "werror=stop");
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, 0), 0);
            Completion f = { 0 }, w = { 0 };
            vd_blk_inject_error(blk, VD_FAULT_FLUSH, errs[i], 1);
            vd_blk_flush(blk, completion_cb, &f);
            wait_stopped(blk);
            assert_int_equal(f.calls, 0);
            write_async(blk, 4096, buf_b, VD_REQ_FUA, &w);
            vd_blk_resume(blk);
            wait_completion(&f);
            wait_completion(&w);
            assert_int_equal(f.ret, -errs[i]);
            assert_int_equal(w.ret, -errs[i]);
            assert_false(vd_blk_is_stopped(blk));
            assert_int_equal(vd_blk_flush_sync(blk), -errs[i]);
            vd_blk_close(blk);

            /* A held FUA write whose durable write failed: its retry fails with the sticky error. */
            blk = open_image(setups[s], "werror=stop");
            Completion fw = { 0 };
            vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
            write_async(blk, 0, buf_a, VD_REQ_FUA, &fw);
            wait_stopped(blk);
            assert_int_equal(fw.calls, 0);
            vd_blk_resume(blk);
            wait_completion(&fw);
            assert_int_equal(fw.ret, -errs[i]);
            assert_false(vd_blk_is_stopped(blk));
            vd_blk_close(blk);
        }
    }
}

/* rerror=stop: a failed read is held and retried; the stop notifier says it was a read. */
static void test_read_stop(void **state)
{
    for (size_t s = 0; s < G_N_ELEMENTS(setups); s++) {
        VdBlockBackend *blk = open_image(setups[s], "rerror=stop");
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf_a, 4096, 0), 0);
        StopLog log = { 0 };
        vd_blk_add_stop_notifier(blk, on_stop, &log);
        Completion r = { 0 };
        struct iovec iov = { .iov_base = buf_r, .iov_len = 4096 };
        memset(buf_r, 0, 4096);
        vd_blk_inject_error(blk, VD_FAULT_READ, EIO, 1);
        vd_blk_preadv(blk, 0, &iov, 1, completion_cb, &r);
        wait_stopped(blk);
        assert_int_equal(r.calls, 0);
        assert_true(log.is_read);
        vd_blk_resume(blk);
        wait_completion(&r);
        assert_int_equal(r.ret, 0);
        assert_memory_equal(buf_r, buf_a, 4096);
        vd_blk_remove_stop_notifier(blk, on_stop, &log);
        vd_blk_close(blk);
    }
}

/*
 * Order (mock driver): a newer write to the same sector, submitted before
 * the older one failed, keeps waiting while the older one is held; resume
 * writes the held one first, then the waiting and the queued ones, so the
 * newest data wins.
 */
static void test_resume_keeps_order(void **state)
{
    static const MockConfig cfg = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };
    static const char *const engines[] = { ",aio=threads", "" };
    for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
        mock_reset(&cfg);
        g_autofree char *opts = g_strdup_printf("driver=mock,size=1M,werror=stop%s", engines[e]);
        VdBlockBackend *blk = open_ok(opts);
        Completion w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
        vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
        write_async(blk, 0, buf_b, 0, &w1);
        write_async(blk, 0, buf_b, 0, &w2);   /* waits for w1: same sector */
        settle();
        assert_int_equal(w1.calls + w2.calls, 0);
        assert_int_equal(mock_calls(MOCK_WRITE), 0); /* w1 failed at the checkpoint; w2 still waits */
        write_async(blk, 0, buf_a, 0, &w3);   /* queued while stopped */
        settle();
        assert_int_equal(mock_calls(MOCK_WRITE), 0);
        vd_blk_resume(blk);
        wait_completion(&w3);
        wait_completion(&w2);
        wait_completion(&w1);
        assert_int_equal(w1.ret + w2.ret + w3.ret, 0);
        assert_int_equal(mock_calls(MOCK_WRITE), 3);
        assert_memory_equal(mock_data(), buf_a, 4096); /* w3 last, not the retried w1 */
        vd_blk_close(blk);
    }
}

/*
 * A page-cache write that fails inline, with a real host error (EFBIG: the
 * file size limit is below its offset), is held under werror=stop and stays
 * registered for ordering, although writes run inline leave that set at
 * submit when they succeed: a newer write to its sector waits, and after
 * resume runs after the retried one.
 */
static void test_inline_error_held_in_order(void **state)
{
    const uint64_t off = 768 << 10;
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = (struct rlimit){ .rlim_cur = 512 << 10, .rlim_max = old.rlim_max };
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);   /* EFBIG instead of the signal */
    VdBlockBackend *blk = open_image("cache=writeback", "werror=stop");
    Completion w1 = { 0 }, w2 = { 0 };
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    write_async(blk, off, buf_b, 0, &w1);   /* inline: EFBIG */
    write_async(blk, off, buf_a, 0, &w2);   /* same sector: must wait for w1 */
    wait_stopped(blk);
    settle();
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    VdBlockStats st = stats_of(blk);
    assert_int_equal(st.inline_ops, 1);     /* w1 ran inline; w2 was not issued */
    assert_int_equal(w1.calls + w2.calls, 0);
    assert_int_equal(vd_blk_parked(blk), 1);
    assert_int_equal(vd_blk_in_flight(blk), 2);
    vd_blk_resume(blk);
    wait_completion(&w1);
    wait_completion(&w2);
    assert_int_equal(w1.ret, 0);
    assert_int_equal(w2.ret, 0);
    assert_true(reads_back(blk, off, buf_a));   /* w2 last, not the retried w1 */
    vd_blk_close(blk);
    signal(SIGXFSZ, old_xfsz);
}

/*
 * Draining or closing while stopped (device teardown) completes every
 * parked request exactly once: the held one with its error, the queued one
 * issued; a newer write to the held one's sector runs after it.
 */
static void test_drain_while_stopped(void **state)
{
    for (int close_it = 0; close_it < 2; close_it++) {
        VdBlockBackend *blk = open_image("cache=writeback", "werror=stop");
        Completion w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
        vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
        write_async(blk, 0, buf_a, 0, &w1);
        settle();
        write_async(blk, 4096, buf_b, 0, &w2);
        write_async(blk, 0, buf_b, 0, &w3);
        if (close_it) {
            vd_blk_close(blk);
        } else {
            vd_blk_drain(blk);
            assert_false(vd_blk_is_stopped(blk));
            assert_int_equal(vd_blk_in_flight(blk), 0);
            assert_true(reads_back(blk, 0, buf_b));
            assert_true(reads_back(blk, 4096, buf_b));
            vd_blk_close(blk);
        }
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w1.ret, -EIO);
        assert_int_equal(w2.calls, 1);
        assert_int_equal(w2.ret, 0);
        assert_int_equal(w3.calls, 1);
        assert_int_equal(w3.ret, 0);
    }
}

/* vd_blk_stop (QMP stop): in-flight requests finish, new ones wait for resume. */
static void test_manual_stop(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback", "werror=report");
    StopLog log = { 0 };
    vd_blk_add_stop_notifier(blk, on_stop, &log);
    vd_blk_stop(blk);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.err, 0);
    Completion w = { 0 };
    write_async(blk, 0, buf_a, 0, &w);
    settle();
    assert_int_equal(w.calls, 0);
    vd_blk_resume(blk);
    wait_completion(&w);
    assert_int_equal(w.ret, 0);
    vd_blk_remove_stop_notifier(blk, on_stop, &log);
    vd_blk_close(blk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_never_for_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_reports_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_flush_error_sticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_error_held_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_while_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
