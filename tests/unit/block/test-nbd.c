/*
 * test-nbd.c - the nbd driver against real servers: nbdkit's memory plugin
 * with its log filter (every command and flag the server received), its
 * fua, error and delay filters, a server without flush, and qemu-nbd on a
 * unix socket.  Proves that the guest's promises reach the remote end:
 * WCE=0 writes arrive as FUA writes (or write + flush where the server has
 * no FUA), a flush arrives as NBD_CMD_FLUSH, a flush with nothing written is
 * skipped, concurrent flushes share one, and a dropped connection fails
 * what was in flight (a flush never succeeds), holds it under werror=stop
 * and completes it after the server is back.  Skips (77) without nbdkit.
 */
#include "block-test-util.h"
#include "nbd-server.h"

#include <errno.h>
#include <string.h>

static NbdServer srv;

/* Stop the test's server and remove its folder. */
static int teardown(void **state)
{
    nbd_server_stop(&srv);
    return 0;
}

/* Open driver=nbd on srv's socket with extra options. */
static VdBlockBackend *open_nbd(const char *extra)
{
    g_autofree char *opts = g_strdup_printf("driver=nbd,uri=%s%s", srv.uri, extra);
    VdBlockBackend *blk = open_ok(opts);
    assert_int_equal(vd_blk_aio(blk), VD_AIO_DRIVER);
    return blk;
}

/* Write one 4 KiB block of `seed` at off with flags, synchronously. */
static int write_block(VdBlockBackend *blk, uint64_t off, uint8_t seed, unsigned flags)
{
    uint8_t buf[4096];
    memset(buf, seed, sizeof(buf));
    return vd_blk_pwrite_sync(blk, off, buf, sizeof(buf), flags);
}

/* Start an asynchronous flush. */
static void flush_async(VdBlockBackend *blk, Completion *c)
{
    vd_blk_flush(blk, completion_cb, c);
}

/* Iterate the loop until the server has logged n requests with these words (the machine may be slow). */
static void wait_logged(const char *words, unsigned n)
{
    for (int i = 0; i < 500 && nbd_log_count(&srv, words) < n; i++) {
        settle();
    }
    assert_int_equal(nbd_log_count(&srv, words), n);
}

/* Iterate the loop until the backend has stopped (werror=stop held a request). */
static void wait_stopped(VdBlockBackend *blk)
{
    for (int i = 0; i < 500 && !vd_blk_is_stopped(blk); i++) {
        settle();
    }
    assert_true(vd_blk_is_stopped(blk));
}

/* Keep the eval server's flushes (hold=true) or let them through. */
static void hold_flushes(bool hold)
{
    g_autofree char *path = nbd_server_path(&srv, "hold");
    if (hold) {
        assert_true(g_file_set_contents(path, "", 0, NULL));
    } else {
        unlink(path);
    }
}

/* Wait (iterating the loop) until the driver has reconnected: a read succeeds. */
static void wait_reconnected(VdBlockBackend *blk)
{
    uint8_t b[512];
    for (int i = 0; i < 200; i++) {
        if (vd_blk_pread_sync(blk, 0, b, sizeof(b)) == 0) {
            return;
        }
        g_usleep(50000);
    }
    fail_msg("the driver did not reconnect");
}

/* WCE=0 writes arrive as FUA writes and need no flush; guest FLUSH is NBD_CMD_FLUSH. */
static void test_fua_and_flush(void **state)
{
    nbd_server_memory(&srv, NULL);
    VdBlockBackend *blk = open_nbd("");
    assert_true(vd_blk_write_cache(blk));
    assert_true(vd_blk_fua_native(blk));
    assert_false(vd_blk_write_through_only(blk));
    assert_int_equal(vd_blk_flush_sync(blk), 0); /* nothing written: skipped */
    assert_int_equal(nbd_log_count(&srv, "Flush"), 0);
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x0 count=0x1000 fua=0"), 1);
    assert_int_equal(nbd_log_count(&srv, "Flush"), 1);

    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0); /* nothing written since: no flush */
    assert_int_equal(nbd_log_count(&srv, "Flush"), 1);
    assert_int_equal(write_block(blk, 4096, 2, 0), 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x1000 count=0x1000 fua=1"), 1);
    assert_int_equal(vd_blk_flush_sync(blk), 0); /* every write was durable: skipped */
    assert_int_equal(nbd_log_count(&srv, "Flush"), 1);
    uint8_t back[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 4096, back, sizeof(back)), 0);
    assert_int_equal(back[4095], 2);
    assert_int_equal(nbd_log_count(&srv, "Read offset=0x1000 count=0x1000"), 1);

    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0); /* a FUA write under WCE=1 */
    assert_int_equal(write_block(blk, 8192, 3, VD_REQ_FUA), 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x2000 count=0x1000 fua=1"), 1);
    vd_blk_close(blk);
}

