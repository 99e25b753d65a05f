/*
 * test-drain.c - the device drain primitive (hw/core/drain.c): waiters run
 * at zero, in order, at once when idle; the backend marks its completion
 * callbacks; a drain started inside a completion aborts.
 */
#include "block/block-backend.h"
#include "hw/drain.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Append the waiter's tag to the log. */
static void log_cb(void *opaque)
{
    GString *log = opaque;
    g_string_append_c(log, log->len ? 'b' : 'a');
}

/* Idle: the callback runs at once.  Busy: waiters run when the last request ends, oldest first. */
static void test_waiters(void **state)
{
    VdDrain d = { 0 };
    g_autoptr(GString) log = g_string_new("");
    vd_drain_wait(&d, log_cb, log);
    assert_string_equal(log->str, "a");
    g_string_truncate(log, 0);
    vd_drain_inc(&d);
    vd_drain_inc(&d);
    vd_drain_wait(&d, log_cb, log);
    vd_drain_wait(&d, log_cb, log);
    vd_drain_dec(&d);
    assert_string_equal(log->str, "");
    vd_drain_dec(&d);
    assert_string_equal(log->str, "ab");
    assert_null(d.waiters);
}

/* Record whether the backend says we are inside a completion. */
static void read_done(void *opaque, int ret)
{
    int *seen = opaque;
    *seen = vd_blk_in_completion() ? 1 : 0;
}

/* The backend brackets every request callback. */
static void test_completion_marked(void **state)
{
    VdBlockBackend *blk = vd_blk_open("driver=null,size=1M", NULL, NULL);
    assert_non_null(blk);
    uint8_t buf[512];
    struct iovec iov = { buf, sizeof(buf) };
    int seen = -1;
    vd_blk_preadv(blk, 0, &iov, 1, read_done, &seen);
    vd_blk_drain(blk);
    assert_int_equal(seen, 1);
    assert_false(vd_blk_in_completion());
    vd_blk_close(blk);
}

/* Nothing to do: the callback of a drain that must never start. */
static void never(void *opaque)
{
}

/* A drain started inside a completion callback aborts instead of waiting for itself. */
static void test_drain_in_completion_aborts(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        VdDrain d = { .in_flight = 1 };
        vd_blk_completion_enter();
        vd_drain_wait(&d, never, NULL);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiters),
        cmocka_unit_test(test_completion_marked),
        cmocka_unit_test(test_drain_in_completion_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
