/*
 * test-semantics.c - the generic layer's rules (docs/cache-modes.md), observed
 * through the mock driver's ordered call log and the backend's counters.
 */
#include "block-test-util.h"
#include "block-internal.h"
#include "mock-driver.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static const MockConfig native = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };
static const MockConfig emulate = { .fua = VD_FUA_EMULATE, .dsync = false, .zero = true };

static uint8_t buf[8192];

/* Submit an async write of len bytes of buf at off. */
static void write_async(VdBlockBackend *blk, uint64_t off, size_t len, unsigned flags, Completion *c)
{
    static struct iovec iov[64];
    static unsigned next;
    struct iovec *v = &iov[next++ % 64];
    v->iov_base = buf;
    v->iov_len = len;
    vd_blk_pwritev(blk, off, v, 1, flags, completion_cb, c);
}

/* A callback never runs inside the call that submitted it, and runs exactly once. */
static void test_completion_deferred_once(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    Completion w = { 0 }, f = { 0 }, bad = { 0 };
    write_async(blk, 0, 512, 0, &w);
    vd_blk_flush(blk, completion_cb, &f);
    write_async(blk, 1 << 20, 512, 0, &bad); /* fails validation: still deferred */
    assert_int_equal(w.calls + f.calls + bad.calls, 0);
    vd_blk_drain(blk);
    settle();
    assert_int_equal(w.calls, 1);
    assert_int_equal(f.calls, 1);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.ret, -ERANGE);
    vd_blk_close(blk);
}

/* WCE=1: a FUA write is one native FUA write when the driver has one. */
static void test_fua_native(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), 0);
    assert_string_equal(mock_log(), "W0+512 ");
    assert_int_equal(mock_last_write_flags(), VD_DRV_FUA);
    assert_int_equal(stats_of(blk).fua_writes, 1);
    vd_blk_close(blk);
}

/* WCE=1: without native FUA, a FUA write is a write followed by a flush, before completion. */
static void test_fua_emulated(void **state)
{
    mock_reset(&emulate);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), 0);
    assert_string_equal(mock_log(), "W0+512 F2 ");
    assert_int_equal(mock_last_write_flags(), 0);
    vd_blk_close(blk);
}

/* WCE=0, wt-policy=fua: every write is a FUA write. */
static void test_wce_off_policy_fua(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,cache=writethrough,wt-policy=fua");
    assert_false(vd_blk_write_cache(blk));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(mock_last_write_flags(), VD_DRV_FUA);
    mock_reset(&emulate);
    vd_blk_close(blk);
    blk = open_ok("driver=mock,size=1M,cache=writethrough,wt-policy=fua");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_string_equal(mock_log(), "W0+512 F2 ");
    vd_blk_close(blk);
}

/* WCE=0, wt-policy=dsync: writes use the O_DSYNC descriptor; FUA emulation if there is none. */
static void test_wce_off_policy_dsync(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,cache=directsync,wt-policy=dsync");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(mock_last_write_flags(), VD_DRV_DSYNC);
    assert_string_equal(mock_log(), "W0+512 ");
    vd_blk_close(blk);
    mock_reset(&emulate); /* no dsync descriptor, no native FUA */
    blk = open_ok("driver=mock,size=1M,cache=writethrough,wt-policy=dsync");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_string_equal(mock_log(), "W0+512 F2 ");
    vd_blk_close(blk);
}

/* WCE 1->0 waits for writes submitted under WCE=1, then flushes, then completes. */
static void test_wce_off_drains_then_flushes(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,cache=writeback");
    Completion w1 = { 0 }, toggle = { 0 }, w2 = { 0 };
    mock_hold(MOCK_WRITE);
    write_async(blk, 0, 512, 0, &w1);
    mock_wait_held(MOCK_WRITE, 1);
    vd_blk_set_write_cache(blk, false, completion_cb, &toggle);
    assert_false(vd_blk_write_cache(blk));
    settle();
    assert_int_equal(toggle.calls, 0);       /* still waiting for w1 */
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 0);
    write_async(blk, 4096, 512, 0, &w2);     /* submitted after the toggle: durable by itself */
    mock_release(MOCK_WRITE);
    wait_completion(&toggle);
    wait_completion(&w2);
    assert_int_equal(toggle.ret, 0);
    assert_int_equal(w1.calls, 1);
    /* The flush came after w1's write; w2 went out as a FUA write. */
    const char *log = mock_log();
    assert_true(strstr(log, "W0+512 ") < strstr(log, "F2 "));
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    assert_int_equal(stats_of(blk).wce_toggles, 1);
    vd_blk_close(blk);
}