/* Write-zeroes keeps the blocks allocated (NO_HOLE) unless the guest may unmap; discard is a trim. */
static void test_zero_trim(void **state)
{
    nbd_server_memory(&srv, NULL);
    VdBlockBackend *blk = open_nbd("");
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 8192, 8192, 0), 0);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 16384, 8192, VD_REQ_MAY_UNMAP), 0);
    assert_int_equal(vd_blk_discard_sync(blk, 0, 4096), 0);
    assert_int_equal(nbd_log_count(&srv, "Zero offset=0x2000 count=0x2000 trim=0"), 1);
    assert_int_equal(nbd_log_count(&srv, "Zero offset=0x4000 count=0x2000 trim=1"), 1);
    assert_int_equal(nbd_log_count(&srv, "Trim offset=0x0 count=0x1000"), 1);
    vd_blk_close(blk);
}

/* Flushes that arrive while one is held at the server share it. */
static void test_flush_coalesce(void **state)
{
    nbd_server_eval(&srv, true);
    VdBlockBackend *blk = open_nbd("");
    assert_int_equal(write_block(blk, 0, 3, 0), 0);
    hold_flushes(true);
    Completion c[4] = { 0 };
    for (int i = 0; i < 4; i++) {
        flush_async(blk, &c[i]);
    }
    wait_logged("Flush", 1);
    assert_int_equal(c[0].calls + c[1].calls + c[2].calls + c[3].calls, 0);
    hold_flushes(false);
    for (int i = 0; i < 4; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].ret, 0);
    }
    assert_int_equal(nbd_log_count(&srv, "Flush"), 1);
    assert_int_equal(stats_of(blk).flushes_coalesced, 3);
    vd_blk_close(blk);
}

/* Many commands are in flight on the one connection at once. */
static void test_many_in_flight(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "--threads=64", "--filter=pause", "pause-control=@DIR@/ctl", NULL });
    VdBlockBackend *blk = open_nbd("");
    static uint8_t buf[32][4096];
    struct iovec iov[32];
    Completion c[32] = { 0 };
    nbd_server_pause(&srv, 'p');
    for (int i = 0; i < 32; i++) {
        memset(buf[i], i, sizeof(buf[i]));
        iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = sizeof(buf[i]) };
        vd_blk_pwritev(blk, i * 4096, &iov[i], 1, 0, completion_cb, &c[i]);
    }
    wait_logged("Write", 32); /* all 32 reached the server before any reply */
    for (int i = 0; i < 32; i++) {
        assert_int_equal(c[i].calls, 0);
    }
    nbd_server_pause(&srv, 'r');
    for (int i = 0; i < 32; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].ret, 0);
    }
    vd_blk_close(blk);
}

/* A server with flush but no FUA: a WCE=0 write is a plain write followed by a flush. */
static void test_no_fua_server(void **state)
{
    nbd_server_eval(&srv, true);
    VdBlockBackend *blk = open_nbd(",cache=writethrough");
    assert_false(vd_blk_fua_native(blk));
    assert_false(vd_blk_write_cache(blk));
    assert_int_equal(write_block(blk, 0, 4, 0), 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x0 count=0x1000 fua=0"), 1);
    assert_int_equal(nbd_log_count(&srv, "Flush"), 1);
    uint8_t back[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 0, back, sizeof(back)), 0);
    assert_int_equal(back[100], 4);
    vd_blk_close(blk);
}

/* A server without flush: write-through only; the cache is off, stays off, and no flush is ever sent. */
static void test_write_through_only(void **state)
{
    nbd_server_eval(&srv, false);
    VdBlockBackend *blk = open_nbd(",cache=writeback");
    assert_true(vd_blk_write_through_only(blk));
    assert_false(vd_blk_write_cache(blk));
    assert_false(vd_blk_default_write_cache(blk));
    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);
    assert_false(vd_blk_write_cache(blk));
    assert_int_equal(stats_of(blk).wce_toggles, 0);
    assert_int_equal(write_block(blk, 0, 5, 0), 0);
    assert_int_equal(write_block(blk, 4096, 5, VD_REQ_FUA), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(nbd_log_count(&srv, "Write fua=0"), 2);
    assert_int_equal(nbd_log_count(&srv, "Flush"), 0);
    vd_blk_close(blk);
}

/* The server's minimum block size is the request alignment; its maximum splits a request. */
static void test_block_sizes(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "--filter=blocksize-policy", "blocksize-minimum=4096",
                                        "blocksize-maximum=65536", "blocksize-error-policy=error", NULL });
    VdBlockBackend *blk = open_nbd("");
    uint8_t small[512];
    memset(small, 6, sizeof(small));
    assert_int_equal(vd_blk_pwrite_sync(blk, 512, small, sizeof(small), 0), 0);
    assert_int_equal(nbd_log_count(&srv, "Read offset=0x0 count=0x1000"), 1);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x0 count=0x1000"), 1);
    static uint8_t big[256 << 10];
    memset(big, 7, sizeof(big));
    assert_int_equal(vd_blk_pwrite_sync(blk, 1 << 20, big, sizeof(big), 0), 0);
    assert_int_equal(nbd_log_count(&srv, "Write count=0x10000"), 4);
    static uint8_t back[256 << 10];
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, back, sizeof(back)), 0);
    assert_memory_equal(back, big, sizeof(big));
    vd_blk_close(blk);
}

/* Several iovecs travel as one command per piece of the server's maximum. */
static void test_iovecs(void **state)
{
    nbd_server_memory(&srv, NULL);
    VdBlockBackend *blk = open_nbd("");
    uint8_t a[512], b[1536];
    memset(a, 8, sizeof(a));
    memset(b, 9, sizeof(b));
    struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
    Completion c = { 0 };
    vd_blk_pwritev(blk, 0, iov, 2, 0, completion_cb, &c);
    wait_completion(&c);
    assert_int_equal(c.ret, 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x0 count=0x800"), 1);
    uint8_t x[1024], y[1024];
    struct iovec riov[2] = { { x, sizeof(x) }, { y, sizeof(y) } };
    c = (Completion){ 0 };
    vd_blk_preadv(blk, 0, riov, 2, completion_cb, &c);
    wait_completion(&c);
    assert_int_equal(c.ret, 0);
    assert_int_equal(x[511], 8);
    assert_int_equal(x[512], 9);
    assert_int_equal(y[1023], 9);
    vd_blk_close(blk);
}

/* A server error is the guest's error: a failed durable write makes later flushes fail (sticky). */
static void test_server_error_sticky(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "--filter=error", "error-pwrite-rate=100%", "error-pwrite-file=@DIR@/fail",
                                        NULL });
    VdBlockBackend *blk = open_nbd("");
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    g_autofree char *fail = nbd_server_path(&srv, "fail");
    assert_true(g_file_set_contents(fail, "", 0, NULL));
    assert_int_equal(write_block(blk, 0, 1, 0), -EIO);         /* cached: not sticky */
    assert_int_equal(write_block(blk, 0, 1, VD_REQ_FUA), -EIO); /* durable: sticky */
    unlink(fail);
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    assert_int_equal(write_block(blk, 0, 1, VD_REQ_FUA), -EIO);
    vd_blk_close(blk);
}

/* werror=stop holds a write the server failed; cont (resume) retries it once the server is well. */
static void test_server_error_stop_resume(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "--filter=error", "error-pwrite-rate=100%", "error-pwrite-file=@DIR@/fail",
                                        NULL });
    VdBlockBackend *blk = open_nbd(",werror=stop");
    g_autofree char *fail = nbd_server_path(&srv, "fail");
    assert_true(g_file_set_contents(fail, "", 0, NULL));
    uint8_t buf[4096];
    memset(buf, 0x5a, sizeof(buf));
    struct iovec iov = { buf, sizeof(buf) };
    Completion c = { 0 };
    vd_blk_pwritev(blk, 0, &iov, 1, 0, completion_cb, &c);
    wait_stopped(blk);
    assert_int_equal(c.calls, 0);
    unlink(fail);
    vd_blk_resume(blk);
    wait_completion(&c);
    assert_int_equal(c.ret, 0);
    assert_int_equal(nbd_log_count(&srv, "Write offset=0x0 count=0x1000"), 2);
    vd_blk_close(blk);
}

/*
 * The server dies with writes in flight: they fail with EIO and werror=stop
 * holds them; the driver reconnects to the restarted server and cont
 * completes them.
 */