/* WCE 0->1 takes effect at once: the next write is a plain write. */
static void test_wce_on(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,cache=writethrough");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);
    assert_true(vd_blk_write_cache(blk));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(mock_last_write_flags(), 0);
    assert_string_equal(mock_log(), "W0+512 ");
    vd_blk_close(blk);
}

/* A flush with nothing written since the last successful one makes no host call. */
static void test_flush_skipped_when_clean(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    /* A FUA write is durable by itself and leaves nothing to flush. */
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.flushes, 4);
    assert_int_equal(s.flushes_skipped, 3);
    vd_blk_close(blk);
}

/* Flushes submitted while one runs share its host flush when it covers them. */
static void test_flush_coalescing(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    Completion a = { 0 }, b = { 0 }, c = { 0 };
    mock_hold(MOCK_FLUSH_DISK);
    vd_blk_flush(blk, completion_cb, &a);
    mock_wait_held(MOCK_FLUSH_DISK, 1);
    vd_blk_flush(blk, completion_cb, &b);
    vd_blk_flush(blk, completion_cb, &c);
    mock_release(MOCK_FLUSH_DISK);
    vd_blk_drain(blk);
    assert_int_equal(a.ret | b.ret | c.ret, 0);
    assert_int_equal(a.calls + b.calls + c.calls, 3);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    assert_int_equal(stats_of(blk).flushes_coalesced, 2);
    vd_blk_close(blk);
}

/* Iterate the loop until the driver has seen n calls of this kind (they may be held there). */
static void wait_calls(MockOp op, unsigned n)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (mock_calls(op) < n) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
}

/* Iterate until every write's own step ran (bytes_written counts it before any group-commit wait). */
static void wait_writes_done(VdBlockBackend *blk, uint64_t bytes)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (stats_of(blk).bytes_written < bytes) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
}

/*
 * Group commit: WCE=0 writes in flight share one flush.  a is alone (durable
 * by itself); b is a plain write covered by flush 1, which is held while 7
 * more writes complete: flush 1 does not cover them, and flush 2 covers all 7.
 */
static void test_group_commit_shares_flushes(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,wt-policy=fua");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    unsigned flushes0 = mock_calls(MOCK_FLUSH_DISK);
    Completion c[9] = { 0 };
    mock_hold(MOCK_FLUSH_DISK);
    write_async(blk, 0, 512, 0, &c[0]);
    write_async(blk, 512, 512, 0, &c[1]);
    wait_calls(MOCK_FLUSH_DISK, flushes0 + 1);
    for (int i = 2; i < 9; i++) {
        write_async(blk, i * 512, 512, 0, &c[i]);
    }
    wait_writes_done(blk, 9 * 512);
    settle();
    for (int i = 1; i < 9; i++) {
        assert_int_equal(c[i].calls, 0);    /* written, but no completed flush covers it yet */
    }
    mock_release(MOCK_FLUSH_DISK);
    vd_blk_drain(blk);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].ret, 0);
    }
    VdBlockStats s = stats_of(blk);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK) - flushes0, 2);
    assert_int_equal(s.group_commits, 2);
    assert_int_equal(s.durable_writes, 9);
    assert_int_equal(mock_calls(MOCK_WRITE), 9);
    vd_blk_close(blk);
}

/* A group-commit write that completes while a flush runs is not covered by that flush. */
static void test_group_commit_write_during_flush_not_covered(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,wt-policy=fua");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    unsigned flushes0 = mock_calls(MOCK_FLUSH_DISK);
    Completion a = { 0 }, b = { 0 }, c = { 0 };
    mock_hold(MOCK_FLUSH_DISK);
    write_async(blk, 0, 512, 0, &a);        /* alone: durable by itself */
    write_async(blk, 512, 512, 0, &b);      /* group commit */
    wait_calls(MOCK_FLUSH_DISK, flushes0 + 1);  /* b's flush runs */
    write_async(blk, 1024, 512, 0, &c);     /* group commit, written during that flush */
    wait_writes_done(blk, 3 * 512);
    settle();
    assert_int_equal(b.calls + c.calls, 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK) - flushes0, 1);
    mock_release(MOCK_FLUSH_DISK);
    vd_blk_drain(blk);
    assert_int_equal(a.ret | b.ret | c.ret, 0);
    assert_int_equal(a.calls + b.calls + c.calls, 3);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK) - flushes0, 2);    /* c needed its own */
    vd_blk_close(blk);
}