static void test_server_killed_stop_cont(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "--filter=pause", "pause-control=@DIR@/ctl", NULL });
    VdBlockBackend *blk = open_nbd(",werror=stop");
    static uint8_t buf[4][4096];
    struct iovec iov[4];
    Completion c[4] = { 0 };
    nbd_server_pause(&srv, 'p');
    for (int i = 0; i < 4; i++) {
        memset(buf[i], 0x40 + i, sizeof(buf[i]));
        iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
        vd_blk_pwritev(blk, i * 4096, &iov[i], 1, 0, completion_cb, &c[i]);
    }
    wait_logged("Write", 4);
    nbd_server_kill(&srv);
    wait_stopped(blk);
    settle();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].calls, 0); /* held */
    }
    assert_int_equal(vd_blk_in_flight(blk), 4);
    nbd_server_restart(&srv);
    for (int tries = 0; c[3].calls == 0 && tries < 100; tries++) {
        g_usleep(100000);
        vd_blk_resume(blk); /* fails and holds again until the driver is back */
        settle();
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].ret, 0);
    }
    uint8_t back[4096];
    assert_int_equal(vd_blk_pread_sync(blk, 3 * 4096, back, sizeof(back)), 0);
    assert_int_equal(back[0], 0x43);
    vd_blk_close(blk);
}

/* A flush in flight when the server dies is never reported successful, and the error is sticky. */
static void test_server_killed_flush(void **state)
{
    nbd_server_eval(&srv, true);
    VdBlockBackend *blk = open_nbd("");
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    hold_flushes(true);
    Completion c = { 0 };
    flush_async(blk, &c);
    wait_logged("Flush", 1);
    nbd_server_kill(&srv);
    wait_completion(&c);
    assert_int_equal(c.ret, -EIO);
    hold_flushes(false);
    nbd_server_restart(&srv);
    wait_reconnected(blk);
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    assert_int_equal(write_block(blk, 0, 1, VD_REQ_FUA), -EIO);
    vd_blk_close(blk);
}

/* Writes acknowledged but not flushed when the server died may be gone: the next flush fails. */
static void test_server_killed_cache_lost(void **state)
{
    nbd_server_memory(&srv, NULL);
    VdBlockBackend *blk = open_nbd("");
    assert_int_equal(write_block(blk, 0, 1, 0), 0);
    nbd_server_kill(&srv);
    nbd_server_restart(&srv);
    wait_reconnected(blk);
    assert_int_equal(vd_blk_flush_sync(blk), -EIO);
    vd_blk_close(blk);
}

/* A read-only export opens only read-only; writes then fail with EROFS. */
static void test_read_only_export(void **state)
{
    nbd_server_memory(&srv, (const char *const[]){ "-r", NULL });
    g_autofree char *rw = g_strdup_printf("driver=nbd,uri=%s", srv.uri);
    GError *err = NULL;
    assert_null(vd_blk_open(rw, NULL, &err));
    assert_non_null(strstr(err->message, "is a read-only export; open it with read-only=on"));
    g_error_free(err);
    VdBlockBackend *blk = open_nbd(",read-only=on");
    assert_int_equal(write_block(blk, 0, 1, 0), -EROFS);
    uint8_t b[512];
    assert_int_equal(vd_blk_pread_sync(blk, 0, b, sizeof(b)), 0);
    vd_blk_close(blk);
}