/* A failed shared flush fails every write it covered and sticks: later flushes and durable writes fail. */
static void test_group_commit_flush_failure(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,wt-policy=fua");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    Completion c[4] = { 0 };
    mock_hold(MOCK_WRITE);
    for (int i = 0; i < 4; i++) {
        write_async(blk, i * 512, 512, 0, &c[i]);
    }
    mock_wait_held(MOCK_WRITE, 4);
    mock_fail_next(MOCK_FLUSH_DISK, -EIO);
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    assert_int_equal(c[0].ret, 0);              /* durable by itself (FUA) */
    for (int i = 1; i < 4; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].ret, -EIO);
    }
    unsigned flushes = mock_calls(MOCK_FLUSH_DISK);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -EIO);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), flushes);
    vd_blk_close(blk);
}

/*
 * werror=ignore never acknowledges a durable write whose sync failed: a
 * group-commit write (run plain, made durable by the shared flush) is as
 * durable as a FUA write, so a failed shared flush fails it.
 */
static void test_group_commit_flush_failure_not_ignored(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,wt-policy=fua,werror=ignore");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    Completion c[3] = { 0 };
    mock_hold(MOCK_WRITE);
    for (int i = 0; i < 3; i++) {
        write_async(blk, i * 512, 512, 0, &c[i]);
    }
    mock_wait_held(MOCK_WRITE, 3);
    mock_fail_next(MOCK_FLUSH_DISK, -EIO);
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    assert_int_equal(stats_of(blk).group_commits, 1);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].ret, -EIO);
    }
    vd_blk_close(blk);
}

/*
 * A durable write held by werror=stop and retried is planned again from
 * scratch, counted once among the durable writes in flight: afterwards a
 * lone durable write is alone again, so it is made durable by itself (an
 * emulated FUA here: write + flush), never left waiting for a group flush.
 */
static void test_group_commit_retry_counted_once(void **state)
{
    mock_reset(&emulate);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,werror=stop");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    Completion a = { 0 };
    mock_fail_next(MOCK_WRITE, -EIO);           /* the data step: not a sync step, not sticky */
    write_async(blk, 0, 512, 0, &a);
    while (!vd_blk_is_stopped(blk)) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(a.calls, 0);
    vd_blk_resume(blk);
    vd_blk_drain(blk);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.ret, 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 512, buf, 512, 0), 0);
    assert_int_equal(stats_of(blk).group_commits, 0);
    vd_blk_close(blk);
}

/* A flush submitted after a write completed is not covered by an older running flush. */
static void test_flush_covers_writes_completed_before_it(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    Completion a = { 0 }, d = { 0 }, e = { 0 };
    mock_hold(MOCK_FLUSH_DISK);
    vd_blk_flush(blk, completion_cb, &a);
    mock_wait_held(MOCK_FLUSH_DISK, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 512, 0), 0); /* completes during flush a */
    vd_blk_flush(blk, completion_cb, &d);
    vd_blk_flush(blk, completion_cb, &e);
    mock_release(MOCK_FLUSH_DISK);
    vd_blk_drain(blk);
    assert_int_equal(a.ret | d.ret | e.ret, 0);
    /* d and e needed a second host flush, which they shared. */
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 2);
    assert_string_equal(mock_log(), "W0+512 F2 W4096+512 F2 ");
    assert_int_equal(stats_of(blk).flushes_coalesced, 1);
    vd_blk_close(blk);
}

/* Flush has two stages: driver caches to the OS, then the OS to disk. */
static void test_flush_two_stages(void **state)
{
    MockConfig cfg = native;
    cfg.stage1 = true;
    mock_reset(&cfg);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_string_equal(mock_log(), "W0+512 F1 F2 ");
    vd_blk_close(blk);
}

/* cache=unsafe: flush runs stage 1 only; FUA and WCE=0 writes are plain writes. */
static void test_unsafe(void **state)
{
    MockConfig cfg = native;
    cfg.stage1 = true;
    mock_reset(&cfg);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,cache=unsafe");
    assert_true(vd_blk_write_cache(blk));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), 0);
    assert_int_equal(mock_last_write_flags(), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(mock_last_write_flags(), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 0);
    assert_true(mock_calls(MOCK_FLUSH_OS) >= 1);
    assert_true(stats_of(blk).flushes_stage1_only >= 1);
    vd_blk_close(blk);
}

/* A failed host flush is sticky: later flushes and durable writes fail, cached writes don't. */
static void test_sticky_flush_error(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    mock_fail_next(MOCK_FLUSH_DISK, -EIO);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    unsigned flushes = mock_calls(MOCK_FLUSH_DISK), writes = mock_calls(MOCK_WRITE);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), -EIO);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), flushes);  /* no retry reached the host */
    assert_int_equal(mock_calls(MOCK_WRITE), writes);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0); /* a cached write still works */
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -EIO); /* WCE=0 writes are durable writes */
    GString *s = g_string_new(NULL);
    vd_blk_format_stats(blk, s);
    assert_non_null(strstr(s->str, "sticky_error=5"));
    g_string_free(s, TRUE);
    vd_blk_close(blk);
    /* Reopening clears it. */
    blk = open_ok("driver=mock,size=1M");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    vd_blk_close(blk);
}

/* A durable write failing with EIO may have eaten the kernel's one-shot error: sticky too. */
static void test_sticky_after_failed_durable_write(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    mock_fail_next(MOCK_WRITE, -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), -EIO);
    unsigned flushes = mock_calls(MOCK_FLUSH_DISK);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), flushes);
    vd_blk_close(blk);
    /* A cached write failing with EIO is an ordinary error: the next flush still runs. */
    mock_reset(&native);
    blk = open_ok("driver=mock,size=1M");
    mock_fail_next(MOCK_WRITE, -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -EIO);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    vd_blk_close(blk);
}

/* Read-only: every modifying request fails with EROFS before the driver; flush succeeds. */
static void test_read_only(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,read-only=on");
    assert_true(vd_blk_is_read_only(blk));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -EROFS);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), -EROFS);
    assert_int_equal(vd_blk_discard_sync(blk, 0, 4096), -EROFS);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 0, 4096, 0), -EROFS);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 512), 0);
    assert_int_equal(mock_calls(MOCK_WRITE) + mock_calls(MOCK_FLUSH_DISK) + mock_calls(MOCK_DISCARD) +
                     mock_calls(MOCK_ZERO), 0);
    assert_int_equal(stats_of(blk).errors, 4);
    vd_blk_close(blk);
}

/* Out-of-range requests fail with ERANGE and never reach the driver. */
static void test_out_of_range(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    uint64_t size = 1 << 20;
    assert_int_equal(vd_blk_pread_sync(blk, size, buf, 1), -ERANGE);
    assert_int_equal(vd_blk_pread_sync(blk, size - 511, buf, 512), -ERANGE);
    assert_int_equal(vd_blk_pwrite_sync(blk, size - 1, buf, 2, 0), -ERANGE);
    assert_int_equal(vd_blk_pwrite_sync(blk, UINT64_MAX - 10, buf, 512, 0), -ERANGE);
    assert_int_equal(vd_blk_discard_sync(blk, size, 1), -ERANGE);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 0, size + 1, 0), -ERANGE);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, UINT64_MAX, UINT64_MAX, 0), -ERANGE);
    /* iovec lengths whose sum wraps around 2^64 must not sneak past the check. */
    struct iovec wrap[2] = { { NULL, SIZE_MAX }, { NULL, 2 } };
    Completion c1 = { 0 }, c2 = { 0 };
    vd_blk_pwritev(blk, 0, wrap, 2, 0, completion_cb, &c1);
    vd_blk_preadv(blk, 0, wrap, 2, completion_cb, &c2);
    wait_completion(&c1);
    wait_completion(&c2);
    assert_int_equal(c1.ret, -ERANGE);
    assert_int_equal(c2.ret, -ERANGE);
    assert_string_equal(mock_log(), "");
    /* The last byte is in range. */
    assert_int_equal(vd_blk_pwrite_sync(blk, size - 1, buf, 1, 0), 0);
    vd_blk_close(blk);
}

/* O_DIRECT needs an image size that is a multiple of the driver's alignment, beyond whole sectors. */
static void test_direct_size_error(void **state)
{
    MockConfig cfg = native;
    cfg.req_align = 4096;
    mock_reset(&cfg);
    GError *err = NULL;
    assert_null(vd_blk_open("driver=mock,size=1049088,cache=none", NULL, &err));
    assert_non_null(strstr(err->message, "size 1049088 is not a multiple of the O_DIRECT alignment 4096 required by "
                                         "cache=none"));
    g_error_free(err);
}

/* A driver alignment that is not a power of two is refused at open (the request path rounds with masks). */
static void test_alignment_not_pow2(void **state)
{
    MockConfig cfg = native;
    cfg.req_align = 3072;
    mock_reset(&cfg);
    GError *err = NULL;
    assert_null(vd_blk_open("driver=mock,size=1M", NULL, &err));
    assert_non_null(strstr(err->message, "the mock driver reports request alignment 3072 and memory alignment 1; "
                                         "both must be powers of two"));
    g_error_free(err);
}