/* Every bad option or server fails at open with one line naming what failed. */
static void test_bad_input(void **state)
{
    nbd_server_memory(&srv, NULL);
    g_autofree char *tls = g_strdup_printf("driver=nbd,uri=nbds+unix:///?socket=%s", srv.sock);
    g_autofree char *both = g_strdup_printf("driver=nbd,uri=%s,export=x", srv.uri);
    const struct {
        const char *opts, *error;
    } rows[] = {
        { "driver=nbd,uri=nbd://[::1", "driver=nbd: uri=nbd://[::1 does not parse" },
        { "driver=nbd,uri=http://localhost/x", "scheme 'http' is not one of nbd, nbds, nbd+unix, nbds+unix" },
        { "driver=nbd,uri=nbd+unix:///x?socket=/nonexistent/sock", "driver=nbd: cannot open nbd+unix:///x?socket=" },
        { tls, "driver=nbd: cannot open nbds+unix:///" },
        { both, "give it without server.* and export=" },
        { "driver=nbd", "driver=nbd needs uri=" },
        { "driver=nbd,server.type=unix", "server.type=unix needs server.path=PATH" },
        { "driver=nbd,server.type=tcp,server.host=x", "invalid server.type 'tcp'; accepted values: unix, inet" },
        { "driver=nbd,uri=nbd://x/,file=/tmp/x", "driver 'nbd' takes no file= option" },
        { "driver=nbd,uri=nbd://x/,size=1M", "driver 'nbd' takes no size= option" },
        { "driver=nbd,uri=nbd://x/,pool=p", "unknown option 'pool'" },
        { "driver=nbd,uri=nbd://x/,aio=threads", "aio=threads does not apply to driver=nbd" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        GError *err = NULL;
        VdBlockBackend *blk = vd_blk_open(rows[i].opts, NULL, &err);
        if (blk || !strstr(err->message, rows[i].error) || strchr(err->message, '\n')) {
            fail_msg("'%s': got '%s'", rows[i].opts, blk ? "(opened)" : err->message);
        }
        g_error_free(err);
    }
}

/* QEMU's spelling: server.type=unix,server.path=,export=. */
static void test_server_spelling(void **state)
{
    nbd_server_memory(&srv, NULL);
    g_autofree char *opts = g_strdup_printf("driver=nbd,server.type=unix,server.path=%s,export=", srv.sock);
    VdBlockBackend *blk = open_ok(opts);
    assert_int_equal(write_block(blk, 0, 1, VD_REQ_FUA), 0);
    assert_int_equal(nbd_log_count(&srv, "Write fua=1"), 1);
    vd_blk_close(blk);
}

/* QEMU's legacy filename, file=nbd:unix:PATH[:exportname=], reaches the same server without driver=. */
static void test_legacy_filename(void **state)
{
    nbd_server_memory(&srv, NULL);
    g_autofree char *opts = g_strdup_printf("file=nbd:unix:%s:exportname=", srv.sock);
    VdBlockBackend *blk = open_ok(opts);
    assert_string_equal(vd_blk_driver_name(blk), "nbd");
    assert_int_equal(write_block(blk, 0, 1, VD_REQ_FUA), 0);
    assert_int_equal(nbd_log_count(&srv, "Write fua=1"), 1);
    vd_blk_close(blk);
}

/* qemu-nbd on a unix socket: data, FUA and flush reach the image; a missing export is refused. */
static void test_qemu_nbd(void **state)
{
    nbd_server_require("qemu-nbd");
    g_autofree char *dir = g_dir_make_tmp("vd-qnbd-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "disk.img", NULL);
    int fd = open(img, O_CREAT | O_RDWR, 0644);
    assert_true(fd >= 0 && ftruncate(fd, 16 << 20) == 0);
    close(fd);
    g_autofree char *args = g_strdup_printf("-f raw --cache=writeback %s", img);
    nbd_server_qemu(&srv, "exp", args);
    VdBlockBackend *blk = open_nbd("");
    assert_true(vd_blk_fua_native(blk));
    assert_int_equal(write_block(blk, 4096, 0x77, VD_REQ_FUA), 0);
    assert_int_equal(write_block(blk, 8192, 0x78, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    g_autofree char *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(img, &data, &len, NULL));
    assert_int_equal((uint8_t)data[4096], 0x77);
    assert_int_equal((uint8_t)data[8192 + 4095], 0x78);
    vd_blk_close(blk);

    g_autofree char *missing = g_strdup_printf("driver=nbd,uri=nbd+unix:///nosuch?socket=%s", srv.sock);
    GError *err = NULL;
    assert_null(vd_blk_open(missing, NULL, &err));
    assert_non_null(strstr(err->message, "driver=nbd: cannot open nbd+unix:///nosuch"));
    g_error_free(err);
    unlink(img);
    rmdir(dir);
}

int main(void)
{
    nbd_server_require("nbdkit");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fua_and_flush, teardown),
        cmocka_unit_test_teardown(test_zero_trim, teardown),
        cmocka_unit_test_teardown(test_flush_coalesce, teardown),
        cmocka_unit_test_teardown(test_many_in_flight, teardown),
        cmocka_unit_test_teardown(test_no_fua_server, teardown),
        cmocka_unit_test_teardown(test_write_through_only, teardown),
        cmocka_unit_test_teardown(test_block_sizes, teardown),
        cmocka_unit_test_teardown(test_iovecs, teardown),
        cmocka_unit_test_teardown(test_server_error_sticky, teardown),
        cmocka_unit_test_teardown(test_server_error_stop_resume, teardown),
        cmocka_unit_test_teardown(test_server_killed_stop_cont, teardown),
        cmocka_unit_test_teardown(test_server_killed_flush, teardown),
        cmocka_unit_test_teardown(test_server_killed_cache_lost, teardown),
        cmocka_unit_test_teardown(test_read_only_export, teardown),
        cmocka_unit_test_teardown(test_bad_input, teardown),
        cmocka_unit_test_teardown(test_server_spelling, teardown),
        cmocka_unit_test_teardown(test_legacy_filename, teardown),
        cmocka_unit_test_teardown(test_qemu_nbd, teardown),
    };
    return cmocka_run_group_tests_name("block-nbd", tests, NULL, NULL);
}