/* Unaligned requests are expanded: reads bounce, writes read-modify-write. */
static void test_alignment_bounce_and_rmw(void **state)
{
    MockConfig cfg = native;
    cfg.req_align = 4096;
    mock_reset(&cfg);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    memset(mock_data(), 0xaa, 8192);
    memset(buf, 0x11, sizeof(buf));
    assert_int_equal(vd_blk_pwrite_sync(blk, 100, buf, 512, 0), 0);
    assert_string_equal(mock_log(), "R0+4096 W0+4096 ");
    assert_int_equal(mock_data()[99], 0xaa);
    assert_int_equal(mock_data()[100], 0x11);
    assert_int_equal(mock_data()[611], 0x11);
    assert_int_equal(mock_data()[612], 0xaa);
    uint8_t rb[600];
    assert_int_equal(vd_blk_pread_sync(blk, 90, rb, sizeof(rb)), 0);
    assert_int_equal(rb[9], 0xaa);
    assert_int_equal(rb[10], 0x11);
    assert_int_equal(rb[521], 0x11);
    assert_int_equal(rb[522], 0xaa);
    assert_true(stats_of(blk).bounce_rmw >= 1);
    /* Spanning two blocks: both edges are read first. */
    assert_int_equal(vd_blk_pwrite_sync(blk, 4000, buf, 200, 0), 0);
    assert_non_null(strstr(mock_log(), "R0+4096 R4096+4096 W0+8192 "));
    vd_blk_close(blk);
}

/* Two RMW writes into one block are serialised, so neither loses the other's bytes. */
static void test_rmw_serialised(void **state)
{
    MockConfig cfg = native;
    cfg.req_align = 4096;
    mock_reset(&cfg);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    memset(mock_data(), 0, 4096);
    static uint8_t a[512], b[512];
    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    struct iovec va = { a, sizeof(a) }, vb = { b, sizeof(b) };
    Completion ca = { 0 }, cb = { 0 };
    mock_hold(MOCK_WRITE);
    vd_blk_pwritev(blk, 0, &va, 1, 0, completion_cb, &ca);
    mock_wait_held(MOCK_WRITE, 1);
    vd_blk_pwritev(blk, 1024, &vb, 1, 0, completion_cb, &cb);
    settle();
    assert_int_equal(mock_calls(MOCK_READ), 1); /* b waits: it has not read the block yet */
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    assert_int_equal(ca.ret | cb.ret, 0);
    assert_int_equal(mock_data()[0], 0xa1);
    assert_int_equal(mock_data()[1024], 0xb2);
    assert_int_equal(mock_data()[511], 0xa1);
    vd_blk_close(blk);
}

/* Write-zeroes falls back to writing zeroes; discard trims to whole blocks. */
static void test_zeroes_fallback_and_discard_trim(void **state)
{
    MockConfig cfg = native;
    cfg.zero = false;
    cfg.req_align = 4096;
    mock_reset(&cfg);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    memset(mock_data(), 0xff, 16384);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 100, 8192, 0), 0);
    assert_int_equal(mock_data()[99], 0xff);
    for (int i = 100; i < 8292; i++) {
        assert_int_equal(mock_data()[i], 0);
    }
    assert_int_equal(mock_data()[8292], 0xff);
    assert_int_equal(mock_calls(MOCK_ZERO), 0);
    assert_int_equal(vd_blk_discard_sync(blk, 100, 10000), 0);
    assert_non_null(strstr(mock_log(), "D4096+4096 "));
    vd_blk_close(blk);
}

/* Injected host errors reach the caller and the error counter. */
static void test_injected_errors(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -EIO);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    vd_blk_inject_error(blk, VD_FAULT_READ, ENOSPC, 1);
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 512), -ENOSPC);
    assert_int_equal(stats_of(blk).errors, 2);
    vd_blk_close(blk);
}

static GString *trace_lines;

static void collect_trace(void *opaque, const char *line)
{
    g_string_append_printf(trace_lines, "%s\n", line);
}

/* Latency buckets are floor(log2(us)): [2^i, 2^(i+1)) microseconds, clamped at both ends. */
static void test_latency_buckets(void **state)
{
    static const struct { gint64 us; unsigned bucket; } cases[] = {
        { -5, 0 }, { 0, 0 }, { 1, 0 }, { 2, 1 }, { 3, 1 }, { 4, 2 }, { 4095, 11 }, { 4096, 12 },
        { 5000, 12 }, { (1 << 23) - 1, 22 }, { 1 << 23, 23 }, { G_MAXINT64, VD_LAT_BUCKETS - 1 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        assert_int_equal(vd_stats_latency_bucket(cases[i].us), cases[i].bucket);
    }
}

/* The trace names each guest op and the host calls it caused; latency is recorded. */
static void test_trace_and_latency(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=null,size=1M");
    trace_lines = g_string_new(NULL);
    vd_blk_set_trace(blk, collect_trace, NULL);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_non_null(strstr(trace_lines->str, "write off=0 len=512 fua -> "));
    assert_non_null(strstr(trace_lines->str, "flush -> no host I/O [skipped: nothing written since the last flush]"));
    uint64_t hist[VD_LAT_BUCKETS], total = 0;
    vd_blk_get_latency(blk, VD_LAT_WRITE, hist);
    for (int i = 0; i < VD_LAT_BUCKETS; i++) {
        total += hist[i];
    }
    assert_int_equal(total, 1);
    /* Off: nothing more is recorded. */
    vd_blk_set_latency_histograms(blk, false);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), 0);
    vd_blk_get_latency(blk, VD_LAT_WRITE, hist);
    total = 0;
    for (int i = 0; i < VD_LAT_BUCKETS; i++) {
        total += hist[i];
    }
    assert_int_equal(total, 1);
    g_string_free(trace_lines, TRUE);
    vd_blk_close(blk);
}

/* Tracing switched on or off while requests are in flight: each request keeps the choice it was made with. */
static void test_trace_toggled_in_flight(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    Completion w1 = { 0 }, w2 = { 0 };
    trace_lines = g_string_new(NULL);
    mock_hold(MOCK_WRITE);
    write_async(blk, 0, 512, 0, &w1);             /* made without a trace */
    mock_wait_held(MOCK_WRITE, 1);
    vd_blk_set_trace(blk, collect_trace, NULL);
    mock_release(MOCK_WRITE);
    wait_completion(&w1);
    mock_hold(MOCK_WRITE);
    write_async(blk, 4096, 512, 0, &w2);          /* made with a trace, finished without */
    mock_wait_held(MOCK_WRITE, 1);
    vd_blk_set_trace(blk, NULL, NULL);
    mock_release(MOCK_WRITE);
    wait_completion(&w2);
    assert_int_equal(w1.ret, 0);
    assert_int_equal(w2.ret, 0);
    assert_int_equal(trace_lines->len, 0);        /* neither had both ends traced */
    g_string_free(trace_lines, TRUE);
    vd_blk_close(blk);
}

/* Close drains: a request in flight at close still completes exactly once. */
static void test_close_drains(void **state)
{
    mock_reset(&native);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M");
    Completion c = { 0 };
    write_async(blk, 0, 512, 0, &c);
    vd_blk_close(blk);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.ret, 0);
}

/* The engines every rule must hold on: the pool, and the default (io_uring over the pool). */
static const char *const engine_opts[] = { ",aio=threads", "" };

/* After a failed sync step, every later flush and durable write fails with its errno, with no host call. */
static void check_sticky(VdBlockBackend *blk, int err)
{
    unsigned flushes = mock_calls(MOCK_FLUSH_DISK), writes = mock_calls(MOCK_WRITE);
    assert_int_equal(vd_blk_flush_sync(blk), -err);
    assert_int_equal(vd_blk_flush_sync(blk), -err);
    assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 512, VD_REQ_FUA), -err);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), flushes);
    assert_int_equal(mock_calls(MOCK_WRITE), writes);
    if (vd_blk_write_cache(blk)) {
        assert_int_equal(vd_blk_set_write_cache_sync(blk, false), -err); /* its flush fails too */
    }
    assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 512, 0), -err); /* WCE=0: durable */
}

/*
 * One sticky rule for every failed sync step and every errno, on every
 * engine: ENOSPC and EDQUOT from the flush of an emulated FUA write, from
 * the flush of a WCE=0 write without native FUA, and from a WCE=0 write
 * with native FUA (the durable write itself).
 */
static void test_sticky_every_sync_step_every_errno(void **state)
{
    static const int errs[] = { ENOSPC, EDQUOT };
    for (size_t e = 0; e < G_N_ELEMENTS(engine_opts); e++) {
        for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
            int err = errs[i];
            g_autofree char *wb = g_strdup_printf("driver=mock,size=1M,werror=report%s", engine_opts[e]);
            g_autofree char *wt = g_strdup_printf("driver=mock,size=1M,cache=writethrough,werror=report%s", engine_opts[e]);

            mock_reset(&emulate); /* emulated FUA: its flush fails */
            VdBlockBackend *blk = open_ok(wb);
            vd_blk_inject_error(blk, VD_FAULT_FLUSH, err, 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), -err);
            check_sticky(blk, err);
            vd_blk_close(blk);

            mock_reset(&emulate); /* WCE=0 write = write + flush: the flush fails */
            blk = open_ok(wt);
            vd_blk_inject_error(blk, VD_FAULT_FLUSH, err, 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -err);
            check_sticky(blk, err);
            vd_blk_close(blk);

            mock_reset(&native); /* WCE=0 write = one FUA write: it fails */
            blk = open_ok(wt);
            vd_blk_inject_error(blk, VD_FAULT_WRITE, err, 1);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, 0), -err);
            check_sticky(blk, err);
            vd_blk_close(blk);
        }
    }
}

/* A failed plain write under emulated FUA is no sync step: the next flush still runs. */
static void test_failed_plain_step_not_sticky(void **state)
{
    mock_reset(&emulate);
    VdBlockBackend *blk = open_ok("driver=mock,size=1M,werror=report");
    vd_blk_inject_error(blk, VD_FAULT_WRITE, ENOSPC, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 512, VD_REQ_FUA), -ENOSPC);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
    vd_blk_close(blk);
}

/* A fresh mock of the given size= behind engine engine_opts[e]. */
static VdBlockBackend *open_mock_on_engine(const char *size, size_t e)
{
    mock_reset(&native);
    g_autofree char *opts = g_strdup_printf("driver=mock,size=%s%s", size, engine_opts[e]);
    return open_ok(opts);
}

/*
 * No modifying request overtakes an older overlapping one, aligned or not,
 * on any engine: a held write A keeps an overlapping write B, and a
 * write-zeroes and a discard overlapping them, from the driver; a
 * non-overlapping write C goes at once.
 */
static void test_overlapping_modifications_ordered(void **state)
{
    for (size_t e = 0; e < G_N_ELEMENTS(engine_opts); e++) {
        VdBlockBackend *blk = open_mock_on_engine("1M", e);
        static uint8_t a[4096], b[4096], c[512];
        memset(a, 0xa1, sizeof(a));
        memset(b, 0xb2, sizeof(b));
        struct iovec va = { a, sizeof(a) }, vb = { b, sizeof(b) }, vc = { c, sizeof(c) };
        Completion ca = { 0 }, cb = { 0 }, cc = { 0 }, cz = { 0 }, cd = { 0 };
        mock_hold(MOCK_WRITE);
        vd_blk_pwritev(blk, 0, &va, 1, 0, completion_cb, &ca);
        mock_wait_held(MOCK_WRITE, 1);
        vd_blk_pwritev(blk, 2048, &vb, 1, 0, completion_cb, &cb);
        vd_blk_pwritev(blk, 65536, &vc, 1, 0, completion_cb, &cc);
        mock_wait_held(MOCK_WRITE, 2); /* C reached the driver while A is held */
        vd_blk_write_zeroes(blk, 0, 512, 0, completion_cb, &cz);
        vd_blk_discard(blk, 5000, 1000, completion_cb, &cd);
        settle();
        assert_int_equal(mock_calls(MOCK_WRITE), 2); /* B waits for A */
        assert_int_equal(mock_calls(MOCK_ZERO), 0);  /* waits for A */
        assert_int_equal(mock_calls(MOCK_DISCARD), 0); /* waits for B */
        mock_release(MOCK_WRITE);
        vd_blk_drain(blk);
        assert_int_equal(ca.ret | cb.ret | cc.ret | cz.ret | cd.ret, 0);
        const char *log = mock_log();
        assert_true(strstr(log, "W0+4096 ") < strstr(log, "W2048+4096 "));
        assert_true(strstr(log, "W0+4096 ") < strstr(log, "Z0+512 "));
        assert_true(strstr(log, "W2048+4096 ") < strstr(log, "D5000+1000 "));
        assert_int_equal(mock_data()[2048], 0xb2);
        assert_int_equal(mock_data()[0], 0);
        vd_blk_close(blk);
    }
}

/*
 * The overlap index (VD_SER_REGION_SHIFT, 1 MiB regions in 256 buckets)
 * only lets serial_conflict skip its scan, never an overlap: a write that
 * overlaps an in-flight one only in the second region that one touches
 * waits; one whose region shares a bucket with it but does not overlap is
 * issued at once; and a range touching every bucket (a 256 MiB
 * write-zeroes) holds back a small write anywhere inside it.
 */
static void test_overlap_index_regions(void **state)
{
    const uint64_t mib = 1 << 20;
    for (size_t e = 0; e < G_N_ELEMENTS(engine_opts); e++) {
        VdBlockBackend *blk = open_mock_on_engine("300M", e);
        static uint8_t a[8192], b[512], c[512];
        memset(a, 0xa1, sizeof(a));
        memset(b, 0xb2, sizeof(b));
        memset(c, 0xc3, sizeof(c));
        struct iovec va = { a, sizeof(a) }, vb = { b, sizeof(b) }, vc = { c, sizeof(c) };
        Completion ca = { 0 }, cb = { 0 }, cc = { 0 }, cz = { 0 }, ce = { 0 };
        mock_hold(MOCK_WRITE);
        vd_blk_pwritev(blk, mib - 4096, &va, 1, 0, completion_cb, &ca);    /* regions 0 and 1 */
        mock_wait_held(MOCK_WRITE, 1);
        vd_blk_pwritev(blk, mib, &vb, 1, 0, completion_cb, &cb);           /* region 1: overlaps A */
        vd_blk_pwritev(blk, 257 * mib, &vc, 1, 0, completion_cb, &cc);     /* region 257: bucket 1, no overlap */
        mock_wait_held(MOCK_WRITE, 2);
        settle();
        assert_int_equal(mock_calls(MOCK_WRITE), 2);    /* B waits for A; C went at once */
        mock_release(MOCK_WRITE);
        vd_blk_drain(blk);
        assert_int_equal(ca.ret | cb.ret | cc.ret, 0);
        g_autofree char *log1 = g_strdup(mock_log());
        assert_non_null(strstr(log1, "W1044480+8192 "));
        assert_true(strstr(log1, "W1044480+8192 ") < strstr(log1, "W1048576+512 "));
        assert_int_equal(mock_data()[mib], 0xb2);

        mock_hold(MOCK_ZERO);
        vd_blk_write_zeroes(blk, 2 * mib, 256 * mib, 0, completion_cb, &cz);  /* regions 2..257: every bucket */
        mock_wait_held(MOCK_ZERO, 1);
        unsigned writes = mock_calls(MOCK_WRITE);
        vd_blk_pwritev(blk, 100 * mib, &vb, 1, 0, completion_cb, &ce);
        settle();
        assert_int_equal(mock_calls(MOCK_WRITE), writes);   /* E waits for the wide write-zeroes */
        mock_release(MOCK_ZERO);
        vd_blk_drain(blk);
        assert_int_equal(cz.ret | ce.ret, 0);
        assert_int_equal(mock_data()[100 * mib], 0xb2);
        assert_int_equal(mock_data()[257 * mib], 0);
        vd_blk_close(blk);
    }
}

/* Child of test_checkpoint_asserts_result: a driver returning an impossible errno must abort. */
static int checkpoint_child(void)
{
    mock_reset(&native);
    VdBlockBackend *blk = vd_blk_open("driver=mock,size=1M,aio=threads", NULL, NULL);
    mock_fail_next(MOCK_WRITE, -5000);
    vd_blk_pwrite_sync(blk, 0, buf, 512, 0);
    vd_blk_close(blk);
    return 0;
}

/* The driver-boundary checkpoint asserts the result: 0, a byte count, or -4095..-1. */
static void test_checkpoint_asserts_result(void **state)
{
    char *argv[] = { "/proc/self/exe", "--checkpoint-child", NULL };
    int status = 0;
    GError *err = NULL;
    assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, &err));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--checkpoint-child") == 0) {
        return checkpoint_child();
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_deferred_once),
        cmocka_unit_test(test_fua_native),
        cmocka_unit_test(test_fua_emulated),
        cmocka_unit_test(test_wce_off_policy_fua),
        cmocka_unit_test(test_wce_off_policy_dsync),
        cmocka_unit_test(test_wce_off_drains_then_flushes),
        cmocka_unit_test(test_wce_on),
        cmocka_unit_test(test_flush_skipped_when_clean),
        cmocka_unit_test(test_flush_coalescing),
        cmocka_unit_test(test_group_commit_shares_flushes),
        cmocka_unit_test(test_group_commit_write_during_flush_not_covered),
        cmocka_unit_test(test_group_commit_flush_failure),
        cmocka_unit_test(test_group_commit_flush_failure_not_ignored),
        cmocka_unit_test(test_group_commit_retry_counted_once),
        cmocka_unit_test(test_flush_covers_writes_completed_before_it),
        cmocka_unit_test(test_flush_two_stages),
        cmocka_unit_test(test_unsafe),
        cmocka_unit_test(test_sticky_flush_error),
        cmocka_unit_test(test_sticky_after_failed_durable_write),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_alignment_not_pow2),
        cmocka_unit_test(test_alignment_bounce_and_rmw),
        cmocka_unit_test(test_overlapping_modifications_ordered),
        cmocka_unit_test(test_overlap_index_regions),
        cmocka_unit_test(test_rmw_serialised),
        cmocka_unit_test(test_zeroes_fallback_and_discard_trim),
        cmocka_unit_test(test_injected_errors),
        cmocka_unit_test(test_latency_buckets),
        cmocka_unit_test(test_trace_and_latency),
        cmocka_unit_test(test_trace_toggled_in_flight),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_direct_size_error),
        cmocka_unit_test(test_sticky_every_sync_step_every_errno),
        cmocka_unit_test(test_failed_plain_step_not_sticky),
        cmocka_unit_test(test_checkpoint_asserts_result),
    };
    return cmocka_run_group_tests_name("block-semantics", tests, NULL, NULL);
}
